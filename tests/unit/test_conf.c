/*
 * conf: value parsers, schema errors (exact "file:line:" and suggestions),
 * mesh includes, conf_find_service host forms, render round trip, refcounts,
 * the shipped examples, and traffic management: [destination] (keys, aliases,
 * resolution, subset overrides), [route] (matches, actions, every error kind),
 * the seed's Lab 2 and the render round trip of both.
 * Runs under ASan/LSan: every conf is unref'd.
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
	     strstr(r1, "header_timeout        = 1500ms\n") && strstr(r1, "[service r]\nnamespace       = x\nport            = 80\n") &&
	     strstr(r1, "service.r.x     = 127.0.0.1:15003\n") && strstr(r1, "outbound        = off\n") &&
	     strstr(r1, "endpoint        = [::1]:9082 version=v1, zone=eu-1\n"));
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

/* ------------------------------------------------------------ traffic management (issue #3) */

/* services and a destination rule: 11 lines, so a following [route] is line 12 */
static const char S[] =
	"[service reviews]\nport = 9080\nendpoint = 127.0.0.1:9081 version=v1\n"
	"endpoint = 127.0.0.1:9082 version=v2\nendpoint = 127.0.0.1:9083 version=v3\n"
	"[service ratings]\nendpoint = 127.0.0.1:9091 version=v1\n"
	"[destination reviews]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\nsubset.v3 = version=v3\n";

static const char *withS(const char *tail)
{
	static char buf[16384];

	snprintf(buf, sizeof(buf), "%s%s", S, tail);
	return buf;
}

static const struct conf_service *svc_named(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; c && i < c->n_services; i++)
		if (!strcmp(c->services[i].name, name))
			return &c->services[i];
	return NULL;
}

static int has_warning(const struct conf *c, const char *text)
{
	size_t i;

	for (i = 0; c && i < c->n_warnings; i++)
		if (!strcmp(c->warnings[i], text))
			return 1;
	if (c) {
		printf("  warning not found: %s\n", text);
		for (i = 0; i < c->n_warnings; i++)
			printf("  have: %s\n", c->warnings[i]);
	}
	return 0;
}

static int re_full(const struct conf_strmatch *m, const char *s)
{
	return m->kind == CONF_MATCH_REGEX && m->re && regexec(m->re, s, 0, NULL, 0) == 0;
}

static void test_proxy_retry_keys(void)
{
	struct conf *c = load("");

	TEST("retry_buffer default 64k", c && c->proxy.retry_buffer == 65536);
	TEST("retry_budget_percent default 20", c && c->proxy.retry_budget_percent == 20);
	conf_unref(c);
	c = load("[proxy]\nretry_buffer = 1m\nretry_budget_percent = 0\n");
	TEST("retry_buffer and retry_budget_percent set", c && c->proxy.retry_buffer == 1048576 &&
	     c->proxy.retry_budget_percent == 0);
	conf_unref(c);
	c = load("[proxy]\nretry_buffer = 0\nretry_budget_percent = 100\n");
	TEST("retry_buffer 0 (no replay), budget 100", c && c->proxy.retry_buffer == 0 && c->proxy.retry_budget_percent == 100);
	conf_unref(c);
	TEST("retry_buffer at most 16m", fails_first("[proxy]\nretry_buffer = 17m\n",
	     "t.ini:2: retry_buffer = 17m: out of range (allowed 0..16m)"));
	TEST("retry_budget_percent at most 100", fails_first("[proxy]\nretry_budget_percent = 101\n",
	     "t.ini:2: retry_budget_percent = 101: out of range (allowed 0..100)"));
	TEST("retry_budget_percent is a number", fails_with("[proxy]\nretry_budget_percent = 20%\n",
	     "retry_budget_percent = 20%: not a number"));
}

static void test_destination_defaults(void)
{
	struct conf *c = load("[service a]\nendpoint = :1\n");
	const struct conf_policy *p;

	TEST("no destination rule: conf_destination_of NULL", c && !conf_destination_of(c, &c->services[0]) &&
	     c->n_destinations == 0 && c->n_routes == 0);
	p = c ? conf_policy_of(c, &c->services[0], -1) : NULL;
	TEST("default policy: peak_ewma, outlier 10s/30s/10%/0%, the rest 0", p && p->lb == CONF_LB_PEAK_EWMA &&
	     p->hash_on == CONF_HASH_NONE && !p->hash_key && !p->max_connections && !p->max_pending_requests &&
	     !p->max_requests_per_connection && !p->max_concurrent_requests && !p->connect_timeout &&
	     !p->outlier_consecutive_5xx && !p->outlier_consecutive_gateway_errors && p->outlier_interval == 10000 &&
	     p->outlier_base_ejection_time == 30000 && p->outlier_max_ejection_percent == 10 &&
	     p->outlier_min_health_percent == 0);
	TEST("default policy for any subset index and NULL", c && conf_policy_of(c, &c->services[0], 3) == p &&
	     conf_policy_of(c, NULL, -1) == p && conf_policy_of(NULL, NULL, -1) == p);
	conf_unref(c);

	c = load("[service a]\nendpoint = :1\n[destination a]\n");
	p = c ? conf_policy_of(c, &c->services[0], -1) : NULL;
	TEST("empty destination rule: the same defaults", p && c->n_destinations == 1 &&
	     conf_destination_of(c, &c->services[0]) == &c->destinations[0] && c->services[0].destination == &c->destinations[0] &&
	     c->destinations[0].svc == &c->services[0] && p == &c->destinations[0].policy && p->lb == CONF_LB_PEAK_EWMA &&
	     p->outlier_interval == 10000 && p->outlier_base_ejection_time == 30000 && p->outlier_max_ejection_percent == 10 &&
	     !p->max_connections && c->destinations[0].line == 3 && !strcmp(c->destinations[0].file, "t.ini"));
	{
		struct conf *other = load("[service a]\nendpoint = :1\n[destination a]\n");

		TEST("a service of another config has no rule here (no stale pointers across a reload)",
		     c && other && !conf_destination_of(other, &c->services[0]) &&
		     conf_policy_of(other, &c->services[0], -1)->lb == CONF_LB_PEAK_EWMA &&
		     conf_policy_of(other, &c->services[0], -1) != &other->destinations[0].policy);
		conf_unref(other);
	}
	conf_unref(c);
}

static void test_destination_keys(void)
{
	struct conf *c;
	const struct conf_destination *d;
	const struct conf_policy *p;
	static const struct { const char *w; enum conf_lb lb; } lbs[] = {
		{ "peak_ewma", CONF_LB_PEAK_EWMA }, { "round_robin", CONF_LB_ROUND_ROBIN },
		{ "least_request", CONF_LB_LEAST_REQUEST }, { "random", CONF_LB_RANDOM },
		{ "ROUND_ROBIN", CONF_LB_ROUND_ROBIN }, { "LEAST_REQUEST", CONF_LB_LEAST_REQUEST }, { "RANDOM", CONF_LB_RANDOM },
		{ "Peak_EWMA", CONF_LB_PEAK_EWMA },
	};
	char text[512];
	size_t i;
	int ok = 1;

	c = load("[service reviews]\nendpoint = :1 version=v1\nendpoint = :2 version=v2\n"
	         "[destination reviews]\n"
	         "subset.v1 = version=v1\n"
	         "subset.v2 = version=v2, zone=a\n"
	         "load_balancer = least_request\n"
	         "max_connections = 10\n"
	         "max_pending_requests = 11\n"
	         "max_requests_per_connection = 2\n"
	         "max_concurrent_requests = 100\n"
	         "connect_timeout = 250ms\n"
	         "outlier.consecutive_5xx = 3\n"
	         "outlier.consecutive_gateway_errors = 4\n"
	         "outlier.interval = 30s\n"
	         "outlier.base_ejection_time = 1m\n"
	         "outlier.max_ejection_percent = 50\n"
	         "outlier.min_health_percent = 25\n");
	d = c ? conf_destination_of(c, &c->services[0]) : NULL;
	p = d ? &d->policy : NULL;
	TEST("destination: every policy key", p && p->lb == CONF_LB_LEAST_REQUEST && p->max_connections == 10 &&
	     p->max_pending_requests == 11 && p->max_requests_per_connection == 2 && p->max_concurrent_requests == 100 &&
	     p->connect_timeout == 250 && p->outlier_consecutive_5xx == 3 && p->outlier_consecutive_gateway_errors == 4 &&
	     p->outlier_interval == 30000 && p->outlier_base_ejection_time == 60000 &&
	     p->outlier_max_ejection_percent == 50 && p->outlier_min_health_percent == 25);
	TEST("destination: subsets in order, with labels and lines", d && d->n_subsets == 2 &&
	     !strcmp(d->subsets[0].name, "v1") && d->subsets[0].line == 5 && d->subsets[0].labels.n == 1 &&
	     !strcmp(d->subsets[1].name, "v2") && d->subsets[1].labels.n == 2 &&
	     !strcmp(conf_label(&d->subsets[1].labels, "zone"), "a") && d->subsets[1].line == 6);
	TEST("destination: subsets inherit the policy", d && d->n_subsets == 2 &&
	     d->subsets[1].policy.max_connections == 10 && d->subsets[1].policy.lb == CONF_LB_LEAST_REQUEST &&
	     conf_policy_of(c, &c->services[0], 1) == &d->subsets[1].policy &&
	     conf_policy_of(c, &c->services[0], 7) == &d->policy && conf_policy_of(c, &c->services[0], -1) == &d->policy);
	TEST("destination: subset v2 (zone=a) matches no endpoint -> warning",
	     has_warning(c, "t.ini:6: warning: subset 'v2' of reviews matches no endpoint") && c->n_warnings == 1);
	conf_unref(c);

	for (i = 0; i < sizeof(lbs) / sizeof(lbs[0]); i++) {
		snprintf(text, sizeof(text), "[service a]\nendpoint = :1\n[destination a]\nload_balancer = %s\n", lbs[i].w);
		c = load(text);
		if (!c || c->destinations[0].policy.lb != lbs[i].lb || c->n_warnings)
			ok = 0, printf("  load_balancer = %s: %s\n", lbs[i].w, c ? "wrong" : err);
		conf_unref(c);
	}
	TEST("load_balancer names, any case, Istio spellings", ok);
	c = load("[service a]\nendpoint = :1\n[destination a]\nload_balancer = LEAST_CONN\n");
	TEST("LEAST_CONN = least_request with a warning", c && c->destinations[0].policy.lb == CONF_LB_LEAST_REQUEST &&
	     has_warning(c, "t.ini:4: warning: 'LEAST_CONN' is the old name, use least_request"));
	conf_unref(c);
	c = load("[service a]\nendpoint = :1\n[destination a]\nload_balancer = least_conn\n");
	TEST("least_conn likewise", c && c->destinations[0].policy.lb == CONF_LB_LEAST_REQUEST &&
	     has_warning(c, "t.ini:4: warning: 'least_conn' is the old name, use least_request"));
	conf_unref(c);
	TEST("unknown load_balancer lists the names", fails_first("[service a]\n[destination a]\nload_balancer = fastest\n",
	     "t.ini:3: load_balancer = fastest: expected one of: peak_ewma, round_robin, least_request, random, ring_hash, maglev"));
	TEST("load_balancer typo gets a suggestion", fails_with("[service a]\n[destination a]\nload_balancer = round_robn\n",
	     "(did you mean 'round_robin'?)"));
	TEST("PASSTHROUGH is not supported", fails_with("[service a]\n[destination a]\nload_balancer = PASSTHROUGH\n",
	     "expected one of:"));

	c = load("[service a]\nendpoint = :1\n[destination a]\nload_balancer = ring_hash\nhash_on = header:X-User\n");
	TEST("ring_hash on a header (name lowercased)", c && c->destinations[0].policy.lb == CONF_LB_RING_HASH &&
	     c->destinations[0].policy.hash_on == CONF_HASH_HEADER && !strcmp(c->destinations[0].policy.hash_key, "x-user"));
	conf_unref(c);
	c = load("[service a]\nendpoint = :1\n[destination a]\nhash_on = cookie:session\nload_balancer = MAGLEV\n");
	TEST("maglev on a cookie (hash_on before load_balancer)", c && c->destinations[0].policy.lb == CONF_LB_MAGLEV &&
	     c->destinations[0].policy.hash_on == CONF_HASH_COOKIE && !strcmp(c->destinations[0].policy.hash_key, "session"));
	conf_unref(c);
	c = load("[service a]\nendpoint = :1\n[destination a]\nload_balancer = maglev\nhash_on = query:user_id\n");
	TEST("hash on a query parameter", c && c->destinations[0].policy.hash_on == CONF_HASH_QUERY &&
	     !strcmp(c->destinations[0].policy.hash_key, "user_id"));
	conf_unref(c);
	c = load("[service a]\nendpoint = :1\n[destination a]\nload_balancer = ring_hash\nhash_on = source_ip\n");
	TEST("hash on the source IP", c && c->destinations[0].policy.hash_on == CONF_HASH_SOURCE_IP &&
	     !c->destinations[0].policy.hash_key);
	conf_unref(c);
	TEST("hash_on without ring_hash/maglev", fails_first("[service a]\n[destination a]\nload_balancer = least_request\nhash_on = header:x\n",
	     "t.ini:4: hash_on needs load_balancer = ring_hash or maglev (here it is least_request)"));
	TEST("hash_on with the default peak_ewma", fails_first("[service a]\n[destination a]\nhash_on = source_ip\n",
	     "t.ini:3: hash_on needs load_balancer = ring_hash or maglev (here it is peak_ewma)"));
	TEST("ring_hash without hash_on", fails_first("[service a]\n[destination a]\nload_balancer = ring_hash\n",
	     "t.ini:3: load_balancer = ring_hash needs hash_on = header:NAME, cookie:NAME, query:NAME or source_ip"));
	TEST("hash_on forms", fails_first("[service a]\n[destination a]\nload_balancer = maglev\nhash_on = ip\n",
	     "t.ini:4: hash_on = ip: expected header:NAME, cookie:NAME, query:NAME or source_ip"));
	TEST("hash_on bad header name", fails_with("[service a]\n[destination a]\nload_balancer = maglev\nhash_on = header:a b\n",
	     "is not a header name"));
	TEST("hash_on bad query name", fails_with("[service a]\n[destination a]\nload_balancer = maglev\nhash_on = query:a&b\n",
	     "is not a query parameter name"));

	TEST("max_ejection_percent 0..100", fails_first("[service a]\n[destination a]\noutlier.max_ejection_percent = 101\n",
	     "t.ini:3: outlier.max_ejection_percent = 101: out of range (allowed 0..100)"));
	TEST("min_health_percent 0..100", fails_with("[service a]\n[destination a]\noutlier.min_health_percent = 200\n",
	     "out of range (allowed 0..100)"));
	TEST("counts are numbers", fails_first("[service a]\n[destination a]\nmax_connections = -1\n",
	     "t.ini:3: max_connections = -1: not a number"));
	TEST("outlier.interval needs a unit", fails_with("[service a]\n[destination a]\noutlier.interval = 30\n",
	     "missing unit (write 30s or 30ms)"));
	TEST("outlier.interval = 0 refused", fails_with("[service a]\n[destination a]\noutlier.interval = 0\n",
	     "out of range (allowed 1ms..24h)"));
	TEST("connect_timeout at most 10m", fails_with("[service a]\n[destination a]\nconnect_timeout = 11m\n",
	     "out of range (allowed 0..10m)"));
	TEST("duplicate policy key", fails_first("[service a]\n[destination a]\nmax_connections = 1\nmax_connections = 2\n",
	     "t.ini:4: duplicate key 'max_connections' in [destination a] (first set at t.ini:3)"));
	TEST("unknown key in [destination] with suggestion", fails_first("[service a]\n[destination a]\nmax_conections = 1\n",
	     "t.ini:3: unknown key 'max_conections' in [destination a] (did you mean 'max_connections'?)"));
	TEST("route key in [destination]", fails_first("[service a]\n[destination a]\nretries = 1\n",
	     "t.ini:3: unknown key 'retries' in [destination a] (it belongs in [route HOST/NAME])"));
	TEST("misspelt outlier. prefix", fails_with("[service a]\n[destination a]\noutlyer.interval = 1s\n",
	     "(did you mean 'outlier.interval'?)"));
	TEST("subset alone", fails_first("[service a]\n[destination a]\nsubset = version=v1\n",
	     "t.ini:3: unknown key 'subset' in [destination a] (write subset.NAME = labels (e.g. subset.v1 = version=v1))"));
	TEST("subset name is a DNS label", fails_first("[service a]\n[destination a]\nsubset.V1 = version=v1\n",
	     "t.ini:3: subset.V1 = version=v1: a subset name is a DNS label (1-63 of a-z 0-9 -)"));
	TEST("subset defined twice", fails_first("[service a]\n[destination a]\nsubset.v1 = version=v1\nsubset.v1 = version=v2\n",
	     "t.ini:4: subset 'v1' is already defined at line 3"));
	TEST("subset needs labels", fails_first("[service a]\n[destination a]\nsubset.v1 =\n", "t.ini:3: subset.v1 = : empty value"));
	TEST("subset bad labels", fails_with("[service a]\n[destination a]\nsubset.v1 = version\n", "needs a value"));
	TEST("destination name must be a service name", fails_first("[destination Reviews]\n",
	     "t.ini:1: invalid service name 'Reviews' in [destination Reviews]"));
	TEST("destination name with a namespace", fails_with("[destination reviews.prod]\n",
	     "one DNS label; put the namespace in 'namespace ='"));
	TEST("[destination] needs a name", fails_first("[destination]\n", "t.ini:1: [destination] needs a name: [destination SERVICE]"));
}

