/* test_queue.c - claiming and ending jobs, on a real PostgreSQL (the PG*
 * environment scripts/check sets; skipped without) with the real runner
 * and no daemon around it: the test drives the loop itself, so it can stop
 * the world between two events. A NOTIFY wakes the queue long before its
 * poll; every job ends recorded in its row, its checkpoints gone; one
 * tenant runs one job at a time, even with workers free; a failure is
 * retried until its attempts are used up; a job due later is claimed when
 * it is due, also while a job of a busy tenant waits, and a job that cannot
 * be claimed for a reason the database does not show does not make the
 * queue spin; a cancel stops a running job; an end that comes after the job
 * was taken over is not recorded and runs no hook. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "engine_fixture.h"
#include "job.h"
#include "pgconn.h"
#include "queue.h"
#include "unit.h"
#include "util.h"

static struct queue *q;
static char hook_file[512];

static void on_notify(struct pgconn *c, const char *channel,
		      const char *payload, void *arg)
{
	(void)c;
	(void)arg;
	queue_on_notify(q, channel, payload);
}

static void on_idle(struct engine *e)
{
	(void)e;
}

static void on_worker_free(struct engine *e)
{
	(void)e;
	queue_kick(q);
}

static void ignore_result(const struct pgconn_result *r, void *arg)
{
	(void)r;
	(void)arg;
}

/* Enqueue one job; returns its id as text (static). */
static const char *enqueue(const char *kind, const char *tenant,
			   const char *args, int max_attempts)
{
	static char id[32];
	char attempts[16];
	const char *params[4] = { kind, tenant, args, attempts };
	PGresult *res;

	snprintf(attempts, sizeof(attempts), "%d", max_attempts);
	res = PQexecParams(fx_admin,
			   "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, "
			   "max_attempts) VALUES ($1, $2, $3::jsonb, "
			   "$4::integer) RETURNING id",
			   4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	else
		snprintf(id, sizeof(id), "0");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		printf("# enqueue: %s", PQresultErrorMessage(res));
	PQclear(res);
	return id;
}

/* Run the loop until job id is in state (at most seconds). */
static bool wait_state(const char *id, const char *state, int seconds)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT state = '%s' FROM pgtenantd.jobs WHERE id = %s", state,
		 id);
	return fx_wait_true(sql, seconds);
}

static const char *row(const char *id, const char *columns)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM pgtenantd.jobs WHERE id = %s", columns, id);
	return fx_value(sql);
}

static bool hook_ran_for(const char *id)
{
	char line[64];
	bool found = false;
	FILE *f = fopen(hook_file, "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		found = found || strcmp(line, id) == 0;
	}
	if (f != NULL)
		fclose(f);
	return found;
}

static void test_wake_and_end(void)
{
	char id[32];
	int64_t *ids = NULL;
	unsigned count = 99;
	char *cause = NULL;

	snprintf(id, sizeof(id), "%s", enqueue("q_noop", "t-wake", "{}", 3));
	ok(wait_state(id, "succeeded", 5),
	   "wake: a NOTIFY gets the job run long before the 60 s poll");
	is_str(row(id,
		   "attempts || ' ' || (owner IS NULL) || ' ' || "
		   "(lease_until IS NULL) || ' ' || (finished_at IS NOT NULL)"),
	       "1 true true true",
	       "wake: its end is recorded: one attempt, no owner or lease, a finish time");
	for (int i = 0;
	     i < 100 && (queue_finishing(q) > 0 || queue_claim_in_flight(q));
	     i++)
		fx_run_ms(50);
	ok(queue_finishing(q) == 0 && !queue_claim_in_flight(q),
	   "wake: nothing is left being ended or claimed");
	if (ckpt_jobs(fx.ckpt, &ids, &count, &cause))
		is_int(count, 0, "wake: its checkpoints are gone from SQLite");
	else
		ok(false, cause ? cause : "ckpt_jobs failed");
	free(ids);
	free(cause);
	for (int i = 0; i < 40 && !hook_ran_for(id); i++)
		fx_run_ms(50);
	ok(hook_ran_for(id), "wake: hook_on_success ran for it");
}

