/* backup_catalog.c - the catalog of backups: the `backups` table of the
 * SQLite state store (ckpt.c), one row per backup made, with its file,
 * sha256, status, digests and the outcome of its last restore drill, and
 * what retention and pruning remove from it. backup.c makes, checks,
 * restores and drills the backups it lists. */
#include "backup.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup-int.h"
#include "ckpt.h"
#include "log.h"
#include "util.h"

/* ------------------------------------------------------------ records */

void backup_record_clear(struct backup_record *rec)
{
	free(rec->tenant_id);
	free(rec->schema);
	free(rec->file);
	free(rec->status);
	free(rec->sha256);
	free(rec->error);
	free(rec->digests);
	free(rec->drill_outcome);
	free(rec->drill_error);
	memset(rec, 0, sizeof(*rec));
}

/* The part of a path after its last '/'. */
const char *backup_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Seconds since the epoch as UTC ISO 8601 text. */
void backup_utc_text(double t, char *buf, size_t len, bool compact)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ",
		 &tm);
}

/* ------------------------------------------------------------ catalog */

#define BACKUP_COLUMNS                                               \
	"id, tenant_id, schema, file, job_id, status, size, sha256," \
	" toc_entries, started_at, duration_ms, dump_ms, verify_ms," \
	" verified_at, error, deleted_at, digests, drill_at,"        \
	" drill_outcome, drill_error, drill_job_id"

/* Fill cause with SQLite's message for sql. */
static bool catalog_error(struct ckpt *ckpt, const char *sql, char **cause)
{
	return set_cause(cause, "backup catalog %s: \"%s\": %s",
			 ckpt_path(ckpt), sql,
			 sqlite3_errmsg(ckpt_sqlite(ckpt)));
}

static bool catalog_prepare(struct ckpt *ckpt, const char *sql,
			    sqlite3_stmt **stmt, char **cause)
{
	if (sqlite3_prepare_v2(ckpt_sqlite(ckpt), sql, -1, stmt, NULL) ==
	    SQLITE_OK)
		return true;
	sqlite3_finalize(*stmt);
	*stmt = NULL;
	return catalog_error(ckpt, sql, cause);
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(stmt, i);
	else
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
}

static char *column_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

/* Read a row of BACKUP_COLUMNS. */
static void catalog_row(sqlite3_stmt *stmt, struct backup_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->id = sqlite3_column_int64(stmt, 0);
	rec->tenant_id = column_text(stmt, 1);
	rec->schema = column_text(stmt, 2);
	rec->file = column_text(stmt, 3);
	rec->job_id = sqlite3_column_int64(stmt, 4);
	rec->status = column_text(stmt, 5);
	rec->size = sqlite3_column_int64(stmt, 6);
	rec->sha256 = column_text(stmt, 7);
	rec->toc_entries = sqlite3_column_int64(stmt, 8);
	rec->started_at = sqlite3_column_double(stmt, 9);
	rec->duration_ms = sqlite3_column_double(stmt, 10);
	rec->dump_ms = sqlite3_column_double(stmt, 11);
	rec->verify_ms = sqlite3_column_double(stmt, 12);
	rec->verified_at = sqlite3_column_double(stmt, 13);
	rec->error = column_text(stmt, 14);
	rec->deleted_at = sqlite3_column_double(stmt, 15);
	rec->digests = column_text(stmt, 16);
	rec->drill_at = sqlite3_column_double(stmt, 17);
	rec->drill_outcome = column_text(stmt, 18);
	rec->drill_error = column_text(stmt, 19);
	rec->drill_job_id = sqlite3_column_int64(stmt, 20);
}

/* Add a row. */
bool backup_catalog_add(struct ckpt *ckpt, struct backup_record *rec,
			char **cause)
{
	static const char sql[] =
		"INSERT INTO backups (tenant_id, schema, file, job_id, status,"
		" size, sha256, toc_entries, started_at, duration_ms, dump_ms,"
		" verify_ms, verified_at, error, deleted_at, digests)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
		" ?13, ?14, ?15, ?16)";
	sqlite3_stmt *stmt;
	bool ok;

	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	bind_text(stmt, 1, rec->tenant_id);
	bind_text(stmt, 2, rec->schema);
	bind_text(stmt, 3, rec->file);
	sqlite3_bind_int64(stmt, 4, rec->job_id);
	bind_text(stmt, 5, rec->status);
	sqlite3_bind_int64(stmt, 6, rec->size);
	bind_text(stmt, 7, rec->sha256);
	sqlite3_bind_int64(stmt, 8, rec->toc_entries);
	sqlite3_bind_double(stmt, 9, rec->started_at);
	sqlite3_bind_double(stmt, 10, rec->duration_ms);
	sqlite3_bind_double(stmt, 11, rec->dump_ms);
	sqlite3_bind_double(stmt, 12, rec->verify_ms);
	sqlite3_bind_double(stmt, 13, rec->verified_at);
	bind_text(stmt, 14, rec->error);
	sqlite3_bind_double(stmt, 15, rec->deleted_at);
	bind_text(stmt, 16, rec->digests);
	ok = sqlite3_step(stmt) == SQLITE_DONE;
	if (!ok)
		catalog_error(ckpt, sql, cause);
	else
		rec->id = sqlite3_last_insert_rowid(ckpt_sqlite(ckpt));
	sqlite3_finalize(stmt);
	return ok;
}

