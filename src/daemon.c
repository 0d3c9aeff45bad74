/* daemon.c - wiring of the daemon: connections, workers, signals, reload
 * and the orderly stop. */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "child.h"
#include "ckpt.h"
#include "config.h"
#include "ctl.h"
#include "fleet.h"
#include "jobdef.h"
#include "log.h"
#include "notify.h"
#include "pgconn.h"
#include "prune.h"
#include "tenants.h"
#include "queue.h"
#include "runner.h"
#include "sched.h"
#include "setup.h"
#include "util.h"

/* Say so, once, when the daemon's role is a superuser: job SQL, the code
 * of the tables it writes (triggers) and the restored dumps then run with
 * every right in the cluster. */
static void daemon_check_superuser(struct daemon *d, struct pgconn *conn)
{
	const char *su = pgconn_parameter(conn, "is_superuser");
	const char *role = pgconn_parameter(conn, "session_authorization");
	char *shown;

	if (d->superuser_warned || su == NULL || strcmp(su, "on") != 0)
		return;
	d->superuser_warned = true;
	shown = display_escape(role ? role : "?", 64, false);
	log_warning(
		"connected to the database as superuser '%s': job SQL and trigger code of the tables jobs write run with every right in the cluster; run pgtenantd as a dedicated role that is not a superuser (README.md, \"Running with least privilege\")",
		shown);
	free(shown);
}

static void daemon_maybe_exit(struct daemon *d);

/* The schema and the daemon's rows are in place: the queue may claim. */
static void daemon_setup_done(bool ok, const char *error, void *arg)
{
	struct daemon *d = arg;

	if (ok) {
		queue_schema_ready(d->queue);
		return;
	}
	if (!pgconn_is_ready(d->engine.dispatcher))
		return; /* the connection broke: setup runs again */
	log_error("%s", error ? error : "installing the schema failed");
	d->exit_code = 1;
	daemon_begin_stop(d, "the database schema cannot be used");
}

static void dispatcher_state(struct pgconn *conn, bool connected, void *arg)
{
	struct daemon *d = arg;

	if (connected)
		daemon_check_superuser(d, conn);
	queue_on_connected(d->queue, connected);
	if (connected)
		setup_start(&d->engine, daemon_setup_done, d);
	if (!connected && !d->engine.stopping) {
		notify_status("database connection lost; reconnecting");
	}
	if (!connected)
		daemon_maybe_exit(d);
}

static void dispatcher_notify(struct pgconn *conn, const char *channel,
			      const char *payload, void *arg)
{
	struct daemon *d = arg;

	queue_on_notify(d->queue, channel, payload);
	if (strcmp(payload, "fleet") == 0)
		fleet_notified(d->fleet);
}

static void worker_state(struct pgconn *conn, bool connected, void *arg)
{
	struct worker *w = arg;
	struct daemon *d = w->engine->hooks.arg;

	/* a job whose connection broke was handed back by its runner; the
	 * worker is free to claim again */
	if (connected)
		queue_kick(d->queue);
}

/* Exit the loop once no job is running or being recorded. */
static void daemon_maybe_exit(struct daemon *d)
{
	if (!d->engine.stopping)
		return;
	if (engine_busy_workers(&d->engine) > 0)
		return;
	/* job ends not recorded yet wait for the database, through a
	 * reconnect too (shutdown_timeout bounds it): left to the next start,
	 * a hand-back would spend its attempt, and a job that succeeded on its
	 * last attempt would be failed */
	if (queue_finishing(d->queue) > 0)
		return;
	/* exiting now would leave what that call claims running, without a
	 * daemon, until its lease expired */
	if (queue_claim_in_flight(d->queue) &&
	    pgconn_is_ready(d->engine.dispatcher))
		return;
	event_base_loopexit(d->engine.base, NULL);
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	log_warning(
		"shutdown timeout: exiting with %u job(s) still running and %u job end(s) not recorded; their leases will expire and another daemon takes them",
		engine_busy_workers(&d->engine), queue_finishing(d->queue));
	event_base_loopexit(d->engine.base, NULL);
}

