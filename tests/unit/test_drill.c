/* test_drill.c - the digests a drill's psql prints and their comparison
 * with what a backup recorded. */
#include <sqlite3.h>
#include <stdlib.h>

#include "backup.h"
#include "ckpt.h"
#include "drill.h"
#include "log.h"
#include "unit.h"

static json_t *digests(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);

	if (v == NULL)
		abort();
	return v;
}

static void test_parse(void)
{
	json_t *d = NULL;
	char *cause = NULL;

	ok(drill_parse_output(
		   "ignored\n" DRILL_MARKER
		   "{\"t\": {\"rows\": 1, \"hash\": \"x\"}}\n" DRILL_MARKER
		   "{\"t\": {\"rows\": 2, \"hash\": \"y\"}}\n",
		   &d, &cause),
	   "the marker line parses");
	is_int(json_integer_value(
		       json_object_get(json_object_get(d, "t"), "rows")),
	       2, "the last marker line counts");
	json_decref(d);
	ok(drill_parse_output(DRILL_MARKER "{}", &d, &cause) &&
		   json_object_size(d) == 0,
	   "a schema without tables parses, without a newline at the end");
	json_decref(d);
	ok(!drill_parse_output("SET\nBEGIN\n", &d, &cause) && d == NULL,
	   "no marker line is refused");
	contains(cause, "printed no table digests",
		 "the cause says what is missing");
	ok(!drill_parse_output(DRILL_MARKER "{\"t\": ", &d, &cause),
	   "broken JSON is refused");
	contains(cause, "not JSON", "the cause says it is not JSON");
	ok(!drill_parse_output(DRILL_MARKER
			       "{\"t\": {\"rows\": -1, \"hash\": \"x\"}}",
			       &d, &cause),
	   "negative rows are refused");
	contains(cause, "table 't'", "the cause names the table");
	ok(!drill_parse_output(DRILL_MARKER "[1]", &d, &cause),
	   "an array is refused");
	free(cause);
}

static void test_compare(void)
{
	json_t *rec = digests("{\"a\": {\"rows\": 3, \"hash\": \"h1\"},"
			      " \"b\": {\"rows\": 0, \"hash\": \"h0\"}}");
	json_t *same = digests("{\"b\": {\"rows\": 0, \"hash\": \"h0\"},"
			       " \"a\": {\"rows\": 3, \"hash\": \"h1\"}}");
	json_t *fewer = digests("{\"a\": {\"rows\": 2, \"hash\": \"h2\"},"
				" \"b\": {\"rows\": 0, \"hash\": \"h0\"}}");
	json_t *changed = digests("{\"a\": {\"rows\": 3, \"hash\": \"h9\"},"
				  " \"b\": {\"rows\": 0, \"hash\": \"h0\"}}");
	json_t *missing = digests("{\"a\": {\"rows\": 3, \"hash\": \"h1\"}}");
	json_t *extra = digests("{\"a\": {\"rows\": 3, \"hash\": \"h1\"},"
				" \"b\": {\"rows\": 0, \"hash\": \"h0\"},"
				" \"c\": {\"rows\": 7, \"hash\": \"h7\"}}");
	json_t *many_rec = digests("{\"a\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"b\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"c\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"d\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"e\": {\"rows\": 1, \"hash\": \"x\"}}");
	json_t *many_have = digests("{\"a\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"b\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"c\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"d\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"e\": {\"rows\": 2, \"hash\": \"x\"}}");
	char *cause = NULL;

	ok(drill_compare(rec, same, &cause),
	   "equal digests in another order pass");
	ok(!drill_compare(rec, fewer, &cause), "a missing row fails");
	contains(
		cause,
		"1 table differs from what the backup recorded: table a: the backup recorded 3 rows, the restored copy has 2",
		"the cause names the table and both counts");
	ok(!drill_compare(rec, changed, &cause), "a changed row fails");
	contains(
		cause,
		"table a: same 3 rows, but the backup recorded hash h1 and the restored rows hash to h9",
		"the cause names the table and both hashes");
	ok(!drill_compare(rec, missing, &cause), "a missing table fails");
	contains(
		cause,
		"table b: the backup recorded 0 rows, the restored copy has no such table",
		"the cause names the missing table");
	ok(!drill_compare(rec, extra, &cause), "an extra table fails");
	contains(
		cause,
		"table c: in the restored copy (7 rows) but not recorded in the backup",
		"the cause names the extra table");
	ok(!drill_compare(many_rec, many_have, &cause),
	   "five differences fail");
	contains(cause, "5 tables differ", "the cause counts them all");
	contains(cause, "; and 2 more", "and names only the first three");
	free(cause);
	json_decref(rec);
	json_decref(same);
	json_decref(fewer);
	json_decref(changed);
	json_decref(missing);
	json_decref(extra);
	json_decref(many_rec);
	json_decref(many_have);
}

static void test_summary(void)
{
	json_t *d = digests("{\"a\": {\"rows\": 3, \"hash\": \"h\"},"
			    " \"b\": {\"rows\": 0, \"hash\": \"h\"}}");
	json_t *none = digests("{}");
	char *text = drill_summary(d);

	is_str(text, "a 3 rows, b 0 rows", "the summary lists the tables");
	free(text);
	text = drill_summary(none);
	is_str(text, "no tables", "an empty schema says so");
	free(text);
	json_decref(d);
	json_decref(none);
}

