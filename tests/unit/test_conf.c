/*
 * conf: value parsers, schema errors (exact "file:line:" and suggestions),
 * mesh includes, conf_find_service host forms, render round trip, refcounts,
 * and the shipped examples. Runs under ASan/LSan: every conf is unref'd.
 */
#include "../../modules/conf.c"
#include "test.h"

#include <sys/stat.h>

static char err[8192];

static struct conf *load(const char *text)
{
	return conf_load_string("t.ini", text, err, sizeof(err));
}

/* text must fail and err must start with `first` (the first error) */
static int fails_first(const char *text, const char *first)
{
	struct conf *c = load(text);

	if (c) {
		conf_unref(c);
		printf("  (loaded, expected: %s)\n", first);
		return 0;
	}
	if (strncmp(err, first, strlen(first))) {
		printf("  got: %s\n  expected: %s\n", err, first);
		return 0;
	}
	return 1;
}

/* text must fail and some line of err must contain `part` */
static int fails_with(const char *text, const char *part)
{
	struct conf *c = load(text);

	if (c) {
		conf_unref(c);
		printf("  (loaded, expected: %s)\n", part);
		return 0;
	}
	if (!strstr(err, part)) {
		printf("  got: %s\n  expected: %s\n", err, part);
		return 0;
	}
	return 1;
}

static int loads(const char *text)
{
	struct conf *c = load(text);

	if (!c)
		printf("  unexpected error: %s\n", err);
	conf_unref(c);
	return c != NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void)
{
	struct conf *c = load("");

	TEST("empty config loads", c != NULL);
	if (!c)
		return;
	TEST("default max_request_line 8k", c->proxy.max_request_line == 8192);
	TEST("default max_header_size 32k", c->proxy.max_header_size == 32768);
	TEST("default max_headers 100", c->proxy.max_headers == 100);
	TEST("default timeouts", c->proxy.header_timeout == 10000 && c->proxy.idle_timeout == 60000 &&
	     c->proxy.upstream_idle_timeout == 30000 && c->proxy.connect_timeout == 10000 &&
	     c->proxy.request_timeout == 0 && c->proxy.stream_idle_timeout == 300000 && c->proxy.drain_timeout == 5000);
	TEST("default max_idle_per_endpoint 64", c->proxy.max_idle_per_endpoint == 64);
	TEST("default outbound 127.0.0.1:15001", c->listen.outbound.set && !strcmp(c->listen.outbound.text, "127.0.0.1:15001"));
	TEST("default admin 127.0.0.1:15000", c->listen.admin.set && !strcmp(c->listen.admin.text, "127.0.0.1:15000"));
	TEST("no app: no inbound", !c->listen.inbound.set);
	TEST("default log", !c->log.access_log && !c->log.access_log_off && !c->log.access_log_json &&
	     c->log.level == CONF_LOG_INFO);
	TEST("default domain cluster.local", !strcmp(c->mesh.domain, "cluster.local"));
	TEST("default workload: client only, namespace default", !c->workload.service && !c->workload.service_account &&
	     !strcmp(c->workload.namespace, "default") && !c->workload.app.set);
	TEST("no warnings, no services", c->n_warnings == 0 && c->n_services == 0 && !c->mesh_path);
	TEST("path and files", !strcmp(c->path, "t.ini") && c->n_files == 1 && !strcmp(c->files[0], "t.ini"));
	conf_unref(c);

	c = load("[workload]\nservice = reviews\nlabels = app=reviews, version=v2\napp = :9081\n");
	TEST("workload with app loads", c != NULL);
	if (!c)
		return;
	TEST("app ':9081' -> 127.0.0.1:9081", c->workload.app.set && !strcmp(c->workload.app.text, "127.0.0.1:9081"));
	TEST("inbound defaults to 127.0.0.1:15006 with an app", c->listen.inbound.set &&
	     !strcmp(c->listen.inbound.text, "127.0.0.1:15006"));
	TEST("service_account defaults to service", !strcmp(c->workload.service_account, "reviews"));
	TEST("version from labels", c->workload.version && !strcmp(c->workload.version, "v2"));
	TEST("conf_label", !strcmp(conf_label(&c->workload.labels, "app"), "reviews") &&
	     !conf_label(&c->workload.labels, "zone"));
	conf_unref(c);

	c = load("[workload]\nservice = reviews\n[listen]\noutbound = off\nadmin = :15000\n");
	TEST("client-only workload with service: inbound stays off", c && !c->listen.inbound.set);
	TEST("outbound off, admin ':15000' -> 0.0.0.0", c && !c->listen.outbound.set &&
	     !strcmp(c->listen.admin.text, "0.0.0.0:15000"));
	conf_unref(c);
}

