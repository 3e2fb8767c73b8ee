#define LOG_PREFIX "fault: "
#include "common/fault.h"
#include "common/log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fault_def {
	const char *name;
	int err;
};

static const struct fault_def defs[FP__COUNT] = {
#define FAULT_DEF(e, s, er) [e] = { s, er },
	FAULT_POINTS(FAULT_DEF)
#undef FAULT_DEF
};

/* Armed points and their hit counters: process-wide by nature, since the
 * switch is the environment of the process. */
static struct {
	int loaded;
	unsigned long due[FP__COUNT];  /* 0 = not armed */
	unsigned long hits[FP__COUNT];
} st;

static void load(void)
{
	const char *env = getenv("CRYO_FAULT");
	char buf[512], *save = NULL, *tok;

	memset(&st, 0, sizeof(st));
	st.loaded = 1;
	if (!env || !*env)
		return;
	strncpy(buf, env, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *at = strchr(tok, '@');
		unsigned long n = 1;
		int i;

		if (at) {
			*at = 0;
			n = strtoul(at + 1, NULL, 10);
			if (!n)
				n = 1;
		}
		for (i = 0; i < FP__COUNT; i++)
			if (!strcmp(defs[i].name, tok))
				break;
		if (i == FP__COUNT) {
			pr_warn("unknown fault point '%s' in CRYO_FAULT", tok);
			continue;
		}
		st.due[i] = n;
	}
}

void fault_reset(void)
{
	st.loaded = 0;
}

const char *fault_name(enum fault_point fp)
{
	return fp < FP__COUNT ? defs[fp].name : "?";
}

int fault_fire(enum fault_point fp)
{
	if (!st.loaded)
		load();
	if (fp >= FP__COUNT || !st.due[fp])
		return 0;
	if (++st.hits[fp] != st.due[fp])
		return 0;
	pr_info("fault point %s fires (hit %lu)", defs[fp].name, st.hits[fp]);
	if (!defs[fp].err) {
		kill(getpid(), SIGKILL);
		_exit(137);
	}
	return -defs[fp].err;
}
