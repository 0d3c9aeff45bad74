/* ckpt.c - the local checkpoint store: SQLite in WAL mode under state_dir. */
#include "ckpt.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define CKPT_DB_NAME "pgtenantd.sqlite"
#define CKPT_LOCK_NAME "lock"
#define CKPT_BUSY_TIMEOUT_MS 5000
#define CKPT_NODE_ID_LEN 16

struct ckpt {
	char *state_dir;
	char *db_path;
	int lock_fd;
	bool locked;
	sqlite3 *db;
	sqlite3_stmt *save_stmt;
	sqlite3_stmt *load_stmt;
	sqlite3_stmt *forget_stmt;
	char node_id[CKPT_NODE_ID_LEN + 1];
};

enum ckpt_param_type {
	CKPT_PARAM_INT64,
	CKPT_PARAM_DOUBLE,
	CKPT_PARAM_TEXT, /* a NULL text binds SQL NULL */
};

/* One value bound to a statement, named for error messages. */
struct ckpt_param {
	enum ckpt_param_type type;
	const char *name;
	int64_t i;
	double d;
	const char *s;
};

/* Schema versions: migrations[n] takes user_version n to n + 1. */
static const char *const migrations[] = {
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);"
	"CREATE TABLE checkpoints ("
	" job_id INTEGER NOT NULL,"
	" step_index INTEGER NOT NULL,"
	" step_name TEXT NOT NULL,"
	" last_key TEXT,"
	" rows_done INTEGER NOT NULL DEFAULT 0,"
	" batches INTEGER NOT NULL DEFAULT 0,"
	" batch_size INTEGER NOT NULL DEFAULT 0,"
	" done INTEGER NOT NULL DEFAULT 0,"
	" started_at REAL NOT NULL DEFAULT 0,"
	" updated_at REAL NOT NULL DEFAULT 0,"
	" elapsed_ms REAL NOT NULL DEFAULT 0,"
	" PRIMARY KEY (job_id, step_index));",
	/* 2: the backup catalog (backup.c) */
	"CREATE TABLE backups ("
	" id INTEGER PRIMARY KEY,"
	" tenant_id TEXT NOT NULL,"
	" schema TEXT NOT NULL,"
	" file TEXT NOT NULL,"
	" job_id INTEGER,"
	" status TEXT NOT NULL,"
	" size INTEGER NOT NULL DEFAULT 0,"
	" sha256 TEXT,"
	" toc_entries INTEGER NOT NULL DEFAULT 0,"
	" started_at REAL NOT NULL,"
	" duration_ms REAL NOT NULL DEFAULT 0,"
	" dump_ms REAL NOT NULL DEFAULT 0,"
	" verify_ms REAL NOT NULL DEFAULT 0,"
	" verified_at REAL,"
	" error TEXT,"
	" deleted_at REAL);"
	"CREATE INDEX backups_tenant ON backups (tenant_id, started_at);",
	/* 3: restore drills: the tables a backup recorded, the last drill */
	"ALTER TABLE backups ADD COLUMN digests TEXT;"
	"ALTER TABLE backups ADD COLUMN drill_at REAL;"
	"ALTER TABLE backups ADD COLUMN drill_outcome TEXT;"
	"ALTER TABLE backups ADD COLUMN drill_error TEXT;"
	"ALTER TABLE backups ADD COLUMN drill_job_id INTEGER;",
};

static const char save_sql[] =
	"INSERT OR REPLACE INTO checkpoints (job_id, step_index, step_name,"
	" last_key, rows_done, batches, batch_size, done, started_at,"
	" updated_at, elapsed_ms)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

static const char load_sql[] =
	"SELECT step_name, last_key, rows_done, batches, batch_size, done,"
	" started_at, updated_at, elapsed_ms"
	" FROM checkpoints WHERE job_id = ?1 AND step_index = ?2";

/* Fill cause with a failure of sql, quoting it and SQLite's message. */
static bool ckpt_sql_error(struct ckpt *ckpt, const char *what, const char *sql,
			   char **cause)
{
	return set_cause(cause, "checkpoint store %s: cannot %s \"%s\": %s",
			 ckpt->db_path, what, sql, sqlite3_errmsg(ckpt->db));
}

