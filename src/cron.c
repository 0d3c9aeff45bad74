/* cron.c - five-field cron expressions and their fire times in a time zone.
 *
 * Fire times are found in local wall-clock time ("wall seconds": seconds
 * since 1970-01-01 00:00 of the local calendar) and mapped to instants:
 * wall time L fires at the first instant whose wall time reaches L. That
 * one rule gives the documented DST behaviour: a skipped time fires when
 * the gap ends, a repeated time at its first occurrence. */
#include "cron.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define DAY_SECONDS 86400
#define CRON_SEARCH_YEARS 50
#define CRON_DEFAULT_TZDIR "/usr/share/zoneinfo"
/* Longest backward clock change looked for (real ones are 30 min to 2 h). */
#define CRON_MAX_FALLBACK (6 * 3600)

struct cron_field {
	const char *what;
	int min, max;
	const char *const *names; /* names[i] stands for min + i */
};

/* clang-format off */
static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL,
};
static const char *const weekday_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL,
};
static const struct cron_field cron_fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day-of-month", 1, 31, NULL },
	{ "month", 1, 12, month_names },
	{ "day-of-week", 0, 7, weekday_names },
};
/* clang-format on */

/* ------------------------------------------------------------ parsing */

/* Read a number or a name at *p; false if there is neither. */
static bool cron_value(const struct cron_field *f, const char **p, int *out)
{
	const char *s = *p;

	if (isdigit((unsigned char)*s)) {
		long v = 0;

		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		if (isdigit((unsigned char)*s))
			return false;
		*out = (int)v;
		*p = s;
		return true;
	}
	if (f->names == NULL)
		return false;
	for (int i = 0; f->names[i] != NULL; i++) {
		if (strncasecmp(s, f->names[i], 3) == 0 &&
		    !isalpha((unsigned char)s[3])) {
			*out = f->min + i;
			*p = s + 3;
			return true;
		}
	}
	return false;
}