static void test_many(void)
{
	for (int i = 0; i < 8; i++) {
		char tenant[16];

		snprintf(tenant, sizeof(tenant), "t-many-%d", i);
		enqueue("q_noop", tenant, "{}", 3);
	}
	ok(fx_wait_true(
		   "SELECT count(*) = 8 FROM pgtenantd.jobs "
		   "WHERE tenant_id LIKE 't-many-%' AND state = 'succeeded'",
		   10),
	   "many: 8 jobs on 2 workers all succeed");
}

static void test_one_per_tenant(void)
{
	char a[32], b[32];

	snprintf(a, sizeof(a), "%s",
		 enqueue("q_nap", "t-same", "{\"s\": \"0.5\"}", 3));
	snprintf(b, sizeof(b), "%s",
		 enqueue("q_nap", "t-same", "{\"s\": \"0.5\"}", 3));
	ok(wait_state(a, "succeeded", 10) && wait_state(b, "succeeded", 10),
	   "one per tenant: both jobs of one tenant succeed");
	{
		char sql[256];

		snprintf(
			sql, sizeof(sql),
			"SELECT (SELECT started_at FROM pgtenantd.jobs WHERE id = %s) >= "
			"(SELECT finished_at FROM pgtenantd.jobs WHERE id = %s)",
			b, a);
		is_str(fx_value(sql), "t",
		       "one per tenant: the second started after the first ended, a worker free or not");
	}
}

static void test_retry(void)
{
	char id[32];

	snprintf(id, sizeof(id), "%s", enqueue("q_fail", "t-fail", "{}", 2));
	ok(wait_state(id, "failed", 15),
	   "retry: a failing job fails for good in the end");
	is_str(row(id, "attempts"), "2", "retry: after its 2 attempts");
	if (!ok(strstr(row(id, "last_error"), "division by zero") != NULL,
		"retry: the row says why"))
		printf("# last_error: %s\n", row(id, "last_error"));
}

/* Enqueue one no-op job due in 0.5 s; returns its id as text (static). */
static const char *enqueue_later(const char *tenant)
{
	static char id[32];
	char sql[256];

	snprintf(
		sql, sizeof(sql),
		"INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at) "
		"VALUES ('q_noop', '%s', now() + interval '0.5 s') RETURNING id",
		tenant);
	snprintf(id, sizeof(id), "%s", fx_value(sql));
	return id;
}

static const char napping[] =
	"SELECT EXISTS (SELECT FROM pg_stat_activity "
	"WHERE datname = current_database() AND state = 'active' "
	"AND query LIKE 'SELECT pg_sleep(%')";

static void test_cancel(void)
{
	char id[32];

	snprintf(id, sizeof(id), "%s",
		 enqueue("q_nap", "t-cancel", "{\"s\": \"30\"}", 3));
	ok(fx_wait_true(napping, 10), "cancel: the job's statement runs");
	ok(queue_cancel(q, strtoll(id, NULL, 10)),
	   "cancel: queue_cancel finds the running job");
	ok(wait_state(id, "cancelled", 10),
	   "cancel: the job is cancelled, its statement cut short");
}

/* A tenant running a job has another queued behind it, due but not
 * claimable: the queue neither waits for that one nor spins on it. */
static void test_due_behind_busy_tenant(void)
{
	char nap[32], blocked[32], later[32];
	uint64_t claims;

	snprintf(nap, sizeof(nap), "%s",
		 enqueue("q_nap", "t-busy", "{\"s\": \"30\"}", 1));
	ok(fx_wait_true(napping, 10), "due: the busy tenant's job runs");
	snprintf(blocked, sizeof(blocked), "%s",
		 enqueue("q_noop", "t-busy", "{}", 1));
	snprintf(later, sizeof(later), "%s", enqueue_later("t-later"));
	/* the poll is a minute away and the nap ends in 30 s: only the due
	 * timer can start it within 5 s */
	ok(wait_state(later, "succeeded", 5),
	   "due: a job due in 0.5 s runs then, another tenant's due job waiting");
	claims = fx.metrics.claim_queries;
	fx_run_ms(1000);
	if (!ok(fx.metrics.claim_queries <= claims + 1,
		"due: the job behind the busy tenant does not make it spin"))
		printf("# %llu claims in 1 s\n",
		       (unsigned long long)(fx.metrics.claim_queries - claims));
	is_str(row(blocked, "state"), "queued",
	       "due: the busy tenant's second job waits its turn");
	ok(queue_cancel(q, strtoll(nap, NULL, 10)),
	   "due: the nap is cancelled");
	ok(wait_state(blocked, "succeeded", 10),
	   "due: the busy tenant's second job runs once the first ended");
}

