/* util.h - allocation that cannot fail, cause strings, clocks. */
#ifndef PGT_UTIL_H
#define PGT_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUST_CHECK __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Allocators that abort the process with a message on out-of-memory. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
/* Free a NULL-terminated array of strings and the strings (NULL: none). */
void strv_free(char **strv);
/* ms as a PostgreSQL interval literal ("1500 milliseconds"). */
void interval_ms_text(char *buf, size_t len, int64_t ms);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* Replace *cause (freeing the old one) with a formatted message.
 * cause may be NULL, then nothing happens. Always returns false so that
 * callers can write: return set_cause(cause, "..."). */
bool set_cause(char **cause, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Render text for an error message: quotes and backslashes escaped,
 * control bytes (and, with ascii_only, every byte over 0x7e) as \xNN, cut
 * after max bytes with "...". Returns a new string, without quotes around. */
char *display_escape(const char *text, size_t max, bool ascii_only);

/* Milliseconds on the monotonic clock. */
int64_t mono_ms(void);
/* Seconds since the epoch on the wall clock, with sub-second precision. */
double wall_seconds(void);

/* Parse a duration such as "250ms", "5s", "2m", "1h", "1d" or a bare number
 * of seconds ("1.5") into milliseconds. False on anything else. */
bool duration_parse(const char *text, int64_t *ms) MUST_CHECK;

/* Random integer in [0, bound) from a process-wide generator. */
uint32_t random_below(uint32_t bound);

/* Delay for retry number attempt (1-based): base * 2^(attempt-1), capped at
 * max, then scaled by a random factor in [0.5, 1.0]. */
int64_t backoff_ms(int attempt, int64_t base_ms, int64_t max_ms);

#endif
