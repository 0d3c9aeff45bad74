/* queue.c - claiming jobs from pgtenantd.jobs and ending them, on the
 * dispatcher connection: LISTEN plus a poll fallback, one request that
 * records the jobs that ended and claims the next ones, jobs claimed ahead
 * for busy workers, backoff when a due job cannot be claimed, cancel,
 * pause. The bottom of the queue's three files: queue_lease.c (leases) and
 * queue_session.c (the queue's life, connects, notifications) call it,
 * never the other way. */
#include "queue.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ckpt.h"
#include "config.h"
#include "engine.h"
#include "hooks.h"
#include "jobdef.h"
#include "jobend.h"
#include "log.h"
#include "pgconn.h"
#include "queue-int.h"
#include "runner.h"
#include "util.h"

/* Tries of a batch of job ends before they are given up. */
#define QUEUE_END_TRIES 5

/* ids as a PostgreSQL bigint[] literal ("{1,2,3}"), a new string. */
char *queue_bigint_array(const int64_t *ids, unsigned n)
{
	char *out = xmalloc((size_t)n * 22 + 3), *p = out;

	*p++ = '{';
	for (unsigned i = 0; i < n; i++)
		p += sprintf(p, "%s%" PRId64, i ? "," : "", ids[i]);
	strcpy(p, "}");
	return out;
}

/* The ids of the jobs this daemon holds (on a worker, claimed ahead, or
 * with an end not recorded yet), a new array of *n. Not a run called lost:
 * its row is not this run's any more (if this daemon claimed it again, the
 * new run is claimed ahead or on a worker, and listed). */
int64_t *queue_job_ids(const struct queue *q, unsigned *n)
{
	const struct engine *e = q->e;
	int64_t *ids = xcalloc(e->worker_count + q->waiting_count +
				       q->finishing_count + 1,
			       sizeof(*ids));

	*n = 0;
	for (unsigned i = 0; i < e->worker_count; i++) {
		const struct job *job = e->workers[i].job;

		if (job != NULL && !job->lost)
			ids[(*n)++] = job->id;
	}
	for (unsigned i = 0; i < q->waiting_count; i++)
		ids[(*n)++] = q->waiting[i]->id;
	for (const struct finishing *f = q->finishing; f != NULL; f = f->next)
		if (!f->job->lost)
			ids[(*n)++] = f->job->id;
	return ids;
}

/* Idle workers whose connection is up. */
static unsigned queue_free_workers(const struct queue *q)
{
	unsigned n = 0;

	for (unsigned i = 0; i < q->e->worker_count; i++) {
		if (worker_is_free(&q->e->workers[i]))
			n++;
	}
	return n;
}

/* The first idle worker with a live connection, or NULL. */
static struct worker *queue_idle_worker(struct queue *q)
{
	for (unsigned i = 0; i < q->e->worker_count; i++) {
		struct worker *w = &q->e->workers[i];

		if (worker_is_free(w))
			return w;
	}
	return NULL;
}

/* The running or claimed-ahead job with this id, or NULL. */
struct job *queue_find_job(struct queue *q, int64_t id)
{
	for (unsigned i = 0; i < q->e->worker_count; i++) {
		struct job *job = q->e->workers[i].job;

		if (job != NULL && job->id == id)
			return job;
	}
	for (unsigned i = 0; i < q->waiting_count; i++)
		if (q->waiting[i]->id == id)
			return q->waiting[i];
	return NULL;
}

