/* sched.c - the scheduler: fires the configured schedules on the daemon's
 * loop through pgtenantd.fire_slot(), one slot at a time, on a connection
 * of its own so that a slow tenants query never delays claims or
 * heartbeats.
 *
 * Each schedule keeps a cursor (the last slot it is done with) and the next
 * slot to fire. Whenever the scheduler (re)connects it reads the newest
 * fired slot of every schedule from pgtenantd.schedule_slots; the slots
 * between that and now were missed by every daemon, and catch_up decides:
 * "latest" fires the newest of them once, "none" skips them, unless a
 * daemon fired a slot of the schedule less than a lease ago (by the
 * database's clock): then a daemon is running, only behind, and the
 * slots since are fired in order. While connected, every slot that comes
 * due is fired in order. */
#include "sched.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "config.h"
#include "cron.h"
#include "engine.h"
#include "jobdef.h"
#include "log.h"
#include "pgconn.h"
#include "slots.h"
#include "util.h"

#define SCHED_RETRY_MS 200	 /* waiting for the schema */
#define SCHED_MAX_SLEEP_MS 30000 /* re-check the clock at least this often */
#define SCHED_INACTIVE_DAYS 90

struct sched_entry {
	char *name; /* identity across reloads: name, cron, job */
	char *cron_text;
	char *job;
	unsigned index; /* in e->config->schedules */
	struct cron cron;
	bool ready;	    /* cursor and next are known */
	int64_t cursor;	    /* the last slot done with, or the start */
	int64_t next;	    /* the next slot to fire; 0: never */
	bool next_catch_up; /* next is the newest missed slot */
	int64_t last_fired; /* newest slot fired by any daemon, 0: none */
	bool fired_lately;  /* ... less than a lease ago (real time) */
	int last_jobs;	    /* jobs of the last slot fired here, -1 */
	unsigned fired;	    /* slots this daemon fired */
	unsigned taken;	    /* slots another daemon had fired first */
	char *last_error;
};

struct sched {
	struct engine *e;
	struct pgconn *conn; /* NULL until there are schedules */
	struct event *timer;
	struct sched_entry *entries;
	unsigned count;
	bool connected;
	bool need_init; /* read schedule_slots before firing */
	bool busy;	/* a query of the scheduler in flight */
	bool closing;

	char *fire_name; /* the slot in flight */
	int64_t fire_slot;
	bool fire_catch_up;
};

/* ------------------------------------------------------------ clock */

static bool clock_read;
static bool clock_fake;
static double clock_start, clock_speed = 1, clock_real;

/* Read PGTENANTD_FAKE_CLOCK once. */
static void sched_clock_init(void)
{
	const char *env = getenv(SCHED_FAKE_CLOCK_ENV);
	double start, speed, real;
	int n;

	clock_read = true;
	if (env == NULL || *env == '\0')
		return;
	real = wall_seconds();
	n = sscanf(env, "%lf %lf %lf", &start, &speed, &real);
	if (n < 2 || !(speed > 0) || !isfinite(start) || !isfinite(real)) {
		log_warning(
			"%s=\"%s\" is not \"START SPEED [REAL]\"; using the real clock",
			SCHED_FAKE_CLOCK_ENV, env);
		return;
	}
	clock_fake = true;
	clock_start = start;
	clock_speed = speed;
	clock_real = real;
	log_warning(
		"%s: the scheduler's clock is fake (starts at %.0f, runs %g times as fast): for tests only",
		SCHED_FAKE_CLOCK_ENV, start, speed);
}

/* Seconds since the epoch on the scheduler's clock. */
double sched_now(void)
{
	if (!clock_read)
		sched_clock_init();
	if (!clock_fake)
		return wall_seconds();
	return clock_start + (wall_seconds() - clock_real) * clock_speed;
}

/* Real milliseconds until the scheduler's clock shows t. */
static int64_t sched_real_ms_until(int64_t t)
{
	double ms = ((double)t - sched_now()) * 1000.0 / clock_speed;

	if (ms < 1)
		return 1;
	if (ms > SCHED_MAX_SLEEP_MS)
		return SCHED_MAX_SLEEP_MS;
	return (int64_t)ceil(ms);
}

/* ------------------------------------------------------------ entries */

static const struct schedule_config *sched_conf(const struct sched *s,
						const struct sched_entry *e)
{
	return &s->e->config->schedules[e->index];
}