static void test_durations(void)
{
	static const struct { const char *s; uint32_t ms; } good[] = {
		{ "250ms", 250 }, { "5s", 5000 }, { "2m", 120000 }, { "1h", 3600000 }, { "0", 0 }, { "0s", 0 },
		{ "1m30s", 90000 }, { "1.5s", 1500 }, { "0.25h", 900000 }, { "1193h", 1193u * 3600000u },
	};
	static const char *const bad[] = { "10", "abc", "-1s", "5sec", "", "1.0001s", "1194h", "5 s", ".5s", "1.s", "1m30" };
	uint32_t ms;
	size_t i;
	int ok = 1;
	char why[128];

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (conf_parse_duration(good[i].s, &ms) || ms != good[i].ms)
			ok = 0, printf("  duration '%s' -> %u\n", good[i].s, ms);
	TEST("durations: 250ms 5s 2m 1h 0 1m30s 1.5s 0.25h", ok);
	for (ok = 1, i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!conf_parse_duration(bad[i], &ms))
			ok = 0, printf("  duration '%s' accepted\n", bad[i]);
	TEST("durations: bad ones rejected", ok);
	TEST("bare number: missing unit", parse_duration("10", &ms, why, sizeof(why)) < 0 &&
	     !strcmp(why, "missing unit (write 10s or 10ms)"));
	TEST("connect_timeout = 10 -> missing unit at its line",
	     fails_first("[proxy]\nconnect_timeout = 10\n", "t.ini:2: connect_timeout = 10: missing unit (write 10s or 10ms)"));
	TEST("duration out of range says the range",
	     fails_first("[proxy]\nconnect_timeout = 11m\n", "t.ini:2: connect_timeout = 11m: out of range (allowed 1ms..10m)"));
	TEST("header_timeout = 0 refused", fails_with("[proxy]\nheader_timeout = 0\n", "out of range (allowed 1ms..1h)"));
	TEST("request_timeout = 0 means none", loads("[proxy]\nrequest_timeout = 0\n"));
}

static void test_sizes_counts(void)
{
	static const struct { const char *s; size_t v; } good[] = {
		{ "512", 512 }, { "64k", 65536 }, { "1m", 1048576 }, { "1g", 1073741824 }, { "64KiB", 65536 },
		{ "2kb", 2048 }, { "0", 0 }, { "7b", 7 },
	};
	static const char *const bad[] = { "1.5k", "k", "-1", "12x", "", "64 k", "99999999999999g", "1ib" };
	size_t i, v;
	int ok = 1;
	struct conf *c;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (conf_parse_size(good[i].s, &v) || v != good[i].v)
			ok = 0, printf("  size '%s' -> %zu\n", good[i].s, v);
	TEST("sizes: 512 64k 1m 1g 64KiB 2kb", ok);
	for (ok = 1, i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!conf_parse_size(bad[i], &v))
			ok = 0, printf("  size '%s' accepted\n", bad[i]);
	TEST("sizes: bad ones rejected", ok);
	c = load("[proxy]\nmax_request_line = 4k\nmax_header_size = 64k\nmax_headers = 50\nmax_idle_per_endpoint = 0\n");
	TEST("proxy sizes and counts set", c && c->proxy.max_request_line == 4096 && c->proxy.max_header_size == 65536 &&
	     c->proxy.max_headers == 50 && c->proxy.max_idle_per_endpoint == 0);
	conf_unref(c);
	TEST("max_headers 1..1000", fails_first("[proxy]\nmax_headers = 5000\n",
	     "t.ini:2: max_headers = 5000: out of range (allowed 1..1000)"));
	TEST("max_headers = 0 refused", fails_with("[proxy]\nmax_headers = 0\n", "out of range (allowed 1..1000)"));
	TEST("max_headers takes a plain number", fails_with("[proxy]\nmax_headers = 1k\n", "max_headers = 1k: not a number"));
	TEST("size range in units", fails_with("[proxy]\nmax_request_line = 2m\n", "out of range (allowed 256..1m)"));
	TEST("size garbage", fails_with("[proxy]\nmax_header_size = lots\n", "max_header_size = lots: not a size"));
	TEST("max_request_line > max_header_size", fails_first("[proxy]\nmax_header_size = 4k\nmax_request_line = 8k\n",
	     "t.ini:3: max_request_line (8192) is larger than max_header_size (4096)"));
	TEST("port out of range", fails_first("[service a]\nport = 70000\n",
	     "t.ini:2: port = 70000: out of range (allowed 1..65535)"));
	TEST("port = 0 refused", fails_with("[service a]\nport = 0\n", "out of range (allowed 1..65535)"));
	TEST("port not a number", fails_with("[service a]\nport = http\n", "port = http: not a port"));
}

