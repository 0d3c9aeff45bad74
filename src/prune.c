/* prune.c - keeping the history bounded. Every prune_interval, on the
 * dispatcher connection: succeeded jobs older than keep_succeeded_jobs,
 * failed and cancelled ones older than keep_failed_jobs, fired schedule
 * slots older than keep_schedule_slots (never a schedule's newest),
 * tenant snapshots older than keep_tenant_history (never the newest),
 * finished and cancelled fleets older than keep_fleets, a
 * batch per query (pgtenantd.prune_jobs_from, which starts where the
 * batch before ended; pgtenantd.prune_slots; pgtenantd.prune_fleets;
 * pgtenantd.prune_tenant_history: each its own short transaction that
 * locks only the rows it deletes), with a pause
 * between batches so that claims go first; then the catalog rows of
 * backups removed longer than keep_removed_backups ago (SQLite). A keep_*
 * of 0 keeps that history for ever. */
#include "prune.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backup.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "pgconn.h"
#include "util.h"

#define PRUNE_BATCH 500	  /* rows a statement */
#define PRUNE_PAUSE_MS 20 /* between two batches */

enum prune_stage {
	PRUNE_SUCCEEDED,
	PRUNE_FAILED,
	PRUNE_SLOTS,
	PRUNE_TENANT_HISTORY,
	PRUNE_FLEETS,
	PRUNE_DONE, /* the database's part is over */
};

static const char *const stage_names[] = {
	[PRUNE_SUCCEEDED] = "succeeded jobs",
	[PRUNE_FAILED] = "failed and cancelled jobs",
	[PRUNE_SLOTS] = "schedule slots",
	[PRUNE_TENANT_HISTORY] = "tenant history",
	[PRUNE_FLEETS] = "fleets",
};

/* A stage's statement: $1 the age kept, $2 the batch size; returns how
 * many rows it deleted. NULL: the job stages (prune_next). */
static const char *const stage_sql[] = {
	[PRUNE_SLOTS] =
		"SELECT pgtenantd.prune_slots($1::interval, $2::integer)",
	[PRUNE_TENANT_HISTORY] =
		"SELECT pgtenantd.prune_tenant_history($1::interval, $2::integer)",
	[PRUNE_FLEETS] =
		"SELECT pgtenantd.prune_fleets($1::interval, $2::integer)",
	[PRUNE_DONE] = NULL,
};

struct prune {
	struct engine *e;
	struct event *timer;
	bool in_round;
	enum prune_stage stage;
	uint64_t deleted[PRUNE_DONE]; /* this round */
	/* a job stage's next batch starts after this (finished_at, id),
	 * where the last one ended (pgtenantd.prune_jobs_from) */
	char after_at[64];
	char after_id[24];
};

/* The first batch of a job stage starts at the oldest job. */
static void prune_from_oldest(struct prune *p)
{
	snprintf(p->after_at, sizeof(p->after_at), "-infinity");
	snprintf(p->after_id, sizeof(p->after_id), "0");
}

/* Go on with the next stage, its jobs from the oldest. */
static void prune_next_stage(struct prune *p)
{
	p->stage++;
	prune_from_oldest(p);
}

/* The age a stage keeps, 0 for ever. */
static int64_t prune_keep_ms(const struct prune *p, enum prune_stage stage)
{
	const struct config *c = p->e->config;

	switch (stage) {
	case PRUNE_SUCCEEDED:
		return c->keep_succeeded_ms;
	case PRUNE_FAILED:
		return c->keep_failed_ms;
	case PRUNE_SLOTS:
		return c->keep_slots_ms;
	case PRUNE_TENANT_HISTORY:
		return c->keep_tenant_history_ms;
	case PRUNE_FLEETS:
		return c->keep_fleets_ms;
	case PRUNE_DONE:
		break;
	}
	return 0;
}

