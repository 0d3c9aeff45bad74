/* ckpt.h - the local checkpoint store: SQLite in WAL mode under state_dir. */
#ifndef PGT_CKPT_H
#define PGT_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct ckpt;
struct sqlite3;

/* Where one step of one job stands. */
struct ckpt_step {
	int64_t job_id;
	int step_index;
	char step_name[64];
	char *last_key;	   /* batch key or NULL; owned by the struct */
	int64_t rows_done; /* batch rows, or for_each rows done */
	int64_t batches;
	int64_t batch_size;
	bool done;	   /* the step finished */
	double started_at; /* wall seconds */
	double updated_at;
	double elapsed_ms; /* time spent in the step so far */
};

/* Open (creating if needed) state_dir/pgtenantd.sqlite: WAL, busy timeout,
 * schema created or upgraded. Also takes an exclusive lock on
 * state_dir/lock so that two daemons never share a state_dir. */
struct ckpt *ckpt_open(const char *state_dir, char **cause) MUST_CHECK;
void ckpt_close(struct ckpt *ckpt);

/* This daemon's persistent identity (random, made on first open). */
const char *ckpt_node_id(const struct ckpt *ckpt);

/* The SQLite handle and file of the store, for modules that keep tables of
 * their own in it (the backup catalog of backup.c); the schema version
 * covers their tables too. */
struct sqlite3 *ckpt_sqlite(struct ckpt *ckpt);
const char *ckpt_path(const struct ckpt *ckpt);

/* Insert or replace the checkpoint of (job_id, step_index). */
bool ckpt_save(struct ckpt *ckpt, const struct ckpt_step *step, char **cause)
	MUST_CHECK;

/* Load the checkpoint of (job_id, step_index); false if there is none
 * (then *found is false) or on error (cause set). */
bool ckpt_load(struct ckpt *ckpt, int64_t job_id, int step_index,
	       struct ckpt_step *out, bool *found, char **cause) MUST_CHECK;

/* Free the strings a loaded ckpt_step owns. */
void ckpt_step_clear(struct ckpt_step *step);

/* Forget every checkpoint of a job (it ended). */
bool ckpt_forget(struct ckpt *ckpt, int64_t job_id, char **cause) MUST_CHECK;

/* Job ids that have checkpoints (jobs this daemon was running when it
 * stopped). *ids is malloc'd. */
bool ckpt_jobs(struct ckpt *ckpt, int64_t **ids, unsigned *count, char **cause)
	MUST_CHECK;

#endif
