/* engine.h - what the job engine's layers share: the loop, the running
 * configuration and job definitions, the checkpoint store, the dispatcher
 * connection, the workers and the counters. The daemon owns and fills it;
 * the scheduler, the queue and the runner read it and reach the daemon only
 * through the hook below, never by name. */
#ifndef PGT_ENGINE_H
#define PGT_ENGINE_H

#include <stdbool.h>

#include "metrics.h"
#include "pgconn.h"

struct event;
struct event_base;
struct config;
struct jobdefs;
struct ckpt;
struct engine;
struct job;

/* One job slot with its own database connection. */
struct worker {
	struct engine *engine;
	unsigned index; /* 1-based, for names and logs */
	struct pgconn *conn;
	struct job *job; /* NULL when idle */
	/* cancels of its backend's statement sent and not answered yet: no
	 * job starts on it meanwhile, or a cancel meant for the job before
	 * would stop it */
	unsigned cancels_pending;
};

/* What the daemon does for the layers below it. */
struct engine_hooks {
	/* a job ended or its end was recorded: a stopping daemon may exit */
	void (*idle)(struct engine *e);
	/* a worker that waited for its cancels to be answered may take a job
	 * again (optional) */
	void (*worker_free)(struct engine *e);
	void *arg;
};

struct engine {
	struct event_base *base;
	struct config *config;	 /* the running one; reload changes it */
	struct jobdefs *jobdefs; /* replaced on reload; jobs hold a ref */
	struct ckpt *ckpt;
	char owner[160]; /* "host:node_id", stored in jobs.owner */

	struct pgconn *dispatcher; /* LISTEN, claims, heartbeats, finishes */
	struct worker *workers;
	unsigned worker_count;
	struct metrics metrics;

	bool paused;   /* claiming stopped by `pause` */
	bool stopping; /* hand jobs back, claim nothing, then exit */
	bool ready;    /* the schema is installed and the kinds published
			* (set by the queue on the dispatcher connection) */
	struct engine_hooks hooks;
};

/* A connection with the options of the dispatcher and the workers (not
 * started yet). */
struct pgconn *engine_connect(struct engine *e, const char *name,
			      pgconn_state_fn on_state,
			      pgconn_notify_fn on_notify, void *arg);

/* Number of workers running a job. */
unsigned engine_busy_workers(const struct engine *e);

/* True if w may start a job: no job, no cancel of its backend in flight,
 * its connection up. */
bool worker_is_free(const struct worker *w);

/* Cancel the statement running on w's backend, from the dispatcher
 * connection, if it is still running (a cancel or a stop while a job's
 * statement runs). w takes no new job until the cancel is answered. */
void engine_cancel_statement(struct worker *w);

/* (Re)arm timer, an event of the engine's loop, to fire ms milliseconds
 * from now. */
void timer_add_ms(struct event *timer, int64_t ms);

#endif
