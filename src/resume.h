/* resume.h - where a claimed job resumes: its row's step and progress,
 * checked against the job's definition before the runner trusts them. */
#ifndef PGT_RESUME_H
#define PGT_RESUME_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "util.h"

struct jobdef;

/* What the runner takes from a job row. Only what save_progress writes is
 * read, and only when it agrees with the job's definition: the step the
 * row names, steps that passed before it, variables that those steps set,
 * and the position inside a batch or for_each step. */
struct resume_point {
	int step_index;	  /* the step to start at, 0..step_count */
	json_t *progress; /* the row's progress object ({} if none) */
	json_t *passed;	  /* array of names of steps before step_index */
	json_t *vars;	  /* object: `set` and backup outputs, or NULL */

	bool has_batch; /* batch counters for step_index */
	char *last_key; /* NULL: none */
	int64_t rows_done;
	int64_t batches;
	int64_t batch_size; /* 0: the step's own */

	bool has_for_each;     /* for_each position for step_index */
	int64_t for_each_done; /* rows of the for_each done */
};

/* Check a claimed row's step, step_index and progress (NULL: SQL NULL)
 * against def and fill out; false with a cause naming what is wrong when
 * the row does not hold what save_progress would have written for this
 * kind (then the job must fail, not run):
 * - progress is a JSON object; an empty one goes with step_index 0;
 * - its step_index equals the column, its step and the column step name
 *   that step of def;
 * - passed is an array of names of distinct steps before step_index, and
 *   every such step that has no `when` is in it;
 * - vars is an object whose names are outputs (`set`, backup variables) of
 *   steps up to step_index, never a built-in or an arg;
 * - batch counters only for a batch step, for_each_done only for a
 *   for_each step, as non-negative integers, last_key a string or null. */
bool resume_parse(const struct jobdef *def, const char *step,
		  const char *step_index, const char *progress,
		  struct resume_point *out, char **cause) MUST_CHECK;

/* Free what resume_parse filled in. */
void resume_clear(struct resume_point *rp);

/* Which position a resumed step takes, the job row's or the local
 * checkpoint's (SQLite). */
enum resume_pick {
	RESUME_ROW,	       /* the row's (no local one, or the same) */
	RESUME_LOCAL,	       /* SQLite's: it holds the position back */
	RESUME_ROW_LOCAL_AHEAD /* the row's; SQLite is ahead of it: the
				* database lost commits it acknowledged */
};

/* A batch step: every batch commits with the row's counters, so the row
 * is the authority and a row without counters is the step's start
 * (row_batches 0); SQLite (local_batches, -1: none) is written after the
 * commit and wins only when it is behind. */
enum resume_pick resume_pick_batch(int64_t row_batches, int64_t local_batches);

/* A for_each step: row_done is the row's position (-1: none). In a
 * transaction (transactional) each row commits with the row's position,
 * which is the authority as for batches (none: the step's start).
 * Outside one the row is mirrored lazily while the work itself cannot be
 * lost, so SQLite (local_done, -1: none) wins when the row has no position
 * and the earlier of the two wins otherwise. *done gets the rows to skip. */
enum resume_pick resume_pick_for_each(int64_t row_done, bool transactional,
				      int64_t local_done, int64_t *done);

#endif
