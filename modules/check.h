/*
 * check: `mesh check`, offline validation of configuration files (the role of
 * `istioctl analyze` / `linkerd check`). A file is loaded as the proxy would
 * load it (every conf error and warning), and a config that loads is then
 * analysed for things the loader allows but that cannot work or probably do
 * not do what was meant: routes to subsets no endpoint carries, mirrors to a
 * destination of the route itself, STRICT on a service without a sidecar,
 * authorization rules that no identity of the mesh can match, endpoints shared
 * by services, listeners on endpoint addresses... (docs/config.md lists them).
 * Every finding is a "file:line: message" (warnings: "file:line: warning:
 * message"), collected in a struct check_report.
 */
#ifndef MESH_CHECK_H
#define MESH_CHECK_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

struct check_msg {
	int error;                   /* 1 = error, 0 = warning */
	int file;                    /* index into the report's files, for sorting */
	int line;                    /* 0 = none */
	size_t seq;                  /* keeps one line's messages in the order found */
	char *text;                  /* "file:line: message" or "file:line: warning: message" */
};

struct check_report {
	struct check_msg *v;         /* every finding; check_print sorts them */
	size_t n, cap;
	size_t n_errors;
	size_t n_warnings;
	char **files;                /* file names in the order first seen (the checked file first) */
	size_t n_files;
	char counts[200];            /* "4 services, 5 endpoints, 2 routes" of a config that loaded, else "" */
};

/*
 * Loads path (or, when text is not NULL, text under the name path) and fills
 * r (all-zero or fresh) with the loader's errors and warnings and, when it
 * loads, with check_conf's. Returns the number of errors.
 */
size_t check_load(const char *path, const char *text, struct check_report *r);

/* The analysis of a loaded config. text: the content of c->files[0] when it
 * was loaded from a string (NULL: files are read to find key lines). */
void check_conf(const struct conf *c, const char *text, struct check_report *r);

/* errors first, then warnings, each in file and line order; then the summary
 * line "NAME: 1 error, 2 warnings" or "NAME: ok (4 services, ...)" */
void check_print(FILE *f, const char *name, struct check_report *r);

void check_report_free(struct check_report *r);

/* mesh check [-c FILE] [FILE...] [--strict]: 0 no errors, 1 errors (or warnings with --strict), 2 usage */
int check_main(int argc, char **argv);

#endif
