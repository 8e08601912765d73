/*
 * demo: `mesh demo`, the whole Bookinfo lab on localhost in one command: a CA,
 * the six sidecars and the gateway, the six sample apps, each a child process
 * of this same binary, supervised until Ctrl-C. See docs/demo.md.
 */
#ifndef MESH_DEMO_H
#define MESH_DEMO_H

/* one of conf/bookinfo/NAME.ini, embedded at build time (build.sh writes build/demo_conf.c) */
struct demo_file {
	const char *name;  /* "mesh.ini" */
	const char *text;  /* the file's content */
};
extern const struct demo_file demo_files[];  /* ends with { 0, 0 } */

/* mesh demo [--dir D] [--port-base N] [--gateway-port P] [--timeout S] [--config-only] */
int demo_main(int argc, char **argv);

#endif
