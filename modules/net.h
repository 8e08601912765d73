/*
 * net: sockets. Listeners, non-blocking connects, socket options, address
 * text. Everything returns -1 with errno set on failure.
 */
#ifndef MESH_NET_H
#define MESH_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* non-blocking listening socket with SO_REUSEADDR; backlog 1024 */
int net_listen(const struct sockaddr *sa, socklen_t len);

/* non-blocking TCP socket, TCP_NODELAY, connect started; *in_progress = 1 when EINPROGRESS */
int net_connect(const struct sockaddr *sa, socklen_t len, int *in_progress);

/* SO_ERROR of a socket whose connect finished (0 = connected) */
int net_connect_result(int fd);

/* accept4 non-blocking; fills peer ip text (no port) into ip[46] */
int net_accept(int lfd, char ip[46]);

/* "1.2.3.4" / "::1" for an address (no port) */
void net_ip_text(const struct sockaddr *sa, char out[46]);

#endif
