/* job.c - a claimed job: built from its claim row (checked against what
 * pgtenantd itself writes for the kind), freed, and logged with its
 * context ("job 42 tenant_stats acme step x"). */
#include "job.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "jobdef.h"
#include "log.h"
#include "tenant.h"
#include "util.h"

/* Log with the job's context. */
void job_log(const struct job *job, int level, const char *fmt, ...)
{
	static const enum log_level levels[] = {
		LOG_LEVEL_DEBUG,
		LOG_LEVEL_INFO,
		LOG_LEVEL_WARNING,
		LOG_LEVEL_ERROR,
	};
	const struct log_job lj = {
		.id = job->id,
		.kind = job->kind,
		.tenant_id = job->tenant_id,
		.step = job->step_name,
	};
	va_list ap;

	va_start(ap, fmt);
	log_jobv(levels[level & 3], &lj, fmt, ap);
	va_end(ap);
}

/* Set the step the job's log lines name. */
void job_set_context(struct job *job, const char *step)
{
	job->step_name = step;
}

/* Text of a column by name, or NULL if the column is missing or NULL. */
static const char *row_value(const PGresult *res, int row, const char *col)
{
	int n = PQfnumber(res, col);

	if (n < 0 || PQgetisnull(res, row, n))
		return NULL;
	return PQgetvalue(res, row, n);
}

/* Take the reserved args of the test pause point (test_gate, test_sleep)
 * into the job. A daemon without test_hooks refuses a job that carries
 * either, so that a test never silently runs without its pauses and a
 * production daemon never pauses. */
static bool job_test_hooks(struct job *job, bool enabled, char **cause)
{
	json_t *v;
	const char *text;
	char *end = NULL, *shown, *dumped;
	long long ms = -1;

	for (unsigned i = 0; jobdef_reserved_args[i].name != NULL; i++)
		if (!enabled &&
		    json_object_get(job->args, jobdef_reserved_args[i].name))
			return set_cause(
				cause,
				"job %" PRId64
				": arg \"%s\" is a test hook of the engine, refused because this daemon's configuration does not set test_hooks: true",
				job->id, jobdef_reserved_args[i].name);
	v = json_object_get(job->args, "test_gate");
	if (v != NULL) {
		if (!json_is_string(v))
			return set_cause(
				cause,
				"job %" PRId64
				": arg \"test_gate\" must be a string (the name of the test's advisory lock)",
				job->id);
		job->test_gate = xstrdup(json_string_value(v));
	}
	v = json_object_get(job->args, "test_sleep");
	if (v == NULL)
		return true;
	if (json_is_integer(v)) {
		ms = json_integer_value(v);
	} else if (json_is_string(v)) {
		text = json_string_value(v);
		if (text[0] >= '0' && text[0] <= '9')
			ms = strtoll(text, &end, 10);
		if (end == NULL || *end != '\0')
			ms = -1;
	}
	if (ms < 0 || ms > JOB_TEST_SLEEP_MAX_MS) {
		dumped = json_is_string(v) ?
				 xstrdup(json_string_value(v)) :
				 json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		shown = display_escape(dumped ? dumped : "?", 40, false);
		set_cause(
			cause,
			"job %" PRId64
			": arg \"test_sleep\" must be milliseconds from 0 to %d, not '%s'",
			job->id, JOB_TEST_SLEEP_MAX_MS, shown);
		free(shown);
		free(dumped);
		return false;
	}
	job->test_sleep_ms = ms;
	return true;
}

/* Build a job from a claim_jobs row. The row's step and progress are
 * taken only as resume_parse checked them against the kind; a row that
 * does not hold what save_progress wrote fails the job (the caller fails
 * it, the attempt spent at claim stays spent). */
struct job *job_from_row(struct engine *e, const void *pgresult, int row,
			 char **cause)
{
	const PGresult *res = pgresult;
	struct job *job = xcalloc(1, sizeof(*job));
	const char *v;
	json_error_t jerr;

	job->engine = e;
	v = row_value(res, row, "id");
	job->id = v ? strtoll(v, NULL, 10) : 0;
	v = row_value(res, row, "kind");
	job->kind = xstrdup(v ? v : "");
	v = row_value(res, row, "tenant_id");
	job->tenant_id = xstrdup(v ? v : "");
	v = row_value(res, row, "attempts");
	job->attempts = v ? atoi(v) : 0;
	v = row_value(res, row, "max_attempts");
	job->max_attempts = v ? atoi(v) : 1;
	job->started_at = wall_seconds();
	job_set_context(job, NULL);
	v = row_value(res, row, "args");
	job->args = json_loads(v ? v : "{}", 0, &jerr);
	v = row_value(res, row, "result");
	job->result = v ? json_loads(v, 0, &jerr) : NULL;
	if (!json_is_object(job->result)) {
		json_decref(job->result);
		job->result = json_object();
	}
	job->defs = jobdefs_ref(e->jobdefs);
	job->def = jobdefs_find(job->defs, job->kind);
	if (job->def == NULL) {
		set_cause(cause,
			  "job %" PRId64 ": kind \"%s\" is not loaded here",
			  job->id, job->kind);
		goto bad;
	}
	if (!json_is_object(job->args)) {
		set_cause(cause, "job %" PRId64 ": args are not a JSON object",
			  job->id);
		goto bad;
	}
	if (!tenant_schema_name(job->tenant_id, job->schema,
				sizeof(job->schema), cause))
		goto bad;
	if (!job_test_hooks(job, e->config->test_hooks, cause))
		goto bad;
	if (!resume_parse(job->def, row_value(res, row, "step"),
			  row_value(res, row, "step_index"),
			  row_value(res, row, "progress"), &job->resume,
			  cause)) {
		char *full = xasprintf("job %" PRId64 ": %s", job->id,
				       cause && *cause ? *cause : "bad row");

		set_cause(cause, "%s", full);
		free(full);
		goto bad;
	}
	job->step_index = job->resume.step_index;
	job->progress = job->resume.progress;
	job->passed = job->resume.passed;
	job->resume.progress = NULL;
	job->resume.passed = NULL;
	job->lock_generation = pgconn_generation(e->dispatcher);
	return job;
bad:
	job_free(job);
	return NULL;
}

void job_free(struct job *job)
{
	if (job == NULL)
		return;
	free(job->kind);
	free(job->tenant_id);
	free(job->test_gate);
	json_decref(job->args);
	json_decref(job->progress);
	json_decref(job->result);
	json_decref(job->passed);
	resume_clear(&job->resume);
	if (job->defs != NULL)
		jobdefs_unref(job->defs);
	if (job->end_event != NULL)
		event_free(job->end_event);
	free(job->end_error);
	free(job);
}