static void test_addrs(void)
{
	struct conf_addr a;
	static const char *const bad[] = { "::1:80", "1.2.3.4", "host:80", "1.2.3.4:0", "1.2.3.4:65536", "[::1]",
	                                   "[::1:80", "", "1.2.3.4:http", "1.2.3:80", "[zz]:80", ":", "1.2.3.4:-1" };
	size_t i;
	int ok = 1;

	TEST("addr 127.0.0.1:9080", !conf_parse_addr("127.0.0.1:9080", &a, 1) && a.set &&
	     a.ss.ss_family == AF_INET && a.len == sizeof(struct sockaddr_in) && !strcmp(a.text, "127.0.0.1:9080") &&
	     ntohs(((struct sockaddr_in *)&a.ss)->sin_port) == 9080);
	TEST("addr [::1]:80", !conf_parse_addr("[::1]:80", &a, 1) && a.ss.ss_family == AF_INET6 &&
	     a.len == sizeof(struct sockaddr_in6) && !strcmp(a.text, "[::1]:80"));
	TEST("listen ':15001' -> 0.0.0.0", !conf_parse_addr(":15001", &a, 0) && !strcmp(a.text, "0.0.0.0:15001"));
	TEST("connect ':9081' -> 127.0.0.1", !conf_parse_addr(":9081", &a, 1) && !strcmp(a.text, "127.0.0.1:9081"));
	TEST("connect '9081' -> 127.0.0.1", !conf_parse_addr("9081", &a, 1) && !strcmp(a.text, "127.0.0.1:9081"));
	TEST("listen '15001' -> 0.0.0.0", !conf_parse_addr("15001", &a, 0) && !strcmp(a.text, "0.0.0.0:15001"));
	TEST("localhost -> 127.0.0.1", !conf_parse_addr("localhost:80", &a, 1) && !strcmp(a.text, "127.0.0.1:80"));
	TEST("[::]:80 listen ok", !conf_parse_addr("[::]:80", &a, 0) && !strcmp(a.text, "[::]:80"));
	TEST("0.0.0.0 is no connect target", conf_parse_addr("0.0.0.0:80", &a, 1) < 0 && !a.set);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!conf_parse_addr(bad[i], &a, 0))
			ok = 0, printf("  addr '%s' accepted\n", bad[i]);
	TEST("bad addresses rejected", ok);
	TEST("IPv6 without brackets explains", fails_first("[workload]\nservice = a\napp = ::1:80\n",
	     "t.ini:3: app = ::1:80: IPv6 addresses need brackets, e.g. [::1]:8080"));
	TEST("host names are not resolved", fails_with("[listen]\nadmin = example.com:80\n",
	     "'example.com' is not an IP address"));
	TEST("missing port", fails_with("[listen]\nadmin = 127.0.0.1\n", "admin = 127.0.0.1: missing port"));
}

static void test_labels_bools(void)
{
	struct conf_labels l;
	static const char *const bad[] = { "app", "a=b,", "a=b, a=c", "a=", "a b=c", "=v", ",", "a=b c", "a=b;c" };
	size_t i;
	int ok = 1, b = -1;

	TEST("labels parse", !conf_parse_labels("app=reviews, version=v2", &l) && l.n == 2 &&
	     !strcmp(conf_label(&l, "version"), "v2") && !strcmp(l.v[0].key, "app"));
	conf_labels_free(&l);
	TEST("labels free leaves it empty", l.n == 0 && l.v == NULL);
	TEST("labels: whitespace around = and ,", !conf_parse_labels("  a = 1 ,b=2  ", &l) && l.n == 2 &&
	     !strcmp(conf_label(&l, "a"), "1") && !strcmp(conf_label(&l, "b"), "2"));
	conf_labels_free(&l);
	TEST("labels: empty string is none", !conf_parse_labels("", &l) && l.n == 0);
	TEST("labels: prefixed key", !conf_parse_labels("app.kubernetes.io/name=x", &l) && l.n == 1);
	conf_labels_free(&l);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!conf_parse_labels(bad[i], &l))
			ok = 0, printf("  labels '%s' accepted\n", bad[i]), conf_labels_free(&l);
		else if (l.n || l.v)
			ok = 0, printf("  labels '%s' left data behind\n", bad[i]);
	}
	TEST("bad labels rejected, nothing left behind", ok);
	TEST("duplicate label named", fails_first("[workload]\nlabels = a=1, a=2\n",
	     "t.ini:2: labels = a=1, a=2: label 'a' is given twice"));

	ok = 1;
	{
		static const char *const t[] = { "on", "true", "yes", "1", "ON", "True" }, *const f[] = { "off", "false", "no", "0", "No" };

		for (i = 0; i < 6; i++)
			ok &= !conf_parse_bool(t[i], &b) && b == 1;
		for (i = 0; i < 5; i++)
			ok &= !conf_parse_bool(f[i], &b) && b == 0;
	}
	TEST("booleans on/off true/false yes/no 1/0", ok);
	TEST("boolean garbage rejected", conf_parse_bool("maybe", &b) < 0 && conf_parse_bool("", &b) < 0);
}

static void test_log(void)
{
	struct conf *c = load("[log]\naccess_log = off\naccess_log_format = json\nlevel = debug\n");

	TEST("log off/json/debug", c && c->log.access_log_off && !c->log.access_log && c->log.access_log_json &&
	     c->log.level == CONF_LOG_DEBUG);
	conf_unref(c);
	c = load("[log]\naccess_log = logs/access.log\nlevel = error\n");
	TEST("log path kept (string: relative to cwd)", c && !strcmp(c->log.access_log, "logs/access.log") &&
	     c->log.level == CONF_LOG_ERROR);
	conf_unref(c);
	c = load("[log]\naccess_log = stderr\n");
	TEST("access_log = stderr -> NULL", c && !c->log.access_log && !c->log.access_log_off);
	conf_unref(c);
	TEST("bad level lists the words", fails_first("[log]\nlevel = verbose\n",
	     "t.ini:2: level = verbose: expected one of: error, warn, info, debug"));
	TEST("bad format", fails_with("[log]\naccess_log_format = xml\n", "expected one of: text, json"));
}

