/*
 * log: the process log (stderr), one line per event, with a level filter.
 * Access logs are the proxy's own business (proxy.c); this is for operators.
 */
#ifndef MESH_LOG_H
#define MESH_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_level;           /* messages above this level are dropped */
extern const char *log_prefix;  /* e.g. "proxy"; set once by the mode */

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  do { if (log_level >= LOG_WARN) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_level >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/* formats the current UTC time as 2026-11-25T16:48:24.123Z into out[32] */
void log_timestamp(char out[32]);

#endif
