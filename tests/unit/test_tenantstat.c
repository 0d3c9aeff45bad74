/* test_tenantstat.c - per-tenant metrics: the largest tenants get their
 * own series, the rest one summed "_other" series, label values are
 * escaped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantstat.h"
#include "unit.h"

/* The metrics text of stats with the cap. */
static char *render(struct tenantstat *stats, unsigned n, unsigned cap)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	tenantstat_sort(stats, n);
	tenantstat_write_metrics(out, stats, n, cap, 1700000000.5);
	fclose(out);
	return text;
}

static void test_escape(void)
{
	char *s = tenantstat_label_escape("a\"b\\c\nd");

	is_str(s, "a\\\"b\\\\c\\nd", "quote, backslash and newline escaped");
	free(s);
	s = tenantstat_label_escape("acme-corp_1");
	is_str(s, "acme-corp_1", "a plain id stays");
	free(s);
}

static void test_cap(void)
{
	struct tenantstat stats[] = {
		{ "small", "shared", 5, 100, false },
		{ "big", "separate", 50, 9000, false },
		{ "mid", "shared", 20, 500, false },
		{ "we\"ird", "migrating", 1, 500, false },
	};
	char *text = render(stats, 4, 2);

	is_str(stats[0].tenant_id, "big", "sorted by bytes, largest first");
	is_str(stats[1].tenant_id, "mid", "... ties by id");
	contains(text, "pgtenantd_tenant_bytes{tenant=\"big\"} 9000\n",
		 "the largest has its own series");
	contains(text, "pgtenantd_tenant_bytes{tenant=\"mid\"} 500\n",
		 "... and the second");
	contains(text, "pgtenantd_tenant_bytes{tenant=\"_other\"} 600\n",
		 "the other two are summed");
	contains(text, "pgtenantd_tenant_rows{tenant=\"_other\"} 6\n",
		 "... their rows too");
	ok(strstr(text, "tenant=\"small\"") == NULL,
	   "a tenant past the cap has no series of its own");
	contains(text, "pgtenantd_tenants{layout=\"shared\"} 2\n",
		 "tenants counted by layout");
	contains(text, "pgtenantd_tenants{layout=\"migrating\"} 1\n",
		 "... all of them");
	contains(text,
		 "pgtenantd_tenant_snapshot_timestamp_seconds 1700000000.500\n",
		 "the snapshot's time");
	free(text);

	text = render(stats, 4, 10);
	contains(text, "pgtenantd_tenant_bytes{tenant=\"we\\\"ird\"} 500\n",
		 "under the cap every tenant has a series, its label escaped");
	ok(strstr(text, "_other") == NULL, "and there is no _other series");
	free(text);

	text = render(stats, 4, 0);
	contains(text, "pgtenantd_tenant_bytes{tenant=\"_other\"} 10100\n",
		 "a cap of 0 sums everything");
	free(text);

	stats[0].summed = true; /* "big", sorted first */
	text = render(stats, 4, 2);
	ok(strstr(text, "tenant=\"big\"") == NULL,
	   "a tenant marked summed has no series of its own");
	contains(text, "pgtenantd_tenant_bytes{tenant=\"we\\\"ird\"} 500\n",
		 "... and leaves its place under the cap to the next");
	contains(text, "pgtenantd_tenant_bytes{tenant=\"_other\"} 9100\n",
		 "... its bytes in _other");
	free(text);
}

int main(void)
{
	test_escape();
	test_cap();
	return done_testing();
}
