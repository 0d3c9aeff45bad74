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
#include "runner.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backup.h"
#include "child.h"
#include "ckpt.h"
#include "config.h"
#include "engine.h"
#include "jobdef.h"
#include "log.h"
#include "pgconn.h"
#include "sqlvars.h"
#include "tenant.h"
#include "util.h"

/* save_progress raises this when the job is no longer ours. */
#define LOST_SQLSTATE "PGT01"

#define SAVE_PROGRESS_SQL                                                  \
	"SELECT pgtenantd.save_progress($1::bigint, $2, $3, $4::integer, " \
	"$5::jsonb, $6::jsonb)"
/* Rows of a for_each step outside a transaction update the job row at most
 * this often (SQLite gets every row); a row is redone at most once. */
#define RUNNER_ROW_MIRROR_MS 1000

/* The test pause point: sleep test_sleep ms, then wait for a shared
 * advisory lock on hashtext(test_gate) that a test may hold exclusively
 * (inside the step's transaction, so until it commits). */
#define RUNNER_TEST_PAUSE_SQL                                           \
	"SELECT pg_sleep($1::float8 / 1000), CASE WHEN $2::text <> '' " \
	"THEN pg_advisory_xact_lock_shared(hashtext($2::text)) END"
#define RUNNER_TEST_SLEEP_MAX_MS 3600000

/* The same for an update that commits alone: asynchronous commit. */
#define SAVE_PROGRESS_ASYNC_SQL                                     \
	"SELECT pgtenantd.save_progress_async($1::bigint, $2, $3, " \
	"$4::integer, $5::jsonb, $6::jsonb)"

struct var {
	char *name;
	char *value; /* NULL: SQL NULL */
};

/* What the query in flight is for. */
typedef void (*runner_next_fn)(struct runner *r,
			       const struct pgconn_result *res);

struct runner {
	struct job *job;
	struct worker *worker;
	struct pgconn *conn;

	struct var *vars;
	unsigned var_count;

	const struct jobdef_step *step;
	int step_index;
	int64_t step_started_ms;
	bool in_txn;
	bool busy;     /* a query or a child in flight */
	bool finished; /* runner_end was called */

	/* running a script: statement by statement */
	const struct sqlvars_script *script;
	unsigned stmt;
	void (*script_done)(struct runner *r);
	json_t *last_row; /* first row of the last statement, or NULL */

	/* for_each */
	PGresult *each_rows;
	int each_index;

	/* batch */
	char *last_key;
	int64_t batch_size;
	int64_t rows_done;
	int64_t batches;
	int64_t total_rows; /* -1: unknown */
	int64_t batch_sent_ms;
	double rate;	    /* rows per second, smoothed */
	int64_t batch_rows; /* rows of the batch in flight */
	bool sweep;	    /* a resumed delete step: one more pass from
					 * the start before it ends */
	char *batch_key;    /* key returned by the batch in flight */

	/* verify */
	json_t *expected;
	json_t *actual;

	void (*paused)(struct runner *r); /* after the test pause point */

	/* exec */
	struct child *child;

	/* backup, backup_check, restore */
	struct backup_op *backup;

	int64_t script_started_us; /* when the statements of a pass began */
	int64_t script_us;	   /* how long they took, once done */
	int64_t mirrored_ms;	   /* when progress was last sent to the row */
};