static void test_errors(void)
{
	struct conf *c;

	TEST("unknown key with suggestion (exact)", fails_first("[proxy]\nconect_timeout = 5s\n",
	     "t.ini:2: unknown key 'conect_timeout' in [proxy] (did you mean 'connect_timeout'?)"));
	TEST("unknown key: transposition", fails_with("[service a]\nprot = 80\n", "(did you mean 'port'?)"));
	TEST("unknown key in another section", fails_first("[workload]\nport = 80\n",
	     "t.ini:2: unknown key 'port' in [workload] (it belongs in [service NAME])"));
	TEST("unknown key, nothing close: lists known", fails_first("[log]\nxyzzy = 1\n",
	     "t.ini:2: unknown key 'xyzzy' in [log] (known: access_log, access_log_format, level)"));
	TEST("unknown section with suggestion", fails_first("[proxi]\n", "t.ini:1: unknown section [proxi] (did you mean [proxy]?)"));
	TEST("unknown named section keeps the name", fails_first("\n[servce reviews]\n",
	     "t.ini:2: unknown section [servce reviews] (did you mean [service reviews]?)"));
	TEST("unknown section, nothing close", fails_with("[frobnicate]\n", "unknown section [frobnicate] (known: "));
	TEST("keys of an unknown section are not reported again", fails_first("[proxi]\nconnect_timeout = x\n", "t.ini:1:") &&
	     !strchr(err, '\n'));
	TEST("duplicate key", fails_first("[proxy]\nmax_headers = 10\n\nmax_headers = 20\n",
	     "t.ini:4: duplicate key 'max_headers' in [proxy] (first set at t.ini:2)"));
	TEST("duplicate section", fails_first("[proxy]\n[log]\n[proxy]\n", "t.ini:3: duplicate [proxy] (first defined at t.ini:1)"));
	TEST("duplicate service", fails_first("[service reviews]\nendpoint = :1\n[service reviews]\n",
	     "t.ini:3: duplicate [service reviews] (first defined at t.ini:1)"));
	TEST("duplicate service in a namespace", fails_with("[service r]\nnamespace = prod\n[service r]\nnamespace = prod\n",
	     "t.ini:3: duplicate [service r] in namespace prod (first defined at t.ini:1)"));
	TEST("same name in two namespaces is fine", loads("[service r]\nendpoint = :1\n[service r]\nnamespace = prod\nendpoint = :2\n"));
	TEST("endpoint is a list key; duplicate address is not",
	     fails_first("[service r]\nendpoint = :1\nendpoint = :2\nendpoint = 127.0.0.1:1\n",
	                 "t.ini:4: endpoint 127.0.0.1:1 is already listed in [service r] at line 2"));
	TEST("key outside a section", fails_first("port = 1\n", "t.ini:1: 'port' is outside any section"));
	TEST("[service] needs a name", fails_first("[service]\n", "t.ini:1: [service] needs a name: [service NAME]"));
	TEST("[workload] takes no name", fails_first("[workload x]\n", "t.ini:1: [workload] takes no name (found [workload x])"));
	TEST("invalid service name", fails_first("[service Reviews]\n", "t.ini:1: invalid service name 'Reviews' in [service Reviews]"));
	TEST("service name with a namespace", fails_with("[service reviews.prod]\n", "put the namespace in 'namespace ='"));
	TEST("workload service validated", fails_with("[workload]\nservice = 9lives\n", "service = 9lives: not a service name"));
	TEST("empty value", fails_first("[workload]\nservice =\n", "t.ini:2: service = : empty value"));
	TEST("missing key name", fails_first("[proxy]\n= 5\n", "t.ini:2: missing key name before '='"));
	TEST("syntax error: no '='", fails_first("[proxy]\nthis is not ini\n",
	     "t.ini:2: syntax error: expected 'key = value' or '[section]', got 'this is not ini'"));
	TEST("syntax error: missing ']'", fails_first("[proxy\nmax_headers = 1\n", "t.ini:1: syntax error: missing ']' in section header") &&
	     !strchr(err, '\n'));
	TEST("syntax error: text after ']'", fails_first("[proxy] extra\n", "t.ini:1: syntax error: unexpected text after ']'"));
	{
		char *big = malloc(5000);

		memcpy(big, "[proxy]\nx = ", 12);
		memset(big + 12, 'a', 4500);
		strcpy(big + 4512, "\nmax_headers = 0\n");
		TEST("syntax error: line too long, later lines still checked",
		     fails_first(big, "t.ini:2: syntax error: line too long (at most 4094 characters)") &&
		     strstr(err, "\nt.ini:3: max_headers = 0: out of range"));
		free(big);
	}
	TEST("several errors, in order, newline-separated",
	     fails_first("[proxy]\nmax_headers = 0\nbogus\n[log]\nlevel = loud\n", "t.ini:2: max_headers = 0") &&
	     strstr(err, "\nt.ini:3: syntax error") && strstr(err, "\nt.ini:5: level = loud"));
	TEST("dangling service.NAME with suggestion", fails_first("[listen]\nservice.reviwes = :15002\n[service reviews]\nendpoint = :9\n",
	     "t.ini:2: service.reviwes: unknown service 'reviwes' (did you mean 'reviews'?)"));
	TEST("dangling service.NAME, nothing defined", fails_with("[listen]\nservice.x = :15002\n", "(no [service NAME] sections are defined)"));
	TEST("misspelt service. prefix", fails_with("[listen]\nservce.reviews = :1\n", "(did you mean 'service.reviews'?)"));
	TEST("listener conflict", fails_first("[listen]\noutbound = 127.0.0.1:15005\nadmin = 127.0.0.1:15005\n",
	     "t.ini:3: admin 127.0.0.1:15005 conflicts with outbound 127.0.0.1:15005 (t.ini:2)"));
	TEST("listener conflict with a default", fails_first("[listen]\nadmin = 127.0.0.1:15001\n",
	     "t.ini:2: admin 127.0.0.1:15001 conflicts with outbound 127.0.0.1:15001 (the default)"));
	TEST("wildcard conflicts with a specific address", fails_with("[listen]\nadmin = :15001\n", "conflicts with outbound"));
	TEST("service port conflicts with admin", fails_with("[listen]\nservice.a = 127.0.0.1:15000\n[service a]\nendpoint = :1\n",
	     "service.a 127.0.0.1:15000 conflicts with admin"));
	TEST("inbound on the app's port", fails_with("[workload]\nservice = a\napp = :8081\n[listen]\ninbound = :8081\n",
	     "inbound 0.0.0.0:8081 conflicts with app 127.0.0.1:8081"));
	TEST("inbound without app", fails_first("[listen]\ninbound = :15006\n",
	     "t.ini:2: inbound is set but [workload] app is not"));
	TEST("app without service", fails_first("[workload]\napp = :8081\n", "t.ini:2: app is set but service is not"));
	TEST("service.NAME given twice", fails_with("[listen]\nservice.a = :1\nservice.a = :2\n[service a]\n",
	     "t.ini:3: duplicate key 'service.a' in [listen] (first set at t.ini:2)"));
	TEST("service.NAME ambiguous across namespaces", fails_with("[listen]\nservice.r = :15002\n[service r]\nnamespace = x\n[service r]\nnamespace = y\n",
	     "exists in several namespaces; write service.r.NAMESPACE"));
	c = load("[listen]\nservice.r.y = :15002\nservice.echo = 127.0.0.1:15003\n[service r]\nnamespace = x\n[service r]\nnamespace = y\n[service echo]\n");
	TEST("service.NAME.NAMESPACE picks one", c && c->n_services == 3 && !c->services[0].listen.set &&
	     !strcmp(c->services[1].listen.text, "0.0.0.0:15002") && !strcmp(c->services[2].listen.text, "127.0.0.1:15003"));
	conf_unref(c);

	/* error buffer: whole lines only, and a cap on how many are listed */
	{
		struct sb b = { 0 };
		int i;
		char small[40];

		sb_add(&b, "[log]\n");
		for (i = 0; i < 60; i++)
			sb_add(&b, "nope = 1\n");
		TEST("more than 50 errors: counted", fails_with(b.p, "\n... and 10 more errors"));
		TEST("small err buffer keeps whole lines",
		     !conf_load_string("t.ini", b.p, small, sizeof(small)) && !strchr(small, '\n') &&
		     !strncmp(small, "t.ini:2: unknown key 'nope'", 27));
		free(b.p);
	}
}

