/* backup.h - per-tenant backups: pg_dump of a schema in custom format as a
 * child process, written under backup_dir/<tenant>/ to a temporary name,
 * read back with pg_restore --list, hashed (sha256), renamed into place
 * and recorded in a catalog in the SQLite state store; retention by count
 * and age; re-verification of a chosen backup; restore of a catalogued,
 * re-hashed backup whose TOC holds only the tenant schema's tables, with
 * pg_restore and psql in one transaction as a role that is not a
 * superuser. The step engine runs these as the `backup`,
 * `backup_check` and `restore` step types. */
#ifndef PGT_BACKUP_H
#define PGT_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "util.h"

struct ckpt;
struct event_base;
struct backup_op;

/* The status of a catalog row. */
#define BACKUP_VERIFIED "verified" /* complete, read back, kept */
#define BACKUP_FAILED "failed"	   /* pg_dump or the read-back failed */
#define BACKUP_DELETED "deleted"   /* removed by retention */

/* One row of the catalog. Strings are owned by the struct. */
struct backup_record {
	int64_t id;
	char *tenant_id;
	char *schema;
	char *file; /* absolute path of the dump */
	int64_t job_id;
	char *status;
	int64_t size;	     /* bytes */
	char *sha256;	     /* 64 hex digits, NULL if not known */
	int64_t toc_entries; /* entries pg_restore --list printed */
	double started_at;   /* wall seconds */
	double duration_ms;  /* dump + read-back + hash */
	double dump_ms;
	double verify_ms;
	double verified_at; /* wall seconds of the last read-back, or 0 */
	char *error;
	double deleted_at;
	char *digests;	     /* JSON of pgtenantd.table_digests in the dump's
			* snapshot, NULL if not taken (an older backup) */
	double drill_at;     /* wall seconds of the last drill, or 0 */
	char *drill_outcome; /* DRILL_PASSED, DRILL_FAILED or NULL */
	char *drill_error;   /* what the last failed drill found */
	int64_t drill_job_id;
};

void backup_record_clear(struct backup_record *rec);

/* ------------------------------------------------------------ catalog */

/* Add a row (rec->id is set). */
bool backup_catalog_add(struct ckpt *ckpt, struct backup_record *rec,
			char **cause) MUST_CHECK;

/* Find the backup of tenant_id that spec names: "" or "latest" for the
 * newest verified one, a catalog id, or a file name in the tenant's
 * directory. *found is false if there is none. */
bool backup_catalog_find(struct ckpt *ckpt, const char *tenant_id,
			 const char *spec, struct backup_record *out,
			 bool *found, char **cause) MUST_CHECK;

/* The catalog as a JSON array, newest first: every row of tenant_id (or of
 * every tenant if NULL), at most limit rows. */
bool backup_catalog_list(struct ckpt *ckpt, const char *tenant_id,
			 unsigned limit, json_t **out, char **cause) MUST_CHECK;

/* Retention for one tenant: of its verified backups, newest first, remove
 * (file and status 'deleted') those past the newest `keep` (0: no limit)
 * or older than max_age_ms (0: no limit) at now (wall seconds); the newest
 * verified backup always stays. *removed gets the number removed. */
bool backup_retention(struct ckpt *ckpt, const char *tenant_id, unsigned keep,
		      int64_t max_age_ms, double now, unsigned *removed,
		      char **cause) MUST_CHECK;

/* Delete the catalog rows of backups whose file was removed (status
 * 'deleted') more than max_age_ms before now (wall seconds); *pruned gets
 * how many. */
bool backup_catalog_prune(struct ckpt *ckpt, int64_t max_age_ms, double now,
			  unsigned *pruned, char **cause) MUST_CHECK;

/* Note the outcome of a restore drill of backup id at now (wall seconds):
 * outcome DRILL_PASSED or DRILL_FAILED, error NULL or what failed. */
bool backup_catalog_drill_record(struct ckpt *ckpt, int64_t id, double now,
				 const char *outcome, int64_t job_id,
				 const char *error, char **cause) MUST_CHECK;

/* The newest passed and failed drill of any backup (wall seconds, 0: none)
 * and how many tenants' newest drill failed, for metrics. */
bool backup_catalog_drill_stats(struct ckpt *ckpt, double *last_passed,
				double *last_failed, unsigned *failing_tenants,
				char **cause) MUST_CHECK;

/* ------------------------------------------------------------ operations */