static void runner_enter_step(struct runner *r, bool resuming);
static void runner_restart_step(struct runner *r);
static void runner_next_step(struct runner *r);
static void runner_fail(struct runner *r, enum job_outcome outcome,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ job */

/* Log with the job's context. */
void job_log(const struct job *job, int level, const char *fmt, ...)
{
	static const enum log_level levels[] = {
		LOG_LEVEL_DEBUG,
		LOG_LEVEL_INFO,
		LOG_LEVEL_WARNING,
		LOG_LEVEL_ERROR,
	};
	va_list ap;

	va_start(ap, fmt);
	log_msgv(levels[level & 3], job->context, fmt, ap);
	va_end(ap);
}

/* Set the log context to the job and, if any, its step. */
static void job_set_context(struct job *job, const char *step)
{
	snprintf(job->context, sizeof(job->context),
		 "job %" PRId64 " %s %s%s%s", job->id, job->kind,
		 job->tenant_id, step ? " step " : "", step ? step : "");
}

/* Text of a column by name, or NULL if the column is missing or NULL. */
static const char *row_value(const PGresult *res, int row, const char *col)
{
	int n = PQfnumber(res, col);

	if (n < 0 || PQgetisnull(res, row, n))
		return NULL;
	return PQgetvalue(res, row, n);
}

/* Take the reserved args of the test pause point (test_gate, test_sleep)
 * into the job. A daemon without test_hooks refuses a job that carries
 * either, so that a test never silently runs without its pauses and a
 * production daemon never pauses. */
static bool job_test_hooks(struct job *job, bool enabled, char **cause)
{
	json_t *v;
	const char *text;
	char *end = NULL, *shown, *dumped;
	long long ms = -1;

	for (unsigned i = 0; jobdef_reserved_args[i].name != NULL; i++)
		if (!enabled &&
		    json_object_get(job->args, jobdef_reserved_args[i].name))
			return set_cause(
				cause,
				"job %" PRId64
				": arg \"%s\" is a test hook of the engine, refused because this daemon's configuration does not set test_hooks: true",
				job->id, jobdef_reserved_args[i].name);
	v = json_object_get(job->args, "test_gate");
	if (v != NULL) {
		if (!json_is_string(v))
			return set_cause(
				cause,
				"job %" PRId64
				": arg \"test_gate\" must be a string (the name of the test's advisory lock)",
				job->id);
		job->test_gate = xstrdup(json_string_value(v));
	}
	v = json_object_get(job->args, "test_sleep");
	if (v == NULL)
		return true;
	if (json_is_integer(v)) {
		ms = json_integer_value(v);
	} else if (json_is_string(v)) {
		text = json_string_value(v);
		if (text[0] >= '0' && text[0] <= '9')
			ms = strtoll(text, &end, 10);
		if (end == NULL || *end != '\0')
			ms = -1;
	}
	if (ms < 0 || ms > RUNNER_TEST_SLEEP_MAX_MS) {
		dumped = json_is_string(v) ?
				 xstrdup(json_string_value(v)) :
				 json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		shown = display_escape(dumped ? dumped : "?", 40, false);
		set_cause(
			cause,
			"job %" PRId64
			": arg \"test_sleep\" must be milliseconds from 0 to %d, not '%s'",
			job->id, RUNNER_TEST_SLEEP_MAX_MS, shown);
		free(shown);
		free(dumped);
		return false;
	}
	job->test_sleep_ms = ms;
	return true;
}

/* Build a job from a claim_jobs row. The row's step and progress are
 * taken only as resume_parse checked them against the kind; a row that
 * does not hold what save_progress wrote fails the job (the caller fails
 * it, the attempt spent at claim stays spent). */
struct job *job_from_row(struct engine *e, const void *pgresult, int row,
			 char **cause)
{
	const PGresult *res = pgresult;
	struct job *job = xcalloc(1, sizeof(*job));
	const char *v;
	json_error_t jerr;

	job->engine = e;
	v = row_value(res, row, "id");
	job->id = v ? strtoll(v, NULL, 10) : 0;
	v = row_value(res, row, "kind");
	job->kind = xstrdup(v ? v : "");
	v = row_value(res, row, "tenant_id");
	job->tenant_id = xstrdup(v ? v : "");
	v = row_value(res, row, "attempts");
	job->attempts = v ? atoi(v) : 0;
	v = row_value(res, row, "max_attempts");
	job->max_attempts = v ? atoi(v) : 1;
	job->started_at = wall_seconds();
	job_set_context(job, NULL);
	v = row_value(res, row, "args");
	job->args = json_loads(v ? v : "{}", 0, &jerr);
	v = row_value(res, row, "result");
	job->result = v ? json_loads(v, 0, &jerr) : NULL;
	if (!json_is_object(job->result)) {
		json_decref(job->result);
		job->result = json_object();
	}
	job->defs = jobdefs_ref(e->jobdefs);
	job->def = jobdefs_find(job->defs, job->kind);
	if (job->def == NULL) {
		set_cause(cause,
			  "job %" PRId64 ": kind \"%s\" is not loaded here",
			  job->id, job->kind);
		goto bad;
	}
	if (!json_is_object(job->args)) {
		set_cause(cause, "job %" PRId64 ": args are not a JSON object",
			  job->id);
		goto bad;
	}
	if (!tenant_schema_name(job->tenant_id, job->schema,
				sizeof(job->schema), cause))
		goto bad;
	if (!job_test_hooks(job, e->config->test_hooks, cause))
		goto bad;
	if (!resume_parse(job->def, row_value(res, row, "step"),
			  row_value(res, row, "step_index"),
			  row_value(res, row, "progress"), &job->resume,
			  cause)) {
		char *full = xasprintf("job %" PRId64 ": %s", job->id,
				       cause && *cause ? *cause : "bad row");

		set_cause(cause, "%s", full);
		free(full);
		goto bad;
	}
	job->step_index = job->resume.step_index;
	job->progress = job->resume.progress;
	job->passed = job->resume.passed;
	job->resume.progress = NULL;
	job->resume.passed = NULL;
	job->lock_generation = pgconn_generation(e->dispatcher);
	return job;
bad:
	job_free(job);
	return NULL;
}

void job_free(struct job *job)
{
	if (job == NULL)
		return;
	free(job->kind);
	free(job->tenant_id);
	free(job->test_gate);
	json_decref(job->args);
	json_decref(job->progress);
	json_decref(job->result);
	json_decref(job->passed);
	resume_clear(&job->resume);
	if (job->defs != NULL)
		jobdefs_unref(job->defs);
	if (job->end_event != NULL)
		event_free(job->end_event);
	free(job->end_error);
	free(job);
}

/* ------------------------------------------------------------ variables */

/* Set (or replace) a variable; value NULL is SQL NULL. */
static void var_set(struct runner *r, const char *name, const char *value)
{
	for (unsigned i = 0; i < r->var_count; i++) {
		if (strcmp(r->vars[i].name, name) == 0) {
			free(r->vars[i].value);
			r->vars[i].value = value ? xstrdup(value) : NULL;
			return;
		}
	}
	r->vars = xrealloc(r->vars, (r->var_count + 1) * sizeof(*r->vars));
	r->vars[r->var_count].name = xstrdup(name);
	r->vars[r->var_count].value = value ? xstrdup(value) : NULL;
	r->var_count++;
}

/* The value of a variable for sqlvars_bind; NULL if unknown or NULL. */
static const char *var_lookup(const char *name, void *arg)
{
	struct runner *r = arg;

	for (unsigned i = 0; i < r->var_count; i++)
		if (strcmp(r->vars[i].name, name) == 0)
			return r->vars[i].value;
	return NULL;
}

/* Text of a JSON value as a variable: strings bare, the rest as JSON. */
static char *json_var_text(const json_t *value)
{
	if (json_is_string(value))
		return xstrdup(json_string_value(value));
	if (json_is_null(value))
		return NULL;
	return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Vars set by finished steps, args (or their defaults) and built-ins, in
 * that order so that a built-in always wins (resume_parse already refuses
 * progress vars that name an arg or a built-in). */
static void runner_init_vars(struct runner *r)
{
	struct job *job = r->job;
	const struct config *config = job->engine->config;
	char buf[32];
	char *text;
	json_t *vars, *value;
	const char *key;

	vars = json_object_get(job->progress, "vars");
	json_object_foreach(vars, key, value) {
		text = json_var_text(value);
		var_set(r, key, text);
		free(text);
	}
	for (unsigned i = 0; i < job->def->arg_count; i++) {
		const struct jobdef_arg *arg = &job->def->args[i];

		value = json_object_get(job->args, arg->name);
		if (value != NULL) {
			text = json_var_text(value);
			var_set(r, arg->name, text);
			free(text);
		} else {
			var_set(r, arg->name, arg->default_value);
		}
	}
	var_set(r, "tenant_id", job->tenant_id);
	var_set(r, "schema", job->schema);
	snprintf(buf, sizeof(buf), "%" PRId64, job->id);
	var_set(r, "job_id", buf);
	var_set(r, "kind", job->kind);
	snprintf(buf, sizeof(buf), "%d", job->attempts);
	var_set(r, "attempt", buf);
	text = json_dumps(job->args, JSON_COMPACT);
	var_set(r, "args", text);
	free(text);
	var_set(r, "backup_dir", config->backup_dir);
	var_set(r, "state_dir", config->state_dir);
}

/* ------------------------------------------------------------ results */

/* A column value as JSON by its type: json, numbers, booleans, text. */
static json_t *pg_value_json(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);
	json_error_t jerr;
	json_t *j;
	char *end;

	if (PQgetisnull(res, row, col))
		return json_null();
	switch (PQftype(res, col)) {
	case 114:  /* json */
	case 3802: /* jsonb */
		j = json_loads(v, JSON_DECODE_ANY, &jerr);
		return j ? j : json_string(v);
	case 16: /* bool */
		return json_boolean(v[0] == 't');
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
	case 26: /* oid */
		return json_integer(strtoll(v, NULL, 10));
	case 700: /* float4 */
	case 701: /* float8 */
	case 1700: /* numeric */ {
		long long ll = strtoll(v, &end, 10);

		if (*end == '\0')
			return json_integer(ll);
		double dv = strtod(v, &end);

		if (*end == '\0' && isfinite(dv))
			return json_real(dv);
		return json_string(v);
	}
	default:
		return json_string(v);
	}
}

/* The first row of a result as an object of column names, or NULL. */
static json_t *first_row_json(const PGresult *res)
{
	json_t *row;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQntuples(res) == 0)
		return NULL;
	row = json_object();
	for (int c = 0; c < PQnfields(res); c++)
		json_object_set_new(row, PQfname(res, c),
				    pg_value_json(res, 0, c));
	return row;
}