/* The round is over: the backup catalog, a summary, the next round. */
static void prune_round_done(struct prune *p)
{
	struct engine *e = p->e;
	unsigned backups = 0;
	char *cause = NULL;

	p->in_round = false;
	if (e->config->keep_removed_backups_ms > 0) {
		if (!backup_catalog_prune(e->ckpt,
					  e->config->keep_removed_backups_ms,
					  wall_seconds(), &backups, &cause)) {
			log_warning("pruning the backup catalog: %s", cause);
			free(cause);
		}
		e->metrics.history_pruned += backups;
	}
	if (p->deleted[PRUNE_SUCCEEDED] + p->deleted[PRUNE_FAILED] +
		    p->deleted[PRUNE_SLOTS] + p->deleted[PRUNE_TENANT_HISTORY] +
		    p->deleted[PRUNE_FLEETS] + backups >
	    0)
		log_info(
			"pruned history: %" PRIu64 " succeeded job(s), %" PRIu64
			" failed or cancelled job(s), %" PRIu64
			" schedule slot(s), %u removed backup(s) in the catalog, %" PRIu64
			" tenant history row(s), %" PRIu64 " fleet(s)",
			p->deleted[PRUNE_SUCCEEDED], p->deleted[PRUNE_FAILED],
			p->deleted[PRUNE_SLOTS], backups,
			p->deleted[PRUNE_TENANT_HISTORY],
			p->deleted[PRUNE_FLEETS]);
	timer_add_ms(p->timer, e->config->prune_interval_ms);
}

static void prune_batch_result(const struct pgconn_result *r, void *arg)
{
	struct prune *p = arg;
	long n;

	if (r->error != NULL) {
		if (!r->connection_lost)
			log_warning("pruning %s: %s", stage_names[p->stage],
				    r->error);
		prune_round_done(p);
		return;
	}
	n = strtol(PQgetvalue(r->res, 0, 0), NULL, 10);
	p->deleted[p->stage] += (uint64_t)n;
	p->e->metrics.history_pruned += (uint64_t)n;
	if (PQnfields(r->res) == 3 && !PQgetisnull(r->res, 0, 1)) {
		snprintf(p->after_at, sizeof(p->after_at), "%s",
			 PQgetvalue(r->res, 0, 1));
		snprintf(p->after_id, sizeof(p->after_id), "%s",
			 PQgetvalue(r->res, 0, 2));
	}
	if (n < PRUNE_BATCH)
		prune_next_stage(p);
	timer_add_ms(p->timer, PRUNE_PAUSE_MS);
}

/* Send the current stage's next batch, or end the round. */
static void prune_next(struct prune *p)
{
	struct engine *e = p->e;
	char interval[48], batch[16];
	const char *params[5];

	while (p->stage < PRUNE_DONE && prune_keep_ms(p, p->stage) == 0)
		prune_next_stage(p);
	if (p->stage == PRUNE_DONE || !e->ready || e->stopping) {
		prune_round_done(p);
		return;
	}
	interval_ms_text(interval, sizeof(interval),
			 prune_keep_ms(p, p->stage));
	snprintf(batch, sizeof(batch), "%d", PRUNE_BATCH);
	if (stage_sql[p->stage] != NULL) {
		params[0] = interval;
		params[1] = batch;
		pgconn_query(e->dispatcher, stage_sql[p->stage], 2, params,
			     prune_batch_result, p);
		return;
	}
	/* jobs: from the position the last batch reached */
	params[0] = p->stage == PRUNE_SUCCEEDED ? "{succeeded}" :
						  "{failed,cancelled}";
	params[1] = interval;
	params[2] = batch;
	params[3] = p->after_at;
	params[4] = p->after_id;
	pgconn_query(e->dispatcher,
		     "SELECT deleted, reached_at, reached_id"
		     " FROM pgtenantd.prune_jobs_from($1::text[], $2::interval,"
		     " $3::integer, $4::timestamptz, $5::bigint)",
		     5, params, prune_batch_result, p);
}

static void prune_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prune *p = arg;

	(void)fd;
	(void)what;
	if (!p->in_round) {
		if (!p->e->ready || p->e->stopping) {
			timer_add_ms(p->timer, p->e->config->prune_interval_ms);
			return;
		}
		p->in_round = true;
		p->stage = PRUNE_SUCCEEDED;
		prune_from_oldest(p);
		for (int i = 0; i < PRUNE_DONE; i++)
			p->deleted[i] = 0;
	}
	prune_next(p);
}

struct prune *prune_new(struct engine *e)
{
	struct prune *p = xcalloc(1, sizeof(*p));

	p->e = e;
	p->timer = evtimer_new(e->base, prune_timer_cb, p);
	timer_add_ms(p->timer, e->config->prune_interval_ms);
	return p;
}

void prune_free(struct prune *p)
{
	if (p == NULL)
		return;
	event_free(p->timer);
	free(p);
}
