/* queue_lease.c - the queue's leases: the heartbeat renews those of the
 * jobs this daemon runs, has claimed ahead or is ending, and tells it which
 * are no longer its own (lost) or asked to cancel; the rescue takes back
 * expired leases of any daemon. */
#include "queue-int.h"

#include <stdlib.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "job.h"
#include "log.h"
#include "pgconn.h"
#include "runner.h"
#include "util.h"

/* Row of the heartbeat answer for job id: -1 if absent. */
static int queue_heartbeat_row(const PGresult *res, int64_t id)
{
	for (int row = 0; row < PQntuples(res); row++)
		if (strtoll(PQgetvalue(res, row, 0), NULL, 10) == id)
			return row;
	return -1;
}

/* Was job id in the heartbeat that was answered? A job claimed while it
 * was in flight was not, and is not missing from its answer. */
static bool queue_heartbeat_sent(const struct queue *q, int64_t id)
{
	for (unsigned i = 0; i < q->heartbeat_id_count; i++)
		if (q->heartbeat_ids[i] == id)
			return true;
	return false;
}

/* The heartbeat's answer for the claimed-ahead jobs: one that is no longer
 * ours, or asked to cancel, ends without having begun. */
static void queue_heartbeat_waiting(struct queue *q, const PGresult *res)
{
	for (unsigned i = 0; i < q->waiting_count;) {
		struct job *job = q->waiting[i];
		int row = queue_heartbeat_row(res, job->id);

		if (row < 0 && queue_heartbeat_sent(q, job->id) &&
		    pgconn_is_ready(q->e->dispatcher)) {
			queue_unwait(q, i);
			job->lost = true;
			queue_job_done(q, job, JOB_LOST, NULL);
		} else if (row >= 0 && PQgetvalue(res, row, 1)[0] == 't') {
			queue_unwait(q, i);
			job->cancel_requested = true;
			job_log_info(job, "cancel requested before it began");
			queue_job_done(q, job, JOB_CANCELLED, NULL);
		} else {
			i++;
		}
	}
}

/* Leases renewed: jobs sent but missing from the answer are no longer ours. */
static void queue_heartbeat_result(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;
	struct engine *e = q->e;

	q->heartbeat_in_flight = false;
	if (r->error != NULL) {
		if (!r->connection_lost)
			log_error("renewing leases failed: %s", r->error);
		return;
	}
	if (q->heartbeat_again) {
		/* the row may have changed after this one was sent */
		q->heartbeat_again = false;
		queue_heartbeat(q);
	}
	queue_heartbeat_waiting(q, r->res);
	for (unsigned i = 0; i < e->worker_count; i++) {
		struct job *job = e->workers[i].job;
		int row;
		bool found, cancel;

		if (job == NULL || job->lost)
			continue;
		row = queue_heartbeat_row(r->res, job->id);
		found = row >= 0;
		cancel = found && PQgetvalue(r->res, row, 1)[0] == 't';
		if (!found && queue_heartbeat_sent(q, job->id) &&
		    pgconn_is_ready(e->dispatcher)) {
			runner_interrupt(job, JOB_INTERRUPT_LOST);
		} else if (cancel && !job->cancel_requested) {
			job_log_info(job, "cancel requested");
			runner_interrupt(job, JOB_INTERRUPT_CANCEL);
		}
	}
}

/* Renew the leases of every job this daemon runs or is ending. */
void queue_heartbeat(struct queue *q)
{
	struct engine *e = q->e;
	int64_t *ids;
	unsigned n;
	char lease[48];
	char *list;
	const char *params[3];

	if (!q->connected)
		return;
	if (q->heartbeat_in_flight) {
		q->heartbeat_again = true;
		return;
	}
	ids = queue_job_ids(q, &n);
	if (n == 0) {
		free(ids);
		return;
	}
	list = queue_bigint_array(ids, n);
	interval_ms_text(lease, sizeof(lease), e->config->lease_ms);
	params[0] = e->owner;
	params[1] = list;
	params[2] = lease;
	q->heartbeat_in_flight = true;
	pgconn_query_prepared(e->dispatcher,
			      "SELECT id, cancel_requested FROM pgtenantd."
			      "heartbeat($1, $2::bigint[], $3::interval)",
			      3, params, queue_heartbeat_result, q);
	free(list);
	free(q->heartbeat_ids);
	q->heartbeat_ids = ids;
	q->heartbeat_id_count = n;
}

static void queue_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_heartbeat(arg);
}

/* Expired leases were taken back: maybe there is work now. */
static void queue_rescue_result(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;
	long n;

	if (r->error != NULL) {
		if (!r->connection_lost)
			log_error("rescuing expired leases failed: %s",
				  r->error);
		return;
	}
	n = strtol(PQgetvalue(r->res, 0, 0), NULL, 10);
	if (n > 0) {
		log_info("took back %ld job%s whose lease expired", n,
			 n == 1 ? "" : "s");
		q->e->metrics.leases_rescued += (uint64_t)n;
		queue_dispatch(q);
	}
}

void queue_rescue_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	if (q->e->ready)
		pgconn_query(q->e->dispatcher,
			     "SELECT pgtenantd.rescue_expired()", 0, NULL,
			     queue_rescue_result, q);
}

/* The leases' part of queue_new: the heartbeat and rescue timers. */
void queue_lease_init(struct queue *q)
{
	const struct config *c = q->e->config;
	int64_t rescue_ms = c->lease_ms / 2;

	q->heartbeat_timer =
		queue_timer(q, c->heartbeat_ms, queue_heartbeat_cb);
	q->rescue_timer = queue_timer(q, rescue_ms < 500 ? 500 : rescue_ms,
				      queue_rescue_cb);
}

/* The leases' part of queue_free. */
void queue_lease_free(struct queue *q)
{
	free(q->heartbeat_ids);
	event_free(q->heartbeat_timer);
	event_free(q->rescue_timer);
}
