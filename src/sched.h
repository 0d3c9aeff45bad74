/* sched.h - the scheduler: fires the configured schedules on the daemon's
 * loop. Each due slot enqueues one job per tenant through
 * pgtenantd.fire_slot(), which claims the slot in pgtenantd.schedule_slots,
 * so that any number of daemons fire every slot exactly once. Slots missed
 * while no daemon could fire them are handled by the schedule's catch_up. */
#ifndef PGT_SCHED_H
#define PGT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct engine;
struct sched;

/* The environment variable that fakes the scheduler's clock, for tests
 * only: "START SPEED [REAL]" makes the scheduler's now START + (real now -
 * REAL) * SPEED seconds since the epoch; REAL defaults to the moment the
 * daemon started. */
#define SCHED_FAKE_CLOCK_ENV "PGTENANTD_FAKE_CLOCK"

/* Make the scheduler of e; it connects once the configuration has
 * schedules, and fires once e->ready (the schema is in place). */
struct sched *sched_new(struct engine *e);
void sched_free(struct sched *s);

/* The configuration was reloaded (d->config->schedules changed): keep the
 * state of schedules whose name, cron and job are unchanged, start the
 * others from now. */
void sched_reload(struct sched *s);

/* Answer for `schedules`: an array of objects (name, cron, job, tenants,
 * catch_up, last_fire, last_jobs, next_fire, ...); the last fire is read
 * from the database so that other daemons' fires show too. cb gets the
 * array (borrowed for the call: take a reference to keep it) or an error
 * message. */
typedef void (*sched_list_fn)(json_t *schedules, const char *error, void *arg);
void sched_list(struct sched *s, sched_list_fn cb, void *arg);

/* Seconds since the epoch on the scheduler's clock. */
double sched_now(void);

#endif