enum backup_kind {
	BACKUP_MAKE,	/* dump schema `arg`, read it back, catalog it */
	BACKUP_CHECK,	/* find backup `arg` of the tenant and read it back */
	BACKUP_RESTORE, /* replace the tenant's schema with dump file `arg` */
	BACKUP_DRILL,	/* restore backup `arg` (as BACKUP_CHECK finds it) in
			 * a transaction that renames the live schema away
			 * and rolls back; compare with its recorded digests */
};

/* What an operation needs from the daemon; strings are copied. */
struct backup_request {
	enum backup_kind kind;
	struct event_base *base;
	struct ckpt *ckpt;
	const char *backup_dir;
	unsigned keep; /* retention after BACKUP_MAKE */
	int64_t max_age_ms;
	char *const *env;   /* PG* settings for the children, or NULL */
	int64_t timeout_ms; /* for each child, 0: none */
	int64_t job_id;
	const char *tenant_id;
	const char *schema; /* the tenant's schema */
	const char *arg;    /* see enum backup_kind */
	/* BACKUP_MAKE: refused before pg_dump unless backup_dir has room for
	 * the estimate (space.h) plus this many bytes */
	int64_t min_free_bytes;
	int64_t schema_bytes; /* the schema's size on disk, 0 if not known */
	const char *restore_role; /* BACKUP_RESTORE, BACKUP_DRILL: NULL or
				   * "" for the schema's owner (never a
				   * superuser) */
	const char *snapshot;	  /* BACKUP_MAKE: pg_dump --snapshot, or NULL */
	bool digests; /* BACKUP_MAKE with a snapshot: while pg_dump runs, a
		       * psql in the same snapshot takes table_digests, which
		       * the catalog records with the dump */
	const char *test_gate; /* BACKUP_DRILL: tests only (test_hooks):
				* inside the drill's transaction, wait for
				* a shared advisory lock on
				* hashtext(test_gate || '/drill') */
};

/* How an operation ended. On success vars holds backup_file, backup_id,
 * backup_sha256 and backup_size (BACKUP_MAKE and BACKUP_CHECK) and result
 * what goes into the job's result; both are borrowed for the callback. */
struct backup_result {
	bool ok;
	bool retry;	/* a failure worth another attempt */
	bool cancelled; /* backup_cancel was called */
	const char *error;
	json_t *vars;
	json_t *result;
	const char *drill_outcome; /* BACKUP_DRILL: DRILL_PASSED or
				    * DRILL_FAILED once a backup was found
				    * and drilled; NULL otherwise */
};

typedef void (*backup_done_fn)(const struct backup_result *result, void *arg);

/* Start an operation; done is called exactly once, from the loop (never
 * from inside this call). */
struct backup_op *backup_start(const struct backup_request *req,
			       backup_done_fn done, void *arg);

/* Stop the children of op (SIGTERM); done is still called, with
 * cancelled set. */
void backup_cancel(struct backup_op *op);

/* Check a dump's TOC (what pg_restore --list printed) before a restore:
 * one SCHEMA entry for schema, and otherwise only entries of the types a
 * schema of tables needs (TABLE, TABLE DATA, TABLE ATTACH, SEQUENCE,
 * SEQUENCE OWNED BY, SEQUENCE SET, DEFAULT, CONSTRAINT, CHECK CONSTRAINT,
 * FK CONSTRAINT, INDEX, INDEX ATTACH, STATISTICS, COMMENT, ACL) in that
 * namespace; COMMENT and ACL on the schema itself too. Anything else
 * (FUNCTION, PROCEDURE, AGGREGATE, OPERATOR, TYPE, DOMAIN, VIEW, TRIGGER,
 * RULE, POLICY, EXTENSION, CAST, EVENT TRIGGER, another namespace...)
 * refuses it: cause quotes the first such entry. *owner (if not NULL) gets
 * the schema's owner named in its entry, or NULL on failure. */
bool backup_toc_check(const char *toc, const char *schema, char **owner,
		      char **cause) MUST_CHECK;

/* The schema's pattern for pg_dump --schema: the name in double quotes,
 * so that no character of it is a pattern character. */
char *backup_schema_pattern(const char *schema);

/* The newest verified backup of every tenant in the catalog: an object of
 * tenant id to the backup's start (wall seconds). */
bool backup_catalog_newest(struct ckpt *ckpt, json_t **out, char **cause)
	MUST_CHECK;

#endif