/* The loaded kinds as a PostgreSQL text[] literal. */
static char *queue_kinds_array(const struct queue *q)
{
	const struct jobdefs *defs = q->e->jobdefs;
	size_t len = 3;
	char *out, *p;

	for (unsigned i = 0; i < defs->count; i++)
		len += strlen(defs->defs[i].kind) + 3;
	out = p = xmalloc(len);
	*p++ = '{';
	for (unsigned i = 0; i < defs->count; i++) {
		/* kind names are [a-z0-9_]+: no quoting needed */
		p += sprintf(p, "%s%s", i ? "," : "", defs->defs[i].kind);
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

/* How long to wait before claiming a job due now, the streak-th time in a
 * row: 0, then 10 ms, doubling each time, to at most 327 s (the poll comes
 * first unless poll_interval is longer). */
static double due_now_wait(unsigned streak)
{
	return streak == 0 ?
		       0 :
		       0.01 * (double)(1u << (streak < 16 ? streak - 1 : 15));
}

/* After a claim that found fewer jobs than it asked for: of the jobs a
 * claim could take, is one due now, and when is the next one due? Look
 * again then, if before the poll. A job that fell due since the last
 * answer is one the claim just missed: claim again at once. One seen due
 * before is held back by something the database function cannot see (a
 * row lock, its tenant's lock held by another session): each further look
 * waits twice as long as the last, from 10 ms on, instead of spinning, and
 * a job due sooner than that still gets its time. */
static void queue_due_result(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;
	double seconds = -1,
	       poll = (double)q->e->config->poll_interval_ms / 1000;
	struct timeval tv;

	if (r->error != NULL) {
		if (!r->connection_lost)
			log_warning(
				"asking when the next job is due failed (the poll looks for it): %s",
				r->error);
		return;
	}
	if (PQgetvalue(r->res, 0, 0)[0] != 't') {
		q->due_now_streak = 0;
	} else if (atof(PQgetvalue(r->res, 0, 1)) > q->newest_due_seen) {
		/* fell due since the last look: the claim just missed it */
		q->newest_due_seen = atof(PQgetvalue(r->res, 0, 1));
		seconds = 0;
	} else {
		seconds = due_now_wait(q->due_now_streak++);
	}
	if (!PQgetisnull(r->res, 0, 2)) {
		/* 5 ms late rather than early: due by the server's clock, and
		 * libevent may count from a time read a little before */
		double next = atof(PQgetvalue(r->res, 0, 2)) + 0.005;

		if (seconds < 0 || next < seconds)
			seconds = next;
	}
	if (seconds < 0 || seconds >= poll)
		return;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(q->due_timer, &tv);
}

static void queue_row_failed(const struct pgconn_result *r, void *arg)
{
	if (r->error != NULL && !r->connection_lost)
		log_error("recording a failed claim: %s", r->error);
}

/* A claimed row that cannot run here (its args are unusable): fail it. */
static void queue_fail_row(struct queue *q, const PGresult *res, int row,
			   const char *cause)
{
	json_t *batch;
	const char *params[2];
	char *text, *cut;

	log_error("claimed job cannot run: %s", cause);
	cut = jobend_cut_error(cause, q->e->config->error_bytes);
	batch = json_pack(
		"[{s:I, s:s, s:s, s:b}]", "id",
		(json_int_t)strtoll(PQgetvalue(res, row, PQfnumber(res, "id")),
				    NULL, 10),
		"state", "failed", "error", cut, "unlock", 1);
	free(cut);
	text = json_dumps(batch, JSON_COMPACT);
	params[0] = q->e->owner;
	params[1] = text;
	pgconn_query(q->e->dispatcher,
		     "SELECT * FROM pgtenantd.finish_jobs($1, $2::jsonb)", 2,
		     params, queue_row_failed, q);
	free(text);
	json_decref(batch);
}

/* Try to claim jobs now if workers are free. */
void queue_kick(struct queue *q)
{
	queue_dispatch(q);
}

static void queue_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	q->e->metrics.polls++;
	queue_dispatch(q);
}

static void queue_due_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_dispatch(arg);
}

/* Free a finishing entry and its job. */
static void finishing_free(struct finishing *f)
{
	job_free(f->job);
	json_decref(f->result);
	free(f->error);
	free(f);
}

