/* jobdef.h - job kinds: one YAML file per kind in jobs_dir, a list of steps.
 * The file format is described in doc/job-files.md. */
#ifndef PGT_JOBDEF_H
#define PGT_JOBDEF_H

#include <stdbool.h>
#include <stdint.h>

#include "sqlvars.h"
#include "util.h"

enum step_type {
	STEP_SQL,    /* run SQL, in a transaction or not, once or for_each */
	STEP_BATCH,  /* keyset loop with a checkpoint after each batch */
	STEP_VERIFY, /* two queries whose results must be equal */
	STEP_EXEC,   /* run a program as a child process */
	STEP_BACKUP, /* pg_dump a schema, read it back (backup.c) */
	STEP_BACKUP_CHECK,  /* find a backup and read it back again */
	STEP_RESTORE,	    /* replace the tenant's schema with a backup */
	STEP_RESTORE_DRILL, /* restore a backup in a transaction that is
			     * rolled back, compare with what it recorded */
};

struct jobdef_step {
	char *name;
	enum step_type type;
	unsigned line; /* line of the step in its file */

	bool retry;	    /* default true; false: a failure is
					 * final, no further attempts */
	bool destructive;   /* runs only if `requires` passed */
	unsigned *requires; /* indexes of earlier steps that must
					 * have passed in this job */
	unsigned require_count;

	bool has_when; /* skip the step unless this is true */
	struct sqlvars_script when;

	/* STEP_SQL */
	struct sqlvars_script sql; /* one or more statements */
	bool transaction;	   /* default true */
	bool has_for_each;
	struct sqlvars_script for_each; /* one statement */
	char **for_each_vars;		/* its columns, usable as variables */
	unsigned for_each_var_count;
	char **set_vars; /* columns of the last statement's first
					 * row that become variables */
	unsigned set_var_count;
	bool result; /* merge that row into the job result */

	/* STEP_BATCH */
	struct sqlvars_script batch; /* exactly one statement */
	char *start_key;	     /* default "" */
	int64_t batch_size;	     /* first batch, default 1000 */
	int64_t min_batch_size;	     /* default 1 */
	int64_t max_batch_size;	     /* default 100000 */
	int64_t target_ms;	     /* wanted time per batch */
	bool has_total;
	struct sqlvars_script total; /* rows expected, for the ETA */

	/* STEP_VERIFY */
	struct sqlvars_script expected;
	struct sqlvars_script actual;

	/* STEP_EXEC */
	char **argv; /* words may hold :name variables */
	unsigned argc;
	int64_t timeout_ms; /* 0: none; also for the backup types */

	/* STEP_SQL with for_each */
	char *collect; /* result array: one object per row,
					 * NULL: none */

	/* STEP_BACKUP, STEP_BACKUP_CHECK, STEP_RESTORE, STEP_RESTORE_DRILL */
	char *target; /* the schema, the backup, the file; a
					 * word that may hold :name variables */
};

struct jobdef_arg {
	char *name;
	char *default_value; /* NULL: the arg is required */
	char *description;
};

/* The group roles that enqueue_role defaults to (see jobdef_load_file). */
#define JOBDEF_ROLE_ENQUEUE "pgtenantd_enqueue"
#define JOBDEF_ROLE_OPERATE "pgtenantd_operate"

struct jobdef {
	char *kind; /* the file's base name */
	char *description;
	char *enqueue_role; /* members of this role may enqueue the kind */
	char *file;
	struct jobdef_arg *args;
	unsigned arg_count;
	struct jobdef_step *steps;
	unsigned step_count;
};

/* A loaded set of kinds, reference counted so that running jobs keep the
 * definitions they started with across a reload. */
struct jobdefs {
	int refs;
	char *dir;
	struct jobdef *defs;
	unsigned count;
};

/* Variables every step may use. */
extern const char *const jobdef_builtin_vars[];
/* Variables a batch step may use besides those. */
extern const char *const jobdef_batch_vars[];
/* Variables a backup or backup_check step sets for the steps after it. */
extern const char *const jobdef_backup_vars[];

/* Args that the engine itself handles for every kind, the test pause point
 * (configuration key test_hooks, runner.c); a job file may not declare
 * them and they are no variables. The list ends with a NULL name. */
struct jobdef_reserved_arg {
	const char *name;
	const char *description;
};
extern const struct jobdef_reserved_arg jobdef_reserved_args[];

/* Whether name is a reserved arg. */
bool jobdef_reserved_arg(const char *name);

/* Load every *.yaml file in dir. Any problem in any file fails the whole
 * load (NULL) with cause naming file, line, step and what is wrong: a YAML
 * error, an unknown key, a step with none or two of sql/batch/verify/exec,
 * a duplicate step name, SQL that does not lex, or a variable that is
 * neither built in, a declared arg, nor set by an earlier step. */
struct jobdefs *jobdefs_load_dir(const char *dir, int64_t default_target_ms,
				 char **cause) MUST_CHECK;

/* Load one file (used by jobdefs_load_dir and the unit tests). */
bool jobdef_load_file(const char *path, int64_t default_target_ms,
		      struct jobdef *out, char **cause) MUST_CHECK;
void jobdef_clear(struct jobdef *def);

const struct jobdef *jobdefs_find(const struct jobdefs *defs, const char *kind);

struct jobdefs *jobdefs_ref(struct jobdefs *defs);
void jobdefs_unref(struct jobdefs *defs);

#endif
