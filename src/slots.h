/* slots.h - which slot of a schedule fires next, without I/O: where a
 * schedule starts after the scheduler (re)connects, given the newest slot
 * the database says was fired, and the slots after a given one. */
#ifndef PGT_SLOTS_H
#define PGT_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

struct cron;

/* How a schedule starts. */
enum slots_start {
	SLOTS_FROM_NOW,	   /* never fired: the first slot after now */
	SLOTS_IN_ORDER,	   /* every slot after the newest fired, in order:
			      * none was missed, or a daemon that fires them
			      * is running, only behind */
	SLOTS_CATCH_UP,	   /* slots were missed while no daemon ran:
			      * fire the newest of them once */
	SLOTS_SKIP_MISSED, /* ... and catch_up is none: skip them */
};

struct slots_plan {
	enum slots_start how;
	int64_t cursor;	       /* slots up to here are done with */
	int64_t next;	       /* the next slot to fire; 0: never */
	int64_t newest_missed; /* SLOTS_CATCH_UP, SLOTS_SKIP_MISSED */
};

/* Where a schedule starts at now (seconds since the epoch). base is the
 * newest slot known to be done with (the database's newest fired slot of
 * the schedule, or this scheduler's own cursor if that is later), 0 if
 * none; fired_lately: some daemon fired a slot of it less than a lease ago;
 * catch_up_latest: the schedule's catch_up is latest (else none). */
struct slots_plan slots_plan_start(const struct cron *cron, int64_t base,
				   int64_t now, bool fired_lately,
				   bool catch_up_latest);

/* The first slot after t; 0 if the expression never fires again. */
int64_t slots_next_after(const struct cron *cron, int64_t t);

/* The newest slot in (base, now]; 0 if there is none. Looks back in
 * growing windows, so that a long downtime does not walk every slot. */
int64_t slots_newest(const struct cron *cron, int64_t base, int64_t now);

#endif
