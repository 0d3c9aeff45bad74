/* test_cron.c - cron expressions: parsing, next fire times, time zones and
 * the daylight saving rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "unit.h"
#include "util.h"

/* Seconds since the epoch of a UTC time "YYYY-MM-DDTHH:MM". */
static int64_t utc(const char *text)
{
	struct tm tm = { 0 };

	if (sscanf(text, "%d-%d-%dT%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min) != 5) {
		fprintf(stderr, "bad time %s\n", text);
		exit(99);
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

/* A UTC time as "YYYY-MM-DDTHH:MM" in a static buffer (one at a time). */
static const char *utc_text(int64_t t)
{
	static char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M", &tm);
	return buf;
}

/* The next fire time after `after` as UTC text, "none" or "parse error". */
static const char *next_of(const char *expr, const char *after)
{
	struct cron c;
	int64_t t;
	char *cause = NULL;

	if (!cron_parse(expr, &c, &cause)) {
		printf("# %s\n", cause);
		free(cause);
		return "parse error";
	}
	if (!cron_next(&c, utc(after), &t))
		return "none";
	return utc_text(t);
}

/* The parse error of expr, or NULL if it parses. */
static char *parse_error(const char *expr)
{
	struct cron c;
	char *cause = NULL;

	if (cron_parse(expr, &c, &cause))
		return NULL;
	return cause;
}

/* Fire times of expr from `from` (exclusive) to `to` (inclusive), as a
 * space-separated list of UTC times (HH:MM only if same_day). */
static char *fires(const char *expr, const char *from, const char *to,
		   bool hours_only)
{
	struct cron c;
	int64_t t = utc(from), end = utc(to);
	char *list = xstrdup(""), *next;
	char *cause = NULL;

	if (!cron_parse(expr, &c, &cause)) {
		free(cause);
		return list;
	}
	while (cron_next(&c, t, &t) && t <= end) {
		const char *text = utc_text(t);

		next = xasprintf("%s%s%s", list, *list ? " " : "",
				 hours_only ? text + 11 : text);
		free(list);
		list = next;
	}
	return list;
}

/* Number of fires of expr in (from, to]. */
static int count_fires(const char *expr, const char *from, const char *to)
{
	struct cron c;
	int64_t t = utc(from), end = utc(to);
	int n = 0;
	char *cause = NULL;

	if (!cron_parse(expr, &c, &cause)) {
		free(cause);
		return -1;
	}
	while (cron_next(&c, t, &t) && t <= end)
		n++;
	return n;
}

static void test_parse(void)
{
	struct cron c;
	char *cause = NULL;

	ok(cron_parse("0 3 * * *", &c, &cause), "0 3 * * * parses");
	ok(c.minutes == 1 && c.hours == 1u << 3, "minute 0, hour 3");
	ok(c.days_star && c.weekdays_star && c.months == 0x1ffe &&
		   c.weekdays == 0x7f && c.days == 0xfffffffe,
	   "stars cover every day, month and weekday");
	is_str(c.tz, "", "no zone: local time");

	ok(cron_parse("*/15 0-6/2,23 1,15 jan-MAR,Dec mon-fri", &c, &cause),
	   "steps, ranges, lists and names parse");
	ok(c.minutes ==
		   ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)),
	   "*/15 is 0,15,30,45");
	ok(c.hours ==
		   ((1u << 0) | (1u << 2) | (1u << 4) | (1u << 6) | (1u << 23)),
	   "0-6/2,23 is 0,2,4,6,23");
	ok(c.days == ((1u << 1) | (1u << 15)), "1,15");
	ok(c.months == ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 12)),
	   "jan-MAR,Dec (names in any case)");
	ok(c.weekdays == 0x3e && !c.weekdays_star && !c.days_star,
	   "mon-fri is 1-5");
	ok(cron_parse("0 0 * * 7", &c, &cause) && c.weekdays == 1,
	   "weekday 7 is Sunday");
	ok(cron_parse("0 0 * * 5-7", &c, &cause) && c.weekdays == 0x61,
	   "5-7 is Friday, Saturday and Sunday");
	ok(cron_parse("10/20 * * * *", &c, &cause) &&
		   c.minutes == ((1ull << 10) | (1ull << 30) | (1ull << 50)),
	   "a/n starts at a: 10,30,50");
	ok(cron_parse("CRON_TZ=Europe/Berlin 0 3 * * *", &c, &cause),
	   "CRON_TZ= prefix parses");
	is_str(c.tz, "Europe/Berlin", "the zone is kept");
	ok(cron_parse("  TZ=UTC   0 3 * * sun  ", &c, &cause) &&
		   strcmp(c.tz, "UTC") == 0,
	   "TZ= prefix and extra blanks");
	free(cause);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *expr;
		const char *message;
	} bad[] = {
		{ "0 3 * *", "has 4 fields" },
		{ "0 3 * * * *", "more than five fields" },
		{ "", "has 0 fields" },
		{ "60 * * * *",
		  "minute field \"60\": \"60\" is out of range 0-59" },
		{ "* 24 * * *", "hour field \"24\"" },
		{ "* * 0 * *",
		  "day-of-month field \"0\": \"0\" is out of range 1-31" },
		{ "* * * 13 *", "month field" },
		{ "* * * * 8", "day-of-week field" },
		{ "5-1 * * * *", "goes backwards" },
		{ "*/0 * * * *", "step in \"*/0\"" },
		{ "*/60 * * * *", "step" },
		{ "1- * * * *", "has no end" },
		{ "x * * * *", "\"x\" is not a number" },
		{ "* * * foo *", "is not a number or a name" },
		{ "* * * * monday", "is not a number or a name" },
		{ "1,,2 * * * *", "empty list item" },
		{ "1, * * * *", "empty list item" },
		{ "*-5 * * * *", "cannot read" },
		{ "CRON_TZ=Mars/Olympus 0 3 * * *",
		  "not an installed time zone" },
		{ "CRON_TZ=../../etc/passwd 0 3 * * *",
		  "not an installed time zone" },
		{ "CRON_TZ= 0 3 * * *", "not an installed time zone" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *cause = parse_error(bad[i].expr);
		char name[160];

		snprintf(name, sizeof(name), "\"%s\" is refused: %s",
			 bad[i].expr, bad[i].message);
		contains(cause, bad[i].message, name);
		free(cause);
	}
	{
		char *cause = parse_error("61 3 * * *");

		contains(cause, "cron \"61 3 * * *\"",
			 "the cause quotes the expression");
		free(cause);
	}
	{
		char *cause = parse_error("1,2,99 * * * *");

		contains(cause,
			 "minute field \"1,2,99\": \"99\" is out of range",
			 "the cause shows the whole field and the bad item");
		free(cause);
	}
}

