/* metrics.h - the daemon's counters, kept in struct engine by the layers
 * that count (prometheus.c renders them). Data only: it includes nothing
 * of the daemon's, so that the engine at the bottom can hold it. */
#ifndef PGT_METRICS_H
#define PGT_METRICS_H

#include <stdint.h>

struct metrics {
	uint64_t jobs_claimed;
	uint64_t jobs_succeeded;
	uint64_t jobs_failed;  /* ended failed */
	uint64_t jobs_retried; /* attempt failed, queued again */
	uint64_t jobs_cancelled;
	uint64_t jobs_handed_back; /* returned at shutdown */
	uint64_t jobs_lost;	   /* lease taken over by another daemon */
	uint64_t jobs_ended_late;  /* ended after a takeover: not recorded */
	uint64_t steps_done;
	uint64_t batches_done;
	uint64_t batch_rows;
	uint64_t claim_queries;
	uint64_t notifications;
	uint64_t polls;
	uint64_t leases_rescued;
	uint64_t history_pruned; /* rows deleted by prune.c */
	uint64_t ctl_requests;
	double job_seconds_sum; /* run time of ended jobs */
	uint64_t job_seconds_count;
	uint64_t restore_drills_passed; /* drills that found a backup and */
	uint64_t restore_drills_failed; /* ended: passed or failed */
};

#endif
