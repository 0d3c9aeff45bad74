/* tenantstat.c - the tenants' newest snapshot as Prometheus series, the
 * largest tenants on their own and the rest summed into one. */
#include "tenantstat.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int tenantstat_compare(const void *a, const void *b)
{
	const struct tenantstat *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->tenant_id, y->tenant_id);
}

void tenantstat_sort(struct tenantstat *stats, unsigned count)
{
	if (count > 1)
		qsort(stats, count, sizeof(*stats), tenantstat_compare);
}

char *tenantstat_label_escape(const char *value)
{
	size_t len = strlen(value);
	char *out = xmalloc(2 * len + 1), *o = out;

	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"') {
			*o++ = '\\';
			*o++ = *p;
		} else if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* One series of metric for a tenant. */
static void series(FILE *out, const char *metric, const char *tenant_id,
		   int64_t value)
{
	char *label = tenantstat_label_escape(tenant_id);

	fprintf(out, "pgtenantd_%s{tenant=\"%s\"} %" PRId64 "\n", metric, label,
		value);
	free(label);
}

void tenantstat_write_metrics(FILE *out, const struct tenantstat *stats,
			      unsigned count, unsigned max_tenants,
			      double taken_at)
{
	static const char *const layouts[] = { "shared", "separate",
					       "migrating" };
	static const struct {
		const char *name, *help;
		size_t offset;
	} metrics[] = {
		{ "tenant_bytes",
		  "Size of a tenant's data at the newest snapshot (shared: its rows without indexes; separate: its schema's tables with indexes).",
		  offsetof(struct tenantstat, bytes) },
		{ "tenant_rows",
		  "Rows of a tenant at the newest snapshot (exact in the shared tables, the planner's estimate in a schema).",
		  offsetof(struct tenantstat, rows) },
	};

	fprintf(out,
		"# HELP pgtenantd_tenants Tenants at the newest snapshot, by layout.\n"
		"# TYPE pgtenantd_tenants gauge\n");
	for (size_t l = 0; l < ARRAY_SIZE(layouts); l++) {
		unsigned n = 0;

		for (unsigned i = 0; i < count; i++)
			n += strcmp(stats[i].layout, layouts[l]) == 0;
		fprintf(out, "pgtenantd_tenants{layout=\"%s\"} %u\n",
			layouts[l], n);
	}
	fprintf(out,
		"# HELP pgtenantd_tenant_snapshot_timestamp_seconds When the newest tenant snapshot was taken.\n"
		"# TYPE pgtenantd_tenant_snapshot_timestamp_seconds gauge\n"
		"pgtenantd_tenant_snapshot_timestamp_seconds %.3f\n",
		taken_at);
	for (size_t m = 0; m < ARRAY_SIZE(metrics); m++) {
		int64_t other = 0;
		unsigned own = 0;
		bool any_other = false;

		fprintf(out,
			"# HELP pgtenantd_%s %s\n# TYPE pgtenantd_%s gauge\n",
			metrics[m].name, metrics[m].help, metrics[m].name);
		for (unsigned i = 0; i < count; i++) {
			int64_t v = *(const int64_t *)((const char *)&stats[i] +
						       metrics[m].offset);

			if (!stats[i].summed && own < max_tenants) {
				series(out, metrics[m].name, stats[i].tenant_id,
				       v);
				own++;
			} else {
				other += v;
				any_other = true;
			}
		}
		if (any_other)
			series(out, metrics[m].name, TENANTSTAT_OTHER, other);
	}
}

void tenantstat_clear(struct tenantstat *stats, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		free(stats[i].tenant_id);
		free(stats[i].layout);
	}
}