/* A state store of schema version 2 (before drills) with one backup: the
 * catalog the daemon had before this change, made by hand. */
static bool make_v2_store(const char *dir)
{
	char *path = xasprintf("%s/pgtenantd.sqlite", dir);
	sqlite3 *db;
	bool made;

	made = sqlite3_open(path, &db) == SQLITE_OK &&
	       sqlite3_exec(
		       db,
		       "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		       "CREATE TABLE checkpoints (job_id INTEGER NOT NULL,"
		       " step_index INTEGER NOT NULL, step_name TEXT NOT NULL,"
		       " last_key TEXT, rows_done INTEGER NOT NULL DEFAULT 0,"
		       " batches INTEGER NOT NULL DEFAULT 0,"
		       " batch_size INTEGER NOT NULL DEFAULT 0,"
		       " done INTEGER NOT NULL DEFAULT 0,"
		       " started_at REAL NOT NULL DEFAULT 0,"
		       " updated_at REAL NOT NULL DEFAULT 0,"
		       " elapsed_ms REAL NOT NULL DEFAULT 0,"
		       " PRIMARY KEY (job_id, step_index));"
		       "CREATE TABLE backups (id INTEGER PRIMARY KEY,"
		       " tenant_id TEXT NOT NULL, schema TEXT NOT NULL,"
		       " file TEXT NOT NULL, job_id INTEGER, status TEXT NOT NULL,"
		       " size INTEGER NOT NULL DEFAULT 0, sha256 TEXT,"
		       " toc_entries INTEGER NOT NULL DEFAULT 0,"
		       " started_at REAL NOT NULL,"
		       " duration_ms REAL NOT NULL DEFAULT 0,"
		       " dump_ms REAL NOT NULL DEFAULT 0,"
		       " verify_ms REAL NOT NULL DEFAULT 0, verified_at REAL,"
		       " error TEXT, deleted_at REAL);"
		       "CREATE INDEX backups_tenant ON backups (tenant_id, started_at);"
		       "INSERT INTO backups (tenant_id, schema, file, job_id, status,"
		       " sha256, started_at) VALUES ('acme', 'tenant_acme',"
		       " '/b/acme/old.dump', 3, 'verified', 'ab', 1700000000);"
		       "PRAGMA user_version = 2;",
		       NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(db);
	free(path);
	return made;
}

/* The catalog of a daemon from before drills: upgraded in place, its old
 * backup has no digests, and drills are recorded on it. */
static void test_catalog_upgrade(void)
{
	char dir[] = "/tmp/test_drill.XXXXXX";
	struct backup_record rec;
	struct ckpt *ckpt;
	char *cause = NULL, *cmd;
	double passed, failed;
	unsigned failing;
	bool found;
	json_t *list;

	if (mkdtemp(dir) == NULL || !make_v2_store(dir)) {
		ok(false, "a version 2 state store is made");
		return;
	}
	ckpt = ckpt_open(dir, &cause);
	ok(ckpt != NULL, "a version 2 state store opens and is upgraded");
	if (ckpt == NULL) {
		printf("# %s\n", cause);
		return;
	}
	ok(backup_catalog_find(ckpt, "acme", "", &rec, &found, &cause) && found,
	   "its backup is still the newest verified one");
	ok(rec.digests == NULL && rec.drill_outcome == NULL &&
		   rec.drill_at == 0,
	   "with no digests and no drill");
	ok(backup_catalog_drill_stats(ckpt, &passed, &failed, &failing,
				      &cause) &&
		   passed == 0 && failed == 0 && failing == 0,
	   "no drill yet: stats are zero");
	ok(backup_catalog_drill_record(ckpt, rec.id, 1700000100, DRILL_FAILED,
				       9, "table x differs", &cause),
	   "a failed drill is recorded");
	ok(backup_catalog_drill_stats(ckpt, &passed, &failed, &failing,
				      &cause) &&
		   passed == 0 && failed == 1700000100 && failing == 1,
	   "the tenant's newest drill failed");
	ok(backup_catalog_drill_record(ckpt, rec.id, 1700000200, DRILL_PASSED,
				       10, NULL, &cause),
	   "a passed drill is recorded");
	ok(backup_catalog_drill_stats(ckpt, &passed, &failed, &failing,
				      &cause) &&
		   passed == 1700000200 && failing == 0,
	   "now it passed, and no tenant is failing");
	ok(backup_catalog_list(ckpt, "acme", 10, &list, &cause), "list");
	is_str(json_string_value(
		       json_object_get(json_array_get(list, 0), "drill")),
	       DRILL_PASSED, "the list shows the last drill");
	is_int(json_integer_value(json_object_get(json_array_get(list, 0),
						  "drill_job_id")),
	       10, "and its job");
	ok(json_is_null(json_object_get(json_array_get(list, 0),
					"tables_recorded")) &&
		   json_is_null(json_object_get(json_array_get(list, 0),
						"drill_error")),
	   "no recorded tables, no drill error");
	json_decref(list);
	backup_record_clear(&rec);
	ckpt_close(ckpt);
	free(cause);
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
	free(cmd);
}

int main(void)
{
	log_set_level(LOG_LEVEL_WARNING);
	test_parse();
	test_compare();
	test_summary();
	test_catalog_upgrade();
	return done_testing();
}
