/* fleet.c - moving many tenants in waves. A fleet waits in the database,
 * never in a worker: pgtenantd.start_fleet plans it and holds its member
 * jobs; here one call of pgtenantd.fleet_advance() on the dispatcher
 * connection releases the next members of every active fleet (at most
 * max_parallel running, inside the window, unless paused), every
 * fleet_interval, as soon as a job's end is recorded while a fleet is
 * active, and on NOTIFY "fleet". The SQL function holds each fleet's row lock, so any
 * number of daemons may call it. */
#include "fleet.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "pgconn.h"
#include "util.h"

/* How long after a NOTIFY the advance runs: kicks close together (one
 * per daemon that released jobs) make one call. */
#define FLEET_KICK_DELAY_MS 20

struct fleet {
	struct engine *e;
	struct event *timer; /* the interval, or a kick sooner */
	bool in_flight;	     /* a fleet_advance call is out */
	bool again;	     /* kicked while in flight */
	bool kick_armed;     /* the timer is set for a kick, not the interval */
	bool active;	     /* the last call saw an active fleet */
	uint64_t ends_seen;  /* job ends counted at the last look */
	fleet_released_fn released;
	void *arg;
};

/* Job ends this daemon has counted (any kind: a fleet's member may end
 * here or, as a retry, be queued again). */
static uint64_t fleet_job_ends(const struct engine *e)
{
	return e->metrics.jobs_succeeded + e->metrics.jobs_failed +
	       e->metrics.jobs_cancelled + e->metrics.jobs_retried +
	       e->metrics.jobs_lost;
}

static void fleet_result(const struct pgconn_result *r, void *arg)
{
	struct fleet *f = arg;
	long released = 0;

	f->in_flight = false;
	if (r->error != NULL) {
		if (!r->connection_lost)
			log_warning("advancing the fleets: %s", r->error);
	} else if (PQntuples(r->res) == 1) {
		f->active = strtol(PQgetvalue(r->res, 0, 0), NULL, 10) > 0;
		released = strtol(PQgetvalue(r->res, 0, 1), NULL, 10);
		if (released > 0) {
			log_info("fleets: released %ld migration(s)", released);
			f->released(f->arg);
		}
	}
	if (f->again) {
		f->again = false;
		f->kick_armed = true;
		timer_add_ms(f->timer, FLEET_KICK_DELAY_MS);
	} else {
		timer_add_ms(f->timer, f->e->config->fleet_interval_ms);
	}
}

static void fleet_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	struct engine *e = f->e;

	(void)fd;
	(void)what;
	f->kick_armed = false;
	if (!e->ready || e->stopping || f->in_flight) {
		timer_add_ms(f->timer, e->config->fleet_interval_ms);
		return;
	}
	f->in_flight = true;
	pgconn_query(e->dispatcher,
		     "SELECT active, released FROM pgtenantd.fleet_advance()",
		     0, NULL, fleet_result, f);
}

/* Advance after ms (or right after the call in flight). */
static void fleet_kick(struct fleet *f, int64_t ms)
{
	if (f->in_flight) {
		f->again = true;
		return;
	}
	/* a kick already set stays: re-arming it would push it later, and
	 * any role may NOTIFY, so a flood of them could put the advance off
	 * for as long as it lasts */
	if (f->kick_armed)
		return;
	f->kick_armed = true;
	timer_add_ms(f->timer, ms);
}

struct fleet *fleet_new(struct engine *e, fleet_released_fn released, void *arg)
{
	struct fleet *f = xcalloc(1, sizeof(*f));

	f->e = e;
	f->released = released;
	f->arg = arg;
	f->active = true; /* until the first call says */
	f->timer = evtimer_new(e->base, fleet_timer_cb, f);
	timer_add_ms(f->timer, e->config->fleet_interval_ms);
	return f;
}

void fleet_free(struct fleet *f)
{
	if (f == NULL)
		return;
	event_free(f->timer);
	free(f);
}

void fleet_notified(struct fleet *f)
{
	if (f != NULL)
		fleet_kick(f, FLEET_KICK_DELAY_MS);
}

void fleet_idle(struct fleet *f, unsigned finishing)
{
	uint64_t ends;

	if (f == NULL)
		return;
	ends = fleet_job_ends(f->e);
	/* an end not recorded yet is looked at after it is */
	if (!f->active || ends == f->ends_seen || finishing > 0)
		return;
	f->ends_seen = ends;
	fleet_kick(f, 0);
}
