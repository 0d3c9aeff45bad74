/* log.c - leveled logging to stderr with job context. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level min_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "DEBUG",
	[LOG_LEVEL_INFO] = "INFO",
	[LOG_LEVEL_WARNING] = "WARNING",
	[LOG_LEVEL_ERROR] = "ERROR",
};

/* Set the lowest level that is printed. */
void log_set_level(enum log_level level)
{
	min_level = level;
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

/* Write one timestamped line to stderr. */
void log_msgv(enum log_level level, const char *context, const char *fmt,
	      va_list ap)
{
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	char line[16384];
	int n;

	if (level < min_level)
		return;
	gettimeofday(&tv, NULL);
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
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}

/* Write one timestamped line to stderr. */
void log_msg(enum log_level level, const char *context, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, context, fmt, ap);
	va_end(ap);
}
