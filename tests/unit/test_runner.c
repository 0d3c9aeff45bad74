/* test_runner.c - the step engine on its own, on a real PostgreSQL (the PG*
 * environment scripts/check sets; skipped without) and a real SQLite file,
 * with no queue and no daemon: the test claims a row, hands it to
 * runner_start and checks what the runner reports and what it left in the
 * job row, the tenant's tables and the checkpoints. The end is reported
 * from the loop, never from inside runner_start (also for a job that ends
 * before its first statement); SQLite gets each step's checkpoint; a
 * failing statement or program names what failed; a `when` that is false
 * skips its step; a cancel interrupts a statement in flight. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "ckpt.h"
#include "engine_fixture.h"
#include "job.h"
#include "runner.h"
#include "unit.h"
#include "util.h"

/* What the runner reported. */
static struct {
	bool done;
	bool inside_start; /* reported while runner_start had not returned */
	enum job_outcome outcome;
	char error[1024];
} end;
static bool in_start;

static void on_end(struct job *job, enum job_outcome outcome, const char *error,
		   void *arg)
{
	(void)job;
	(void)arg;
	end.done = true;
	end.inside_start = in_start;
	end.outcome = outcome;
	snprintf(end.error, sizeof(end.error), "%s", error ? error : "");
	event_base_loopbreak(fx.base);
}

/* Enqueue a job of kind (args a JSON object), claim it as OWNER and start
 * it on the worker; returns the job (NULL if the claim failed). */
static struct job *start(const char *kind, const char *args)
{
	const char *params[2] = { kind, args };
	const char *claim_params[2] = { kind, fx.owner };
	char *cause = NULL;
	struct job *job;
	PGresult *res;