/* Compile sql into *stmt. */
static bool ckpt_sql_prepare(struct ckpt *ckpt, const char *sql,
			     sqlite3_stmt **stmt, char **cause)
{
	*stmt = NULL;
	if (sqlite3_prepare_v2(ckpt->db, sql, -1, stmt, NULL) != SQLITE_OK) {
		sqlite3_finalize(*stmt);
		*stmt = NULL;
		return ckpt_sql_error(ckpt, "prepare", sql, cause);
	}
	return true;
}

/* Bind params to the ?1..?n placeholders of stmt after resetting it. */
static bool ckpt_sql_bind(struct ckpt *ckpt, sqlite3_stmt *stmt,
			  const struct ckpt_param *params, int n, char **cause)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	for (int i = 0; i < n; i++) {
		const struct ckpt_param *p = &params[i];
		int rc;

		switch (p->type) {
		case CKPT_PARAM_INT64:
			rc = sqlite3_bind_int64(stmt, i + 1, p->i);
			break;
		case CKPT_PARAM_DOUBLE:
			rc = sqlite3_bind_double(stmt, i + 1, p->d);
			break;
		case CKPT_PARAM_TEXT:
		default:
			if (p->s == NULL)
				rc = sqlite3_bind_null(stmt, i + 1);
			else
				rc = sqlite3_bind_text(stmt, i + 1, p->s, -1,
						       SQLITE_TRANSIENT);
			break;
		}
		if (rc != SQLITE_OK) {
			return set_cause(
				cause,
				"checkpoint store %s: cannot bind %s in \"%s\": %s",
				ckpt->db_path, p->name, sqlite3_sql(stmt),
				sqlite3_errmsg(ckpt->db));
		}
	}
	return true;
}

/* Step stmt once: *row tells whether a row is ready; row may be NULL for a
 * statement that must not return rows. */
static bool ckpt_sql_step(struct ckpt *ckpt, sqlite3_stmt *stmt, bool *row,
			  char **cause)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW && row != NULL) {
		*row = true;
		return true;
	}
	if (rc == SQLITE_DONE) {
		if (row != NULL)
			*row = false;
		return true;
	}
	ckpt_sql_error(ckpt, "execute", sqlite3_sql(stmt), cause);
	sqlite3_reset(stmt);
	return false;
}

