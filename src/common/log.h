/* Logging: one line per event, prefixed with the module that said it.
 *
 * Each .c file defines LOG_PREFIX before including this header, e.g.
 *   #define LOG_PREFIX "store: "
 * Messages go to stderr. CRYO_LOG=debug|info|warn|error|quiet sets the
 * threshold (default: warn), so a test or the daemon can turn detail on
 * without a rebuild. */
#ifndef CRYO_COMMON_LOG_H
#define CRYO_COMMON_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_QUIET };

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int log_enabled(enum log_level lvl);

#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_msg(LOG_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_msg(LOG_WARN, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...)   log_msg(LOG_ERROR, LOG_PREFIX fmt, ##__VA_ARGS__)

#endif
