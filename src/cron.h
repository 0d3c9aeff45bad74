/* cron.h - five-field cron expressions and their fire times in a time zone.
 *
 * Fields: minute hour day-of-month month day-of-week, each "*", a number, a
 * name (jan..dec, sun..sat), a range "a-b", a list "a,b-c" and a step
 * "*" "/n", "a-b/n" or "a/n". Day-of-week 7 is Sunday too. As in Vixie cron,
 * if both day fields are restricted (neither starts with "*"), a day
 * matches if either matches; otherwise both must.
 *
 * A leading "CRON_TZ=Zone" (or "TZ=Zone") word evaluates the fields in that
 * IANA time zone; without it, in the daemon's local time (TZ or
 * /etc/localtime). Around daylight saving changes every local time the
 * expression names fires once: a time that does not exist (clocks jump
 * forward) fires when the gap ends, and times that fall on the same
 * instant are one fire; a time that occurs twice (clocks go back) fires at
 * its first occurrence only. */
#ifndef PGT_CRON_H
#define PGT_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CRON_TZ_MAX 64

struct cron {
	uint64_t minutes;     /* bit n: minute n, 0-59 */
	uint32_t hours;	      /* bit n: hour n, 0-23 */
	uint32_t days;	      /* bit n: day of month n, 1-31 */
	uint16_t months;      /* bit n: month n, 1-12 */
	uint8_t weekdays;     /* bit n: weekday n, 0 (Sunday) - 6 */
	bool days_star;	      /* the day-of-month field starts with '*' */
	bool weekdays_star;   /* the day-of-week field starts with '*' */
	char tz[CRON_TZ_MAX]; /* IANA zone, "" for local time */
};

/* Parse text into out. False with a cause that quotes the expression and
 * names the field that is wrong (and a zone that is not installed). */
bool cron_parse(const char *text, struct cron *out, char **cause) MUST_CHECK;

/* The first fire time strictly after `after` (seconds since the epoch).
 * False if the expression never fires within the next 50 years (such as
 * "0 0 30 2 *"). */
bool cron_next(const struct cron *cron, int64_t after, int64_t *next)
	MUST_CHECK;

/* Write t as local ISO 8601 time of the expression's zone with its offset
 * ("2024-03-31T03:00:00+02:00") into buf. */
void cron_format(const struct cron *cron, int64_t t, char *buf, size_t len);

#endif
