/* ctlcmd.c - the commands of the control socket: status from memory (with
 * the running migrations' state from the database), job listings from the
 * database, cancel, pause, resume, reload, metrics, and the online
 * migration's cutover and throttle. */
#include "ctlcmd.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "backup.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "prometheus.h"
#include "pgconn.h"
#include "queue.h"
#include "runner.h"
#include "sched.h"
#include "tenant.h"
#include "tenants.h"
#include "util.h"

#define JOBS_LIST_LIMIT 200
#define BACKUPS_LIST_LIMIT 500
/* How long status waits for the running migrations' state before it
 * answers without it (the dispatcher may be busy with a claim). */
#define STATUS_DB_WAIT_MS 300
/* The longest cutover and throttle wait for the migration's row, which a
 * step of the job may hold (a cut-over attempt, at most its lock budget):
 * they run on the dispatcher, whose heartbeats must not wait longer than
 * a quarter of the lease. */
#define MIGRATION_CTL_LOCK_MAX_MS 2000

static const char *const job_states[] = {
	"queued", "running", "succeeded", "failed", "cancelled", NULL,
};

/* Parse a positive job id; false if the text is not one. */
static bool parse_job_id(const char *text, int64_t *id)
{
	char *end;
	long long v;

	if (text == NULL || *text == '\0')
		return false;
	v = strtoll(text, &end, 10);
	if (*end != '\0' || v <= 0)
		return false;
	*id = v;
	return true;
}

/* A status answer waiting for the running migrations' state. */
struct status_reply {
	struct ctl_client *client; /* NULL once answered */
	json_t *response;
	struct event *timer; /* answers without the migrations when it fires */
};

/* Answer the status request once. */
static void status_send(struct status_reply *sr)
{
	if (sr->client == NULL)
		return;
	ctl_reply(sr->client, json_deep_copy(sr->response));
	sr->client = NULL;
}

static void status_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	status_send(arg);
}

/* Put each row of pgtenantd.migration_status under "migration" in the
 * running job it belongs to, answer if not done yet, and free sr. */
static void status_migrations(const struct pgconn_result *r, void *arg)
{
	struct status_reply *sr = arg;
	json_t *running = json_object_get(sr->response, "running");
	json_t *rows = NULL, *row, *job;
	size_t i, j;

	if (r->error != NULL)
		log_debug("status: the running migrations' state: %s",
			  r->error);
	else if (sr->client != NULL)
		rows = json_loads(PQgetvalue(r->res, 0, 0), 0, NULL);
	json_array_foreach(rows, i, row) {
		json_t *id = json_object_get(row, "job_id");

		json_array_foreach(running, j, job) {
			if (json_is_integer(id) &&
			    json_integer_value(json_object_get(job, "id")) ==
				    json_integer_value(id))
				json_object_set(job, "migration", row);
		}
	}
	json_decref(rows);
	status_send(sr);
	event_free(sr->timer);
	json_decref(sr->response);
	free(sr);
}

/* Ask for the state of the running jobs that are migrations (rows of
 * pgtenantd.migration_status), waiting at most STATUS_DB_WAIT_MS, then
 * answer. Without a database connection the answer goes at once. */
static void status_with_migrations(struct daemon *d, struct ctl_client *client,
				   json_t *response)
{
	json_t *running = json_object_get(response, "running");
	struct timeval tv = { .tv_sec = STATUS_DB_WAIT_MS / 1000,
			      .tv_usec = (STATUS_DB_WAIT_MS % 1000) * 1000 };
	struct status_reply *sr;
	const char *params[1];
	json_t *ids, *job;
	char *text;
	size_t i;

	if (json_array_size(running) == 0 ||
	    !pgconn_is_ready(d->engine.dispatcher) || !queue_ready(d->queue)) {
		ctl_reply(client, response);
		return;
	}
	ids = json_array();
	json_array_foreach(running, i, job)
		json_array_append(ids, json_object_get(job, "id"));
	text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	sr = xcalloc(1, sizeof(*sr));
	sr->client = client;
	sr->response = response;
	sr->timer = evtimer_new(d->engine.base, status_timeout, sr);
	evtimer_add(sr->timer, &tv);
	params[0] = text;
	pgconn_query(d->engine.dispatcher,
		     "SELECT coalesce(json_agg(s), '[]')"
		     " FROM pgtenantd.migration_status s"
		     " WHERE s.job_id IN (SELECT value::bigint"
		     " FROM jsonb_array_elements_text($1::jsonb))",
		     1, params, status_migrations, sr);
	free(text);
}

