/* fleet.h - moving many tenants in waves: the daemon's side of the fleets
 * of src/sql/v7-fleet.sql, which advances them from its loop. */
#ifndef PGTENANTD_FLEET_H
#define PGTENANTD_FLEET_H

struct engine;
struct fleet;

/* Called when an advance released held jobs: claim now. */
typedef void (*fleet_released_fn)(void *arg);

/* Advance the fleets every e->config->fleet_interval_ms once the engine
 * is ready, on fleet_idle after a job's end is recorded while a fleet is
 * active, and on fleet_notified. */
struct fleet *fleet_new(struct engine *e, fleet_released_fn released,
			void *arg);

void fleet_free(struct fleet *f);

/* A NOTIFY "fleet" arrived (a fleet was started, asked to change, or
 * another daemon released jobs): advance soon. */
void fleet_notified(struct fleet *f);

/* The queue went idle (a job end may have been recorded): advance now if
 * a job ended since the last look, finishing (job ends not recorded yet)
 * is 0 and a fleet is active. */
void fleet_idle(struct fleet *f, unsigned finishing);

#endif
