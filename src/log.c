/* log.c - leveled logging to stderr with job context, as text or JSON. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#define LOG_LINE_MAX 16384

static enum log_level min_level = LOG_LEVEL_INFO;
static enum log_format line_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "DEBUG",
	[LOG_LEVEL_INFO] = "INFO",
	[LOG_LEVEL_WARNING] = "WARNING",
	[LOG_LEVEL_ERROR] = "ERROR",
};

static const char *const json_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_ERROR] = "error",
};

/* Set the lowest level that is printed. */
void log_set_level(enum log_level level)
{
	min_level = level;
}

/* Set the line format. */
void log_set_format(enum log_format format)
{
	line_format = format;
}

/* Parse a level name as written in the config. */
bool log_level_parse(const char *name, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return true;
		}
	}
	if (strcasecmp(name, "warn") == 0) {
		*level = LOG_LEVEL_WARNING;
		return true;
	}
	return false;
}

/* Parse a format name as written in the config. */
bool log_format_parse(const char *name, enum log_format *format)
{
	if (strcasecmp(name, "text") == 0) {
		*format = LOG_FORMAT_TEXT;
		return true;
	}
	if (strcasecmp(name, "json") == 0) {
		*format = LOG_FORMAT_JSON;
		return true;
	}
	return false;
}

/* A JSON string for text that may not be valid UTF-8: bytes that jansson
 * refuses become '?'. */
static json_t *json_text(const char *text)
{
	json_t *value = json_string(text);
	char *copy;

	if (value != NULL)
		return value;
	copy = strdup(text);
	if (copy == NULL)
		return json_string("?");
	for (char *p = copy; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	}
	value = json_string(copy);
	free(copy);
	return value != NULL ? value : json_string("?");
}

/* Add job_id, kind, tenant_id and step of a job's line to obj. */
static void json_add_job(json_t *obj, const struct log_job *job)
{
	json_object_set_new(obj, "job_id", json_integer(job->id));
	json_object_set_new(obj, "kind", json_text(job->kind));
	json_object_set_new(obj, "tenant_id", json_text(job->tenant_id));
	if (job->step != NULL)
		json_object_set_new(obj, "step", json_text(job->step));
}

/* Write one JSON object on a line: ts (UTC), level, context, msg. */
static void log_json(const struct timeval *tv, enum log_level level,
		     const char *context, const struct log_job *job,
		     const char *msg)
{
	struct tm tm;
	char stamp[40];
	json_t *obj;
	char *text;

	gmtime_r(&tv->tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03dZ",
		 (int)(tv->tv_usec / 1000));
	obj = json_object();
	json_object_set_new(obj, "ts", json_string(stamp));
	json_object_set_new(obj, "level", json_string(json_level_names[level]));
	json_object_set_new(obj, "context",
			    context != NULL ? json_text(context) : json_null());
	json_object_set_new(obj, "msg", json_text(msg));
	if (job != NULL)
		json_add_job(obj, job);
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (text == NULL)
		return;
	fprintf(stderr, "%s\n", text);
	free(text);
}

/* Make text[start..*len) one line: each newline inside it, with the tabs
 * and spaces after it, becomes one space (libpq errors carry "\n\t"). */
static void join_lines(char *text, int start, int *len)
{
	int out = start;

	for (int in = start; in < *len; in++) {
		if (text[in] != '\n') {
			text[out++] = text[in];
			continue;
		}
		while (in + 1 < *len &&
		       (text[in + 1] == '\t' || text[in + 1] == ' '))
			in++;
		text[out++] = ' ';
	}
	*len = out;
}

/* Write one timestamped line to stderr, with context and, for a job's
 * line, the job (then context is the job's). */
static void log_write(enum log_level level, const char *context,
		      const struct log_job *job, const char *fmt, va_list ap)
{
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	char line[LOG_LINE_MAX];
	int n;

	if (level < min_level)
		return;
	gettimeofday(&tv, NULL);
	if (line_format == LOG_FORMAT_JSON) {
		n = vsnprintf(line, sizeof(line), fmt, ap);
		if (n < 0)
			n = 0;
		if (n >= (int)sizeof(line))
			n = sizeof(line) - 1;
		while (n > 0 && line[n - 1] == '\n')
			n--;
		line[n] = '\0';
		log_json(&tv, level, context, job, line);
		return;
	}
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03d %-7s ", stamp,
		     (int)(tv.tv_usec / 1000), level_names[level]);
	if (context != NULL && n < (int)sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, "[%s] ", context);
	if (n < (int)sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	join_lines(line, 0, &n);
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}

void log_msgv(enum log_level level, const char *context, const char *fmt,
	      va_list ap)
{
	if (level >= min_level)
		log_write(level, context, NULL, fmt, ap);
}

void log_jobv(enum log_level level, const struct log_job *job, const char *fmt,
	      va_list ap)
{
	char context[512];

	if (level < min_level)
		return;
	snprintf(context, sizeof(context), "job %lld %s %s%s%s",
		 (long long)job->id, job->kind, job->tenant_id,
		 job->step != NULL ? " step " : "",
		 job->step != NULL ? job->step : "");
	log_write(level, context, job, fmt, ap);
}

/* Write one timestamped line to stderr. */
void log_msg(enum log_level level, const char *context, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, context, fmt, ap);
	va_end(ap);
}
