/* runner.h - the step engine: runs one claimed job's steps on its worker's
 * connection, checkpointing to SQLite and to the job row. */
#ifndef PGT_RUNNER_H
#define PGT_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "resume.h"

struct daemon;
struct worker;
struct jobdefs;
struct jobdef;
struct child;

/* A claimed job, from its row in pgtenantd.jobs. */
struct job {
	struct daemon *daemon;
	struct worker *worker; /* NULL once the runner let go */
	int64_t id;
	char *kind;
	char *tenant_id;
	char schema[64];
	json_t *args;
	int attempts; /* including this one */
	int max_attempts;
	int step_index;		    /* where to start / where it is */
	struct resume_point resume; /* the row's position (its progress and
					 * passed moved to the fields below) */
	json_t *progress;	    /* mirrored to jobs.progress */
	json_t *result;		    /* mirrored to jobs.result */
	json_t *passed;		    /* names of the steps that completed
					 * (not skipped) in this job */
	struct jobdefs *defs;	    /* reference held while running */
	const struct jobdef *def;
	unsigned lock_generation; /* dispatcher session holding the
					 * tenant lock */
	double started_at;	  /* wall seconds of this run */
	char context[192];	  /* "job 42 tenant_stats acme step x" */

	/* the test pause point, from the reserved args (config test_hooks) */
	char *test_gate;       /* advisory lock name; NULL or "": none */
	int64_t test_sleep_ms; /* 0: none */

	bool cancel_requested;
	bool stop_requested; /* shutdown */
	bool lost;	     /* lease gone: abandon quietly */

	struct runner *runner; /* step engine state, NULL when done */
};

/* Build a job from a claim_jobs row; NULL with cause if the row is unusable
 * (then the caller fails it). */
struct job *job_from_row(struct daemon *d, const void *pgresult, int row,
			 char **cause);
void job_free(struct job *job);

/* Log with the job's context ("job 42 kind tenant step x"). */
void job_log(const struct job *job, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define job_log_debug(j, ...) job_log((j), 0, __VA_ARGS__)
#define job_log_info(j, ...) job_log((j), 1, __VA_ARGS__)
#define job_log_warning(j, ...) job_log((j), 2, __VA_ARGS__)
#define job_log_error(j, ...) job_log((j), 3, __VA_ARGS__)

/* Start running job on worker. Ends with queue_job_done(). */
void runner_start(struct worker *worker, struct job *job);

/* Stop at the next safe point because of a cancel, a shutdown or a lost
 * lease; a statement or child in flight is interrupted. */
void runner_interrupt(struct job *job);

/* Progress for status: step name, percent (or -1), ETA seconds (or -1). */
json_t *runner_status(const struct job *job);

#endif