static void test_next_utc(void)
{
	is_str(next_of("TZ=UTC 0 3 * * *", "2024-01-01T00:00"),
	       "2024-01-01T03:00", "daily at 03:00");
	is_str(next_of("TZ=UTC 0 3 * * *", "2024-01-01T03:00"),
	       "2024-01-02T03:00",
	       "strictly after: the slot itself is not next");
	is_str(next_of("TZ=UTC 0 3 * * *", "2024-12-31T03:00"),
	       "2025-01-01T03:00", "over the year end");
	is_str(next_of("TZ=UTC */15 * * * *", "2024-01-01T10:07"),
	       "2024-01-01T10:15", "*/15");
	is_str(next_of("TZ=UTC */15 * * * *", "2024-01-01T23:50"),
	       "2024-01-02T00:00", "*/15 over midnight");
	is_str(next_of("TZ=UTC 0 0 1 * *", "2024-01-15T00:00"),
	       "2024-02-01T00:00", "monthly");
	is_str(next_of("TZ=UTC 0 12 * * mon", "2024-01-01T12:00"),
	       "2024-01-08T12:00", "weekly on Monday (2024-01-01 is one)");
	is_str(next_of("TZ=UTC 0 0 13 * fri", "2024-09-01T00:00"),
	       "2024-09-06T00:00",
	       "day-of-month and day-of-week both restricted: either (Friday 6th)");
	is_str(next_of("TZ=UTC 0 0 13 * fri", "2024-09-06T00:00"),
	       "2024-09-13T00:00", "... then the 13th (also a Friday)");
	is_str(next_of("TZ=UTC 0 0 13 * *", "2024-09-06T00:00"),
	       "2024-09-13T00:00", "day-of-month alone");
	is_str(next_of("TZ=UTC 0 0 */2 * mon", "2024-01-01T00:00"),
	       "2024-01-15T00:00",
	       "a day field starting with * makes both required: odd days that are Mondays");
	is_str(next_of("TZ=UTC 0 0 29 2 *", "2024-03-01T00:00"),
	       "2028-02-29T00:00", "February 29 waits for a leap year");
	is_str(next_of("TZ=UTC 0 0 29 2 *", "2096-03-01T00:00"),
	       "2104-02-29T00:00", "2100 is not a leap year");
	is_str(next_of("TZ=UTC 0 0 30 2 *", "2024-01-01T00:00"), "none",
	       "February 30 never comes");
	is_str(next_of("TZ=UTC 59 23 31 12 *", "2024-06-01T00:00"),
	       "2024-12-31T23:59", "the last minute of the year");
	is_str(next_of("TZ=UTC * * * * *", "1969-12-31T23:58"),
	       "1969-12-31T23:59", "before the epoch");
	is_int(count_fires("TZ=UTC 30 * * * *", "2024-01-01T00:00",
			   "2024-01-08T00:00"),
	       168, "hourly for a week: 168 fires");
}

