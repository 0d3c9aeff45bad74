/* runner.c - the step engine: runs one claimed job's steps on its worker's
 * connection, checkpointing to SQLite and to the job row.
 *
 * Every step ends with the job row's progress (step_index past the step)
 * written in the same transaction as the step's work where there is one;
 * batch steps write it with every batch. SQLite gets the same checkpoint
 * right after each commit. On resume the row is the authority for
 * transactional work (SQLite may only hold the position back; ahead of the
 * row it is a commit the database lost), so a crash can redo at most the
 * last batch and never skip one; work outside a transaction resumes from
 * the earlier of the two. */
#include "runner-int.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backup.h"
#include "child.h"
#include "engine.h"
#include "jobdef.h"
#include "pgjson.h"
#include "sqlvars.h"
#include "util.h"

static void runner_enter_step(struct runner *r, bool resuming);
static void runner_restart_step(struct runner *r);
static void runner_next_step(struct runner *r);

/* ------------------------------------------------------------ queries */

/* Whether the runner must stop instead of starting more work. */
bool runner_interrupted(const struct runner *r)
{
	return r->job->cancel_requested || r->job->stop_requested ||
	       r->job->lost;
}

/* Report the end to whom runner_start was given, from the loop. */
static void runner_report_end(evutil_socket_t fd, short what, void *arg)
{
	struct job *job = arg;
	char *error = job->end_error;

	(void)fd;
	(void)what;
	job->end_error = NULL;
	job->done(job, job->end_outcome, error, job->done_arg);
	free(error);
}

/* Free the runner and report the job's end on the next loop turn. */
void runner_end(struct runner *r, enum job_outcome outcome, const char *error)
{
	static const struct timeval now = { 0, 0 };
	struct job *job = r->job;

	if (r->finished)
		return;
	r->finished = true;
	job->runner = NULL;
	job->step_index = r->step_index;
	for (unsigned i = 0; i < r->var_count; i++) {
		free(r->vars[i].name);
		free(r->vars[i].value);
	}
	free(r->vars);
	json_decref(r->last_row);
	json_decref(r->expected);
	json_decref(r->actual);
	if (r->each_rows != NULL)
		PQclear(r->each_rows);
	free(r->last_key);
	free(r->batch_key);
	free(r);
	job_set_context(job, NULL);
	job->end_outcome = outcome;
	free(job->end_error);
	job->end_error = error ? xstrdup(error) : NULL;
	if (job->end_event == NULL)
		job->end_event =
			evtimer_new(job->engine->base, runner_report_end, job);
	evtimer_add(job->end_event, &now);
}

/* The outcome that an interruption asks for. */
enum job_outcome runner_interrupt_outcome(const struct runner *r)
{
	if (r->job->lost)
		return JOB_LOST;
	if (r->job->cancel_requested)
		return JOB_CANCELLED;
	return JOB_HANDED_BACK;
}

struct rollback {
	struct runner *r;
	enum job_outcome outcome;
	char *error;
};

static void runner_rolled_back(const struct pgconn_result *res, void *arg)
{
	struct rollback *rb = arg;

	rb->r->busy = false;
	runner_end(rb->r, rb->outcome, rb->error);
	free(rb->error);
	free(rb);
}

/* End the job, rolling back an open transaction first. */
void runner_finish(struct runner *r, enum job_outcome outcome,
		   const char *error)
{
	struct rollback *rb;

	if (!r->in_txn || !pgconn_is_ready(r->conn)) {
		runner_end(r, outcome, error);
		return;
	}
	rb = xcalloc(1, sizeof(*rb));
	rb->r = r;
	rb->outcome = outcome;
	rb->error = error ? xstrdup(error) : NULL;
	r->in_txn = false;
	r->busy = true;
	pgconn_exec(r->conn, "ROLLBACK", runner_rolled_back, rb);
}