/* Begin the orderly stop: no more claims, running jobs handed back. */
void daemon_begin_stop(struct daemon *d, const char *why)
{
	struct timeval tv;

	if (d->engine.stopping)
		return;
	d->engine.stopping = true;
	notify_stopping();
	notify_status("stopping (%s)", why);
	log_info("stopping (%s): handing back %u running job(s)", why,
		 engine_busy_workers(&d->engine));
	for (unsigned i = 0; i < d->engine.worker_count; i++) {
		struct job *job = d->engine.workers[i].job;

		if (job != NULL)
			runner_interrupt(job, JOB_INTERRUPT_STOP);
	}
	/* jobs claimed ahead go back to the queue */
	queue_kick(d->queue);
	tv.tv_sec = d->engine.config->shutdown_timeout_ms / 1000;
	tv.tv_usec = (d->engine.config->shutdown_timeout_ms % 1000) * 1000;
	d->shutdown_timer = evtimer_new(d->engine.base, shutdown_timeout_cb, d);
	evtimer_add(d->shutdown_timer, &tv);
	daemon_maybe_exit(d);
}

static void swap_strv(char ***a, char ***b)
{
	char **t = *a;

	*a = *b;
	*b = t;
}

/* Note a setting that changed but needs a restart. */
static void reload_note(char **notes, const char *key, bool changed)
{
	char *next;

	if (!changed)
		return;
	next = xasprintf("%s%s%s", *notes ? *notes : "", *notes ? ", " : "",
			 key);
	free(*notes);
	*notes = next;
}

