/* test_log.c - log lines as text and as JSON objects. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "unit.h"
#include "util.h"

static char path[256];

/* Send stderr to the capture file, emptied. */
static void capture_start(void)
{
	fflush(stderr);
	if (freopen(path, "w", stderr) == NULL) {
		perror(path);
		exit(99);
	}
}

/* Everything written to stderr since capture_start(). */
static char *capture_end(void)
{
	FILE *f;
	char *text = xmalloc(65536);
	size_t n;

	fflush(stderr);
	f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		exit(99);
	}
	n = fread(text, 1, 65535, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* Parse one JSON line; NULL if it is not an object. */
static json_t *parse_line(const char *line)
{
	json_error_t error;
	json_t *value = json_loads(line, 0, &error);

	if (!json_is_object(value)) {
		printf("# not a JSON object: %s (%s)\n", line, error.text);
		json_decref(value);
		return NULL;
	}
	return value;
}

static void test_format_parse(void)
{
	enum log_format f = LOG_FORMAT_JSON;

	ok(log_format_parse("text", &f) && f == LOG_FORMAT_TEXT, "text");
	ok(log_format_parse("JSON", &f) && f == LOG_FORMAT_JSON, "JSON");
	ok(!log_format_parse("xml", &f), "xml is not a format");
	ok(!log_format_parse("", &f), "empty is not a format");
}

/* A line about a job, as job_log writes it. */
static void job_line(enum log_level level, int64_t id, const char *kind,
		     const char *tenant, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void job_line(enum log_level level, int64_t id, const char *kind,
		     const char *tenant, const char *step, const char *fmt, ...)
{
	const struct log_job job = { id, kind, tenant, step };
	va_list ap;

	va_start(ap, fmt);
	log_jobv(level, &job, fmt, ap);
	va_end(ap);
}

static void test_text(void)
{
	char *out;

	log_set_format(LOG_FORMAT_TEXT);
	log_set_level(LOG_LEVEL_INFO);
	capture_start();
	job_line(LOG_LEVEL_WARNING, 7, "noop", "acme", NULL, "slow: %d ms",
		 250);
	log_debug("not shown");
	log_info("two\n");
	log_error("cannot connect: refused\n\tIs the server running?\n");
	out = capture_end();
	contains(out, " WARNING [job 7 noop acme] slow: 250 ms\n",
		 "text: level, context and message");
	ok(strstr(out, "not shown") == NULL, "text: below the level is quiet");
	contains(out, " INFO    two\n", "text: trailing newline not doubled");
	contains(out,
		 " ERROR   cannot connect: refused Is the server running?\n",
		 "text: a message of several lines becomes one line");
	ok(out[4] == '-' && out[10] == ' ' && out[19] == '.',
	   "text: starts with a local timestamp");
	free(out);
}

static void test_json(void)
{
	json_t *obj;
	char *out, *second, *third, *fourth, *fifth;
	const char *ts;

	log_set_format(LOG_FORMAT_JSON);
	log_set_level(LOG_LEVEL_DEBUG);
	capture_start();
	job_line(LOG_LEVEL_ERROR, 42, "tenant_stats", "acme-corp", "count",
		 "failed: \"%s\"\n", "x\ty");
	log_info("plain %s", "message");
	log_msg(LOG_LEVEL_DEBUG, "dispatcher", "bad byte \xff here");
	job_line(LOG_LEVEL_WARNING, 9, "noop", "t-1", NULL, "no step");
	log_msg(LOG_LEVEL_INFO, "job 5 look alike", "a name, not a job");
	out = capture_end();
	second = strchr(out, '\n');
	ok(second != NULL, "json: one line per message");
	if (second == NULL) {
		free(out);
		return;
	}
	*second++ = '\0';
	third = strchr(second, '\n');
	if (third != NULL)
		*third++ = '\0';
	fourth = third != NULL ? strchr(third, '\n') : NULL;
	if (fourth != NULL)
		*fourth++ = '\0';
	fifth = fourth != NULL ? strchr(fourth, '\n') : NULL;
	if (fifth != NULL)
		*fifth++ = '\0';

	obj = parse_line(out);
	ok(obj != NULL, "json: the line is a JSON object");
	ts = json_string_value(json_object_get(obj, "ts"));
	ok(ts != NULL && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z',
	   "json: ts is UTC ISO 8601 with milliseconds");
	is_str(json_string_value(json_object_get(obj, "level")), "error",
	       "json: level");
	is_str(json_string_value(json_object_get(obj, "context")),
	       "job 42 tenant_stats acme-corp step count", "json: context");
	is_str(json_string_value(json_object_get(obj, "msg")),
	       "failed: \"x\ty\"", "json: msg, trailing newline dropped");
	is_int(json_integer_value(json_object_get(obj, "job_id")), 42,
	       "json: job_id from the job");
	is_str(json_string_value(json_object_get(obj, "kind")), "tenant_stats",
	       "json: kind");
	is_str(json_string_value(json_object_get(obj, "tenant_id")),
	       "acme-corp", "json: tenant_id");
	is_str(json_string_value(json_object_get(obj, "step")), "count",
	       "json: step");
	json_decref(obj);

	obj = parse_line(second);
	ok(obj != NULL && json_is_null(json_object_get(obj, "context")),
	   "json: no context is null");
	ok(obj != NULL && json_object_get(obj, "job_id") == NULL,
	   "json: no job fields without a job");
	is_str(json_string_value(json_object_get(obj, "msg")), "plain message",
	       "json: plain message");
	json_decref(obj);

	obj = third != NULL ? parse_line(third) : NULL;
	ok(obj != NULL, "json: invalid UTF-8 still gives valid JSON");
	is_str(json_string_value(json_object_get(obj, "msg")),
	       "bad byte ? here", "json: the bad byte becomes ?");
	ok(obj != NULL && json_object_get(obj, "job_id") == NULL,
	   "json: a connection context is not a job");
	json_decref(obj);

	obj = fourth != NULL ? parse_line(fourth) : NULL;
	is_int(json_integer_value(json_object_get(obj, "job_id")), 9,
	       "json: job context without a step");
	ok(obj != NULL && json_object_get(obj, "step") == NULL,
	   "json: and no step field");
	json_decref(obj);

	obj = fifth != NULL ? parse_line(fifth) : NULL;
	is_str(json_string_value(json_object_get(obj, "context")),
	       "job 5 look alike", "json: a plain context is kept as it is");
	ok(obj != NULL && json_object_get(obj, "job_id") == NULL,
	   "json: and never read back as a job (no parsing of the text)");
	json_decref(obj);
	free(out);
	log_set_format(LOG_FORMAT_TEXT);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/pgt-log-XXXXXX", base ? base : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return 99;
	}
	close(fd);
	test_format_parse();
	test_text();
	test_json();
	unlink(path);
	return done_testing();
}
