/*
 * admin: a tiny read-only HTTP/1.1 server for admin endpoints (/ready,
 * /config, /metrics...). One request per connection, answered then closed;
 * never on the data path. The owner supplies a handler that renders a body.
 */
#ifndef MESH_ADMIN_H
#define MESH_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

struct ev_loop;
struct admin;

/* fills body, sets *content_type (default text/plain), returns the status code */
typedef int (*admin_handler_fn)(void *ctx, const char *method, size_t method_len, const char *path,
                             size_t path_len, struct strbuf *body, const char **content_type);

/* starts listening; NULL with errno set when the address cannot be bound */
struct admin *admin_start(struct ev_loop *loop, const struct sockaddr *sa, socklen_t len,
                          admin_handler_fn h, void *ctx);
/* stops listening and closes open admin connections */
void admin_stop(struct admin *a);

/*
 * Streams (the proxy's /tap): inside a handler, admin_stream_begin turns the
 * request into a long-lived response: the head goes out without a length,
 * then whatever admin_stream_write queues, until the client closes or
 * admin_stream_end. on_close(arg) runs once when the stream ends for any
 * reason (not after admin_stream_end). NULL outside a handler or for HEAD.
 */
struct admin_stream;
struct admin_stream *admin_stream_begin(void (*on_close)(void *arg), void *arg);
/* queues data: 0, or -1 when the client is too slow (more than 256 KiB waiting): dropped */
int admin_stream_write(struct admin_stream *s, const char *data, size_t len);
void admin_stream_end(struct admin_stream *s);

#endif