/* Fail the job with a message that names the step and its line. */
void runner_fail(struct runner *r, enum job_outcome outcome, const char *fmt,
		 ...)
{
	va_list ap;
	char *msg, *full;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (outcome == JOB_FAILED_RETRY && r->step != NULL && !r->step->retry)
		outcome = JOB_FAILED_FINAL;
	if (r->step != NULL)
		full = xasprintf("step \"%s\" (%s line %u): %s", r->step->name,
				 r->job->def->file, r->step->line, msg);
	else
		full = xstrdup(msg);
	runner_finish(r, outcome, full);
	free(full);
	free(msg);
}

/* The worker's connection broke. What the runner remembers may be ahead of
 * the database (a commit acknowledged under synchronous_commit = off can be
 * lost in a server crash), so the job goes back to the queue without
 * spending an attempt and resumes from its row, the earlier of row and
 * SQLite, once claimed again. */
void runner_connection_lost(struct runner *r)
{
	job_log_warning(
		r->job,
		"database connection lost; handing the job back to resume from its checkpoint");
	runner_end(r, JOB_HANDED_BACK,
		   "the database connection was lost during the step; the "
		   "job resumes from its checkpoint");
}

/* Common handling of a query's error; true if the caller should go on. */
bool runner_query_ok(struct runner *r, const struct pgconn_result *res)
{
	r->busy = false;
	if (res->sqlstate != NULL && strcmp(res->sqlstate, LOST_SQLSTATE) == 0)
		r->job->lost = true;
	if (res->connection_lost) {
		r->in_txn = false;
		if (runner_interrupted(r)) {
			runner_end(r, runner_interrupt_outcome(r), NULL);
			return false;
		}
		runner_connection_lost(r);
		return false;
	}
	if (res->error != NULL) {
		if (runner_interrupted(r))
			runner_finish(r, runner_interrupt_outcome(r), NULL);
		else
			runner_fail(r, JOB_FAILED_RETRY, "%s", res->error);
		return false;
	}
	return true;
}

/* Send one compiled statement with its variables bound. */
void runner_send(struct runner *r, const struct sqlvars_stmt *stmt,
		 pgconn_result_fn cb)
{
	char *sql = NULL, *cause = NULL;
	const char **values = NULL;

	if (!sqlvars_bind(stmt, runner_var_lookup, r, &sql, &values, &cause)) {
		runner_fail(r, JOB_FAILED_FINAL, "%s", cause);
		free(cause);
		return;
	}
	r->busy = true;
	pgconn_query(r->conn, sql, (int)stmt->param_count, values, cb, r);
	free(sql);
	free(values);
}

/* Send a fixed statement of the engine itself. */
static void runner_send_fixed(struct runner *r, const char *sql, int n,
			      const char *const *values, pgconn_result_fn cb)
{
	r->busy = true;
	pgconn_query(r->conn, sql, n, values, cb, r);
}

/* Whether the job asks for the test pause point. */
bool runner_test_pause_on(const struct runner *r)
{
	return r->job->test_sleep_ms > 0 ||
	       (r->job->test_gate != NULL && r->job->test_gate[0] != '\0');
}

/* The two parameters of RUNNER_TEST_PAUSE_SQL. */
void runner_test_pause_params(const struct runner *r, char ms[24],
			      const char *values[2])
{
	snprintf(ms, 24, "%" PRId64, r->job->test_sleep_ms);
	values[0] = ms;
	values[1] = r->job->test_gate != NULL ? r->job->test_gate : "";
}

static void runner_test_paused(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	r->paused(r);
}

/* The test pause point of the args test_sleep and test_gate, in the
 * transaction of the step if one is open, then call then: at once and
 * without a query when the job has neither. */
void runner_test_pause(struct runner *r, void (*then)(struct runner *r))
{
	char ms[24];
	const char *values[2];

	if (!runner_test_pause_on(r)) {
		then(r);
		return;
	}
	runner_test_pause_params(r, ms, values);
	r->paused = then;
	runner_send_fixed(r, RUNNER_TEST_PAUSE_SQL, 2, values,
			  runner_test_paused);
}