/* status: the daemon and its running jobs, from memory; a running
 * migration's state from the database if it comes in time. */
static void cmd_status(struct daemon *d, struct ctl_client *client)
{
	json_t *running = json_array();

	for (unsigned i = 0; i < d->engine.worker_count; i++) {
		const struct job *job = d->engine.workers[i].job;
		json_t *progress, *eta;

		if (job == NULL)
			continue;
		progress = runner_status(job);
		eta = json_object_get(progress, "eta_s");
		json_array_append_new(
			running,
			json_pack(
				"{s:I, s:s, s:s, s:i, s:s?, s:i, s:i, s:f, "
				"s:O?, s:o}",
				"id", (json_int_t)job->id, "kind", job->kind,
				"tenant_id", job->tenant_id, "worker",
				d->engine.workers[i].index, "step",
				json_string_value(
					json_object_get(progress, "step")),
				"attempts", job->attempts, "max_attempts",
				job->max_attempts, "running_s",
				round((wall_seconds() - job->started_at) * 10) /
					10,
				"eta_s", eta, "progress", progress));
	}
	status_with_migrations(
		d, client,
		json_pack(
			"{s:{s:s, s:s, s:i, s:s, s:I, s:b, s:b, s:b, s:b, "
			"s:i, s:i, s:i}, s:o}",
			"daemon", "id", d->engine.owner, "host", d->host, "pid",
			(int)d->pid, "version", PACKAGE_VERSION, "uptime_s",
			(json_int_t)(wall_seconds() - d->started_at), "paused",
			d->engine.paused, "stopping", d->engine.stopping,
			"db_connected", pgconn_is_ready(d->engine.dispatcher),
			"ready", queue_ready(d->queue), "workers",
			(int)d->engine.worker_count, "busy",
			(int)engine_busy_workers(&d->engine), "finishing",
			(int)queue_finishing(d->queue), "running", running));
}

/* A database query's rows as JSON text in column 0, answered under key;
 * a further column that is not NULL (JSON text too) goes into that object
 * under its name. */
struct db_reply {
	struct ctl_client *client;
	const char *key;
	bool single;
	const char *missing; /* the error for no row; NULL: "no such job" */
};

static void db_reply_result(const struct pgconn_result *r, void *arg)
{
	struct db_reply *dr = arg;
	json_error_t jerr;
	json_t *value;

	if (r->error != NULL) {
		ctl_reply_error(dr->client, "%s%s",
				r->connection_lost ? "database unavailable: " :
						     "",
				r->error);
	} else if (dr->single && PQntuples(r->res) == 0) {
		ctl_reply_error(dr->client, "%s",
				dr->missing != NULL ? dr->missing :
						      "no such job");
	} else {
		value = json_loads(PQgetvalue(r->res, 0, 0), 0, &jerr);
		for (int c = 1; json_is_object(value) && c < PQnfields(r->res);
		     c++) {
			if (!PQgetisnull(r->res, 0, c))
				json_object_set_new(
					value, PQfname(r->res, c),
					json_loads(PQgetvalue(r->res, 0, c), 0,
						   NULL));
		}
		if (value == NULL)
			ctl_reply_error(dr->client,
					"bad JSON from the database: %s",
					jerr.text);
		else
			ctl_reply(dr->client,
				  json_pack("{s:o}", dr->key, value));
	}
	free(dr);
}