static void test_destination_aliases(void)
{
	struct conf *c;
	const struct conf_policy *p;

	c = load("[service a]\nendpoint = :1\n[destination a]\noutlier.consecutive_errors = 3\n");
	TEST("outlier.consecutive_errors -> consecutive_5xx, warned", c &&
	     c->destinations[0].policy.outlier_consecutive_5xx == 3 && c->n_warnings == 1 &&
	     has_warning(c, "t.ini:4: warning: 'consecutive_errors' is the old name (Istio's consecutiveErrors), "
	                    "use outlier.consecutive_5xx"));
	conf_unref(c);
	c = load("[service a]\nendpoint = :1\n[destination a]\n"
	         "circuit_breaker.consecutive_errors = 3\n"
	         "circuit_breaker.consecutive_gateway_errors = 4\n"
	         "circuit_breaker.interval = 30s\n"
	         "circuit_breaker.base_ejection_time = 45s\n"
	         "circuit_breaker.max_ejection_percent = 60\n"
	         "circuit_breaker.min_health_percent = 20\n");
	p = c ? &c->destinations[0].policy : NULL;
	TEST("circuit_breaker.* set the outlier keys", p && p->outlier_consecutive_5xx == 3 &&
	     p->outlier_consecutive_gateway_errors == 4 && p->outlier_interval == 30000 &&
	     p->outlier_base_ejection_time == 45000 && p->outlier_max_ejection_percent == 60 &&
	     p->outlier_min_health_percent == 20 && c->n_warnings == 6);
	TEST("circuit_breaker.consecutive_errors warning", has_warning(c,
	     "t.ini:4: warning: 'consecutive_errors' is the old name (Istio's consecutiveErrors), use outlier.consecutive_5xx"));
	TEST("circuit_breaker.X warning names outlier.X", has_warning(c,
	     "t.ini:6: warning: 'circuit_breaker.interval' is the old name (the seed's circuitBreaker), use outlier.interval") &&
	     has_warning(c, "t.ini:9: warning: 'circuit_breaker.min_health_percent' is the old name (the seed's "
	                    "circuitBreaker), use outlier.min_health_percent"));
	conf_unref(c);
	c = load("[service a]\nendpoint = :1\n[destination a]\ncircuit_breaker.consecutive_5xx = 2\n");
	TEST("circuit_breaker.consecutive_5xx", c && c->destinations[0].policy.outlier_consecutive_5xx == 2 &&
	     has_warning(c, "t.ini:4: warning: 'circuit_breaker.consecutive_5xx' is the old name (the seed's circuitBreaker), "
	                    "use outlier.consecutive_5xx"));
	conf_unref(c);
	TEST("old and new name for one key: duplicate", fails_first(
	     "[service a]\n[destination a]\noutlier.consecutive_5xx = 5\noutlier.consecutive_errors = 3\n",
	     "t.ini:4: duplicate key 'outlier.consecutive_errors' in [destination a]: it sets outlier.consecutive_5xx, "
	     "already set at t.ini:3"));
	TEST("alias values are validated like the key", fails_first("[service a]\n[destination a]\ncircuit_breaker.interval = 30\n",
	     "t.ini:3: circuit_breaker.interval = 30: missing unit (write 30s or 30ms)"));
	TEST("aliases are not listed as known keys", fails_with("[service a]\n[destination a]\nzzzzzz = 1\n", "(known: namespace,") &&
	     !strstr(err, "circuit_breaker"));
}

static void test_destination_resolution(void)
{
	struct conf *c;
	const struct conf_destination *d;

	TEST("unknown service with suggestion", fails_first("[service reviews]\nendpoint = :1\n[destination reviwes]\n",
	     "t.ini:3: [destination reviwes]: unknown service 'reviwes' (did you mean 'reviews'?)"));
	TEST("duplicate destination rule", fails_first("[service a]\nendpoint = :1\n[destination a]\n[destination a]\n",
	     "t.ini:4: duplicate [destination a] (first defined at t.ini:3)"));
	TEST("ambiguous service name", fails_first("[service r]\nnamespace = x\n[service r]\nnamespace = y\n[destination r]\n",
	     "t.ini:5: [destination r]: ambiguous: service r exists in namespaces x, y; add namespace = NAMESPACE"));
	c = load("[service r]\nnamespace = x\nendpoint = :1\n[service r]\nnamespace = y\nendpoint = :2\n"
	         "[destination r]\nnamespace = y\nmax_connections = 7\n");
	TEST("namespace = picks the service", c && c->n_destinations == 1 && c->destinations[0].svc == &c->services[1] &&
	     conf_policy_of(c, &c->services[1], -1)->max_connections == 7 &&
	     conf_policy_of(c, &c->services[0], -1)->max_connections == 0);
	conf_unref(c);
	c = load("[workload]\nnamespace = x\n[service r]\nnamespace = x\nendpoint = :1\n[service r]\nnamespace = y\nendpoint = :2\n"
	         "[destination r]\nmax_connections = 7\n");
	TEST("else the workload's namespace", c && c->destinations[0].svc == &c->services[0]);
	conf_unref(c);
	TEST("namespace without that service", fails_first("[service r]\nnamespace = x\n[destination r]\nnamespace = z\n",
	     "t.ini:3: [destination r]: there is no service r in namespace z (it is in: x)"));
	c = load("[service r]\nnamespace = x\nendpoint = :1\n[destination r]\n");
	TEST("a single service in another namespace", c && c->destinations[0].svc == &c->services[0]);
	conf_unref(c);
	c = load("[service r]\nnamespace = x\nendpoint = :1\n[service r]\nnamespace = y\nendpoint = :2\n"
	         "[destination r]\nnamespace = x\n[destination r]\nnamespace = y\n");
	TEST("one rule per namespace is no duplicate", c && c->n_destinations == 2 &&
	     c->services[0].destination == &c->destinations[0] && c->services[1].destination == &c->destinations[1]);
	conf_unref(c);
	c = load("[destination late]\nsubset.v1 = version=v1\n[service late]\nendpoint = :1 version=v1\n");
	d = c ? conf_destination_of(c, &c->services[0]) : NULL;
	TEST("destination before its service", d && d->n_subsets == 1 && c->n_warnings == 0);
	conf_unref(c);
}

static void test_subset_overrides(void)
{
	struct conf *c;
	const struct conf_destination *d;
	const struct conf_policy *p1, *p2, *p3;

	c = load("[service reviews]\nendpoint = :1 version=v1\nendpoint = :2 version=v2\nendpoint = :3 version=v3\n"
	         "[destination reviews/v2]\n"              /* 5: before its parent */
	         "max_connections = 99\n"
	         "load_balancer = ring_hash\n"
	         "hash_on = cookie:s\n"
	         "[destination reviews]\n"                 /* 9 */
	         "subset.v1 = version=v1\nsubset.v2 = version=v2\nsubset.v3 = version=v3\n"
	         "load_balancer = round_robin\nmax_connections = 10\nmax_pending_requests = 5\noutlier.interval = 20s\n"
	         "[destination reviews/v3]\n"              /* 17 */
	         "outlier.interval = 1s\ncircuit_breaker.consecutive_errors = 9\n");
	d = c ? conf_destination_of(c, &c->services[0]) : NULL;
	p1 = c ? conf_policy_of(c, &c->services[0], 0) : NULL;
	p2 = c ? conf_policy_of(c, &c->services[0], 1) : NULL;
	p3 = c ? conf_policy_of(c, &c->services[0], 2) : NULL;
	TEST("overrides: config loads", d != NULL);
	if (!d) {
		printf("  %s\n", err);
		return;
	}
	TEST("subset without override = the parent's policy", p1->lb == CONF_LB_ROUND_ROBIN && p1->max_connections == 10 &&
	     p1->max_pending_requests == 5 && p1->outlier_interval == 20000 && p1 != &d->policy);
	TEST("override (before the parent in the file) replaces only its keys", p2->max_connections == 99 &&
	     p2->lb == CONF_LB_RING_HASH && p2->hash_on == CONF_HASH_COOKIE && !strcmp(p2->hash_key, "s") &&
	     p2->max_pending_requests == 5 && p2->outlier_interval == 20000);
	TEST("override after the parent; alias inside an override", p3->outlier_interval == 1000 &&
	     p3->outlier_consecutive_5xx == 9 && p3->max_connections == 10 && p3->lb == CONF_LB_ROUND_ROBIN);
	TEST("parent untouched by overrides", d->policy.max_connections == 10 && d->policy.outlier_interval == 20000 &&
	     d->policy.hash_on == CONF_HASH_NONE);
	conf_unref(c);

	c = load("[service a]\nendpoint = :1 v=1\n[destination a]\nsubset.one = v=1\nsubset.two = v=1\n"
	         "load_balancer = maglev\nhash_on = header:x-user\n[destination a/one]\nload_balancer = random\n"
	         "[destination a/two]\nhash_on = source_ip\n");
	TEST("override to a non-hashing LB drops the inherited hash_on; hash_on alone overrides the key",
	     c && conf_policy_of(c, &c->services[0], 0)->lb == CONF_LB_RANDOM &&
	     conf_policy_of(c, &c->services[0], 0)->hash_on == CONF_HASH_NONE && !conf_policy_of(c, &c->services[0], 0)->hash_key &&
	     conf_policy_of(c, &c->services[0], 1)->lb == CONF_LB_MAGLEV &&
	     conf_policy_of(c, &c->services[0], 1)->hash_on == CONF_HASH_SOURCE_IP);
	conf_unref(c);

	TEST("override of an undefined subset", fails_first("[service reviews]\n[destination reviews]\nsubset.v1 = version=v1\n"
	     "subset.v2 = version=v2\n[destination reviews/v4]\nmax_connections = 1\n",
	     "t.ini:5: [destination reviews/v4]: unknown subset 'v4' (subsets of reviews: v1, v2)"));
	TEST("override without a destination rule", fails_first("[service reviews]\n[destination reviews/v1]\n",
	     "t.ini:2: [destination reviews/v1]: subset v1 is not defined: there is no [destination reviews] with subset.v1 = LABELS"));
	TEST("override of an unknown service", fails_with("[service reviews]\n[destination reveiws/v1]\n",
	     "t.ini:2: [destination reveiws/v1]: unknown service 'reveiws' (did you mean 'reviews'?)"));
	TEST("duplicate override", fails_first("[service a]\n[destination a]\nsubset.v1 = v=1\n[destination a/v1]\n"
	     "max_connections = 1\n[destination a/v1]\nmax_connections = 2\n",
	     "t.ini:6: duplicate [destination a/v1] (first defined at t.ini:4)"));
	TEST("subset.* inside an override", fails_first("[service a]\n[destination a]\nsubset.v1 = v=1\n[destination a/v1]\n"
	     "subset.v2 = v=2\n", "t.ini:5: 'subset.v2' belongs in [destination a] (this section overrides the policy of subset v1)"));
	TEST("override making ring_hash without hash_on", fails_first("[service a]\n[destination a]\nsubset.v1 = v=1\n"
	     "[destination a/v1]\nload_balancer = ring_hash\n",
	     "t.ini:5: load_balancer = ring_hash needs hash_on"));
	TEST("override with hash_on on a non-hashing LB", fails_first("[service a]\n[destination a]\nsubset.v1 = v=1\n"
	     "[destination a/v1]\nhash_on = header:x\n", "t.ini:5: hash_on needs load_balancer = ring_hash or maglev"));
	TEST("bad subset name in the header", fails_first("[service a]\n[destination a/V1]\n",
	     "t.ini:2: invalid subset name in [destination a/V1]"));
}