/* Run sql, which may hold several statements and must not return rows. */
static bool ckpt_sql_exec(struct ckpt *ckpt, const char *sql, char **cause)
{
	char *msg = NULL;

	if (sqlite3_exec(ckpt->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_cause(cause,
			  "checkpoint store %s: cannot execute \"%s\": %s",
			  ckpt->db_path, sql,
			  msg != NULL ? msg : sqlite3_errmsg(ckpt->db));
		sqlite3_free(msg);
		return false;
	}
	return true;
}

/* Run a one-row query such as a PRAGMA and copy its first column. */
static bool ckpt_sql_text(struct ckpt *ckpt, const char *sql, char **value,
			  char **cause)
{
	sqlite3_stmt *stmt;
	const unsigned char *text;
	bool row;

	*value = NULL;
	if (!ckpt_sql_prepare(ckpt, sql, &stmt, cause))
		return false;
	if (!ckpt_sql_step(ckpt, stmt, &row, cause)) {
		sqlite3_finalize(stmt);
		return false;
	}
	if (row) {
		text = sqlite3_column_text(stmt, 0);
		*value = xstrdup(text != NULL ? (const char *)text : "");
	}
	sqlite3_finalize(stmt);
	return true;
}

/* Roll back the open transaction after a failure; the cause is kept. */
static void ckpt_rollback(struct ckpt *ckpt)
{
	char *cause = NULL;

	if (sqlite3_get_autocommit(ckpt->db))
		return;
	if (!ckpt_sql_exec(ckpt, "ROLLBACK", &cause))
		log_warning("%s", cause);
	free(cause);
}

/* Create dir and its missing parents with mode 0700. */
static bool ckpt_make_dir(const char *dir, char **cause)
{
	char *path = xstrdup(dir);
	struct stat st;

	for (char *p = path + 1;; p++) {
		bool last = (*p == '\0');

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			int e = errno;

			if (last)
				set_cause(cause,
					  "cannot create state_dir %s: %s", dir,
					  strerror(e));
			else
				set_cause(cause,
					  "cannot create state_dir %s: %s: %s",
					  dir, path, strerror(e));
			free(path);
			return false;
		}
		if (last)
			break;
		*p = '/';
	}
	free(path);
	if (stat(dir, &st) != 0)
		return set_cause(cause, "cannot use state_dir %s: %s", dir,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return set_cause(
			cause, "cannot use state_dir %s: not a directory", dir);
	return true;
}

/* Take the exclusive lock on state_dir/lock and write our pid into it. */
static bool ckpt_lock(struct ckpt *ckpt, char **cause)
{
	char *path = xasprintf("%s/%s", ckpt->state_dir, CKPT_LOCK_NAME);
	char text[32];
	ssize_t n;
	int len;

	ckpt->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ckpt->lock_fd < 0) {
		set_cause(cause, "cannot open lock file %s: %s", path,
			  strerror(errno));
		free(path);
		return false;
	}
	if (flock(ckpt->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			n = pread(ckpt->lock_fd, text, sizeof(text) - 1, 0);
			text[n > 0 ? n : 0] = '\0';
			text[strcspn(text, "\r\n")] = '\0';
			set_cause(
				cause,
				"state_dir %s is in use by another pgtenantd (pid %s)",
				ckpt->state_dir,
				text[0] != '\0' ? text : "unknown");
		} else {
			set_cause(cause, "cannot lock %s: %s", path,
				  strerror(errno));
		}
		free(path);
		return false;
	}
	ckpt->locked = true;
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(ckpt->lock_fd, 0) != 0 ||
	    pwrite(ckpt->lock_fd, text, len, 0) != len) {
		set_cause(cause, "cannot write lock file %s: %s", path,
			  strerror(errno));
		free(path);
		return false;
	}
	free(path);
	return true;
}

/* Bring the schema to the newest version, one migration per version. */
static bool ckpt_migrate(struct ckpt *ckpt, char **cause)
{
	const int newest = (int)ARRAY_SIZE(migrations);
	char *text, *sql;
	int version;

	if (!ckpt_sql_exec(ckpt, "BEGIN IMMEDIATE", cause))
		return false;
	if (!ckpt_sql_text(ckpt, "PRAGMA user_version", &text, cause))
		goto fail;
	version = text != NULL ? atoi(text) : 0;
	free(text);
	if (version > newest) {
		set_cause(
			cause,
			"checkpoint store %s has schema version %d, newer than this pgtenantd knows (%d)",
			ckpt->db_path, version, newest);
		goto fail;
	}
	if (version == newest)
		return ckpt_sql_exec(ckpt, "COMMIT", cause);
	for (; version < newest; version++) {
		if (!ckpt_sql_exec(ckpt, migrations[version], cause))
			goto fail;
	}
	sql = xasprintf("PRAGMA user_version = %d", newest);
	if (!ckpt_sql_exec(ckpt, sql, cause)) {
		free(sql);
		goto fail;
	}
	free(sql);
	if (!ckpt_sql_exec(ckpt, "COMMIT", cause))
		goto fail;
	log_info("checkpoint store %s: schema at version %d", ckpt->db_path,
		 newest);
	return true;
fail:
	ckpt_rollback(ckpt);
	return false;
}

/* True if text is exactly CKPT_NODE_ID_LEN lowercase hex digits. */
static bool ckpt_node_id_valid(const char *text)
{
	size_t i;

	for (i = 0; text[i] != '\0'; i++) {
		if (!isxdigit((unsigned char)text[i]) ||
		    isupper((unsigned char)text[i]))
			return false;
	}
	return i == CKPT_NODE_ID_LEN;
}

