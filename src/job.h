/* job.h - a claimed job: its row's fields, how its run ends, and logging
 * with its context. The runner runs it; the queue claims and ends it. */
#ifndef PGT_JOB_H
#define PGT_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "resume.h"

struct engine;
struct worker;
struct jobdefs;
struct jobdef;
struct event;
struct runner;

/* A test_sleep arg may ask for at most this long a pause. */
#define JOB_TEST_SLEEP_MAX_MS 3600000

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
typedef void (*job_done_fn)(struct job *job, enum job_outcome outcome,
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
	const char *step_name;	  /* for the log: the step running, or
				   * NULL (points into def) */

	/* the test pause point, from the reserved args (config test_hooks) */
	char *test_gate;       /* advisory lock name; NULL or "": none */
	int64_t test_sleep_ms; /* 0: none */

	bool cancel_requested;
	bool stop_requested; /* shutdown */
	bool lost;	     /* lease gone: abandon quietly */
	/* the last step ran outside a transaction and its progress goes to
	 * the row with the job's end (finish_jobs), not by a write of its own */
	bool progress_at_end;

	struct runner *runner; /* step engine state, NULL when done */
	job_done_fn done;      /* whom runner_start reports the end to */
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

/* Set the step the job's log lines name (NULL: none); step must live as
 * long as job->def. */
void job_set_context(struct job *job, const char *step);

/* Log with the job's context: id, kind, tenant and step (log_jobv). */
void job_log(const struct job *job, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define job_log_debug(j, ...) job_log((j), 0, __VA_ARGS__)
#define job_log_info(j, ...) job_log((j), 1, __VA_ARGS__)
#define job_log_warning(j, ...) job_log((j), 2, __VA_ARGS__)
#define job_log_error(j, ...) job_log((j), 3, __VA_ARGS__)

#endif