/* True if text is a positive decimal number. */
static bool all_digits(const char *text)
{
	if (*text == '\0')
		return false;
	for (; *text != '\0'; text++)
		if (!isdigit((unsigned char)*text))
			return false;
	return true;
}

/* Find the backup that spec names. */
bool backup_catalog_find(struct ckpt *ckpt, const char *tenant_id,
			 const char *spec, struct backup_record *out,
			 bool *found, char **cause)
{
	static const char newest_sql[] =
		"SELECT " BACKUP_COLUMNS " FROM backups"
		" WHERE tenant_id = ?1 AND status = 'verified'"
		" ORDER BY started_at DESC, id DESC LIMIT 1";
	static const char id_sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
				     " WHERE tenant_id = ?1 AND id = ?2";
	static const char all_sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
				      " WHERE tenant_id = ?1 ORDER BY id DESC";
	bool latest = spec == NULL || *spec == '\0' ||
		      strcmp(spec, "latest") == 0;
	const char *sql = latest	   ? newest_sql :
			  all_digits(spec) ? id_sql :
					     all_sql;
	sqlite3_stmt *stmt;
	int rc;

	*found = false;
	memset(out, 0, sizeof(*out));
	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	bind_text(stmt, 1, tenant_id);
	if (sql == id_sql)
		sqlite3_bind_int64(stmt, 2, strtoll(spec, NULL, 10));
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const unsigned char *file = sqlite3_column_text(stmt, 3);

		if (sql == all_sql &&
		    (file == NULL ||
		     strcmp(backup_base_name((const char *)file), spec) != 0))
			continue;
		catalog_row(stmt, out);
		*found = true;
		break;
	}
	if (!*found && rc != SQLITE_DONE) {
		catalog_error(ckpt, sql, cause);
		sqlite3_finalize(stmt);
		return false;
	}
	sqlite3_finalize(stmt);
	return true;
}

/* Add what a listed backup recorded of its tables and its last drill:
 * tables_recorded (how many; null for an older backup that recorded
 * none), drill (the outcome, null if never drilled), drill_at,
 * drill_job_id, drill_error. */
static void backup_list_drill(json_t *row, const struct backup_record *rec)
{
	json_t *digests =
		rec->digests != NULL ? json_loads(rec->digests, 0, NULL) : NULL;
	char at[32];

	json_object_set_new(
		row, "tables_recorded",
		json_is_object(digests) ?
			json_integer((json_int_t)json_object_size(digests)) :
			json_null());
	json_decref(digests);
	json_object_set_new(row, "drill",
			    rec->drill_outcome ?
				    json_string(rec->drill_outcome) :
				    json_null());
	backup_utc_text(rec->drill_at, at, sizeof(at), false);
	json_object_set_new(row, "drill_at",
			    rec->drill_at > 0 ? json_string(at) : json_null());
	json_object_set_new(
		row, "drill_job_id",
		rec->drill_job_id > 0 ?
			json_integer((json_int_t)rec->drill_job_id) :
			json_null());
	json_object_set_new(row, "drill_error",
			    rec->drill_error ? json_string(rec->drill_error) :
					       json_null());
}