/* Read node_id from meta, generating and storing it on first use. */
static bool ckpt_load_node_id(struct ckpt *ckpt, char **cause)
{
	static const char insert_sql[] =
		"INSERT OR IGNORE INTO meta (key, value)"
		" VALUES ('node_id', ?1)";
	static const char select_sql[] =
		"SELECT value FROM meta WHERE key = 'node_id'";
	sqlite3_stmt *stmt = NULL;
	unsigned char bytes[CKPT_NODE_ID_LEN / 2];
	char fresh[CKPT_NODE_ID_LEN + 1];
	const unsigned char *text;
	struct ckpt_param param = { CKPT_PARAM_TEXT, "node_id", 0, 0, fresh };
	bool row;

	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
		return set_cause(cause, "cannot make a node id: getrandom: %s",
				 strerror(errno));
	for (size_t i = 0; i < sizeof(bytes); i++)
		snprintf(fresh + 2 * i, 3, "%02x", bytes[i]);

	if (!ckpt_sql_exec(ckpt, "BEGIN IMMEDIATE", cause))
		return false;
	if (!ckpt_sql_prepare(ckpt, insert_sql, &stmt, cause) ||
	    !ckpt_sql_bind(ckpt, stmt, &param, 1, cause) ||
	    !ckpt_sql_step(ckpt, stmt, NULL, cause))
		goto fail;
	sqlite3_finalize(stmt);
	if (!ckpt_sql_prepare(ckpt, select_sql, &stmt, cause) ||
	    !ckpt_sql_step(ckpt, stmt, &row, cause))
		goto fail;
	text = row ? sqlite3_column_text(stmt, 0) : NULL;
	if (text == NULL || !ckpt_node_id_valid((const char *)text)) {
		set_cause(
			cause,
			"checkpoint store %s: meta.node_id is not %d hex digits: '%s'",
			ckpt->db_path, CKPT_NODE_ID_LEN,
			text != NULL ? (const char *)text : "");
		goto fail;
	}
	memcpy(ckpt->node_id, text, CKPT_NODE_ID_LEN + 1);
	sqlite3_finalize(stmt);
	return ckpt_sql_exec(ckpt, "COMMIT", cause);
fail:
	sqlite3_finalize(stmt);
	ckpt_rollback(ckpt);
	return false;
}