	res = PQexecParams(fx_admin,
			   /* a tenant per kind: the test records no ends,
			    * and a tenant with a running job is not claimed */
			   "INSERT INTO pgtenantd.jobs (kind, tenant_id, args) "
			   "VALUES ($1, $1, $2::jsonb)",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		printf("# enqueue %s: %s", kind, PQresultErrorMessage(res));
	PQclear(res);
	res = PQexecParams(fx_admin,
			   "SELECT * FROM pgtenantd.claim_jobs($2, 1, "
			   "interval '1 minute', ARRAY[$1::text])",
			   2, NULL, claim_params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		printf("# claim %s: %s\n", kind, PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	job = job_from_row(&fx, res, 0, &cause);
	PQclear(res);
	if (job == NULL) {
		printf("# job_from_row: %s\n", cause);
		free(cause);
		return NULL;
	}
	memset(&end, 0, sizeof(end));
	in_start = true;
	runner_start(&fx.workers[0], job, on_end, NULL);
	in_start = false;
	return job;
}

/* Whether SQLite holds step step_index of job as done. */
static bool checkpoint_done(const struct job *job, int step_index)
{
	struct ckpt_step cs;
	bool found = false, done;
	char *cause = NULL;

	if (!ckpt_load(fx.ckpt, job->id, step_index, &cs, &found, &cause)) {
		if (cause != NULL)
			printf("# ckpt_load: %s\n", cause);
		free(cause);
		return false;
	}
	done = found && cs.done;
	ckpt_step_clear(&cs);
	return done;
}

/* The job ended: give the tenant lock back as the queue would. */
static void finished(struct job *job)
{
	fx_value("SELECT pg_advisory_unlock_all()");
	job_free(job);
	fx.workers[0].job = NULL;
}

/* Start a job of kind (see start) and run the loop until it ends; what
 * names the case. NULL if it could not be claimed (a failed check). */
static struct job *run(const char *kind, const char *args, const char *what)
{
	struct job *job = start(kind, args);
	char name[128];

	snprintf(name, sizeof(name), "%s: claimed and started", what);
	if (!ok(job != NULL, name))
		return NULL;
	fx_loop_until(&end.done, 15);
	return job;
}

static void test_steps_in_order(void)
{
	struct job *job = start("unit_steps", "{\"n\": \"7\"}");
	char sql[256], *passed;

	if (!ok(job != NULL, "steps: claimed and started"))
		return;
	ok(!end.done, "steps: runner_start returns before the job ends");
	fx_loop_until(&end.done, 15);
	ok(end.done && !end.inside_start,
	   "steps: the end is reported from the loop");
	is_int(end.outcome, JOB_SUCCEEDED, "steps: succeeded");
	is_str(fx_value(
		       "SELECT string_agg(n::text, ',' ORDER BY n) FROM public.unit_t"),
	       "7,8", "steps: each step ran once, in order, with its args");
	snprintf(
		sql, sizeof(sql),
		"SELECT step_index || ' ' || (progress->>'percent')::float8 || ' ' || "
		"coalesce(result->>'doubled', '-') FROM pgtenantd.jobs "
		"WHERE id = %lld",
		(long long)job->id);
	/* the last step ran in a transaction: its progress is in the row */
	is_str(fx_value(sql), "3 100 14",
	       "steps: the row is past the last step, at 100%, with the result");
	passed = json_dumps(job->passed, JSON_COMPACT);
	contains(passed, "\"double\"",
		 "steps: the steps that passed are listed");
	free(passed);
	ok(checkpoint_done(job, 0) && checkpoint_done(job, 1),
	   "steps: SQLite holds each step but the last as done");
	ok(!checkpoint_done(job, 2),
	   "steps: and not the last one (the job's end deletes them all)");
	finished(job);
}

/* A job whose first step cannot start (its program does not exist) ends
 * inside runner_start; the end still comes from the loop. */
static void test_end_at_start(void)
{
	struct job *job = run("unit_noprog", "{}", "no program");

	if (job == NULL)
		return;
	ok(end.done && !end.inside_start,
	   "no program: the end is reported from the loop, not from runner_start");
	ok(end.outcome == JOB_FAILED_RETRY || end.outcome == JOB_FAILED_FINAL,
	   "no program: the job failed");
	contains(end.error, "no-such-program",
		 "no program: the error names it");
	finished(job);
}

static void test_failure(void)
{
	struct job *job = run("unit_fail", "{}", "failure");

	if (job == NULL)
		return;
	is_int(end.outcome, JOB_FAILED_RETRY,
	       "failure: a failing statement fails the attempt (retried)");
	contains(end.error, "step \"divide\"",
		 "failure: the error names the step");
	contains(end.error, "division by zero",
		 "failure: and carries the server's message");
	is_str(fx_value("SELECT count(*) FROM public.unit_t WHERE n = 99"), "0",
	       "failure: the step's transaction was rolled back");
	finished(job);
}

static void test_when_false(void)
{
	struct job *job = run("unit_when", "{\"go\": \"false\"}", "when");
	char *passed;

	if (job == NULL)
		return;
	is_int(end.outcome, JOB_SUCCEEDED, "when: succeeded");
	is_str(fx_value("SELECT count(*) FROM public.unit_t WHERE n = 42"), "0",
	       "when: the step whose when is false did not run");
	passed = json_dumps(job->passed, JSON_COMPACT);
	ok(passed != NULL && strstr(passed, "maybe") == NULL &&
		   strstr(passed, "after") != NULL,
	   "when: the skipped step is not listed as passed, the next one is");
	free(passed);
	finished(job);
}

static void test_exec(void)
{
	struct job *job = run("unit_exec", "{}", "exec");

	if (job == NULL)
		return;
	is_int(end.outcome, JOB_SUCCEEDED, "exec: succeeded");
	is_str(fx_value("SELECT count(*) FROM public.unit_t WHERE n = 5"), "1",
	       "exec: the step before the program ran");
	ok(job->progress_at_end,
	   "exec: the last step's progress is left to the job's end");
	finished(job);

	job = run("unit_exec_fail", "{}", "exec failure");
	if (job == NULL)
		return;
	is_int(end.outcome, JOB_FAILED_RETRY,
	       "exec failure: a program's non-zero exit fails the attempt");
	contains(end.error, "oops",
		 "exec failure: the error carries the end of its stderr");
	finished(job);
}

static void on_cancel_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	runner_interrupt(arg, JOB_INTERRUPT_CANCEL);
}

static void test_cancel(void)
{
	struct job *job = start("unit_sleep", "{}");
	struct event *timer;
	int64_t t0 = mono_ms();

	if (!ok(job != NULL, "cancel: claimed and started"))
		return;
	timer = evtimer_new(fx.base, on_cancel_timer, job);
	timer_add_ms(timer, 500);
	fx_loop_until(&end.done, 15);
	is_int(end.outcome, JOB_CANCELLED, "cancel: the job is cancelled");
	ok(mono_ms() - t0 < 8000,
	   "cancel: the statement in flight was interrupted (not slept out)");
	event_free(timer);
	finished(job);
}

static void write_kinds(void)
{
	fx_kind("unit_steps",
		"description: unit test - three steps\n"
		"args:\n"
		"  - name: n\n"
		"steps:\n"
		"  - name: first\n"
		"    sql: INSERT INTO public.unit_t VALUES (:'n'::int)\n"
		"  - name: second\n"
		"    sql: INSERT INTO public.unit_t VALUES (:'n'::int + 1)\n"
		"  - name: double\n"
		"    sql: SELECT :'n'::int * 2 AS doubled\n"
		"    result: true\n");
	fx_kind("unit_fail", "description: unit test - fails\n"
			     "steps:\n"
			     "  - name: divide\n"
			     "    sql: |\n"
			     "      INSERT INTO public.unit_t VALUES (99);\n"
			     "      SELECT 1 / 0\n");
	fx_kind("unit_when", "description: unit test - a conditional step\n"
			     "args:\n"
			     "  - name: go\n"
			     "steps:\n"
			     "  - name: maybe\n"
			     "    when: SELECT :'go'::boolean\n"
			     "    sql: INSERT INTO public.unit_t VALUES (42)\n"
			     "  - name: after\n"
			     "    sql: SELECT 1\n");
	fx_kind("unit_exec",
		"description: unit test - a program as the last step\n"
		"steps:\n"
		"  - name: before\n"
		"    sql: INSERT INTO public.unit_t VALUES (5)\n"
		"  - name: run\n"
		"    exec: [\"sh\", \"-c\", \"exit 0\"]\n");
	fx_kind("unit_exec_fail",
		"description: unit test - a program that fails\n"
		"steps:\n"
		"  - name: run\n"
		"    exec: [\"sh\", \"-c\", \"echo oops >&2; exit 3\"]\n");
	fx_kind("unit_noprog",
		"description: unit test - a program that does not exist\n"
		"steps:\n"
		"  - name: run\n"
		"    exec: [\"/nonexistent/no-such-program\"]\n");
	fx_kind("unit_sleep", "description: unit test - one long statement\n"
			      "steps:\n"
			      "  - name: sleep\n"
			      "    sql: SELECT pg_sleep(30)\n");
}

int main(void)
{
	if (getenv("PGHOST") == NULL) {
		printf("1..0 # SKIP no PostgreSQL (PGHOST unset)\n");
		return 0;
	}
	write_kinds();
	if (ok(fx_start("runner", 1, NULL, NULL, NULL),
	       "a database of its own, the schema and the kinds are set up")) {
		fx_value("CREATE TABLE public.unit_t (n int PRIMARY KEY)");
		test_steps_in_order();
		test_failure();
		test_when_false();
		test_exec();
		test_end_at_start();
		test_cancel();
	}
	fx_stop();
	return done_testing();
}
