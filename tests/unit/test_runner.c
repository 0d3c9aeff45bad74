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
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "ckpt.h"
#include "config.h"
#include "engine.h"
#include "job.h"
#include "jobdef.h"
#include "runner.h"
#include "setup.h"
#include "unit.h"
#include "util.h"

#define OWNER "unit-runner:1"

static struct engine e;
static struct worker worker;
static PGconn *admin; /* the test's own synchronous session */
static char dir[] = "/tmp/pgt-unit-runner.XXXXXX";
static char dbname[64];
static unsigned connected;
static bool set_up, set_up_ok;

/* What the runner reported. */
static struct {
	bool done;
	bool inside_start; /* reported while runner_start had not returned */
	enum job_outcome outcome;
	char error[1024];
} end;
static bool in_start;

static void on_state(struct pgconn *c, bool up, void *arg)
{
	(void)c;
	(void)arg;
	if (up)
		connected++;
	event_base_loopbreak(e.base);
}

static void on_setup(bool ok_, const char *error, void *arg)
{
	(void)arg;
	set_up = true;
	set_up_ok = ok_;
	if (!ok_)
		printf("# setup: %s\n", error ? error : "?");
	event_base_loopbreak(e.base);
}

static void on_end(struct job *job, enum job_outcome outcome, const char *error,
		   void *arg)
{
	(void)job;
	(void)arg;
	end.done = true;
	end.inside_start = in_start;
	end.outcome = outcome;
	snprintf(end.error, sizeof(end.error), "%s", error ? error : "");
	event_base_loopbreak(e.base);
}

/* Run the loop until cond is true (at most 15 s). */
static void loop_until(const bool *cond)
{
	struct timeval tv = { 15, 0 };

	event_base_loopexit(e.base, &tv);
	while (!*cond) {
		if (event_base_dispatch(e.base) != 0)
			break;
		if (!*cond && event_base_got_exit(e.base))
			break;
	}
}

/* The first value of sql on the test's session, or "ERROR: ...". */
static char *value(const char *sql)
{
	static char out[1024];
	PGresult *res = PQexec(admin, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK)
		snprintf(out, sizeof(out), "ERROR: %s",
			 PQresultErrorMessage(res));
	else if (PQntuples(res) > 0)
		snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
	else
		out[0] = '\0';
	PQclear(res);
	return out;
}

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

/* Enqueue a job of kind (args a JSON object), claim it as OWNER and start
 * it on the worker; returns the job (NULL if the claim failed). */
static struct job *start(const char *kind, const char *args)
{
	const char *params[2] = { kind, args };
	char *cause = NULL;
	struct job *job;
	PGresult *res;

