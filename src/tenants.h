/* tenants.h - the tenant history: every tenant_snapshot_interval one
 * snapshot of every tenant's layout, rows and bytes into
 * pgtenantd.tenant_history (on a connection of its own), the newest one
 * kept in memory for the per-tenant metrics, and the overview that
 * pgtenantctl tenants shows. */
#ifndef PGT_TENANTS_H
#define PGT_TENANTS_H

#include <stdio.h>

#include <jansson.h>

struct engine;
struct tenants;

/* Start taking snapshots every e->config->tenant_snapshot_interval_ms
 * (none while it is 0), the first one soon after the engine is ready. */
struct tenants *tenants_new(struct engine *e);

/* The configuration was reloaded: connect if snapshots were turned on, and
 * take the next one by the new interval. */
void tenants_reload(struct tenants *t);

void tenants_free(struct tenants *t);

/* What tenants_overview answers: the tenants (a new reference) or an error
 * that says why not. */
typedef void (*tenants_overview_fn)(json_t *tenants, const char *error,
				    void *arg);

/* Every tenant of the newest snapshot (pgtenantd.tenant_overview, on the
 * snapshot connection, or the dispatcher's while snapshots are off) with
 * the age of its newest verified backup from the catalog; cb is called
 * exactly once, from the loop. */
void tenants_overview(struct tenants *t, tenants_overview_fn cb, void *arg);

/* The per-tenant Prometheus series of the newest snapshot (nothing before
 * the first one is known). */
void tenants_write_metrics(const struct tenants *t, FILE *out);

#endif