/* Every row of a result as an array of arrays of text (NULL as null). */
static json_t *rows_json(const PGresult *res)
{
	json_t *rows = json_array();

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		return rows;
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *row = json_array();

		for (int c = 0; c < PQnfields(res); c++)
			json_array_append_new(
				row,
				PQgetisnull(res, i, c) ?
					json_null() :
					json_string(PQgetvalue(res, i, c)));
		json_array_append_new(rows, row);
	}
	return rows;
}

/* ------------------------------------------------------------ progress */

/* The progress object of where the job stands now. */
static json_t *runner_progress(struct runner *r, int step_index)
{
	const struct jobdef *def = r->job->def;
	json_t *p = json_object();
	json_t *vars = json_object_get(r->job->progress, "vars");
	double percent = -1;

	json_object_set_new(p, "step_index", json_integer(step_index));
	json_object_set_new(p, "steps_total", json_integer(def->step_count));
	if (step_index < (int)def->step_count)
		json_object_set_new(p, "step",
				    json_string(def->steps[step_index].name));
	if (r->step != NULL && step_index == r->step_index) {
		double elapsed = (double)(mono_ms() - r->step_started_ms) / 1e3;

		json_object_set_new(p, "step_elapsed_s",
				    json_real(round(elapsed * 1000) / 1000));
		if (r->step->type == STEP_BATCH) {
			json_object_set_new(p, "last_key",
					    r->last_key ?
						    json_string(r->last_key) :
						    json_null());
			json_object_set_new(p, "rows_done",
					    json_integer(r->rows_done));
			json_object_set_new(p, "batches",
					    json_integer(r->batches));
			json_object_set_new(p, "batch_size",
					    json_integer(r->batch_size));
			if (r->rate > 0)
				json_object_set_new(
					p, "rows_per_s",
					json_real(round(r->rate * 10) / 10));
			if (r->total_rows >= 0) {
				json_object_set_new(
					p, "total_rows",
					json_integer(r->total_rows));
				if (r->total_rows > 0)
					percent = 100.0 * (double)r->rows_done /
						  (double)r->total_rows;
				if (r->rate > 0 && r->total_rows > r->rows_done)
					json_object_set_new(
						p, "eta_s",
						json_integer((json_int_t)ceil(
							(double)(r->total_rows -
								 r->rows_done) /
							r->rate)));
			}
		} else if (r->each_rows != NULL) {
			int total = PQntuples(r->each_rows);

			json_object_set_new(p, "for_each_done",
					    json_integer(r->each_index));
			json_object_set_new(p, "for_each_total",
					    json_integer(total));
			if (total > 0)
				percent = 100.0 * r->each_index / total;
		}
	}
	if (percent < 0 && def->step_count > 0)
		percent = 100.0 * step_index / def->step_count;
	if (percent > 100)
		percent = 100;
	json_object_set_new(p, "percent", json_real(round(percent * 10) / 10));
	if (json_object_size(vars) > 0)
		json_object_set(p, "vars", vars);
	if (json_array_size(r->job->passed) > 0)
		json_object_set(p, "passed", r->job->passed);
	return p;
}