/* Drop f from the finishing list. */
static void queue_unlink_finishing(struct queue *q, struct finishing *f)
{
	for (struct finishing **pp = &q->finishing; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			q->finishing_count--;
			return;
		}
	}
}

static void queue_runner_done(struct job *job, enum job_outcome outcome,
			      const char *error, void *arg);

/* Take the job at index i out of the claimed-ahead list. */
struct job *queue_unwait(struct queue *q, unsigned i)
{
	struct job *job = q->waiting[i];

	memmove(&q->waiting[i], &q->waiting[i + 1],
		(q->waiting_count - i - 1) * sizeof(*q->waiting));
	q->waiting_count--;
	return job;
}

/* A job of this tenant (schema name) is still on a worker. Only a run the
 * heartbeat called lost can be (the database let no other job of the
 * tenant be claimed while one was running): its statement or program has
 * not stopped yet, and the job, handed back to the queue meanwhile, may
 * have been claimed again here, where the tenant's lock is this session's
 * already. The new run waits for the old one to stop. */
static bool queue_tenant_on_worker(const struct queue *q, const char *schema)
{
	for (unsigned i = 0; i < q->e->worker_count; i++) {
		const struct job *job = q->e->workers[i].job;

		if (job != NULL && strcmp(job->schema, schema) == 0)
			return true;
	}
	return false;
}

/* Start claimed-ahead jobs on idle workers, in claim order (a job whose
 * tenant is still on a worker waits); while paused
 * or stopping, hand them back instead (they have not begun). */
static void queue_start_waiting(struct queue *q)
{
	struct engine *e = q->e;
	struct worker *w;

	if (e->paused || e->stopping) {
		while (q->waiting_count > 0) {
			struct job *job = queue_unwait(q, 0);

			job_log_info(job,
				     "%s before it began; handing the job back",
				     e->stopping ? "stopping" : "paused");
			queue_job_done(q, job, JOB_HANDED_BACK, NULL);
		}
		return;
	}
	for (unsigned i = 0; i < q->waiting_count;) {
		struct job *job = q->waiting[i];

		if (queue_tenant_on_worker(q, job->schema)) {
			i++;
			continue;
		}
		w = queue_idle_worker(q);
		if (w == NULL)
			break;
		queue_unwait(q, i);
		job->started_at = wall_seconds();
		runner_start(w, job, queue_runner_done, q);
	}
}

/* Start a claimed job on an idle worker. */
static void queue_start_row(struct queue *q, const PGresult *res, int row)
{
	struct engine *e = q->e;
	char *cause = NULL;
	int args_col = PQfnumber(res, "args");
	struct job *job;

	e->metrics.jobs_claimed++;
	/* claim_jobs fails such a job itself; this guards a limit lowered
	 * between the database's check and here */
	if (args_col >= 0 &&
	    PQgetlength(res, row, args_col) > e->config->args_bytes) {
		cause = xasprintf(
			"job %s: args of %d bytes are over the limit of %lld bytes (limits: args_bytes): the job was not run",
			PQgetvalue(res, row, PQfnumber(res, "id")),
			PQgetlength(res, row, args_col),
			(long long)e->config->args_bytes);
		queue_fail_row(q, res, row, cause);
		free(cause);
		return;
	}
	job = job_from_row(e, res, row, &cause);
	if (job == NULL) {
		queue_fail_row(q, res, row, cause);
		free(cause);
		return;
	}
	if (e->stopping) {
		/* the claim was in flight when the stop began */
		job_log_info(job,
			     "claimed while stopping; handing the job back");
		queue_job_done(q, job, JOB_HANDED_BACK, NULL);
		return;
	}
	if (q->waiting_count >= q->waiting_cap) {
		job_log_warning(
			job,
			"no worker and no room to wait after claiming; handing the job back");
		queue_job_done(q, job, JOB_HANDED_BACK, NULL);
		return;
	}
	job_log_info(job, "claimed (attempt %d of %d)", job->attempts,
		     job->max_attempts);
	q->waiting[q->waiting_count++] = job;
	queue_start_waiting(q);
}

