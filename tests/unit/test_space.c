/* test_space.c - the free-space check before a backup: the estimate, the
 * comparison with the reserve (without overflow) and its message. */
#include <stdint.h>
#include <stdlib.h>

#include "space.h"
#include "unit.h"

static void test_estimate(void)
{
	is_int(space_backup_estimate(1000, 50000), 1250,
	       "the last backup and a quarter, whatever the schema's size");
	is_int(space_backup_estimate(0, 50000), 50000,
	       "no backup yet: the schema's size");
	is_int(space_backup_estimate(0, 0), 0, "nothing known: 0");
	is_int(space_backup_estimate(-1, -1), 0, "nonsense: 0");
}

static void test_enough(void)
{
	char *cause = NULL;

	ok(space_enough("backup of tenant 'a'", "/b", 100, 60, 40, &cause),
	   "exactly the estimate and the reserve fit");
	ok(cause == NULL, "... with no cause");
	ok(!space_enough("backup of tenant 'a'", "/b", 100, 60, 41, &cause),
	   "one byte of reserve more does not");
	is_str(cause,
	       "not enough free space for the backup of tenant 'a' in '/b': 100 bytes free, it needs an estimated 60 bytes and backup_min_free_bytes keeps 41 bytes free",
	       "the cause names the path, the free bytes, the estimate and the reserve");
	ok(!space_enough("x", "/b", 100, 101, 0, &cause),
	   "an estimate over the free bytes does not fit");
	ok(!space_enough("x", "/b", INT64_MAX - 1, 10, INT64_MAX, &cause),
	   "a huge reserve does not overflow into fitting");
	ok(space_enough("x", "/b", INT64_MAX, INT64_MAX, 0, &cause),
	   "the largest numbers compare");
	free(cause);
}

static void test_free_bytes(void)
{
	int64_t free_bytes = -1;
	char *cause = NULL;

	ok(space_free_bytes("/", &free_bytes, &cause) && free_bytes >= 0,
	   "the free bytes of /");
	ok(!space_free_bytes("/nonexistent/pgtenantd", &free_bytes, &cause),
	   "a missing directory fails");
	contains(cause,
		 "cannot read the free space of '/nonexistent/pgtenantd'",
		 "... naming it");
	free(cause);
}

int main(void)
{
	test_estimate();
	test_enough();
	test_free_bytes();
	return done_testing();
}
