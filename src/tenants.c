/* tenants.c - the tenant history. Every tenant_snapshot_interval,
 * pgtenantd.snapshot_tenants() writes one row per tenant into
 * pgtenantd.tenant_history: one pass over each shared table grouped by
 * tenant_id, catalog sizes and row estimates for tenant schemas. It runs
 * on a connection of its own because the pass over the shared tables
 * takes as long as they are big, and the dispatcher's claims and
 * heartbeats must not wait behind it. Several daemons may run: the
 * function skips a snapshot when another one is younger than nine tenths
 * of the interval. A daemon timer, not a job kind: a job belongs to one
 * tenant (its lock, its row), a snapshot to all of them at once, and a
 * job per tenant would mean a scan of the shared tables per tenant. */
#include "tenants.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backup.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "pgconn.h"
#include "tenant.h"
#include "tenantstat.h"
#include "util.h"

#define TENANTS_RETRY_MS 1000 /* while the engine is not ready */

struct tenants {
	struct engine *e;
	struct pgconn *conn; /* NULL until snapshots are turned on */
	struct event *timer;
	bool in_round;
	bool closing;
	/* the newest snapshot, largest first; taken_at 0: none known */
	struct tenantstat *stats;
	unsigned count;
	double taken_at;
};

/* The newest snapshot is read: keep it for the metrics. */
static void tenants_loaded(const struct pgconn_result *r, void *arg)
{
	struct tenants *t = arg;
	int rows;

	if (t->closing)
		return;
	t->in_round = false;
	timer_add_ms(t->timer, t->e->config->tenant_snapshot_interval_ms);
	if (r->error != NULL) {
		if (!r->connection_lost)
			log_warning("reading the newest tenant snapshot: %s",
				    r->error);
		return;
	}
	rows = PQntuples(r->res);
	tenantstat_clear(t->stats, t->count);
	free(t->stats);
	t->stats = rows > 0 ? xcalloc((size_t)rows, sizeof(*t->stats)) : NULL;
	t->count = (unsigned)rows;
	t->taken_at = 0;
	for (int i = 0; i < rows; i++) {
		t->stats[i].tenant_id = xstrdup(PQgetvalue(r->res, i, 0));
		t->stats[i].layout = xstrdup(PQgetvalue(r->res, i, 1));
		t->stats[i].rows = strtoll(PQgetvalue(r->res, i, 2), NULL, 10);
		t->stats[i].bytes = strtoll(PQgetvalue(r->res, i, 3), NULL, 10);
		/* the shared tables' tenant_id may hold any text: such an id
		 * gets no label of its own */
		t->stats[i].summed =
			!tenant_id_valid(t->stats[i].tenant_id, NULL);
		t->taken_at = strtod(PQgetvalue(r->res, i, 4), NULL);
	}
	tenantstat_sort(t->stats, t->count);
}

/* A snapshot was taken (or skipped: another daemon's is recent); read the
 * newest one. */
static void tenants_snapshot_done(const struct pgconn_result *r, void *arg)
{
	struct tenants *t = arg;

	if (t->closing)
		return;
	if (r->error != NULL) {
		if (!r->connection_lost)
			log_warning("taking the tenant snapshot: %s", r->error);
	} else if (strcmp(PQgetvalue(r->res, 0, 0), "0") != 0) {
		log_info("tenant snapshot: %s tenant(s) in %.0f ms",
			 PQgetvalue(r->res, 0, 0), r->elapsed_ms);
	}
	if (!pgconn_is_ready(t->conn)) {
		t->in_round = false;
		timer_add_ms(t->timer, TENANTS_RETRY_MS);
		return;
	}
	pgconn_query(t->conn,
		     "SELECT h.tenant_id, h.layout, h.rows, h.bytes,"
		     " pg_catalog.date_part('epoch', h.taken_at)"
		     " FROM pgtenantd.tenant_history h"
		     " WHERE h.taken_at = (SELECT pg_catalog.max(n.taken_at)"
		     " FROM pgtenantd.tenant_history n)",
		     0, NULL, tenants_loaded, t);
}

static void tenants_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tenants *t = arg;
	int64_t interval = t->e->config->tenant_snapshot_interval_ms;
	char gap[48];
	const char *params[1] = { gap };

	(void)fd;
	(void)what;
	if (interval == 0 || t->in_round || t->conn == NULL)
		return;
	if (!t->e->ready || t->e->stopping || !pgconn_is_ready(t->conn)) {
		timer_add_ms(t->timer, TENANTS_RETRY_MS);
		return;
	}
	t->in_round = true;
	interval_ms_text(gap, sizeof(gap), interval - interval / 10);
	pgconn_query(t->conn, "SELECT pgtenantd.snapshot_tenants($1::interval)",
		     1, params, tenants_snapshot_done, t);
}

