/* queue_session.c - the queue's life and its dispatcher session, on top of
 * queue.c (claims and job ends) and queue_lease.c (leases): queue_new and
 * queue_free; what follows a connect, before the queue claims (hand back
 * what an earlier run of this daemon left; after a reconnect, end the old
 * session if the server still runs it, hand back the jobs a lost answer
 * claimed, take the running jobs' tenant locks again; forget the
 * checkpoints of jobs that are over; LISTEN); the notifications. */
#include "queue-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ckpt.h"
#include "config.h"
#include "engine.h"
#include "job.h"
#include "log.h"
#include "notify.h"
#include "pgconn.h"
#include "util.h"

/* Checkpoints of jobs that are over (elsewhere too) are forgotten. */
static void queue_prune_result(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;
	char *cause = NULL;

	if (r->error != NULL)
		return;
	for (int i = 0; i < PQntuples(r->res); i++) {
		int64_t id = strtoll(PQgetvalue(r->res, i, 0), NULL, 10);

		if (!ckpt_forget(q->e->ckpt, id, &cause)) {
			log_warning("%s", cause);
			free(cause);
			cause = NULL;
		}
	}
}

/* Ask which of the jobs with local checkpoints are over. */
static void queue_prune_checkpoints(struct queue *q)
{
	int64_t *ids = NULL;
	unsigned count = 0;
	char *cause = NULL, *list;
	const char *params[1];

	if (!ckpt_jobs(q->e->ckpt, &ids, &count, &cause)) {
		log_warning("%s", cause);
		free(cause);
		return;
	}
	if (count == 0) {
		free(ids);
		return;
	}
	list = queue_bigint_array(ids, count);
	params[0] = list;
	pgconn_query(q->e->dispatcher,
		     "SELECT x FROM unnest($1::bigint[]) AS x WHERE NOT EXISTS"
		     " (SELECT 1 FROM pgtenantd.jobs j WHERE j.id = x"
		     " AND j.state IN ('queued', 'running'))",
		     1, params, queue_prune_result, q);
	free(list);
	free(ids);
}

/* Setup on this connection is complete: start claiming. */
static void queue_set_ready(struct queue *q)
{
	q->e->ready = true;
	if (!q->e->stopping) {
		/* the schema is in place and claiming starts: ready for
		 * systemd (again after a reconnect, which is harmless) */
		notify_ready();
		notify_status("claiming jobs; %u worker(s)",
			      q->e->worker_count);
	}
	queue_heartbeat(q);
	queue_rescue_cb(-1, 0, q);
	queue_dispatch(q);
}

static void queue_released(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;

	if (r->error != NULL) {
		if (!r->connection_lost)
			log_error(
				"handing back jobs of an earlier run failed: %s",
				r->error);
		return;
	}
	q->released = true;
	if (atoi(PQgetvalue(r->res, 0, 0)) > 0)
		log_info(
			"requeued %s job(s) an earlier run of this daemon left running",
			PQgetvalue(r->res, 0, 0));
	queue_prune_checkpoints(q);
	queue_set_ready(q);
}

static void queue_relocked(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;
	unsigned gen = pgconn_generation(q->e->dispatcher);

	if (r->error != NULL) {
		if (!r->connection_lost)
			log_error("retaking tenant locks failed: %s", r->error);
		return;
	}
	/* a job that ended while the locks were retaken is among the ends
	 * not sent yet: its end must release its lock too */
	for (unsigned i = 0; i < q->relock_id_count; i++) {
		struct job *job = queue_find_job(q, q->relock_ids[i]);

		for (struct finishing *f = q->finishing;
		     job == NULL && f != NULL; f = f->next)
			if (f->job->id == q->relock_ids[i])
				job = f->job;
		if (job != NULL)
			job->lock_generation = gen;
	}
	queue_set_ready(q);
}

/* After a reconnect, take the tenant locks of running jobs again. */
static void queue_relock(struct queue *q)
{
	struct engine *e = q->e;
	json_t *tenants = json_array();
	char *text;
	const char *params[1];

	q->relock_id_count = 0;
	q->relock_ids = xrealloc(q->relock_ids, (e->worker_count + 1) *
							sizeof(*q->relock_ids));
	for (unsigned i = 0; i < e->worker_count; i++)
		if (e->workers[i].job != NULL) {
			json_array_append_new(
				tenants,
				json_string(e->workers[i].job->tenant_id));
			q->relock_ids[q->relock_id_count++] =
				e->workers[i].job->id;
		}
	if (json_array_size(tenants) == 0) {
		json_decref(tenants);
		queue_set_ready(q);
		return;
	}
	text = json_dumps(tenants, JSON_COMPACT);
	params[0] = text;
	pgconn_query(e->dispatcher,
		     "SELECT pg_try_advisory_lock(" TENANT_LOCK_CLASS
		     ", hashtext(pgtenantd.tenant_schema(t)))"
		     " FROM jsonb_array_elements_text($1::jsonb) AS t",
		     1, params, queue_relocked, q);
	free(text);
	json_decref(tenants);
}

static void queue_unknown_released(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;

	if (r->error != NULL) {
		if (r->connection_lost)
			return;
		/* they wait out their lease, as before version 11 */
		log_error(
			"handing back jobs claimed by a lost answer failed: %s",
			r->error);
	} else if (atoi(PQgetvalue(r->res, 0, 0)) > 0) {
		log_warning(
			"requeued %s job(s) claimed by an answer lost with the connection (never started here; attempt given back)",
			PQgetvalue(r->res, 0, 0));
	}
	queue_relock(q);
}