/* A job held back by something claim_jobs sees and next_claimable_in does
 * not (another session holds its tenant's advisory lock): the queue looks
 * again ever later instead of spinning, and claims it once it can. */
static void test_due_backoff(void)
{
	char id[32], later[32];
	uint64_t claims;

	fx_value(
		"SELECT pg_advisory_lock(1886680148, hashtext('tenant_t_locked'))");
	claims = fx.metrics.claim_queries;
	snprintf(id, sizeof(id), "%s", enqueue("q_noop", "t-locked", "{}", 1));
	fx_run_ms(1000);
	is_str(row(id, "state"), "queued",
	       "backoff: the locked tenant's job waits");
	if (!ok(fx.metrics.claim_queries - claims <= 12,
		"backoff: at most a dozen claims in its first second, not a spin"))
		printf("# %llu claims in 1 s\n",
		       (unsigned long long)(fx.metrics.claim_queries - claims));
	ok(fx.metrics.claim_queries - claims >= 3,
	   "backoff: it did look again");
	/* 5 s on, the next look is 5 s away: a job due in 0.5 s must not
	 * wait for it */
	fx_run_ms(4000);
	snprintf(later, sizeof(later), "%s", enqueue_later("t-later-2"));
	ok(wait_state(later, "succeeded", 3),
	   "backoff: a job due in 0.5 s still runs then, not at the next look");
	fx_value(
		"SELECT pg_advisory_unlock(1886680148, hashtext('tenant_t_locked'))");
	ok(wait_state(id, "succeeded", 5),
	   "backoff: the job runs once the lock is released, with no NOTIFY");
}

/* A cancel that reaches the server after its job's statement ended must not
 * stop the next job's statement on the same worker: the dispatcher is busy
 * when the cancel is sent, the job ends meanwhile, and a job claimed ahead
 * is there to take its worker. */
static void test_cancel_after_end(void)
{
	char a[32], b[32], c[32];

	snprintf(c, sizeof(c), "%s",
		 enqueue("q_nap", "t-ce-other", "{\"s\": \"30\"}", 1));
	snprintf(a, sizeof(a), "%s",
		 enqueue("q_nap", "t-ce-a", "{\"s\": \"0.3\"}", 1));
	ok(wait_state(a, "running", 10) && wait_state(c, "running", 10),
	   "cancel after end: both workers run a job");
	snprintf(b, sizeof(b), "%s",
		 enqueue("q_nap", "t-ce-b", "{\"s\": \"1\"}", 1));
	ok(wait_state(b, "running", 5),
	   "cancel after end: a third job is claimed ahead");
	pgconn_query(fx.dispatcher, "SELECT pg_sleep(0.8)", 0, NULL,
		     ignore_result, NULL);
	ok(queue_cancel(q, strtoll(a, NULL, 10)),
	   "cancel after end: the first job's cancel is sent behind a busy dispatcher");
	ok(wait_state(b, "succeeded", 10),
	   "cancel after end: the job that took its worker is not cancelled by it");
	is_str(row(b, "attempts"), "1", "cancel after end: ... in one attempt");
	ok(queue_cancel(q, strtoll(c, NULL, 10)) &&
		   wait_state(c, "cancelled", 10),
	   "cancel after end: the other job is cancelled");
}

