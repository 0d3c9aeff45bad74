/* runner.h - the step engine: runs one claimed job's steps on its worker's
 * connection, checkpointing to SQLite and to the job row. */
#ifndef PGT_RUNNER_H
#define PGT_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "job.h"

struct worker;

/* Start running job on worker; done(job, ...) reports its end. */
void runner_start(struct worker *worker, struct job *job, job_done_fn done,
		  void *arg);

/* Stop at the next safe point because of why; a statement or child in
 * flight is interrupted. A job that is not running only keeps the flag. */
void runner_interrupt(struct job *job, enum job_interrupt why);

/* Progress for status: step name, percent (or -1), ETA seconds (or -1). */
json_t *runner_status(const struct job *job);

#endif
