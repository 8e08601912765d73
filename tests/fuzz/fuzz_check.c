/*
 * libFuzzer target for check: `mesh check`'s loader pass and every analysis
 * check on arbitrary text, then the sorted report. Oracles beyond the
 * sanitizers: the error and warning counts match the findings, and the report
 * is sorted (errors first, then file and line) after check_print.
 */
#include "../../modules/conf.c"
#include "../../modules/authz.c"
#include "../../modules/check.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct check_report r;
	char *text = malloc(size + 1);
	size_t i, errors = 0;
	FILE *devnull;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&r, 0, sizeof(r));
	check_load("f.ini", text, &r);
	for (i = 0; i < r.n; i++) {
		if (!r.v[i].text)
			abort();
		errors += (size_t)r.v[i].error;
	}
	if (errors != r.n_errors || r.n_errors + r.n_warnings != r.n)
		abort();
	devnull = fopen("/dev/null", "w");
	if (devnull) {
		check_print(devnull, "f.ini", &r);
		fclose(devnull);
	}
	for (i = 1; i < r.n; i++)
		if (ck_msg_cmp(&r.v[i - 1], &r.v[i]) > 0)
			abort();
	check_report_free(&r);
	free(text);
	return 0;
}
