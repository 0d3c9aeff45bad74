/* test_sched.c - the scheduler on a real PostgreSQL (the PG* environment
 * scripts/check sets; skipped without), with no daemon and a fake clock
 * that runs an hour in 2 s: two schedulers on one database fire each due
 * slot of an hourly schedule exactly once, one job per listed tenant, none
 * for the slot before they started, and no second job for a tenant whose
 * last one is still queued; the list shows the last and the next fire. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "engine_fixture.h"
#include "sched.h"
#include "unit.h"
#include "util.h"

/* 2024-03-24 12:00:30 UTC on the fake clock, which runs 1800 times as fast
 * as the real one: the 13:00 slot comes about 2 real seconds later, and
 * every 2 s the next. */
#define FAKE_START 1711281630
#define FAKE_SPEED 1800

static struct {
	bool done;
	json_t *list;
	char error[256];
} listed;

static void on_list(json_t *schedules, const char *error, void *arg)
{
	(void)arg;
	listed.done = true;
	listed.list = json_incref(schedules);
	snprintf(listed.error, sizeof(listed.error), "%s", error ? error : "");
}

static const char *slots_sql =
	"SELECT coalesce(string_agg(to_char(slot AT TIME ZONE 'UTC', 'HH24:MI')"
	" || '/' || jobs, ',' ORDER BY slot), '') FROM pgtenantd.schedule_slots "
	"WHERE schedule = 'hourly' AND slot <= '2024-03-24 15:00:00+00'";

int main(void)
{
	struct sched *s1, *s2;
	char clock[64], fired[32];
	double started, asked, answered, now;

	if (getenv("PGHOST") == NULL) {
		printf("1..0 # SKIP no PostgreSQL (PGHOST unset)\n");
		return 0;
	}
	setenv("TZ", "UTC", 1);
	tzset();
	fx_kind("s_noop", "description: unit test - nothing\n"
			  "steps:\n"
			  "  - name: one\n"
			  "    sql: SELECT 1\n");
	if (!ok(fx_start("sched", 1,
			 "schedules:\n"
			 "  - name: hourly\n"
			 "    cron: \"0 * * * *\"\n"
			 "    job: s_noop\n"
			 "    tenants: [t-a, t-b]\n",
			 NULL, NULL),
		"a database of its own, the schema and the kinds are set up")) {
		fx_stop();
		return done_testing();
	}
	started = wall_seconds();
	snprintf(clock, sizeof(clock), "%d %d %.3f", FAKE_START, FAKE_SPEED,
		 started);
	setenv(SCHED_FAKE_CLOCK_ENV, clock, 1);
	fx.ready = true; /* the schema is in place: the queue would say so */
	s1 = sched_new(&fx);
	s2 = sched_new(&fx);
	/* bounded by the real time around the question, however long
	 * sched_new took on a loaded machine (a fixed 600 fake seconds was
	 * a third of a real second, and failed once) */
	asked = wall_seconds();
	now = sched_now();
	answered = wall_seconds();
	ok(now >= FAKE_START + (asked - started) * FAKE_SPEED - 3 &&
		   now <= FAKE_START + (answered - started) * FAKE_SPEED + 3,
	   "the scheduler's clock is the fake one");

	/* 13:00 and 14:00 come about 2 and 4 real seconds after the start;
	 * no queue runs here, so 13:00's jobs are still queued at 14:00 */
	ok(fx_wait_true("SELECT count(*) = 2 FROM pgtenantd.schedule_slots "
			"WHERE schedule = 'hourly' "
			"AND slot <= '2024-03-24 14:00:00+00'",
			20),
	   "two schedulers: the 13:00 and 14:00 slots are fired");
	is_str(fx_value(slots_sql), "13:00/2,14:00/0",
	       "... each once: 13:00 with a job for each of its 2 tenants, "
	       "14:00 with none, as theirs are still queued");
	fx_value("UPDATE pgtenantd.jobs SET state = 'succeeded', "
		 "finished_at = now() WHERE kind = 's_noop'");
	ok(fx_wait_true("SELECT count(*) = 3 FROM pgtenantd.schedule_slots "
			"WHERE schedule = 'hourly' "
			"AND slot <= '2024-03-24 15:00:00+00'",
			20),
	   "the 15:00 slot is fired");
	is_str(fx_value(slots_sql), "13:00/2,14:00/0,15:00/2",
	       "... with a job for each tenant again, their last ones done");
	snprintf(fired, sizeof(fired), "%s",
		 fx_value("SELECT sum(jobs) FROM pgtenantd.schedule_slots "
			  "WHERE schedule = 'hourly'"));
	is_str(fx_value("SELECT count(*) FROM pgtenantd.jobs "
			"WHERE kind = 's_noop'"),
	       fired,
	       "as many jobs as the slots recorded, whichever scheduler fired them");
	is_str(fx_value("SELECT count(*) FROM pgtenantd.schedule_slots "
			"WHERE slot < '2024-03-24 13:00:00+00'"),
	       "0", "no slot from before the schedulers started");

	sched_list(s1, on_list, NULL);
	fx_loop_until(&listed.done, 10);
	if (ok(listed.list != NULL && json_array_size(listed.list) == 1,
	       "the list has the one schedule")) {
		json_t *h = json_array_get(listed.list, 0);
		const char *name =
			json_string_value(json_object_get(h, "name"));
		json_t *last = json_object_get(h, "last_fire");
		json_t *next = json_object_get(h, "next_fire");

		is_str(name, "hourly", "the list names it");
		ok(last != NULL && !json_is_null(last) && next != NULL &&
			   !json_is_null(next),
		   "the list shows its last and next fire");
	} else {
		printf("# list error: %s\n", listed.error);
	}
	json_decref(listed.list);

	fx_disconnect(); /* their pending queries call back into them */
	sched_free(s1);
	sched_free(s2);
	fx_stop();
	return done_testing();
}
