/* queue-int.h - the queue's insides, shared by its three files, each
 * calling only the ones below it: queue_session.c (the queue's life, what
 * follows a connect or reconnect of the dispatcher, notifications) on top,
 * queue_lease.c (the heartbeat that renews leases, and the rescue of
 * expired ones), queue.c (claims and job ends) at the bottom. Other
 * modules use queue.h. */
#ifndef PGT_QUEUE_INT_H
#define PGT_QUEUE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "job.h"
#include "queue.h"

/* pg_advisory_lock's first key for tenant locks (claim_jobs's) */
#define TENANT_LOCK_CLASS "1886680148"

/* A job whose end is being written to its row. */
struct finishing {
	struct finishing *next;
	struct job *job;
	char state[16];
	json_t *result; /* NULL: keep the row's */
	char *error;
	int64_t retry_ms;
	bool refund;
	bool unlock;
	bool sent;
	/* sent in a request whose answer the connection lost: the server
	 * may have recorded it (end_and_claim commits before it answers) */
	bool maybe_recorded;
	bool late; /* not recorded: this daemon no longer held the job */
};

struct queue {
	struct engine *e;
	bool connected;
	bool released;		 /* jobs of an earlier run handed back */
	bool request_in_flight;	 /* an end_and_claim call */
	bool dispatch_again;	 /* something changed while it ran */
	bool starting;		 /* starting the rows of an answer */
	int asked;		 /* jobs it asked for */
	unsigned due_now_streak; /* "due now" answers in a row, none claimed */
	double newest_due_seen;	 /* newest_due of the last such answer */
	unsigned request_failures; /* end_and_claim errors in a row */
	bool heartbeat_in_flight;
	bool heartbeat_again;	/* a cancel notification came meanwhile */
	int64_t *heartbeat_ids; /* the jobs the heartbeat in flight renews */
	unsigned heartbeat_id_count;
	int64_t *relock_ids; /* the jobs whose tenant locks are being retaken */
	unsigned relock_id_count;
	/* the dispatcher's session as pg_stat_activity shows it (pid 0: not
	 * known), and the one before a reconnect, ended if the server still
	 * runs it */
	struct session {
		int pid;
		char backend_start[64];
	} session, old_session;
	struct event *poll_timer;
	struct event *due_timer;
	struct event *heartbeat_timer;
	struct event *rescue_timer;
	struct finishing *finishing;
	unsigned finishing_count;
	/* Claimed ahead: jobs claimed for workers that are still busy, each
	 * started as soon as one is free, in claim order. A worker then goes
	 * from one job to the next without waiting for a claim, and a claim
	 * brings several jobs at once. At most waiting_cap (the workers). */
	struct job **waiting;
	unsigned waiting_count;
	unsigned waiting_cap;
};

/* queue.c */

void queue_claims_init(struct queue *q);
void queue_claims_free(struct queue *q);
/* A persistent timer of ms, calling fn with q, added. */
struct event *queue_timer(struct queue *q, int64_t ms, event_callback_fn fn);
/* The ids of the jobs this daemon holds (on a worker, claimed ahead, or
 * with an end not recorded yet), a new array of *n. Not a run called lost:
 * its row is not this run's any more (if this daemon claimed it again, the
 * new run is claimed ahead or on a worker, and listed). */
int64_t *queue_job_ids(const struct queue *q, unsigned *n);
/* ids as a PostgreSQL bigint[] literal ("{1,2,3}"), a new string. */
char *queue_bigint_array(const int64_t *ids, unsigned n);
/* The running or claimed-ahead job with this id, or NULL. */
struct job *queue_find_job(struct queue *q, int64_t id);
/* Take the job at index i out of the claimed-ahead list. */
struct job *queue_unwait(struct queue *q, unsigned i);
/* The job is done (runner, claim, heartbeat, a lost connection): record
 * the outcome, free the worker. error may be NULL. */
void queue_job_done(struct queue *q, struct job *job, enum job_outcome outcome,
		    const char *error);
/* Record the jobs that ended and claim as many as workers are idle. */
void queue_dispatch(struct queue *q);
/* The connection went with a request in flight: its job ends are sent
 * again, saying they may be recorded already. */
void queue_ends_unanswered(struct queue *q);

/* queue_lease.c */

void queue_lease_init(struct queue *q);
void queue_lease_free(struct queue *q);
/* Renew the leases of every job this daemon runs or is ending. */
void queue_heartbeat(struct queue *q);
/* Take back expired leases (any daemon's), then dispatch. */
void queue_rescue_cb(evutil_socket_t fd, short what, void *arg);

#endif