/* Open the database and set WAL mode, synchronous, timeouts and keys. */
static bool ckpt_open_db(struct ckpt *ckpt, char **cause)
{
	char *mode;

	if (sqlite3_open_v2(ckpt->db_path, &ckpt->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		return set_cause(cause, "cannot open checkpoint store %s: %s",
				 ckpt->db_path,
				 ckpt->db != NULL ? sqlite3_errmsg(ckpt->db) :
						    "out of memory");
	}
	sqlite3_extended_result_codes(ckpt->db, 1);
	sqlite3_busy_timeout(ckpt->db, CKPT_BUSY_TIMEOUT_MS);
	if (!ckpt_sql_text(ckpt, "PRAGMA journal_mode = WAL", &mode, cause))
		return false;
	if (mode == NULL || strcasecmp(mode, "wal") != 0) {
		set_cause(
			cause,
			"checkpoint store %s: cannot switch to WAL mode (journal_mode is %s)",
			ckpt->db_path, mode != NULL ? mode : "unknown");
		free(mode);
		return false;
	}
	free(mode);
	return ckpt_sql_exec(ckpt, "PRAGMA synchronous = NORMAL", cause) &&
	       ckpt_sql_exec(ckpt, "PRAGMA foreign_keys = ON", cause);
}

/* Open (creating if needed) the store under state_dir and lock it. */
struct ckpt *ckpt_open(const char *state_dir, char **cause)
{
	struct ckpt *ckpt;

	if (state_dir == NULL || *state_dir == '\0') {
		set_cause(cause, "state_dir is empty");
		return NULL;
	}
	if (!ckpt_make_dir(state_dir, cause))
		return NULL;
	ckpt = xcalloc(1, sizeof(*ckpt));
	ckpt->lock_fd = -1;
	ckpt->state_dir = xstrdup(state_dir);
	ckpt->db_path = xasprintf("%s/%s", state_dir, CKPT_DB_NAME);
	if (!ckpt_lock(ckpt, cause) || !ckpt_open_db(ckpt, cause) ||
	    !ckpt_migrate(ckpt, cause) || !ckpt_load_node_id(ckpt, cause) ||
	    !ckpt_sql_prepare(ckpt, save_sql, &ckpt->save_stmt, cause) ||
	    !ckpt_sql_prepare(ckpt, load_sql, &ckpt->load_stmt, cause)) {
		ckpt_close(ckpt);
		return NULL;
	}
	return ckpt;
}

/* Close the database and release the state_dir lock. */
void ckpt_close(struct ckpt *ckpt)
{
	if (ckpt == NULL)
		return;
	sqlite3_finalize(ckpt->save_stmt);
	sqlite3_finalize(ckpt->load_stmt);
	sqlite3_finalize(ckpt->forget_stmt);
	if (ckpt->db != NULL && sqlite3_close(ckpt->db) != SQLITE_OK)
		log_warning("checkpoint store %s: cannot close: %s",
			    ckpt->db_path, sqlite3_errmsg(ckpt->db));
	if (ckpt->locked && ftruncate(ckpt->lock_fd, 0) != 0)
		log_debug("cannot truncate %s/%s: %s", ckpt->state_dir,
			  CKPT_LOCK_NAME, strerror(errno));
	if (ckpt->lock_fd >= 0)
		close(ckpt->lock_fd);
	free(ckpt->state_dir);
	free(ckpt->db_path);
	free(ckpt);
}

/* This daemon's persistent identity, read or made at open. */
const char *ckpt_node_id(const struct ckpt *ckpt)
{
	return ckpt->node_id;
}

/* The SQLite handle, for the backup catalog in the same store. */
sqlite3 *ckpt_sqlite(struct ckpt *ckpt)
{
	return ckpt->db;
}

/* The path of the SQLite file, for messages. */
const char *ckpt_path(const struct ckpt *ckpt)
{
	return ckpt->db_path;
}

/* Insert or replace the checkpoint of (job_id, step_index). */
bool ckpt_save(struct ckpt *ckpt, const struct ckpt_step *step, char **cause)
{
	const struct ckpt_param params[] = {
		{ CKPT_PARAM_INT64, "job_id", step->job_id, 0, NULL },
		{ CKPT_PARAM_INT64, "step_index", step->step_index, 0, NULL },
		{ CKPT_PARAM_TEXT, "step_name", 0, 0, step->step_name },
		{ CKPT_PARAM_TEXT, "last_key", 0, 0, step->last_key },
		{ CKPT_PARAM_INT64, "rows_done", step->rows_done, 0, NULL },
		{ CKPT_PARAM_INT64, "batches", step->batches, 0, NULL },
		{ CKPT_PARAM_INT64, "batch_size", step->batch_size, 0, NULL },
		{ CKPT_PARAM_INT64, "done", step->done ? 1 : 0, 0, NULL },
		{ CKPT_PARAM_DOUBLE, "started_at", 0, step->started_at, NULL },
		{ CKPT_PARAM_DOUBLE, "updated_at", 0, step->updated_at, NULL },
		{ CKPT_PARAM_DOUBLE, "elapsed_ms", 0, step->elapsed_ms, NULL },
	};
	bool ok;

	ok = ckpt_sql_bind(ckpt, ckpt->save_stmt, params,
			   (int)ARRAY_SIZE(params), cause) &&
	     ckpt_sql_step(ckpt, ckpt->save_stmt, NULL, cause);
	sqlite3_reset(ckpt->save_stmt);
	sqlite3_clear_bindings(ckpt->save_stmt);
	if (!ok && cause != NULL) {
		char *inner = *cause;

		*cause = NULL;
		set_cause(cause,
			  "cannot save checkpoint of job %lld step %d (%s): %s",
			  (long long)step->job_id, step->step_index,
			  step->step_name,
			  inner != NULL ? inner : "unknown error");
		free(inner);
	}
	return ok;
}

/* Copy column col of stmt, or NULL for SQL NULL. */
static char *ckpt_column_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *text;

	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return NULL;
	text = sqlite3_column_text(stmt, col);
	return xstrdup(text != NULL ? (const char *)text : "");
}