static void test_route_basics(void)
{
	struct conf *c;
	const struct conf_route *r;

	c = load(withS("[route reviews]\nto = v1\n"));
	r = c && c->n_routes == 1 ? &c->routes[0] : NULL;
	TEST("[route HOST]: one rule named HOST", r && !strcmp(r->name, "reviews") && r->n_hosts == 1 &&
	     !strcmp(r->hosts[0], "reviews") && r->line == 12 && !strcmp(r->file, "t.ini"));
	TEST("route defaults", r && r->n_matches == 0 && r->redirect_code == 301 && r->fault_delay_percent == 100 &&
	     r->fault_abort_percent == 100 && r->mirror_percent == 100 && !r->mirror.svc && r->mirror.subset == -1 &&
	     !r->timeout && !r->retries && !r->retry_on && !r->per_try_timeout && !r->fault_delay && !r->fault_abort &&
	     !r->direct_status && !r->redirect && !r->rewrite_uri && !r->req_headers.n_set && !r->resp_headers.n_remove);
	TEST("to = bare subset of the host's service, weight 100", r && r->n_to == 1 && r->to[0].svc == svc_named(c, "reviews") &&
	     r->to[0].subset == 0 && r->to[0].weight == 100);
	TEST("no warnings", c && c->n_warnings == 0);
	conf_unref(c);

	c = load(withS("[route reviews/a]\nhosts = reviews.default.svc.cluster.local, Bookinfo.COM, *.example.com\n"
	               "to = v3\n"));
	r = c ? &c->routes[0] : NULL;
	TEST("hosts: service host forms, DNS names (lowercased), wildcards", r && r->n_hosts == 3 &&
	     !strcmp(r->hosts[0], "reviews.default.svc.cluster.local") && !strcmp(r->hosts[1], "bookinfo.com") &&
	     !strcmp(r->hosts[2], "*.example.com") && r->to[0].svc == svc_named(c, "reviews") && r->to[0].subset == 2);
	conf_unref(c);
	c = load(withS("[route bookinfo.com/a]\nhosts = bookinfo.com, reviews\nto = v2\n"));
	TEST("primary service = the first host that names one", c && c->routes[0].to[0].svc == svc_named(c, "reviews") &&
	     c->routes[0].to[0].subset == 1);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nto = ratings\n"));
	TEST("bare NAME that is no subset: the whole service", c && c->routes[0].to[0].svc == svc_named(c, "ratings") &&
	     c->routes[0].to[0].subset == -1);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nto = ratings.default.svc.cluster.local\n"));
	TEST("a service by any host form", c && c->routes[0].to[0].svc == svc_named(c, "ratings"));
	conf_unref(c);
	c = load(withS("[route ratings/a]\nto = reviews/v3\n"));
	TEST("SERVICE/SUBSET", c && c->routes[0].to[0].svc == svc_named(c, "reviews") && c->routes[0].to[0].subset == 2);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nto = v1 80, v2 20\n"));
	r = c ? &c->routes[0] : NULL;
	TEST("weighted split", r && r->n_to == 2 && r->to[0].subset == 0 && r->to[0].weight == 80 &&
	     r->to[1].subset == 1 && r->to[1].weight == 20);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nto = v1 100, v2 0, ratings 0\n"));
	TEST("zero weights are allowed", c && c->routes[0].n_to == 3 && c->routes[0].to[2].subset == -1 &&
	     c->routes[0].to[2].weight == 0);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nto = v1 100\n"));
	TEST("a single destination may carry 100", c && c->routes[0].to[0].weight == 100);
	conf_unref(c);

	TEST("unknown subset lists the subsets", fails_first(withS("[route reviews/default]\nto = v1 80, v4 20\n"),
	     "t.ini:13: route reviews/default: unknown subset 'v4' (subsets of reviews: v1, v2, v3)"));
	TEST("SERVICE/unknown subset", fails_first(withS("[route reviews/default]\nto = reviews/v9\n"),
	     "t.ini:13: route reviews/default: unknown subset 'v9' (subsets of reviews: v1, v2, v3)"));
	TEST("SERVICE/SUBSET of a service without subsets", fails_first(withS("[route reviews/default]\nto = ratings/v1\n"),
	     "t.ini:13: route reviews/default: unknown subset 'v1' (there is no [destination ratings])"));
	TEST("unknown service in SERVICE/SUBSET", fails_first(withS("[route reviews/default]\nto = ratngs/v1\n"),
	     "t.ini:13: route reviews/default: unknown service 'ratngs' (did you mean 'ratings'?)"));
	TEST("bare NAME, host has no service", fails_first(withS("[route bookinfo.com/a]\nto = revews\n"),
	     "t.ini:13: route bookinfo.com/a: unknown service 'revews' (did you mean 'reviews'?)"));
	TEST("bare NAME, host's service has no subsets", fails_first(withS("[route ratings/a]\nto = v1\n"),
	     "t.ini:13: route ratings/a: 'v1' is neither a subset of ratings (it has no [destination]) nor a service"));
	TEST("weights not 100", fails_first(withS("[route reviews/default]\nto = v1 80, v2 10\n"),
	     "t.ini:13: route reviews/default: weights add up to 90, not 100"));
	TEST("weights over 100", fails_with(withS("[route reviews/default]\nto = v1 80, v2 30\n"),
	     "weights add up to 110, not 100"));
	TEST("single destination with weight 50", fails_with(withS("[route reviews/default]\nto = v1 50\n"),
	     "weights add up to 50, not 100"));
	TEST("several destinations without weights", fails_first(withS("[route reviews/default]\nto = v1, v2\n"),
	     "t.ini:13: route reviews/default: several destinations need a weight each (e.g. to = v1 80, v2 20)"));
	TEST("weights on some destinations only", fails_with(withS("[route reviews/default]\nto = v1 50, v2\n"),
	     "t.ini:13: route reviews/default: either every destination in `to` has a weight"));
	TEST("weight out of range", fails_first(withS("[route reviews/default]\nto = v1 101\n"),
	     "t.ini:13: to = v1 101: weight '101' is not a number 0..100"));
	TEST("weight not a number", fails_with(withS("[route reviews/default]\nto = v1 80%, v2 20%\n"),
	     "weight '80%' is not a number 0..100"));
	TEST("stray comma", fails_with(withS("[route reviews/default]\nto = v1 50,, v2 50\n"), "empty destination (stray ',')"));
	TEST("one destination twice", fails_first(withS("[route reviews/default]\nto = v1 50, reviews/v1 50\n"),
	     "t.ini:13: route reviews/default: 'v1' and 'reviews/v1' are the same destination"));
	TEST("bad destination text", fails_with(withS("[route reviews/default]\nto = Reviews/v1\n"),
	     "'Reviews/v1' is not a destination (write SUBSET, SERVICE or SERVICE/SUBSET)"));
	TEST("a port is not a destination", fails_with(withS("[route reviews/default]\nto = ratings:80\n"), "is not a destination"));
	{
		char big[1024] = "[route reviews/a]\nto = ";
		int i;

		for (i = 0; i < 17; i++)
			sprintf(big + strlen(big), "%sv1 %d", i ? ", " : "", i ? 0 : 100);
		strcat(big, "\n");
		TEST("at most 16 destinations", fails_with(withS(big), "at most 16 destinations"));
	}

	TEST("both to and redirect", fails_first(withS("[route reviews/x]\nto = v1\nredirect = /x\n"),
	     "t.ini:14: route reviews/x: needs exactly one of to, redirect, direct_response (found to and redirect)"));
	TEST("both direct_response and redirect: reported at the second", fails_first(withS("[route reviews/x]\ndirect_response = 503\nredirect = /x\n"),
	     "t.ini:14: route reviews/x: needs exactly one of to, redirect, direct_response (found direct_response and redirect)"));
	TEST("all three", fails_first(withS("[route reviews/x]\nredirect = /x\nto = v1\ndirect_response = 503\n"),
	     "t.ini:14: route reviews/x: needs exactly one of to, redirect, direct_response (found redirect and to)") &&
	     !strchr(err, '\n'));
	TEST("no action", fails_first(withS("[route reviews/x]\ntimeout = 1s\n"),
	     "t.ini:12: route reviews/x: needs one of to, redirect, direct_response"));
	TEST("duplicate route", fails_first(withS("[route reviews/x]\nto = v1\n[route reviews/x]\nto = v2\n"),
	     "t.ini:14: duplicate [route reviews/x] (first defined at t.ini:12)"));
	TEST("route host in lowercase", fails_first(withS("[route Reviews/x]\nto = v1\n"),
	     "t.ini:12: invalid host in [route Reviews/x]: write it in lowercase"));
	TEST("rule name", fails_first(withS("[route reviews/Canary]\nto = v1\n"),
	     "t.ini:12: invalid rule name in [route reviews/Canary]: 1-63 of a-z 0-9 - after the '/'"));
	TEST("[route] needs a name", fails_first("[route]\n", "t.ini:1: [route] needs a name: [route HOST/NAME]"));
	TEST("'*' alone", fails_with(withS("[route reviews/x]\nhosts = *\nto = v1\n"), "'*' alone is not supported"));
	TEST("wildcard inside", fails_with(withS("[route reviews/x]\nhosts = a.*.com\nto = v1\n"), "'*' may only be the first label"));
	TEST("host with a port", fails_with(withS("[route reviews/x]\nhosts = reviews:9080\nto = v1\n"),
	     "a route host has no port"));
	TEST("host listed twice", fails_with(withS("[route reviews/x]\nhosts = reviews, REVIEWS\nto = v1\n"),
	     "host 'reviews' is listed twice"));
	TEST("unknown route key lists known ones", fails_with(withS("[route reviews/x]\nxyzzy = 1\nto = v1\n"),
	     "t.ini:13: unknown key 'xyzzy' in [route reviews/x] (known: hosts, match.NAME, to,"));
	TEST("route key typo", fails_first(withS("[route reviews/x]\nretires = 1\nto = v1\n"),
	     "t.ini:13: unknown key 'retires' in [route reviews/x] (did you mean 'retries'?)"));
	TEST("[route] is part of the mesh: unknown sections list it", fails_with("[rout a]\n", "did you mean [route a]?"));
}

static void test_route_matches(void)
{
	struct conf *c;
	const struct conf_route *r;
	const struct conf_match *m;

	c = load(withS("[route reviews/jason]\n"
	               "match.3.header.x-b = absent\n"
	               "match.header.End-User = jason\n"
	               "match.header.x-a = exact:prefix:literal\n"
	               "match.header.x-p = prefix:abc\n"
	               "match.header.x-r = regex:v[12]|beta\n"
	               "match.header.x-q = present\n"
	               "match.path = /exact\n"
	               "match.method = post\n"
	               "match.query.debug = exact:1\n"
	               "match.query.u = regex:[a-z]+\n"
	               "match.query.v = present\n"
	               "match.query.w = absent\n"
	               "match.source = app=productpage, version=v1\n"
	               "match.2.path = prefix:/api\n"
	               "match.5.path = regex:/v[0-9]+/.*\n"
	               "to = v2\n"));
	r = c ? &c->routes[0] : NULL;
	TEST("matches: config loads", r != NULL);
	if (!r) {
		printf("  %s\n", err);
		return;
	}
	TEST("match blocks in number order, gaps allowed", r->n_matches == 4 && r->matches[0].n_headers == 5 &&
	     r->matches[1].has_path && r->matches[2].n_headers == 1 && r->matches[3].has_path);
	m = &r->matches[0];
	TEST("match.path exact", m->has_path && m->path.kind == CONF_MATCH_EXACT && !strcmp(m->path.value, "/exact") && !m->path.re);
	TEST("match.method uppercased", m->method && !strcmp(m->method, "POST"));
	TEST("header names lowercased; exact by default", !strcmp(m->headers[0].name, "end-user") &&
	     m->headers[0].m.kind == CONF_MATCH_EXACT && !strcmp(m->headers[0].m.value, "jason"));
	TEST("exact: keeps the rest literally", m->headers[1].m.kind == CONF_MATCH_EXACT &&
	     !strcmp(m->headers[1].m.value, "prefix:literal"));
	TEST("header prefix", m->headers[2].m.kind == CONF_MATCH_PREFIX && !strcmp(m->headers[2].m.value, "abc"));
	TEST("header regex: compiled, whole-value match", re_full(&m->headers[3].m, "v1") && re_full(&m->headers[3].m, "beta") &&
	     !re_full(&m->headers[3].m, "xv1") && !re_full(&m->headers[3].m, "v1x") && !re_full(&m->headers[3].m, "betas") &&
	     !strcmp(m->headers[3].m.value, "v[12]|beta"));
	TEST("header present", m->headers[4].m.kind == CONF_MATCH_PRESENT);
	TEST("query exact/regex/present/absent", m->n_query == 4 && !strcmp(m->query[0].name, "debug") &&
	     m->query[0].m.kind == CONF_MATCH_EXACT && !strcmp(m->query[0].m.value, "1") && re_full(&m->query[1].m, "abc") &&
	     !re_full(&m->query[1].m, "ab1") && m->query[2].m.kind == CONF_MATCH_PRESENT && m->query[3].m.kind == CONF_MATCH_ABSENT);
	TEST("match.source labels", m->source.n == 2 && !strcmp(conf_label(&m->source, "app"), "productpage"));
	TEST("block 2: path prefix", r->matches[1].path.kind == CONF_MATCH_PREFIX && !strcmp(r->matches[1].path.value, "/api") &&
	     !r->matches[1].method && !r->matches[1].n_headers);
	TEST("block 3 (third): header absent", r->matches[2].headers[0].m.kind == CONF_MATCH_ABSENT &&
	     !strcmp(r->matches[2].headers[0].name, "x-b") && !r->matches[2].has_path);
	TEST("block 5 (fourth): path regex", re_full(&r->matches[3].path, "/v12/x") && !re_full(&r->matches[3].path, "/v/x"));
	conf_unref(c);

	TEST("bad regex: file:line: route NAME: bad regex", fails_first(withS("[route reviews/x]\nmatch.path = regex:[[:foo:]]\nto = v1\n"),
	     "t.ini:13: route reviews/x: bad regex '[[:foo:]]': "));
	TEST("bad regex: unclosed bracket", fails_first(withS("[route reviews/x]\nmatch.header.a = regex:[a\nto = v1\n"),
	     "t.ini:13: route reviews/x: bad regex '[a': unclosed '['"));
	TEST("bad regex: unbalanced parentheses would break anchoring",
	     fails_first(withS("[route reviews/x]\nmatch.query.a = regex:a)|(b\nto = v1\n"),
	                 "t.ini:13: route reviews/x: bad regex 'a)|(b': unmatched ')'") &&
	     fails_with(withS("[route reviews/x]\nmatch.query.a = regex:(a\nto = v1\n"), "unmatched '('"));
	TEST("RE2 \\d: says what to write", fails_first(withS("[route reviews/x]\nmatch.path = regex:/v\\d+\nto = v1\n"),
	     "t.ini:13: route reviews/x: bad regex '/v\\d+': '\\d' is RE2/Perl syntax, not POSIX ERE: write [0-9]"));
	TEST("RE2 \\w and \\s", fails_with(withS("[route reviews/x]\nmatch.path = regex:\\w\nto = v1\n"), "write [[:alnum:]_]") &&
	     fails_with(withS("[route reviews/x]\nmatch.path = regex:\\s\nto = v1\n"), "write [[:space:]]"));
	TEST("RE2 (?i)", fails_with(withS("[route reviews/x]\nmatch.header.u = regex:(?i)jason\nto = v1\n"),
	     "(for case-insensitive letters write [Jj]ason)"));
	TEST("RE2 lazy quantifier", fails_with(withS("[route reviews/x]\nmatch.header.u = regex:a.*?b\nto = v1\n"),
	     "lazy and possessive quantifiers"));
	TEST("[\\d] inside brackets", fails_with(withS("[route reviews/x]\nmatch.header.u = regex:[\\d]\nto = v1\n"),
	     "inside [...] a backslash is an ordinary character"));
	TEST("nested repeats refused", fails_with(withS("[route reviews/x]\nmatch.header.u = regex:((a{100}){100}){100}\nto = v1\n"),
	     "too complex"));
	TEST("repeat counts up to 255", fails_with(withS("[route reviews/x]\nmatch.header.u = regex:a{256}\nto = v1\n"),
	     "repeat counts go up to 255"));
	TEST("empty regex", fails_with(withS("[route reviews/x]\nmatch.header.u = regex:\nto = v1\n"), "bad regex '': empty regex"));
	c = load(withS("[route reviews/x]\nmatch.header.u = regex:[[:digit:]]{1,3}\\.x|\\(y\\)\nto = v1\n"));
	TEST("POSIX classes, counted repeats and escaped punctuation work",
	     c && re_full(&c->routes[0].matches[0].headers[0].m, "123.x") && re_full(&c->routes[0].matches[0].headers[0].m, "(y)") &&
	     !re_full(&c->routes[0].matches[0].headers[0].m, "1234.x"));
	conf_unref(c);

	TEST("query has no prefix:", fails_first(withS("[route reviews/x]\nmatch.query.a = prefix:x\nto = v1\n"),
	     "t.ini:13: match.query.a = prefix:x: prefix: is not available here (use exact: or regex:)"));
	TEST("path has no present", fails_with(withS("[route reviews/x]\nmatch.path = present\nto = v1\n"),
	     "present and absent are for headers and query parameters"));
	TEST("path starts with /", fails_first(withS("[route reviews/x]\nmatch.path = prefix:api\nto = v1\n"),
	     "t.ini:13: match.path = prefix:api: a path starts with '/' (or use regex:)"));
	TEST("method is a token", fails_with(withS("[route reviews/x]\nmatch.method = GET POST\nto = v1\n"), "not a method"));
	TEST("header name validated", fails_with(withS("[route reviews/x]\nmatch.header.a(b = 1\nto = v1\n"), "is not a header name"));
	TEST("query name validated", fails_with(withS("[route reviews/x]\nmatch.query.a$b = 1\nto = v1\n"),
	     "is not a query parameter name"));
	TEST("match.source labels validated", fails_with(withS("[route reviews/x]\nmatch.source = app\nto = v1\n"), "needs a value"));
	TEST("match block 1 is match.X", fails_first(withS("[route reviews/x]\nmatch.1.path = /x\nto = v1\n"),
	     "t.ini:13: 'match.1.path': match blocks are match.X (the first) and match.2.X to match.16.X"));
	TEST("match block 17", fails_with(withS("[route reviews/x]\nmatch.17.path = /x\nto = v1\n"), "match.2.X to match.16.X"));
	TEST("match block 16 is fine", loads(withS("[route reviews/x]\nmatch.16.path = /x\nto = v1\n")));
	TEST("unknown condition with suggestion", fails_first(withS("[route reviews/x]\nmatch.heder.x = 1\nto = v1\n"),
	     "t.ini:13: unknown key 'match.heder.x' in [route reviews/x] (did you mean 'match.header.x'?)"));
	TEST("unknown condition", fails_with(withS("[route reviews/x]\nmatch.2.zzzzzz = 1\nto = v1\n"),
	     "(a match condition is path, method, header.NAME, query.NAME or source)"));
	TEST("match alone", fails_with(withS("[route reviews/x]\nmatch = 1\nto = v1\n"), "(write match.path = ..."));
	TEST("duplicate condition (header names ignore case)",
	     fails_first(withS("[route reviews/x]\nmatch.header.End-User = a\nmatch.header.end-user = b\nto = v1\n"),
	                 "t.ini:14: duplicate key 'match.header.end-user' in [route reviews/x] (first set at t.ini:13)"));
	TEST("same condition in two blocks is fine", loads(withS("[route reviews/x]\nmatch.path = /a\nmatch.2.path = /b\nto = v1\n")));
	TEST("duplicate match.path", fails_with(withS("[route reviews/x]\nmatch.2.path = /a\nmatch.2.path = /b\nto = v1\n"),
	     "duplicate key 'match.2.path'"));
	TEST("a value starting with ';' must be exact:", fails_with(withS("[route reviews/x]\nmatch.header.a=;x\nto = v1\n"),
	     "write exact:;..."));
	c = load(withS("[route reviews/x]\nmatch.header.a = exact:;x\nmatch.header.b = exact:present\nmatch.header.c = exact:\n"
	               "to = v1\n"));
	TEST("exact: for ';', for the words present/absent, for empty", c && !strcmp(c->routes[0].matches[0].headers[0].m.value, ";x") &&
	     c->routes[0].matches[0].headers[1].m.kind == CONF_MATCH_EXACT &&
	     !strcmp(c->routes[0].matches[0].headers[1].m.value, "present") && !strcmp(c->routes[0].matches[0].headers[2].m.value, ""));
	conf_unref(c);
}