/* Workers holding job id. */
static int workers_with(const char *id)
{
	int n = 0;

	for (unsigned i = 0; i < fx.worker_count; i++)
		if (fx.workers[i].job != NULL &&
		    fx.workers[i].job->id == strtoll(id, NULL, 10))
			n++;
	return n;
}

/* The job's lease is lost (here: handed back by hand, as rescue_expired
 * does) while its program, which ignores SIGTERM, goes on. This daemon
 * claims it again (its session holds the tenant's lock already): the new
 * run must wait for the old one to stop, not run beside it. */
static void test_lost_reclaimed(void)
{
	char id[32], sql[256];

	snprintf(id, sizeof(id), "%s",
		 enqueue("q_stubborn", "t-lost", "{}", 3));
	ok(wait_state(id, "running", 10), "lost: the job runs");
	fx_run_ms(300);
	snprintf(sql, sizeof(sql),
		 "UPDATE pgtenantd.jobs SET state = 'queued', owner = NULL, "
		 "lease_until = NULL, run_at = now() WHERE id = %s",
		 id);
	fx_value(sql);
	/* the heartbeat finds it gone; the next claim takes it again */
	snprintf(sql, sizeof(sql), "NOTIFY pgtenantd, 'cancel:%s'", id);
	fx_value(sql);
	fx_run_ms(300);
	fx_value("NOTIFY pgtenantd, 'wake'");
	for (int i = 0; i < 20 && strcmp(row(id, "state"), "running") != 0; i++)
		fx_run_ms(50);
	is_str(row(id, "state || ' ' || attempts"), "running 2",
	       "lost: claimed again while its first run's program goes on");
	fx_run_ms(500);
	ok(workers_with(id) <= 1,
	   "lost: the second run does not start beside the first");
	ok(wait_state(id, "succeeded", 10),
	   "lost: it succeeds once the first run has stopped");
	is_int(fx.metrics.jobs_lost, 1,
	       "lost: the first run's end was abandoned, not recorded over the second's");
}

/* Recording a job's end fails once (a trigger raises, as a deadlock or a
 * statement timeout would): the end is sent again, not left to the lease,
 * after which the job would run again. */
static void test_end_retried(void)
{
	char id[32];

	fx_value("CREATE SEQUENCE public.end_fail_seq;"
		 "CREATE FUNCTION public.end_fail_once() RETURNS trigger "
		 "LANGUAGE plpgsql AS $$ BEGIN "
		 "IF nextval('public.end_fail_seq') = 1 THEN "
		 "RAISE EXCEPTION 'injected: recording this end fails once'; "
		 "END IF; RETURN NEW; END $$;"
		 "CREATE TRIGGER end_fail_once BEFORE UPDATE ON pgtenantd.jobs "
		 "FOR EACH ROW WHEN (NEW.state = 'succeeded' "
		 "AND NEW.tenant_id = 't-endfail') "
		 "EXECUTE FUNCTION public.end_fail_once()");
	snprintf(id, sizeof(id), "%s", enqueue("q_noop", "t-endfail", "{}", 1));
	ok(wait_state(id, "succeeded", 5),
	   "end retried: a job end whose recording failed is recorded when sent again");
	is_str(row(id,
		   "attempts || ' ' || (SELECT last_value FROM public.end_fail_seq)"),
	       "1 2", "end retried: in one attempt, on the second try");
	fx_value("DROP TRIGGER end_fail_once ON pgtenantd.jobs");
}

/* The world stops between two events: the job is taken over while the
 * loop does not run, and its last statement ends meanwhile. */
