/* jobend.h - what a job's row becomes when its run ends, without I/O: the
 * state an outcome leads to (a failure is retried while attempts remain),
 * and the error and result cut to their configured limits. */
#ifndef PGT_JOBEND_H
#define PGT_JOBEND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "job.h"

/* Where an ended run leaves its job. */
enum jobend_state {
	JOBEND_SUCCEEDED,
	JOBEND_RETRY,  /* queued again after a backoff */
	JOBEND_FAILED, /* for good */
	JOBEND_CANCELLED,
	JOBEND_HANDED_BACK, /* queued again at once, the attempt refunded */
	JOBEND_LOST,	    /* another daemon owns it: nothing is written */
};

/* The state of a run that ended with outcome, its attempts-th attempt of
 * max_attempts. */
enum jobend_state jobend_state(enum job_outcome outcome, int attempts,
			       int max_attempts);

/* The jobs.state value the state is recorded as (end_and_claim). */
const char *jobend_state_name(enum jobend_state state);

/* error cut to at most max bytes (at a UTF-8 character boundary), saying
 * so at its end; a new string. */
char *jobend_cut_error(const char *error, int64_t max);

/* result for the row: itself (a new reference), or if its JSON text is
 * over max bytes an object saying how big it was, with *bytes set to that
 * size (else 0). NULL stays NULL. */
json_t *jobend_cut_result(json_t *result, int64_t max, size_t *bytes);

#endif