static void test_route_actions(void)
{
	struct conf *c;
	const struct conf_route *r;

	c = load(withS("[route reviews/a]\nto = v1\nrewrite.uri = /v2/\nrewrite.authority = reviews.internal:8080\n"
	               "request.set.X-Version = v1\nrequest.add.x-trace = a b c\nrequest.remove = x-debug, Cookie\n"
	               "response.set.cache-control = no-store\nresponse.add.x-served-by = mesh\nresponse.remove = server\n"
	               "timeout = 2s\nretries = 3\nper_try_timeout = 500ms\n"
	               "fault.delay = 1.5s\nfault.delay_percent = 12.5\nfault.abort = 503\nfault.abort_percent = 0.1\n"
	               "mirror = ratings\nmirror_percent = 5\n"));
	r = c ? &c->routes[0] : NULL;
	TEST("actions: config loads", r != NULL);
	if (!r) {
		printf("  %s\n", err);
		return;
	}
	TEST("rewrite", !strcmp(r->rewrite_uri, "/v2/") && !strcmp(r->rewrite_authority, "reviews.internal:8080"));
	TEST("request headers: set/add/remove, names lowercased", r->req_headers.n_set == 1 &&
	     !strcmp(r->req_headers.set[0].name, "x-version") && !strcmp(r->req_headers.set[0].value, "v1") &&
	     r->req_headers.n_add == 1 && !strcmp(r->req_headers.add[0].value, "a b c") && r->req_headers.n_remove == 2 &&
	     !strcmp(r->req_headers.remove[1], "cookie"));
	TEST("response headers", r->resp_headers.n_set == 1 && !strcmp(r->resp_headers.set[0].name, "cache-control") &&
	     r->resp_headers.n_add == 1 && r->resp_headers.n_remove == 1 && !strcmp(r->resp_headers.remove[0], "server"));
	TEST("timeout, retries, per_try_timeout", r->timeout == 2000 && r->retries == 3 && r->per_try_timeout == 500);
	TEST("retry_on default with retries: 5xx, connect-failure, reset",
	     r->retry_on == (CONF_RETRY_5XX | CONF_RETRY_CONNECT_FAILURE | CONF_RETRY_RESET));
	TEST("fault delay and abort with percentages", r->fault_delay == 1500 && r->fault_delay_percent == 12.5 &&
	     r->fault_abort == 503 && r->fault_abort_percent == 0.1);
	TEST("mirror (whole service) and percent", r->mirror.svc == svc_named(c, "ratings") && r->mirror.subset == -1 &&
	     r->mirror_percent == 5);
	conf_unref(c);

	c = load(withS("[route reviews/a]\nto = v1\nretries = 2\nretry_on = gateway-error, retriable-status-codes\n"
	               "retry_status_codes = 503, 429\nmirror = v3\n"));
	r = c ? &c->routes[0] : NULL;
	TEST("explicit retry_on and status codes", r && r->retry_on == (CONF_RETRY_GATEWAY_ERROR | CONF_RETRY_STATUS_CODES) &&
	     r->n_retry_status_codes == 2 && r->retry_status_codes[0] == 503 && r->retry_status_codes[1] == 429);
	TEST("mirror to a subset", r && r->mirror.svc == svc_named(c, "reviews") && r->mirror.subset == 2 && r->mirror_percent == 100);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nto = v1\nretry_on = 5xx, reset, connect-failure\nretries = 1\n"));
	TEST("retry_on words", c && c->routes[0].retry_on == (CONF_RETRY_5XX | CONF_RETRY_RESET | CONF_RETRY_CONNECT_FAILURE));
	conf_unref(c);
	c = load(withS("[route reviews/a]\nredirect = https://bookinfo.com:8443/new?x=1\nredirect.code = 308\n"
	               "response.set.x-why = moved\nfault.delay = 10ms\n"));
	r = c ? &c->routes[0] : NULL;
	TEST("redirect with code, headers and a fault", r && !strcmp(r->redirect, "https://bookinfo.com:8443/new?x=1") &&
	     r->redirect_code == 308 && r->n_to == 0 && r->resp_headers.n_set == 1 && r->fault_delay == 10);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nredirect = /elsewhere\n"));
	TEST("redirect to a path, default 301", c && !strcmp(c->routes[0].redirect, "/elsewhere") && c->routes[0].redirect_code == 301);
	conf_unref(c);
	c = load(withS("[route reviews/a]\nredirect = http://[::1]:8080\n"));
	TEST("redirect to an IPv6 authority without a path", c != NULL);
	conf_unref(c);
	c = load(withS("[route reviews/a]\ndirect_response = 503\ndirect_response.body = {\"error\": \"down for maintenance\"}\n"));
	TEST("direct response with a body", c && c->routes[0].direct_status == 503 &&
	     !strcmp(c->routes[0].direct_body, "{\"error\": \"down for maintenance\"}"));
	conf_unref(c);

	TEST("rewrite.uri starts with /", fails_first(withS("[route reviews/a]\nto = v1\nrewrite.uri = v2\n"),
	     "t.ini:14: rewrite.uri = v2: must start with '/'"));
	TEST("rewrite.uri without spaces", fails_with(withS("[route reviews/a]\nto = v1\nrewrite.uri = /a b\n"),
	     "must be percent-encoded"));
	TEST("rewrite.authority host[:port]", fails_with(withS("[route reviews/a]\nto = v1\nrewrite.authority = a_b\n"),
	     "'a_b' is not a host name") && fails_with(withS("[route reviews/a]\nto = v1\nrewrite.authority = a:0\n"),
	     "not a port (1..65535)"));
	TEST("rewrite needs to", fails_first(withS("[route reviews/a]\nredirect = /x\nrewrite.uri = /y\n"),
	     "t.ini:14: route reviews/a: rewrite.uri applies only to a rule with `to` (this one has redirect)"));
	TEST("retries need to", fails_with(withS("[route reviews/a]\ndirect_response = 200\nretries = 2\n"),
	     "route reviews/a: retries applies only to a rule with `to` (this one has direct_response)"));
	TEST("mirror needs to", fails_with(withS("[route reviews/a]\ndirect_response = 200\nmirror = v1\n"),
	     "mirror applies only to a rule with `to`"));
	TEST("redirect forms", fails_first(withS("[route reviews/a]\nredirect = ftp://x/\n"),
	     "t.ini:13: redirect = ftp://x/: write /path or http(s)://host[:port]/path"));
	TEST("redirect.code values", fails_first(withS("[route reviews/a]\nredirect = /x\nredirect.code = 302x\n"),
	     "t.ini:14: redirect.code = 302x: expected one of: 301, 302, 303, 307, 308") &&
	     fails_with(withS("[route reviews/a]\nredirect = /x\nredirect.code = 300\n"), "expected one of: 301"));
	TEST("redirect.code needs redirect", fails_first(withS("[route reviews/a]\nto = v1\nredirect.code = 302\n"),
	     "t.ini:14: route reviews/a: redirect.code needs redirect"));
	TEST("direct_response 200..599", fails_first(withS("[route reviews/a]\ndirect_response = 600\n"),
	     "t.ini:13: direct_response = 600: not an HTTP status 200..599") &&
	     fails_with(withS("[route reviews/a]\ndirect_response = 199\n"), "not an HTTP status 200..599"));
	TEST("direct_response.body needs direct_response", fails_with(withS("[route reviews/a]\nto = v1\ndirect_response.body = x\n"),
	     "route reviews/a: direct_response.body needs direct_response"));
	TEST("body without control characters", fails_with(withS("[route reviews/a]\ndirect_response = 200\ndirect_response.body = a\x01z\n"),
	     "control character in the value"));
	TEST("header value without control characters", fails_with(withS("[route reviews/a]\nto = v1\nrequest.set.x = a\rb\n"),
	     "control character in the value"));
	TEST("Host is changed by rewrite.authority", fails_first(withS("[route reviews/a]\nto = v1\nrequest.set.Host = x\n"),
	     "t.ini:14: request.set.Host = x: 'host' cannot be changed here: the Host header is changed with rewrite.authority"));
	TEST("framing headers are the proxy's", fails_with(withS("[route reviews/a]\nto = v1\nresponse.remove = server, content-length\n"),
	     "'content-length' cannot be removed: the proxy manages framing and hop-by-hop headers") &&
	     fails_with(withS("[route reviews/a]\nto = v1\nrequest.add.transfer-encoding = chunked\n"), "cannot be changed here"));
	TEST("duplicate header op", fails_first(withS("[route reviews/a]\nto = v1\nrequest.set.X-A = 1\nrequest.set.x-a = 2\n"),
	     "t.ini:15: duplicate key 'request.set.x-a' in [route reviews/a] (first set at t.ini:14)"));
	TEST("remove lists a name twice", fails_with(withS("[route reviews/a]\nto = v1\nrequest.remove = a, A\n"), "'a' is listed twice"));
	TEST("misspelt request.set. prefix", fails_first(withS("[route reviews/a]\nto = v1\nrequst.set.x = 1\n"),
	     "t.ini:14: unknown key 'requst.set.x' in [route reviews/a] (did you mean 'request.set.x'?)"));
	TEST("retries at most 10", fails_first(withS("[route reviews/a]\nto = v1\nretries = 11\n"),
	     "t.ini:14: retries = 11: out of range (allowed 0..10)"));
	TEST("unknown retry_on with list and suggestion", fails_first(withS("[route reviews/a]\nto = v1\nretries = 1\nretry_on = 5xx, gatway-error\n"),
	     "t.ini:15: retry_on = 5xx, gatway-error: unknown condition 'gatway-error': expected one of: 5xx, gateway-error, "
	     "connect-failure, reset, retriable-status-codes (did you mean 'gateway-error'?)"));
	TEST("retriable-status-codes needs retry_status_codes",
	     fails_first(withS("[route reviews/a]\nto = v1\nretries = 1\nretry_on = retriable-status-codes\n"),
	                 "t.ini:15: route reviews/a: retry_on has retriable-status-codes, so retry_status_codes must list them"));
	TEST("retry_status_codes needs retriable-status-codes",
	     fails_first(withS("[route reviews/a]\nto = v1\nretries = 1\nretry_status_codes = 503\n"),
	                 "t.ini:15: route reviews/a: retry_status_codes needs retriable-status-codes in retry_on"));
	TEST("retry_status_codes 100..599, once each",
	     fails_with(withS("[route reviews/a]\nto = v1\nretries = 1\nretry_on = retriable-status-codes\nretry_status_codes = 600\n"),
	                "'600' is not a status code 100..599") &&
	     fails_with(withS("[route reviews/a]\nto = v1\nretries = 1\nretry_on = retriable-status-codes\nretry_status_codes = 503, 503\n"),
	                "503 is listed twice"));
	c = load(withS("[route reviews/a]\nto = v1\nper_try_timeout = 1s\nretry_on = 5xx\n"));
	TEST("retry keys without retries: warnings", c && has_warning(c,
	     "t.ini:14: warning: route reviews/a: per_try_timeout has no effect without retries") &&
	     has_warning(c, "t.ini:15: warning: route reviews/a: retry_on has no effect without retries"));
	conf_unref(c);
	TEST("percentages: 4 decimals", fails_first(withS("[route reviews/a]\nto = v1\nfault.delay = 1s\nfault.delay_percent = 12.34567\n"),
	     "t.ini:15: fault.delay_percent = 12.34567: at most 4 decimals"));
	TEST("percentages: 0..100", fails_with(withS("[route reviews/a]\nto = v1\nfault.abort = 500\nfault.abort_percent = 100.5\n"),
	     "out of range (allowed 0..100)") &&
	     fails_with(withS("[route reviews/a]\nto = v1\nmirror = v2\nmirror_percent = 1e2\n"), "not a percentage"));
	TEST("fault.abort is a status", fails_with(withS("[route reviews/a]\nto = v1\nfault.abort = 700\n"), "not an HTTP status 200..599"));
	TEST("fault.delay_percent needs fault.delay", fails_first(withS("[route reviews/a]\nto = v1\nfault.delay_percent = 5\n"),
	     "t.ini:14: route reviews/a: fault.delay_percent needs fault.delay"));
	TEST("fault.abort_percent needs fault.abort", fails_with(withS("[route reviews/a]\nto = v1\nfault.abort_percent = 5\n"),
	     "fault.abort_percent needs fault.abort"));
	TEST("mirror_percent needs mirror", fails_with(withS("[route reviews/a]\nto = v1\nmirror_percent = 5\n"),
	     "mirror_percent needs mirror"));
	TEST("fault.delay = 0 refused", fails_with(withS("[route reviews/a]\nto = v1\nfault.delay = 0\n"), "out of range (allowed 1ms..1h)"));
	TEST("mirror takes no weight", fails_first(withS("[route reviews/a]\nto = v1\nmirror = v3 10\n"),
	     "t.ini:14: mirror = v3 10: mirror takes one destination, without a weight (see mirror_percent)"));
	TEST("mirror takes one destination", fails_with(withS("[route reviews/a]\nto = v1\nmirror = v2, v3\n"),
	     "mirror takes one destination"));
	TEST("mirror resolves like to", fails_first(withS("[route reviews/a]\nto = v1\nmirror = v9\n"),
	     "t.ini:14: route reviews/a: unknown subset 'v9' (subsets of reviews: v1, v2, v3)"));
}

