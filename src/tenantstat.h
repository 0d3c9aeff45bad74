/* tenantstat.h - the newest snapshot of the tenants (layout, rows, bytes)
 * as Prometheus series: the largest tenants each get their own, the rest
 * are summed into one tenant="_other" series so that a fleet of thousands
 * does not flood the time series database. */
#ifndef PGT_TENANTSTAT_H
#define PGT_TENANTSTAT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One tenant in a snapshot. */
struct tenantstat {
	char *tenant_id;
	char *layout; /* shared, separate or migrating */
	int64_t rows; /* exact in the shared tables, estimated in a schema */
	int64_t bytes;
	bool summed; /* never a series of its own: an id that is not a valid
		      * tenant id (text of the shared tables' tenant_id) */
};

/* The tenant label's value for the tenants past the cap. */
#define TENANTSTAT_OTHER "_other"

/* Sort by bytes, largest first (ties by tenant id), for the cap. */
void tenantstat_sort(struct tenantstat *stats, unsigned count);

/* A Prometheus label value with backslash, double quote and newline
 * escaped as the text format requires. A new string. */
char *tenantstat_label_escape(const char *value);

/* Write the tenant metrics of a snapshot taken at taken_at (wall seconds):
 * the number of tenants per layout, and bytes and rows of the max_tenants
 * first of stats (sort them first) that are not `summed` under their
 * tenant id, the rest summed under TENANTSTAT_OTHER (no such series when
 * none is left over). */
void tenantstat_write_metrics(FILE *out, const struct tenantstat *stats,
			      unsigned count, unsigned max_tenants,
			      double taken_at);

void tenantstat_clear(struct tenantstat *stats, unsigned count);

#endif