static struct sched_entry *sched_find(struct sched *s, const char *name)
{
	for (unsigned i = 0; i < s->count; i++)
		if (strcmp(s->entries[i].name, name) == 0)
			return &s->entries[i];
	return NULL;
}

static void sched_entry_clear(struct sched_entry *e)
{
	free(e->name);
	free(e->cron_text);
	free(e->job);
	free(e->last_error);
}

/* A slot as local time of its schedule, for logs and `schedules`. */
static void sched_slot_text(const struct sched_entry *e, int64_t t, char *buf,
			    size_t len)
{
	cron_format(&e->cron, t, buf, len);
}

/* The next slot after t, or 0 if the expression never fires again. */
static int64_t sched_next_after(const struct sched_entry *e, int64_t t)
{
	return slots_next_after(&e->cron, t);
}

/* Set cursor and next from what the database says was fired last: the
 * slots missed since then follow the schedule's catch_up. */
static void sched_entry_start(struct sched *s, struct sched_entry *e,
			      int64_t now)
{
	const struct schedule_config *conf = sched_conf(s, e);
	int64_t base = e->ready && e->cursor > e->last_fired ? e->cursor :
							       e->last_fired;
	struct slots_plan p =
		slots_plan_start(&e->cron, base, now, e->fired_lately,
				 conf->catch_up == SCHEDULE_CATCH_UP_LATEST);
	char when[48];

	e->ready = true;
	e->cursor = p.cursor;
	e->next = p.next;
	e->next_catch_up = p.how == SLOTS_CATCH_UP;
	if (p.how == SLOTS_CATCH_UP || p.how == SLOTS_SKIP_MISSED)
		sched_slot_text(e, p.newest_missed, when, sizeof(when));
	if (p.how == SLOTS_CATCH_UP)
		log_info(
			"schedule '%s': slots were missed while no daemon fired them; catching up with the newest, %s",
			e->name, when);
	else if (p.how == SLOTS_SKIP_MISSED)
		log_info(
			"schedule '%s': slots up to %s were missed while no daemon fired them; skipping them (catch_up: none)",
			e->name, when);
}

/* The slot in flight is done with (fired, fired elsewhere, or failed):
 * move on to the one after it. */
static void sched_entry_advance(struct sched_entry *e, int64_t slot)
{
	e->cursor = slot;
	e->next = sched_next_after(e, slot);
	e->next_catch_up = false;
}

/* Build entries for e->config's schedules, keeping the state of old ones
 * that have the same name, cron and job. */
static void sched_build(struct sched *s, struct sched_entry *old,
			unsigned old_count)
{
	const struct config *config = s->e->config;

	s->count = config->schedule_count;
	s->entries = xcalloc(s->count + 1, sizeof(*s->entries));
	for (unsigned i = 0; i < s->count; i++) {
		const struct schedule_config *conf = &config->schedules[i];
		struct sched_entry *e = &s->entries[i];
		char *cause = NULL;

		for (unsigned k = 0; k < old_count; k++) {
			struct sched_entry *o = &old[k];

			if (o->name != NULL &&
			    strcmp(o->name, conf->name) == 0 &&
			    strcmp(o->cron_text, conf->cron) == 0 &&
			    strcmp(o->job, conf->job) == 0) {
				*e = *o;
				memset(o, 0, sizeof(*o));
				break;
			}
		}
		e->index = i;
		if (e->name != NULL)
			continue;
		e->name = xstrdup(conf->name);
		e->cron_text = xstrdup(conf->cron);
		e->job = xstrdup(conf->job);
		e->last_jobs = -1;
		if (!cron_parse(conf->cron, &e->cron, &cause)) {
			/* config_load checked it; keep it from firing */
			log_error("schedule '%s': %s", e->name, cause);
			free(cause);
			e->ready = true;
			e->next = 0;
		}
	}
	for (unsigned k = 0; k < old_count; k++)
		sched_entry_clear(&old[k]);
	free(old);
}

/* ------------------------------------------------------------ firing */

static void sched_tick(struct sched *s);

static void sched_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	sched_tick(arg);
}