static void test_route_order_warnings(void)
{
	struct conf *c;
	char dir[] = "/tmp/test_conf_rt.XXXXXX", p[256], cmd[300];

	c = load(withS("[route reviews/default]\nto = v1\n"        /* 12 */
	               "[route reviews/jason]\nmatch.header.end-user = jason\nto = v2\n"  /* 14 */
	               "[route ratings/all]\nto = ratings\n"        /* 17 */
	               "[route reviews.default.svc.cluster.local/late]\nto = v3\n")); /* 19 */
	TEST("rules after a match-all rule: warnings", c && c->n_warnings == 2 &&
	     has_warning(c, "t.ini:14: warning: can never match: rule reviews/jason comes after reviews/default, "
	                    "which matches everything") &&
	     has_warning(c, "t.ini:19: warning: can never match: rule reviews.default.svc.cluster.local/late comes after "
	                    "reviews/default, which matches everything"));
	TEST("routes kept in file order", c && c->n_routes == 4 && !strcmp(c->routes[1].name, "reviews/jason") &&
	     !strcmp(c->routes[3].name, "reviews.default.svc.cluster.local/late"));
	conf_unref(c);
	c = load(withS("[route reviews/jason]\nmatch.header.end-user = jason\nto = v2\n"
	               "[route reviews/default]\nto = v1\n[route ratings/x]\nhosts = ratings, reviews\nto = ratings\n"));
	TEST("no warning when the match-all rule comes last, or another host remains", c && c->n_warnings == 0);
	conf_unref(c);
	c = load(withS("[route revews/x]\nto = reviews/v1\n"));
	TEST("a one-label host that names no service: warning",
	     c && has_warning(c, "t.ini:12: warning: route revews/x: host 'revews' names no service (did you mean 'reviews'?)"));
	conf_unref(c);
	c = load(withS("[route bookinfo.com/x]\nto = reviews/v1\n[route *.example.com/y]\ndirect_response = 404\n"));
	TEST("DNS names and wildcards need no service", c && c->n_warnings == 0);
	conf_unref(c);

	/* routes in the order they are read: the proxy file, then the mesh file */
	if (!mkdtemp(dir)) {
		TEST("mkdtemp", 0);
		return;
	}
	snprintf(p, sizeof(p), "%s/mesh.ini", dir);
	write_file(p, "[service reviews]\nendpoint = :1 version=v1\nendpoint = :2 version=v2\n"
	              "[route reviews/from-mesh]\nto = v2\n"
	              "[destination reviews]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\n");
	snprintf(p, sizeof(p), "%s/proxy.ini", dir);
	write_file(p, "[control]\nmesh = mesh.ini\n[route reviews/from-proxy]\nmatch.header.a = present\nto = v1\n");
	c = conf_load(p, err, sizeof(err));
	TEST("routes across files: proxy file first, mesh file next; destinations in the mesh file",
	     c && c->n_routes == 2 && !strcmp(c->routes[0].name, "reviews/from-proxy") &&
	     !strcmp(c->routes[1].name, "reviews/from-mesh") && c->routes[1].file == c->files[1] && c->routes[1].line == 4 &&
	     c->routes[0].to[0].subset == 0 && c->routes[1].to[0].subset == 1 && c->destinations[0].file == c->files[1]);
	if (!c)
		printf("  %s\n", err);
	conf_unref(c);
	snprintf(p, sizeof(p), "%s/mesh2.ini", dir);
	write_file(p, "[service reviews]\nendpoint = :1\n[route reviews/x]\nto = v4\n");
	snprintf(p, sizeof(p), "%s/proxy2.ini", dir);
	write_file(p, "[control]\nmesh = mesh2.ini\n");
	c = conf_load(p, err, sizeof(err));
	snprintf(p, sizeof(p), "%s/mesh2.ini:4: route reviews/x: ", dir);
	TEST("an error in the mesh file names the mesh file and line", !c && !strncmp(err, p, strlen(p)));
	conf_unref(c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("  could not remove %s\n", dir);
}

/* The seed's Lab 2: destination-rule-all.yaml and canary-reviews.yaml, with
 * the Bookinfo endpoints the lab deploys (productpage, details and ratings v1;
 * reviews v1, v2, v3). The same text is in docs/config.md. */
static const char lab2[] =
	"[service productpage]\nport = 9080\nendpoint = 127.0.0.1:9081 app=productpage, version=v1\n"
	"[service details]\nport = 9080\nendpoint = 127.0.0.1:9082 app=details, version=v1\n"
	"[service reviews]\nport = 9080\nendpoint = 127.0.0.1:9083 app=reviews, version=v1\n"
	"endpoint = 127.0.0.1:9084 app=reviews, version=v2\nendpoint = 127.0.0.1:9085 app=reviews, version=v3\n"
	"[service ratings]\nport = 9080\nendpoint = 127.0.0.1:9086 app=ratings, version=v1\n"
	"\n; destination-rule-all.yaml\n"
	"[destination productpage]\nsubset.v1 = version=v1\n"                                    /* 17 */
	"[destination reviews]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\nsubset.v3 = version=v3\n"
	"[destination ratings]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\n"              /* 23 */
	"subset.v2-mysql = version=v2-mysql\nsubset.v2-mysql-vm = version=v2-mysql-vm\n"        /* 26, 27 */
	"[destination details]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\n"              /* 28, 30 */
	"\n; canary-reviews.yaml\n"
	"[route reviews/jason]\nmatch.header.end-user = jason\nto = v2\n\n"                     /* 33 */
	"[route reviews/default]\nto = v1 80, v2 20\n";                                         /* 37 */

static int same_strmatch(const struct conf_strmatch *a, const struct conf_strmatch *b)
{
	return a->kind == b->kind && !strcmp(a->value, b->value) && !a->re == !b->re;
}

static int same_labels(const struct conf_labels *a, const struct conf_labels *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].value, b->v[i].value))
			return 0;
	return 1;
}

static int same_policy(const struct conf_policy *a, const struct conf_policy *b)
{
	return a->lb == b->lb && a->hash_on == b->hash_on && !a->hash_key == !b->hash_key &&
	       (!a->hash_key || !strcmp(a->hash_key, b->hash_key)) && a->max_connections == b->max_connections &&
	       a->max_pending_requests == b->max_pending_requests &&
	       a->max_requests_per_connection == b->max_requests_per_connection &&
	       a->max_concurrent_requests == b->max_concurrent_requests && a->connect_timeout == b->connect_timeout &&
	       a->outlier_consecutive_5xx == b->outlier_consecutive_5xx &&
	       a->outlier_consecutive_gateway_errors == b->outlier_consecutive_gateway_errors &&
	       a->outlier_interval == b->outlier_interval && a->outlier_base_ejection_time == b->outlier_base_ejection_time &&
	       a->outlier_max_ejection_percent == b->outlier_max_ejection_percent &&
	       a->outlier_min_health_percent == b->outlier_min_health_percent;
}

static int same_dest(const struct conf *a, const struct conf_dest *x, const struct conf *b, const struct conf_dest *y)
{
	if (!x->svc != !y->svc)
		return 0;
	return !x->svc || (x->svc - a->services == y->svc - b->services && x->subset == y->subset && x->weight == y->weight);
}

static int same_ops(const struct conf_header_ops *a, const struct conf_header_ops *b)
{
	size_t i;

	if (a->n_set != b->n_set || a->n_add != b->n_add || a->n_remove != b->n_remove)
		return 0;
	for (i = 0; i < a->n_set; i++)
		if (strcmp(a->set[i].name, b->set[i].name) || strcmp(a->set[i].value, b->set[i].value))
			return 0;
	for (i = 0; i < a->n_add; i++)
		if (strcmp(a->add[i].name, b->add[i].name) || strcmp(a->add[i].value, b->add[i].value))
			return 0;
	for (i = 0; i < a->n_remove; i++)
		if (strcmp(a->remove[i], b->remove[i]))
			return 0;
	return 1;
}

/* destinations and routes of two configs are the same (services in the same order) */
static int same_traffic(const struct conf *a, const struct conf *b)
{
	size_t i, j, k;

	if (a->n_destinations != b->n_destinations || a->n_routes != b->n_routes || a->n_services != b->n_services)
		return 0;
	for (i = 0; i < a->n_destinations; i++) {
		const struct conf_destination *x = &a->destinations[i], *y = &b->destinations[i];

		if (x->svc - a->services != y->svc - b->services || !same_policy(&x->policy, &y->policy) ||
		    x->n_subsets != y->n_subsets)
			return 0;
		for (j = 0; j < x->n_subsets; j++)
			if (strcmp(x->subsets[j].name, y->subsets[j].name) || !same_labels(&x->subsets[j].labels, &y->subsets[j].labels) ||
			    !same_policy(&x->subsets[j].policy, &y->subsets[j].policy))
				return 0;
	}
	for (i = 0; i < a->n_routes; i++) {
		const struct conf_route *x = &a->routes[i], *y = &b->routes[i];

		if (strcmp(x->name, y->name) || x->n_hosts != y->n_hosts || x->n_matches != y->n_matches || x->n_to != y->n_to)
			return 0;
		for (j = 0; j < x->n_hosts; j++)
			if (strcmp(x->hosts[j], y->hosts[j]))
				return 0;
		for (j = 0; j < x->n_matches; j++) {
			const struct conf_match *m = &x->matches[j], *n = &y->matches[j];

			if (m->has_path != n->has_path || (m->has_path && !same_strmatch(&m->path, &n->path)) ||
			    !m->method != !n->method || (m->method && strcmp(m->method, n->method)) ||
			    m->n_headers != n->n_headers || m->n_query != n->n_query || !same_labels(&m->source, &n->source))
				return 0;
			for (k = 0; k < m->n_headers; k++)
				if (strcmp(m->headers[k].name, n->headers[k].name) || !same_strmatch(&m->headers[k].m, &n->headers[k].m))
					return 0;
			for (k = 0; k < m->n_query; k++)
				if (strcmp(m->query[k].name, n->query[k].name) || !same_strmatch(&m->query[k].m, &n->query[k].m))
					return 0;
		}
		for (j = 0; j < x->n_to; j++)
			if (!same_dest(a, &x->to[j], b, &y->to[j]))
				return 0;
#define SAME_S(f) (!x->f == !y->f && (!x->f || !strcmp(x->f, y->f)))
		if (!SAME_S(rewrite_uri) || !SAME_S(rewrite_authority) || !SAME_S(redirect) || !SAME_S(direct_body) ||
		    x->redirect_code != y->redirect_code || x->direct_status != y->direct_status ||
		    !same_ops(&x->req_headers, &y->req_headers) || !same_ops(&x->resp_headers, &y->resp_headers) ||
		    x->timeout != y->timeout || x->retries != y->retries || x->per_try_timeout != y->per_try_timeout ||
		    x->retry_on != y->retry_on || x->n_retry_status_codes != y->n_retry_status_codes ||
		    (x->n_retry_status_codes && memcmp(x->retry_status_codes, y->retry_status_codes,
		                                       x->n_retry_status_codes * sizeof(int))) ||
		    x->fault_delay != y->fault_delay || x->fault_delay_percent != y->fault_delay_percent ||
		    x->fault_abort != y->fault_abort || x->fault_abort_percent != y->fault_abort_percent ||
		    !same_dest(a, &x->mirror, b, &y->mirror) || x->mirror_percent != y->mirror_percent)
			return 0;
#undef SAME_S
	}
	return 1;
}

/* text loads, renders, loads again to the same traffic config, and renders identically */
static int round_trips(const char *text, const char *must_contain)
{
	struct conf *a = load(text), *b;
	char *r1, *r2;
	int ok;

	if (!a) {
		printf("  does not load: %s\n", err);
		return 0;
	}
	r1 = conf_render(a);
	b = conf_load_string("t.ini", r1, err, sizeof(err));
	if (!b) {
		printf("  rendered text does not load: %s\n---\n%s---\n", err, r1);
		free(r1);
		conf_unref(a);
		return 0;
	}
	r2 = conf_render(b);
	ok = same_traffic(a, b) && !strcmp(r1, r2) && (!must_contain || strstr(r1, must_contain));
	if (!ok)
		printf("  same=%d fixed=%d contains=%d\n---\n%s---\n", same_traffic(a, b), !strcmp(r1, r2),
		       !must_contain || strstr(r1, must_contain), r1);
	free(r1);
	free(r2);
	conf_unref(a);
	conf_unref(b);
	return ok;
}

static void test_lab2(void)
{
	struct conf *c = load(lab2);
	const struct conf_service *reviews = svc_named(c, "reviews");
	const struct conf_destination *d = conf_destination_of(c, reviews);

	TEST("Lab 2 in INI loads", c != NULL);
	if (!c) {
		printf("  %s\n", err);
		return;
	}
	TEST("Lab 2: four destination rules, two routes", c->n_destinations == 4 && c->n_routes == 2);
	TEST("Lab 2: reviews v1 v2 v3", d && d->n_subsets == 3 && !strcmp(d->subsets[2].name, "v3") &&
	     !strcmp(conf_label(&d->subsets[2].labels, "version"), "v3"));
	TEST("Lab 2: ratings v1 v2 v2-mysql v2-mysql-vm, details v1 v2",
	     conf_destination_of(c, svc_named(c, "ratings"))->n_subsets == 4 &&
	     !strcmp(conf_destination_of(c, svc_named(c, "ratings"))->subsets[3].name, "v2-mysql-vm") &&
	     conf_destination_of(c, svc_named(c, "details"))->n_subsets == 2 &&
	     conf_destination_of(c, svc_named(c, "productpage"))->n_subsets == 1);
	TEST("Lab 2: jason -> v2", c->routes[0].n_matches == 1 && !strcmp(c->routes[0].matches[0].headers[0].name, "end-user") &&
	     c->routes[0].matches[0].headers[0].m.kind == CONF_MATCH_EXACT &&
	     !strcmp(c->routes[0].matches[0].headers[0].m.value, "jason") && c->routes[0].n_to == 1 &&
	     c->routes[0].to[0].svc == reviews && c->routes[0].to[0].subset == 1 && c->routes[0].to[0].weight == 100);
	TEST("Lab 2: everyone else v1 80 / v2 20", c->routes[1].n_matches == 0 && c->routes[1].n_to == 2 &&
	     c->routes[1].to[0].subset == 0 && c->routes[1].to[0].weight == 80 && c->routes[1].to[1].subset == 1 &&
	     c->routes[1].to[1].weight == 20);
	TEST("Lab 2: only the subsets the lab never deploys are warned about", c->n_warnings == 4 &&
	     has_warning(c, "t.ini:25: warning: subset 'v2' of ratings matches no endpoint") &&
	     has_warning(c, "t.ini:26: warning: subset 'v2-mysql' of ratings matches no endpoint") &&
	     has_warning(c, "t.ini:27: warning: subset 'v2-mysql-vm' of ratings matches no endpoint") &&
	     has_warning(c, "t.ini:30: warning: subset 'v2' of details matches no endpoint"));
	conf_unref(c);
	TEST("Lab 2 round trip via render", round_trips(lab2, "[route reviews/default]\nhosts = reviews\nto    = reviews/v1 80, reviews/v2 20\n"));
}

