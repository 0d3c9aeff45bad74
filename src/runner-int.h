/* runner-int.h - what the files of the runner share: the runner's state
 * and the core's helpers that the step files call (runner.c holds the core:
 * step order, queries, progress, the end of a job; step_<type>.c one step
 * type each). Not for use outside the runner. */
#ifndef PGT_RUNNER_INT_H
#define PGT_RUNNER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "pgconn.h"
#include "runner.h"

struct ckpt_step;
struct jobdef_step;
struct sqlvars_script;
struct sqlvars_stmt;

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

/* The parameters of SAVE_PROGRESS_SQL for where the job stands at
 * step_index; also makes that the job's progress. */
struct runner_progress_params {
	char id[24];
	char idx[16];
	char *progress;
	char *result;
	const char *values[6];
};

/* ------------------------------------------------------------ core */

/* BEGIN, then call done. */
void runner_begin(struct runner *r, void (*done)(struct runner *r));

/* The worker's connection broke. What the runner remembers may be ahead of
 * the database (a commit acknowledged under synchronous_commit = off can be
 * lost in a server crash), so the job goes back to the queue without
 * spending an attempt and resumes from its row, the earlier of row and
 * SQLite, once claimed again. */
void runner_connection_lost(struct runner *r);

/* Free the runner and report the job's end on the next loop turn. */
void runner_end(struct runner *r, enum job_outcome outcome, const char *error);

/* Fail the job with a message that names the step and its line. */
void runner_fail(struct runner *r, enum job_outcome outcome, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));

/* End the job, rolling back an open transaction first. */
void runner_finish(struct runner *r, enum job_outcome outcome,
		   const char *error);

/* The outcome that an interruption asks for. */
enum job_outcome runner_interrupt_outcome(const struct runner *r);

/* Whether the runner must stop instead of starting more work. */
bool runner_interrupted(const struct runner *r);

/* Text of a JSON value as a variable: strings bare, the rest as JSON. */
char *runner_json_text(const json_t *value);

/* The local checkpoint of the current step, if any and not done. */
bool runner_load_ckpt(struct runner *r, struct ckpt_step *cs);

/* Record that the current step completed (it was not skipped). */
void runner_mark_passed(struct runner *r);

/* Write progress and result to the job row (and COMMIT an open
 * transaction), then call then. */
void runner_mirror(struct runner *r, int step_index,
		   void (*then)(struct runner *r));

void runner_progress_params(struct runner *r, int step_index,
			    struct runner_progress_params *pp);

void runner_progress_params_clear(struct runner_progress_params *pp);
/* Make the job's progress where it stands at step_index, without writing
 * it anywhere. */
void runner_progress_settle(struct runner *r, int step_index);

/* The job progress's vars object, made if there is none yet. */
json_t *runner_progress_vars(struct runner *r);

/* Common handling of a query's error; true if the caller should go on. */
bool runner_query_ok(struct runner *r, const struct pgconn_result *res);

/* Run every statement of script in order, then call done. */
void runner_run_script(struct runner *r, const struct sqlvars_script *script,
		       void (*done)(struct runner *r));

/* Write a checkpoint of the current step to SQLite. */
void runner_save_ckpt(struct runner *r, bool done);

/* Send one compiled statement with its variables bound. */
void runner_send(struct runner *r, const struct sqlvars_stmt *stmt,
		 pgconn_result_fn cb);

/* The step is complete: checkpoint it and go to the next one. */
void runner_step_complete(struct runner *r);

/* Mirror "step done" outside a transaction, then go on. */
void runner_step_done_autocommit(struct runner *r);

/* Take the last row's `set` columns as variables and its `result`;
 * false with the outcome and cause to fail the job with. */
bool runner_take_outputs(struct runner *r, enum job_outcome *outcome,
			 char **cause);

/* The test pause point of the args test_sleep and test_gate, in the
 * transaction of the step if one is open, then call then: at once and
 * without a query when the job has neither. */
void runner_test_pause(struct runner *r, void (*then)(struct runner *r));

/* Whether the job asks for the test pause point. */
bool runner_test_pause_on(const struct runner *r);

/* The two parameters of RUNNER_TEST_PAUSE_SQL. */
void runner_test_pause_params(const struct runner *r, char ms[24],
			      const char *values[2]);

/* The value of a variable for sqlvars_bind; NULL if unknown or NULL. */
const char *runner_var_lookup(const char *name, void *arg);

/* Set (or replace) a variable; value NULL is SQL NULL. */
void runner_var_set(struct runner *r, const char *name, const char *value);

/* Set the built-in variables, the declared args and the outputs of the
 * steps that passed (runner_vars.c). */
void runner_init_vars(struct runner *r);

/* ------------------------------------------------------------ steps */

/* The step files: each runs the current step's body and ends it with
 * runner_step_complete() (or skips, fails, finishes). */
void runner_sql_step(struct runner *r);	   /* step_sql.c */
void runner_batch_step(struct runner *r);  /* step_batch.c */
void runner_verify_step(struct runner *r); /* step_verify.c */
void runner_exec_step(struct runner *r);   /* step_exec.c */
void runner_backup_step(struct runner *r); /* step_backup.c: backup,
					    * backup_check, restore */

/* Where a resumed step stands, from the job row and SQLite (the row is the
 * authority for transactional work; SQLite may only hold it back). */
void runner_resume_for_each(struct runner *r); /* step_sql.c */
void runner_resume_batch(struct runner *r);    /* step_batch.c */

#endif
