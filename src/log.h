/* log.h - leveled logging to stderr with job context. */
#ifndef PGT_LOG_H
#define PGT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
};

/* How each line is written. */
enum log_format {
	LOG_FORMAT_TEXT, /* "2026-11-27 04:30:00.123 INFO    [context] msg" */
	LOG_FORMAT_JSON, /* one JSON object per line: ts, level, context, msg */
};

/* Set the lowest level that is printed (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level level);

/* Parse "debug", "info", "warning" or "error"; false if the name is unknown. */
bool log_level_parse(const char *name, enum log_level *level) MUST_CHECK;

/* Set the line format (default LOG_FORMAT_TEXT). */
void log_set_format(enum log_format format);

/* Parse "text" or "json"; false if the name is unknown. */
bool log_format_parse(const char *name, enum log_format *format) MUST_CHECK;

/* Print one line to stderr. As text: "2026-11-27 04:30:00.123 INFO
 * [context] message" in local time. As JSON: {"ts": UTC ISO 8601 with
 * milliseconds, "level", "context" (null if none), "msg"}. context (a
 * connection's name, say) may be NULL. */
void log_msg(enum log_level level, const char *context, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_msgv(enum log_level level, const char *context, const char *fmt,
	      va_list ap);

/* A job a line is about. */
struct log_job {
	int64_t id;
	const char *kind;
	const char *tenant_id;
	const char *step; /* NULL: not in a step */
};

/* Print one line about a job: its context is "job 42 kind tenant[ step
 * name]" as text, and JSON also gets "job_id", "kind", "tenant_id" and
 * (in a step) "step". */
void log_jobv(enum log_level level, const struct log_job *job, const char *fmt,
	      va_list ap);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)

#endif
