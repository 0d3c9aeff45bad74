/* test_pace.c - the arithmetic of batch steps: batch size toward the
 * target, smoothed rate, time left. */
#include <math.h>

#include "pace.h"
#include "unit.h"

static const struct pace_limits lim = {
	.target_ms = 500,
	.min_size = 10,
	.max_size = 100000,
};

static void test_size(void)
{
	is_int(pace_next_size(1000, 1000, 500, &lim), 1000,
	       "a full batch on target keeps its size");
	is_int(pace_next_size(1000, 1000, 250, &lim), 2000,
	       "a full batch in half the target doubles");
	is_int(pace_next_size(1000, 1000, 10, &lim), 2000,
	       "a very fast full batch at most doubles");
	is_int(pace_next_size(1000, 1000, 1000, &lim), 500,
	       "a full batch in twice the target halves");
	is_int(pace_next_size(1000, 1000, 60000, &lim), 500,
	       "a very slow full batch at most halves");
	is_int(pace_next_size(1000, 1000, 400, &lim), 1250,
	       "in between: scaled by target / elapsed");
	is_int(pace_next_size(1000, 300, 10, &lim), 1000,
	       "a short batch (the end of the range) keeps the size");
	is_int(pace_next_size(1000, 0, 10, &lim), 1000,
	       "an empty batch keeps the size");
	is_int(pace_next_size(1000, 1000, 0, &lim), 2000,
	       "a batch of 0 ms counts as 1 ms (no division by zero)");
	is_int(pace_next_size(15, 15, 60000, &lim), 10,
	       "never below min_batch_size");
	is_int(pace_next_size(80000, 80000, 1, &lim), 100000,
	       "never above max_batch_size");
	is_int(pace_next_size(5, 0, 1, &lim), 10,
	       "a size below the minimum is raised even without rows");
}

static void test_rate(void)
{
	ok(fabs(pace_rate(0, 100, 1000) - 100) < 1e-9,
	   "the first batch's rate is its own: 100 rows in 1 s");
	ok(fabs(pace_rate(100, 200, 1000) - 130) < 1e-9,
	   "then smoothed: 0.7 x 100 + 0.3 x 200");
	ok(fabs(pace_rate(100, 0, 1000) - 100) < 1e-9,
	   "a batch without rows keeps the rate");
	ok(fabs(pace_rate(0, 5, 0) - 5000) < 1e-9,
	   "a batch of 0 ms counts as 1 ms");
}

static void test_eta(void)
{
	is_int(pace_eta_s(1000, 0, 100), 10, "1000 rows at 100/s: 10 s");
	is_int(pace_eta_s(1000, 999, 100), 1, "rounded up");
	is_int(pace_eta_s(1000, 1000, 100), 0, "done: 0");
	is_int(pace_eta_s(1000, 1200, 100), 0, "past the estimate: 0");
	is_int(pace_eta_s(1000, 0, 0), -1, "no rate yet: unknown");
	is_int(pace_eta_s(-1, 0, 100), -1, "no total: unknown");
}

int main(void)
{
	test_size();
	test_rate();
	test_eta();
	return done_testing();
}
