/* daemon.h - the daemon's state: one event loop, its connections, workers,
 * loaded configuration and job definitions. */
#ifndef PGT_DAEMON_H
#define PGT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "ctl.h"
#include "engine.h"
#include "util.h"

struct event;
struct event_base;
struct config;
struct jobdefs;
struct ckpt;
struct pgconn;
struct ctl_server;
struct queue;
struct job;
struct sched;

struct daemon {
	struct engine engine; /* what the scheduler, queue and runner share */
	char *config_path;
	char host[64];
	pid_t pid;
	double started_at; /* wall seconds */

	struct queue *queue;
	struct ctl_server *ctl;
	struct sched *sched;	 /* schedules (sched.c) */
	struct prune *prune;	 /* history kept bounded (prune.c) */
	struct tenants *tenants; /* tenant snapshots (tenants.c) */
	struct fleet *fleet;	 /* fleets advanced (fleet.c) */

	bool foreground;
	bool superuser_warned; /* the superuser warning was logged */
	int exit_code;

	struct event *sig_term, *sig_int, *sig_hup;
	struct event *shutdown_timer;
};

/* Create everything (state_dir lock, control socket, connections) and
 * start connecting; takes ownership of config and defs. The control
 * socket's requests go to ctl_handler with d as its arg (ctlcmd_handle:
 * the commands sit above the daemon, which only listens for them). */
bool daemon_init(struct daemon *d, struct config *config, struct jobdefs *defs,
		 ctl_handler_fn ctl_handler, char **cause) MUST_CHECK;

/* Run the event loop until the daemon stops; returns the exit code. */
int daemon_run(struct daemon *d);

/* Free everything daemon_init made. */
void daemon_cleanup(struct daemon *d);

/* Reload the configuration and job definitions (SIGHUP, `reload`). A bad new
 * file keeps the old state; the cause says why. Settings that need a restart
 * (database, state_dir, workers, control_socket) are reported, not applied. */
bool daemon_reload(struct daemon *d, char **message);

/* Begin the orderly stop: no more claims, running jobs handed back. */
void daemon_begin_stop(struct daemon *d, const char *why);

#endif