/* Connect once snapshots are on. */
static void tenants_connect(struct tenants *t)
{
	if (t->conn != NULL || t->e->config->tenant_snapshot_interval_ms == 0)
		return;
	t->conn = engine_connect(t->e, "snapshot", NULL, NULL, t);
	pgconn_start(t->conn);
}

struct tenants *tenants_new(struct engine *e)
{
	struct tenants *t = xcalloc(1, sizeof(*t));

	t->e = e;
	t->timer = evtimer_new(e->base, tenants_timer_cb, t);
	tenants_connect(t);
	timer_add_ms(t->timer, TENANTS_RETRY_MS);
	return t;
}

void tenants_reload(struct tenants *t)
{
	tenants_connect(t);
	if (!t->in_round)
		timer_add_ms(t->timer, TENANTS_RETRY_MS);
}

void tenants_free(struct tenants *t)
{
	if (t == NULL)
		return;
	t->closing = true;
	if (t->conn != NULL)
		pgconn_free(t->conn);
	event_free(t->timer);
	tenantstat_clear(t->stats, t->count);
	free(t->stats);
	free(t);
}

/* An overview request waiting for the database. */
struct tenants_request {
	struct tenants *t;
	tenants_overview_fn cb;
	void *arg;
};

/* t (wall seconds) as "2024-03-31T01:00:00Z". */
static void utc_iso(double t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Put the newest verified backup of each tenant (the catalog) next to what
 * the database said. */
static void tenants_add_backups(struct tenants *t, json_t *list)
{
	json_t *newest = NULL, *tenant;
	char *cause = NULL;
	double now = wall_seconds();
	size_t i;

	if (!backup_catalog_newest(t->e->ckpt, &newest, &cause)) {
		log_warning("tenants: %s", cause);
		free(cause);
		return;
	}
	json_array_foreach(list, i, tenant) {
		const char *id =
			json_string_value(json_object_get(tenant, "tenant_id"));
		json_t *at = id ? json_object_get(newest, id) : NULL;
		char text[32];

		if (!json_is_number(at)) {
			json_object_set_new(tenant, "last_backup_at",
					    json_null());
			json_object_set_new(tenant, "last_backup_age_s",
					    json_null());
			continue;
		}
		utc_iso(json_number_value(at), text, sizeof(text));
		json_object_set_new(tenant, "last_backup_at",
				    json_string(text));
		json_object_set_new(
			tenant, "last_backup_age_s",
			json_integer(
				(json_int_t)(now - json_number_value(at))));
	}
	json_decref(newest);
}

static void tenants_overview_result(const struct pgconn_result *r, void *arg)
{
	struct tenants_request *req = arg;
	json_error_t jerr;
	json_t *list;

	if (r->error != NULL) {
		char *error = xasprintf(
			"%s%s",
			r->connection_lost ? "database unavailable: " : "",
			r->error);

		req->cb(NULL, error, req->arg);
		free(error);
	} else if ((list = json_loads(PQgetvalue(r->res, 0, 0), 0, &jerr)) ==
		   NULL) {
		char *error =
			xasprintf("bad JSON from the database: %s", jerr.text);

		req->cb(NULL, error, req->arg);
		free(error);
	} else {
		tenants_add_backups(req->t, list);
		req->cb(list, NULL, req->arg);
		json_decref(list);
	}
	free(req);
}

void tenants_overview(struct tenants *t, tenants_overview_fn cb, void *arg)
{
	struct tenants_request *req = xcalloc(1, sizeof(*req));

	req->t = t;
	req->cb = cb;
	req->arg = arg;
	/* On the snapshot connection when there is one: with thousands of
	 * tenants and weeks of history the query takes a moment, which the
	 * dispatcher's heartbeats must not wait for (this may wait behind a
	 * snapshot instead). Ages by the database's clock, like the
	 * snapshots. */
	pgconn_query(
		t->conn != NULL ? t->conn : t->e->dispatcher,
		"SELECT coalesce(json_agg(o ORDER BY o.bytes DESC, o.tenant_id),"
		" '[]') FROM (SELECT v.*,"
		" pg_catalog.round(pg_catalog.date_part('epoch',"
		" pg_catalog.now() - v.last_vacuum))::bigint"
		" AS last_vacuum_age_s,"
		" pg_catalog.round(pg_catalog.date_part('epoch',"
		" pg_catalog.now() - v.last_job_at))::bigint AS last_job_age_s,"
		" pg_catalog.round(pg_catalog.date_part('epoch',"
		" pg_catalog.now() - v.taken_at))::bigint AS snapshot_age_s"
		" FROM pgtenantd.tenant_overview v) o",
		0, NULL, tenants_overview_result, req);
}

void tenants_write_metrics(const struct tenants *t, FILE *out)
{
	if (t == NULL || t->taken_at == 0)
		return;
	tenantstat_write_metrics(out, t->stats, t->count,
				 t->e->config->metrics_max_tenants,
				 t->taken_at);
}