static const char traffic_full[] =
	"[workload]\nnamespace = x\n"
	"[service reviews]\nport = 9080\nendpoint = 127.0.0.1:9081 version=v1\nendpoint = 127.0.0.1:9082 version=v2\n"
	"[service r]\nnamespace = x\nendpoint = :3 v=1\n[service r]\nnamespace = y\nendpoint = :4 v=1\n"
	"[service v1]\nendpoint = :5\n"
	"[destination reviews]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\nload_balancer = maglev\nhash_on = cookie:s\n"
	"max_connections = 1\nmax_pending_requests = 2\nmax_requests_per_connection = 3\nmax_concurrent_requests = 4\n"
	"connect_timeout = 1s\noutlier.consecutive_5xx = 5\noutlier.consecutive_gateway_errors = 6\noutlier.interval = 7s\n"
	"outlier.base_ejection_time = 8s\noutlier.max_ejection_percent = 9\noutlier.min_health_percent = 10\n"
	"[destination reviews/v1]\nload_balancer = round_robin\nmax_connections = 1\n"
	"[destination reviews/v2]\nhash_on = header:x-u\noutlier.interval = 1m\n"
	"[destination r]\nnamespace = y\nsubset.a = v=1\n[destination r/a]\nnamespace = y\nload_balancer = random\n"
	"[route reviews/one]\nhosts = reviews, *.example.com, bookinfo.com\n"
	"match.5.query.q = regex:a|b\nmatch.path = regex:/x/[0-9]+\nmatch.method = delete\nmatch.header.a = exact:present\n"
	"match.header.b = prefix:x\nmatch.header.c = absent\nmatch.header.d = exact:regex:x\nmatch.header.e = exact:\n"
	"match.header.f = exact:;x\nmatch.source = app=a, version=v1\nmatch.2.path = prefix:/p\nmatch.2.query.z = present\n"
	"to = v1 30, v2 30, r.y/a 20, r.y 10, reviews.default.svc.cluster.local 10\n"
	"rewrite.uri = /new\nrewrite.authority = [::1]:80\n"
	"request.set.x-a = 1 2 3\nrequest.add.x-b = b\nrequest.remove = x-c, x-d\nresponse.set.x-e = e\n"
	"response.add.x-f = f\nresponse.remove = x-g\ntimeout = 1500ms\nretries = 10\nper_try_timeout = 1h\n"
	"retry_on = retriable-status-codes, reset\nretry_status_codes = 503, 429\nfault.delay = 2s\n"
	"fault.delay_percent = 0.0001\nfault.abort = 418\nfault.abort_percent = 99.99\nmirror = v1.default\nmirror_percent = 0\n"
	"[route reviews/two]\nmatch.header.x = 1\nredirect = http://a.b:81/c\nredirect.code = 307\nfault.abort = 500\n"
	"[route *.example.com/three]\ndirect_response = 200\ndirect_response.body = hello ; a comment\n"
	"response.set.content-type = text/plain\n";

static void test_traffic_render(void)
{
	struct conf *c;
	char *r;

	TEST("render: traffic config round trip", round_trips(traffic_full, NULL));
	c = load(traffic_full);
	r = c ? conf_render(c) : NULL;
	TEST("render: a subset override keeps only what differs",
	     r && strstr(r, "\n[destination reviews/v1]\nload_balancer = round_robin\n\n") &&
	     strstr(r, "\n[destination reviews/v2]\nhash_on          = header:x-u\noutlier.interval = 1m\n") &&
	     strstr(r, "outlier.consecutive_gateway_errors = 6\n"));
	TEST("render: namespace for ambiguous names; a service named like a subset is written with its namespace",
	     r && strstr(r, "\n[destination r]\nnamespace ") && strstr(r, "\n[destination r/a]\nnamespace     = y\n") &&
	     strstr(r, "to                  = reviews/v1 30, reviews/v2 30, r.y/a 20, r.y 10, reviews 10\n") &&
	     strstr(r, "mirror              = v1.default\n"));
	TEST("render: match blocks renumbered, values that need exact: keep it",
	     r && strstr(r, "match.header.a      = exact:present\n") && strstr(r, "match.header.e      = exact:\n") &&
	     strstr(r, "match.header.d      = exact:regex:x\n") && strstr(r, "match.header.c      = absent\n") &&
	     strstr(r, "match.header.f      = exact:;x\n") && strstr(r, "match.2.path        = prefix:/p\n") &&
	     strstr(r, "match.3.query.q     = regex:a|b\n") && strstr(r, "match.method        = DELETE\n"));
	TEST("render: percentages and defaults", r && strstr(r, "fault.delay_percent = 0.0001\n") &&
	     strstr(r, "fault.abort_percent = 99.99\n") && strstr(r, "timeout             = 1500ms\n") &&
	     strstr(r, "mirror_percent      = 0\n") && strstr(r, "retry_on            = reset, retriable-status-codes\n") &&
	     strstr(r, "[route reviews/two]\nhosts          = reviews\nmatch.header.x = 1\nredirect       = http://a.b:81/c\n"
	                "redirect.code  = 307\nfault.abort    = 500\n") &&
	     strstr(r, "direct_response.body      = hello\n"));
	TEST("render: proxy retry keys", r && strstr(r, "retry_buffer          = 64k\n") &&
	     strstr(r, "retry_budget_percent  = 20\n"));
	free(r);
	conf_unref(c);
	TEST("render: an override equal to its parent disappears and still round-trips",
	     round_trips("[service a]\nendpoint = :1 v=1\n[destination a]\nsubset.s = v=1\nmax_connections = 3\n"
	                 "[destination a/s]\nmax_connections = 3\n", NULL));
	TEST("render: override drops inherited hash_on", round_trips("[service a]\nendpoint = :1 v=1\n[destination a]\n"
	     "subset.s = v=1\nload_balancer = ring_hash\nhash_on = source_ip\n[destination a/s]\nload_balancer = random\n",
	     "[destination a/s]\nload_balancer = random\n"));
	{
		/* long lists render compactly enough to load back */
		struct sb b = { 0 };
		int i;

		sb_add(&b, "[service a]\nendpoint = :1\n[route a/x]\nto = a\nhosts=");
		for (i = 0; i < 400; i++)
			sb_printf(&b, "%sh%03d.io", i ? "," : "", i);
		sb_add(&b, "\nrequest.remove=");
		for (i = 0; i < 700; i++)
			sb_printf(&b, "%sx%03d", i ? "," : "", i);
		sb_add(&b, "\n");
		TEST("render: a list as long as a line may be still loads back", round_trips(b.p, NULL));
		free(b.p);
	}
}

/* The ```ini block of docs/config.md whose text contains `marker` (malloc'd), or NULL. */
static char *doc_block(const char *marker)
{
	char *doc = read_file("../../docs/config.md", err, sizeof(err)), *p, *start, *end, *r = NULL;

	for (p = doc; p && (start = strstr(p, "```ini\n")); p = end + 4) {
		start += 7;
		if (!(end = strstr(start, "\n```")))
			break;
		if (memmem(start, (size_t)(end - start), marker, strlen(marker))) {
			r = xstrndup(start, (size_t)(end - start + 1));
			break;
		}
	}
	free(doc);
	return r;
}

static void test_doc_examples(void)
{
	char *lab = doc_block("; mesh.ini: the seed's Lab 2"), *bi = doc_block("[route bookinfo.com/jason]");
	char *cb = doc_block("circuit_breaker.consecutive_errors = 3"), *ov = doc_block("[destination reviews/v2]");
	char *text;
	struct conf *c;
	size_t n;

	TEST("docs: the examples are there", lab && bi && cb && ov);
	if (!lab || !bi || !cb || !ov)
		goto out;
	c = conf_load_string("mesh.ini", lab, err, sizeof(err));
	TEST("docs: Lab 2 loads", c && c->n_destinations == 4 && c->n_routes == 2 && c->routes[1].n_to == 2 &&
	     c->routes[1].to[1].weight == 20 && c->routes[0].matches[0].n_headers == 1);
	TEST("docs: Lab 2's warnings are the four undeployed subsets, the first as quoted", c && c->n_warnings == 4 &&
	     has_warning(c, "mesh.ini:31: warning: subset 'v2' of ratings matches no endpoint"));
	if (!c)
		printf("  %s\n", err);
	conf_unref(c);
	TEST("docs: Lab 2 round trip", round_trips(lab, NULL));
	n = strlen(lab) + strlen(bi) + 2;
	text = malloc(n);
	snprintf(text, n, "%s\n%s", lab, bi);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("docs: the bookinfo.com rules load with Lab 2", c && c->n_routes == 4 && c->routes[3].to[1].subset == 2 &&
	     c->routes[3].to[1].weight == 10 && c->routes[2].to[0].svc == svc_named(c, "reviews"));
	conf_unref(c);
	free(text);
	n = strlen(cb) + 128;
	text = malloc(n);
	snprintf(text, n, "[service reviews]\nendpoint = :1 version=v1\n%s", cb);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("docs: the seed's circuit breaker loads with four warnings", c && c->n_warnings >= 4 &&
	     c->destinations[0].policy.lb == CONF_LB_LEAST_REQUEST && c->destinations[0].policy.outlier_consecutive_5xx == 3 &&
	     c->destinations[0].policy.outlier_interval == 30000 && c->destinations[0].policy.max_requests_per_connection == 2);
	conf_unref(c);
	free(text);
	n = strlen(ov) + 128;
	text = malloc(n);
	snprintf(text, n, "[service reviews]\nendpoint = :1 version=v1\nendpoint = :2 version=v2\n%s", ov);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("docs: the subset override example", c && conf_policy_of(c, &c->services[0], 1)->max_connections == 10 &&
	     conf_policy_of(c, &c->services[0], 1)->lb == CONF_LB_LEAST_REQUEST &&
	     conf_policy_of(c, &c->services[0], 0)->max_connections == 100 && c->n_warnings == 0);
	conf_unref(c);
	free(text);
out:
	free(lab);
	free(bi);
	free(cb);
	free(ov);
}

/* Random configs built from valid pieces: whatever loads must render to text
 * that loads to the same config and renders identically (the fuzzer mostly
 * finds inputs that do not load; this covers combinations that do). */
static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

#define PICK(a) ((a)[rnd(sizeof(a) / sizeof((a)[0]))])

static void random_config(struct sb *b)
{
	static const char *const lbs[] = { "peak_ewma", "ROUND_ROBIN", "least_request", "random", "LEAST_CONN" };
	static const char *const hashes[] = { "header:X-User", "cookie:sid", "query:u", "source_ip" };
	static const char *const pol[] = {
		"max_connections = 5", "max_pending_requests = 0", "max_requests_per_connection = 1",
		"max_concurrent_requests = 7", "connect_timeout = 250ms", "outlier.consecutive_5xx = 3",
		"circuit_breaker.consecutive_errors = 2", "outlier.consecutive_gateway_errors = 4", "outlier.interval = 1m",
		"circuit_breaker.base_ejection_time = 45s", "outlier.max_ejection_percent = 100", "outlier.min_health_percent = 50",
	};
	static const char *const hosts[] = { "reviews", "ratings", "bookinfo.com", "*.example.com", "reviews.x",
	                                     "ratings.default.svc.cluster.local" };
	static const char *const dests[] = { "s1", "s2", "s3", "reviews/s1", "reviews/s2", "ratings", "reviews.x/s2",
	                                     "reviews.x", "s1.default", "ratings/r1" };
	static const char *const conds[] = {
		"path = /exact", "path = prefix:/api/", "path = regex:/v[0-9]+/(a|b)", "method = get",
		"header.end-user = jason", "header.X-A = exact:present", "header.x-b = prefix:p", "header.x-c = regex:[a-z]{2,4}",
		"header.x-d = present", "header.x-e = absent", "query.q = exact:1", "query.r = regex:y|z", "query.s = present",
		"source = app=productpage", "header.x-f = exact:",
	};
	static const char *const extras[] = {
		"request.set.x-a = 1", "request.add.x-b = two words", "request.remove = x-c, x-d", "response.set.x-e = e",
		"response.add.x-f = f", "response.remove = server", "fault.delay = 1500ms", "fault.abort = 503",
	};
	static const char *const to_extras[] = {
		"rewrite.uri = /new/", "rewrite.authority = reviews.internal:8080", "timeout = 2s", "retries = 3",
		"per_try_timeout = 500ms", "mirror = s3", "mirror = ratings", "retries = 1\nretry_on = gateway-error, reset",
		"retries = 2\nretry_on = retriable-status-codes\nretry_status_codes = 503, 429",
	};
	int i, j, n, parent = 0;

	sb_add(b, "[workload]\nnamespace = default\n");
	sb_add(b, "[service reviews]\nendpoint = :1 version=v1\nendpoint = :2 version=v2\n");
	sb_add(b, "[service reviews]\nnamespace = x\nendpoint = :3 version=v2\n");
	sb_add(b, "[service ratings]\nendpoint = :4 version=v1\n[service s1]\nendpoint = :5\n");
	if (rnd(4)) {
		parent = 1;
		sb_add(b, "[destination reviews]\nsubset.s1 = version=v1\nsubset.s2 = version=v2\nsubset.s3 = version=v3\n");
		if (rnd(2)) {
			int lb = (int)rnd(7);

			sb_printf(b, "load_balancer = %s\n", lb < 5 ? lbs[lb] : lb == 5 ? "ring_hash" : "maglev");
			if (lb >= 5)
				sb_printf(b, "hash_on = %s\n", PICK(hashes));
		}
		for (n = (int)rnd(4), i = 0; i < n; i++)
			sb_printf(b, "%s\n", pol[(int)rnd(12) / 4 * 4 + i]);   /* distinct keys */
	}
	if (rnd(2))
		sb_add(b, "[destination reviews]\nnamespace = x\nsubset.s2 = version=v2\n");
	if (rnd(2))
		sb_add(b, "[destination ratings]\nsubset.r1 = version=v1\nmax_connections = 9\n");
	for (n = parent ? (int)rnd(3) : 0, i = 0; i < n; i++) {
		const char *sub = i ? "s2" : "s1";

		sb_printf(b, "[destination reviews/%s]\n", sub);
		switch (rnd(4)) {
		case 0: sb_add(b, "load_balancer = random\n"); break;
		case 1: sb_add(b, "load_balancer = maglev\nhash_on = header:x-h\n"); break;
		case 2: sb_printf(b, "%s\n", PICK(pol)); break;
		default: sb_add(b, "max_connections = 1\noutlier.interval = 5s\n");
		}
	}
	for (n = 1 + (int)rnd(4), i = 0; i < n; i++) {
		int action = (int)rnd(6), nb, k;

		sb_printf(b, "[route %s/r%d]\n", i % 2 ? "bookinfo.com" : "reviews", i);
		if (rnd(2))
			sb_printf(b, "hosts = %s, %s\n", PICK(hosts), i % 2 ? "*.example.org" : "reviews.default");
		for (nb = (int)rnd(3), j = 0; j < nb; j++) {
			int block = j ? 2 + (int)rnd(15) : 1, nc = 1 + (int)rnd(2);

			for (k = 0; k < nc; k++) {
				if (block == 1)
					sb_printf(b, "match.%s\n", conds[(j * 5 + k * 3 + (int)rnd(3)) % 15]);
				else
					sb_printf(b, "match.%d.%s\n", block, conds[(k * 7 + (int)rnd(7)) % 15]);
			}
		}
		if (action == 0) {
			sb_printf(b, "redirect = %s\n", rnd(2) ? "/moved" : "https://bookinfo.com:8443/x");
			if (rnd(2))
				sb_add(b, "redirect.code = 308\n");
		} else if (action == 1) {
			sb_add(b, "direct_response = 503\n");
			if (rnd(2))
				sb_add(b, "direct_response.body = down for maintenance\n");
		} else {
			int nd = 1 + (int)rnd(3), left = 100;

			sb_add(b, "to = ");
			for (k = 0; k < nd; k++) {
				int w = k == nd - 1 ? left : (int)rnd((uint32_t)left + 1);

				left -= w;
				sb_printf(b, "%s%s", k ? ", " : "", PICK(dests));
				if (nd > 1 || rnd(2))
					sb_printf(b, " %d", nd > 1 ? w : 100);
			}
			sb_add(b, "\n");
			if (rnd(2)) {
				const char *x = PICK(to_extras);

				sb_printf(b, "%s\n", x);
				if (!strncmp(x, "mirror", 6) && rnd(2))
					sb_add(b, "mirror_percent = 12.5\n");
			}
		}
		if (rnd(2))
			sb_printf(b, "%s\n", extras[(i + (int)rnd(8)) % 8]);
		if (rnd(3) == 0)
			sb_add(b, "fault.delay = 10ms\nfault.delay_percent = 0.5\n");
	}
}