/* Load the checkpoint of (job_id, step_index) into out. */
bool ckpt_load(struct ckpt *ckpt, int64_t job_id, int step_index,
	       struct ckpt_step *out, bool *found, char **cause)
{
	const struct ckpt_param params[] = {
		{ CKPT_PARAM_INT64, "job_id", job_id, 0, NULL },
		{ CKPT_PARAM_INT64, "step_index", step_index, 0, NULL },
	};
	sqlite3_stmt *stmt = ckpt->load_stmt;
	const unsigned char *name;
	bool row;

	memset(out, 0, sizeof(*out));
	*found = false;
	if (!ckpt_sql_bind(ckpt, stmt, params, (int)ARRAY_SIZE(params),
			   cause) ||
	    !ckpt_sql_step(ckpt, stmt, &row, cause)) {
		sqlite3_reset(stmt);
		return false;
	}
	if (!row) {
		sqlite3_reset(stmt);
		return false;
	}
	out->job_id = job_id;
	out->step_index = step_index;
	name = sqlite3_column_text(stmt, 0);
	snprintf(out->step_name, sizeof(out->step_name), "%s",
		 name != NULL ? (const char *)name : "");
	out->last_key = ckpt_column_text(stmt, 1);
	out->rows_done = sqlite3_column_int64(stmt, 2);
	out->batches = sqlite3_column_int64(stmt, 3);
	out->batch_size = sqlite3_column_int64(stmt, 4);
	out->done = sqlite3_column_int64(stmt, 5) != 0;
	out->started_at = sqlite3_column_double(stmt, 6);
	out->updated_at = sqlite3_column_double(stmt, 7);
	out->elapsed_ms = sqlite3_column_double(stmt, 8);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	*found = true;
	return true;
}

/* Free the strings a loaded ckpt_step owns. */
void ckpt_step_clear(struct ckpt_step *step)
{
	free(step->last_key);
	step->last_key = NULL;
}

/* Forget every checkpoint of a job. */
bool ckpt_forget(struct ckpt *ckpt, int64_t job_id, char **cause)
{
	static const char sql[] = "DELETE FROM checkpoints WHERE job_id = ?1";
	const struct ckpt_param param = { CKPT_PARAM_INT64, "job_id", job_id, 0,
					  NULL };
	bool ok;

	/* once per job: prepared once */
	if (ckpt->forget_stmt == NULL &&
	    !ckpt_sql_prepare(ckpt, sql, &ckpt->forget_stmt, cause))
		return false;
	ok = ckpt_sql_bind(ckpt, ckpt->forget_stmt, &param, 1, cause) &&
	     ckpt_sql_step(ckpt, ckpt->forget_stmt, NULL, cause);
	sqlite3_reset(ckpt->forget_stmt);
	sqlite3_clear_bindings(ckpt->forget_stmt);
	return ok;
}

/* List the job ids that have checkpoints, in ascending order. */
bool ckpt_jobs(struct ckpt *ckpt, int64_t **ids, unsigned *count, char **cause)
{
	static const char sql[] =
		"SELECT DISTINCT job_id FROM checkpoints ORDER BY job_id";
	sqlite3_stmt *stmt;
	unsigned n = 0, size = 0;
	int64_t *list = NULL;
	bool row;

	*ids = NULL;
	*count = 0;
	if (!ckpt_sql_prepare(ckpt, sql, &stmt, cause))
		return false;
	for (;;) {
		if (!ckpt_sql_step(ckpt, stmt, &row, cause)) {
			sqlite3_finalize(stmt);
			free(list);
			return false;
		}
		if (!row)
			break;
		if (n == size) {
			size = size != 0 ? size * 2 : 8;
			list = xrealloc(list, size * sizeof(*list));
		}
		list[n++] = sqlite3_column_int64(stmt, 0);
	}
	sqlite3_finalize(stmt);
	*ids = list;
	*count = n;
	return true;
}