/* jobs [STATE]: the newest jobs, optionally of one state. */
static void cmd_jobs(struct daemon *d, struct ctl_client *client,
		     const struct ctl_request *req)
{
	struct db_reply *dr;
	const char *params[1] = { NULL };
	bool known = false;

	if (req->argc > 1) {
		ctl_reply_error(client, "usage: jobs [STATE]");
		return;
	}
	if (req->argc == 1) {
		for (const char *const *s = job_states; *s != NULL; s++)
			known |= strcmp(*s, req->args[0]) == 0;
		if (!known) {
			ctl_reply_error(
				client,
				"unknown job state \"%s\"; states are queued, running, succeeded, failed and cancelled",
				req->args[0]);
			return;
		}
		params[0] = req->args[0];
	}
	dr = xcalloc(1, sizeof(*dr));
	dr->client = client;
	dr->key = "jobs";
	pgconn_query(
		d->engine.dispatcher,
		"SELECT coalesce(json_agg(j ORDER BY j.id DESC), '[]') FROM"
		" (SELECT id, kind, tenant_id, state, step, attempts,"
		" max_attempts, priority, run_at, created_at, started_at,"
		" finished_at, last_error FROM pgtenantd.jobs"
		" WHERE $1::text IS NULL OR state = $1"
		" ORDER BY id DESC LIMIT " STRINGIFY(JOBS_LIST_LIMIT) ") j",
		1, params, db_reply_result, dr);
}

/* job ID: every column of one job; a migration's row of
 * pgtenantd.migration_status under "migration". */
static void cmd_job(struct daemon *d, struct ctl_client *client,
		    const struct ctl_request *req)
{
	struct db_reply *dr;
	const char *params[1];
	int64_t id;

	if (req->argc != 1 || !parse_job_id(req->args[0], &id)) {
		ctl_reply_error(client, "usage: job ID (a positive number)");
		return;
	}
	dr = xcalloc(1, sizeof(*dr));
	dr->client = client;
	dr->key = "job";
	dr->single = true;
	params[0] = req->args[0];
	pgconn_query(d->engine.dispatcher,
		     "SELECT row_to_json(j),"
		     " (SELECT row_to_json(s) FROM pgtenantd.migration_status s"
		     " WHERE s.job_id = j.id) AS migration"
		     " FROM pgtenantd.jobs j WHERE id = $1::bigint",
		     1, params, db_reply_result, dr);
}

static void cancel_result(const char *state, const char *error, void *arg)
{
	struct ctl_client *client = arg;

	if (error != NULL)
		ctl_reply_error(client, "%s", error);
	else
		ctl_reply(client,
			  json_pack("{s:s, s:s}", "state", state, "message",
				    strcmp(state, "running") == 0 ?
					    "cancel requested; the job "
					    "stops at its next safe point" :
				    strcmp(state, "cancelled") == 0 ?
					    "cancelled" :
					    "the job had already ended"));
}

/* cancel ID: flag the row (its daemon is notified) and stop it here. */
static void cmd_cancel(struct daemon *d, struct ctl_client *client,
		       const struct ctl_request *req)
{
	int64_t id;

	if (req->argc != 1 || !parse_job_id(req->args[0], &id)) {
		ctl_reply_error(client, "usage: cancel ID (a positive number)");
		return;
	}
	queue_cancel(d->queue, id);
	queue_cancel_in_db(d->queue, id, cancel_result, client);
}

/* A cutover or throttle request in flight. */
struct migration_ctl_request {
	struct ctl_client *client;
	int64_t lock_ms; /* lock_timeout for the migration's row */
};

/* The answer of pgtenantd.migration_cutover() or migration_throttle(): the
 * function's text, or its error. */
static void migration_ctl_result(const struct pgconn_result *r, void *arg)
{
	struct migration_ctl_request *mr = arg;
	const char *error = r->error;

	if (error != NULL && r->sqlstate != NULL &&
	    strcmp(r->sqlstate, "55P03") == 0) {
		ctl_reply_error(
			mr->client,
			"the migration's row stayed locked for %" PRId64
			" ms (by a step of the job, such as a cut-over attempt); try again",
			mr->lock_ms);
	} else if (error != NULL) {
		/* the functions' own messages need no SQLSTATE in front */
		if (r->sqlstate != NULL && strcmp(r->sqlstate, "P0001") == 0 &&
		    strncmp(error, "P0001: ", 7) == 0)
			error += 7;
		ctl_reply_error(mr->client, "%s%s",
				r->connection_lost ? "database unavailable: " :
						     "",
				error);
	} else if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
		ctl_reply_error(mr->client, "no answer from the database");
	} else {
		ctl_reply(mr->client, json_pack("{s:s}", "message",
						PQgetvalue(r->res, 0, 0)));
	}
	free(mr);
}

/* Run one control function of a migration on the dispatcher, waiting for
 * its row at most a quarter of the lease (MIGRATION_CTL_LOCK_MAX_MS at
 * most). */