/* Progress for status: where the job stands, with an ETA when known. */
json_t *runner_status(const struct job *job)
{
	if (job->runner == NULL || job->runner->step == NULL)
		return json_copy(job->progress);
	return runner_progress(job->runner, job->runner->step_index);
}

/* Write a checkpoint of the current step to SQLite. */
static void runner_save_ckpt(struct runner *r, bool done)
{
	struct ckpt_step cs = { 0 };
	char *cause = NULL;

	cs.job_id = r->job->id;
	cs.step_index = r->step_index;
	snprintf(cs.step_name, sizeof(cs.step_name), "%s", r->step->name);
	cs.last_key = r->last_key;
	cs.rows_done = r->step->type == STEP_BATCH ? r->rows_done :
						     r->each_index;
	cs.batches = r->batches;
	cs.batch_size = r->batch_size;
	cs.done = done;
	cs.updated_at = wall_seconds();
	cs.elapsed_ms = (double)(mono_ms() - r->step_started_ms);
	cs.started_at = cs.updated_at - cs.elapsed_ms / 1000.0;
	if (!ckpt_save(r->job->engine->ckpt, &cs, &cause)) {
		job_log_warning(r->job, "%s", cause);
		free(cause);
	}
}

/* ------------------------------------------------------------ queries */