/* Parse one field (text of len bytes) into a bit set. */
static bool cron_parse_field(const char *expr, const struct cron_field *f,
			     const char *text, size_t len, uint64_t *bits,
			     bool *star, char **cause)
{
	char *field = xstrndup(text, len);
	char *item, *save = NULL;
	bool good = true;

	*bits = 0;
	*star = field[0] == '*';
	if (field[0] == ',' || field[len - 1] == ',' ||
	    strstr(field, ",,") != NULL) {
		set_cause(
			cause,
			"cron \"%s\": %s field \"%.*s\" has an empty list item",
			expr, f->what, (int)len, text);
		free(field);
		return false;
	}
	for (item = strtok_r(field, ",", &save); item != NULL && good;
	     item = strtok_r(NULL, ",", &save)) {
		const char *p = item;
		int lo, hi, step = 1;
		bool range = false;

		if (*p == '*') {
			lo = f->min;
			hi = f->max == 7 ? 6 : f->max;
			p++;
			range = true;
		} else if (!cron_value(f, &p, &lo)) {
			good = set_cause(
				cause,
				"cron \"%s\": %s field \"%.*s\": \"%s\" is not a number%s",
				expr, f->what, (int)len, text, item,
				f->names ? " or a name" : "");
			break;
		} else if (*p == '-') {
			p++;
			if (!cron_value(f, &p, &hi)) {
				good = set_cause(
					cause,
					"cron \"%s\": %s field \"%.*s\": \"%s\" has no end after '-'",
					expr, f->what, (int)len, text, item);
				break;
			}
			range = true;
		} else {
			hi = lo;
		}
		if (*p == '/') {
			char *end;
			long v;

			v = strtol(p + 1, &end, 10);
			if (end == p + 1 || *end != '\0' || v < 1 ||
			    v > f->max) {
				good = set_cause(
					cause,
					"cron \"%s\": %s field \"%.*s\": the step in \"%s\" must be a number from 1 to %d",
					expr, f->what, (int)len, text, item,
					f->max);
				break;
			}
			step = (int)v;
			if (!range)
				hi = f->max == 7 ? 6 : f->max;
			p = end;
		}
		if (*p != '\0') {
			good = set_cause(
				cause,
				"cron \"%s\": %s field \"%.*s\": cannot read \"%s\"",
				expr, f->what, (int)len, text, item);
			break;
		}
		if (lo < f->min || lo > f->max || hi < f->min || hi > f->max) {
			good = set_cause(
				cause,
				"cron \"%s\": %s field \"%.*s\": \"%s\" is out of range %d-%d",
				expr, f->what, (int)len, text, item, f->min,
				f->max);
			break;
		}
		if (hi < lo) {
			good = set_cause(
				cause,
				"cron \"%s\": %s field \"%.*s\": the range \"%s\" goes backwards",
				expr, f->what, (int)len, text, item);
			break;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << (f->max == 7 && v == 7 ? 0 : v);
	}
	free(field);
	return good;
}

/* True if an installed zone file exists for name (a relative path). */
static bool cron_tz_exists(const char *name)
{
	const char *dir = getenv("TZDIR");
	struct stat st;
	char *path;
	bool found;

	if (name[0] == '/' || strstr(name, "..") != NULL)
		return false;
	for (const char *s = name; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("/_+-", *s) == NULL)
			return false;
	path = xasprintf("%s/%s",
			 dir != NULL && *dir != '\0' ? dir : CRON_DEFAULT_TZDIR,
			 name);
	found = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	free(path);
	return found;
}

/* Parse text into out. */
bool cron_parse(const char *text, struct cron *out, char **cause)
{
	const char *s = text, *start[5];
	size_t len[5];
	uint64_t bits;
	unsigned n = 0;

	memset(out, 0, sizeof(*out));
	while (isspace((unsigned char)*s))
		s++;
	if (strncmp(s, "CRON_TZ=", 8) == 0 || strncmp(s, "TZ=", 3) == 0) {
		const char *zone = strchr(s, '=') + 1;
		size_t zlen = strcspn(zone, " \t\n");
		char *name = xstrndup(zone, zlen);

		if (zlen == 0 || zlen >= sizeof(out->tz) ||
		    !cron_tz_exists(name)) {
			set_cause(
				cause,
				"cron \"%s\": \"%s\" is not an installed time zone (such as Europe/Berlin or UTC)",
				text, name);
			free(name);
			return false;
		}
		memcpy(out->tz, name, zlen + 1);
		free(name);
		s = zone + zlen;
	}
	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		if (n == 5)
			return set_cause(
				cause,
				"cron \"%s\" has more than five fields; a cron expression has five: minute hour day-of-month month day-of-week",
				text);
		start[n] = s;
		while (*s != '\0' && !isspace((unsigned char)*s))
			s++;
		len[n] = (size_t)(s - start[n]);
		n++;
	}
	if (n != 5)
		return set_cause(
			cause,
			"cron \"%s\" has %u field%s; a cron expression has five: minute hour day-of-month month day-of-week",
			text, n, n == 1 ? "" : "s");
	for (unsigned i = 0; i < 5; i++) {
		bool star;

		if (!cron_parse_field(text, &cron_fields[i], start[i], len[i],
				      &bits, &star, cause))
			return false;
		switch (i) {
		case 0:
			out->minutes = bits;
			break;
		case 1:
			out->hours = (uint32_t)bits;
			break;
		case 2:
			out->days = (uint32_t)bits;
			out->days_star = star;
			break;
		case 3:
			out->months = (uint16_t)bits;
			break;
		case 4:
			out->weekdays = (uint8_t)bits;
			out->weekdays_star = star;
			break;
		}
	}
	return true;
}

/* ------------------------------------------------------------ calendar */