/* Record an error of a schedule for logs and `schedules`. */
static void sched_error(struct sched_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sched_error(struct sched_entry *e, const char *fmt, ...)
{
	va_list ap;

	free(e->last_error);
	va_start(ap, fmt);
	e->last_error = xvasprintf(fmt, ap);
	va_end(ap);
	log_error("schedule '%s': %s", e->name, e->last_error);
}

/* The entry of the slot in flight, or NULL if a reload removed it. */
static struct sched_entry *sched_fire_entry(struct sched *s)
{
	struct sched_entry *e = sched_find(s, s->fire_name);

	free(s->fire_name);
	s->fire_name = NULL;
	s->busy = false;
	if (e != NULL && e->next != s->fire_slot)
		e = NULL; /* reloaded with other state meanwhile */
	return e;
}

/* Log what a slot of a fleet schedule did: fire_slot_fleet's jobs, the
 * fleet it started, the schedule's fleet that is still active. */
static void sched_fleet_fired(const struct sched_entry *e, const PGresult *res,
			      const char *when, bool catch_up)
{
	const char *how = catch_up ? " (catch-up)" : "";

	if (!PQgetisnull(res, 0, 1))
		log_info(
			"schedule '%s': slot %s%s: fleet '%s' started with %d tenant(s)",
			e->name, when, how, PQgetvalue(res, 0, 1),
			e->last_jobs);
	else if (!PQgetisnull(res, 0, 2))
		log_info(
			"schedule '%s': slot %s%s: no new fleet: fleet '%s' of this schedule is still active",
			e->name, when, how, PQgetvalue(res, 0, 2));
	else
		log_info(
			"schedule '%s': slot %s%s: no fleet: no shared tenant matches",
			e->name, when, how);
}

static void sched_fired(const struct pgconn_result *r, void *arg)
{
	struct sched *s = arg;
	struct sched_entry *e;
	char when[48];

	if (s->closing)
		return;
	e = sched_fire_entry(s);
	if (r->connection_lost) {
		s->need_init = true;
		return; /* reconnecting kicks the scheduler again */
	}
	if (e == NULL) {
		timer_add_ms(s->timer, 0);
		return;
	}
	sched_slot_text(e, s->fire_slot, when, sizeof(when));
	if (r->error != NULL) {
		sched_error(e, "slot %s not fired: %s", when, r->error);
	} else if (PQgetisnull(r->res, 0, 0)) {
		e->taken++;
		if (s->fire_slot > e->last_fired)
			e->last_fired = s->fire_slot;
		log_debug("schedule '%s': slot %s was fired by another daemon",
			  e->name, when);
	} else {
		e->fired++;
		e->last_jobs = atoi(PQgetvalue(r->res, 0, 0));
		if (s->fire_slot > e->last_fired)
			e->last_fired = s->fire_slot;
		free(e->last_error);
		e->last_error = NULL;
		if (PQnfields(r->res) == 3)
			sched_fleet_fired(e, r->res, when, s->fire_catch_up);
		else
			log_info(
				"schedule '%s': slot %s%s: %d %s job(s) enqueued",
				e->name, when,
				s->fire_catch_up ? " (catch-up)" : "",
				e->last_jobs, e->job);
	}
	sched_entry_advance(e, s->fire_slot);
	timer_add_ms(s->timer, 0);
}

/* Fire the entry's slot with the tenants given by tenants_sql, an array
 * expression that may use $7 (bound to extra). */
static void sched_send_fire(struct sched *s, struct sched_entry *e,
			    const char *tenants_sql, const char *extra)
{
	const struct schedule_config *conf = sched_conf(s, e);
	char slot[24];
	const char *params[7];
	char *sql;

	snprintf(slot, sizeof(slot), "%" PRId64, s->fire_slot);
	params[0] = e->name;
	params[1] = slot;
	params[2] = conf->job;
	params[3] = conf->args_json ? conf->args_json : "{}";
	params[4] = s->e->owner;
	params[5] = s->fire_catch_up ? "true" : "false";
	params[6] = extra;
	if (conf->fleet_json != NULL) {
		/* one fleet for the slot's tenants, not a job each */
		params[2] = conf->fleet_json;
		sql = xasprintf("SELECT * FROM pgtenantd.fire_slot_fleet($1,"
				" to_timestamp($2::bigint), $3::jsonb,"
				" $4::jsonb, %s, $5, $6::boolean)",
				tenants_sql);
	} else {
		sql = xasprintf(
			"SELECT pgtenantd.fire_slot($1, to_timestamp($2::bigint),"
			" $3, $4::jsonb, %s, $5, $6::boolean)",
			tenants_sql);
	}
	pgconn_query(s->conn, sql, extra != NULL ? 7 : 6, params, sched_fired,
		     s);
	free(sql);
}

static void sched_tenants_queried(const struct pgconn_result *r, void *arg)
{
	struct sched *s = arg;
	struct sched_entry *e;
	json_t *list;
	char *text, when[48];

	if (s->closing)
		return;
	e = sched_find(s, s->fire_name);
	if (r->connection_lost || e == NULL || e->next != s->fire_slot) {
		sched_fire_entry(s);
		if (r->connection_lost)
			s->need_init = true;
		else
			timer_add_ms(s->timer, 0);
		return;
	}
	if (r->error != NULL || PQnfields(r->res) < 1) {
		sched_fire_entry(s);
		sched_slot_text(e, s->fire_slot, when, sizeof(when));
		sched_error(e, "slot %s not fired: the tenants query %s", when,
			    r->error ? r->error : "returns no column");
		sched_entry_advance(e, s->fire_slot);
		timer_add_ms(s->timer, 0);
		return;
	}
	list = json_array();
	for (int i = 0; i < PQntuples(r->res); i++)
		if (!PQgetisnull(r->res, i, 0))
			json_array_append_new(
				list, json_string(PQgetvalue(r->res, i, 0)));
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	sched_send_fire(s, e,
			"ARRAY(SELECT jsonb_array_elements_text($7::jsonb))",
			text);
	free(text);
}

/* The days of a tenants: inactive schedule: its args.inactive_days. */
static char *sched_inactive_days(const struct schedule_config *conf)
{
	json_error_t jerr;
	json_t *args =
		json_loads(conf->args_json ? conf->args_json : "{}", 0, &jerr);
	json_t *v = json_object_get(args, "inactive_days");
	long long days = SCHED_INACTIVE_DAYS;

	if (json_is_integer(v))
		days = json_integer_value(v);
	else if (json_is_string(v))
		days = strtoll(json_string_value(v), NULL, 10);
	json_decref(args);
	return xasprintf("%lld", days);
}

/* Fire the entry's next slot. */
static void sched_fire(struct sched *s, struct sched_entry *e)
{
	const struct schedule_config *conf = sched_conf(s, e);
	char *text;
	json_t *list;
	char when[48];

	if (jobdefs_find(s->e->jobdefs, conf->job) == NULL) {
		sched_slot_text(e, e->next, when, sizeof(when));
		sched_error(
			e,
			"slot %s not fired: job kind '%s' is not loaded from %s",
			when, conf->job, s->e->config->jobs_dir);
		sched_entry_advance(e, e->next);
		timer_add_ms(s->timer, 0);
		return;
	}
	s->busy = true;
	s->fire_name = xstrdup(e->name);
	s->fire_slot = e->next;
	s->fire_catch_up = e->next_catch_up;
	switch (conf->tenants) {
	case SCHEDULE_TENANTS_SEPARATE:
		sched_send_fire(s, e,
				"ARRAY(SELECT pgtenantd.separate_tenants())",
				NULL);
		break;
	case SCHEDULE_TENANTS_SHARED:
		sched_send_fire(
			s, e, "ARRAY(SELECT pgtenantd.shared_tenants())", NULL);
		break;
	case SCHEDULE_TENANTS_INACTIVE:
		text = sched_inactive_days(conf);
		sched_send_fire(s, e,
				"ARRAY(SELECT pgtenantd.inactive_tenants("
				"$7::integer))",
				text);
		free(text);
		break;
	case SCHEDULE_TENANTS_LIST:
		list = json_array();
		for (unsigned i = 0; i < conf->tenant_list_count; i++)
			json_array_append_new(
				list, json_string(conf->tenant_list[i]));
		text = json_dumps(list, JSON_COMPACT);
		json_decref(list);
		sched_send_fire(s, e,
				"ARRAY(SELECT jsonb_array_elements_text("
				"$7::jsonb))",
				text);
		free(text);
		break;
	case SCHEDULE_TENANTS_QUERY:
		/* the operator's own SQL from the config, run as written */
		pgconn_query(s->conn, conf->tenant_query, 0, NULL,
			     sched_tenants_queried, s);
		break;
	}
}

static void sched_slots_read(const struct pgconn_result *r, void *arg)
{
	struct sched *s = arg;
	int64_t now = (int64_t)floor(sched_now());

	if (s->closing)
		return;
	s->busy = false;
	if (r->connection_lost)
		return;
	if (r->error != NULL) {
		log_error("scheduler: reading pgtenantd.schedule_slots: %s",
			  r->error);
		timer_add_ms(s->timer, 5000);
		return;
	}
	for (int i = 0; i < PQntuples(r->res); i++) {
		struct sched_entry *e = sched_find(s, PQgetvalue(r->res, i, 0));
		int64_t t = strtoll(PQgetvalue(r->res, i, 1), NULL, 10);

		if (e == NULL)
			continue;
		if (t > e->last_fired)
			e->last_fired = t;
		e->fired_lately = *PQgetvalue(r->res, i, 2) == 't';
	}
	for (unsigned i = 0; i < s->count; i++)
		if (s->entries[i].cron_text != NULL &&
		    (s->entries[i].next != 0 || !s->entries[i].ready))
			sched_entry_start(s, &s->entries[i], now);
	s->need_init = false;
	timer_add_ms(s->timer, 0);
}

/* Read the newest fired slot of every schedule, and whether one was
 * fired less than a lease ago. */
static void sched_read_slots(struct sched *s)
{
	char lease[32];
	const char *params[1] = { lease };

	snprintf(lease, sizeof(lease), "%" PRId64 " ms",
		 s->e->config->lease_ms);
	s->busy = true;
	pgconn_query(s->conn,
		     "SELECT schedule, extract(epoch FROM max(slot))::bigint,"
		     " max(fired_at) > clock_timestamp() - $1::interval"
		     " FROM pgtenantd.schedule_slots GROUP BY schedule",
		     1, params, sched_slots_read, s);
}

/* Fire what is due, or sleep until the next slot. */
static void sched_tick(struct sched *s)
{
	struct sched_entry *due = NULL;
	int64_t now, soonest = 0;

	if (s->closing || s->busy || !s->connected || s->e->stopping ||
	    s->count == 0)
		return;
	if (!s->e->ready) {
		timer_add_ms(s->timer, SCHED_RETRY_MS);
		return;
	}
	if (s->need_init) {
		sched_read_slots(s);
		return;
	}
	now = (int64_t)floor(sched_now());
	for (unsigned i = 0; i < s->count; i++) {
		struct sched_entry *e = &s->entries[i];

		if (!e->ready || e->next == 0)
			continue;
		if (e->next <= now && (due == NULL || e->next < due->next))
			due = e;
		if (soonest == 0 || e->next < soonest)
			soonest = e->next;
	}
	if (due != NULL) {
		sched_fire(s, due);
		return;
	}
	timer_add_ms(s->timer, soonest != 0 ? sched_real_ms_until(soonest) :
					      SCHED_MAX_SLEEP_MS);
}

static void sched_state(struct pgconn *conn, bool connected, void *arg)
{
	struct sched *s = arg;

	s->connected = connected;
	if (!connected) {
		s->need_init = true;
		return;
	}
	s->need_init = true;
	timer_add_ms(s->timer, 0);
}

/* Connect once there are schedules. */
static void sched_connect(struct sched *s)
{
	if (s->conn != NULL || s->count == 0)
		return;
	s->conn = engine_connect(s->e, "scheduler", sched_state, NULL, s);
	pgconn_start(s->conn);
}

/* ------------------------------------------------------------ API */

struct sched *sched_new(struct engine *e)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->e = e;
	s->need_init = true;
	s->timer = evtimer_new(e->base, sched_timer_cb, s);
	sched_now();
	sched_build(s, NULL, 0);
	sched_connect(s);
	return s;
}

void sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	s->closing = true;
	if (s->conn != NULL)
		pgconn_free(s->conn);
	event_free(s->timer);
	for (unsigned i = 0; i < s->count; i++)
		sched_entry_clear(&s->entries[i]);
	free(s->entries);
	free(s->fire_name);
	free(s);
}

/* The configuration was reloaded. */
void sched_reload(struct sched *s)
{
	unsigned fresh = 0;

	sched_build(s, s->entries, s->count);
	for (unsigned i = 0; i < s->count; i++)
		if (!s->entries[i].ready)
			fresh++;
	if (fresh > 0)
		s->need_init = true;
	sched_connect(s);
	if (s->connected)
		timer_add_ms(s->timer, 0);
}

/* ------------------------------------------------------------ listing */

struct sched_listing {
	struct sched *s;
	sched_list_fn cb;
	void *arg;
};

static const char *sched_tenants_text(const struct schedule_config *conf,
				      char *buf, size_t len)
{
	size_t used = 0;

	switch (conf->tenants) {
	case SCHEDULE_TENANTS_SEPARATE:
		return "separate";
	case SCHEDULE_TENANTS_SHARED:
		return "shared";
	case SCHEDULE_TENANTS_INACTIVE:
		return "inactive";
	case SCHEDULE_TENANTS_QUERY:
		return "query";
	case SCHEDULE_TENANTS_LIST:
		break;
	}
	buf[0] = '\0';
	for (unsigned i = 0; i < conf->tenant_list_count && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 i ? "," : "", conf->tenant_list[i]);
	return buf;
}

