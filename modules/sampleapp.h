/*
 * sampleapp: the Bookinfo workloads (productpage, details, reviews v1/v2/v3,
 * ratings) inside the binary, as the hidden mode `mesh sample-app`, for labs
 * and tests. See docs/bookinfo.md.
 */
#ifndef MESH_SAMPLEAPP_H
#define MESH_SAMPLEAPP_H

/* mesh sample-app NAME [--version vN] [--listen ADDR] [--proxy ADDR] [--quiet] */
int sampleapp_main(int argc, char **argv);

#endif
