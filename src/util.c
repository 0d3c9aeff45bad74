/* util.c - allocation that cannot fail, cause strings, clocks, backoff. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Print a message and abort: the daemon cannot go on without memory. */
static void __attribute__((noreturn)) out_of_memory(size_t size)
{
	fprintf(stderr, "pgtenantd: out of memory allocating %zu bytes\n",
		size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory(n * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		out_of_memory(size);
	return p;
}

void interval_ms_text(char *buf, size_t len, int64_t ms)
{
	snprintf(buf, len, "%" PRId64 " milliseconds", ms);
}

void strv_free(char **strv)
{
	if (strv == NULL)
		return;
	for (char **s = strv; *s != NULL; s++)
		free(*s);
	free(strv);
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		out_of_memory(strlen(s) + 1);
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		out_of_memory(n + 1);
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *p;

	if (vasprintf(&p, fmt, ap) < 0)
		out_of_memory(strlen(fmt));
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

/* Replace *cause with a formatted message; always false. */
bool set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause == NULL)
		return false;
	free(*cause);
	va_start(ap, fmt);
	*cause = xvasprintf(fmt, ap);
	va_end(ap);
	return false;
}

/* Render text for an error message (see util.h). */
char *display_escape(const char *text, size_t max, bool ascii_only)
{
	size_t len = strlen(text);
	size_t shown = len > max ? max : len;
	char *out = xmalloc(shown * 4 + 4);
	char *p = out;

	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20 || c == 0x7f || (ascii_only && c > 0x7f)) {
			p += sprintf(p, "\\x%02x", c);
		} else {
			*p++ = (char)c;
		}
	}
	if (shown < len)
		p = stpcpy(p, "...");
	*p = '\0';
	return out;
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Parse "250ms", "5s", "2m", "1h", "1d" or bare seconds into ms. */
bool duration_parse(const char *text, int64_t *ms)
{
	static const struct {
		const char *suffix;
		double ms;
	} units[] = {
		{ "ms", 1 },	  { "s", 1000 },     { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 }, { "", 1000 },
	};
	char *end;
	double value;

	if (text == NULL)
		return false;
	while (isspace((unsigned char)*text))
		text++;
	if (*text == '\0' || *text == '-' || *text == '+')
		return false;
	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || !isfinite(value))
		return false;
	while (isspace((unsigned char)*end))
		end++;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			double total = value * units[i].ms;

			if (total > 9.0e15)
				return false;
			*ms = (int64_t)llround(total);
			return true;
		}
	}
	return false;
}

/* A xorshift generator seeded from getrandom(); good enough for jitter. */
uint32_t random_below(uint32_t bound)
{
	static uint64_t state;

	if (bound == 0)
		return 0;
	if (state == 0) {
		if (getrandom(&state, sizeof(state), 0) != sizeof(state))
			state = (uint64_t)time(NULL) ^ (uint64_t)clock();
		state |= 1;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (uint32_t)(state % bound);
}

/* Exponential backoff with jitter in [50%, 100%] of the capped delay. */
int64_t backoff_ms(int attempt, int64_t base_ms, int64_t max_ms)
{
	int64_t delay = base_ms;

	if (attempt < 1)
		attempt = 1;
	for (int i = 1; i < attempt && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	if (delay <= 1)
		return delay;
	return delay / 2 + random_below((uint32_t)(delay / 2 + 1));
}