/* The schedules as JSON; rows (may be NULL) of schedule, newest slot,
 * its jobs and the daemon that fired it. */
static json_t *sched_json(struct sched *s, const PGresult *rows)
{
	json_t *list = json_array();

	for (unsigned i = 0; i < s->count; i++) {
		struct sched_entry *e = &s->entries[i];
		const struct schedule_config *conf = sched_conf(s, e);
		int64_t last = e->last_fired, next;
		json_t *last_jobs = e->last_jobs >= 0 ?
					    json_integer(e->last_jobs) :
					    json_null();
		json_t *by = json_null();
		char last_text[48], next_text[48], tenants[256];

		for (int r = 0; rows != NULL && r < PQntuples(rows); r++) {
			if (strcmp(PQgetvalue(rows, r, 0), e->name) != 0)
				continue;
			last = strtoll(PQgetvalue(rows, r, 1), NULL, 10);
			json_decref(last_jobs);
			last_jobs = json_integer(
				strtoll(PQgetvalue(rows, r, 2), NULL, 10));
			json_decref(by);
			by = PQgetisnull(rows, r, 3) ?
				     json_null() :
				     json_string(PQgetvalue(rows, r, 3));
		}
		if (last != 0)
			sched_slot_text(e, last, last_text, sizeof(last_text));
		/* another daemon may have fired slots this one has yet to
		 * reach: the next fire is after those */
		next = e->ready && e->next != 0 && e->next <= last ?
			       sched_next_after(e, last) :
			       e->next;
		if (e->ready && next != 0)
			sched_slot_text(e, next, next_text, sizeof(next_text));
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, "
				  "s:o, s:i, s:o}",
				  "name", e->name, "cron", e->cron_text, "job",
				  e->job, "tenants",
				  sched_tenants_text(conf, tenants,
						     sizeof(tenants)),
				  "catch_up",
				  conf->catch_up == SCHEDULE_CATCH_UP_NONE ?
					  "none" :
					  "latest",
				  "last_fire",
				  last != 0 ? json_string(last_text) :
					      json_null(),
				  "last_jobs", last_jobs, "last_fired_by", by,
				  "next_fire",
				  e->ready && next != 0 ?
					  json_string(next_text) :
					  json_null(),
				  "fired_here", (int)e->fired, "error",
				  e->last_error ? json_string(e->last_error) :
						  json_null()));
		/* a fleet schedule's settings, as checked by config.c */
		json_object_set_new(json_array_get(list, i), "fleet",
				    conf->fleet_json != NULL ?
					    json_loads(conf->fleet_json, 0,
						       NULL) :
					    json_null());
	}
	return list;
}

