/* config.h - pgtenantd.yaml loaded with libcyaml and validated. */
#ifndef PGT_CONFIG_H
#define PGT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "util.h"

/* How a schedule picks its tenants. */
enum schedule_tenants {
	SCHEDULE_TENANTS_SEPARATE, /* every tenant with its own schema */
	SCHEDULE_TENANTS_SHARED,   /* every tenant in the shared tables */
	SCHEDULE_TENANTS_LIST,	   /* the list in tenant_list */
	SCHEDULE_TENANTS_QUERY,	   /* the first column of tenant_query */
	SCHEDULE_TENANTS_INACTIVE, /* pgtenantd.inactive_tenants(days), days
				    * from args.inactive_days, default 90 */
};

/* What a schedule does about slots missed while no daemon ran. */
enum schedule_catch_up {
	SCHEDULE_CATCH_UP_LATEST, /* one run for the newest missed slot */
	SCHEDULE_CATCH_UP_NONE,	  /* skip them */
};

struct schedule_config {
	char *name;
	char *cron; /* five fields; checked by the scheduler */
	char *job;  /* job kind */
	enum schedule_tenants tenants;
	char **tenant_list; /* SCHEDULE_TENANTS_LIST */
	unsigned tenant_list_count;
	char *tenant_query; /* SCHEDULE_TENANTS_QUERY */
	char *args_json;    /* optional JSON object text, default "{}" */
	enum schedule_catch_up catch_up; /* default latest */
	unsigned line;			 /* line of the entry in the file */
	/* fleet: the settings of a fleet schedule as JSON object text (the
	 * keys given, checked), NULL: not a fleet schedule (sched.c) */
	char *fleet_json;
};

struct config {
	char *path; /* file it was loaded from */

	char *database; /* libpq conninfo or URI; may be "" */
	char *state_dir;
	char *control_socket;
	unsigned control_socket_mode; /* default 0600; no "other" bits */
	/* who may use the control socket besides root and the daemon's
	 * own uid, resolved from control_allow_users/_groups */
	uid_t *control_allow_uids;
	unsigned control_allow_uid_count;
	gid_t *control_allow_gids;
	unsigned control_allow_gid_count;
	unsigned control_max_clients;	 /* default 64 */
	int64_t control_idle_timeout_ms; /* default 60s */
	char *jobs_dir;
	char *backup_dir;
	char *restore_role; /* "" (default): the tenant schema's owner */
	char *pid_file;	    /* NULL: none */
	unsigned workers;   /* 1..64, default 2 */
	enum log_level log_level;
	enum log_format log_format; /* default LOG_FORMAT_TEXT */
	bool listen;		    /* use LISTEN/NOTIFY (default true) */
	bool test_hooks;	    /* accept the reserved args test_gate and
			  * test_sleep (default false; runner.c) */
	char *application_name;	    /* default "pgtenantd" */

	/* durations in milliseconds */
	int64_t poll_interval_ms;    /* default 5s */
	int64_t lease_ms;	     /* default 30s */
	int64_t heartbeat_ms;	     /* default lease / 3 */
	int64_t retry_base_ms;	     /* default 5s */
	int64_t retry_max_ms;	     /* default 10m */
	int64_t reconnect_max_ms;    /* default 30s */
	int64_t shutdown_timeout_ms; /* default 30s */
	int64_t batch_target_ms;     /* default 1s; job files may override */
	/* history kept (prune.c); 0: for ever */
	int64_t keep_succeeded_ms;	 /* default 14d */
	int64_t keep_failed_ms;		 /* failed and cancelled; default 90d */
	int64_t keep_slots_ms;		 /* fired schedule slots; default 30d */
	int64_t keep_removed_backups_ms; /* catalog rows of removed backups;
					  * default 90d */
	int64_t keep_fleets_ms; /* finished and cancelled fleets; default 90d */
	int64_t prune_interval_ms; /* default 10m */
	/* hooks (hooks.c): argv, NULL-terminated; NULL: none */
	char **hook_on_failure;	 /* a job failed for good */
	char **hook_on_success;	 /* a job succeeded */
	int64_t hook_timeout_ms; /* default 30s */
	/* create_tenant: roles that get USAGE on a new tenant's schema;
	 * NULL-terminated, NULL: none */
	char **tenant_roles;

	/* fleets advanced (fleet.c); default 10s */
	int64_t fleet_interval_ms;

	/* backup retention: only older verified backups are removed */
	unsigned backup_keep;	   /* newest N kept; 0: no count limit;
					 * default 7 */
	int64_t backup_max_age_ms; /* 0: no age limit; default 30d */

	/* tenant history (tenants.c) */
	int64_t tenant_snapshot_interval_ms; /* 0: none; default 1h */
	int64_t keep_tenant_history_ms;	     /* 0: for ever; default 90d */
	unsigned metrics_max_tenants;	     /* tenants with their own series;
				       * default 100 */
	int64_t backup_min_free_bytes;	     /* left free in backup_dir after a
					* backup's estimate; default 0 */
	int64_t database_max_bytes;	     /* budget a migration checks; 0
					* (default): not checked */

	struct schedule_config *schedules;
	unsigned schedule_count;

	/* limits: sizes in bytes */
	int64_t args_bytes;   /* a job's args as JSON text; default 64 KiB */
	int64_t result_bytes; /* a job's result as JSON text; default 1 MiB */
	int64_t error_bytes;  /* a job's last_error; default 64 KiB */

	bool backup_digests; /* backups record every table's rows and hash
			      * in the dump's snapshot; default true */
};

/* Load and validate path. On failure returns NULL and sets cause to one
 * message per problem, each naming file, line and key, separated by
 * newlines. Every default is applied on success. */
struct config *config_load(const char *path, char **cause) MUST_CHECK;

void config_free(struct config *config);

/* The warning for a configuration file of the given st_mode whose
 * database setting holds a password (password= or a URI's user:password@)
 * when group or others may read it; NULL if there is nothing to say.
 * config_load logs it. */
char *config_secret_warning(const char *path, unsigned mode,
			    const char *database);

/* True if text is a fleet's daily window "HH:MM-HH:MM" (two different
 * times; the first after the second spans midnight). */
bool fleet_window_valid(const char *text);

#endif
