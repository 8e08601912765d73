/*
 * mesh: one binary, several roles. This file only parses argv and dispatches
 * through the mode table; every mode lives in its module.
 */
#include <stdio.h>
#include <string.h>

#include "ca.h"
#include "check.h"
#include "cli.h"
#include "controller.h"
#include "dashboard.h"
#include "demo.h"
#include "proxy.h"
#include "sampleapp.h"
#include "tap.h"
#include "tlscheck.h"

struct mode {
	const char *name;
	int (*run)(int argc, char **argv);  /* argv[0] is the mode name */
	const char *usage;                  /* one line for --help */
};

static const struct mode modes[] = {
	{ "proxy",   proxy_main,   "proxy -c proxy.ini     sidecar data plane (inbound, outbound, admin listeners)" },
	{ "controller", controller_main, "controller -c mesh.ini the control plane: registry, snapshots pushed to proxies (--help)" },
	{ "up",      controller_up_main, "up -c mesh.ini         controller + CA in one process, for labs (--help)" },
	{ "dashboard", dashboard_main, "dashboard -c mesh.ini  the Kiali-like page, metrics scraper and trace store on 127.0.0.1:20001 (--help)" },
	{ "proxy-status", proxy_status_main, "proxy-status           every proxy registered with the controller and its sync state" },
	{ "tap",     tap_main,     "tap SERVICE [--path P]  live requests to a service from every proxy ([proxy] tap = on; --help)" },
	{ "stat",    dashboard_stat_main, "stat [deploy|svc]      per workload: meshed, success, rps, p50/p95/p99, TCP connections (--help)" },
	{ "edges",   dashboard_edges_main, "edges [deploy|svc]     who talks to whom, with their identities and whether it is mTLS (--help)" },
	{ "top",     top_main,     "top SERVICE            live requests grouped by path: count, success, latency (--help)" },
	{ "ca",      ca_main,      "ca -c ca.ini           certificate authority (also ca init, ca token: --help)" },
	{ "cert",    ca_cert_main, "cert show FILE|-       decode certificates (also cert request: --help)" },
	{ "version", cli_version,  "version                mesh and library versions" },
	{ "sample-app", sampleapp_main, "sample-app NAME ...    Bookinfo workloads, for labs and tests only (--help)" },
	{ "demo",    demo_main,    "demo [--port-base N]   the whole Bookinfo lab on localhost, one command (--help)" },
	{ "check",   check_main,   "check -c mesh.ini      validate config offline: every error and warning as file:line (--help)" },
	{ "tls-check", tlscheck_main, "tls-check [SVC[.NS]]   mTLS mode of a service's endpoints and its clients, from -c mesh.ini" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mesh <mode> [-c file.ini] [flags]\n\nmodes:\n");
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(f, "  mesh %s\n", modes[i].usage);
	fprintf(f, "\nmesh <mode> --help describes a mode's flags; docs/config.md describes the INI files.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cli_version(1, argv + 1);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			return modes[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mesh: unknown mode '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