static void test_next_zone(void)
{
	is_str(next_of("CRON_TZ=Europe/Berlin 0 3 * * *", "2024-01-10T00:00"),
	       "2024-01-10T02:00", "03:00 in Berlin in winter is 02:00 UTC");
	is_str(next_of("CRON_TZ=Europe/Berlin 0 3 * * *", "2024-07-10T00:00"),
	       "2024-07-10T01:00", "and 01:00 UTC in summer");
	is_str(next_of("CRON_TZ=America/New_York 0 0 * * *",
		       "2024-01-10T00:00"),
	       "2024-01-10T05:00", "midnight in New York");
	is_str(next_of("CRON_TZ=Asia/Kolkata 0 0 * * *", "2024-01-10T00:00"),
	       "2024-01-10T18:30", "a half-hour offset zone");

	setenv("TZ", "America/New_York", 1);
	tzset();
	is_str(next_of("0 0 * * *", "2024-01-10T00:00"), "2024-01-10T05:00",
	       "without CRON_TZ, the process's local time (TZ)");
	is_str(next_of("CRON_TZ=UTC 0 0 * * *", "2024-01-10T00:00"),
	       "2024-01-11T00:00", "CRON_TZ wins over TZ");
	is_str(getenv("TZ"), "America/New_York",
	       "TZ is put back after a zone was used");
	is_str(next_of("0 0 * * *", "2024-01-10T00:00"), "2024-01-10T05:00",
	       "and local time still works afterwards");
	unsetenv("TZ");
	tzset();
}

/* Berlin: 2024-03-31 02:00 CET -> 03:00 CEST (01:00 UTC);
 * 2024-10-27 03:00 CEST -> 02:00 CET (01:00 UTC). */