/* Forget the finished jobs that the last request recorded. */
static void queue_recorded(struct queue *q, const char *error)
{
	struct engine *e = q->e;
	struct finishing *f, *next;
	char *cause = NULL;

	for (f = q->finishing; f != NULL; f = next) {
		struct job *job = f->job;

		next = f->next;
		if (!f->sent)
			continue;
		if (error != NULL)
			job_log_error(
				job,
				"recording the end of the job failed (its lease will expire and it runs again): %s",
				error);
		else if (f->late)
			job_log_warning(
				job,
				"its end (%s) came too late to be recorded: its lease had expired and another daemon had taken the job over; no hook runs for it here",
				f->state);
		else if (strcmp(f->state, "queued") != 0 &&
			 strcmp(f->state, "lost") != 0 &&
			 !ckpt_forget(e->ckpt, job->id, &cause)) {
			job_log_warning(job, "%s", cause);
			free(cause);
			cause = NULL;
		}
		if (error == NULL && !f->late)
			hooks_job_ended(e, job, f->state, f->error);
		queue_unlink_finishing(q, f);
		finishing_free(f);
	}
}

/* end_and_claim's rows with state ended_late are not claims: each says
 * that the end of a job this request sent was not recorded. */
static bool queue_row_is_late(const PGresult *res, int row, int state_col)
{
	return strcmp(PQgetvalue(res, row, state_col), "ended_late") == 0;
}

/* Mark the ends that came late; return how many rows say so. */
static int queue_mark_late(struct queue *q, const PGresult *res, int state_col)
{
	int id_col = PQfnumber(res, "id");
	int late = 0;

	for (int i = 0; i < PQntuples(res); i++) {
		int64_t id;

		if (!queue_row_is_late(res, i, state_col))
			continue;
		late++;
		id = strtoll(PQgetvalue(res, i, id_col), NULL, 10);
		for (struct finishing *f = q->finishing; f != NULL;
		     f = f->next) {
			if (f->sent && f->job->id == id && !f->late) {
				f->late = true;
				q->e->metrics.jobs_ended_late++;
			}
		}
	}
	return late;
}

/* The connection went with the request in flight: its job ends are sent
 * again, saying they may be recorded already. */
void queue_ends_unanswered(struct queue *q)
{
	for (struct finishing *f = q->finishing; f != NULL; f = f->next) {
		f->maybe_recorded = f->maybe_recorded || f->sent;
		f->sent = false;
	}
}

/* end_and_claim failed (a deadlock with a user's UPDATE, a statement
 * timeout, a cancel): the job ends it carried are sent again later, 1, 2,
 * 4 and 8 s on (the heartbeat keeps their leases meanwhile), rather than
 * left to their leases, which would run a job that succeeded again. True
 * if they will be; after the fifth failure in a row they are given up. */
static bool queue_retry_ends(struct queue *q, const char *error)
{
	unsigned sent = 0;

	for (struct finishing *f = q->finishing; f != NULL; f = f->next)
		if (f->sent)
			sent++;
	if (sent == 0 || ++q->request_failures >= QUEUE_END_TRIES) {
		q->request_failures = 0;
		return false;
	}
	log_error(
		"recording %u job end%s failed (try %u of %d; again in %d s): %s",
		sent, sent == 1 ? "" : "s", q->request_failures,
		QUEUE_END_TRIES, 1 << (q->request_failures - 1), error);
	for (struct finishing *f = q->finishing; f != NULL; f = f->next)
		f->sent = false;
	timer_add_ms(q->due_timer, 1000LL << (q->request_failures - 1));
	return true;
}