static void test_late_end(void)
{
	char id[32], next[32], sql[256];

	snprintf(id, sizeof(id), "%s",
		 enqueue("q_nap_autocommit", "t-late", "{}", 3));
	ok(fx_wait_true(napping, 10), "late end: the job's statement runs");
	snprintf(sql, sizeof(sql),
		 "UPDATE pgtenantd.jobs SET owner = 'another-daemon', "
		 "lease_until = now() + interval '1 hour' WHERE id = %s",
		 id);
	fx_value(sql);
	for (int i = 0; i < 100 && strcmp(fx_value(napping), "t") == 0; i++)
		usleep(50000);
	is_str(fx_value(napping), "f",
	       "late end: its statement ended while the loop stood still");
	for (int i = 0; i < 100 && (fx.metrics.jobs_ended_late == 0 ||
				    queue_finishing(q) > 0);
	     i++)
		fx_run_ms(50);
	ok(queue_finishing(q) == 0, "late end: the end was sent and answered");
	is_str(row(id, "state || ' ' || owner"), "running another-daemon",
	       "late end: the row is the other daemon's, still running");
	is_int(fx.metrics.jobs_ended_late, 1,
	       "late end: counted (pgtenantd_jobs_ended_late_total)");
	snprintf(next, sizeof(next), "%s",
		 enqueue("q_noop", "t-after-late", "{}", 3));
	ok(wait_state(next, "succeeded", 5), "late end: the next job runs");
	for (int i = 0; i < 40 && !hook_ran_for(next); i++)
		fx_run_ms(50);
	ok(hook_ran_for(next), "late end: the next job's hook ran");
	ok(!hook_ran_for(id),
	   "late end: no hook ran for the end that came late");
}

/* As the daemon does: the queue learns of the dispatcher's reconnects. */
static void on_dispatcher(bool up)
{
	queue_on_connected(q, up);
	if (up)
		queue_schema_ready(q); /* the schema is in place already */
}

/* An end_and_claim committed, and its answer was lost with the connection:
 * the row is running and this daemon's, which never started it. After the
 * reconnect it is handed back, its attempt given back, and runs (on its
 * one and only attempt, where the lease's rescue would have failed it),
 * while a job that was running on a worker through the reconnect goes on
 * undisturbed. */
static void test_lost_answer(void)
{
	char orphan[32], running[32], sql[512];
	uint64_t late = fx.metrics.jobs_ended_late, lost = fx.metrics.jobs_lost;

	snprintf(running, sizeof(running), "%s",
		 enqueue("q_nap", "t-through", "{\"s\": \"2\"}", 1));
	ok(fx_wait_true(napping, 10), "lost answer: a job is running");
	/* the loop stands still from here to the terminate: the queue sees
	 * the row only as the lost answer left it */
	snprintf(orphan, sizeof(orphan), "%s",
		 enqueue("q_noop", "t-orphan", "{}", 1));
	snprintf(sql, sizeof(sql),
		 "UPDATE pgtenantd.jobs SET state = 'running', owner = '%s', "
		 "attempts = 1, lease_until = now() + interval '1 hour' "
		 "WHERE id = %s",
		 fx.owner, orphan);
	fx_value(sql);
	fx_on_dispatcher = on_dispatcher;
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)",
		 pgconn_backend_pid(fx.dispatcher));
	is_str(fx_value(sql), "t",
	       "lost answer: the dispatcher's session ends");
	ok(wait_state(orphan, "succeeded", 10),
	   "lost answer: the job claimed by the lost answer runs after the reconnect, not after its lease");
	is_str(row(orphan, "attempts"), "1",
	       "lost answer: in one attempt, the lost claim's given back");
	ok(wait_state(running, "succeeded", 10),
	   "lost answer: the job running through the reconnect succeeds");
	is_str(row(running, "attempts"), "1",
	       "lost answer: ... in its first attempt");
	/* handed back by mistake, it would have been claimed again, its
	 * first run abandoned as lost and a second run started after it */
	fx_run_ms(500);
	for (int i = 0;
	     i < 100 && (workers_with(running) > 0 || queue_finishing(q) > 0);
	     i++)
		fx_run_ms(50);
	is_int((int)(fx.metrics.jobs_lost - lost) +
		       (int)(fx.metrics.jobs_ended_late - late),
	       0, "lost answer: ... never handed back and run a second time");
	fx_on_dispatcher = NULL;
}

/* A job of tenant runs, and the test's session (fx_admin) takes its row's
 * lock in a transaction it leaves open: the request with the job's end
 * waits for it (the loop runs until the server shows it waiting), its
 * answer due once the test commits. id gets the job's
 * id (32 bytes); what names the test in the checks. */