/* Floor division and modulo for possibly negative numbers. */
static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The date of a day number. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Whether the expression's day fields accept day number z (y-m-d). */
static bool cron_day_matches(const struct cron *c, int64_t z, int d)
{
	int wd = (int)(((z % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	bool dom = (c->days >> d) & 1, dow = (c->weekdays >> wd) & 1;

	if (c->days_star || c->weekdays_star)
		return dom && dow;
	return dom || dow;
}

/* The first wall time >= w (minute aligned) that the fields accept, or
 * false if there is none before year `limit`. */
static bool cron_next_wall(const struct cron *c, int64_t w, int64_t limit,
			   int64_t *out)
{
	int64_t z = floor_div(w, DAY_SECONDS), y;
	int64_t rest = w - z * DAY_SECONDS;
	int hour = (int)(rest / 3600), minute = (int)(rest % 3600 / 60);
	int m, d;

	civil_from_days(z, &y, &m, &d);
	while (y < limit) {
		if (!((c->months >> m) & 1)) {
			if (++m > 12) {
				m = 1;
				y++;
			}
			d = 1;
			z = days_from_civil(y, m, d);
			hour = minute = 0;
			continue;
		}
		if (!cron_day_matches(c, z, d)) {
			z++;
			civil_from_days(z, &y, &m, &d);
			hour = minute = 0;
			continue;
		}
		while (hour < 24 && !((c->hours >> hour) & 1)) {
			hour++;
			minute = 0;
		}
		while (hour < 24 && minute < 60 &&
		       !((c->minutes >> minute) & 1))
			minute++;
		if (hour < 24 && minute < 60) {
			*out = z * DAY_SECONDS + hour * 3600 + minute * 60;
			return true;
		}
		if (hour < 24) {
			hour++;
			minute = 0;
			continue;
		}
		z++;
		civil_from_days(z, &y, &m, &d);
		hour = minute = 0;
	}
	return false;
}

/* ------------------------------------------------------------ time zones */

/* The process's TZ while a zone is selected, to put back afterwards. */
struct cron_tz_saved {
	bool switched;
	char *old; /* NULL: TZ was unset */
};

/* Make localtime_r use the expression's zone. */
static void cron_tz_enter(const struct cron *c, struct cron_tz_saved *saved)
{
	const char *old = getenv("TZ");

	saved->switched = false;
	saved->old = NULL;
	if (c->tz[0] == '\0' || (old != NULL && strcmp(old, c->tz) == 0))
		return;
	saved->switched = true;
	saved->old = old != NULL ? xstrdup(old) : NULL;
	setenv("TZ", c->tz, 1);
	tzset();
}

/* Put the process's zone back. */
static void cron_tz_leave(struct cron_tz_saved *saved)
{
	if (!saved->switched)
		return;
	if (saved->old != NULL)
		setenv("TZ", saved->old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved->old);
}

/* Offset of local time from UTC at instant t, in seconds. */
static int64_t utc_offset(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return tm.tm_gmtoff;
}

static int64_t wall_of(int64_t t)
{
	return t + utc_offset(t);
}

/* The first instant whose wall time is >= w. */
static int64_t wall_to_instant(int64_t w)
{
	int64_t o1 = utc_offset(w - DAY_SECONDS),
		o2 = utc_offset(w + DAY_SECONDS);
	int64_t best = INT64_MAX, lo, hi;
	int64_t offsets[2] = { o1, o2 };

	for (int i = 0; i < 2; i++) {
		int64_t t = w - offsets[i];

		if (wall_of(t) == w && t < best)
			best = t;
	}
	if (best != INT64_MAX)
		return best;
	/* w is in a gap: find where the clock jumps past it. */
	lo = w - (o1 > o2 ? o1 : o2);
	hi = w - (o1 > o2 ? o2 : o1);
	if (wall_of(hi) < w)
		return hi;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;

		if (wall_of(mid) >= w)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The latest wall time shown at or before instant t: the wall time at t,
 * unless the clocks went back shortly before t. */
static int64_t wall_reached(int64_t t)
{
	int64_t w = wall_of(t), before = t - CRON_MAX_FALLBACK;
	int64_t off = utc_offset(t), lo, hi;

	if (utc_offset(before) <= off)
		return w;
	lo = before;
	hi = t;
	while (hi - lo > 1) { /* last instant with the earlier offset */
		int64_t mid = lo + (hi - lo) / 2;

		if (utc_offset(mid) > off)
			lo = mid;
		else
			hi = mid;
	}
	return wall_of(lo) > w ? wall_of(lo) : w;
}

/* ------------------------------------------------------------ API */

/* The first fire time strictly after `after`. */
bool cron_next(const struct cron *c, int64_t after, int64_t *next)
{
	struct cron_tz_saved saved;
	int64_t w, limit, y;
	int m, d;
	bool found = false;

	cron_tz_enter(c, &saved);
	w = floor_div(wall_reached(after), 60) * 60;
	civil_from_days(floor_div(w, DAY_SECONDS), &y, &m, &d);
	limit = y + CRON_SEARCH_YEARS;
	while (cron_next_wall(c, w, limit, &w)) {
		int64_t t = wall_to_instant(w);

		if (t > after) {
			*next = t;
			found = true;
			break;
		}
		w += 60;
	}
	cron_tz_leave(&saved);
	return found;
}

/* Write t as local ISO 8601 time with its offset. */
void cron_format(const struct cron *c, int64_t t, char *buf, size_t len)
{
	struct cron_tz_saved saved;
	time_t tt = (time_t)t;
	struct tm tm;
	long off;

	cron_tz_enter(c, &saved);
	if (localtime_r(&tt, &tm) == NULL) {
		snprintf(buf, len, "@%lld", (long long)t);
	} else {
		off = tm.tm_gmtoff;
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
			 labs(off) / 3600, labs(off) % 3600 / 60);
	}
	cron_tz_leave(&saved);
}