/* Job ends recorded and new jobs claimed: start them, then go on. */
static void queue_dispatch_result(const struct pgconn_result *r, void *arg)
{
	struct queue *q = arg;
	struct engine *e = q->e;
	int rows = 0, late = 0, state_col = -1;

	q->request_in_flight = false;
	if (r->connection_lost) {
		queue_ends_unanswered(q);
		return;
	}
	if (r->error != NULL && queue_retry_ends(q, r->error)) {
		e->hooks.idle(e);
		return;
	}
	if (r->error != NULL) {
		log_error("recording job ends and claiming jobs failed: %s",
			  r->error);
	} else {
		q->request_failures = 0;
		state_col = PQfnumber(r->res, "state");
		late = queue_mark_late(q, r->res, state_col);
	}
	queue_recorded(q, r->error);
	if (r->error == NULL) {
		/* a job handed back here asks for a dispatch: it comes after
		 * the loop, not inside it */
		q->starting = true;
		for (int i = 0; i < PQntuples(r->res); i++) {
			if (!queue_row_is_late(r->res, i, state_col))
				queue_start_row(q, r->res, i);
		}
		q->starting = false;
		rows = PQntuples(r->res) - late;
		if (rows > 0)
			q->due_now_streak = 0;
	}
	e->hooks.idle(e);
	if (q->dispatch_again || (q->asked > 0 && rows == q->asked) ||
	    q->finishing_count > 0) {
		queue_dispatch(q);
	} else if (q->asked > 0 && queue_free_workers(q) > 0) {
		char *kinds = queue_kinds_array(q);
		const char *params[1] = { kinds };

		pgconn_query_prepared(
			e->dispatcher,
			"SELECT due_now, newest_due, next_in FROM pgtenantd.next_claimable_in($1::text[])",
			1, params, queue_due_result, q);
		free(kinds);
	}
}

/* The job ends not yet recorded, as end_and_claim's JSON argument. */
static json_t *queue_finish_batch(struct queue *q)
{
	struct engine *e = q->e;
	json_t *batch = json_array();

	for (struct finishing *f = q->finishing; f != NULL; f = f->next) {
		json_t *end;

		if (f->sent)
			continue;
		f->sent = true;
		f->unlock = f->job->lock_generation ==
			    pgconn_generation(e->dispatcher);
		end = json_pack("{s:I, s:s, s:b, s:b}", "id",
				(json_int_t)f->job->id, "state", f->state,
				"unlock", f->unlock, "refund", f->refund);
		if (strcmp(f->state, "lost") == 0)
			json_object_set_new(end, "lost", json_true());
		if (f->maybe_recorded) {
			/* not late if the row says so already, at this
			 * attempt */
			json_object_set_new(end, "resent", json_true());
			json_object_set_new(
				end, "attempt",
				json_integer((json_int_t)f->job->attempts));
		}
		if (f->result != NULL)
			json_object_set(end, "result", f->result);
		if (f->job->progress_at_end &&
		    strcmp(f->state, "succeeded") == 0) {
			json_object_set(end, "progress", f->job->progress);
			json_object_set_new(
				end, "step_index",
				json_integer(
					(json_int_t)f->job->def->step_count));
		}
		if (f->error != NULL)
			json_object_set_new(end, "error",
					    json_string(f->error));
		if (f->retry_ms > 0)
			json_object_set_new(end, "retry_ms",
					    json_integer(f->retry_ms));
		json_array_append_new(batch, end);
	}
	return batch;
}

/* One request on the dispatcher connection: record the jobs that ended
 * since the last one and claim as many due jobs as workers are idle. One
 * is in flight at a time; what happens meanwhile goes into the next. */