static void migration_ctl(struct daemon *d, struct ctl_client *client,
			  const char *sql, int nparams,
			  const char *const *params)
{
	struct migration_ctl_request *mr = xcalloc(1, sizeof(*mr));
	char timeout[32];
	const char *timeout_params[1] = { timeout };
	const struct pgconn_stmt stmts[] = {
		{ .sql = "SELECT pg_catalog.set_config('lock_timeout', $1, true)",
		  .nparams = 1,
		  .values = timeout_params },
		{ .sql = sql, .nparams = nparams, .values = params },
	};

	mr->client = client;
	mr->lock_ms = d->engine.config->lease_ms / 4;
	if (mr->lock_ms > MIGRATION_CTL_LOCK_MAX_MS)
		mr->lock_ms = MIGRATION_CTL_LOCK_MAX_MS;
	if (mr->lock_ms < 1)
		mr->lock_ms = 1;
	snprintf(timeout, sizeof(timeout), "%" PRId64 "ms", mr->lock_ms);
	pgconn_transaction(d->engine.dispatcher, stmts, (int)ARRAY_SIZE(stmts),
			   migration_ctl_result, mr);
}

/* cutover ID: a migration with cutover manual cuts over once caught up. */
static void cmd_cutover(struct daemon *d, struct ctl_client *client,
			const struct ctl_request *req)
{
	int64_t id;

	if (req->argc != 1 || !parse_job_id(req->args[0], &id)) {
		ctl_reply_error(client,
				"usage: cutover ID (a positive number)");
		return;
	}
	migration_ctl(d, client,
		      "SELECT pgtenantd.migration_cutover($1::bigint)", 1,
		      (const char *const *)req->args);
}

/* throttle ID [N] and unthrottle ID: at most N pages or keys per batch of
 * a migration (no N or 0: its batches wait), or as the engine sizes them. */
static void cmd_throttle(struct daemon *d, struct ctl_client *client,
			 const struct ctl_request *req, bool lift)
{
	const char *params[2];
	int64_t id;
	char *end;
	long n = 0;

	if (lift && (req->argc != 1 || !parse_job_id(req->args[0], &id))) {
		ctl_reply_error(client,
				"usage: unthrottle ID (a positive number)");
		return;
	}
	if (!lift && (req->argc < 1 || req->argc > 2 ||
		      !parse_job_id(req->args[0], &id))) {
		ctl_reply_error(
			client,
			"usage: throttle ID [N] (ID a positive number; N pages or keys per batch, 0 or none to pause)");
		return;
	}
	if (!lift && req->argc == 2) {
		errno = 0;
		n = strtol(req->args[1], &end, 10);
		if (errno != 0 || end == req->args[1] || *end != '\0' ||
		    n < 0 || n > INT_MAX) {
			ctl_reply_error(
				client,
				"bad batch limit \"%.64s\": give a number of pages or keys per batch, 0 to pause",
				req->args[1]);
			return;
		}
	}
	params[0] = req->args[0];
	params[1] = lift ? NULL : req->argc == 2 ? req->args[1] : "0";
	migration_ctl(d, client,
		      "SELECT pgtenantd.migration_throttle($1::bigint,"
		      " $2::integer)",
		      2, params);
}

static void cmd_reload(struct daemon *d, struct ctl_client *client)
{
	char *message = NULL;

	if (daemon_reload(d, &message))
		ctl_reply(client, json_pack("{s:s}", "message", message));
	else
		ctl_reply_error(client, "%s", message);
	free(message);
}

static void schedules_listed(json_t *schedules, const char *error, void *arg)
{
	struct ctl_client *client = arg;

	if (error != NULL)
		ctl_reply_error(client, "%s", error);
	else
		ctl_reply(client, json_pack("{s:O}", "schedules", schedules));
}

/* schedules: each schedule with its last and next fire. */
static void cmd_schedules(struct daemon *d, struct ctl_client *client,
			  const struct ctl_request *req)
{
	if (req->argc != 0) {
		ctl_reply_error(client, "usage: schedules");
		return;
	}
	sched_list(d->sched, schedules_listed, client);
}

