/*
 * cli: one-shot tools. Each takes (argc, argv) with argv[0] = the mode name and
 * returns the process exit status (2 = usage error).
 */
#include <stdio.h>
#include <string.h>

#include <ev.h>
#include <mbedtls/version.h>

#include "cli.h"

int cli_version(int argc, char **argv)
{
	char tls[32];

	if (argc > 1) {
		fprintf(stderr, "mesh version: unexpected argument '%s'\nusage: mesh version\n", argv[1]);
		return 2;
	}
	mbedtls_version_get_string(tls);
	printf("mesh %s\n", MESH_VERSION);
	printf("mbedTLS %s\n", tls);
	printf("libev %d.%d\n", ev_version_major(), ev_version_minor());
	printf("inih %s\n", MESH_INIH_VERSION);
	return 0;
}
