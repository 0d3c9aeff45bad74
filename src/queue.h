/* queue.h - claiming jobs from pgtenantd.jobs and ending them: LISTEN plus a
 * poll fallback, leases renewed by heartbeat, expired leases rescued,
 * backoff on failure, cancel and pause. Runs on the dispatcher connection. */
#ifndef PGT_QUEUE_H
#define PGT_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct engine;
struct job;

struct queue *queue_new(struct engine *e);
void queue_free(struct queue *q);

/* The dispatcher connection came up or went down (then the daemon runs
 * setup_start and calls queue_schema_ready). */
void queue_on_connected(struct queue *q, bool connected);
/* A notification on the dispatcher connection. */
void queue_on_notify(struct queue *q, const char *channel, const char *payload);

/* Try to claim jobs now if workers are free (after a NOTIFY, a finished
 * job, resume). */
void queue_kick(struct queue *q);

/* Ask a job to stop at its next safe point (cancel from socket or SQL). */
bool queue_cancel(struct queue *q, int64_t job_id);

/* Jobs being ended (finish not yet acknowledged). */
unsigned queue_finishing(const struct queue *q);
/* An end_and_claim call is in flight: jobs it claims are this daemon's
 * once it commits, so the daemon waits for it before it exits. */
bool queue_claim_in_flight(const struct queue *q);
/* Whether the schema is installed and the kinds published. */
bool queue_ready(const struct queue *q);

/* The schema is in place and the kinds published on the dispatcher
 * session (setup.c): start claiming. */
void queue_schema_ready(struct queue *q);

/* The cancel-from-SQL path for socket `cancel ID` of a job not running
 * here: marks the row and answers with the resulting state. */
typedef void (*queue_cancel_fn)(const char *state, const char *error,
				void *arg);
void queue_cancel_in_db(struct queue *q, int64_t job_id, queue_cancel_fn cb,
			void *arg);

#endif
