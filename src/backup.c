/* backup.c - per-tenant backups: pg_dump as a child process into a
 * temporary file under backup_dir/<tenant>/, read back with pg_restore
 * --list and hashed with sha256sum (both at once), renamed into place only
 * when both succeeded, and recorded in the `backups` table of the SQLite
 * state store. A failed or unreadable dump never gets its final name, so a
 * step that requires a backup can rely on it. */
#include "backup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "child.h"
#include "backup-int.h"
#include "ckpt.h"
#include "drill.h"
#include "log.h"
#include "space.h"
#include "tenant.h"

#define BACKUP_EXT ".dump"
#define BACKUP_PARTIAL_EXT ".partial"
#define BACKUP_RESTORE_EXT ".sql"
#define BACKUP_SHA256_LEN 64

/* ------------------------------------------------------------ files */

/* Create dir (one level under an existing or creatable parent) 0700. */
static bool make_dirs(const char *dir, char **cause)
{
	char *path = xstrdup(dir);

	for (char *p = path + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			set_cause(cause, "cannot create %s: %s", path,
				  strerror(errno));
			free(path);
			return false;
		}
		if (last)
			break;
		*p = '/';
	}
	free(path);
	return true;
}

/* Remove what an interrupted run left in a tenant's directory: partial
 * dumps and restore scripts (only one job of a tenant runs at a time). */
static void remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char *path;

		if (de->d_name[0] != '.' ||
		    !((n > strlen(BACKUP_PARTIAL_EXT) &&
		       strcmp(de->d_name + n - strlen(BACKUP_PARTIAL_EXT),
			      BACKUP_PARTIAL_EXT) == 0) ||
		      (n > strlen(BACKUP_RESTORE_EXT) &&
		       strcmp(de->d_name + n - strlen(BACKUP_RESTORE_EXT),
			      BACKUP_RESTORE_EXT) == 0)))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (unlink(path) == 0)
			log_info("removed %s, left by an interrupted run",
				 path);
		free(path);
	}
	closedir(d);
}