static void end_held_by_row_lock(const char *tenant, char *id, const char *what)
{
	char sql[256], name[128];

	snprintf(id, 32, "%s", enqueue("q_nap_autocommit", tenant, "{}", 3));
	snprintf(name, sizeof(name), "%s: the job runs", what);
	ok(fx_wait_true(napping, 10), name);
	snprintf(sql, sizeof(sql),
		 "BEGIN; SELECT FROM pgtenantd.jobs WHERE id = %s FOR UPDATE",
		 id);
	fx_value(sql);
	/* the request in flight must be the one with the end: one sent
	 * before the job ended has no end and is not held (seen under load) */
	snprintf(name, sizeof(name), "%s: its end is sent, held by a row lock",
		 what);
	ok(fx_wait_true("SELECT EXISTS (SELECT FROM pg_stat_activity "
			"WHERE wait_event_type = 'Lock' "
			"AND query LIKE '%end_and_claim%') "
			"FROM pg_stat_clear_snapshot()",
			10) &&
		   queue_finishing(q) > 0 && queue_claim_in_flight(q),
	   name);
}

/* The answer to a request that recorded a job's end is lost with the
 * connection: sent again after the reconnect, the end finds its row saying
 * so already and counts as recorded (its hook runs), not as late. */
static void test_lost_end_answer(void)
{
	char id[32];
	uint64_t late = fx.metrics.jobs_ended_late;

	end_held_by_row_lock("t-end-answer", id, "lost end answer");
	/* the loop stands still: the answer stays unread */
	fx_value("COMMIT");
	for (int i = 0; i < 100 && strcmp(row(id, "state"), "succeeded") != 0;
	     i++)
		usleep(50000);
	is_str(row(id, "state || ' ' || attempts"), "succeeded 1",
	       "lost end answer: the server recorded the end");
	fx_on_dispatcher = on_dispatcher;
	pgconn_reset(fx.dispatcher, "unit test: the answer is lost");
	for (int i = 0; i < 200 && queue_finishing(q) > 0; i++)
		fx_run_ms(50);
	ok(queue_finishing(q) == 0,
	   "lost end answer: the end, sent again, is answered");
	is_int((int)(fx.metrics.jobs_ended_late - late), 0,
	       "lost end answer: ... not called late");
	for (int i = 0; i < 40 && !hook_ran_for(id); i++)
		fx_run_ms(50);
	ok(hook_ran_for(id), "lost end answer: ... and its hook ran");
	fx_on_dispatcher = NULL;
}

/* Sockets of this process kept open (by a second descriptor) past their
 * close: to the server, a connection the client dropped stays as silent
 * as one cut by the network (client_connection_check_interval sees a
 * closed socket at once). */
static int held_fds[64];
static unsigned held_count;

static void hold_sockets(void)
{
	int fds[64];
	unsigned n = 0;
	struct stat st;

	for (int fd = 3; fd < 1024 && n < 64; fd++)
		if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
			fds[n++] = fd;
	for (unsigned i = 0; i < n; i++)
		held_fds[held_count++] = dup(fds[i]);
}

static void release_sockets(void)
{
	for (unsigned i = 0; i < held_count; i++)
		close(held_fds[i]);
	held_count = 0;
}

/* The same, with the request still waiting for the row lock when the
 * connection goes, and the server not told (a network cut): it still runs
 * the old session, which could record the end (or claim jobs) after the
 * reconnect looked. The queue ends that session first; the end, sent
 * again, is then recorded as this daemon's. */
