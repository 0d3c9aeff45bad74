/* pace.h - the arithmetic of batch steps, without I/O: the next batch size
 * toward the step's target duration, the smoothed rows-per-second rate and
 * the time left. */
#ifndef PGT_PACE_H
#define PGT_PACE_H

#include <stdint.h>

struct pace_limits {
	int64_t target_ms; /* how long a batch should take */
	int64_t min_size;
	int64_t max_size;
};

/* The size of the next batch after one of size that did rows rows in
 * elapsed_ms: a full batch scales the size by target / elapsed, at most
 * doubling or halving it; a short batch (the end of the key range) keeps
 * it. Always within the limits. */
int64_t pace_next_size(int64_t size, int64_t rows, double elapsed_ms,
		       const struct pace_limits *lim);

/* The rate after a batch of rows rows in elapsed_ms, smoothed with the
 * previous one (0: none yet); a batch without rows keeps it. */
double pace_rate(double smoothed, int64_t rows, double elapsed_ms);

/* Seconds left for total - done rows at rate, rounded up; -1 if unknown
 * (no rate or no total). */
int64_t pace_eta_s(int64_t total, int64_t done, double rate);

#endif
