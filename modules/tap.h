/*
 * tap: live requests (linkerd viz tap / top). The proxy side keeps the
 * subscribers of its admin /tap endpoint (off unless [proxy] tap = on) and
 * writes one line per finished request that matches their filters,
 * rate-limited per subscriber (excess dropped and counted, never queued
 * without bound). `mesh tap` and `mesh top` read those streams from every
 * proxy the controller knows (or the --admin addresses given).
 *
 * A line: "dir=outbound id=REQID src=IP src_id=SPIFFE dst=ADDR dst_id=SPIFFE
 * svc=NAME :method=GET :authority=A :path=/p :status=200 latency_ms=1.234
 * flags=- bytes_in=0 bytes_out=295" (ids "-" when absent; no spaces inside
 * values: anything unprintable becomes '?').
 */
#ifndef MESH_TAP_H
#define MESH_TAP_H

#include <stddef.h>

#include "buf.h"

struct tap_event {
	int inbound;
	const char *request_id, *src, *src_id, *dst, *dst_id, *service;
	const char *method, *authority, *path, *flags;
	int status;
	double latency_ms;
	unsigned long long bytes_in, bytes_out;
};

extern int tap_subscribers;          /* > 0: record() builds events */

/* a finished request, for every subscriber whose filters match */
void tap_publish(const struct tap_event *e, double now);

/*
 * The admin handler's /tap?service=S&path=PREFIX&method=M&rps=N: starts a
 * stream (200) or explains (403 when enabled is 0, 429 when there are too
 * many subscribers, 400 for a bad parameter).
 */
int tap_admin(int enabled, const char *target, size_t len, struct strbuf *body, double now);

int tap_main(int argc, char **argv);   /* mesh tap SERVICE ... */
int top_main(int argc, char **argv);   /* mesh top SERVICE ... */

#endif