static void test_warnings(void)
{
	struct conf *c = load("[workload]\nservice = helo\n[service hello]\nendpoint = :8081\n[service echo]\nport = 8080\n");

	TEST("warnings don't fail the load", c != NULL);
	if (!c)
		return;
	TEST("two warnings", c->n_warnings == 2);
	TEST("no endpoints -> warning", c->n_warnings > 0 &&
	     !strcmp(c->warnings[0], "t.ini:5: warning: [service echo] has no endpoints; requests to it get 503"));
	TEST("workload service not in the mesh -> warning with suggestion", c->n_warnings > 1 &&
	     !strncmp(c->warnings[1], "t.ini:2: warning: workload service 'helo'", 41) && strstr(c->warnings[1], "did you mean 'hello'?"));
	conf_unref(c);
}

static void test_syntax_forms(void)
{
	struct conf *c;
	char name[64], text[256];

	c = load("\xEF\xBB\xBF[proxy]\r\nmax_headers = 7 ; a comment\r\n# another\r\n; and another\r\n\r\n[log]\r\nlevel: warn\r\n");
	TEST("BOM, CRLF, ; and # comments, name: value", c && c->proxy.max_headers == 7 && c->log.level == CONF_LOG_WARN);
	conf_unref(c);
	/* 63 characters: longer than inih's 49-byte section buffer */
	memset(name, 'a', 63);
	name[63] = '\0';
	snprintf(text, sizeof(text), "[service %s]\nport = 81\nendpoint = :1\n[listen]\nservice.%s = :15009\n", name, name);
	c = load(text);
	TEST("63-character service name", c && c->n_services == 1 && !strcmp(c->services[0].name, name) &&
	     c->services[0].port == 81 && c->services[0].listen.set);
	conf_unref(c);
	snprintf(text, sizeof(text), "[service %sa]\n", name);
	TEST("64-character service name refused", fails_with(text, "invalid service name"));
	c = load("[service r] ; comment\nendpoint = 127.0.0.1:9081 version=v1, zone=a\nendpoint=[::1]:9082\n");
	TEST("endpoint with labels; header with comment", c && c->services[0].n_endpoints == 2 &&
	     !strcmp(c->services[0].endpoints[0].addr.text, "127.0.0.1:9081") &&
	     !strcmp(conf_label(&c->services[0].endpoints[0].labels, "zone"), "a") &&
	     c->services[0].endpoints[0].line == 2 && c->services[0].endpoints[1].labels.n == 0 &&
	     c->services[0].line == 1 && !strcmp(c->services[0].file, "t.ini") && c->services[0].port == 80 &&
	     !strcmp(c->services[0].namespace, "default"));
	conf_unref(c);
	TEST("endpoint with bad labels", fails_with("[service r]\nendpoint = :1 version\n", "needs a value"));
	TEST("endpoint 0.0.0.0 refused", fails_with("[service r]\nendpoint = 0.0.0.0:1\n", "not an address to connect to"));
}