/* After a reconnect, before any claim on the new connection: the rows
 * this daemon owns but does not hold (queue_job_ids) were claimed by an
 * end_and_claim whose answer the old connection lost; hand them back. */
static void queue_release_unknown(struct queue *q)
{
	struct engine *e = q->e;
	unsigned n;
	int64_t *ids = queue_job_ids(q, &n);
	const char *params[2];
	char *known = queue_bigint_array(ids, n);

	params[0] = e->owner;
	params[1] = known;
	pgconn_query(
		e->dispatcher,
		"SELECT pgtenantd.release_unknown_claims($1, $2::bigint[])", 2,
		params, queue_unknown_released, q);
	free(known);
	free(ids);
}

static void queue_old_session_ended(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;

	if (r->connection_lost)
		return;
	if (r->error != NULL)
		log_warning(
			"ending the dispatcher's session from before the reconnect failed (a request it still runs may claim jobs that wait out their lease): %s",
			r->error);
	else if (PQntuples(r->res) > 0 && PQgetvalue(r->res, 0, 0)[0] != 't')
		log_warning(
			"the dispatcher's session from before the reconnect (backend pid %d) did not end within 5 s (a request it still runs may claim jobs that wait out their lease)",
			q->old_session.pid);
	else if (PQntuples(r->res) > 0)
		log_info(
			"ended the dispatcher's session from before the reconnect (backend pid %d), which the server still ran",
			q->old_session.pid);
	q->old_session.pid = 0;
	queue_release_unknown(q);
}

/* After a reconnect, before the hand-back: the server may still run the
 * old session (a connection it has not seen drop), whose request could
 * claim jobs after the hand-back looked. End it, waiting up to 5 s, so
 * that its transaction has committed or rolled back. pid and start time
 * together: a pid alone may be another backend's by now. */
static void queue_end_old_session(struct queue *q)
{
	char pid[16];
	const char *params[2] = { pid, q->old_session.backend_start };

	if (q->old_session.pid == 0) {
		queue_release_unknown(q);
		return;
	}
	snprintf(pid, sizeof(pid), "%d", q->old_session.pid);
	pgconn_query(q->e->dispatcher,
		     "SELECT pg_terminate_backend(a.pid, 5000)"
		     " FROM pg_stat_activity a WHERE a.pid = $1::integer"
		     " AND a.backend_start = $2::timestamptz",
		     2, params, queue_old_session_ended, q);
}

static void queue_session_known(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;

	if (r->error != NULL) {
		if (!r->connection_lost)
			log_warning(
				"reading the dispatcher's session start failed: %s",
				r->error);
		return;
	}
	if (PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0)) {
		/* the answer came on the connection it was asked on */
		q->session.pid = pgconn_backend_pid(q->e->dispatcher);
		snprintf(q->session.backend_start,
			 sizeof(q->session.backend_start), "%s",
			 PQgetvalue(r->res, 0, 0));
	}
}

/* The schema is in place and the kinds are published (setup.c): hand back
 * what an earlier run left; after a reconnect, end the old session if the
 * server still runs it, hand back what a lost answer claimed and take the
 * running jobs' locks again; then start claiming. */
void queue_schema_ready(struct queue *q)
{
	const char *params[1];

	if (!q->connected)
		return;
	if (!q->released) {
		params[0] = q->e->owner;
		pgconn_query(q->e->dispatcher,
			     "SELECT pgtenantd.release_owner($1)", 1, params,
			     queue_released, q);
	} else {
		queue_end_old_session(q);
	}
}

static void queue_listened(const struct pgconn_result *r, void *arg)
{
	if (r->error != NULL && !r->connection_lost)
		log_error("LISTEN failed: %s", r->error);
}

/* The dispatcher connection came up or went down. */
void queue_on_connected(struct queue *q, bool connected)
{
	struct engine *e = q->e;

	q->connected = connected;
	q->e->ready = false;
	q->request_in_flight = false;
	q->heartbeat_in_flight = false;
	q->heartbeat_again = false;
	if (!connected) {
		/* their tenant locks went with the session: back to the
		 * queue (recorded once connected again) */
		while (q->waiting_count > 0)
			queue_job_done(q, queue_unwait(q, 0), JOB_HANDED_BACK,
				       NULL);
		queue_ends_unanswered(q);
		return;
	}
	if (e->config->listen)
		pgconn_exec(e->dispatcher, "LISTEN pgtenantd", queue_listened,
			    q);
	/* a session never identified keeps the one before as the old one */
	if (q->session.pid != 0)
		q->old_session = q->session;
	q->session.pid = 0;
	pgconn_exec(e->dispatcher,
		    "SELECT backend_start FROM pg_stat_activity"
		    " WHERE pid = pg_backend_pid()",
		    queue_session_known, q);
}

/* A notification on the dispatcher connection. */
void queue_on_notify(struct queue *q, const char *channel, const char *payload)
{
	q->e->metrics.notifications++;
	if (strncmp(payload, "cancel:", 7) == 0) {
		/* anyone may send this: it only makes the heartbeat read the
		 * rows' cancel_requested now, which decides */
		if (queue_find_job(q, strtoll(payload + 7, NULL, 10)) != NULL)
			queue_heartbeat(q);
		return;
	}
	queue_dispatch(q);
}

struct queue *queue_new(struct engine *e)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	q->e = e;
	queue_claims_init(q);
	queue_lease_init(q);
	return q;
}

void queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	queue_claims_free(q);
	queue_lease_free(q);
	free(q->relock_ids);
	free(q);
}
