/* runner.h - the step engine: runs one claimed job's steps on its worker's
 * connection, checkpointing to SQLite and to the job row. */
#ifndef PGT_RUNNER_H
#define PGT_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "resume.h"

struct engine;
struct worker;
struct jobdefs;
struct jobdef;
struct child;

/* How a job's run ended, as the runner reports it. */
enum job_outcome {
	JOB_SUCCEEDED,
	JOB_FAILED_RETRY, /* retry with backoff while attempts remain */
	JOB_FAILED_FINAL, /* fail now: verify mismatch, bad args */
	JOB_CANCELLED,
	JOB_HANDED_BACK, /* shutdown: queued again, attempt refunded */
	JOB_LOST,	 /* another daemon owns it now: write nothing */
};

/* Why a job is asked to stop before its end. */
enum job_interrupt {
	JOB_INTERRUPT_CANCEL, /* cancel asked (row, socket) */
	JOB_INTERRUPT_STOP,   /* the daemon stops: hand the job back */
	JOB_INTERRUPT_LOST,   /* the lease is gone: abandon quietly */
};

struct job;

/* The runner let go of job: called from the loop, never from inside
 * runner_start or runner_interrupt. error may be NULL. */
typedef void (*runner_done_fn)(struct job *job, enum job_outcome outcome,
			       const char *error, void *arg);

/* A claimed job, from its row in pgtenantd.jobs. */
struct job {
	struct engine *engine;
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
	runner_done_fn done;   /* whom runner_start reports the end to */
	void *done_arg;
	struct event *end_event; /* the end, reported from the loop */
	enum job_outcome end_outcome;
	char *end_error;
};

/* Build a job from a claim_jobs row; NULL with cause if the row is unusable
 * (then the caller fails it). */
struct job *job_from_row(struct engine *e, const void *pgresult, int row,
			 char **cause);
void job_free(struct job *job);

/* Log with the job's context ("job 42 kind tenant step x"). */
void job_log(const struct job *job, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define job_log_debug(j, ...) job_log((j), 0, __VA_ARGS__)
#define job_log_info(j, ...) job_log((j), 1, __VA_ARGS__)
#define job_log_warning(j, ...) job_log((j), 2, __VA_ARGS__)
#define job_log_error(j, ...) job_log((j), 3, __VA_ARGS__)

/* Start running job on worker; done(job, ...) reports its end. */
void runner_start(struct worker *worker, struct job *job, runner_done_fn done,
		  void *arg);

/* Stop at the next safe point because of why; a statement or child in
 * flight is interrupted. A job that is not running only keeps the flag. */
void runner_interrupt(struct job *job, enum job_interrupt why);

/* Progress for status: step name, percent (or -1), ETA seconds (or -1). */
json_t *runner_status(const struct job *job);

#endif