/* ------------------------------------------------------------ scripts */

static void runner_script_next(struct runner *r);

static void runner_script_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	json_decref(r->last_row);
	r->last_row = pgjson_first_row(res->res);
	r->stmt++;
	if (r->in_txn)
		runner_script_next(r);
	else
		runner_test_pause(r, runner_script_next);
}

/* Microseconds on the monotonic clock, for step timings. */
static int64_t runner_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Run the next statement of the script, or call its continuation. */
static void runner_script_next(struct runner *r)
{
	if (r->stmt >= r->script->stmt_count) {
		r->script_us = runner_now_us() - r->script_started_us;
		if (r->in_txn)
			runner_test_pause(r, r->script_done);
		else
			r->script_done(r);
		return;
	}
	runner_send(r, &r->script->stmts[r->stmt], runner_script_result);
}

/* Run every statement of script in order, then call done. */
void runner_run_script(struct runner *r, const struct sqlvars_script *script,
		       void (*done)(struct runner *r))
{
	r->script = script;
	r->stmt = 0;
	r->script_started_us = runner_now_us();
	r->script_done = done;
	json_decref(r->last_row);
	r->last_row = NULL;
	runner_script_next(r);
}

static void runner_began(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	r->in_txn = true;
	r->script_done(r);
}

/* BEGIN, then call done. */
void runner_begin(struct runner *r, void (*done)(struct runner *r))
{
	r->script_done = done;
	runner_send_fixed(r, "BEGIN", 0, NULL, runner_began);
}

/* ------------------------------------------------------------ steps */

/* Record that the current step completed (it was not skipped). */
void runner_mark_passed(struct runner *r)
{
	json_t *name = json_string(r->step->name);
	size_t i;
	json_t *v;

	json_array_foreach(r->job->passed, i, v) {
		if (json_equal(v, name)) {
			json_decref(name);
			return;
		}
	}
	json_array_append_new(r->job->passed, name);
}

/* Whether step index has completed in this job. */
static bool runner_has_passed(const struct runner *r, unsigned index)
{
	const char *name = r->job->def->steps[index].name;
	size_t i;
	json_t *v;

	json_array_foreach(r->job->passed, i, v)
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), name) == 0)
			return true;
	return false;
}

/* The step is complete: checkpoint it and go to the next one. The last
 * step's is not written: the job's end deletes the job's checkpoints next,
 * and a checkpoint marked done is never resumed from. */
void runner_step_complete(struct runner *r)
{
	struct engine *e = r->job->engine;

	if (r->step_index + 1 < (int)r->job->def->step_count)
		runner_save_ckpt(r, true);
	e->metrics.steps_done++;
	job_log_debug(r->job, "step done in %.3f s",
		      (double)(mono_ms() - r->step_started_ms) / 1e3);
	runner_next_step(r);
}

/* Mirror "step done" outside a transaction, then go on. */
void runner_step_done_autocommit(struct runner *r)
{
	runner_mark_passed(r);
	runner_mirror(r, r->step_index + 1, runner_step_complete);
}

/* The step's `when` was false: mirror that it is over, not passed. */
static void runner_step_skipped(struct runner *r)
{
	runner_mirror(r, r->step_index + 1, runner_step_complete);
}

/* ------------------------------------------------------------ mirror */

struct mirror {
	struct runner *r;
	void (*then)(struct runner *r);
	bool commit;
};

static void runner_committed(const struct pgconn_result *res, void *arg)
{
	struct mirror *m = arg;
	struct runner *r = m->r;
	void (*then)(struct runner *) = m->then;

	free(m);
	if (!runner_query_ok(r, res))
		return;
	r->in_txn = false;
	then(r);
}