static void test_random_round_trip(void)
{
	int i, n_loaded = 0, ok = 1;

	for (i = 0; i < 3000 && ok; i++) {
		struct sb b = { 0 };
		struct conf *c;

		random_config(&b);
		c = load(b.p);
		if (c) {
			n_loaded++;
			conf_unref(c);
			if (!round_trips(b.p, NULL)) {
				printf("  config #%d:\n%s", i, b.p);
				ok = 0;
			}
		}
		free(b.p);
	}
	TEST("random traffic configs: every one that loads round-trips", ok);
	TEST("random traffic configs: enough of them load", n_loaded > 1000);
	printf("  (%d of %d random configs loaded)\n", n_loaded, i);
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

/* ---- security (issue #4) */

#define SEED_SECURITY \
	"[peer_authentication default]         ; no namespace/selector: mesh-wide\n" \
	"mode = STRICT\n" \
	"\n" \
	"[authorization productpage-policy]\n" \
	"namespace = production\n" \
	"selector  = app=productpage\n" \
	"action    = ALLOW\n" \
	"from.principals = cluster.local/ns/production/sa/bookinfo-productpage\n" \
	"\n" \
	"[authorization productpage-policy/get]  ; a second rule of the same policy\n" \
	"to.methods = GET\n" \
	"\n" \
	"[authorization allow-all]\n" \
	"action = ALLOW                         ; one empty rule: matches everything\n"

static void test_security_defaults(void)
{
	struct conf *c = load("[service reviews]\nendpoint = :1\n[service legacy]\nsidecar = no\nendpoint = :2\n"
	                      "service_account = old-app\n[mesh]\ndomain = example.org\n");

	TEST("security: trust_domain defaults to domain", c && !strcmp(c->mesh.trust_domain, "example.org"));
	TEST("security: service_account defaults to the name", c && !strcmp(c->services[0].service_account, "reviews"));
	TEST("security: sidecar defaults to yes", c && c->services[0].sidecar == 1);
	TEST("security: sidecar = no, service_account set", c && c->services[1].sidecar == 0 &&
	     !strcmp(c->services[1].service_account, "old-app"));
	TEST("security: no [control] ca", c && !c->control.ca.set && !c->control.token_file && !c->control.trust_bundle);
	TEST("security: no policies", c && !c->n_peer_auths && !c->n_authzs);
	conf_unref(c);
	c = load("[mesh]\ntrust_domain = td.example\n");
	TEST("security: trust_domain", c && !strcmp(c->mesh.trust_domain, "td.example") &&
	     !strcmp(c->mesh.domain, "cluster.local"));
	conf_unref(c);
}

static void test_security_seed(void)
{
	struct conf *c = load(SEED_SECURITY);
	const struct conf_authz *p;

	TEST("security: the seed's policies load as in CONFIG-SKETCH.md", c && c->n_peer_auths == 1 && c->n_authzs == 2);
	if (!c) {
		printf("  %s\n", err);
		return;
	}
	TEST("security: mesh-wide STRICT", c->peer_auths[0].mode == CONF_MTLS_STRICT && !c->peer_auths[0].namespace &&
	     !c->peer_auths[0].selector.n && !strcmp(c->peer_auths[0].id, "/default"));
	p = &c->authzs[0];
	TEST("security: productpage-policy", !strcmp(p->name, "productpage-policy") && !strcmp(p->namespace, "production") &&
	     p->selector.n == 1 && p->action == CONF_AUTHZ_ALLOW && p->n_rules == 2);
	TEST("security: rule 1 from the section, at its first key", !p->rules[0].name && p->rules[0].principals.n == 1 &&
	     p->rules[0].principals.v[0].kind == CONF_PAT_EXACT && p->rules[0].line == 8 &&
	     !strcmp(p->rules[0].principals.v[0].s, "cluster.local/ns/production/sa/bookinfo-productpage"));
	TEST("security: rule 2 from [authorization productpage-policy/get]", !strcmp(p->rules[1].name, "get") &&
	     p->rules[1].methods.n == 1 && !strcmp(p->rules[1].methods.v[0].s, "GET") && p->rules[1].line == 10);
	p = &c->authzs[1];
	TEST("security: allow-all is one empty rule", p->n_rules == 1 && !p->rules[0].name && !p->rules[0].principals.n &&
	     !p->rules[0].methods.n && p->action == CONF_AUTHZ_ALLOW && !p->namespace);
	TEST("security: no warnings", c->n_warnings == 0);
	conf_unref(c);
	TEST("security: the seed's policies round-trip", round_trips(SEED_SECURITY, "[authorization productpage-policy/get]\n"
	                                                                         "to.methods = GET\n"));
}

static void test_security_errors(void)
{
	/* [peer_authentication] */
	TEST("peer: bad mode, with a suggestion", fails_first("[peer_authentication x]\nmode = STRIC\n",
	     "t.ini:2: mode = STRIC: expected one of: UNSET, DISABLE, PERMISSIVE, STRICT (did you mean 'STRICT'?)"));
	TEST("peer: mode in any case", loads("[peer_authentication x]\nmode = permissive\n"));
	TEST("peer: port level without a selector", fails_first("[peer_authentication x]\nmode = STRICT\nport.9080 = DISABLE\n",
	     "t.ini:3: peer_authentication x: port-level modes need a workload selector"));
	TEST("peer: bad port", fails_first("[peer_authentication x]\nselector = app=a\nport.0 = DISABLE\n",
	     "t.ini:3: port.0 = DISABLE: expected port.N with N a port 1..65535"));
	TEST("peer: bad port mode", fails_first("[peer_authentication x]\nselector = app=a\nport.80 = STRICTLY\n",
	     "t.ini:3: port.80 = STRICTLY: expected one of: UNSET, DISABLE, PERMISSIVE, STRICT"));
	TEST("peer: a port twice", fails_first("[peer_authentication x]\nselector = app=a\nport.80 = STRICT\nport.080 = DISABLE\n",
	     "t.ini:4: duplicate key 'port.080' in [peer_authentication x] (first set at t.ini:3)"));
	TEST("peer: two mesh-wide policies (absent and istio-system)",
	     fails_first("[peer_authentication a]\nmode = STRICT\n[peer_authentication b]\nnamespace = istio-system\n",
	                 "t.ini:3: peer_authentication b: there is already a mesh-wide policy, [peer_authentication a] (t.ini:1)"));
	TEST("peer: two namespace-wide policies in one namespace",
	     fails_first("[peer_authentication a]\nnamespace = x\n[peer_authentication b]\nnamespace = x\n",
	                 "t.ini:3: peer_authentication b: namespace x already has a namespace-wide policy"));
	TEST("peer: namespace-wide policies of two namespaces",
	     loads("[peer_authentication a]\nnamespace = x\n[peer_authentication b]\nnamespace = y\n"
	           "[peer_authentication c]\nnamespace = y\nselector = app=r\n[peer_authentication d]\nselector = app=r\n"));
	TEST("peer: duplicate name in a namespace",
	     fails_first("[peer_authentication a]\nnamespace = x\nselector = app=r\n[peer_authentication a]\nnamespace = x\n"
	                 "selector = app=s\n", "t.ini:4: duplicate [peer_authentication a] in namespace x (first defined at t.ini:1)"));
	TEST("peer: bad name", fails_first("[peer_authentication Default]\n",
	     "t.ini:1: invalid policy name in [peer_authentication Default]: use a-z 0-9 - and dots, as a Kubernetes name "
	     "(did you mean 'default'?)"));
	TEST("peer: misspelt key", fails_first("[peer_authentication a]\nmodes = STRICT\n",
	     "t.ini:2: unknown key 'modes' in [peer_authentication a] (did you mean 'mode'?)"));
	TEST("peer: misspelt section", fails_first("[peer_authenticaton a]\n",
	     "t.ini:1: unknown section [peer_authenticaton a] (did you mean [peer_authentication a]?)"));

	/* [authorization] */
	TEST("authz: bad action", fails_first("[authorization p]\naction = PERMIT\n",
	     "t.ini:2: action = PERMIT: expected one of: ALLOW, DENY, AUDIT"));
	TEST("authz: CUSTOM", fails_first("[authorization p]\naction = CUSTOM\n",
	     "t.ini:2: action = CUSTOM: CUSTOM (an external authorizer) is not supported"));
	TEST("authz: action in any case", loads("[authorization p]\naction = deny\nto.methods = GET\n"));
	TEST("authz: misspelt key", fails_first("[authorization p]\nfrom.principal = a\n",
	     "t.ini:2: unknown key 'from.principal' in [authorization p] (did you mean 'from.principals'?)"));
	TEST("authz: rule before its policy", fails_first("[authorization p/r]\nto.methods = GET\n",
	     "t.ini:1: [authorization p/r]: a rule section comes after its policy, and there is no [authorization p] above it"));
	TEST("authz: rule of a misspelt policy", fails_first("[authorization pp]\n[authorization p/r]\n",
	     "t.ini:2: [authorization p/r]: a rule section comes after its policy, and there is no [authorization p] above it "
	     "(did you mean 'pp'?)"));
	TEST("authz: rule after another policy", fails_first("[authorization p]\n[authorization q]\n[authorization p/r]\n",
	     "t.ini:3: [authorization p/r]: write the rules of a policy right after it"));
	TEST("authz: bad rule name", fails_first("[authorization p]\n[authorization p/Get]\n",
	     "t.ini:2: invalid rule name in [authorization p/Get]"));
	TEST("authz: rule twice", fails_first("[authorization p]\n[authorization p/r]\n[authorization p/r]\n",
	     "t.ini:3: duplicate [authorization p/r] (first defined at t.ini:2)"));
	TEST("authz: a policy key in a rule section", fails_first("[authorization p]\n[authorization p/r]\nnamespace = x\n",
	     "t.ini:3: 'namespace' belongs in the policy's own section [authorization p], not in the rule [authorization p/r]"));
	TEST("authz: duplicate policy in a namespace", fails_first("[authorization p]\nnamespace = a\n[authorization p]\n"
	     "namespace = a\n", "t.ini:3: duplicate [authorization p] in namespace a (first defined at t.ini:1)"));
	TEST("authz: one name in two namespaces", loads("[authorization p]\nnamespace = a\n[authorization p]\nnamespace = b\n"
	     "[authorization p/x]\nto.methods = GET\n"));
	TEST("authz: rules = all", fails_first("[authorization p]\nrules = all\n", "t.ini:2: rules = all: the only value is none"));
	TEST("authz: rules = none with a rule", fails_first("[authorization p]\nrules = none\n[authorization p/r]\n"
	     "to.methods = GET\n", "t.ini:2: authorization p: rules = none, but the policy has a rule (t.ini:3)"));
	TEST("authz: ip block prefix too long", fails_first("[authorization p]\nfrom.ip_blocks = 10.0.0.0/33\n",
	     "t.ini:2: from.ip_blocks = 10.0.0.0/33: '10.0.0.0/33': the prefix length is 0..32"));
	TEST("authz: v6 prefix too long", fails_first("[authorization p]\nfrom.not_ip_blocks = ::1/129\n",
	     "t.ini:2: from.not_ip_blocks = ::1/129: '::1/129': the prefix length is 0..128"));
	TEST("authz: not an ip block", fails_first("[authorization p]\nfrom.ip_blocks = 10.0.0\n",
	     "t.ini:2: from.ip_blocks = 10.0.0: '10.0.0' is not an IP address or block"));
	TEST("authz: an empty item", fails_first("[authorization p]\nto.methods = GET,,POST\n",
	     "t.ini:2: to.methods = GET,,POST: empty item (stray ',')"));
	TEST("authz: '*' in the middle", fails_first("[authorization p]\nto.paths = /a*b\n",
	     "t.ini:2: to.paths = /a*b: '/a*b': '*' may only be the first or the last character"));
	TEST("authz: a path without '/'", fails_first("[authorization p]\nto.not_paths = api/*\n",
	     "t.ini:2: to.not_paths = api/*: 'api/*': a path starts with '/'"));
	TEST("authz: a path with a query", fails_first("[authorization p]\nto.paths = /a?b=1\n",
	     "t.ini:2: to.paths = /a?b=1: '/a?b=1': paths match without the query string"));
	TEST("authz: a path template", fails_first("[authorization p]\nto.paths = /a/{*}/b\n",
	     "t.ini:2: to.paths = /a/{*}/b: '/a/{*}/b': path templates"));
	TEST("authz: a bad namespace", fails_first("[authorization p]\nfrom.namespaces = Prod\n",
	     "t.ini:2: from.namespaces = Prod: 'Prod' is not a namespace"));
	TEST("authz: a bad method", fails_first("[authorization p]\nto.methods = G(ET\n",
	     "t.ini:2: to.methods = G(ET: 'G(ET' is not a method"));
	TEST("authz: a bad host", fails_first("[authorization p]\nto.hosts = a/b\n", "t.ini:2: to.hosts = a/b: 'a/b' is not a host"));
	TEST("authz: port 0", fails_first("[authorization p]\nto.ports = 0\n", "t.ini:2: to.ports = 0: '0' is not a port"));
	TEST("authz: a bad header name", fails_first("[authorization p]\nwhen.header.x y = 1\n",
	     "t.ini:2: when.header.x y = 1: 'x y' is not a header name"));
	TEST("authz: a header twice (any case)", fails_first("[authorization p]\nwhen.header.X-A = 1\nwhen.header.x-a = 2\n",
	     "t.ini:3: duplicate key 'when.header.x-a' in [authorization p] (first set at t.ini:2)"));
	TEST("authz: a synonym and its key", fails_first("[authorization p]\nfrom.ip_blocks = 10.0.0.0/8\nwhen.source.ip = ::1\n",
	     "t.ini:3: duplicate key 'when.source.ip' in [authorization p]: it sets from.ip_blocks, already set at t.ini:2"));
	TEST("authz: a key twice", fails_first("[authorization p]\nto.methods = GET\nto.methods = PUT\n",
	     "t.ini:3: duplicate key 'to.methods' in [authorization p] (first set at t.ini:2)"));
	TEST("authz: all errors are listed in order",
	     fails_first("[authorization p]\naction = NOPE\nto.ports = x\n[peer_authentication q]\nmode = x\n",
	                 "t.ini:2: action = NOPE") && strstr(err, "\nt.ini:3: to.ports = x") && strstr(err, "\nt.ini:5: mode = x"));

	/* [service], [mesh] */
	TEST("service: bad sidecar", fails_first("[service a]\nsidecar = maybe\n", "t.ini:2: sidecar = maybe: not a boolean"));
	TEST("service: bad service_account", fails_first("[service a]\nservice_account = Bookinfo\n",
	     "t.ini:2: service_account = Bookinfo: not a DNS name (labels of a-z 0-9 - joined by dots) (did you mean 'bookinfo'?)"));
	TEST("mesh: bad trust_domain", fails_first("[mesh]\ntrust_domain = a_b\n", "t.ini:2: trust_domain = a_b: not a DNS name"));
}

static void test_security_warnings(void)
{
	struct conf *c;

	c = load("[authorization p]\nfrom.principals = spiffe://cluster.local/ns/a/sa/b\n");
	TEST("warning: spiffe:// is dropped", c && c->authzs[0].rules[0].principals.n == 1 &&
	     !strcmp(c->authzs[0].rules[0].principals.v[0].s, "cluster.local/ns/a/sa/b") &&
	     has_warning(c, "t.ini:2: warning: from.principals: write principals without 'spiffe://' (as Istio does): "
	                    "'spiffe://cluster.local/ns/a/sa/b' is read as 'cluster.local/ns/a/sa/b'"));
	conf_unref(c);
	c = load("[authorization p]\nfrom.ip_blocks = 192.168.1.7/24\n");
	TEST("warning: host bits of an ip block", c && c->authzs[0].rules[0].ip_blocks.v[0].addr[3] == 0 &&
	     has_warning(c, "t.ini:2: warning: from.ip_blocks: '192.168.1.7/24' has host bits set; it means 192.168.1.0/24"));
	conf_unref(c);
	c = load("[authorization deny-everything]\naction = DENY\n");
	TEST("warning: a DENY policy with the empty rule", c && has_warning(c, "t.ini:1: warning: authorization "
	     "deny-everything: a DENY policy with an empty rule denies every request to the workloads it selects "
	     "(write rules = none for a policy that matches nothing)"));
	conf_unref(c);
	c = load("[workload]\nservice = reviews\nservice_account = bookinfo-reviews\n[service reviews]\nendpoint = :1\n");
	TEST("warning: the workload's identity differs from its service's", c && c->n_warnings == 1 &&
	     !strncmp(c->warnings[0], "t.ini:3: warning: [workload] service_account 'bookinfo-reviews' differs from "
	              "[service reviews] service_account 'reviews'", 100));
	conf_unref(c);
	c = load("[service productpage]\nendpoint = :1 version=v1\n[authorization p]\nnamespace = default\n"
	         "selector = app=productpag\n[peer_authentication q]\nnamespace = prodution\n"
	         "[authorization r]\nselector = version=v1\n[peer_authentication s]\nselector = app=productpage\n");
	TEST("warning: a selector that selects nothing", c && has_warning(c, "t.ini:3: warning: authorization p: selector "
	     "app=productpag selects no endpoint of any service in namespace default (app=SERVICE is implied)"));
	TEST("warning: a namespace without services", c && has_warning(c, "t.ini:6: warning: peer_authentication q: "
	     "namespace prodution has no services"));
	TEST("no warning: selectors that select an endpoint, by its labels or its service", c && c->n_warnings == 2);
	conf_unref(c);
	TEST("no warning: the same identity", loads("[workload]\nservice = reviews\nservice_account = bookinfo-reviews\n"
	     "[service reviews]\nendpoint = :1\nservice_account = bookinfo-reviews\n"));
}

static void test_control(void)
{
	char dir[] = "/tmp/test_conf.XXXXXX", p[256], q[512], text[1024];
	struct conf *c;

	if (!mkdtemp(dir)) {
		TEST("mkdtemp", 0);
		return;
	}
	snprintf(p, sizeof(p), "%s/root.crt", dir);
	write_file(p, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	snprintf(p, sizeof(p), "%s/reviews.token", dir);
	write_file(p, "v1.default.reviews.abcdef\n");
	snprintf(p, sizeof(p), "%s/empty.token", dir);
	write_file(p, "\n");
	snprintf(p, sizeof(p), "%s/proxy.ini", dir);
	write_file(p, "[workload]\nservice = reviews\n[control]\nca = 127.0.0.1:15012\ntoken_file = reviews.token\n"
	              "trust_bundle = root.crt\nkey_file = keys/reviews.key\n");
	c = conf_load(p, err, sizeof(err));
	TEST("control: loads", c != NULL);
	if (c) {
		snprintf(q, sizeof(q), "%s/reviews.token", dir);
		TEST("control: token_file relative to the file", c->control.token_file && !strcmp(c->control.token_file, q));
		snprintf(q, sizeof(q), "%s/root.crt", dir);
		TEST("control: trust_bundle relative to the file", c->control.trust_bundle && !strcmp(c->control.trust_bundle, q));
		snprintf(q, sizeof(q), "%s/keys/reviews.key", dir);
		TEST("control: key_file relative to the file (need not exist)", c->control.key_file &&
		     !strcmp(c->control.key_file, q));
		TEST("control: ca", c->control.ca.set && !strcmp(c->control.ca.text, "127.0.0.1:15012"));
		TEST("control: no warnings", c->n_warnings == 0);
		{
			char *r = conf_render(c);
			struct conf *c2 = conf_load_string("t.ini", r, err, sizeof(err));

			TEST("control: renders absolute paths that load from anywhere", c2 && strstr(r, "token_file") &&
			     !strcmp(c2->control.token_file, c->control.token_file) &&
			     !strcmp(c2->control.trust_bundle, c->control.trust_bundle));
			conf_unref(c2);
			free(r);
		}
		conf_unref(c);
	} else {
		printf("  %s\n", err);
	}
#define CONTROL_CASE(body) (snprintf(text, sizeof(text), "[workload]\nservice = reviews\n[control]\n%s", body), \
                            write_file(p, text), conf_load(p, err, sizeof(err)))
	c = CONTROL_CASE("ca = :15012\ntrust_bundle = nope.crt\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:5: trust_bundle = nope.crt: cannot read '%s/nope.crt': No such file or directory",
	         dir, dir);
	TEST("control: a missing trust_bundle at its line", !c && !strcmp(err, q));
	if (c || strcmp(err, q))
		printf("  got: %s\n", err);
	conf_unref(c);
	c = CONTROL_CASE("ca = :15012\ntrust_bundle = reviews.token\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:5: trust_bundle = reviews.token: no PEM certificate in it", dir);
	TEST("control: a trust_bundle without a certificate", !c && !strncmp(err, q, strlen(q)));
	conf_unref(c);
	c = CONTROL_CASE("ca = :15012\ntrust_bundle = root.crt\ntoken_file = empty.token\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:6: token_file = empty.token: the file is empty", dir);
	TEST("control: an empty token_file", !c && !strcmp(err, q));
	conf_unref(c);
	c = CONTROL_CASE("ca = :15012\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:4: ca is set, but nothing says how to trust it: add trust_bundle = root.crt", dir);
	TEST("control: ca without trust", !c && !strncmp(err, q, strlen(q)));
	conf_unref(c);
	c = CONTROL_CASE("ca = :15012\ntrust_bundle = root.crt\nca_fingerprint = " "AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:"
	                 "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:6: set one of trust_bundle and ca_fingerprint, not both", dir);
	TEST("control: trust_bundle and ca_fingerprint", !c && !strcmp(err, q));
	conf_unref(c);
	c = CONTROL_CASE("ca = :15012\nca_fingerprint = " "AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:"
	                 "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89\n");
	TEST("control: ca_fingerprint, stored lowercase without colons, and a warning for the missing token", c &&
	     !strcmp(c->control.ca_fingerprint, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789") &&
	     c->n_warnings == 1 && strstr(c->warnings[0], ":4: warning: ca is set without token_file"));
	conf_unref(c);
	c = CONTROL_CASE("ca = :15012\nca_fingerprint = abcd\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:5: ca_fingerprint = abcd: expected the SHA-256 of the CA's root certificate", dir);
	TEST("control: a short fingerprint", !c && !strncmp(err, q, strlen(q)));
	conf_unref(c);
	c = CONTROL_CASE("token_file = reviews.token\n");
	snprintf(q, sizeof(q), "%s/proxy.ini:4: token_file needs ca = ADDRESS in [control]", dir);
	TEST("control: token_file without ca", !c && !strncmp(err, q, strlen(q)));
	conf_unref(c);
#undef CONTROL_CASE
	write_file(p, "[control]\nca = :15012\ntrust_bundle = root.crt\n");
	c = conf_load(p, err, sizeof(err));
	snprintf(q, sizeof(q), "%s/proxy.ini:2: ca is set, but the workload has no identity", dir);
	TEST("control: ca without a workload identity", !c && !strncmp(err, q, strlen(q)));
	conf_unref(c);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	if (system(q) != 0)
		printf("  (could not remove %s)\n", dir);
}

/* [dashboard]: values, listen = off, warn above bad, and kept out of the controller's snapshots */
static void test_dashboard_section(void)
{
	static const char base[] = "[service hello]\nport = 80\nendpoint = 127.0.0.1:9001\n";
	char text[1024], *r;
	struct conf *c;

	snprintf(text, sizeof(text), "%s[dashboard]\nlisten = 127.0.0.1:20002\ntoken_file = /etc/mesh/dash.token\n"
	         "basic_file = dash.basic\ninterval = 2s\nwarn_errors = 2.5\nbad_errors = 20\nmax_spans = 500\n"
	         "max_span_bytes = 1m\n", base);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("dashboard: loads", c != NULL);
	if (!c) {
		printf("  %s\n", err);
		return;
	}
	TEST("dashboard: values", c->dashboard.listen.set && !strcmp(c->dashboard.listen.text, "127.0.0.1:20002") &&
	     !c->dashboard.off && !strcmp(c->dashboard.token_file, "/etc/mesh/dash.token") &&
	     !strcmp(c->dashboard.basic_file, "dash.basic") && c->dashboard.interval == 2000 &&
	     c->dashboard.warn_errors == 2.5 && c->dashboard.bad_errors == 20 && c->dashboard.max_spans == 500 &&
	     c->dashboard.max_span_bytes == 1u << 20);
	r = conf_render_mesh(c, NULL);
	TEST("dashboard: not in the snapshots the controller sends", r && !strstr(r, "[dashboard]") && !strstr(r, "token_file") &&
	     strstr(r, "[service hello]"));
	free(r);
	r = conf_render(c);
	TEST("dashboard: conf_render keeps it (paths, no secrets)", r && strstr(r, "[dashboard]") &&
	     strstr(r, "/etc/mesh/dash.token"));
	free(r);
	conf_unref(c);
	snprintf(text, sizeof(text), "%s[dashboard]\nlisten = off\n", base);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("dashboard: listen = off", c && c->dashboard.off && !c->dashboard.listen.set);
	conf_unref(c);
	c = conf_load_string("mesh.ini", base, err, sizeof(err));
	TEST("dashboard: absent = defaults, not off", c && !c->dashboard.off && c->dashboard.listen.set &&
	     !strcmp(c->dashboard.listen.text, "127.0.0.1:20001") && !c->dashboard.token_file &&
	     c->dashboard.interval == 5000 && c->dashboard.warn_errors == 1 && c->dashboard.bad_errors == 10 &&
	     c->dashboard.max_spans == 10000 && c->dashboard.max_span_bytes == 4u << 20);
	conf_unref(c);
	snprintf(text, sizeof(text), "%s[dashboard]\nwarn_errors = 15\n", base);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("dashboard: warn_errors above the default bad_errors", !c && !strncmp(err, "mesh.ini:5: warn_errors = 15 is above", 37));
	conf_unref(c);
	snprintf(text, sizeof(text), "%s[dashboard]\nbad_errors = 5\nwarn_errors = 6\n", base);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("dashboard: warn_errors above bad_errors, at its line", !c &&
	     !strcmp(err, "mesh.ini:6: warn_errors = 6 is above bad_errors = 5: orange (warn) must come before red (bad)"));
	if (c || !strstr(err, "mesh.ini:6:"))
		printf("  got: %s\n", err);
	conf_unref(c);
	snprintf(text, sizeof(text), "%s[dashboard]\ninterval = 100ms\n", base);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("dashboard: interval below 200ms refused", !c && !strncmp(err, "mesh.ini:5: interval = 100ms", 28));
	conf_unref(c);
	snprintf(text, sizeof(text), "%s[dashboard]\ntoken = abc\n", base);
	c = conf_load_string("mesh.ini", text, err, sizeof(err));
	TEST("dashboard: no token in the file itself (unknown key)", !c && !strncmp(err, "mesh.ini:5:", 11));
	conf_unref(c);
}

static void test_security_render(void)
{
	static const char *const texts[] = {
		SEED_SECURITY,
		"[peer_authentication a]\nnamespace = x\nselector = app=r, version=v2\nmode = unset\nport.9080 = disable\n"
		"port.80 = strict\n",
		"[authorization big]\naction = audit\nfrom.not_principals = *\nfrom.namespaces = prod*, *-test, x\n"
		"from.ip_blocks = 10.1.2.3/8, ::1, 2001:db8::/32, ::ffff:1.2.3.4\nfrom.not_ip_blocks = 0.0.0.0/0\n"
		"to.paths = /api/*, *.js, /exact, *\nto.not_methods = post\nto.ports = 9080, 80\nto.not_ports = 1\n"
		"to.hosts = *.example.com, Foo.com:8080\nto.not_hosts = [::1]:80\nwhen.header.x-user = jason, adm*\n"
		"when.not_header.x-debug = *\nwhen.source.principal = a/b\n"
		"[authorization big/two]\nwhen.destination.port = 1\n[authorization big/empty]\n"
		"[authorization none]\nrules = none\n[authorization none-deny]\naction = DENY\nrules = none\n",
		"[service a]\nsidecar = off\nservice_account = sa.a\n[mesh]\ntrust_domain = example.com\n",
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "security render round trip #%zu", i + 1);
		TEST(name, round_trips(texts[i], NULL));
	}
	TEST("security render: aliases under their keys, patterns as written",
	     round_trips(texts[2], "from.principals         = a/b\n") && round_trips(texts[2], "to.ports                = 9080, 80\n") &&
	     round_trips(texts[2], "to.not_methods          = POST\n") &&
	     round_trips(texts[2], "from.ip_blocks          = 10.0.0.0/8, ::1, 2001:db8::/32, ::ffff:1.2.3.4\n"));
	TEST("security render: rules = none, empty rules", round_trips(texts[2], "[authorization none]\naction = ALLOW\n"
	     "rules  = none\n") && round_trips(texts[2], "[authorization big/empty]\n\n"));
	TEST("security render: sidecar as yes/no", round_trips(texts[3], "sidecar         = no\n"));
	TEST("security render: peer modes uppercase", round_trips(texts[1], "mode      = UNSET\nport.9080 = DISABLE\n"));
}

static void test_security_doc(void)
{
	char *seed = doc_block("[authorization productpage-policy/get]"), *mtls = doc_block("[authorization require-mtls]");
	struct conf *a, *b;
	char *ra, *rb;

	TEST("docs: the security examples are there", seed && mtls);
	if (!seed || !mtls)
		goto out;
	a = load(seed);
	b = load(SEED_SECURITY);
	ra = a ? conf_render(a) : NULL;
	rb = b ? conf_render(b) : NULL;
	TEST("docs: the seed's policies are CONFIG-SKETCH.md's, and load the same", ra && rb && !strcmp(ra, rb) &&
	     a->n_warnings == 0);
	free(ra);
	free(rb);
	conf_unref(a);
	conf_unref(b);
	a = load(mtls);
	TEST("docs: require-mtls loads", a && a->authzs[0].action == CONF_AUTHZ_DENY &&
	     a->authzs[0].rules[0].not_principals.n == 1 && a->n_warnings == 0);
	conf_unref(a);
out:
	free(seed);
	free(mtls);
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
	test_proxy_retry_keys();
	test_destination_defaults();
	test_destination_keys();
	test_destination_aliases();
	test_destination_resolution();
	test_subset_overrides();
	test_route_basics();
	test_route_matches();
	test_route_actions();
	test_route_order_warnings();
	test_lab2();
	test_traffic_render();
	test_doc_examples();
	test_random_round_trip();
	test_security_defaults();
	test_security_seed();
	test_security_errors();
	test_security_warnings();
	test_control();
	test_dashboard_section();
	test_security_render();
	test_security_doc();
	return test_report();
}