	res = PQexecParams(admin,
			   /* a tenant per kind: the test records no ends,
			    * and a tenant with a running job is not claimed */
			   "INSERT INTO pgtenantd.jobs (kind, tenant_id, args) "
			   "VALUES ($1, $1, $2::jsonb)",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		printf("# enqueue %s: %s", kind, PQresultErrorMessage(res));
	PQclear(res);
	res = PQexecParams(admin,
			   "SELECT * FROM pgtenantd.claim_jobs('" OWNER
			   "', 1, interval '1 minute', ARRAY[$1::text])",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		printf("# claim %s: %s\n", kind, PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	job = job_from_row(&e, res, 0, &cause);
	PQclear(res);
	if (job == NULL) {
		printf("# job_from_row: %s\n", cause);
		free(cause);
		return NULL;
	}
	memset(&end, 0, sizeof(end));
	in_start = true;
	runner_start(&worker, job, on_end, NULL);
	in_start = false;
	return job;
}

/* Whether SQLite holds step step_index of job as done. */
static bool checkpoint_done(const struct job *job, int step_index)
{
	struct ckpt_step cs;
	bool found = false, done;
	char *cause = NULL;

	if (!ckpt_load(e.ckpt, job->id, step_index, &cs, &found, &cause)) {
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
	value("SELECT pg_advisory_unlock_all()");
	job_free(job);
	worker.job = NULL;
}

static void test_steps_in_order(void)
{
	struct job *job = start("unit_steps", "{\"n\": \"7\"}");
	char sql[256], *passed;

	if (!ok(job != NULL, "steps: claimed and started"))
		return;
	ok(!end.done, "steps: runner_start returns before the job ends");
	loop_until(&end.done);
	ok(end.done && !end.inside_start,
	   "steps: the end is reported from the loop");
	is_int(end.outcome, JOB_SUCCEEDED, "steps: succeeded");
	is_str(value("SELECT string_agg(n::text, ',' ORDER BY n) FROM public.unit_t"),
	       "7,8", "steps: each step ran once, in order, with its args");
	snprintf(
		sql, sizeof(sql),
		"SELECT step_index || ' ' || (progress->>'percent')::float8 || ' ' || "
		"coalesce(result->>'doubled', '-') FROM pgtenantd.jobs "
		"WHERE id = %lld",
		(long long)job->id);
	/* the last step ran in a transaction: its progress is in the row */
	is_str(value(sql), "3 100 14",
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
	struct job *job = start("unit_noprog", "{}");

	if (!ok(job != NULL, "no program: claimed and started"))
		return;
	loop_until(&end.done);
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
	struct job *job = start("unit_fail", "{}");

	if (!ok(job != NULL, "failure: claimed and started"))
		return;
	loop_until(&end.done);
	is_int(end.outcome, JOB_FAILED_RETRY,
	       "failure: a failing statement fails the attempt (retried)");
	contains(end.error, "step \"divide\"",
		 "failure: the error names the step");
	contains(end.error, "division by zero",
		 "failure: and carries the server's message");
	is_str(value("SELECT count(*) FROM public.unit_t WHERE n = 99"), "0",
	       "failure: the step's transaction was rolled back");
	finished(job);
}

static void test_when_false(void)
{
	struct job *job = start("unit_when", "{\"go\": \"false\"}");
	char *passed;

	if (!ok(job != NULL, "when: claimed and started"))
		return;
	loop_until(&end.done);
	is_int(end.outcome, JOB_SUCCEEDED, "when: succeeded");
	is_str(value("SELECT count(*) FROM public.unit_t WHERE n = 42"), "0",
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
	struct job *job = start("unit_exec", "{}");

	if (!ok(job != NULL, "exec: claimed and started"))
		return;
	loop_until(&end.done);
	is_int(end.outcome, JOB_SUCCEEDED, "exec: succeeded");
	is_str(value("SELECT count(*) FROM public.unit_t WHERE n = 5"), "1",
	       "exec: the step before the program ran");
	ok(job->progress_at_end,
	   "exec: the last step's progress is left to the job's end");
	finished(job);

	job = start("unit_exec_fail", "{}");
	if (!ok(job != NULL, "exec failure: claimed and started"))
		return;
	loop_until(&end.done);
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
	timer = evtimer_new(e.base, on_cancel_timer, job);
	timer_add_ms(timer, 500);
	loop_until(&end.done);
	is_int(end.outcome, JOB_CANCELLED, "cancel: the job is cancelled");
	ok(mono_ms() - t0 < 8000,
	   "cancel: the statement in flight was interrupted (not slept out)");
	event_free(timer);
	finished(job);
}

static void write_kinds(void)
{
	write_file("jobs/unit_steps.yaml",
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
	write_file("jobs/unit_fail.yaml",
		   "description: unit test - fails\n"
		   "steps:\n"
		   "  - name: divide\n"
		   "    sql: |\n"
		   "      INSERT INTO public.unit_t VALUES (99);\n"
		   "      SELECT 1 / 0\n");
	write_file("jobs/unit_when.yaml",
		   "description: unit test - a conditional step\n"
		   "args:\n"
		   "  - name: go\n"
		   "steps:\n"
		   "  - name: maybe\n"
		   "    when: SELECT :'go'::boolean\n"
		   "    sql: INSERT INTO public.unit_t VALUES (42)\n"
		   "  - name: after\n"
		   "    sql: SELECT 1\n");
	write_file("jobs/unit_exec.yaml",
		   "description: unit test - a program as the last step\n"
		   "steps:\n"
		   "  - name: before\n"
		   "    sql: INSERT INTO public.unit_t VALUES (5)\n"
		   "  - name: run\n"
		   "    exec: [\"sh\", \"-c\", \"exit 0\"]\n");
	write_file("jobs/unit_exec_fail.yaml",
		   "description: unit test - a program that fails\n"
		   "steps:\n"
		   "  - name: run\n"
		   "    exec: [\"sh\", \"-c\", \"echo oops >&2; exit 3\"]\n");
	write_file("jobs/unit_noprog.yaml",
		   "description: unit test - a program that does not exist\n"
		   "steps:\n"
		   "  - name: run\n"
		   "    exec: [\"/nonexistent/no-such-program\"]\n");
	write_file("jobs/unit_sleep.yaml",
		   "description: unit test - one long statement\n"
		   "steps:\n"
		   "  - name: sleep\n"
		   "    sql: SELECT pg_sleep(30)\n");
}

/* A database of its own, the config, the kinds and the engine. */
static bool set_up_engine(void)
{
	char path[256], conf[1024], *cause = NULL;

	snprintf(dbname, sizeof(dbname), "pgt_unit_runner_%d", (int)getpid());
	admin = PQconnectdb("");
	if (PQstatus(admin) != CONNECTION_OK) {
		printf("# %s", PQerrorMessage(admin));
		return false;
	}
	snprintf(conf, sizeof(conf), "CREATE DATABASE %s", dbname);
	if (strncmp(value(conf), "ERROR", 5) == 0) {
		printf("# %s\n", value(conf));
		return false;
	}
	PQfinish(admin);
	snprintf(conf, sizeof(conf), "dbname=%s", dbname);
	admin = PQconnectdb(conf);
	if (PQstatus(admin) != CONNECTION_OK)
		return false;
	value("CREATE TABLE public.unit_t (n int PRIMARY KEY)");

	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(path, sizeof(path), "%s/jobs", dir);
	mkdir(path, 0755);
	write_kinds();
	snprintf(conf, sizeof(conf),
		 "database: \"dbname=%s\"\n"
		 "state_dir: %s/state\n"
		 "control_socket: %s/ctl.sock\n"
		 "jobs_dir: %s/jobs\n"
		 "backup_dir: %s/backups\n"
		 "workers: 1\n"
		 "log_level: warning\n",
		 dbname, dir, dir, dir, dir);
	write_file("a.yaml", conf);
	snprintf(path, sizeof(path), "%s/state", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	e.config = config_load(path, &cause);
	if (e.config == NULL) {
		printf("# config: %s\n", cause);
		return false;
	}
	e.jobdefs = jobdefs_load_dir(e.config->jobs_dir,
				     e.config->batch_target_ms, &cause);
	if (e.jobdefs == NULL) {
		printf("# kinds: %s\n", cause);
		return false;
	}
	e.ckpt = ckpt_open(e.config->state_dir, &cause);
	if (e.ckpt == NULL) {
		printf("# ckpt: %s\n", cause);
		return false;
	}
	e.base = event_base_new();
	snprintf(e.owner, sizeof(e.owner), "%s", OWNER);
	e.workers = &worker;
	e.worker_count = 1;
	worker.engine = &e;
	worker.index = 1;
	e.dispatcher = engine_connect(&e, "dispatcher", on_state, NULL, NULL);
	worker.conn = engine_connect(&e, "worker 1", on_state, NULL, NULL);
	pgconn_start(e.dispatcher);
	pgconn_start(worker.conn);
	while (connected < 2) {
		struct timeval tv = { 15, 0 };
		unsigned before = connected;

		event_base_loopexit(e.base, &tv);
		event_base_dispatch(e.base);
		if (connected == before)
			return false;
	}
	setup_start(&e, on_setup, NULL);
	loop_until(&set_up);
	return set_up_ok;
}

int main(void)
{
	char sql[128];

	if (getenv("PGHOST") == NULL) {
		printf("1..0 # SKIP no PostgreSQL (PGHOST unset)\n");
		return 0;
	}
	if (!ok(set_up_engine(),
		"a database of its own, the schema and the kinds are set up"))
		return done_testing();
	/* the kinds are published by the setup's later queries */
	value("SELECT pg_sleep(0.2)");
	test_steps_in_order();
	test_failure();
	test_when_false();
	test_exec();
	test_end_at_start();
	test_cancel();

	pgconn_free(worker.conn);
	pgconn_free(e.dispatcher);
	ckpt_close(e.ckpt);
	jobdefs_unref(e.jobdefs);
	config_free(e.config);
	event_base_free(e.base);
	PQfinish(admin);
	admin = PQconnectdb("");
	snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", dbname);
	value(sql);
	PQfinish(admin);
	snprintf(sql, sizeof(sql), "rm -rf '%s'", dir);
	if (system(sql) != 0)
		printf("# could not remove %s\n", dir);
	return done_testing();
}