static void sched_listed(const struct pgconn_result *r, void *arg)
{
	struct sched_listing *l = arg;
	json_t *list;

	if (l->s->closing) {
		l->cb(NULL, "the daemon is stopping", l->arg);
		free(l);
		return;
	}
	list = sched_json(l->s, r->error == NULL ? r->res : NULL);
	if (r->error != NULL)
		log_debug("schedules: reading pgtenantd.schedule_slots: %s",
			  r->error);
	l->cb(list, NULL, l->arg);
	json_decref(list);
	free(l);
}

/* Answer for `schedules`. */
void sched_list(struct sched *s, sched_list_fn cb, void *arg)
{
	struct sched_listing *l;
	json_t *list;

	if (s->conn == NULL || !s->connected || !s->e->ready) {
		list = sched_json(s, NULL);
		cb(list, NULL, arg);
		json_decref(list);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	l->s = s;
	l->cb = cb;
	l->arg = arg;
	pgconn_query(s->conn,
		     "SELECT schedule,"
		     " extract(epoch FROM max(slot))::bigint,"
		     " (array_agg(jobs ORDER BY slot DESC))[1],"
		     " (array_agg(fired_by ORDER BY slot DESC))[1]"
		     " FROM pgtenantd.schedule_slots GROUP BY schedule",
		     0, NULL, sched_listed, l);
}