/* backups [TENANT]: the backup catalog, newest first. */
static void cmd_backups(struct daemon *d, struct ctl_client *client,
			const struct ctl_request *req)
{
	char *cause = NULL;
	json_t *list;

	if (req->argc > 1) {
		ctl_reply_error(client, "usage: backups [TENANT]");
		return;
	}
	if (req->argc == 1 && !tenant_id_valid(req->args[0], &cause)) {
		ctl_reply_error(client, "%s", cause);
		free(cause);
		return;
	}
	if (!backup_catalog_list(d->engine.ckpt,
				 req->argc == 1 ? req->args[0] : NULL,
				 BACKUPS_LIST_LIMIT, &list, &cause)) {
		ctl_reply_error(client, "%s", cause);
		free(cause);
		return;
	}
	ctl_reply(client, json_pack("{s:o}", "backups", list));
}

static void tenants_listed(json_t *tenants, const char *error, void *arg)
{
	struct ctl_client *client = arg;

	if (error != NULL)
		ctl_reply_error(client, "%s", error);
	else
		ctl_reply(client, json_pack("{s:O}", "tenants", tenants));
}

/* tenants: every tenant of the newest snapshot with growth, last backup,
 * last vacuum and last job (tenants.c). */
static void cmd_tenants(struct daemon *d, struct ctl_client *client,
			const struct ctl_request *req)
{
	if (req->argc != 0) {
		ctl_reply_error(client, "usage: tenants");
		return;
	}
	tenants_overview(d->tenants, tenants_listed, client);
}

/* A fleet request's answer: the fleet's state now. */
static void fleet_request_result(const struct pgconn_result *r, void *arg)
{
	struct ctl_client *client = arg;

	if (r->error != NULL)
		ctl_reply_error(client, "%s%s",
				r->connection_lost ? "database unavailable: " :
						     "",
				r->error);
	else
		ctl_reply(
			client,
			json_pack("{s:s, s:s}", "state",
				  PQgetvalue(r->res, 0, 0), "message",
				  "requested; the daemon acts on it at once"));
}

/* fleet: the fleets (pgtenantd.fleet_status); fleet NAME: one with its
 * members; fleet pause|resume|skip|cancel NAME: a request to it
 * (pgtenantd.fleet_request; resume retries the failed members, skip
 * resumes leaving them failed). */
static void cmd_fleet(struct daemon *d, struct ctl_client *client,
		      const struct ctl_request *req)
{
	static const char *const actions[][2] = {
		{ "pause", "pause" },
		{ "resume", "retry" },
		{ "skip", "skip" },
		{ "cancel", "cancel" },
	};
	struct db_reply *dr;
	const char *params[2];

	if (req->argc == 2) {
		for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
			if (strcmp(req->args[0], actions[i][0]) != 0)
				continue;
			params[0] = req->args[1];
			params[1] = actions[i][1];
			pgconn_query(d->engine.dispatcher,
				     "SELECT pgtenantd.fleet_request($1, $2)",
				     2, params, fleet_request_result, client);
			return;
		}
	}
	if (req->argc > 1) {
		ctl_reply_error(
			client,
			"usage: fleet [NAME] or fleet pause|resume|skip|cancel NAME");
		return;
	}
	dr = xcalloc(1, sizeof(*dr));
	dr->client = client;
	if (req->argc == 0) {
		dr->key = "fleets";
		pgconn_query(
			d->engine.dispatcher,
			"SELECT coalesce(json_agg(json_build_object("
			" 'name', name, 'state', state, 'tenants', members,"
			" 'done', done, 'running', running, 'waiting', waiting,"
			" 'failed', failed + cancelled, 'skipped', skipped,"
			" 'rows_moved', rows_moved, 'rows_total', rows_total,"
			" 'eta_s', round(extract(epoch FROM eta)),"
			" 'max_parallel', max_parallel, 'window', \"window\","
			" 'in_window', in_window) ORDER BY fleet_id DESC), '[]')"
			" FROM pgtenantd.fleet_status",
			0, NULL, db_reply_result, dr);
		return;
	}
	dr->key = "fleet";
	dr->single = true;
	dr->missing = "no such fleet";
	params[0] = req->args[0];
	pgconn_query(
		d->engine.dispatcher,
		"SELECT json_build_object('name', s.name, 'state', s.state,"
		" 'started_by', s.started_by, 'tenants', s.members,"
		" 'done', s.done, 'running', s.running, 'waiting', s.waiting,"
		" 'failed', s.failed, 'cancelled', s.cancelled,"
		" 'skipped', s.skipped, 'rows_moved', s.rows_moved,"
		" 'rows_total', s.rows_total,"
		" 'eta_s', round(extract(epoch FROM s.eta)),"
		" 'max_parallel', s.max_parallel, 'window', s.\"window\","
		" 'time_zone', s.time_zone, 'in_window', s.in_window,"
		" 'on_failure', s.on_failure, 'paused_reason', s.paused_reason,"
		" 'created_at', s.created_at, 'finished_at', s.finished_at),"
		" (SELECT json_agg(json_build_object('position', m.position,"
		" 'tenant_id', m.tenant_id,"
		" 'state', pgtenantd.fleet_member_state(m.state, j.state,"
		" j.run_at), 'rows', m.rows, 'size_bytes', m.bytes,"
		" 'job_id', m.job_id, 'jobs_run', m.jobs_run,"
		" 'took_s', round(extract(epoch FROM coalesce(m.finished_at,"
		" j.finished_at) - m.started_at)::numeric, 1),"
		" 'error', left(coalesce(m.last_error, j.last_error), 200))"
		" ORDER BY m.position)"
		" FROM pgtenantd.fleet_members m"
		" LEFT JOIN pgtenantd.jobs j ON j.id = m.job_id"
		" WHERE m.fleet_id = s.fleet_id) AS members"
		" FROM pgtenantd.fleet_status s WHERE s.name = $1",
		1, params, db_reply_result, dr);
}