/* The catalog as JSON, newest first. */
bool backup_catalog_list(struct ckpt *ckpt, const char *tenant_id,
			 unsigned limit, json_t **out, char **cause)
{
	static const char sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
				  " WHERE ?1 IS NULL OR tenant_id = ?1"
				  " ORDER BY started_at DESC, id DESC LIMIT ?2";
	sqlite3_stmt *stmt;
	json_t *list = json_array();
	int rc;

	*out = NULL;
	if (!catalog_prepare(ckpt, sql, &stmt, cause)) {
		json_decref(list);
		return false;
	}
	bind_text(stmt, 1, tenant_id);
	sqlite3_bind_int64(stmt, 2, limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct backup_record rec;
		char created[32];

		catalog_row(stmt, &rec);
		backup_utc_text(rec.started_at, created, sizeof(created),
				false);
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:f, s:I, "
				  "s:s?, s:s?, s:s}",
				  "id", (json_int_t)rec.id, "tenant_id",
				  rec.tenant_id, "created", created, "status",
				  rec.status, "file",
				  backup_base_name(rec.file), "size_bytes",
				  (json_int_t)rec.size, "duration_s",
				  (double)(int64_t)rec.duration_ms / 1000.0,
				  "job_id", (json_int_t)rec.job_id, "sha256",
				  rec.sha256, "error", rec.error, "path",
				  rec.file));
		backup_list_drill(
			json_array_get(list, json_array_size(list) - 1), &rec);
		backup_record_clear(&rec);
	}
	if (rc != SQLITE_DONE) {
		catalog_error(ckpt, sql, cause);
		sqlite3_finalize(stmt);
		json_decref(list);
		return false;
	}
	sqlite3_finalize(stmt);
	*out = list;
	return true;
}

/* Run an UPDATE of one backup that takes its id (?1) and a time (?2). */
static bool catalog_update_at(struct ckpt *ckpt, const char *sql, int64_t id,
			      double now, char **cause)
{
	sqlite3_stmt *stmt;
	bool ok;

	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_double(stmt, 2, now);
	ok = sqlite3_step(stmt) == SQLITE_DONE;
	if (!ok)
		catalog_error(ckpt, sql, cause);
	sqlite3_finalize(stmt);
	return ok;
}

/* Note that a backup's file was removed at now. */
static bool catalog_mark_deleted(struct ckpt *ckpt, int64_t id, double now,
				 char **cause)
{
	return catalog_update_at(ckpt,
				 "UPDATE backups SET status = 'deleted',"
				 " deleted_at = ?2 WHERE id = ?1",
				 id, now, cause);
}

/* Forget removed backups past max_age_ms. */
bool backup_catalog_prune(struct ckpt *ckpt, int64_t max_age_ms, double now,
			  unsigned *pruned, char **cause)
{
	static const char sql[] = "DELETE FROM backups WHERE status = 'deleted'"
				  " AND deleted_at < ?1";
	sqlite3_stmt *stmt;
	bool ok;

	*pruned = 0;
	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	sqlite3_bind_double(stmt, 1, now - (double)max_age_ms / 1000.0);
	ok = sqlite3_step(stmt) == SQLITE_DONE;
	if (ok)
		*pruned = (unsigned)sqlite3_changes(ckpt_sqlite(ckpt));
	else
		catalog_error(ckpt, sql, cause);
	sqlite3_finalize(stmt);
	return ok;
}

/* Note the outcome of a restore drill of a backup. */
bool backup_catalog_drill_record(struct ckpt *ckpt, int64_t id, double now,
				 const char *outcome, int64_t job_id,
				 const char *error, char **cause)
{
	static const char sql[] =
		"UPDATE backups SET drill_at = ?2, drill_outcome = ?3,"
		" drill_job_id = ?4, drill_error = ?5 WHERE id = ?1";
	sqlite3_stmt *stmt;
	bool ok;

	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_double(stmt, 2, now);
	bind_text(stmt, 3, outcome);
	sqlite3_bind_int64(stmt, 4, job_id);
	bind_text(stmt, 5, error);
	ok = sqlite3_step(stmt) == SQLITE_DONE;
	if (!ok)
		catalog_error(ckpt, sql, cause);
	sqlite3_finalize(stmt);
	return ok;
}

/* The newest passed and failed drills, and the tenants whose newest drill
 * failed. */
bool backup_catalog_drill_stats(struct ckpt *ckpt, double *last_passed,
				double *last_failed, unsigned *failing_tenants,
				char **cause)
{
	static const char sql[] =
		"SELECT (SELECT max(drill_at) FROM backups"
		"         WHERE drill_outcome = 'passed'),"
		"       (SELECT max(drill_at) FROM backups"
		"         WHERE drill_outcome = 'failed'),"
		"       (SELECT count(*) FROM backups b"
		"         WHERE b.drill_outcome = 'failed'"
		"           AND b.drill_at = (SELECT max(c.drill_at) FROM backups c"
		"                              WHERE c.tenant_id = b.tenant_id))";
	sqlite3_stmt *stmt;
	bool ok;

	*last_passed = *last_failed = 0;
	*failing_tenants = 0;
	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	ok = sqlite3_step(stmt) == SQLITE_ROW;
	if (ok) {
		*last_passed = sqlite3_column_double(stmt, 0);
		*last_failed = sqlite3_column_double(stmt, 1);
		*failing_tenants = (unsigned)sqlite3_column_int64(stmt, 2);
	} else {
		catalog_error(ckpt, sql, cause);
	}
	sqlite3_finalize(stmt);
	return ok;
}