static void runner_mirrored(const struct pgconn_result *res, void *arg)
{
	struct mirror *m = arg;
	struct runner *r = m->r;

	if (!runner_query_ok(r, res)) {
		free(m);
		return;
	}
	if (m->commit) {
		r->busy = true;
		pgconn_exec(r->conn, "COMMIT", runner_committed, m);
		return;
	}
	free(m);
	m = NULL;
	r->script_done(r);
}

/* Write progress (as of step_index) and result to the job row, then COMMIT
 * if a transaction is open, then call then. The row must still be ours:
 * if another daemon took the job over, the transaction is rolled back.
 *
 * Past the job's last step with no transaction open, nothing is written
 * here: the job's end writes the row anyway and carries this progress
 * (one round trip less a job; the write it saves would have been
 * asynchronous too). */
void runner_mirror(struct runner *r, int step_index,
		   void (*then)(struct runner *r))
{
	struct mirror *m;
	struct runner_progress_params pp;

	if (!r->in_txn && step_index >= (int)r->job->def->step_count) {
		runner_progress_settle(r, step_index);
		r->job->progress_at_end = true;
		then(r);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	runner_progress_params(r, step_index, &pp);
	r->mirrored_ms = mono_ms();
	m->r = r;
	m->then = then;
	m->commit = r->in_txn;
	r->script_done = then;
	r->busy = true;
	pgconn_query_prepared(r->conn,
			      m->commit ? SAVE_PROGRESS_SQL :
					  SAVE_PROGRESS_ASYNC_SQL,
			      6, pp.values, runner_mirrored, m);
	runner_progress_params_clear(&pp);
}

/* What the core does with each type of step: run its body (the step
 * files), find where a resumed one stands, and for the types that have no
 * transaction of their own to pause in, the test pause point first. */
static const struct step_ops {
	const char *name;
	void (*run)(struct runner *r);
	void (*resume)(struct runner *r); /* NULL: starts over */
	bool pause_first;
} step_ops[] = {
	[STEP_SQL] = { "sql", runner_sql_step, runner_resume_for_each, false },
	[STEP_BATCH] = { "batch", runner_batch_step, runner_resume_batch,
			 false },
	[STEP_VERIFY] = { "verify", runner_verify_step, NULL, false },
	[STEP_EXEC] = { "exec", runner_exec_step, NULL, true },
	[STEP_BACKUP] = { "backup", runner_backup_step, NULL, true },
	[STEP_BACKUP_CHECK] = { "backup_check", runner_backup_step, NULL,
				true },
	[STEP_RESTORE] = { "restore", runner_backup_step, NULL, true },
	[STEP_RESTORE_DRILL] = { "restore_drill", runner_backup_step, NULL,
				 true },
};

static void runner_run_body(struct runner *r)
{
	const struct step_ops *ops = &step_ops[r->step->type];

	if (ops->pause_first)
		runner_test_pause(r, ops->run);
	else
		ops->run(r);
}

/* Run the body if the steps the current one requires have passed;
 * checked after `when`, so that a step `when` skips needs nothing. */
static void runner_checked_body(struct runner *r)
{
	for (unsigned i = 0; i < r->step->require_count; i++) {
		unsigned req = r->step->requires[i];

		if (!runner_has_passed(r, req)) {
			runner_fail(
				r, JOB_FAILED_FINAL,
				"refusing to run %s step: step \"%s\" has not passed in this job",
				r->step->destructive ? "a destructive" : "this",
				r->job->def->steps[req].name);
			return;
		}
	}
	runner_run_body(r);
}

static void runner_when_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;
	const char *v;

	if (!runner_query_ok(r, res))
		return;
	v = PQntuples(res->res) > 0 && PQnfields(res->res) > 0 &&
			    !PQgetisnull(res->res, 0, 0) ?
		    PQgetvalue(res->res, 0, 0) :
		    "f";
	if (v[0] != 't') {
		job_log_debug(r->job, "skipped: `when` is false");
		runner_step_skipped(r);
		return;
	}
	runner_checked_body(r);
}

