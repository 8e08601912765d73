/*
 * proxy: the sidecar data plane (`mesh proxy -c proxy.ini`).
 *
 * Listeners: inbound (peers -> local app), outbound (local app -> mesh
 * services, as an HTTP proxy or by Host), per-service local ports, and the
 * admin listener (/ready, /config, /metrics).
 */
#ifndef MESH_PROXY_H
#define MESH_PROXY_H

int proxy_main(int argc, char **argv);

#endif