/* Note that a backup was read back again at now. */
bool backup_catalog_mark_checked(struct ckpt *ckpt, int64_t id, double now,
				 char **cause)
{
	return catalog_update_at(
		ckpt, "UPDATE backups SET verified_at = ?2 WHERE id = ?1", id,
		now, cause);
}

/* Retention for one tenant. */
bool backup_retention(struct ckpt *ckpt, const char *tenant_id, unsigned keep,
		      int64_t max_age_ms, double now, unsigned *removed,
		      char **cause)
{
	static const char sql[] =
		"SELECT id, file, started_at FROM backups"
		" WHERE tenant_id = ?1 AND status = 'verified'"
		" ORDER BY started_at DESC, id DESC";
	sqlite3_stmt *stmt;
	int64_t *ids = NULL;
	char **files = NULL;
	unsigned n = 0, rank = 0;
	int rc;
	bool ok = true;

	*removed = 0;
	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	bind_text(stmt, 1, tenant_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		double age_ms = (now - sqlite3_column_double(stmt, 2)) * 1000;

		rank++;
		if (rank == 1)
			continue; /* the newest verified backup stays */
		if (!((keep > 0 && rank > keep) ||
		      (max_age_ms > 0 && age_ms > (double)max_age_ms)))
			continue;
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		files = xrealloc(files, (n + 1) * sizeof(*files));
		ids[n] = sqlite3_column_int64(stmt, 0);
		files[n] = column_text(stmt, 1);
		n++;
	}
	if (rc != SQLITE_DONE)
		ok = catalog_error(ckpt, sql, cause);
	sqlite3_finalize(stmt);
	for (unsigned i = 0; ok && i < n; i++) {
		if (files[i] != NULL && unlink(files[i]) != 0 &&
		    errno != ENOENT) {
			ok = set_cause(cause,
				       "backup retention: cannot remove %s: %s",
				       files[i], strerror(errno));
			break;
		}
		if (!catalog_mark_deleted(ckpt, ids[i], now, cause)) {
			ok = false;
			break;
		}
		log_info("backup retention: removed %s of tenant %s",
			 files[i] ? files[i] : "?", tenant_id);
		(*removed)++;
	}
	for (unsigned i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(ids);
	return ok;
}

/* Find the catalog row of the file a restore names. */
bool backup_catalog_find_file(struct ckpt *ckpt, const char *tenant_id,
			      const char *file, struct backup_record *out,
			      bool *found, char **cause)
{
	static const char sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
				  " WHERE tenant_id = ?1 AND file = ?2"
				  " ORDER BY id DESC LIMIT 1";
	sqlite3_stmt *stmt;
	int rc;

	*found = false;
	memset(out, 0, sizeof(*out));
	if (!catalog_prepare(ckpt, sql, &stmt, cause))
		return false;
	bind_text(stmt, 1, tenant_id);
	bind_text(stmt, 2, file);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		catalog_row(stmt, out);
		*found = true;
	} else if (rc != SQLITE_DONE) {
		catalog_error(ckpt, sql, cause);
		sqlite3_finalize(stmt);
		return false;
	}
	sqlite3_finalize(stmt);
	return true;
}

/* The newest verified backup of every tenant (backups_tenant serves the
 * max per tenant). */
bool backup_catalog_newest(struct ckpt *ckpt, json_t **out, char **cause)
{
	static const char sql[] =
		"SELECT tenant_id, max(started_at)"
		" FROM backups WHERE status = '" BACKUP_VERIFIED
		"' GROUP BY tenant_id";
	sqlite3_stmt *stmt;
	json_t *newest = json_object();
	int rc;

	*out = NULL;
	if (!catalog_prepare(ckpt, sql, &stmt, cause)) {
		json_decref(newest);
		return false;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		json_object_set_new(newest,
				    (const char *)sqlite3_column_text(stmt, 0),
				    json_real(sqlite3_column_double(stmt, 1)));
	if (rc != SQLITE_DONE) {
		catalog_error(ckpt, sql, cause);
		sqlite3_finalize(stmt);
		json_decref(newest);
		return false;
	}
	sqlite3_finalize(stmt);
	*out = newest;
	return true;
}
