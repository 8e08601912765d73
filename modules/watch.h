/*
 * watch: the proxy's side of the controller protocol (docs/protocol.md).
 * A thread registers the workload with `mesh controller` over mTLS, then
 * long-polls its snapshot (each poll renews the lease). Each snapshot is
 * loaded together with the proxy's own file - the same parser and validator
 * as for files - and only a valid one is handed to the loop; a refused one is
 * reported back and the running configuration stays. When the controller is
 * away the proxy keeps its last snapshot and reconnects with backoff and
 * jitter (static stability); with [control] snapshot_file the last snapshot
 * is also kept on disk, so a restarted proxy starts from it.
 */
#ifndef MESH_WATCH_H
#define MESH_WATCH_H

#include "conf.h"
#include "tls.h"

struct ev_loop;

/* a snapshot accepted by the thread: cf loaded from the proxy file + text */
typedef void (*watch_update_fn)(struct conf *cf, const char *version, char *text, void *arg);

/*
 * Starts the thread for the proxy file path (its [control] controller) with
 * identity creds; have / have_version: the snapshot already applied (from
 * snapshot_file), or NULL. on_update runs on loop's thread and owns cf and text.
 */
int watch_start(struct ev_loop *loop, const char *path, const struct conf *cf, struct tls_creds *creds,
                const char *have_version, watch_update_fn on_update, void *arg);

/*
 * Waits up to timeout_s for the first snapshot and takes it (on_update is not
 * called for it): NULL on timeout, with the last error in err.
 */
struct conf *watch_first(double timeout_s, char **text, char version[17], char *err, size_t errlen);

void watch_set_creds(struct tls_creds *c);   /* a renewed identity for new connections */
void watch_deregister(void);                 /* draining: tell the controller, stop polling */
void watch_stop(void);

/* snapshot_file: reads one written by a proxy: the text and its version, or NULL */
char *watch_read_snapshot(const char *path, char version[17]);

#endif
