/* pace.c - the arithmetic of batch steps, without I/O. */
#include "pace.h"

#include <math.h>

/* A batch that took less than this took this long (no division by 0). */
#define PACE_MIN_ELAPSED_MS 1.0
/* The weight of the newest batch in the smoothed rate. */
#define PACE_RATE_WEIGHT 0.3

int64_t pace_next_size(int64_t size, int64_t rows, double elapsed_ms,
		       const struct pace_limits *lim)
{
	if (elapsed_ms < PACE_MIN_ELAPSED_MS)
		elapsed_ms = PACE_MIN_ELAPSED_MS;
	if (rows > 0 && rows >= size) {
		double scale = (double)lim->target_ms / elapsed_ms;

		if (scale > 2)
			scale = 2;
		if (scale < 0.5)
			scale = 0.5;
		size = (int64_t)((double)size * scale);
	}
	if (size < lim->min_size)
		size = lim->min_size;
	if (size > lim->max_size)
		size = lim->max_size;
	return size;
}

double pace_rate(double smoothed, int64_t rows, double elapsed_ms)
{
	double rate;

	if (rows <= 0)
		return smoothed;
	if (elapsed_ms < PACE_MIN_ELAPSED_MS)
		elapsed_ms = PACE_MIN_ELAPSED_MS;
	rate = (double)rows * 1000.0 / elapsed_ms;
	if (smoothed <= 0)
		return rate;
	return (1 - PACE_RATE_WEIGHT) * smoothed + PACE_RATE_WEIGHT * rate;
}

int64_t pace_eta_s(int64_t total, int64_t done, double rate)
{
	if (rate <= 0 || total < 0)
		return -1;
	if (done >= total)
		return 0;
	return (int64_t)ceil((double)(total - done) / rate);
}