/* fsync a directory so that a rename in it is durable. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fsync(fd) != 0)
		log_warning("cannot fsync %s: %s", dir, strerror(errno));
	close(fd);
}

/* The schema's pattern for pg_dump --schema. */
char *backup_schema_pattern(const char *schema)
{
	size_t n = strlen(schema);
	char *out = xmalloc(2 * n + 3), *p = out;

	*p++ = '"';
	for (const char *s = schema; *s != '\0'; s++) {
		if (*s == '"')
			*p++ = '"';
		*p++ = *s;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

/* ------------------------------------------------------------ operations */

struct backup_op {
	enum backup_kind kind;
	struct event_base *base;
	struct ckpt *ckpt;
	char *backup_dir;
	unsigned keep;
	int64_t max_age_ms;
	char **env;
	int64_t timeout_ms;
	int64_t min_free_bytes; /* see struct backup_request */
	int64_t schema_bytes;
	int64_t job_id;
	char *tenant_id;
	char *schema;
	char *arg;
	backup_done_fn done;
	void *done_arg;

	char *dir;  /* backup_dir/<tenant> */
	char *tmp;  /* the dump being written, or the restore SQL */
	char *file; /* the final dump */
	struct child *children[2];
	unsigned running; /* children in the current phase */
	bool cancelled;
	int64_t started_ms;
	int64_t phase_ms;
	double started_at;
	double dump_ms;

	/* read-back results */
	bool list_ok;
	char *list_error;
	int64_t toc_entries;
	bool toc_has_schema;
	char sha256[BACKUP_SHA256_LEN + 1];
	char *hash_error;

	struct backup_record rec; /* BACKUP_CHECK, BACKUP_RESTORE: the backup */
	char *restore_role;	  /* "" for the schema's owner */
	char *dump_owner;	  /* the schema's owner in the dump's TOC */
	int dump_fd;		  /* BACKUP_RESTORE: the dump, open, or -1 */
	int script_fd; /* BACKUP_RESTORE: the unlinked script, or -1 */

	char *snapshot;	    /* BACKUP_MAKE: for pg_dump --snapshot, or "" */
	bool want_digests;  /* BACKUP_MAKE: take them in that snapshot */
	char *digests;	    /* BACKUP_MAKE: table_digests JSON, or NULL */
	char *digest_error; /* why they could not be taken, or NULL */
	double digest_ms;
	char *dump_error; /* how pg_dump failed, or NULL */
	char *test_gate;  /* BACKUP_DRILL, or "" */
	char *scratch;	  /* BACKUP_DRILL: the live schema's name while the
			   * drill's transaction lasts; "" for a restore */
	int64_t drill_backup_id; /* BACKUP_DRILL: the backup found, or 0 */
};

static void backup_begin_cb(evutil_socket_t fd, short what, void *arg);

static char **env_copy(char *const *env)
{
	size_t n = 0;
	char **copy;

	while (env != NULL && env[n] != NULL)
		n++;
	copy = xcalloc(n + 1, sizeof(*copy));
	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(env[i]);
	return copy;
}

static void backup_op_free(struct backup_op *op)
{
	for (size_t i = 0; op->env != NULL && op->env[i] != NULL; i++)
		free(op->env[i]);
	free(op->env);
	free(op->backup_dir);
	free(op->tenant_id);
	free(op->schema);
	free(op->arg);
	free(op->dir);
	free(op->tmp);
	free(op->file);
	free(op->list_error);
	free(op->hash_error);
	backup_record_clear(&op->rec);
	free(op->restore_role);
	free(op->dump_owner);
	free(op->snapshot);
	free(op->digests);
	free(op->digest_error);
	free(op->dump_error);
	free(op->test_gate);
	free(op->scratch);
	if (op->dump_fd >= 0)
		close(op->dump_fd);
	if (op->script_fd >= 0)
		close(op->script_fd);
	free(op);
}

/* Record a drill's outcome on its backup's catalog row (best effort: the
 * job row has it anyway). */
static void backup_drill_record(struct backup_op *op, const char *outcome,
				const char *error)
{
	char *cause = NULL;

	if (!backup_catalog_drill_record(op->ckpt, op->drill_backup_id,
					 wall_seconds(), outcome, op->job_id,
					 error, &cause)) {
		log_warning("%s", cause);
		free(cause);
	}
}

/* Report the outcome and free op. */
static void backup_finish(struct backup_op *op, bool ok, bool retry,
			  const char *error, json_t *vars, json_t *result)
{
	struct backup_result r = {
		.ok = ok && !op->cancelled,
		.retry = retry,
		.cancelled = op->cancelled,
		.error = op->cancelled && !ok ? "cancelled" : error,
		.vars = vars,
		.result = result,
	};

	char *drill_error = NULL;

	if (op->cancelled && ok) {
		r.ok = true; /* it completed before the cancel took */
		r.cancelled = false;
	}
	if (op->kind == BACKUP_DRILL && op->drill_backup_id != 0 &&
	    !r.cancelled) {
		if (!r.ok) {
			drill_error = xasprintf(
				"restore drill of backup %" PRId64 ": %s",
				op->drill_backup_id, r.error ? r.error : "?");
			r.error = drill_error;
		}
		r.drill_outcome = r.ok ? DRILL_PASSED : DRILL_FAILED;
		backup_drill_record(op, r.drill_outcome, drill_error);
	}
	op->done(&r, op->done_arg);
	free(drill_error);
	json_decref(vars);
	json_decref(result);
	backup_op_free(op);
}

static void __attribute__((format(printf, 3, 4)))
backup_fail(struct backup_op *op, bool retry, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	backup_finish(op, false, retry, msg, NULL, NULL);
	free(msg);
}

/* The end of a child's stderr, for messages. */
static char *stderr_tail(const struct child_result *cr)
{
	const char *text = cr->stderr_text ? cr->stderr_text : "";
	size_t len = cr->stderr_len;

	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len > 800) {
		text += len - 800;
		len = 800;
	}
	return xstrndup(text, len);
}

/* How a child ended, as text: "exited with status 1: <stderr>". */
static char *child_outcome(const char *program, const struct child_result *cr)
{
	char *tail = stderr_tail(cr), *text;

	if (cr->timed_out)
		text = xasprintf("%s timed out after %.0f ms%s%s", program,
				 cr->elapsed_ms, *tail ? ": " : "", tail);
	else if (cr->term_signal != 0)
		text = xasprintf("%s was killed by signal %d%s%s", program,
				 cr->term_signal, *tail ? ": " : "", tail);
	else
		text = xasprintf("%s exited with status %d%s%s", program,
				 cr->exit_code, *tail ? ": " : "", tail);
	free(tail);
	return text;
}

static bool child_succeeded(const struct child_result *cr)
{
	return cr->exit_code == 0 && cr->term_signal == 0 && !cr->timed_out;
}

/* Start one child of the current phase in slot i. */
static bool backup_spawn(struct backup_op *op, unsigned i, char **argv,
			 child_done_fn done, char **cause)
{
	op->children[i] = child_spawn(op->base, argv, op->env, op->timeout_ms,
				      done, op, cause);
	if (op->children[i] == NULL)
		return false;
	op->running++;
	return true;
}

/* Forget the child in slot i (it ended); true once the phase is over. */
static bool backup_child_ended(struct backup_op *op, unsigned i)
{
	op->children[i] = NULL;
	op->running--;
	return op->running == 0;
}

/* --- reading a dump back: pg_restore --list and sha256sum at once */

static void backup_read_back_done(struct backup_op *op);

/* Parse pg_restore --list: count the entries, look for the schema. */
static void parse_toc(struct backup_op *op, const char *text)
{
	const char *line = text;

	op->toc_entries = 0;
	op->toc_has_schema = false;
	while (line != NULL && *line != '\0') {
		const char *end = strchrnul(line, '\n');
		const char *mark;

		if (*line != ';' && end > line) {
			op->toc_entries++;
			mark = strstr(line, " SCHEMA - ");
			if (mark != NULL && mark < end) {
				const char *name = mark + strlen(" SCHEMA - ");
				size_t n = strlen(op->schema);

				if ((size_t)(end - name) >= n &&
				    strncmp(name, op->schema, n) == 0 &&
				    (name[n] == ' ' || name + n == end))
					op->toc_has_schema = true;
			}
		}
		line = *end != '\0' ? end + 1 : NULL;
	}
}

static void backup_listed(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;

	if (child_succeeded(cr)) {
		op->list_ok = true;
		parse_toc(op, cr->stdout_text);
	} else {
		op->list_error = child_outcome("pg_restore --list", cr);
	}
	if (backup_child_ended(op, 0))
		backup_read_back_done(op);
}

static void backup_hashed(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	const char *out = cr->stdout_text ? cr->stdout_text : "";
	size_t n = strspn(out, "0123456789abcdef");

	if (child_succeeded(cr) && n == BACKUP_SHA256_LEN) {
		memcpy(op->sha256, out, BACKUP_SHA256_LEN);
		op->sha256[BACKUP_SHA256_LEN] = '\0';
	} else {
		op->hash_error = child_succeeded(cr) ?
					 xstrdup("sha256sum printed no hash") :
					 child_outcome("sha256sum", cr);
	}
	if (backup_child_ended(op, 1))
		backup_read_back_done(op);
}

/* Read path back: both children at once. */
static void backup_read_back(struct backup_op *op, const char *path)
{
	char *list_argv[] = { "pg_restore", "--list", (char *)path, NULL };
	char *hash_argv[] = { "sha256sum", "--", (char *)path, NULL };
	char *cause = NULL;

	op->phase_ms = mono_ms();
	if (!backup_spawn(op, 0, list_argv, backup_listed, &cause)) {
		op->list_error = cause;
		backup_read_back_done(op);
		return;
	}
	if (!backup_spawn(op, 1, hash_argv, backup_hashed, &cause))
		op->hash_error = cause; /* reported when pg_restore ends */
}

/* --- BACKUP_MAKE */

/* vars and result of a backup found or made. */
static void backup_outputs(struct backup_op *op,
			   const struct backup_record *rec, bool made,
			   unsigned removed, json_t **vars, json_t **result)
{
	char created[32];

	backup_utc_text(rec->started_at, created, sizeof(created), false);
	*vars = json_pack("{s:s, s:I, s:s, s:I}", "backup_file", rec->file,
			  "backup_id", (json_int_t)rec->id, "backup_sha256",
			  rec->sha256 ? rec->sha256 : "", "backup_size",
			  (json_int_t)rec->size);
	*result = json_pack("{s:{s:I, s:s, s:s, s:I, s:s, s:I, s:s, s:b}}",
			    "backup", "id", (json_int_t)rec->id, "file",
			    rec->file, "schema", rec->schema, "size_bytes",
			    (json_int_t)rec->size, "sha256",
			    rec->sha256 ? rec->sha256 : "", "toc_entries",
			    (json_int_t)op->toc_entries, "created", created,
			    "verified", true);
	if (made) {
		json_t *b = json_object_get(*result, "backup");

		json_object_set_new(b, "dump_ms",
				    json_integer((json_int_t)op->dump_ms));
		json_object_set_new(b, "verify_ms",
				    json_integer((json_int_t)rec->verify_ms));
		json_object_set_new(b, "duration_ms",
				    json_integer((json_int_t)rec->duration_ms));
		json_object_set_new(b, "removed_by_retention",
				    json_integer(removed));
		/* the tables as the dump's snapshot had them; null when not
		 * taken (backup_digests: false) */
		json_object_set_new(b, "tables",
				    op->digests ?
					    json_loads(op->digests, 0, NULL) :
					    json_null());
		if (op->digests != NULL)
			json_object_set_new(
				b, "digest_ms",
				json_integer((json_int_t)op->digest_ms));
	} else {
		json_object_set_new(json_object_get(*result, "backup"),
				    "checked", json_true());
	}
}

/* Record a failed backup in the catalog (best effort). */
static void backup_record_failure(struct backup_op *op, const char *error)
{
	struct backup_record rec = {
		.tenant_id = op->tenant_id,
		.schema = op->schema,
		.file = op->file,
		.job_id = op->job_id,
		.status = BACKUP_FAILED,
		.started_at = op->started_at,
		.duration_ms = (double)(mono_ms() - op->started_ms),
		.dump_ms = op->dump_ms,
		.error = (char *)error,
	};
	char *cause = NULL;

	if (!backup_catalog_add(op->ckpt, &rec, &cause)) {
		log_warning("%s", cause);
		free(cause);
	}
}

static void backup_make_read_back_done(struct backup_op *op)
{
	struct backup_record rec = { 0 };
	struct stat st;
	char *error = NULL, *cause = NULL;
	unsigned removed = 0;
	json_t *vars, *result;

	if (op->cancelled)
		error = xstrdup("cancelled");
	else if (!op->list_ok)
		error = xasprintf(
			"the dump is not readable, so it was removed: %s",
			op->list_error ? op->list_error : "?");
	else if (!op->toc_has_schema)
		error = xasprintf(
			"pg_restore --list shows no schema %s in the dump, so it was removed",
			op->schema);
	else if (op->hash_error != NULL)
		error = xasprintf("cannot hash the dump: %s", op->hash_error);
	else if (stat(op->tmp, &st) != 0)
		error = xasprintf("cannot stat %s: %s", op->tmp,
				  strerror(errno));
	else if (rename(op->tmp, op->file) != 0)
		error = xasprintf("cannot rename %s to %s: %s", op->tmp,
				  op->file, strerror(errno));
	if (error != NULL) {
		unlink(op->tmp);
		if (!op->cancelled)
			backup_record_failure(op, error);
		backup_fail(op, true, "backup of schema %s: %s", op->schema,
			    error);
		free(error);
		return;
	}
	sync_dir(op->dir);
	rec.tenant_id = op->tenant_id;
	rec.schema = op->schema;
	rec.file = op->file;
	rec.job_id = op->job_id;
	rec.status = BACKUP_VERIFIED;
	rec.size = st.st_size;
	rec.sha256 = op->sha256;
	rec.toc_entries = op->toc_entries;
	rec.started_at = op->started_at;
	rec.dump_ms = op->dump_ms;
	rec.verify_ms = (double)(mono_ms() - op->phase_ms);
	rec.duration_ms = (double)(mono_ms() - op->started_ms);
	rec.verified_at = wall_seconds();
	rec.digests = op->digests;
	if (!backup_catalog_add(op->ckpt, &rec, &cause)) {
		/* unrecorded, the file would never be found or removed */
		unlink(op->file);
		backup_fail(op, true, "backup of schema %s: %s", op->schema,
			    cause);
		free(cause);
		return;
	}
	log_info(
		"backup of tenant %s: %s, %lld bytes, sha256 %.12s..., %lld TOC entries, %.0f ms",
		op->tenant_id, op->file, (long long)rec.size, rec.sha256,
		(long long)rec.toc_entries, rec.duration_ms);
	if (!backup_retention(op->ckpt, op->tenant_id, op->keep, op->max_age_ms,
			      wall_seconds(), &removed, &cause)) {
		log_warning("%s", cause);
		free(cause);
	}
	backup_outputs(op, &rec, true, removed, &vars, &result);
	backup_finish(op, true, false, NULL, vars, result);
}

/* pg_dump and the digests' psql have both ended: read the dump back if
 * both succeeded. */
static void backup_dump_phase_done(struct backup_op *op)
{
	char *what = NULL;

	if (op->cancelled)
		what = xstrdup("cancelled");
	else if (op->dump_error != NULL)
		what = xstrdup(op->dump_error);
	else if (op->digest_error != NULL)
		what = xasprintf(
			"cannot take the table digests in pg_dump's snapshot: %s",
			op->digest_error);
	if (what != NULL) {
		unlink(op->tmp);
		if (!op->cancelled)
			backup_record_failure(op, what);
		backup_fail(op, true, "backup of schema %s: %s", op->schema,
			    what);
		free(what);
		return;
	}
	backup_read_back(op, op->tmp);
}

static void backup_dumped(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;

	op->dump_ms = cr->elapsed_ms;
	if (!child_succeeded(cr))
		op->dump_error = child_outcome("pg_dump", cr);
	if (backup_child_ended(op, 0))
		backup_dump_phase_done(op);
}

static void backup_digested(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	json_t *digests = NULL;
	char *cause = NULL;

	op->digest_ms = cr->elapsed_ms;
	if (!child_succeeded(cr)) {
		op->digest_error = child_outcome("psql", cr);
	} else if (!drill_parse_output(cr->stdout_text, &digests, &cause)) {
		op->digest_error = cause;
	} else {
		op->digests =
			json_dumps(digests, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(digests);
	}
	if (backup_child_ended(op, 1))
		backup_dump_phase_done(op);
}

/* What the digests' psql runs: pgtenantd.table_digests in the snapshot
 * pg_dump dumps, imported from the job's transaction that exported it
 * (which stays open until the backup ends). Values come from psql
 * variables (-v), never from the text. */
static const char digest_script[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n"
	"SET TRANSACTION SNAPSHOT :'snapshot';\n"
	"SELECT '" DRILL_MARKER
	"' || pgtenantd.table_digests(:'schema')::text;\n"
	"ROLLBACK;\n";

static bool script_append(struct backup_op *op, const char *text);

/* Start the psql that takes the digests, as the second child of the dump
 * phase. Its script is an unlinked file, as a restore's. */
static bool backup_spawn_digests(struct backup_op *op, char **cause)
{
	char *path = xasprintf("%s/.digests-j%" PRId64
			       "-XXXXXX" BACKUP_RESTORE_EXT,
			       op->dir, op->job_id);
	char *schema_v = xasprintf("schema=%s", op->schema);
	char *snapshot_v = xasprintf("snapshot=%s", op->snapshot);
	char *argv[] = { "psql",     "-X",     "-q",
			 "-At",	     "-v",     "ON_ERROR_STOP=1",
			 "-v",	     schema_v, "-v",
			 snapshot_v, "-f",     "-",
			 NULL };
	bool ok = false;

	op->script_fd = mkostemps(path, strlen(BACKUP_RESTORE_EXT), O_CLOEXEC);
	if (op->script_fd < 0) {
		set_cause(cause, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	unlink(path);
	if (!script_append(op, digest_script)) {
		set_cause(cause, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	if (lseek(op->script_fd, 0, SEEK_SET) != 0) {
		set_cause(cause, "cannot rewind %s: %s", path, strerror(errno));
		goto out;
	}
	op->children[1] = child_spawn_fds(op->base, argv, op->env,
					  op->script_fd, -1, op->timeout_ms,
					  backup_digested, op, cause);
	if (op->children[1] != NULL) {
		op->running++;
		ok = true;
	}
out:
	free(path);
	free(schema_v);
	free(snapshot_v);
	return ok;
}

/* Pick file names and start pg_dump. */
/* Whether backup_dir has room for this backup (space.h): the estimate
 * from the tenant's newest verified backup, else the schema's size. */
static bool backup_make_space_ok(struct backup_op *op, char **cause)
{
	struct backup_record last = { 0 };
	int64_t free_bytes, estimate;
	bool found = false, ok;
	char *what;

	if (!backup_catalog_find(op->ckpt, op->tenant_id, "latest", &last,
				 &found, cause))
		return false;
	estimate =
		space_backup_estimate(found ? last.size : 0, op->schema_bytes);
	backup_record_clear(&last);
	if (!space_free_bytes(op->dir, &free_bytes, cause))
		return false;
	what = xasprintf("backup of tenant '%s'", op->tenant_id);
	ok = space_enough(what, op->dir, free_bytes, estimate,
			  op->min_free_bytes, cause);
	free(what);
	return ok;
}

static void backup_make(struct backup_op *op)
{
	char stamp[32], *pattern, *schema_opt, *file_opt, *cause = NULL;
	struct stat st;
	bool started;

	backup_utc_text(op->started_at, stamp, sizeof(stamp), true);
	for (int n = 1;; n++) {
		free(op->file);
		op->file = n == 1 ? xasprintf("%s/%s-%s-j%" PRId64 BACKUP_EXT,
					      op->dir, op->schema, stamp,
					      op->job_id) :
				    xasprintf("%s/%s-%s-j%" PRId64
					      "-%d" BACKUP_EXT,
					      op->dir, op->schema, stamp,
					      op->job_id, n);
		if (stat(op->file, &st) != 0)
			break;
	}
	op->tmp = xasprintf("%s/.%s" BACKUP_PARTIAL_EXT, op->dir,
			    backup_base_name(op->file));
	/* refused for good (a retry finds no more room), and catalogued as
	 * failed so that pgtenantctl backups shows why */
	if (!backup_make_space_ok(op, &cause)) {
		backup_record_failure(op, cause);
		backup_fail(op, false, "%s", cause);
		free(cause);
		return;
	}
	pattern = backup_schema_pattern(op->schema);
	schema_opt = xasprintf("--schema=%s", pattern);
	file_opt = xasprintf("--file=%s", op->tmp);
	{
		char *snapshot_opt = xasprintf("--snapshot=%s", op->snapshot);
		char *argv[] = {
			"pg_dump",  "--format=custom", "--strict-names",
			schema_opt, file_opt,	       snapshot_opt,
			NULL
		};

		/* without a snapshot, pg_dump takes its own */
		if (op->snapshot[0] == '\0')
			argv[5] = NULL;
		op->phase_ms = mono_ms();
		started = backup_spawn(op, 0, argv, backup_dumped, &cause);
		free(snapshot_opt);
	}
	free(pattern);
	free(schema_opt);
	free(file_opt);
	if (!started) {
		backup_record_failure(op, cause);
		backup_fail(op, true, "backup of schema %s: %s", op->schema,
			    cause);
		free(cause);
		return;
	}
	/* the digests at the same time: reported when pg_dump ends */
	if (op->want_digests && !backup_spawn_digests(op, &cause))
		op->digest_error = cause;
}

/* --- BACKUP_CHECK */

static void backup_check_read_back_done(struct backup_op *op)
{
	char *cause = NULL;
	json_t *vars, *result;

	if (op->cancelled) {
		backup_fail(op, false, "cancelled");
		return;
	}
	if (!op->list_ok) {
		backup_fail(op, false, "backup %s is not readable: %s",
			    op->rec.file, op->list_error);
		return;
	}
	if (op->hash_error != NULL) {
		backup_fail(op, true, "cannot hash backup %s: %s", op->rec.file,
			    op->hash_error);
		return;
	}
	if (op->rec.sha256 == NULL || strcmp(op->rec.sha256, op->sha256) != 0) {
		backup_fail(
			op, false,
			"backup %s has changed since it was made: its sha256 is %s, the catalog has %s",
			op->rec.file, op->sha256,
			op->rec.sha256 ? op->rec.sha256 : "none");
		return;
	}
	if (!op->toc_has_schema) {
		backup_fail(op, false, "backup %s holds no schema %s",
			    op->rec.file, op->schema);
		return;
	}
	if (op->rec.id != 0 &&
	    !backup_catalog_mark_checked(op->ckpt, op->rec.id, wall_seconds(),
					 &cause)) {
		log_warning("%s", cause);
		free(cause);
	}
	free(op->rec.sha256);
	op->rec.sha256 = xstrdup(op->sha256);
	backup_outputs(op, &op->rec, false, 0, &vars, &result);
	backup_finish(op, true, false, NULL, vars, result);
}

/* Find the backup op->arg names in the catalog (an id, a file name, or ""
 * or "latest" for the newest verified one); false, with the job failed,
 * unless it is there and verified. prefix and purpose go into the
 * messages. A drill's outcome goes on the row it found. */
static bool backup_find_verified(struct backup_op *op, const char *prefix,
				 const char *purpose)
{
	struct backup_record *rec = &op->rec;
	bool found = false;
	char *cause = NULL;

	if (!backup_catalog_find(op->ckpt, op->tenant_id, op->arg, rec, &found,
				 &cause)) {
		backup_fail(op, true, "%s", cause);
		free(cause);
		return false;
	}
	/* a file in the directory without a catalog row is never used: a
	 * dump is code, and only the daemon's own verified ones are trusted */
	if (!found) {
		if (op->arg[0] == '\0' || strcmp(op->arg, "latest") == 0)
			backup_fail(
				op, false,
				"%stenant %s has no verified backup to %s (run a backup job first)",
				prefix, op->tenant_id, purpose);
		else
			backup_fail(
				op, false,
				"%stenant %s has no backup '%s' in its catalog (give a catalog id or the file name of a backup this daemon made in %s; files without a catalog row are never used)",
				prefix, op->tenant_id, op->arg, op->dir);
		return false;
	}
	if (op->kind == BACKUP_DRILL)
		op->drill_backup_id = rec->id;
	if (strcmp(rec->status, BACKUP_VERIFIED) != 0) {
		backup_fail(op, false,
			    "%sbackup %" PRId64 " (%s) is %s, not verified%s%s",
			    prefix, rec->id, backup_base_name(rec->file),
			    rec->status, rec->error ? ": " : "",
			    rec->error ? rec->error : "");
		return false;
	}
	return true;
}

/* Find the backup named by op->arg and read it back. */
static void backup_check(struct backup_op *op)
{
	struct backup_record *rec = &op->rec;
	struct stat st;

	if (!backup_find_verified(op, "", "restore"))
		return;
	if (stat(rec->file, &st) != 0) {
		backup_fail(op, false, "backup %" PRId64 " is missing: %s: %s",
			    rec->id, rec->file, strerror(errno));
		return;
	}
	backup_read_back(op, rec->file);
}

/* --- BACKUP_RESTORE */

/* The TOC entry types a tenant schema made of tables needs; anything else
 * in a dump refuses its restore (doc/maintenance.md lists them). Longer
 * names first: a type is matched as a prefix followed by a space. */
static const char *const toc_allowed_types[] = {
	"TABLE DATA",	"TABLE ATTACH", "TABLE",	 "SEQUENCE OWNED BY",
	"SEQUENCE SET", "SEQUENCE",	"FK CONSTRAINT", "CHECK CONSTRAINT",
	"CONSTRAINT",	"INDEX ATTACH", "INDEX",	 "DEFAULT",
	"STATISTICS",	"COMMENT",	"ACL",		 "SCHEMA",
};

/* If text starts with word and a space, the text after them, else NULL. */
static const char *skip_word(const char *text, const char *end,
			     const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - text) > n && strncmp(text, word, n) == 0 &&
	    text[n] == ' ')
		return text + n + 1;
	return NULL;
}

/* Check one TOC line "ID; CATALOG OID TYPE NAMESPACE TAG OWNER". */
static bool toc_line_ok(const char *line, const char *end, const char *schema,
			char **owner)
{
	const char *p = memchr(line, ';', (size_t)(end - line)), *rest;
	const char *type = NULL;

	if (p == NULL || p + 1 >= end || p[1] != ' ')
		return false;
	p += 2;
	for (int field = 0; field < 2; field++) { /* catalog oid, object oid */
		p += strspn(p, "0123456789");
		if (p >= end || *p != ' ')
			return false;
		p++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(toc_allowed_types) && type == NULL;
	     i++) {
		rest = skip_word(p, end, toc_allowed_types[i]);
		if (rest != NULL)
			type = toc_allowed_types[i];
	}
	if (type == NULL)
		return false;
	if (strcmp(type, "SCHEMA") == 0) {
		/* SCHEMA - <schema> <owner> */
		rest = skip_word(rest, end, "-");
		if (rest == NULL)
			return false;
		if (skip_word(rest, end, schema) == NULL &&
		    !((size_t)(end - rest) == strlen(schema) &&
		      strncmp(rest, schema, strlen(schema)) == 0))
			return false;
		rest = skip_word(rest, end, schema);
		if (owner != NULL) {
			free(*owner);
			*owner = rest != NULL ?
					 xstrndup(rest, (size_t)(end - rest)) :
					 xstrdup("");
		}
		return true;
	}
	if ((strcmp(type, "COMMENT") == 0 || strcmp(type, "ACL") == 0) &&
	    skip_word(rest, end, "-") != NULL) {
		/* COMMENT - SCHEMA <schema> <owner>: about the schema itself */
		rest = skip_word(skip_word(rest, end, "-"), end, "SCHEMA");
		return rest != NULL &&
		       (skip_word(rest, end, schema) != NULL ||
			((size_t)(end - rest) == strlen(schema) &&
			 strncmp(rest, schema, strlen(schema)) == 0));
	}
	return skip_word(rest, end, schema) != NULL;
}

/* Check that a dump's TOC holds only the tenant schema's own objects. */
bool backup_toc_check(const char *toc, const char *schema, char **owner,
		      char **cause)
{
	const char *line = toc != NULL ? toc : "";
	unsigned schemas = 0;

	if (owner != NULL)
		*owner = NULL;
	while (*line != '\0') {
		const char *end = strchrnul(line, '\n');
		char *shown;

		if (*line != ';' && end > line) {
			if (!toc_line_ok(line, end, schema, owner)) {
				shown = xstrndup(line, (size_t)(end - line));
				set_cause(
					cause,
					"the dump holds an entry that is not a table, sequence, index, constraint, comment or grant of schema %s: '%s' (a dump is code: only the entry types of doc/maintenance.md are restored)",
					schema, shown);
				free(shown);
				goto refused;
			}
			if (strstr(line, " SCHEMA - ") != NULL &&
			    strstr(line, " SCHEMA - ") < end)
				schemas++;
		}
		line = *end != '\0' ? end + 1 : end;
	}
	if (schemas != 1) {
		set_cause(cause,
			  "the dump holds %u entries for schema %s, not one",
			  schemas, schema);
		goto refused;
	}
	return true;
refused:
	if (owner != NULL) {
		free(*owner);
		*owner = NULL;
	}
	return false;
}

/* The SQL psql runs before the dump's: as the daemon's role, pick the
 * restore role, refuse a superuser, replace the schema by an empty one
 * owned by that role, and become it for the rest of the transaction. The
 * values come from psql variables (-v), never from the text. A drill
 * (scratch not empty) renames the live schema to scratch instead of
 * dropping it: the rename is not committed (the drill rolls back), so
 * every other session keeps seeing and using the live schema by its name,
 * and the rename takes no lock on its tables. */
static const char restore_prologue[] =
	"SET search_path = pg_catalog, pg_temp;\n"
	"SELECT pg_catalog.set_config('pgtenantd.restore_schema', :'schema', false),\n"
	"       pg_catalog.set_config('pgtenantd.restore_role', :'restore_role', false),\n"
	"       pg_catalog.set_config('pgtenantd.restore_dump_owner', :'dump_owner', false),\n"
	"       pg_catalog.set_config('pgtenantd.restore_scratch', :'scratch', false);\n"
	"DO $pgt$\n"
	"DECLARE\n"
	"  s text := pg_catalog.current_setting('pgtenantd.restore_schema');\n"
	"  r text := pg_catalog.current_setting('pgtenantd.restore_role');\n"
	"  how text := 'restore_role';\n"
	"BEGIN\n"
	"  IF r = '' THEN\n"
	"    SELECT pg_catalog.pg_get_userbyid(n.nspowner) INTO r\n"
	"      FROM pg_catalog.pg_namespace n WHERE n.nspname = s;\n"
	"    how := 'the owner of schema ' || s;\n"
	"    IF r IS NULL THEN\n"
	"      r := pg_catalog.current_setting('pgtenantd.restore_dump_owner');\n"
	"      how := 'the owner of schema ' || s || ' in the dump';\n"
	"    END IF;\n"
	"  END IF;\n"
	"  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN\n"
	"    RAISE EXCEPTION 'restore of schema % refused: its restore role ''%'' (%) does not exist; set restore_role to a role that is not a superuser', s, r, how;\n"
	"  END IF;\n"
	"  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = r) THEN\n"
	"    RAISE EXCEPTION 'restore of schema % refused: its restore role % (%) is a superuser, and a dump is code that runs with the rights of the role restoring it; set restore_role to a role that is not a superuser', s, r, how;\n"
	"  END IF;\n"
	"  IF pg_catalog.current_setting('pgtenantd.restore_scratch') = '' THEN\n"
	"    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', s);\n"
	"  ELSIF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = s) THEN\n"
	"    EXECUTE pg_catalog.format('ALTER SCHEMA %I RENAME TO %I', s,\n"
	"                              pg_catalog.current_setting('pgtenantd.restore_scratch'));\n"
	"  END IF;\n"
	"  EXECUTE pg_catalog.format('CREATE SCHEMA %I AUTHORIZATION %I', s, r);\n"
	"  EXECUTE pg_catalog.format('SET ROLE %I', r);\n"
	"END\n"
	"$pgt$;\n";

/* The SQL psql runs after the dump's pre-data section (tables, types of
 * columns, defaults, CHECK constraints: nothing of it has run yet) and
 * again at the end: every object this transaction created may depend on
 * built-in objects, members of extensions and the schema's own types
 * only, so that loading the data runs no function that anyone but a
 * superuser wrote (such a function could RESET ROLE). */
static const char restore_check[] =
	"SELECT pg_catalog.set_config('pgtenantd.restore_schema', :'schema', false);\n"
	"DO $pgt$\n"
	"DECLARE\n"
	"  s text := pg_catalog.current_setting('pgtenantd.restore_schema');\n"
	"  bad text;\n"
	"BEGIN\n"
	"  SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)\n"
	"         || ' depends on '\n"
	"         || pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)\n"
	"    INTO bad\n"
	"    FROM pg_catalog.pg_depend d\n"
	"   WHERE d.xmin = pg_catalog.xid(pg_catalog.pg_current_xact_id())\n"
	"     AND d.refclassid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass,\n"
	"                              'pg_catalog.pg_namespace'::pg_catalog.regclass,\n"
	"                              'pg_catalog.pg_constraint'::pg_catalog.regclass,\n"
	"                              'pg_catalog.pg_attrdef'::pg_catalog.regclass)\n"
	"     AND d.refobjid >= 16384\n"
	"     AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e\n"
	"                      WHERE e.classid = d.refclassid AND e.objid = d.refobjid\n"
	"                        AND e.deptype = 'e')\n"
	"     AND NOT (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass\n"
	"              AND EXISTS (SELECT FROM pg_catalog.pg_type t\n"
	"                           JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace\n"
	"                          WHERE t.oid = d.refobjid AND n.nspname = s\n"
	"                            AND t.typtype IN ('c', 'b') AND (t.typrelid <> 0 OR t.typelem <> 0)))\n"
	"   LIMIT 1;\n"
	"  IF bad IS NOT NULL THEN\n"
	"    RAISE EXCEPTION 'restore of schema % refused: % (a function, operator or type that is not built in nor part of an extension; a dump is code: see doc/maintenance.md)', s, bad;\n"
	"  END IF;\n"
	"END\n"
	"$pgt$;\n";

/* A drill's script runs in a transaction of its own that it rolls back
 * itself at the end: without psql --single-transaction, which would
 * commit, so that a psql that outlives the daemon leaves nothing behind
 * either. */
static const char drill_begin[] = "BEGIN;\n";

/* The end of a drill's script: back to the daemon's role (the restore
 * role need not be able to use schema pgtenantd), the test gate, the
 * digests of the restored copy on stdout (psql -o /dev/null sent the
 * dump's own output nowhere; \o turns stdout back on), then ROLLBACK:
 * the copy and the rename vanish. */
static const char drill_end[] =
	"RESET ROLE;\n"
	"SELECT pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtext(:'gate' || '/drill'))\n"
	" WHERE :'gate' <> '';\n"
	"\\o\n"
	"SELECT '" DRILL_MARKER
	"' || pgtenantd.table_digests(:'schema')::text;\n"
	"ROLLBACK;\n";

/* Append text to the restore script. */
static bool script_append(struct backup_op *op, const char *text)
{
	size_t n = strlen(text);

	while (n > 0) {
		ssize_t w = write(op->script_fd, text, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		text += w;
		n -= (size_t)w;
	}
	return true;
}

/* Start a child of the restore that reads the dump on stdin (from its
 * start) and writes its stdout to the script, or captures it (-1). */
static bool restore_spawn(struct backup_op *op, char **argv, int in_fd,
			  int out_fd, child_done_fn done, char **cause)
{
	if (lseek(in_fd, 0, SEEK_SET) != 0)
		return set_cause(cause, "cannot rewind %s: %s", op->arg,
				 strerror(errno));
	op->children[0] = child_spawn_fds(op->base, argv, op->env, in_fd,
					  out_fd, op->timeout_ms, done, op,
					  cause);
	if (op->children[0] == NULL)
		return false;
	op->running++;
	return true;
}

/* Fail a restore step after a child: cancelled, or how the child ended. */
static bool restore_child_failed(struct backup_op *op,
				 const struct child_result *cr,
				 const char *program)
{
	char *what;

	backup_child_ended(op, 0);
	if (!op->cancelled && child_succeeded(cr))
		return false;
	what = op->cancelled ? xstrdup("cancelled") :
			       child_outcome(program, cr);
	/* the restore's own refusals (restore_prologue, restore_check) are
	 * final: another attempt would refuse again */
	backup_fail(op,
		    !op->cancelled &&
			    strstr(what, "ERROR:  restore of schema ") == NULL,
		    "restore of %s into schema %s: %s", op->arg, op->schema,
		    what);
	free(what);
	return true;
}

static void backup_restored(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	json_t *result;

	if (restore_child_failed(op, cr, "psql (rolled back)"))
		return;
	log_info(
		"restored tenant %s's schema %s from %s (sha256 %.12s...) in %lld ms",
		op->tenant_id, op->schema, op->arg, op->rec.sha256,
		(long long)(mono_ms() - op->started_ms));
	result = json_pack("{s:{s:s, s:s, s:s, s:I}}", "restore", "file",
			   op->arg, "schema", op->schema, "sha256",
			   op->rec.sha256, "duration_ms",
			   (json_int_t)(mono_ms() - op->started_ms));
	backup_finish(op, true, false, NULL, NULL, result);
}

/* A drill's psql ended: compare the restored copy's digests with those
 * the backup recorded when it was taken. */
static void backup_drilled(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	json_t *restored = NULL, *recorded = NULL, *result;
	char *cause = NULL, *summary;
	bool compared = op->rec.digests != NULL;

	if (restore_child_failed(op, cr, "psql (rolled back)"))
		return;
	if (!drill_parse_output(cr->stdout_text, &restored, &cause)) {
		backup_fail(op, false, "%s", cause);
		free(cause);
		return;
	}
	if (compared) {
		json_error_t err;

		recorded = json_loads(op->rec.digests, 0, &err);
		if (recorded == NULL ||
		    !drill_digests_valid(recorded, &cause)) {
			backup_fail(
				op, false,
				"the catalog's table digests of backup %" PRId64
				" cannot be read: %s",
				op->rec.id, recorded ? cause : err.text);
			free(cause);
			json_decref(recorded);
			json_decref(restored);
			return;
		}
		if (!drill_compare(recorded, restored, &cause)) {
			backup_fail(op, false,
				    "%s (%s, restored with sha256 %s)", cause,
				    op->arg, op->rec.sha256);
			free(cause);
			json_decref(recorded);
			json_decref(restored);
			return;
		}
		json_decref(recorded);
	}
	summary = drill_summary(restored);
	log_info(
		"restore drill of tenant %s's backup %" PRId64
		" (%s): restored into a transaction that was rolled back, %s; %s in %lld ms",
		op->tenant_id, op->rec.id, backup_base_name(op->arg), summary,
		compared ? "every table matches what the backup recorded" :
			   "the backup recorded no tables to compare with",
		(long long)(mono_ms() - op->started_ms));
	free(summary);
	result = json_pack(
		"{s:{s:I, s:s, s:s, s:o, s:b, s:s, s:I}}", "restore_drill",
		"backup_id", (json_int_t)op->rec.id, "file", op->arg, "sha256",
		op->rec.sha256, "tables", restored, "compared", compared,
		"note",
		compared ?
			"every table's rows and hash match what the backup recorded when it was taken" :
			"the backup recorded no row counts or hashes (made before pgtenantd recorded them, or with backup_digests: false): it restores, with these tables; there was nothing to compare them with",
		"duration_ms", (json_int_t)(mono_ms() - op->started_ms));
	backup_finish(op, true, false, NULL, NULL, result);
}

/* The script is complete: psql runs it from stdin in one transaction. */
static void restore_rest_written(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	char *schema_v, *role_v, *owner_v, *scratch_v, *gate_v, *cause = NULL;
	bool started;

	if (restore_child_failed(op, cr, "pg_restore"))
		return;
	if (!script_append(op, restore_check)) {
		backup_fail(
			op, true,
			"restore of %s: cannot write the restore script: %s",
			op->arg, strerror(errno));
		return;
	}
	if (op->kind == BACKUP_DRILL && !script_append(op, drill_end)) {
		backup_fail(
			op, true,
			"restore of %s: cannot write the restore script: %s",
			op->arg, strerror(errno));
		return;
	}
	schema_v = xasprintf("schema=%s", op->schema);
	role_v = xasprintf("restore_role=%s", op->restore_role);
	owner_v = xasprintf("dump_owner=%s",
			    op->dump_owner ? op->dump_owner : "");
	scratch_v = xasprintf("scratch=%s", op->scratch);
	gate_v = xasprintf("gate=%s", op->test_gate);
	{
		/* a restore commits what it ran; a drill rolls back itself
		 * (drill_begin, drill_end) and prints only its digests */
		bool drill = op->kind == BACKUP_DRILL;
		char *argv[] = { "psql",
				 "-X",
				 "-q",
				 "-v",
				 "ON_ERROR_STOP=1",
				 drill ? "-At" : "--single-transaction",
				 "-v",
				 schema_v,
				 "-v",
				 role_v,
				 "-v",
				 owner_v,
				 "-f",
				 "-",
				 "-v",
				 scratch_v,
				 drill ? "-v" : NULL,
				 gate_v,
				 "-o",
				 "/dev/null",
				 NULL };

		started = restore_spawn(op, argv, op->script_fd, -1,
					op->kind == BACKUP_DRILL ?
						backup_drilled :
						backup_restored,
					&cause);
	}
	free(schema_v);
	free(role_v);
	free(owner_v);
	free(scratch_v);
	free(gate_v);
	if (!started) {
		backup_fail(op, true, "restore of %s: %s", op->arg, cause);
		free(cause);
	}
}

/* Run pg_restore for one part of the dump, its SQL appended to the
 * script: only the schema's objects, no owners, no grants. */
static bool restore_part(struct backup_op *op, bool pre_data,
			 child_done_fn done, char **cause)
{
	char *schema_opt = xasprintf("--schema=%s", op->schema);
	char *pre[] = { "pg_restore", "--section=pre-data", schema_opt,
			"--no-owner", "--no-privileges",    "--file=-",
			NULL };
	char *rest[] = { "pg_restore",
			 "--section=data",
			 "--section=post-data",
			 schema_opt,
			 "--no-owner",
			 "--no-privileges",
			 "--file=-",
			 NULL };
	off_t end = lseek(op->script_fd, 0, SEEK_END);
	bool ok;

	if (end < 0)
		ok = set_cause(cause, "cannot seek in the restore script: %s",
			       strerror(errno));
	else
		ok = restore_spawn(op, pre_data ? pre : rest, op->dump_fd,
				   op->script_fd, done, cause);
	free(schema_opt);
	return ok;
}

static void restore_pre_written(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	char *cause = NULL;

	if (restore_child_failed(op, cr, "pg_restore"))
		return;
	if (!script_append(op, restore_check)) {
		backup_fail(
			op, true,
			"restore of %s: cannot write the restore script: %s",
			op->arg, strerror(errno));
		return;
	}
	if (!restore_part(op, false, restore_rest_written, &cause)) {
		backup_fail(op, true, "restore of %s: %s", op->arg, cause);
		free(cause);
	}
}

/* The TOC was listed: check it, then write the script. The script is an
 * unlinked file, so nobody can change it between here and psql. */
static void restore_listed(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	char *cause = NULL, *path;

	if (restore_child_failed(op, cr, "pg_restore --list"))
		return;
	if (!backup_toc_check(cr->stdout_text, op->schema, &op->dump_owner,
			      &cause)) {
		backup_fail(op, false, "restore of %s refused: %s", op->arg,
			    cause);
		free(cause);
		return;
	}
	path = xasprintf("%s/.restore-j%" PRId64 "-XXXXXX" BACKUP_RESTORE_EXT,
			 op->dir, op->job_id);
	op->script_fd = mkostemps(path, strlen(BACKUP_RESTORE_EXT), O_CLOEXEC);
	if (op->script_fd < 0) {
		backup_fail(op, true, "restore of %s: cannot create %s: %s",
			    op->arg, path, strerror(errno));
		free(path);
		return;
	}
	unlink(path);
	free(path);
	if ((op->kind == BACKUP_DRILL && !script_append(op, drill_begin)) ||
	    !script_append(op, restore_prologue)) {
		backup_fail(
			op, true,
			"restore of %s: cannot write the restore script: %s",
			op->arg, strerror(errno));
		return;
	}
	if (!restore_part(op, true, restore_pre_written, &cause)) {
		backup_fail(op, true, "restore of %s: %s", op->arg, cause);
		free(cause);
	}
}

/* The open dump was hashed: it must be the catalog's, then list its TOC. */
static void restore_hashed(const struct child_result *cr, void *arg)
{
	struct backup_op *op = arg;
	const char *out = cr->stdout_text ? cr->stdout_text : "";
	char *list_argv[] = { "pg_restore", "--list", NULL };
	char *cause = NULL;

	if (restore_child_failed(op, cr, "sha256sum"))
		return;
	if (strspn(out, "0123456789abcdef") != BACKUP_SHA256_LEN) {
		backup_fail(op, true,
			    "restore of %s: sha256sum printed no hash",
			    op->arg);
		return;
	}
	if (strncmp(out, op->rec.sha256, BACKUP_SHA256_LEN) != 0 ||
	    strlen(op->rec.sha256) != BACKUP_SHA256_LEN) {
		backup_fail(
			op, false,
			"restore of %s refused: the file has changed since it was verified: the catalog has sha256 %s, the file now has %.64s",
			op->arg, op->rec.sha256, out);
		return;
	}
	if (!restore_spawn(op, list_argv, op->dump_fd, -1, restore_listed,
			   &cause)) {
		backup_fail(op, true, "restore of %s: %s", op->arg, cause);
		free(cause);
	}
}

/* Restore only a catalogued, verified backup of the tenant's schema,
 * re-hashed right before use, whose TOC holds only that schema's tables
 * and their parts. The file is opened once: the hash, the TOC and the SQL
 * all come from that one open file. psql then runs, in one transaction,
 * the prologue (as the daemon: a fresh schema owned by the restore role,
 * then SET ROLE to it), the pre-data SQL, the dependency check, the data
 * and post-data SQL and the check again. */
static void backup_restore(struct backup_op *op)
{
	char real_dir[PATH_MAX], real_file[PATH_MAX], *cause = NULL;
	char *hash_argv[] = { "sha256sum", NULL };
	struct backup_record *rec = &op->rec;
	bool found = false;
	struct stat st;
	size_t n;

	if (realpath(op->dir, real_dir) == NULL ||
	    realpath(op->arg, real_file) == NULL) {
		backup_fail(op, false, "restore: cannot find %s: %s", op->arg,
			    strerror(errno));
		return;
	}
	n = strlen(real_dir);
	if (strncmp(real_file, real_dir, n) != 0 || real_file[n] != '/') {
		backup_fail(
			op, false,
			"restore: %s is not a backup of tenant %s (not in %s)",
			op->arg, op->tenant_id, op->dir);
		return;
	}
	if (!backup_catalog_find_file(op->ckpt, op->tenant_id, op->arg, rec,
				      &found, &cause)) {
		backup_fail(op, true, "%s", cause);
		free(cause);
		return;
	}
	if (!found) {
		backup_fail(
			op, false,
			"restore of %s refused: the file has no row in tenant %s's backup catalog; only backups this daemon made and verified are restored",
			op->arg, op->tenant_id);
		return;
	}
	if (strcmp(rec->status, BACKUP_VERIFIED) != 0 || rec->sha256 == NULL ||
	    strcmp(rec->schema, op->schema) != 0) {
		backup_fail(
			op, false,
			"restore of %s refused: backup %" PRId64
			" of the catalog is %s, of schema %s, sha256 %s; only a verified backup of schema %s with a hash is restored",
			op->arg, rec->id, rec->status, rec->schema,
			rec->sha256 ? rec->sha256 : "unknown", op->schema);
		return;
	}
	op->dump_fd = open(op->arg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (op->dump_fd < 0 || fstat(op->dump_fd, &st) != 0 ||
	    !S_ISREG(st.st_mode)) {
		backup_fail(
			op, false,
			"restore of %s: cannot open it as a regular file: %s",
			op->arg,
			op->dump_fd < 0 ? strerror(errno) :
					  "not a regular file");
		return;
	}
	if (!restore_spawn(op, hash_argv, op->dump_fd, -1, restore_hashed,
			   &cause)) {
		backup_fail(op, true, "restore of %s: %s", op->arg, cause);
		free(cause);
	}
}

/* --- BACKUP_DRILL */

/* Find the backup op->arg names (as BACKUP_CHECK does), then restore it
 * as BACKUP_RESTORE does, with all its checks, into a transaction that
 * renames the live schema away and rolls back. */
static void backup_drill(struct backup_op *op)
{
	struct backup_record *rec = &op->rec;

	if (!backup_find_verified(op, "restore drill: ", "drill"))
		return;
	free(op->arg);
	op->arg = xstrdup(rec->file);
	backup_record_clear(rec);
	backup_restore(op);
}

/* --- dispatch */

static void backup_read_back_done(struct backup_op *op)
{
	if (op->kind == BACKUP_MAKE)
		backup_make_read_back_done(op);
	else
		backup_check_read_back_done(op);
}

static void backup_begin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct backup_op *op = arg;
	char *cause = NULL;

	if (op->cancelled) {
		backup_fail(op, false, "cancelled");
		return;
	}
	if (!tenant_id_valid(op->tenant_id, &cause)) {
		backup_fail(op, false, "%s", cause);
		free(cause);
		return;
	}
	op->dir = xasprintf("%s/%s", op->backup_dir, op->tenant_id);
	if (!make_dirs(op->dir, &cause)) {
		backup_fail(op, true, "%s", cause);
		free(cause);
		return;
	}
	remove_leftovers(op->dir);
	switch (op->kind) {
	case BACKUP_MAKE:
		backup_make(op);
		break;
	case BACKUP_CHECK:
		backup_check(op);
		break;
	case BACKUP_RESTORE:
		backup_restore(op);
		break;
	case BACKUP_DRILL:
		backup_drill(op);
		break;
	}
}

/* Start an operation. */
struct backup_op *backup_start(const struct backup_request *req,
			       backup_done_fn done, void *arg)
{
	struct backup_op *op = xcalloc(1, sizeof(*op));
	const struct timeval now = { 0, 0 };

	op->kind = req->kind;
	op->base = req->base;
	op->ckpt = req->ckpt;
	op->backup_dir = xstrdup(req->backup_dir);
	op->keep = req->keep;
	op->max_age_ms = req->max_age_ms;
	op->env = env_copy(req->env);
	op->timeout_ms = req->timeout_ms;
	op->job_id = req->job_id;
	op->tenant_id = xstrdup(req->tenant_id);
	op->schema = xstrdup(req->schema);
	op->arg = xstrdup(req->arg ? req->arg : "");
	op->restore_role = xstrdup(req->restore_role ? req->restore_role : "");
	op->min_free_bytes = req->min_free_bytes;
	op->schema_bytes = req->schema_bytes;
	op->snapshot = xstrdup(req->snapshot ? req->snapshot : "");
	op->want_digests = req->kind == BACKUP_MAKE && req->digests &&
			   op->snapshot[0] != '\0';
	op->test_gate = xstrdup(req->test_gate ? req->test_gate : "");
	op->scratch = req->kind == BACKUP_DRILL ?
			      xasprintf("pgt_drill_j%" PRId64, req->job_id) :
			      xstrdup("");
	op->dump_fd = -1;
	op->script_fd = -1;
	op->done = done;
	op->done_arg = arg;
	op->started_ms = mono_ms();
	op->started_at = wall_seconds();
	event_base_once(op->base, -1, EV_TIMEOUT, backup_begin_cb, op, &now);
	return op;
}

/* Stop the children of op. */
void backup_cancel(struct backup_op *op)
{
	op->cancelled = true;
	for (unsigned i = 0; i < ARRAY_SIZE(op->children); i++)
		if (op->children[i] != NULL)
			child_kill(op->children[i], SIGTERM);
}
