/* test_util.c - durations, backoff and cause strings. */
#include <stdint.h>
#include <stdlib.h>

#include "unit.h"
#include "util.h"

/* Parse text and return the result, or -1 if it was refused. */
static int64_t parsed(const char *text)
{
	int64_t ms = -12345;

	if (!duration_parse(text, &ms))
		return -1;
	return ms;
}

/* A duration value must be left alone when parsing fails. */
static void test_duration(void)
{
	int64_t ms = 77;

	is_int(parsed("250ms"), 250, "250ms");
	is_int(parsed("5s"), 5000, "5s");
	is_int(parsed("2m"), 120000, "2m");
	is_int(parsed("1h"), 3600000, "1h");
	is_int(parsed("1d"), 86400000, "1d");
	is_int(parsed("1.5"), 1500, "bare seconds with a fraction");
	is_int(parsed("30"), 30000, "bare seconds");
	is_int(parsed("0.5s"), 500, "fractional seconds");
	is_int(parsed(" 10s"), 10000, "leading blanks");
	is_int(parsed("10 s"), 10000, "blank before the unit");
	is_int(parsed("0"), 0, "zero");
	is_int(parsed(""), -1, "empty refused");
	is_int(parsed("s"), -1, "unit alone refused");
	is_int(parsed("-5s"), -1, "negative refused");
	is_int(parsed("+5s"), -1, "plus sign refused");
	is_int(parsed("5x"), -1, "unknown unit refused");
	is_int(parsed("5 sec"), -1, "long unit name refused");
	is_int(parsed("5s5"), -1, "trailing junk refused");
	is_int(parsed("abc"), -1, "words refused");
	is_int(parsed("nan"), -1, "nan refused");
	is_int(parsed("inf"), -1, "inf refused");
	is_int(parsed("1e300d"), -1, "overflow refused");
	ok(!duration_parse(NULL, &ms), "NULL refused");
	ok(!duration_parse("bad", &ms) && ms == 77,
	   "result untouched on failure");
}

/* Every draw stays in [delay/2, delay] where delay is base*2^(n-1),
 * capped; and the jitter really varies. */
static void test_backoff(void)
{
	static const struct {
		int attempt;
		int64_t base, max, lo, hi;
	} cases[] = {
		{ 1, 1000, 60000, 500, 1000 },
		{ 2, 1000, 60000, 1000, 2000 },
		{ 4, 1000, 60000, 4000, 8000 },
		{ 7, 1000, 60000, 30000, 60000 },
		{ 1000, 1000, 60000, 30000, 60000 },
		{ 0, 1000, 60000, 500, 1000 },
		{ -3, 1000, 60000, 500, 1000 },
		{ 1, 90000, 60000, 30000, 60000 },
		{ 40, 5000, INT64_C(86400000), INT64_C(43200000),
		  INT64_C(86400000) },
	};
	char name[128];

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		int64_t lo = INT64_MAX, hi = INT64_MIN;

		for (int i = 0; i < 20000; i++) {
			int64_t d = backoff_ms(cases[c].attempt, cases[c].base,
					       cases[c].max);

			if (d < lo)
				lo = d;
			if (d > hi)
				hi = d;
		}
		snprintf(name, sizeof(name),
			 "attempt %d base %lld max %lld: "
			 "%lld..%lld within %lld..%lld",
			 cases[c].attempt, (long long)cases[c].base,
			 (long long)cases[c].max, (long long)lo, (long long)hi,
			 (long long)cases[c].lo, (long long)cases[c].hi);
		ok(lo >= cases[c].lo && hi <= cases[c].hi, name);
		snprintf(name, sizeof(name),
			 "attempt %d: jitter spreads "
			 "over the range",
			 cases[c].attempt);
		ok(lo < cases[c].lo + (cases[c].hi - cases[c].lo) / 10 &&
			   hi > cases[c].hi - (cases[c].hi - cases[c].lo) / 10,
		   name);
	}
	is_int(backoff_ms(3, 0, 1000), 0, "zero base gives zero");
	is_int(backoff_ms(1, 1, 1000), 1, "one millisecond stays one");
}

/* random_below stays below its bound and covers it. */
static void test_random(void)
{
	bool seen[7] = { false };
	bool below = true, all = true;

	for (int i = 0; i < 5000; i++) {
		uint32_t r = random_below(7);

		if (r >= 7)
			below = false;
		else
			seen[r] = true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(seen); i++)
		all = all && seen[i];
	ok(below, "random_below(7) < 7");
	ok(all, "random_below(7) hits every value");
	is_int(random_below(0), 0, "random_below(0) is 0");
}

/* set_cause replaces the message, returns false, and accepts NULL. */
static void test_cause(void)
{
	char *cause = NULL;
	bool r;

	r = set_cause(&cause, "job %d: %s", 42, "failed");
	ok(!r, "set_cause returns false");
	is_str(cause, "job 42: failed", "set_cause formats");
	r = set_cause(&cause, "second %s", "message");
	is_str(cause, "second message", "set_cause replaces the old one");
	ok(!set_cause(NULL, "ignored %d", 1), "NULL cause is fine");
	free(cause);

	cause = xasprintf("%s-%05d", "x", 42);
	is_str(cause, "x-00042", "xasprintf");
	free(cause);
	cause = xstrndup("abcdef", 3);
	is_str(cause, "abc", "xstrndup");
	free(cause);
	(void)r;
}

/* display_escape: what error messages show of hostile text. */
static void test_display(void)
{
	char *out;

	out = display_escape("plain", 10, true);
	is_str(out, "plain", "plain text is shown as it is");
	free(out);
	out = display_escape("a\"b\\c\n\x7f", 20, false);
	is_str(out, "a\\\"b\\\\c\\x0a\\x7f",
	       "quotes and backslashes escaped, control bytes as \\xNN");
	free(out);
	out = display_escape("caf\xc3\xa9", 20, false);
	is_str(out, "caf\xc3\xa9", "UTF-8 is kept unless ascii_only");
	free(out);
	out = display_escape("caf\xc3\xa9", 20, true);
	is_str(out, "caf\\xc3\\xa9", "ascii_only escapes every non-ASCII byte");
	free(out);
	out = display_escape("abcdefghij", 4, true);
	is_str(out, "abcd...", "long text is cut with ...");
	free(out);
}

int main(void)
{
	test_duration();
	test_backoff();
	test_random();
	test_cause();
	test_display();
	return done_testing();
}