static void cmd_help(struct ctl_client *client)
{
	ctl_reply(client,
		  json_pack("{s:s}", "message",
			    "commands: status, jobs [STATE], job ID, cancel ID,"
			    " cutover ID, throttle ID [N], unthrottle ID,"
			    " pause, resume, schedules, backups [TENANT],"
			    " reload, metrics, tenants, fleet [NAME], help"));
}

/* ctl_handler_fn for the daemon. */
void ctlcmd_handle(struct ctl_client *client, const struct ctl_request *req,
		   void *arg)
{
	struct daemon *d = arg;
	const char *cmd = req->command;

	d->engine.metrics.ctl_requests++;
	if (strcmp(cmd, "status") == 0) {
		cmd_status(d, client);
	} else if (strcmp(cmd, "jobs") == 0) {
		cmd_jobs(d, client, req);
	} else if (strcmp(cmd, "job") == 0) {
		cmd_job(d, client, req);
	} else if (strcmp(cmd, "cancel") == 0) {
		cmd_cancel(d, client, req);
	} else if (strcmp(cmd, "cutover") == 0) {
		cmd_cutover(d, client, req);
	} else if (strcmp(cmd, "throttle") == 0) {
		cmd_throttle(d, client, req, false);
	} else if (strcmp(cmd, "unthrottle") == 0) {
		cmd_throttle(d, client, req, true);
	} else if (strcmp(cmd, "pause") == 0) {
		d->engine.paused = true;
		/* jobs claimed ahead go back to the queue */
		queue_kick(d->queue);
		ctl_reply(client, json_pack("{s:s}", "message",
					    "paused: no new jobs are claimed; "
					    "running jobs go on"));
	} else if (strcmp(cmd, "resume") == 0) {
		d->engine.paused = false;
		queue_kick(d->queue);
		ctl_reply(client,
			  json_pack("{s:s}", "message", "resumed claiming"));
	} else if (strcmp(cmd, "reload") == 0) {
		cmd_reload(d, client);
	} else if (strcmp(cmd, "metrics") == 0) {
		char *text = metrics_render(d);

		ctl_reply(client, json_pack("{s:s}", "text", text));
		free(text);
	} else if (strcmp(cmd, "help") == 0) {
		cmd_help(client);
	} else if (strcmp(cmd, "schedules") == 0) {
		cmd_schedules(d, client, req);
	} else if (strcmp(cmd, "backups") == 0) {
		cmd_backups(d, client, req);
	} else if (strcmp(cmd, "tenants") == 0) {
		cmd_tenants(d, client, req);
	} else if (strcmp(cmd, "fleet") == 0) {
		cmd_fleet(d, client, req);
	} else {
		ctl_reply_error(client,
				"unknown command \"%.64s\"; try \"help\"", cmd);
	}
}