static void test_include(void)
{
	char dir[] = "/tmp/test_conf.XXXXXX", p[256], q[256], cwd[1024], text[512];
	struct conf *c;

	if (!mkdtemp(dir)) {
		TEST("mkdtemp", 0);
		return;
	}
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/mesh.ini", dir);
	write_file(p, "[mesh]\ndomain = example.org\n\n[service reviews]\nport = 9080\nendpoint = 127.0.0.1:9081 version=v1\n");
	snprintf(p, sizeof(p), "%s/sub/proxy.ini", dir);
	write_file(p, "[workload]\nservice = reviews\napp = 9081\n[control]\nmesh = ../mesh.ini\n[log]\naccess_log = access.log\n");
	c = conf_load(p, err, sizeof(err));
	TEST("include: loads", c != NULL);
	if (c) {
		snprintf(q, sizeof(q), "%s/sub/../mesh.ini", dir);
		TEST("include: mesh path relative to the including file", c->mesh_path && !strcmp(c->mesh_path, q));
		TEST("include: both files recorded", c->n_files == 2 && !strcmp(c->files[0], p) && !strcmp(c->files[1], q));
		TEST("include: services from the mesh file", c->n_services == 1 && c->services[0].port == 9080 &&
		     c->services[0].file == c->files[1] && c->services[0].line == 4);
		TEST("include: [mesh] from the mesh file", !strcmp(c->mesh.domain, "example.org"));
		snprintf(q, sizeof(q), "%s/sub/access.log", dir);
		TEST("include: access_log relative to its file", c->log.access_log && !strcmp(c->log.access_log, q));
		conf_unref(c);
	} else {
		printf("  %s\n", err);
	}

	/* a proxy-part section in the mesh file */
	snprintf(p, sizeof(p), "%s/bad-mesh.ini", dir);
	write_file(p, "[service a]\nendpoint = :1\n[workload]\nservice = a\n");
	snprintf(p, sizeof(p), "%s/proxy2.ini", dir);
	write_file(p, "[control]\nmesh = bad-mesh.ini\n");
	c = conf_load(p, err, sizeof(err));
	snprintf(q, sizeof(q), "%s/bad-mesh.ini:3: [workload] is not allowed in a mesh file", dir);
	TEST("include: proxy section in a mesh file names mesh file:line", !c && !strncmp(err, q, strlen(q)));
	conf_unref(c);

	/* a missing mesh file is reported at the `mesh =` line */
	snprintf(p, sizeof(p), "%s/proxy3.ini", dir);
	write_file(p, "; comment\n[control]\nmesh = nope.ini\n");
	c = conf_load(p, err, sizeof(err));
	snprintf(q, sizeof(q), "%s/proxy3.ini:3: cannot read mesh file '%s/nope.ini': No such file or directory", dir, dir);
	TEST("include: missing mesh file at the key's line", !c && !strcmp(err, q));
	conf_unref(c);

	/* the same service in proxy.ini and in the mesh file */
	snprintf(p, sizeof(p), "%s/proxy4.ini", dir);
	write_file(p, "[control]\nmesh = mesh.ini\n[service reviews]\nendpoint = :1\n");
	c = conf_load(p, err, sizeof(err));
	snprintf(q, sizeof(q), "%s/mesh.ini:4: duplicate [service reviews] (first defined at %s/proxy4.ini:3)", dir, dir);
	TEST("include: duplicate across files", !c && !strcmp(err, q));
	conf_unref(c);

	/* conf_load_string: relative to the current directory */
	if (getcwd(cwd, sizeof(cwd)) && chdir(dir) == 0) {
		c = conf_load_string("inline", "[control]\nmesh = mesh.ini\n", err, sizeof(err));
		TEST("include from a string: relative to cwd", c && c->n_services == 1 && !strcmp(c->mesh_path, "mesh.ini"));
		conf_unref(c);
		if (chdir(cwd) != 0)
			perror("chdir");
	}
	snprintf(text, sizeof(text), "[control]\nmesh = %s/mesh.ini\n", dir);
	c = conf_load_string("inline", text, err, sizeof(err));
	TEST("include from a string: absolute path", c && c->n_services == 1);
	conf_unref(c);

	c = conf_load("/nonexistent/proxy.ini", err, sizeof(err));
	TEST("missing top-level file", !c && !strcmp(err, "/nonexistent/proxy.ini: cannot read: No such file or directory"));
	c = conf_load(dir, err, sizeof(err));
	TEST("directory as config", !c && strstr(err, "cannot read: is a directory"));

	snprintf(p, sizeof(p), "%s/nul.ini", dir);
	{
		FILE *f = fopen(p, "w");

		fwrite("[proxy]\n\0x\n", 1, 11, f);
		fclose(f);
	}
	c = conf_load(p, err, sizeof(err));
	TEST("NUL byte refused", !c && strstr(err, "line 2: NUL byte"));

	snprintf(text, sizeof(text), "rm -rf '%s'", dir);
	if (system(text) != 0)
		printf("  could not remove %s\n", dir);
}