void queue_dispatch(struct queue *q)
{
	struct engine *e = q->e;
	json_t *batch;
	char limit[16], lease[48];
	char *kinds, *ended;
	const char *params[5];

	/* a free worker takes a job claimed ahead at once, whatever the
	 * dispatcher connection is doing */
	if (!q->starting)
		queue_start_waiting(q);
	if (!q->e->ready)
		return;
	if (q->request_in_flight || q->starting) {
		q->dispatch_again = true;
		return;
	}
	q->dispatch_again = false;
	/* the idle workers, and as many again to claim ahead */
	q->asked = e->paused || e->stopping ?
			   0 :
			   (int)(queue_free_workers(q) + q->waiting_cap -
				 q->waiting_count);
	batch = queue_finish_batch(q);
	if (json_array_size(batch) == 0 && q->asked == 0) {
		json_decref(batch);
		return;
	}
	ended = json_dumps(batch, JSON_COMPACT);
	json_decref(batch);
	snprintf(limit, sizeof(limit), "%d", q->asked);
	interval_ms_text(lease, sizeof(lease), e->config->lease_ms);
	kinds = queue_kinds_array(q);
	params[0] = e->owner;
	params[1] = ended;
	params[2] = limit;
	params[3] = lease;
	params[4] = kinds;
	q->request_in_flight = true;
	if (q->asked > 0)
		e->metrics.claim_queries++;
	pgconn_query_prepared(
		e->dispatcher,
		"SELECT * FROM pgtenantd.end_and_claim($1, "
		"$2::jsonb, $3::integer, $4::interval, $5::text[])",
		5, params, queue_dispatch_result, q);
	free(ended);
	free(kinds);
}

/* job's result for its row, cut to max bytes (saying so in its log). */
static json_t *queue_cut_result(struct job *job, int64_t max)
{
	size_t bytes;
	json_t *result = jobend_cut_result(job->result, max, &bytes);

	if (bytes > 0)
		job_log_warning(
			job,
			"result of %zu bytes is over the limit of %lld bytes (limits: result_bytes): recorded as truncated",
			bytes, (long long)max);
	return result;
}

/* The job is done (runner or claim): record the outcome, free the
 * worker. error may be NULL. */
void queue_job_done(struct queue *q, struct job *job, enum job_outcome outcome,
		    const char *error)
{
	struct engine *e = q->e;
	struct finishing *f = xcalloc(1, sizeof(*f));
	double seconds = wall_seconds() - job->started_at;
	enum jobend_state state;

	if (job->worker != NULL) {
		job->worker->job = NULL;
		job->worker = NULL;
	}
	f->job = job;
	f->error = error ? jobend_cut_error(error, e->config->error_bytes) :
			   NULL;
	state = jobend_state(outcome, job->attempts, job->max_attempts);
	strcpy(f->state, jobend_state_name(state));
	switch (state) {
	case JOBEND_SUCCEEDED:
		f->result = queue_cut_result(job, e->config->result_bytes);
		e->metrics.jobs_succeeded++;
		job_log_info(job, "succeeded in %.3f s", seconds);
		break;
	case JOBEND_RETRY:
		f->retry_ms = backoff_ms(job->attempts,
					 e->config->retry_base_ms,
					 e->config->retry_max_ms);
		e->metrics.jobs_retried++;
		job_log_warning(job,
				"attempt %d of %d failed, retry in %.1f s: %s",
				job->attempts, job->max_attempts,
				(double)f->retry_ms / 1000.0,
				error ? error : "");
		break;
	case JOBEND_FAILED:
		f->result = queue_cut_result(job, e->config->result_bytes);
		e->metrics.jobs_failed++;
		job_log_error(job, "failed after %d attempt%s: %s",
			      job->attempts, job->attempts == 1 ? "" : "s",
			      error ? error : "");
		break;
	case JOBEND_CANCELLED:
		e->metrics.jobs_cancelled++;
		job_log_info(job, "cancelled");
		break;
	case JOBEND_HANDED_BACK:
		f->refund = true;
		e->metrics.jobs_handed_back++;
		job_log_info(job, "handed back to the queue");
		break;
	case JOBEND_LOST:
		e->metrics.jobs_lost++;
		job_log_warning(
			job,
			"lease lost: the job was handed back to the queue without this run (its row may be another daemon's or a new run's now); abandoned here, its end not recorded");
		break;
	}
	if (outcome != JOB_HANDED_BACK && outcome != JOB_LOST) {
		e->metrics.job_seconds_sum += seconds;
		e->metrics.job_seconds_count++;
	}
	f->next = q->finishing;
	q->finishing = f;
	q->finishing_count++;
	queue_dispatch(q);
}