/* Whether the runner must stop instead of starting more work. */
static bool runner_interrupted(const struct runner *r)
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
static void runner_end(struct runner *r, enum job_outcome outcome,
		       const char *error)
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
static enum job_outcome runner_interrupt_outcome(const struct runner *r)
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
static void runner_finish(struct runner *r, enum job_outcome outcome,
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
static void runner_fail(struct runner *r, enum job_outcome outcome,
			const char *fmt, ...)
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
static void runner_connection_lost(struct runner *r)
{
	job_log_warning(r->job, "database connection lost; handing the job "
				"back to resume from its checkpoint");
	runner_end(r, JOB_HANDED_BACK,
		   "the database connection was lost during the step; the "
		   "job resumes from its checkpoint");
}

/* Common handling of a query's error; true if the caller should go on. */
static bool runner_query_ok(struct runner *r, const struct pgconn_result *res)
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
static void runner_send(struct runner *r, const struct sqlvars_stmt *stmt,
			pgconn_result_fn cb)
{
	char *sql = NULL, *cause = NULL;
	const char **values = NULL;

	if (!sqlvars_bind(stmt, var_lookup, r, &sql, &values, &cause)) {
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
static bool runner_test_pause_on(const struct runner *r)
{
	return r->job->test_sleep_ms > 0 ||
	       (r->job->test_gate != NULL && r->job->test_gate[0] != '\0');
}

/* The two parameters of RUNNER_TEST_PAUSE_SQL. */
static void runner_test_pause_params(const struct runner *r, char ms[24],
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
static void runner_test_pause(struct runner *r, void (*then)(struct runner *r))
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
	r->last_row = first_row_json(res->res);
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
static void runner_run_script(struct runner *r,
			      const struct sqlvars_script *script,
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
static void runner_begin(struct runner *r, void (*done)(struct runner *r))
{
	r->script_done = done;
	runner_send_fixed(r, "BEGIN", 0, NULL, runner_began);
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
 * if another daemon took the job over, the transaction is rolled back. */
/* The parameters of SAVE_PROGRESS_SQL for where the job stands at
 * step_index; also makes that the job's progress. */
struct progress_params {
	char id[24];
	char idx[16];
	char *progress;
	char *result;
	const char *values[6];
};

static void progress_params_make(struct runner *r, int step_index,
				 struct progress_params *pp)
{
	struct job *job = r->job;
	json_t *next = runner_progress(r, step_index);

	json_decref(job->progress);
	job->progress = next;
	pp->progress = json_dumps(job->progress,
				  JSON_COMPACT | JSON_REAL_PRECISION(6));
	pp->result = json_dumps(job->result, JSON_COMPACT);
	snprintf(pp->id, sizeof(pp->id), "%" PRId64, job->id);
	snprintf(pp->idx, sizeof(pp->idx), "%d", step_index);
	pp->values[0] = pp->id;
	pp->values[1] = job->engine->owner;
	pp->values[2] = step_index < (int)job->def->step_count ?
				job->def->steps[step_index].name :
				NULL;
	pp->values[3] = pp->idx;
	pp->values[4] = pp->progress;
	pp->values[5] = pp->result;
}

static void progress_params_clear(struct progress_params *pp)
{
	free(pp->progress);
	free(pp->result);
}

static void runner_mirror(struct runner *r, int step_index,
			  void (*then)(struct runner *r))
{
	struct mirror *m = xcalloc(1, sizeof(*m));
	struct progress_params pp;

	progress_params_make(r, step_index, &pp);
	r->mirrored_ms = mono_ms();
	m->r = r;
	m->then = then;
	m->commit = r->in_txn;
	r->script_done = then;
	r->busy = true;
	pgconn_query(r->conn,
		     m->commit ? SAVE_PROGRESS_SQL : SAVE_PROGRESS_ASYNC_SQL, 6,
		     pp.values, runner_mirrored, m);
	progress_params_clear(&pp);
}

/* ------------------------------------------------------------ steps */

/* The job progress's vars object, made if there is none yet. */
static json_t *runner_progress_vars(struct runner *r)
{
	json_t *vars = json_object_get(r->job->progress, "vars");

	if (!json_is_object(vars)) {
		vars = json_object();
		json_object_set_new(r->job->progress, "vars", vars);
	}
	return vars;
}

/* Take the last row's `set` columns as variables and its `result`. */
static bool runner_take_outputs(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	json_t *vars;

	if (s->set_var_count > 0) {
		if (r->last_row == NULL) {
			runner_fail(r, JOB_FAILED_RETRY,
				    "the last statement returned no row for "
				    "`set`");
			return false;
		}
		vars = runner_progress_vars(r);
		for (unsigned i = 0; i < s->set_var_count; i++) {
			json_t *v =
				json_object_get(r->last_row, s->set_vars[i]);
			char *text;

			if (v == NULL) {
				runner_fail(r, JOB_FAILED_FINAL,
					    "`set` names column \"%s\" that "
					    "the last statement does not "
					    "return",
					    s->set_vars[i]);
				return false;
			}
			text = json_var_text(v);
			var_set(r, s->set_vars[i], text);
			free(text);
			json_object_set(vars, s->set_vars[i], v);
		}
	}
	if (s->result && r->last_row != NULL)
		json_object_update(r->job->result, r->last_row);
	return true;
}

/* Record that the current step completed (it was not skipped). */
static void runner_mark_passed(struct runner *r)
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

/* The step is complete: checkpoint it and go to the next one. */
static void runner_step_complete(struct runner *r)
{
	struct engine *e = r->job->engine;

	runner_save_ckpt(r, true);
	e->metrics.steps_done++;
	job_log_debug(r->job, "step done in %.3f s",
		      (double)(mono_ms() - r->step_started_ms) / 1e3);
	runner_next_step(r);
}

/* Mirror "step done" outside a transaction, then go on. */
static void runner_step_done_autocommit(struct runner *r)
{
	runner_mark_passed(r);
	runner_mirror(r, r->step_index + 1, runner_step_complete);
}

/* The step's `when` was false: mirror that it is over, not passed. */
static void runner_step_skipped(struct runner *r)
{
	runner_mirror(r, r->step_index + 1, runner_step_complete);
}

/* --- sql steps */

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
		const char *v = var_lookup(s->for_each_vars[i], r);

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
	bool last = r->each_rows == NULL ||
		    r->each_index + 1 >= PQntuples(r->each_rows);

	if (!runner_take_outputs(r))
		return;
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
	struct progress_params pp;
	char *cause = NULL, ms[24];
	const char *pause[2];
	unsigned k, m = n;

	for (k = 0; k < n; k++) {
		if (!sqlvars_bind(&script->stmts[k], var_lookup, r, &sqls[k],
				  &values[k], &cause))
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
		progress_params_make(
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
		r->busy = true;
		pgconn_transaction(r->conn, stmts, (int)m + 1, runner_fast_done,
				   r);
		progress_params_clear(&pp);
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
			var_set(r, s->for_each_vars[i],
				PQgetisnull(r->each_rows, r->each_index, col) ?
					NULL :
					PQgetvalue(r->each_rows, r->each_index,
						   col));
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

static void runner_sql_step(struct runner *r)
{
	if (r->step->has_for_each)
		runner_send(r, &r->step->for_each.stmts[0],
			    runner_for_each_result);
	else
		runner_sql_iteration(r);
}

/* --- batch steps */

static void runner_batch_next(struct runner *r);

/* The batch committed: checkpoint, adapt the size, go on or finish. */
static void runner_batch_committed(struct runner *r)
{
	struct engine *e = r->job->engine;
	double elapsed = (double)(mono_ms() - r->batch_sent_ms);
	int64_t target = r->step->target_ms, size = r->batch_size;

	runner_save_ckpt(r, false);
	e->metrics.batches_done++;
	e->metrics.batch_rows += (uint64_t)r->batch_rows;
	if (elapsed < 1)
		elapsed = 1;
	if (r->batch_rows > 0) {
		double rate = (double)r->batch_rows * 1000.0 / elapsed;

		r->rate = r->rate > 0 ? 0.7 * r->rate + 0.3 * rate : rate;
		if (r->batch_rows >= size) {
			double scale = (double)target / elapsed;

			if (scale > 2)
				scale = 2;
			if (scale < 0.5)
				scale = 0.5;
			size = (int64_t)((double)size * scale);
		}
	}
	if (size < r->step->min_batch_size)
		size = r->step->min_batch_size;
	if (size > r->step->max_batch_size)
		size = r->step->max_batch_size;
	r->batch_size = size;
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
		runner_fail(r, JOB_FAILED_FINAL,
			    "a batch statement must return one row (last_key, "
			    "rows); it returned %d row(s) of %d column(s)",
			    PQresultStatus(pr) == PGRES_TUPLES_OK ?
				    PQntuples(pr) :
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
	var_set(r, "last_key", r->last_key ? r->last_key : "");
	snprintf(size, sizeof(size), "%" PRId64, r->batch_size);
	var_set(r, "batch_size", size);
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

static void runner_batch_step(struct runner *r)
{
	if (r->step->has_total && r->total_rows < 0)
		runner_send(r, &r->step->total.stmts[0], runner_total_result);
	else
		runner_batch_next(r);
}

/* --- verify steps */

/* Render a result for a mismatch message, cut to a readable size. */
static char *verify_text(const json_t *rows)
{
	char *text = json_dumps(rows, JSON_COMPACT);

	if (text != NULL && strlen(text) > 2000) {
		char *cut = xasprintf("%.2000s... (%zu rows)", text,
				      json_array_size(rows));

		free(text);
		return cut;
	}
	return text ? text : xstrdup("?");
}

/* Both results are in (and the test pause point passed): compare. */
static void runner_verify_compare(struct runner *r)
{
	if (!json_equal(r->actual, r->expected)) {
		char *e = verify_text(r->expected), *a = verify_text(r->actual);

		runner_fail(r, JOB_FAILED_FINAL,
			    "verify failed: expected %s but actual is %s", e,
			    a);
		free(e);
		free(a);
		return;
	}
	runner_step_done_autocommit(r);
}

static void runner_actual_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	json_decref(r->actual);
	r->actual = rows_json(res->res);
	runner_test_pause(r, runner_verify_compare);
}

static void runner_expected_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	json_decref(r->expected);
	r->expected = rows_json(res->res);
	runner_send(r, &r->step->actual.stmts[0], runner_actual_result);
}

static void runner_verify_step(struct runner *r)
{
	runner_send(r, &r->step->expected.stmts[0], runner_expected_result);
}

/* --- exec steps */

/* The last line-ish part of a child's stderr, for error messages. */
static char *stderr_tail(const char *text, size_t len)
{
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	if (len > 1000) {
		text += len - 1000;
		len = 1000;
	}
	return xstrndup(text, len);
}

static void runner_child_done(const struct child_result *cr, void *arg)
{
	struct runner *r = arg;
	char *tail;

	r->child = NULL;
	r->busy = false;
	if (cr->exit_code == 0 && !cr->timed_out) {
		job_log_debug(r->job, "%s finished in %.0f ms",
			      r->step->argv[0], cr->elapsed_ms);
		if (!pgconn_is_ready(r->conn)) {
			runner_connection_lost(r);
			return;
		}
		runner_step_done_autocommit(r);
		return;
	}
	if (runner_interrupted(r)) {
		runner_end(r, runner_interrupt_outcome(r), NULL);
		return;
	}
	tail = stderr_tail(cr->stderr_text ? cr->stderr_text : "",
			   cr->stderr_len);
	if (cr->timed_out)
		runner_fail(r, JOB_FAILED_RETRY,
			    "%s timed out after %.0f ms%s%s", r->step->argv[0],
			    cr->elapsed_ms, tail[0] ? ": " : "", tail);
	else if (cr->term_signal != 0)
		runner_fail(r, JOB_FAILED_RETRY,
			    "%s was killed by signal %d%s%s", r->step->argv[0],
			    cr->term_signal, tail[0] ? ": " : "", tail);
	else
		runner_fail(r, JOB_FAILED_RETRY, "%s exited with status %d%s%s",
			    r->step->argv[0], cr->exit_code,
			    tail[0] ? ": " : "", tail);
	free(tail);
}

/* Whether argument i of an exec step, as the file writes it and as
 * expanded, would turn a variable's value into an option: the expansion
 * starts with '-' where the word does not, and no literal "--" came
 * before it. Fills cause then. */
static bool exec_arg_is_option(const struct jobdef_step *s, unsigned i,
			       const char *expanded, char **cause)
{
	char *shown;

	if (i == 0 || expanded[0] != '-' || s->argv[i][0] == '-')
		return false;
	for (unsigned k = 1; k < i; k++)
		if (strcmp(s->argv[k], "--") == 0)
			return false;
	shown = display_escape(expanded, 80, false);
	set_cause(
		cause,
		"argument %u of %s ('%s' from '%s') starts with '-' and would be taken as an option; refusing to run it (put \"--\" before it if the program takes one)",
		i, s->argv[0], shown, s->argv[i]);
	free(shown);
	return true;
}

static void runner_exec_step(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	char **argv = xcalloc(s->argc + 1, sizeof(char *));
	char **env = pgconn_child_env(r->conn);
	char *cause = NULL;

	for (unsigned i = 0; i < s->argc; i++) {
		argv[i] =
			sqlvars_expand_word(s->argv[i], var_lookup, r, &cause);
		if (argv[i] != NULL &&
		    exec_arg_is_option(s, i, argv[i], &cause)) {
			free(argv[i]);
			argv[i] = NULL;
		}
		if (argv[i] == NULL) {
			for (unsigned k = 0; k < i; k++)
				free(argv[k]);
			free(argv);
			pgconn_env_free(env);
			runner_fail(r, JOB_FAILED_FINAL, "%s", cause);
			free(cause);
			return;
		}
	}
	r->child = child_spawn(r->job->engine->base, argv, env, s->timeout_ms,
			       runner_child_done, r, &cause);
	for (unsigned i = 0; i < s->argc; i++)
		free(argv[i]);
	free(argv);
	pgconn_env_free(env);
	if (r->child == NULL) {
		runner_fail(r, JOB_FAILED_RETRY, "%s", cause);
		free(cause);
		return;
	}
	r->busy = true;
	job_log_debug(r->job, "started %s (pid %d)", s->argv[0],
		      (int)child_pid(r->child));
}

/* --- backup, backup_check and restore steps (backup.c) */

/* Variables a step produced: for the later steps and the job row. */
static void runner_set_outputs(struct runner *r, json_t *values)
{
	json_t *vars = runner_progress_vars(r), *v;
	const char *key;
	char *text;

	json_object_foreach(values, key, v) {
		text = json_var_text(v);
		var_set(r, key, text);
		free(text);
		json_object_set(vars, key, v);
	}
}

static void runner_backup_done(const struct backup_result *br, void *arg)
{
	struct runner *r = arg;

	r->backup = NULL;
	r->busy = false;
	if (!br->ok) {
		if (runner_interrupted(r))
			runner_end(r, runner_interrupt_outcome(r), NULL);
		else
			runner_fail(r,
				    br->retry ? JOB_FAILED_RETRY :
						JOB_FAILED_FINAL,
				    "%s", br->error);
		return;
	}
	if (br->vars != NULL)
		runner_set_outputs(r, br->vars);
	if (br->result != NULL)
		json_object_update(r->job->result, br->result);
	if (!pgconn_is_ready(r->conn)) {
		runner_connection_lost(r);
		return;
	}
	runner_step_done_autocommit(r);
}

static void runner_backup_step(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	struct job *job = r->job;
	struct engine *e = job->engine;
	struct backup_request req = { 0 };
	char *arg, *cause = NULL;
	char **env;

	arg = sqlvars_expand_word(s->target, var_lookup, r, &cause);
	if (arg == NULL) {
		runner_fail(r, JOB_FAILED_FINAL, "%s", cause);
		free(cause);
		return;
	}
	env = pgconn_child_env(r->conn);
	if (env == NULL) {
		free(arg);
		runner_connection_lost(r);
		return;
	}
	req.kind = s->type == STEP_BACKUP	? BACKUP_MAKE :
		   s->type == STEP_BACKUP_CHECK ? BACKUP_CHECK :
						  BACKUP_RESTORE;
	req.base = e->base;
	req.ckpt = e->ckpt;
	req.backup_dir = e->config->backup_dir;
	req.keep = e->config->backup_keep;
	req.max_age_ms = e->config->backup_max_age_ms;
	req.restore_role = e->config->restore_role;
	req.env = env;
	req.timeout_ms = s->timeout_ms;
	req.job_id = job->id;
	req.tenant_id = job->tenant_id;
	req.schema = job->schema;
	req.arg = arg;
	r->busy = true;
	r->backup = backup_start(&req, runner_backup_done, r);
	free(arg);
	pgconn_env_free(env);
}

/* --- step dispatch */

/* Run the current step's body by its type. */
static void runner_run_body(struct runner *r)
{
	switch (r->step->type) {
	case STEP_SQL:
		runner_sql_step(r);
		break;
	case STEP_BATCH:
		runner_batch_step(r);
		break;
	case STEP_VERIFY:
		runner_verify_step(r);
		break;
	case STEP_EXEC:
		runner_test_pause(r, runner_exec_step);
		break;
	case STEP_BACKUP:
	case STEP_BACKUP_CHECK:
	case STEP_RESTORE:
		runner_test_pause(r, runner_backup_step);
		break;
	}
}

/* Run the body if the steps the current one requires have passed;
 * checked after `when`, so that a step `when` skips needs nothing. */
static void runner_checked_body(struct runner *r)
{
	for (unsigned i = 0; i < r->step->require_count; i++) {
		unsigned req = r->step->requires[i];

		if (!runner_has_passed(r, req)) {
			runner_fail(r, JOB_FAILED_FINAL,
				    "refusing to run %s step: step \"%s\" has "
				    "not passed in this job",
				    r->step->destructive ? "a destructive" :
							   "this",
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

/* The local checkpoint of the current step, if any and not done. */
static bool runner_load_ckpt(struct runner *r, struct ckpt_step *cs)
{
	bool found = false;
	char *cause = NULL;

	memset(cs, 0, sizeof(*cs));
	if (!ckpt_load(r->job->engine->ckpt, r->job->id, r->step_index, cs,
		       &found, &cause) &&
	    cause != NULL) {
		job_log_warning(r->job, "%s", cause);
		free(cause);
	}
	if (found && cs->done) {
		ckpt_step_clear(cs);
		found = false;
	}
	return found;
}

/* Where a batch step stands. Each batch commits with the job row's
 * counters, so the row is the authority and a row at the step without
 * counters is the step's start. SQLite is written after the commit: it may
 * hold the position back (a crash between the two), never ahead; ahead of
 * the row it is a commit that the database lost (synchronous_commit = off,
 * failover to an asynchronous standby), which is done again. */
static void runner_resume_batch(struct runner *r)
{
	const struct resume_point *rp = &r->job->resume;
	struct ckpt_step cs;

	if (rp->has_batch) {
		free(r->last_key);
		r->last_key = rp->last_key ? xstrdup(rp->last_key) : NULL;
		r->batches = rp->batches;
		r->rows_done = rp->rows_done;
		if (rp->batch_size > 0)
			r->batch_size = rp->batch_size;
	}
	if (runner_load_ckpt(r, &cs)) {
		if (cs.batches < r->batches) {
			free(r->last_key);
			r->last_key = cs.last_key ? xstrdup(cs.last_key) : NULL;
			r->batches = cs.batches;
			r->rows_done = cs.rows_done;
			if (cs.batch_size > 0)
				r->batch_size = cs.batch_size;
		} else if (cs.batches > r->batches) {
			job_log_warning(
				r->job,
				"the local checkpoint (batch %" PRId64
				") is ahead of the job row (batch %" PRId64
				"): the database lost commits; resuming from the job row",
				cs.batches, r->batches);
		}
		ckpt_step_clear(&cs);
	}
	if (r->batches > 0) {
		r->sweep = r->step->destructive;
		job_log_info(r->job,
			     "resuming after batch %" PRId64
			     " (last key \"%s\", %" PRId64 " rows done)",
			     r->batches, r->last_key ? r->last_key : "",
			     r->rows_done);
	}
}

/* Where a for_each step stands. In a transaction each row commits with
 * the job row's position, which is then the authority as for batches (no
 * position: the step's start; SQLite only ever holds it back). Outside one
 * the row is mirrored lazily and asynchronously while the work itself
 * (VACUUM, say) cannot be lost, so SQLite wins when the row has no
 * position and the earlier of the two wins otherwise. */
static void runner_resume_for_each(struct runner *r)
{
	const struct resume_point *rp = &r->job->resume;
	struct ckpt_step cs;
	int64_t done = rp->has_for_each	    ? rp->for_each_done :
		       r->step->transaction ? 0 :
					      -1;

	if (runner_load_ckpt(r, &cs)) {
		if (done < 0 || cs.rows_done < done)
			done = cs.rows_done;
		else if (cs.rows_done > done && r->step->transaction)
			job_log_warning(
				r->job,
				"the local checkpoint (row %" PRId64
				") is ahead of the job row (row %" PRId64
				"): the database lost commits; resuming from the job row",
				cs.rows_done, done);
		ckpt_step_clear(&cs);
	}
	r->each_index = done > 0 && done < INT32_MAX ? (int)done : 0;
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
	if (resuming && s->type == STEP_BATCH)
		runner_resume_batch(r);
	else if (resuming && s->type == STEP_SQL && s->has_for_each)
		runner_resume_for_each(r);
	job_log_debug(r->job, "step %d of %u (%s)", r->step_index + 1,
		      r->job->def->step_count,
		      s->type == STEP_SQL    ? "sql" :
		      s->type == STEP_BATCH  ? "batch" :
		      s->type == STEP_VERIFY ? "verify" :
		      s->type == STEP_EXEC   ? "exec" :
					       "backup");
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
void runner_start(struct worker *worker, struct job *job, runner_done_fn done,
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
	if (r->busy && !job->lost)
		engine_cancel_backend(job->engine, pgconn_backend_pid(r->conn));
}
