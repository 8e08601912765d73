/*
 * cli: the one-shot tools (`mesh version`, later `mesh check`, `mesh stat`...).
 */
#ifndef MESH_CLI_H
#define MESH_CLI_H

int cli_version(int argc, char **argv);

#endif