static bool str_differs(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

/* Move the new file's schedules into the running configuration. */
static void daemon_swap_schedules(struct config *old, struct config *fresh)
{
	struct schedule_config *schedules = old->schedules;
	unsigned count = old->schedule_count;

	old->schedules = fresh->schedules;
	old->schedule_count = fresh->schedule_count;
	fresh->schedules = schedules;
	fresh->schedule_count = count;
}

/* True if the control socket's mode, limits or allowed peers changed:
 * ctl_listen_with took them at start. */
static bool control_access_differs(const struct config *a,
				   const struct config *b)
{
	return a->control_socket_mode != b->control_socket_mode ||
	       a->control_max_clients != b->control_max_clients ||
	       a->control_idle_timeout_ms != b->control_idle_timeout_ms ||
	       a->control_allow_uid_count != b->control_allow_uid_count ||
	       a->control_allow_gid_count != b->control_allow_gid_count ||
	       memcmp(a->control_allow_uids, b->control_allow_uids,
		      a->control_allow_uid_count * sizeof(uid_t)) != 0 ||
	       memcmp(a->control_allow_gids, b->control_allow_gids,
		      a->control_allow_gid_count * sizeof(gid_t)) != 0;
}

/* Reload the configuration and the job definitions. */
bool daemon_reload(struct daemon *d, char **message)
{
	struct config *fresh, *old = d->engine.config;
	struct jobdefs *defs;
	char *cause = NULL, *restart = NULL, *swap;

	fresh = config_load(d->config_path, &cause);
	if (fresh == NULL) {
		set_cause(
			message,
			"reload refused, keeping the running configuration: %s",
			cause);
		free(cause);
		return false;
	}
	defs = jobdefs_load_dir(fresh->jobs_dir, fresh->batch_target_ms,
				&cause);
	if (defs == NULL) {
		set_cause(
			message,
			"reload refused, keeping the loaded job definitions: %s",
			cause);
		free(cause);
		config_free(fresh);
		return false;
	}
	reload_note(&restart, "database",
		    str_differs(old->database, fresh->database));
	reload_note(&restart, "state_dir",
		    str_differs(old->state_dir, fresh->state_dir));
	reload_note(&restart, "control_socket",
		    str_differs(old->control_socket, fresh->control_socket));
	reload_note(
		&restart,
		"control_socket_mode, control_allow_*, control_max_clients, control_idle_timeout",
		control_access_differs(old, fresh));
	reload_note(&restart, "workers", old->workers != fresh->workers);
	reload_note(&restart, "lease", old->lease_ms != fresh->lease_ms);
	reload_note(&restart, "poll_interval",
		    old->poll_interval_ms != fresh->poll_interval_ms);
	reload_note(&restart, "listen", old->listen != fresh->listen);

	old->log_level = fresh->log_level;
	log_set_level(old->log_level);
	old->log_format = fresh->log_format;
	log_set_format(old->log_format);
	old->retry_base_ms = fresh->retry_base_ms;
	old->retry_max_ms = fresh->retry_max_ms;
	old->batch_target_ms = fresh->batch_target_ms;
	old->test_hooks = fresh->test_hooks; /* checked at each claim */
	swap = old->jobs_dir;
	old->jobs_dir = fresh->jobs_dir;
	fresh->jobs_dir = swap;
	swap = old->backup_dir;
	old->backup_dir = fresh->backup_dir;
	fresh->backup_dir = swap;
	swap = old->restore_role;
	old->restore_role = fresh->restore_role;
	fresh->restore_role = swap;
	daemon_swap_schedules(old, fresh);
	old->backup_keep = fresh->backup_keep;
	old->backup_max_age_ms = fresh->backup_max_age_ms;
	/* read at each pruning round; the interval from the next one on */
	old->keep_succeeded_ms = fresh->keep_succeeded_ms;
	old->keep_failed_ms = fresh->keep_failed_ms;
	old->keep_slots_ms = fresh->keep_slots_ms;
	old->keep_removed_backups_ms = fresh->keep_removed_backups_ms;
	old->keep_fleets_ms = fresh->keep_fleets_ms;
	old->prune_interval_ms = fresh->prune_interval_ms;
	swap_strv(&old->hook_on_failure, &fresh->hook_on_failure);
	swap_strv(&old->hook_on_success, &fresh->hook_on_success);
	swap_strv(&old->tenant_roles, &fresh->tenant_roles);
	old->hook_timeout_ms = fresh->hook_timeout_ms;
	old->tenant_snapshot_interval_ms = fresh->tenant_snapshot_interval_ms;
	old->keep_tenant_history_ms = fresh->keep_tenant_history_ms;
	old->metrics_max_tenants = fresh->metrics_max_tenants;
	old->backup_min_free_bytes = fresh->backup_min_free_bytes;
	old->database_max_bytes = fresh->database_max_bytes; /* to settings */
	old->fleet_interval_ms = fresh->fleet_interval_ms;
	old->args_bytes = fresh->args_bytes; /* to pgtenantd.settings below */
	old->result_bytes = fresh->result_bytes;
	old->error_bytes = fresh->error_bytes;
	old->backup_digests = fresh->backup_digests; /* from the next backup */
	config_free(fresh);

	jobdefs_unref(d->engine.jobdefs);
	d->engine.jobdefs = defs;
	sched_reload(d->sched);
	tenants_reload(d->tenants);
	if (queue_ready(d->queue))
		setup_publish_kinds(&d->engine);
	if (message != NULL) {
		free(*message);
		*message = xasprintf(
			"reloaded: %u job kind(s) from %s%s%s", defs->count,
			old->jobs_dir,
			restart ? "; changed settings that need a restart: " :
				  "",
			restart ? restart : "");
	}
	free(restart);
	return true;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char *message = NULL;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		daemon_begin_stop(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGHUP:
		if (daemon_reload(d, &message))
			log_info("SIGHUP: %s", message);
		else
			log_error("SIGHUP: %s", message);
		free(message);
		break;
	}
}

/* Fleets released held jobs: claim them now, without waiting for the
 * NOTIFY (listen may be off). */
static void daemon_fleet_released(void *arg)
{
	struct daemon *d = arg;

	queue_kick(d->queue);
}

/* The engine's hook: what the queue asks of the daemon. */
static void daemon_engine_idle(struct engine *e)
{
	struct daemon *d = e->hooks.arg;

	fleet_idle(d->fleet, queue_finishing(d->queue));
	daemon_maybe_exit(d);
}

/* The engine's hook: a worker whose cancels were answered may take a job. */
static void daemon_worker_free(struct engine *e)
{
	struct daemon *d = e->hooks.arg;

	queue_kick(d->queue);
}

/* Create everything and start connecting. False with cause on failure. */
bool daemon_init(struct daemon *d, struct config *config, struct jobdefs *defs,
		 ctl_handler_fn ctl_handler, char **cause)
{
	const struct ctl_options ctl_options = {
		.path = config->control_socket,
		.mode = config->control_socket_mode,
		.max_clients = config->control_max_clients,
		.idle_timeout_ms = config->control_idle_timeout_ms,
		.allow_uids = config->control_allow_uids,
		.allow_uid_count = config->control_allow_uid_count,
		.allow_gids = config->control_allow_gids,
		.allow_gid_count = config->control_allow_gid_count,
	};

	d->engine.config = config;
	d->engine.jobdefs = defs;
	d->engine.hooks.idle = daemon_engine_idle;
	d->engine.hooks.worker_free = daemon_worker_free;
	d->engine.hooks.arg = d;
	d->pid = getpid();
	d->started_at = wall_seconds();
	if (gethostname(d->host, sizeof(d->host)) != 0)
		snprintf(d->host, sizeof(d->host), "localhost");
	d->host[sizeof(d->host) - 1] = '\0';
	log_set_level(config->log_level);
	log_set_format(config->log_format);

	d->engine.ckpt = ckpt_open(config->state_dir, cause);
	if (d->engine.ckpt == NULL)
		return false;
	snprintf(d->engine.owner, sizeof(d->engine.owner), "%s:%s", d->host,
		 ckpt_node_id(d->engine.ckpt));

	d->engine.base = event_base_new();
	if (d->engine.base == NULL)
		return set_cause(cause, "cannot create the event loop");
	child_init(d->engine.base);
	d->ctl = ctl_listen_with(d->engine.base, &ctl_options, ctl_handler, d,
				 cause);
	if (d->ctl == NULL)
		return false;

	d->queue = queue_new(&d->engine);
	d->engine.dispatcher = engine_connect(&d->engine, "dispatcher",
					      dispatcher_state,
					      dispatcher_notify, d);
	d->engine.worker_count = config->workers;
	d->engine.workers =
		xcalloc(d->engine.worker_count, sizeof(*d->engine.workers));
	for (unsigned i = 0; i < d->engine.worker_count; i++) {
		struct worker *w = &d->engine.workers[i];
		char name[32];

		w->engine = &d->engine;
		w->index = i + 1;
		snprintf(name, sizeof(name), "worker %u", w->index);
		w->conn =
			engine_connect(&d->engine, name, worker_state, NULL, w);
	}
	d->sched = sched_new(&d->engine);
	d->prune = prune_new(&d->engine);
	d->tenants = tenants_new(&d->engine);
	d->fleet = fleet_new(&d->engine, daemon_fleet_released, d);

	d->sig_term = evsignal_new(d->engine.base, SIGTERM, signal_cb, d);
	d->sig_int = evsignal_new(d->engine.base, SIGINT, signal_cb, d);
	d->sig_hup = evsignal_new(d->engine.base, SIGHUP, signal_cb, d);
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
	evsignal_add(d->sig_hup, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info(
		"pgtenantd %s starting as %s: %u worker(s), %u job kind(s) from %s, control socket %s",
		PACKAGE_VERSION, d->engine.owner, d->engine.worker_count,
		defs->count, config->jobs_dir, config->control_socket);
	pgconn_start(d->engine.dispatcher);
	for (unsigned i = 0; i < d->engine.worker_count; i++)
		pgconn_start(d->engine.workers[i].conn);
	return true;
}

/* Run the loop until the daemon stops. */
int daemon_run(struct daemon *d)
{
	event_base_dispatch(d->engine.base);
	log_info("stopped");
	return d->exit_code;
}

/* Free everything daemon_init made. */
void daemon_cleanup(struct daemon *d)
{
	sched_free(d->sched);
	d->sched = NULL;
	for (unsigned i = 0; i < d->engine.worker_count; i++) {
		struct job *job = d->engine.workers[i].job;

		if (job != NULL) {
			d->engine.workers[i].job = NULL;
			job->worker = NULL;
		}
		pgconn_free(d->engine.workers[i].conn);
	}
	free(d->engine.workers);
	/* the dispatcher's cancels, failed when it is freed, find no worker */
	d->engine.workers = NULL;
	d->engine.worker_count = 0;
	if (d->engine.dispatcher != NULL)
		pgconn_free(d->engine.dispatcher);
	/* after the dispatcher, which may still answer its query */
	prune_free(d->prune);
	d->prune = NULL;
	tenants_free(d->tenants);
	d->tenants = NULL;
	fleet_free(d->fleet);
	d->fleet = NULL;
	queue_free(d->queue);
	if (d->ctl != NULL)
		ctl_close(d->ctl);
	if (d->sig_term != NULL) {
		event_free(d->sig_term);
		event_free(d->sig_int);
		event_free(d->sig_hup);
	}
	if (d->shutdown_timer != NULL)
		event_free(d->shutdown_timer);
	if (d->engine.ckpt != NULL)
		ckpt_close(d->engine.ckpt);
	if (d->engine.jobdefs != NULL)
		jobdefs_unref(d->engine.jobdefs);
	if (d->engine.config != NULL)
		config_free(d->engine.config);
	if (d->engine.base != NULL)
		event_base_free(d->engine.base);
}
