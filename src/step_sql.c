/* step_sql.c - the sql step: its statements in a transaction or not, once
 * or for each row of for_each, and the fast path of a one-statement step. */
#include "runner-int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ckpt.h"
#include "jobdef.h"
#include "sqlvars.h"
#include "util.h"

static void runner_sql_iteration(struct runner *r);

/* Append this for_each row's entry to the result array named by
 * `collect`: the row's for_each_vars, the last statement's first row and
 * the microseconds the statements took. Entries match rows one to one, so
 * a row redone after a crash replaces its entry. */
static void runner_collect(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	json_t *list = json_object_get(r->job->result, s->collect);
	json_t *entry = json_object();

	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(r->job->result, s->collect, list);
	}
	while (r->each_index >= 0 &&
	       json_array_size(list) > (size_t)r->each_index)
		json_array_remove(list, json_array_size(list) - 1);
	for (unsigned i = 0; i < s->for_each_var_count; i++) {
		const char *v = runner_var_lookup(s->for_each_vars[i], r);

		json_object_set_new(entry, s->for_each_vars[i],
				    v ? json_string(v) : json_null());
	}
	if (r->last_row != NULL)
		json_object_update(entry, r->last_row);
	json_object_set_new(entry, "duration_us",
			    json_integer((json_int_t)r->script_us));
	json_array_append_new(list, entry);
}

/* One pass of the statements is through: outputs, mirror, commit. */
static void runner_sql_ran(struct runner *r)
{
	enum job_outcome outcome;
	char *cause = NULL;
	bool last = r->each_rows == NULL ||
		    r->each_index + 1 >= PQntuples(r->each_rows);

	if (!runner_take_outputs(r, &outcome, &cause)) {
		runner_fail(r, outcome, "%s", cause);
		free(cause);
		return;
	}
	if (r->step->collect != NULL && r->each_rows != NULL)
		runner_collect(r);
	if (r->each_rows != NULL) {
		r->each_index++;
		if (!last && !r->in_txn &&
		    mono_ms() - r->mirrored_ms < RUNNER_ROW_MIRROR_MS) {
			runner_sql_iteration(r);
			return;
		}
		if (!last) {
			runner_mirror(r, r->step_index, runner_sql_iteration);
			return;
		}
	}
	runner_mark_passed(r);
	runner_mirror(r, r->step_index + 1, runner_step_complete);
}

static void runner_sql_statements(struct runner *r)
{
	runner_run_script(r, &r->step->sql, runner_sql_ran);
}

/* Undo the bookkeeping of a one-round-trip pass that did not commit. */
static void runner_fast_undo(struct runner *r, bool last)
{
	size_t n = json_array_size(r->job->passed);

	if (r->each_rows != NULL)
		r->each_index--;
	if (last && n > 0 &&
	    json_is_string(json_array_get(r->job->passed, n - 1)) &&
	    strcmp(json_string_value(json_array_get(r->job->passed, n - 1)),
		   r->step->name) == 0)
		json_array_remove(r->job->passed, n - 1);
}

static void runner_fast_done(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;
	bool last = r->each_rows == NULL ||
		    r->each_index >= PQntuples(r->each_rows);

	if (res->error != NULL)
		runner_fast_undo(r, last);
	if (!runner_query_ok(r, res))
		return;
	if (last)
		runner_step_complete(r);
	else
		runner_sql_iteration(r);
}

/* A transactional pass whose output nobody reads: the statements and the
 * progress update go in one round trip as one implicit transaction. */
