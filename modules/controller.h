/*
 * controller: the control plane (Pilot's role). `mesh controller -c mesh.ini`
 * keeps a registry of proxies (each registers over mTLS; its identity is its
 * certificate's; a lease renewed by its snapshot polls), puts their endpoints
 * beside mesh.ini's static ones, and serves every proxy its snapshot: the
 * mesh part in INI, long-polled with a version, sent only when it changed.
 * mesh.ini is reloaded when it changes or on SIGHUP; an invalid file is
 * refused and the previous one keeps serving. `mesh up` is the same with the
 * CA served from the same process. `mesh proxy-status` asks the controller's
 * admin listener. The protocol is in docs/protocol.md.
 */
#ifndef MESH_CONTROLLER_H
#define MESH_CONTROLLER_H

/* the identity the controller serves with; proxies accept only it */
#define CONTROLLER_NS "mesh-system"
#define CONTROLLER_SA "mesh-controller"

int controller_main(int argc, char **argv);   /* mesh controller -c mesh.ini */
int controller_up_main(int argc, char **argv); /* mesh up -c mesh.ini */
int proxy_status_main(int argc, char **argv); /* mesh proxy-status [--admin ADDR | -c mesh.ini] */

#endif
