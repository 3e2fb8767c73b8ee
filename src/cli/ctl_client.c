/* What cryo asks cryod through its control socket (daemon/ctl.h): the
 * commands a user other than root runs, on the groups that are theirs. */
#include "cli/cli.h"
#include "cli/json.h"
#include "daemon/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* fd: where an fd passed with the reply goes (NULL: none wanted) */
static int call_fd(struct cli *c, const Cryo__CtlRequest *req, Cryo__CtlReply **rep, int *fd)
{
	int got, r = ctl_call_fd(cli_home(), req, rep, &got);

	if (fd)
		*fd = got;
	else if (got >= 0)
		close(got);

	if (r == -ENOENT || r == -EACCES)
		return cli_fail(c, "cryod is not running for %s%s (users other than root go "
				"through it; root starts it with 'cryo daemon start')", cli_home(),
				r == -EACCES ? ", or it is not open to you" : "");
	if (r)
		return cli_fail(c, "talking to cryod: %s", strerror(-r));
	if ((*rep)->err) {
		r = cli_fail(c, "%s", (*rep)->text ? (*rep)->text : strerror(-(*rep)->err));
		cryo__ctl_reply__free_unpacked(*rep, NULL);
		if (fd && *fd >= 0)
			close(*fd);
		return r;
	}
	return CLI_OK;
}

static int call(struct cli *c, const Cryo__CtlRequest *req, Cryo__CtlReply **rep)
{
	return call_fd(c, req, rep, NULL);
}

int cli_ctl_ps(struct cli *c, int json)
{
	Cryo__CtlRequest req = CRYO__CTL_REQUEST__INIT;
	Cryo__CtlReply *rep;
	struct json j;
	int rc;

	req.op = "ps";
	rc = call(c, &req, &rep);
	if (rc)
		return rc;
	if (json) {
		json_init(&j, stdout);
		json_arr_begin(&j);
	} else {
		printf("%-16s %8s %-8s %8s\n", "NAME", "PID", "STATE", "NS-PID");
	}
	for (size_t i = 0; i < rep->n_groups; i++) {
		const Cryo__CtlGroup *g = rep->groups[i];

		if (!json) {
			char np[16] = "-";

			if (g->has_ns_pid)
				snprintf(np, sizeof(np), "%d", g->ns_pid);
			printf("%-16s %8d %-8s %8s\n", g->name, g->pid, g->state, np);
			continue;
		}
		json_obj_begin(&j);
		json_kv_str(&j, "name", g->name);
		json_key(&j, "pid");
		json_i64(&j, g->pid);
		json_key(&j, "ns_pid");
		if (g->has_ns_pid)
			json_i64(&j, g->ns_pid);
		else
			json_null(&j);
		json_kv_str(&j, "state", g->state);
		json_obj_end(&j);
	}
	if (json) {
		json_arr_end(&j);
		json_end(&j);
	}
	cryo__ctl_reply__free_unpacked(rep, NULL);
	return CLI_OK;
}

/* Send a request about one group; print cryod's answer. */
static int act(struct cli *c, const Cryo__CtlRequest *req)
{
	Cryo__CtlReply *rep;
	int rc = call(c, req, &rep);

	if (rc)
		return rc;
	printf("%s\n", rep->text ? rep->text : req->name);
	cryo__ctl_reply__free_unpacked(rep, NULL);
	return CLI_OK;
}

int cli_ctl_snap(struct cli *c, const char *name, int weak, int freeze)
{
	Cryo__CtlRequest req = CRYO__CTL_REQUEST__INIT;

	req.op = freeze ? "freeze" : "snap";
	req.name = (char *)name;
	req.has_weak = 1;
	req.weak = weak != 0;
	return act(c, &req);
}

int cli_ctl_melt(struct cli *c, const char *name)
{
	Cryo__CtlRequest req = CRYO__CTL_REQUEST__INIT;

	req.op = "melt";
	req.name = (char *)name;
	return act(c, &req);
}

int cli_ctl_rm(struct cli *c, const char *name, int force)
{
	Cryo__CtlRequest req = CRYO__CTL_REQUEST__INIT;

	req.op = "rm";
	req.name = (char *)name;
	req.has_force = 1;
	req.force = force != 0;
	return act(c, &req);
}

int cli_ctl_attach(struct cli *c, const char *name, int *fd)
{
	Cryo__CtlRequest req = CRYO__CTL_REQUEST__INIT;
	Cryo__CtlReply *rep;
	int rc;

	req.op = "attach";
	req.name = (char *)name;
	rc = call_fd(c, &req, &rep, fd);
	if (rc)
		return rc;
	cryo__ctl_reply__free_unpacked(rep, NULL);
	if (*fd < 0)
		return cli_fail(c, "attach %s: cryod sent no terminal", name);
	return CLI_OK;
}
