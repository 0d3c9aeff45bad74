/* step_batch.c - the batch step: one statement run again and again from the
 * last key, each batch committed with the job row's counters, its size
 * adapted to batch_target. */
#include "runner-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ckpt.h"
#include "engine.h"
#include "jobdef.h"
#include "pace.h"
#include "util.h"

static void runner_batch_next(struct runner *r);

/* The batch committed: checkpoint, adapt the size, go on or finish. */
static void runner_batch_committed(struct runner *r)
{
	struct engine *e = r->job->engine;
	double elapsed = (double)(mono_ms() - r->batch_sent_ms);
	const struct pace_limits lim = {
		.target_ms = r->step->target_ms,
		.min_size = r->step->min_batch_size,
		.max_size = r->step->max_batch_size,
	};

	runner_save_ckpt(r, false);
	e->metrics.batches_done++;
	e->metrics.batch_rows += (uint64_t)r->batch_rows;
	r->rate = pace_rate(r->rate, r->batch_rows, elapsed);
	r->batch_size =
		pace_next_size(r->batch_size, r->batch_rows, elapsed, &lim);
	if ((r->batch_rows == 0 || r->last_key == NULL) && r->sweep) {
		/* Resumed from a checkpoint: if it was ahead of what the
		 * database kept, the ranges before it still hold rows. */
		job_log_info(
			r->job,
			"resumed delete step: one more pass from the start");
		r->sweep = false;
		free(r->last_key);
		r->last_key = r->step->start_key && r->step->start_key[0] ?
				      xstrdup(r->step->start_key) :
				      NULL;
	} else if (r->batch_rows == 0 || r->last_key == NULL) {
		runner_step_done_autocommit(r);
		return;
	}
	runner_batch_next(r);
}

/* Write the batch's progress and commit it with the batch. */
static void runner_batch_mirror(struct runner *r)
{
	runner_mirror(r, r->step_index, runner_batch_committed);
}

static void runner_batch_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;
	const PGresult *pr;
	const char *rows;

	if (!runner_query_ok(r, res))
		return;
	pr = res->res;
	if (PQresultStatus(pr) != PGRES_TUPLES_OK || PQntuples(pr) != 1 ||
	    PQnfields(pr) < 2) {
		runner_fail(
			r, JOB_FAILED_FINAL,
			"a batch statement must return one row (last_key, rows); it returned %d row(s) of %d column(s)",
			PQresultStatus(pr) == PGRES_TUPLES_OK ? PQntuples(pr) :
								0,
			PQnfields(pr));
		return;
	}
	rows = PQgetisnull(pr, 0, 1) ? "0" : PQgetvalue(pr, 0, 1);
	r->batch_rows = strtoll(rows, NULL, 10);
	free(r->last_key);
	r->last_key = r->batch_rows > 0 && !PQgetisnull(pr, 0, 0) ?
			      xstrdup(PQgetvalue(pr, 0, 0)) :
			      NULL;
	if (r->last_key == NULL && r->batch_key != NULL && r->batch_rows == 0)
		r->last_key = xstrdup(r->batch_key);
	r->rows_done += r->batch_rows;
	r->batches++;
	runner_test_pause(r, runner_batch_mirror);
}

static void runner_batch_send(struct runner *r)
{
	char size[24];

	free(r->batch_key);
	r->batch_key = r->last_key ? xstrdup(r->last_key) : NULL;
	runner_var_set(r, "last_key", r->last_key ? r->last_key : "");
	snprintf(size, sizeof(size), "%" PRId64, r->batch_size);
	runner_var_set(r, "batch_size", size);
	r->batch_sent_ms = mono_ms();
	runner_send(r, &r->step->batch.stmts[0], runner_batch_result);
}

/* Run the next batch in its own transaction. */
static void runner_batch_next(struct runner *r)
{
	if (runner_interrupted(r)) {
		runner_finish(r, runner_interrupt_outcome(r), NULL);
		return;
	}
	runner_begin(r, runner_batch_send);
}

static void runner_total_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	if (PQntuples(res->res) > 0 && !PQgetisnull(res->res, 0, 0))
		r->total_rows = strtoll(PQgetvalue(res->res, 0, 0), NULL, 10);
	runner_batch_next(r);
}

void runner_batch_step(struct runner *r)
{
	if (r->step->has_total && r->total_rows < 0)
		runner_send(r, &r->step->total.stmts[0], runner_total_result);
	else
		runner_batch_next(r);
}

/* Where a batch step stands. Each batch commits with the job row's
 * counters, so the row is the authority and a row at the step without
 * counters is the step's start. SQLite is written after the commit: it may
 * hold the position back (a crash between the two), never ahead; ahead of
 * the row it is a commit that the database lost (synchronous_commit = off,
 * failover to an asynchronous standby), which is done again. */
void runner_resume_batch(struct runner *r)
{
	const struct resume_point *rp = &r->job->resume;
	struct ckpt_step cs;
	bool local = runner_load_ckpt(r, &cs);

	if (rp->has_batch) {
		free(r->last_key);
		r->last_key = rp->last_key ? xstrdup(rp->last_key) : NULL;
		r->batches = rp->batches;
		r->rows_done = rp->rows_done;
		if (rp->batch_size > 0)
			r->batch_size = rp->batch_size;
	}
	switch (resume_pick_batch(r->batches, local ? cs.batches : -1)) {
	case RESUME_ROW:
		break;
	case RESUME_LOCAL:
		free(r->last_key);
		r->last_key = cs.last_key ? xstrdup(cs.last_key) : NULL;
		r->batches = cs.batches;
		r->rows_done = cs.rows_done;
		if (cs.batch_size > 0)
			r->batch_size = cs.batch_size;
		break;
	case RESUME_ROW_LOCAL_AHEAD:
		job_log_warning(
			r->job,
			"the local checkpoint (batch %" PRId64
			") is ahead of the job row (batch %" PRId64
			"): the database lost commits; resuming from the job row",
			cs.batches, r->batches);
		break;
	}
	if (local)
		ckpt_step_clear(&cs);
	if (r->batches > 0) {
		r->sweep = r->step->destructive;
		job_log_info(r->job,
			     "resuming after batch %" PRId64
			     " (last key \"%s\", %" PRId64 " rows done)",
			     r->batches, r->last_key ? r->last_key : "",
			     r->rows_done);
	}
}