static void test_dst(void)
{
	char *list;

	is_str(next_of("CRON_TZ=Europe/Berlin 30 2 * * *", "2024-03-30T12:00"),
	       "2024-03-31T01:00",
	       "spring forward: 02:30 does not exist and fires when the gap ends (03:00 CEST)");
	is_str(next_of("CRON_TZ=Europe/Berlin 30 2 * * *", "2024-03-31T01:00"),
	       "2024-04-01T00:30", "then 02:30 CEST the next day");
	is_str(next_of("CRON_TZ=Europe/Berlin 0 3 * * *", "2024-03-30T12:00"),
	       "2024-03-31T01:00", "03:00 on the spring day is 01:00 UTC");
	list = fires("CRON_TZ=Europe/Berlin */15 * * * *", "2024-03-31T00:30",
		     "2024-03-31T01:30", true);
	is_str(list, "00:45 01:00 01:15 01:30",
	       "*/15 over the gap: 01:45 CET, then the skipped quarters and 03:00 are one fire");
	free(list);
	list = fires("CRON_TZ=Europe/Berlin 0 * * * *", "2024-03-30T23:00",
		     "2024-03-31T03:00", true);
	is_str(list, "00:00 01:00 02:00 03:00",
	       "hourly over the gap: 01:00 CET, 03:00 CEST, 04:00, 05:00");
	free(list);

	is_str(next_of("CRON_TZ=Europe/Berlin 30 2 * * *", "2024-10-26T12:00"),
	       "2024-10-27T00:30",
	       "fall back: 02:30 occurs twice and fires at the first (CEST)");
	is_str(next_of("CRON_TZ=Europe/Berlin 30 2 * * *", "2024-10-27T00:30"),
	       "2024-10-28T01:30", "not again at 02:30 CET");
	is_str(next_of("CRON_TZ=Europe/Berlin 30 2 * * *", "2024-10-27T01:10"),
	       "2024-10-28T01:30",
	       "asked from inside the repeated hour (02:10 CET): not again");
	list = fires("CRON_TZ=Europe/Berlin */30 * * * *", "2024-10-26T23:45",
		     "2024-10-27T02:30", true);
	is_str(list, "00:00 00:30 02:00 02:30",
	       "*/30 over the repeated hour: 02:00 and 02:30 CEST, then 03:00 CET");
	free(list);
	is_str(next_of("CRON_TZ=Europe/Berlin 0 3 * * *", "2024-10-26T12:00"),
	       "2024-10-27T02:00", "03:00 on the fall day is 02:00 UTC");

	is_int(count_fires("CRON_TZ=Europe/Berlin 0 * * * *",
			   "2024-03-30T23:00", "2024-03-31T22:00"),
	       23, "the spring day has 23 hourly fires");
	is_int(count_fires("CRON_TZ=Europe/Berlin 0 * * * *",
			   "2024-10-26T22:00", "2024-10-27T23:00"),
	       24, "the fall day has 24 (02:00 fires once)");
	is_int(count_fires("CRON_TZ=Europe/Berlin 0 3 * * *",
			   "2024-03-25T00:00", "2024-04-01T00:00"),
	       7, "a daily job fires 7 times in the spring week");
	is_int(count_fires("CRON_TZ=Europe/Berlin 30 2 * * *",
			   "2024-10-21T00:00", "2024-10-28T00:00"),
	       7, "and 7 times in the fall week");

	/* Lord Howe Island moves its clocks by 30 minutes:
	 * 2024-04-07 02:00 +11 -> 01:30 +10:30 (2024-04-06T15:00 UTC). */
	is_str(next_of("CRON_TZ=Australia/Lord_Howe 45 1 * * *",
		       "2024-04-06T12:00"),
	       "2024-04-06T14:45",
	       "a 30-minute fall back: 01:45 fires at its first occurrence");
	is_str(next_of("CRON_TZ=Australia/Lord_Howe 45 1 * * *",
		       "2024-04-06T14:45"),
	       "2024-04-07T15:15", "and next the day after");
}

static void test_format(void)
{
	struct cron c;
	char buf[64], *cause = NULL;

	ok(cron_parse("CRON_TZ=Europe/Berlin 0 3 * * *", &c, &cause), "parses");
	cron_format(&c, utc("2024-03-31T01:00"), buf, sizeof(buf));
	is_str(buf, "2024-03-31T03:00:00+02:00", "local ISO 8601 with offset");
	cron_format(&c, utc("2024-01-31T01:00"), buf, sizeof(buf));
	is_str(buf, "2024-01-31T02:00:00+01:00", "in winter");
	ok(cron_parse("CRON_TZ=America/St_Johns 0 3 * * *", &c, &cause),
	   "parses");
	cron_format(&c, utc("2024-01-31T12:00"), buf, sizeof(buf));
	is_str(buf, "2024-01-31T08:30:00-03:30", "negative half-hour offset");
	free(cause);
}

int main(void)
{
	unsetenv("TZ");
	test_parse();
	test_parse_errors();
	test_next_utc();
	test_next_zone();
	test_dst();
	test_format();
	return done_testing();
}