/* Start the current step. */
static void runner_restart_step(struct runner *r)
{
	if (runner_interrupted(r)) {
		runner_finish(r, runner_interrupt_outcome(r), NULL);
		return;
	}
	if (r->step->has_when)
		runner_send(r, &r->step->when.stmts[0], runner_when_result);
	else
		runner_checked_body(r);
}

/* Set up the step at r->step_index and run it. */
static void runner_enter_step(struct runner *r, bool resuming)
{
	const struct jobdef_step *s = &r->job->def->steps[r->step_index];

	r->step = s;
	r->step_started_ms = mono_ms();
	r->mirrored_ms = r->step_started_ms;
	job_set_context(r->job, s->name);
	free(r->last_key);
	r->last_key = s->start_key && s->start_key[0] ? xstrdup(s->start_key) :
							NULL;
	r->rows_done = 0;
	r->batches = 0;
	r->batch_size = s->batch_size;
	r->total_rows = -1;
	r->rate = 0;
	r->sweep = false;
	r->each_index = 0;
	if (r->each_rows != NULL) {
		PQclear(r->each_rows);
		r->each_rows = NULL;
	}
	if (resuming && step_ops[s->type].resume != NULL)
		step_ops[s->type].resume(r);
	job_log_debug(r->job, "step %d of %u (%s)", r->step_index + 1,
		      r->job->def->step_count, step_ops[s->type].name);
	runner_restart_step(r);
}

/* Go to the step after the current one, or end the job. */
static void runner_next_step(struct runner *r)
{
	r->step_index++;
	r->job->step_index = r->step_index;
	if (r->step_index >= (int)r->job->def->step_count) {
		runner_end(r, JOB_SUCCEEDED, NULL);
		return;
	}
	if (runner_interrupted(r)) {
		r->step = &r->job->def->steps[r->step_index];
		runner_finish(r, runner_interrupt_outcome(r), NULL);
		return;
	}
	runner_enter_step(r, false);
}

/* ------------------------------------------------------------ API */

/* Start running job on worker. */
void runner_start(struct worker *worker, struct job *job, job_done_fn done,
		  void *arg)
{
	struct runner *r = xcalloc(1, sizeof(*r));

	job->done = done;
	job->done_arg = arg;
	r->job = job;
	r->worker = worker;
	r->conn = worker->conn;
	job->worker = worker;
	job->runner = r;
	worker->job = job;
	r->step_index = job->step_index;
	r->total_rows = -1;
	runner_init_vars(r);
	if (r->step_index < 0)
		r->step_index = 0;
	if (r->step_index >= (int)job->def->step_count) {
		runner_end(r, JOB_SUCCEEDED, NULL);
		return;
	}
	if (r->step_index > 0)
		job_log_info(job, "resuming at step %d of %u (%s)",
			     r->step_index + 1, job->def->step_count,
			     job->def->steps[r->step_index].name);
	runner_enter_step(r, true);
}

/* Stop at the next safe point; interrupt what is in flight. */
void runner_interrupt(struct job *job, enum job_interrupt why)
{
	struct runner *r = job->runner;

	switch (why) {
	case JOB_INTERRUPT_CANCEL:
		job->cancel_requested = true;
		break;
	case JOB_INTERRUPT_STOP:
		job->stop_requested = true;
		break;
	case JOB_INTERRUPT_LOST:
		job->lost = true;
		break;
	}
	if (r == NULL)
		return;
	if (r->child != NULL) {
		child_kill(r->child, SIGTERM);
		return;
	}
	if (r->backup != NULL) {
		backup_cancel(r->backup);
		return;
	}
	/* a lost job's statement too: the job is not this daemon's any more,
	 * and its tenant's next job may be claimed here again */
	if (r->busy)
		engine_cancel_statement(r->worker);
}