/* The runner let go of job (runner_start's done). */
static void queue_runner_done(struct job *job, enum job_outcome outcome,
			      const char *error, void *arg)
{
	/* a lost job's end is not this daemon's to record, whatever its run
	 * came to (a last step that ended after the job was called lost):
	 * its row may be another run's by now, even one of this daemon */
	if (job->lost)
		outcome = JOB_LOST;
	queue_job_done(arg, job, outcome, error);
}

/* Ask a running job of this daemon to stop because it was cancelled. */
bool queue_cancel(struct queue *q, int64_t job_id)
{
	struct job *job = queue_find_job(q, job_id);

	if (job == NULL)
		return false;
	if (!job->cancel_requested) {
		job_log_info(job, "cancel requested");
		runner_interrupt(job, JOB_INTERRUPT_CANCEL);
	}
	return true;
}

struct cancel_request {
	queue_cancel_fn cb;
	void *arg;
};

static void queue_cancel_result(const struct pgconn_result *r, void *arg)
{
	struct cancel_request *cr = arg;

	if (r->error != NULL)
		cr->cb(NULL, r->error, cr->arg);
	else if (PQgetisnull(r->res, 0, 0))
		cr->cb(NULL, "no such job", cr->arg);
	else
		cr->cb(PQgetvalue(r->res, 0, 0), NULL, cr->arg);
	free(cr);
}

/* Mark a job cancelled in the database and answer with its state. */
void queue_cancel_in_db(struct queue *q, int64_t job_id, queue_cancel_fn cb,
			void *arg)
{
	struct cancel_request *cr = xcalloc(1, sizeof(*cr));
	char id[24];
	const char *params[1] = { id };

	cr->cb = cb;
	cr->arg = arg;
	snprintf(id, sizeof(id), "%" PRId64, job_id);
	pgconn_query(q->e->dispatcher,
		     "SELECT pgtenantd.cancel_job($1::bigint)", 1, params,
		     queue_cancel_result, cr);
}

unsigned queue_finishing(const struct queue *q)
{
	return q->finishing_count;
}

bool queue_claim_in_flight(const struct queue *q)
{
	return q->request_in_flight;
}

bool queue_ready(const struct queue *q)
{
	return q->e->ready;
}

/* A persistent timer of ms, calling fn with q, added. */
struct event *queue_timer(struct queue *q, int64_t ms, event_callback_fn fn)
{
	struct event *ev = event_new(q->e->base, -1, EV_PERSIST, fn, q);
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	event_add(ev, &tv);
	return ev;
}

/* The claims' part of queue_new: the claimed-ahead list, the poll and due
 * timers. */
void queue_claims_init(struct queue *q)
{
	struct engine *e = q->e;

	q->waiting_cap = (unsigned)e->config->workers;
	q->waiting = xcalloc(q->waiting_cap + 1, sizeof(*q->waiting));
	q->poll_timer =
		queue_timer(q, e->config->poll_interval_ms, queue_poll_cb);
	q->due_timer = evtimer_new(e->base, queue_due_cb, q);
}

/* The claims' part of queue_free: ends not recorded, jobs claimed ahead,
 * the timers. */
void queue_claims_free(struct queue *q)
{
	struct finishing *f;

	while ((f = q->finishing) != NULL) {
		q->finishing = f->next;
		finishing_free(f);
	}
	for (unsigned i = 0; i < q->waiting_count; i++)
		job_free(q->waiting[i]);
	free(q->waiting);
	event_free(q->poll_timer);
	event_free(q->due_timer);
}