static void test_find_service(void)
{
	struct conf *c = load("[workload]\nnamespace = prod\n[mesh]\ndomain = corp.local\n"
	                      "[service reviews]\nport = 9080\nendpoint = :1\n"
	                      "[service reviews]\nnamespace = prod\nport = 9080\nendpoint = :2\n"
	                      "[service ratings]\nnamespace = staging\nendpoint = :3\n");
	const struct conf_service *s;
	int ok = -1;

	TEST("find: config loads", c != NULL);
	if (!c)
		return;
#define FIND(h) conf_find_service(c, (h), strlen(h), &ok)
	s = FIND("reviews");
	TEST("find 'reviews' prefers the workload's namespace", s == &c->services[1] && ok == 1);
	s = FIND("reviews:9080");
	TEST("find 'reviews:9080'", s == &c->services[1] && ok == 1);
	s = FIND("reviews:8080");
	TEST("find 'reviews:8080': wrong port", s == &c->services[1] && ok == 0);
	s = FIND("reviews.default");
	TEST("find 'reviews.default'", s == &c->services[0] && ok == 1);
	s = FIND("reviews.default.svc:9080");
	TEST("find 'reviews.default.svc:9080'", s == &c->services[0] && ok == 1);
	s = FIND("reviews.default.svc.corp.local");
	TEST("find with the configured domain", s == &c->services[0]);
	s = FIND("Reviews.PROD.svc.Corp.Local.:9080");
	TEST("find: case-insensitive, trailing dot", s == &c->services[1] && ok == 1);
	TEST("find: other domain never matches", !FIND("reviews.default.svc.cluster.local"));
	TEST("find 'ratings' in another namespace", FIND("ratings") == &c->services[2] && ok == 1);
	TEST("find 'ratings:80'", FIND("ratings:80") == &c->services[2] && ok == 1);
	TEST("find: wrong namespace", !FIND("ratings.default"));
	TEST("find: unknown name", !FIND("details") && !FIND("") && !FIND("reviews.default.pod"));
	TEST("find: IPs never match", !FIND("127.0.0.1") && !FIND("127.0.0.1:9080") && !FIND("[::1]:9080") && !FIND("::1"));
	TEST("find: bad ports", !FIND("reviews:0") && !FIND("reviews:99999") && !FIND("reviews:x") && !FIND("reviews:1:2"));
	TEST("find: 'reviews:' is no port", FIND("reviews:") == &c->services[1] && ok == 1);
	TEST("find: empty labels", !FIND("reviews..svc") && !FIND(".reviews"));
	TEST("find: length is honoured", conf_find_service(c, "reviews.defaultXYZ", 15, &ok) == &c->services[0]);
	TEST("find: NULL port_ok", conf_find_service(c, "reviews:1", 9, NULL) == &c->services[1]);
#undef FIND
	conf_unref(c);

	c = load("[service reviews]\nnamespace = a\nendpoint = :1\n[service reviews]\nnamespace = b\nendpoint = :2\n");
	TEST("find: no workload namespace match -> first defined",
	     c && conf_find_service(c, "reviews", 7, &ok) == &c->services[0]);
	conf_unref(c);
}

static const char full[] =
	"[workload]\nservice = reviews\nnamespace = shop\nservice_account = bookinfo-reviews\n"
	"labels = app=reviews, version=v2\napp = 127.0.0.1:9081\n"
	"[listen]\ninbound = 0.0.0.0:15006\noutbound = off\nadmin = [::1]:15000\n"
	"service.ratings = 127.0.0.1:15002\nservice.r.x = 127.0.0.1:15003\nservice.r.y = 127.0.0.1:15004\n"
	"[proxy]\nmax_request_line = 1000\nmax_header_size = 1m\nmax_headers = 20\nheader_timeout = 1.5s\n"
	"idle_timeout = 0\nconnect_timeout = 250ms\nrequest_timeout = 1m30s\ndrain_timeout = 30m\n"
	"[log]\naccess_log = /var/log/mesh access.log\naccess_log_format = json\nlevel = warn\n"
	"[mesh]\ndomain = corp.example\n"
	"[service reviews]\nnamespace = shop\nport = 9080\nendpoint = 127.0.0.1:9081 version=v2\n"
	"[service ratings]\nnamespace = shop\nendpoint = [::1]:9082 version=v1, zone=eu-1\nendpoint = 127.0.0.1:9083\n"
	"[service r]\nnamespace = x\n[service r]\nnamespace = y\nendpoint = :7\n";

static int same_conf(const struct conf *a, const struct conf *b)
{
	size_t i, j;

	if (strcmp(a->workload.service, b->workload.service) || strcmp(a->workload.namespace, b->workload.namespace) ||
	    strcmp(a->workload.service_account, b->workload.service_account) ||
	    strcmp(a->workload.version, b->workload.version) || strcmp(a->workload.app.text, b->workload.app.text) ||
	    a->workload.labels.n != b->workload.labels.n)
		return 0;
	if (a->listen.inbound.set != b->listen.inbound.set || a->listen.outbound.set != b->listen.outbound.set ||
	    strcmp(a->listen.admin.text, b->listen.admin.text) || strcmp(a->listen.inbound.text, b->listen.inbound.text))
		return 0;
	if (memcmp(&a->proxy, &b->proxy, sizeof(a->proxy)) || strcmp(a->mesh.domain, b->mesh.domain))
		return 0;
	if (strcmp(a->log.access_log, b->log.access_log) || a->log.access_log_json != b->log.access_log_json ||
	    a->log.level != b->log.level || a->n_services != b->n_services)
		return 0;
	for (i = 0; i < a->n_services; i++) {
		const struct conf_service *x = &a->services[i], *y = &b->services[i];

		if (strcmp(x->name, y->name) || strcmp(x->namespace, y->namespace) || x->port != y->port ||
		    x->n_endpoints != y->n_endpoints || x->listen.set != y->listen.set ||
		    strcmp(x->listen.text, y->listen.text))
			return 0;
		for (j = 0; j < x->n_endpoints; j++)
			if (strcmp(x->endpoints[j].addr.text, y->endpoints[j].addr.text) ||
			    x->endpoints[j].labels.n != y->endpoints[j].labels.n ||
			    memcmp(&x->endpoints[j].addr.ss, &y->endpoints[j].addr.ss, sizeof(x->endpoints[j].addr.ss)))
				return 0;
	}
	return 1;
}