static void runner_sql_fast(struct runner *r)
{
	const struct sqlvars_script *script = &r->step->sql;
	unsigned n = script->stmt_count;
	struct pgconn_stmt *stmts = xcalloc(n + 2, sizeof(*stmts));
	char **sqls = xcalloc(n + 1, sizeof(char *));
	const char ***values = xcalloc(n + 1, sizeof(char **));
	bool last = r->each_rows == NULL ||
		    r->each_index + 1 >= PQntuples(r->each_rows);
	struct runner_progress_params pp;
	char *cause = NULL, ms[24];
	const char *pause[2];
	unsigned k, m = n;

	for (k = 0; k < n; k++) {
		if (!sqlvars_bind(&script->stmts[k], runner_var_lookup, r,
				  &sqls[k], &values[k], &cause))
			break;
		stmts[k].sql = sqls[k];
		stmts[k].nparams = (int)script->stmts[k].param_count;
		stmts[k].values = values[k];
	}
	if (k == n) {
		if (r->each_rows != NULL)
			r->each_index++;
		if (last)
			runner_mark_passed(r);
		runner_progress_params(
			r, last ? r->step_index + 1 : r->step_index, &pp);
		if (runner_test_pause_on(r)) {
			runner_test_pause_params(r, ms, pause);
			stmts[m].sql = RUNNER_TEST_PAUSE_SQL;
			stmts[m].nparams = 2;
			stmts[m].values = pause;
			m++;
		}
		stmts[m].sql = SAVE_PROGRESS_SQL;
		stmts[m].nparams = 6;
		stmts[m].values = pp.values;
		stmts[m].prepare = true;
		r->busy = true;
		pgconn_transaction(r->conn, stmts, (int)m + 1, runner_fast_done,
				   r);
		runner_progress_params_clear(&pp);
	}
	for (unsigned i = 0; i < k; i++) {
		free(sqls[i]);
		free(values[i]);
	}
	free(sqls);
	free(values);
	free(stmts);
	if (k < n) {
		runner_fail(r, JOB_FAILED_FINAL, "%s", cause);
		free(cause);
	}
}

/* Run the statements once (for this for_each row, if any). */
static void runner_sql_iteration(struct runner *r)
{
	const struct jobdef_step *s = r->step;

	if (r->each_rows != NULL) {
		if (r->each_index > 0)
			runner_save_ckpt(r, false);
		if (runner_interrupted(r)) {
			runner_finish(r, runner_interrupt_outcome(r), NULL);
			return;
		}
		if (r->each_index >= PQntuples(r->each_rows)) {
			runner_step_done_autocommit(r);
			return;
		}
		for (unsigned i = 0; i < s->for_each_var_count; i++) {
			int col = PQfnumber(r->each_rows, s->for_each_vars[i]);

			if (col < 0) {
				runner_fail(r, JOB_FAILED_FINAL,
					    "for_each returns no column \"%s\"",
					    s->for_each_vars[i]);
				return;
			}
			runner_var_set(r, s->for_each_vars[i],
				       PQgetisnull(r->each_rows, r->each_index,
						   col) ?
					       NULL :
					       PQgetvalue(r->each_rows,
							  r->each_index, col));
		}
	}
	if (s->transaction && !s->result && s->set_var_count == 0 &&
	    s->collect == NULL)
		runner_sql_fast(r);
	else if (s->transaction)
		runner_begin(r, runner_sql_statements);
	else
		runner_sql_statements(r);
}

static void runner_for_each_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	if (r->each_rows != NULL)
		PQclear(r->each_rows);
	r->each_rows =
		PQcopyResult(res->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	runner_sql_iteration(r);
}

void runner_sql_step(struct runner *r)
{
	if (r->step->has_for_each)
		runner_send(r, &r->step->for_each.stmts[0],
			    runner_for_each_result);
	else
		runner_sql_iteration(r);
}

/* Where a for_each step stands (an sql step without for_each starts
 * over). In a transaction each row commits with
 * the job row's position, which is then the authority as for batches (no
 * position: the step's start; SQLite only ever holds it back). Outside one
 * the row is mirrored lazily and asynchronously while the work itself
 * (VACUUM, say) cannot be lost, so SQLite wins when the row has no
 * position and the earlier of the two wins otherwise. */
void runner_resume_for_each(struct runner *r)
{
	const struct resume_point *rp = &r->job->resume;
	struct ckpt_step cs;
	bool local;
	int64_t done;

	if (!r->step->has_for_each)
		return;
	local = runner_load_ckpt(r, &cs);
	if (resume_pick_for_each(rp->has_for_each ? rp->for_each_done : -1,
				 r->step->transaction,
				 local ? cs.rows_done : -1,
				 &done) == RESUME_ROW_LOCAL_AHEAD)
		job_log_warning(
			r->job,
			"the local checkpoint (row %" PRId64
			") is ahead of the job row (row %" PRId64
			"): the database lost commits; resuming from the job row",
			cs.rows_done, done);
	if (local)
		ckpt_step_clear(&cs);
	r->each_index = done > 0 && done < INT32_MAX ? (int)done : 0;
}
