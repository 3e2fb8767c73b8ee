#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The threshold comes from the environment once; it is the one piece of
 * process-wide state here, like stderr itself. */
static enum log_level threshold(void)
{
	static int cached = -1;
	if (cached < 0) {
		const char *v = getenv("CRYO_LOG");
		cached = LOG_WARN;
		if (v) {
			if (!strcmp(v, "debug")) cached = LOG_DEBUG;
			else if (!strcmp(v, "info")) cached = LOG_INFO;
			else if (!strcmp(v, "error")) cached = LOG_ERROR;
			else if (!strcmp(v, "quiet")) cached = LOG_QUIET;
		}
	}
	return (enum log_level)cached;
}

int log_enabled(enum log_level lvl)
{
	return lvl >= threshold();
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error", "" };
	char line[1024];
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cryo %s: %s\n", names[lvl], line);
}