static void test_render(void)
{
	struct conf *a = load(full), *b;
	char *r1, *r2;

	TEST("render: full config loads", a != NULL);
	if (!a) {
		printf("  %s\n", err);
		return;
	}
	r1 = conf_render(a);
	TEST("render: has sections and defaults", strstr(r1, "\n[proxy]\n") && strstr(r1, "stream_idle_timeout   = 5m\n") &&
	     strstr(r1, "header_timeout        = 1500ms\n") && strstr(r1, "[service r]\nnamespace = x\nport      = 80\n") &&
	     strstr(r1, "service.r.x     = 127.0.0.1:15003\n") && strstr(r1, "outbound        = off\n") &&
	     strstr(r1, "endpoint  = [::1]:9082 version=v1, zone=eu-1\n"));
	b = conf_load_string("t.ini", r1, err, sizeof(err));
	TEST("render: re-parses", b != NULL);
	if (!b)
		printf("  %s\n---\n%s---\n", err, r1);
	if (b) {
		r2 = conf_render(b);
		TEST("render: re-parsed config is equivalent", same_conf(a, b));
		TEST("render: rendering is a fixed point", !strcmp(r1, r2));
		free(r2);
		conf_unref(b);
	}
	free(r1);
	conf_unref(a);

	a = load("");
	r1 = conf_render(a);
	b = conf_load_string("t.ini", r1, err, sizeof(err));
	TEST("render: defaults round trip", b && !memcmp(&a->proxy, &b->proxy, sizeof(a->proxy)) &&
	     !b->workload.service && !b->listen.inbound.set && b->listen.outbound.set);
	free(r1);
	conf_unref(a);
	conf_unref(b);
	r1 = conf_render(NULL);
	TEST("render NULL: empty string", r1 && !*r1);
	free(r1);
}

static void test_refcount(void)
{
	struct conf *c = load("[service a]\nendpoint = :1 x=y\n");

	TEST("ref returns the same object", c && conf_ref(c) == c && c->refs == 2);
	conf_unref(c);
	TEST("unref keeps it while referenced", c->refs == 1 && c->n_services == 1);
	conf_unref(c);                          /* freed here: ASan/LSan check the rest */
	conf_unref(NULL);
	TEST("ref/unref NULL", conf_ref(NULL) == NULL);
}

static void test_examples(void)
{
	static const char *const files[] = {
		"../../conf/quickstart/mesh.ini", "../../conf/quickstart/proxy-client.ini", "../../conf/quickstart/proxy-hello-v1.ini",
	};
	struct conf *c[3];
	size_t i;

	for (i = 0; i < 3; i++) {
		c[i] = conf_load(files[i], err, sizeof(err));
		if (!c[i])
			printf("  %s: %s\n", files[i], err);
	}
	TEST("example mesh.ini loads", c[0] && c[0]->n_services == 2 && c[0]->services[0].n_endpoints == 2 &&
	     c[0]->n_warnings == 0);
	TEST("example proxy-client.ini: client only", c[1] && !c[1]->workload.service && !c[1]->listen.inbound.set &&
	     !strcmp(c[1]->listen.outbound.text, "127.0.0.1:15001") && !strcmp(c[1]->listen.admin.text, "127.0.0.1:15000") &&
	     c[1]->n_services == 2 && c[1]->n_warnings == 0);
	TEST("example proxy-hello-v1.ini", c[2] && !strcmp(c[2]->workload.service, "hello") &&
	     !strcmp(c[2]->workload.version, "v1") && !strcmp(c[2]->workload.app.text, "127.0.0.1:8081") &&
	     !strcmp(c[2]->listen.inbound.text, "127.0.0.1:15106") && !strcmp(c[2]->listen.admin.text, "127.0.0.1:15100") &&
	     !strcmp(c[2]->listen.outbound.text, "127.0.0.1:15101") && c[2]->n_services == 2 && c[2]->n_warnings == 0);
	TEST("example: hello resolves from the client", c[1] && conf_find_service(c[1], "hello", 5, NULL) == &c[1]->services[0]);
	for (i = 0; i < 3; i++)
		conf_unref(c[i]);
}

int main(void)
{
	test_defaults();
	test_durations();
	test_sizes_counts();
	test_addrs();
	test_labels_bools();
	test_log();
	test_errors();
	test_warnings();
	test_syntax_forms();
	test_include();
	test_find_service();
	test_render();
	test_refcount();
	test_examples();
	return test_report();
}
