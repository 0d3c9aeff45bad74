/* prune.h - keeping the history bounded: finished jobs, fired schedule
 * slots, tenant snapshots and the catalog rows of removed backups past the
 * ages the configuration keeps (keep_* keys), every prune_interval. */
#ifndef PGTENANTD_PRUNE_H
#define PGTENANTD_PRUNE_H

struct engine;
struct prune;

/* Start pruning every e->config->prune_interval_ms once the engine is
 * ready (the first round one interval after start). */
struct prune *prune_new(struct engine *e);

void prune_free(struct prune *p);

#endif