static void test_lost_answer_old_session(void)
{
	char id[32], sql[256];
	int old_pid;
	uint64_t late = fx.metrics.jobs_ended_late;

	end_held_by_row_lock("t-old-session", id, "old session");
	old_pid = pgconn_backend_pid(fx.dispatcher);
	fx_on_dispatcher = on_dispatcher;
	hold_sockets();
	pgconn_reset(fx.dispatcher, "unit test: the connection is lost");
	snprintf(sql, sizeof(sql),
		 /* this session is in a transaction: read the activity
		  * anew each time */
		 "SELECT NOT EXISTS (SELECT FROM pg_stat_activity "
		 "WHERE pid = %d) FROM pg_stat_clear_snapshot()",
		 old_pid);
	ok(fx_wait_true(sql, 10),
	   "old session: ended at the reconnect while it waits for the lock");
	release_sockets();
	fx_value("COMMIT");
	for (int i = 0; i < 200 && queue_finishing(q) > 0; i++)
		fx_run_ms(50);
	is_str(row(id, "state || ' ' || attempts"), "succeeded 1",
	       "old session: the end, sent again, is recorded");
	is_int((int)(fx.metrics.jobs_ended_late - late), 0,
	       "old session: ... not called late");
	for (int i = 0; i < 40 && !hook_ran_for(id); i++)
		fx_run_ms(50);
	ok(hook_ran_for(id), "old session: ... and its hook ran");
	fx_on_dispatcher = NULL;
}

static void write_kinds(void)
{
	fx_kind("q_noop", "description: unit test - nothing\n"
			  "steps:\n"
			  "  - name: one\n"
			  "    sql: SELECT 1\n");
	fx_kind("q_nap", "description: unit test - a nap\n"
			 "args:\n"
			 "  - name: s\n"
			 "steps:\n"
			 "  - name: nap\n"
			 "    sql: SELECT pg_sleep(:'s'::float8)\n");
	fx_kind("q_nap_autocommit",
		"description: unit test - a nap outside a transaction\n"
		"steps:\n"
		"  - name: nap\n"
		"    transaction: false\n"
		"    sql: SELECT pg_sleep(1)\n");
	fx_kind("q_stubborn",
		"description: unit test - a program that outlives a SIGTERM\n"
		"steps:\n"
		"  - name: stubborn\n"
		"    exec: [\"sh\", \"-c\", \"trap '' TERM; sleep 2\"]\n");
	fx_kind("q_fail", "description: unit test - fails\n"
			  "steps:\n"
			  "  - name: divide\n"
			  "    sql: SELECT 1 / 0\n");
}

int main(void)
{
	if (getenv("PGHOST") == NULL) {
		printf("1..0 # SKIP no PostgreSQL (PGHOST unset)\n");
		return 0;
	}
	write_kinds();
	/* no poll and no heartbeat during the test: a NOTIFY must wake the
	 * queue, and nothing but the late end's own answer may tell the
	 * queue that the job was taken over */
	if (ok(fx_start("queue", 2,
			"poll_interval: 60s\n"
			"lease: 120s\n"
			"heartbeat_interval: 60s\n"
			/* a retry is due 0.1 s after the failure: the due
			 * timer, not the poll, must claim it */
			"retry_base_delay: 100ms\n"
			"retry_max_delay: 100ms\n"
			"hook_on_success: [\"sh\", \"-c\", "
			"\"echo $PGTENANTD_JOB_ID >> $UNIT_HOOK_FILE\"]\n",
			on_notify, NULL),
	       "a database of its own, the schema and the kinds are set up")) {
		snprintf(hook_file, sizeof(hook_file), "%s/hooks", fx_dir());
		setenv("UNIT_HOOK_FILE", hook_file, 1);
		fx.hooks.idle = on_idle;
		fx.hooks.worker_free = on_worker_free;
		q = queue_new(&fx);
		queue_on_connected(q, true);
		queue_schema_ready(q);
		/* its first claim finds nothing: from here on only a NOTIFY
		 * (or the poll, a minute away) makes it look again */
		fx_run_ms(500);
		test_wake_and_end();
		test_many();
		test_one_per_tenant();
		test_retry();
		test_due_behind_busy_tenant();
		test_due_backoff();
		test_cancel();
		test_cancel_after_end();
		test_lost_reclaimed();
		test_end_retried();
		test_late_end();
		test_lost_answer();
		test_lost_end_answer();
		test_lost_answer_old_session();
		fx_disconnect(); /* its pending queries call back into q */
		queue_free(q);
	}
	fx_stop();
	return done_testing();
}
