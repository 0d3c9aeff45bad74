/* test_config.c - loading and validating pgtenantd.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"
#include "util.h"
#include "yamlpos.h"

static char tmpdir[256];

/* Write text to a file named name in the temporary directory. */
static char *write_yaml(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(99);
	}
	return path;
}

/* Load text that must be refused; returns the cause (or NULL). */
static char *refused(const char *name, const char *text, char **path)
{
	char *cause = NULL;
	struct config *config;

	*path = write_yaml(name, text);
	config = config_load(*path, &cause);
	if (config != NULL) {
		config_free(config);
		free(cause);
		return NULL;
	}
	return cause;
}

/* Check that cause holds "PATH:LINE: key "KEY"" and what. */
static void check_problem(const char *cause, const char *path, int line,
			  const char *key, const char *what, const char *name)
{
	char *prefix = xasprintf("%s:%d: key \"%s\": ", path, line, key);
	char *label = xasprintf("%s: names file, line %d and key %s", name,
				line, key);
	const char *at = cause ? strstr(cause, prefix) : NULL;

	contains(cause, prefix, label);
	free(label);
	label = xasprintf("%s: says \"%s\"", name, what);
	ok(at != NULL && strstr(at, what) != NULL &&
		   (strchr(at, '\n') == NULL ||
		    strstr(at, what) < strchr(at, '\n')),
	   label);
	if (at == NULL || strstr(at, what) == NULL)
		printf("#     got: %s\n", cause ? cause : "(null)");
	free(label);
	free(prefix);
}

/* Every key set to a non-default value ends up in the struct. */
static void test_full(void)
{
	char *cause = NULL;
	char *path = write_yaml(
		"full.yaml",
		"# every key\n"
		"database: \"host=/tmp dbname=kg\"\n"
		"state_dir: state\n"
		"control_socket: /tmp/pgt.sock\n"
		"control_socket_mode: \"0660\"\n"
		"jobs_dir: ./jobs\n"
		"backup_dir: /srv/backups\n"
		"pid_file: /run/pgt.pid\n"
		"workers: 8\n"
		"log_level: debug\n"
		"listen: false\n"
		"application_name: pgt-test\n"
		"poll_interval: 250ms\n"
		"lease: 1m\n"
		"heartbeat_interval: 15s\n"
		"retry_base_delay: 2s\n"
		"retry_max_delay: 1h\n"
		"reconnect_max_delay: 45s\n"
		"shutdown_timeout: 0s\n"
		"batch_target: 1.5\n"
		"schedules:\n"
		"  - name: nightly-vacuum\n"
		"    cron: \"0 3 * * *\"\n"
		"    job: vacuum\n"
		"    tenants: separate\n"
		"  - name: shared-stats\n"
		"    cron: \"*/5 * * * 1-5\"\n"
		"    job: tenant_stats\n"
		"    tenants: shared\n"
		"  - name: some\n"
		"    cron: \"0 0 1 * *\"\n"
		"    job: backup\n"
		"    tenants: [acme-corp, Globex_2]\n"
		"    args:\n"
		"      days: 30\n"
		"      ratio: -1.5e3\n"
		"      quoted: \"30\"\n"
		"      octal: 0600\n"
		"      flag: true\n"
		"      none: ~\n"
		"      text: 'say \"hi\"\\ now'\n"
		"      nl: \"a\\nb\\u0001\"\n"
		"  - name: by-query\n"
		"    cron: \"15 2 * * 0\"\n"
		"    job: reindex\n"
		"    tenants:\n"
		"      query: SELECT tenant_id FROM tenants WHERE big\n"
		"    args: {}\n"
		"test_hooks: yes\n");
	struct config *c = config_load(path, &cause);
	struct schedule_config *s;

	ok(c != NULL, "full config loads");
	if (c == NULL) {
		printf("# %s\n", cause);
		free(cause);
		free(path);
		return;
	}
	is_str(c->path, path, "path kept");
	is_str(c->database, "host=/tmp dbname=kg", "database");
	is_str(c->state_dir, "state", "relative state_dir kept as given");
	is_str(c->control_socket, "/tmp/pgt.sock", "control_socket");
	is_int(c->control_socket_mode, 0660, "control_socket_mode");
	is_str(c->jobs_dir, "./jobs", "jobs_dir");
	is_str(c->backup_dir, "/srv/backups", "backup_dir");
	is_str(c->pid_file, "/run/pgt.pid", "pid_file");
	is_int(c->workers, 8, "workers");
	is_int(c->log_level, LOG_LEVEL_DEBUG, "log_level");
	ok(!c->listen, "listen");
	ok(c->test_hooks, "test_hooks");
	is_str(c->application_name, "pgt-test", "application_name");
	is_int(c->poll_interval_ms, 250, "poll_interval");
	is_int(c->lease_ms, 60000, "lease");
	is_int(c->heartbeat_ms, 15000, "heartbeat_interval");
	is_int(c->retry_base_ms, 2000, "retry_base_delay");
	is_int(c->retry_max_ms, 3600000, "retry_max_delay");
	is_int(c->reconnect_max_ms, 45000, "reconnect_max_delay");
	is_int(c->shutdown_timeout_ms, 0, "shutdown_timeout");
	is_int(c->batch_target_ms, 1500, "batch_target bare seconds");
	is_int(c->schedule_count, 4, "four schedules");

	s = &c->schedules[0];
	is_str(s->name, "nightly-vacuum", "schedule 0 name");
	is_str(s->cron, "0 3 * * *", "schedule 0 cron");
	is_str(s->job, "vacuum", "schedule 0 job");
	is_int(s->tenants, SCHEDULE_TENANTS_SEPARATE, "schedule 0 separate");
	is_str(s->args_json, "{}", "schedule 0 args default");
	is_int(s->line, 22, "schedule 0 line");

	s = &c->schedules[1];
	is_int(s->tenants, SCHEDULE_TENANTS_SHARED, "schedule 1 shared");
	is_int(s->line, 26, "schedule 1 line");

	s = &c->schedules[2];
	is_int(s->tenants, SCHEDULE_TENANTS_LIST, "schedule 2 list");
	is_int(s->tenant_list_count, 2, "schedule 2 two tenants");
	if (s->tenant_list_count == 2) {
		is_str(s->tenant_list[0], "acme-corp", "tenant 0");
		is_str(s->tenant_list[1], "Globex_2", "tenant 1");
	}
	is_str(s->args_json,
	       "{\"days\":30,\"ratio\":-1.5e3,\"quoted\":\"30\","
	       "\"octal\":\"0600\",\"flag\":true,\"none\":null,"
	       "\"text\":\"say \\\"hi\\\"\\\\ now\","
	       "\"nl\":\"a\\nb\\u0001\"}",
	       "schedule 2 args as JSON");

	s = &c->schedules[3];
	is_int(s->tenants, SCHEDULE_TENANTS_QUERY, "schedule 3 query");
	is_str(s->tenant_query, "SELECT tenant_id FROM tenants WHERE big",
	       "schedule 3 query text");
	is_str(s->args_json, "{}", "schedule 3 empty args");
	is_int(s->line, 43, "schedule 3 line");
	config_free(c);
	free(path);
}

/* A file that sets nothing gets every default. */
static void test_defaults(void)
{
	static const char *const texts[] = {
		"database: \"dbname=kg\"\n",
		"# nothing but a comment\n",
		"",
	};
	char name[64];

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		char *cause = NULL;
		char *path;
		struct config *c;

		snprintf(name, sizeof(name), "defaults%zu.yaml", i);
		path = write_yaml(name, texts[i]);
		c = config_load(path, &cause);
		ok(c != NULL, "defaults: loads");
		if (c == NULL) {
			printf("# %s\n", cause);
			free(cause);
			free(path);
			continue;
		}
		is_str(c->database, i == 0 ? "dbname=kg" : "", "database");
		is_str(c->state_dir, "/var/lib/pgtenantd", "state_dir");
		is_str(c->control_socket, "/run/pgtenantd/control.sock",
		       "control_socket");
		is_int(c->control_socket_mode, 0600, "control_socket_mode");
		ok(strlen(c->jobs_dir) > 5 &&
			   strcmp(c->jobs_dir + strlen(c->jobs_dir) - 5,
				  "/jobs") == 0,
		   "jobs_dir ends in /jobs");
		is_str(c->backup_dir, "/var/lib/pgtenantd/backups",
		       "backup_dir");
		ok(c->pid_file == NULL, "no pid_file");
		is_int(c->workers, 2, "workers");
		is_int(c->log_level, LOG_LEVEL_INFO, "log_level");
		is_int(c->log_format, LOG_FORMAT_TEXT, "log_format");
		ok(c->listen, "listen");
		ok(!c->test_hooks, "test_hooks is off by default");
		is_str(c->application_name, "pgtenantd", "application_name");
		is_int(c->poll_interval_ms, 5000, "poll_interval");
		is_int(c->lease_ms, 30000, "lease");
		is_int(c->heartbeat_ms, 10000, "heartbeat_interval");
		is_int(c->retry_base_ms, 5000, "retry_base_delay");
		is_int(c->retry_max_ms, 600000, "retry_max_delay");
		is_int(c->reconnect_max_ms, 30000, "reconnect_max_delay");
		is_int(c->shutdown_timeout_ms, 30000, "shutdown_timeout");
		is_int(c->batch_target_ms, 1000, "batch_target");
		is_int(c->schedule_count, 0, "no schedules");
		config_free(c);
		free(path);
	}
}

/* log_format takes text or json; anything else names file, line, key. */
static void test_log_format(void)
{
	char *cause = NULL, *path;
	struct config *c;

	path = write_yaml("logjson.yaml", "log_level: warning\n"
					  "log_format: json\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->log_format == LOG_FORMAT_JSON,
	   "log_format: json is accepted");
	config_free(c);
	free(path);

	path = write_yaml("logtext.yaml", "log_format: TEXT\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->log_format == LOG_FORMAT_TEXT,
	   "log_format: TEXT is accepted (any case)");
	config_free(c);
	free(path);
	free(cause);

	cause = refused("logbad.yaml", "workers: 1\nlog_format: xml\n", &path);
	check_problem(cause, path, 2, "log_format",
		      "\"xml\" is not a format; use text or json",
		      "log_format: xml");
	free(cause);
	free(path);

	cause = refused("logmap.yaml", "log_format: {a: 1}\n", &path);
	contains(cause, "log_format", "log_format as a mapping is refused");
	free(cause);
	free(path);
}

/* heartbeat_interval defaults to a third of the lease. */
static void test_heartbeat_default(void)
{
	char *cause = NULL;
	char *path = write_yaml("lease.yaml", "lease: 9s\n");
	struct config *c = config_load(path, &cause);

	ok(c != NULL && c->heartbeat_ms == 3000, "heartbeat is lease / 3");
	config_free(c);
	free(cause);
	free(path);
}

/* Keys that libcyaml does not know are refused with file, line, key. */
static void test_unknown_keys(void)
{
	char *path, *cause;

	cause = refused("unknown.yaml",
			"database: x\n"
			"workers: 2\n"
			"wrokers: 3\n",
			&path);
	check_problem(cause, path, 3, "wrokers", "unknown key",
		      "unknown top-level key");
	free(cause);
	free(path);

	cause = refused("unknown-sched.yaml",
			"database: x\n"
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: separate\n"
			"  - name: b\n"
			"    cron: \"0 4 * * *\"\n"
			"    tenants: [a, b]\n"
			"    job: vacuum\n"
			"    tennants: shared\n",
			&path);
	check_problem(cause, path, 11, "schedules[1].tennants", "unknown key",
		      "unknown key in a schedule");
	free(cause);
	free(path);

	cause = refused("unknown-query.yaml",
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants:\n"
			"      sql: SELECT 1\n",
			&path);
	check_problem(cause, path, 6, "schedules[0].tenants.sql", "unknown key",
		      "unknown key in tenants");
	free(cause);
	free(path);
}

/* Durations that do not parse or break a bound. */
static void test_durations(void)
{
	char *path, *cause;

	cause = refused("duration.yaml",
			"database: x\n"
			"workers: 2\n"
			"lease: 30 seconds\n",
			&path);
	check_problem(cause, path, 3, "lease", "not a duration",
		      "bad duration");
	contains(cause, "\"30 seconds\"", "bad duration: quotes the value");
	free(cause);
	free(path);

	cause = refused("poll.yaml", "poll_interval: 5ms\n", &path);
	check_problem(cause, path, 1, "poll_interval", "minimum is 10ms",
		      "poll_interval too short");
	free(cause);
	free(path);

	cause = refused("heartbeat.yaml",
			"lease: 10s\n"
			"heartbeat_interval: 10s\n",
			&path);
	check_problem(cause, path, 2, "heartbeat_interval",
		      "shorter than lease", "heartbeat not below lease");
	free(cause);
	free(path);

	cause = refused("retry.yaml",
			"retry_base_delay: 1m\n"
			"retry_max_delay: 30s\n",
			&path);
	check_problem(cause, path, 2, "retry_max_delay", "must not be shorter",
		      "retry max below base");
	free(cause);
	free(path);

	cause = refused("list-duration.yaml", "lease: [1s]\n", &path);
	check_problem(cause, path, 1, "lease", "expected a string, got a list",
		      "duration given as a list");
	free(cause);
	free(path);
}

/* workers out of range and not a number. */
static void test_workers(void)
{
	char *path, *cause;

	cause = refused("workers0.yaml", "database: x\nworkers: 0\n", &path);
	check_problem(cause, path, 2, "workers",
		      "0 is out of range; use 1 "
		      "to 64",
		      "workers 0");
	free(cause);
	free(path);

	cause = refused("workers65.yaml", "\n\nworkers: 65\n", &path);
	check_problem(cause, path, 3, "workers", "65 is out of range",
		      "workers 65");
	free(cause);
	free(path);

	cause = refused("workers-word.yaml",
			"database: x\n"
			"log_level: info\n"
			"workers: two\n",
			&path);
	check_problem(cause, path, 3, "workers",
		      "\"two\" is not a whole "
		      "number",
		      "workers not a number");
	free(cause);
	free(path);
}

/* Bad values of a schedule's tenants. */
static void test_tenants(void)
{
	char *path, *cause;

	cause = refused("tenants-word.yaml",
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: everyone\n",
			&path);
	check_problem(cause, path, 5, "schedules[0].tenants",
		      "\"everyone\" is not understood", "tenants word");
	free(cause);
	free(path);

	cause = refused("tenants-list.yaml",
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants:\n"
			"      - acme\n"
			"      - \"bad id\"\n"
			"      - ok-too\n",
			&path);
	check_problem(cause, path, 7, "schedules[0].tenants[1]",
		      "tenant id \"bad id\" contains ' '", "tenants list item");
	free(cause);
	free(path);

	cause = refused("tenants-missing.yaml",
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n",
			&path);
	check_problem(cause, path, 2, "schedules[0].tenants", "missing",
		      "tenants missing");
	free(cause);
	free(path);

	cause = refused("tenants-empty.yaml",
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: []\n",
			&path);
	check_problem(cause, path, 5, "schedules[0].tenants", "is empty",
		      "tenants empty list");
	free(cause);
	free(path);
}

/* Socket modes: octal, within 0777, owner read and write. */
static void test_socket_mode(void)
{
	char *path, *cause;

	cause = refused("mode-word.yaml", "control_socket_mode: rw\n", &path);
	check_problem(cause, path, 1, "control_socket_mode",
		      "not an octal mode", "mode not octal");
	free(cause);
	free(path);

	cause = refused("mode-big.yaml",
			"database: x\ncontrol_socket_mode: \"1777\"\n", &path);
	check_problem(cause, path, 2, "control_socket_mode", "above 0777",
		      "mode above 0777");
	free(cause);
	free(path);

	cause = refused("mode-owner.yaml", "control_socket_mode: \"0460\"\n",
			&path);
	check_problem(cause, path, 1, "control_socket_mode",
		      "owner read and write", "mode without owner write");
	free(cause);
	free(path);

	cause = refused("mode-digit.yaml", "control_socket_mode: \"0680\"\n",
			&path);
	check_problem(cause, path, 1, "control_socket_mode",
		      "not an octal mode", "mode with digit 8");
	free(cause);
	free(path);
}

/* finding 12: who may use the control socket, how many at once, for how
 * long; a world-accessible mode is refused. */
static void test_control_access(void)
{
	char *path, *cause = NULL;
	struct config *c;

	cause = refused("mode-world.yaml", "control_socket_mode: \"0666\"\n",
			&path);
	check_problem(cause, path, 1, "control_socket_mode",
		      "lets every user of the host connect",
		      "finding 12: mode 0666");
	free(cause);
	free(path);
	cause = refused("mode-other-read.yaml",
			"control_socket_mode: \"0604\"\n", &path);
	check_problem(cause, path, 1, "control_socket_mode",
		      "\"other\" bits 004", "finding 12: mode 0604");
	free(cause);
	free(path);
	cause = refused("mode-other-x.yaml", "control_socket_mode: \"0601\"\n",
			&path);
	check_problem(cause, path, 1, "control_socket_mode", "lets every user",
		      "finding 12: mode 0601");
	free(cause);
	free(path);

	cause = NULL;
	path = write_yaml("control.yaml", "control_socket_mode: \"0660\"\n"
					  "control_allow_users: [root, 4242]\n"
					  "control_allow_groups:\n"
					  "  - root\n"
					  "  - \"77\"\n"
					  "control_max_clients: 5\n"
					  "control_idle_timeout: 2s\n");
	c = config_load(path, &cause);
	ok(c != NULL, "finding 12: control access settings load");
	if (c == NULL)
		printf("# %s\n", cause);
	if (c != NULL) {
		is_int(c->control_allow_uid_count, 2, "two users allowed");
		is_int(c->control_allow_uids[0], 0, "root by name is uid 0");
		is_int(c->control_allow_uids[1], 4242, "a uid as a number");
		is_int(c->control_allow_gid_count, 2, "two groups allowed");
		is_int(c->control_allow_gids[0], 0, "group root is gid 0");
		is_int(c->control_allow_gids[1], 77, "a gid as a string");
		is_int(c->control_max_clients, 5, "control_max_clients");
		is_int(c->control_idle_timeout_ms, 2000,
		       "control_idle_timeout");
	}
	config_free(c);
	free(path);

	path = write_yaml("control-defaults.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL, "control defaults load");
	if (c != NULL) {
		is_int(c->control_allow_uid_count, 0,
		       "finding 12: by default nobody else is allowed");
		is_int(c->control_allow_gid_count, 0, "... no group either");
		is_int(c->control_max_clients, 64, "64 clients by default");
		is_int(c->control_idle_timeout_ms, 60000,
		       "60 s idle timeout by default");
	}
	config_free(c);
	free(path);
	free(cause);

	cause = refused("control-bad.yaml",
			"control_allow_users:\n"
			"  - root\n"
			"  - no-such-user-pgt\n"
			"control_allow_groups: [no-such-group-pgt]\n"
			"control_max_clients: 0\n"
			"control_idle_timeout: 10ms\n",
			&path);
	check_problem(cause, path, 3, "control_allow_users[1]",
		      "neither a user of this host nor a uid", "unknown user");
	check_problem(cause, path, 4, "control_allow_groups[0]",
		      "neither a group of this host nor a gid",
		      "unknown group");
	check_problem(cause, path, 5, "control_max_clients", "out of range",
		      "no client slots");
	check_problem(cause, path, 6, "control_idle_timeout", "too short",
		      "idle timeout too short");
	free(cause);
	free(path);
	cause = refused("control-scalar.yaml", "control_allow_users: root\n",
			&path);
	contains(cause, "control_allow_users", "a user not in a list: named");
	free(cause);
	free(path);
}

/* finding 15: a config file with a password that others may read. */
static void test_secret_warning(void)
{
	char *w;

	w = config_secret_warning("/etc/p.yaml", 0100644,
				  "host=db password=s3cret dbname=x");
	contains(w, "/etc/p.yaml holds the database password",
		 "finding 15: password= in a 0644 file: warned, file named");
	contains(w, "readable by group and others (mode 0644)",
		 "finding 15: ... says who may read it and the mode");
	contains(w, "chmod 600 /etc/p.yaml", "finding 15: ... and the fix");
	free(w);
	w = config_secret_warning("/etc/p.yaml", 0100640,
				  "postgresql://app:s3cret@db/x");
	contains(w, "readable by its group (mode 0640)",
		 "finding 15: a URI's password in a 0640 file: warned");
	free(w);
	w = config_secret_warning("/etc/p.yaml", 0100604,
				  "host=db password = 's3 cret'");
	contains(w, "readable by others (mode 0604)",
		 "finding 15: password = '...' with blanks: warned");
	free(w);
	w = config_secret_warning("/etc/p.yaml", 0100644,
				  "postgresql://db/x?password=s3cret");
	ok(w != NULL, "finding 15: a URI's password parameter: warned");
	free(w);
	ok(config_secret_warning("/etc/p.yaml", 0100600,
				 "host=db password=s3cret") == NULL,
	   "finding 15: mode 0600: no warning");
	ok(config_secret_warning("/etc/p.yaml", 0100644,
				 "host=db dbname=x user=app") == NULL,
	   "finding 15: no password: no warning");
	ok(config_secret_warning("/etc/p.yaml", 0100644,
				 "postgresql://app@db/x") == NULL,
	   "finding 15: a URI without a password: no warning");
	ok(config_secret_warning("/etc/p.yaml", 0100644, "") == NULL,
	   "finding 15: an empty database: no warning");
}

/* test_hooks is a boolean like listen; anything else is a problem. */
static void test_test_hooks(void)
{
	char *path, *cause;

	cause = refused("hooks.yaml", "workers: 1\ntest_hooks: sometimes\n",
			&path);
	check_problem(cause, path, 2, "test_hooks",
		      "\"sometimes\" is not true or false",
		      "test_hooks: sometimes");
	free(cause);
	free(path);
}

/* Several problems are all reported, one per line, in file order. */
static void test_many_problems(void)
{
	char *path, *cause;
	const char *a, *b, *c;
	int lines = 0;

	cause = refused("many.yaml",
			"log_level: loud\n"
			"listen: maybe\n"
			"workers: 100\n"
			"schedules:\n"
			"  - name: same\n"
			"    cron: \"0 3 * *\"\n"
			"    job: Vacuum\n"
			"    tenants: shared\n"
			"  - name: same\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: shared\n"
			"    args: [1, 2]\n",
			&path);
	check_problem(cause, path, 1, "log_level", "\"loud\" is not a level",
		      "log_level");
	check_problem(cause, path, 2, "listen", "not true or false", "listen");
	check_problem(cause, path, 3, "workers", "out of range", "workers");
	check_problem(cause, path, 6, "schedules[0].cron", "has 4 fields",
		      "cron fields");
	check_problem(cause, path, 7, "schedules[0].job", "not a job kind",
		      "job kind");
	check_problem(cause, path, 9, "schedules[1].name",
		      "already the name of the schedule at line 5",
		      "duplicate schedule name");
	check_problem(cause, path, 13, "schedules[1].args",
		      "expected a mapping", "args as a list");
	for (const char *s = cause; s != NULL && *s != '\0'; s++)
		lines += *s == '\n';
	is_int(lines + 1, 7, "seven problems, one per line");
	a = cause ? strstr(cause, "\"log_level\"") : NULL;
	b = cause ? strstr(cause, "\"workers\"") : NULL;
	c = cause ? strstr(cause, "\"schedules[1].args\"") : NULL;
	ok(a != NULL && b != NULL && c != NULL && a < b && b < c,
	   "problems in file order");
	free(cause);
	free(path);
}

/* History kept (prune.c): the keep_* ages, 0 for ever, and the interval. */
static void test_history(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("history-default.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->keep_succeeded_ms == 14LL * 86400 * 1000 &&
		   c->keep_failed_ms == 90LL * 86400 * 1000 &&
		   c->keep_slots_ms == 30LL * 86400 * 1000 &&
		   c->keep_removed_backups_ms == 90LL * 86400 * 1000 &&
		   c->keep_fleets_ms == 90LL * 86400 * 1000 &&
		   c->prune_interval_ms == 600000,
	   "history defaults: 14d, 90d, 30d, 90d, fleets 90d, pruned every 10m");
	config_free(c);
	free(path);

	path = write_yaml("history.yaml", "keep_succeeded_jobs: 2h\n"
					  "keep_failed_jobs: 0\n"
					  "keep_schedule_slots: 7d\n"
					  "keep_removed_backups: 0s\n"
					  "keep_fleets: 1d\n"
					  "prune_interval: 250ms\n");
	c = config_load(path, &cause);
	ok(c != NULL, "history settings load");
	if (c != NULL) {
		is_int(c->keep_succeeded_ms, 2 * 3600 * 1000LL,
		       "keep_succeeded_jobs: 2h");
		is_int(c->keep_failed_ms, 0, "keep_failed_jobs: 0 (for ever)");
		is_int(c->keep_slots_ms, 7 * 86400 * 1000LL,
		       "keep_schedule_slots: 7d");
		is_int(c->keep_removed_backups_ms, 0,
		       "keep_removed_backups: 0s (for ever)");
		is_int(c->keep_fleets_ms, 86400 * 1000LL, "keep_fleets: 1d");
		is_int(c->prune_interval_ms, 250, "prune_interval: 250ms");
		config_free(c);
	} else {
		printf("# %s\n", cause);
	}
	free(path);
	free(cause);

	path = write_yaml(
		"hooks.yaml",
		"hook_on_failure: [\"/usr/local/bin/page\", \"--team\", \"$(db)\"]\n"
		"hook_on_success: []\n"
		"hook_timeout: 5s\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->hook_on_failure != NULL &&
		   strcmp(c->hook_on_failure[0], "/usr/local/bin/page") == 0 &&
		   strcmp(c->hook_on_failure[2], "$(db)") == 0 &&
		   c->hook_on_failure[3] == NULL &&
		   c->hook_on_success == NULL && c->hook_timeout_ms == 5000,
	   "hooks: the argv as written, an empty list is no hook, hook_timeout");
	config_free(c);
	free(path);
	free(cause);
	cause = NULL;

	cause = refused("history-bad.yaml",
			"keep_succeeded_jobs: a fortnight\n"
			"keep_failed_jobs: -1d\n"
			"prune_interval: 10ms\n"
			"hook_on_failure: [\"\"]\n",
			&path);
	check_problem(cause, path, 1, "keep_succeeded_jobs", "not a duration",
		      "keep_succeeded_jobs that is no duration");
	check_problem(cause, path, 2, "keep_failed_jobs", "not a duration",
		      "a negative keep_failed_jobs");
	check_problem(cause, path, 3, "prune_interval",
		      "too short; the minimum is 100ms",
		      "prune_interval under 100ms");
	check_problem(cause, path, 4, "hook_on_failure", "names no program",
		      "a hook without a program");
	free(cause);
	free(path);
}

/* Fleets (fleet.c): fleet_interval, 10s by default, at least 100ms. */
static void test_fleet(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("fleet-default.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->fleet_interval_ms == 10000,
	   "fleet_interval defaults to 10s");
	config_free(c);
	free(path);

	path = write_yaml("fleet.yaml", "fleet_interval: 250ms\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->fleet_interval_ms == 250, "fleet_interval: 250ms");
	config_free(c);
	free(path);
	free(cause);

	cause = refused("fleet-bad.yaml",
			"workers: 1\n"
			"fleet_interval: 50ms\n",
			&path);
	check_problem(cause, path, 2, "fleet_interval",
		      "too short; the minimum is 100ms",
		      "fleet_interval under 100ms");
	free(cause);
	free(path);
}

/* Maintenance settings: catch_up, tenants: inactive, a cron that parses,
 * backup retention. */
static void test_maintenance(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("maint.yaml",
			  "backup_keep: 3\n"
			  "backup_max_age: 2d\n"
			  "schedules:\n"
			  "  - name: a\n"
			  "    cron: \"CRON_TZ=Europe/Berlin 0 3 * * *\"\n"
			  "    job: vacuum\n"
			  "    tenants: separate\n"
			  "  - name: b\n"
			  "    cron: \"0 4 * * *\"\n"
			  "    job: drop_tenant\n"
			  "    tenants: inactive\n"
			  "    catch_up: none\n");
	c = config_load(path, &cause);
	ok(c != NULL, "maintenance settings load");
	if (c != NULL) {
		is_int(c->backup_keep, 3, "backup_keep");
		is_int(c->backup_max_age_ms, 2 * 86400 * 1000LL,
		       "backup_max_age");
		is_int(c->schedules[0].catch_up, SCHEDULE_CATCH_UP_LATEST,
		       "catch_up defaults to latest");
		is_str(c->schedules[0].cron, "CRON_TZ=Europe/Berlin 0 3 * * *",
		       "the cron text with its zone is kept");
		is_int(c->schedules[1].catch_up, SCHEDULE_CATCH_UP_NONE,
		       "catch_up: none");
		is_int(c->schedules[1].tenants, SCHEDULE_TENANTS_INACTIVE,
		       "tenants: inactive");
		config_free(c);
	} else {
		printf("# %s\n", cause);
	}
	free(path);
	free(cause);
	cause = NULL;

	path = write_yaml("maint-default.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->backup_keep == 7 &&
		   c->backup_max_age_ms == 30LL * 86400 * 1000,
	   "backup_keep 7 and backup_max_age 30d by default");
	config_free(c);
	free(path);

	cause = refused("maint-bad.yaml",
			"backup_keep: -1\n"
			"backup_max_age: forever\n"
			"schedules:\n"
			"  - name: a\n"
			"    cron: \"61 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: separate\n"
			"    catch_up: all\n"
			"  - name: b\n"
			"    cron: \"CRON_TZ=Nowhere/Land 0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: separate\n",
			&path);
	check_problem(cause, path, 1, "backup_keep", "out of range",
		      "backup_keep below 0");
	check_problem(cause, path, 2, "backup_max_age", "not a duration",
		      "backup_max_age");
	check_problem(cause, path, 5, "schedules[0].cron",
		      "\"61\" is out of range 0-59",
		      "a cron field out of range");
	check_problem(cause, path, 8, "schedules[0].catch_up",
		      "\"all\" is not understood", "catch_up");
	check_problem(cause, path, 10, "schedules[1].cron",
		      "not an installed time zone", "an unknown zone");
	free(cause);
	free(path);
}

/* limits: sizes with defaults and ranges (issue 10, finding 11). */
static void test_limits(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("limits.yaml", "limits:\n"
					 "  args_bytes: 1000\n"
					 "  error_bytes: 4096\n");
	c = config_load(path, &cause);
	ok(c != NULL, "limits load");
	if (c != NULL) {
		is_int(c->args_bytes, 1000, "limits.args_bytes");
		is_int(c->result_bytes, 1048576,
		       "limits.result_bytes defaults to 1 MiB");
		is_int(c->error_bytes, 4096, "limits.error_bytes");
	} else {
		printf("# %s\n", cause);
	}
	config_free(c);
	free(path);
	free(cause);

	path = write_yaml("limits-default.yaml", "workers: 1\n");
	c = config_load(path, NULL);
	ok(c != NULL && c->args_bytes == 65536 && c->result_bytes == 1048576 &&
		   c->error_bytes == 65536,
	   "limits default to 64 KiB, 1 MiB and 64 KiB");
	config_free(c);
	free(path);

	cause = refused("limits-bad.yaml",
			"limits:\n"
			"  args_bytes: 10\n"
			"  result_bytes: 1000000000\n",
			&path);
	check_problem(cause, path, 2, "limits.args_bytes",
		      "10 is out of range; use 256 to 67108864 bytes",
		      "args_bytes below 256");
	check_problem(cause, path, 3, "limits.result_bytes", "out of range",
		      "result_bytes above 64 MiB");
	free(cause);
	free(path);
	cause = refused("limits-unknown.yaml", "limits:\n  errors: 1\n", &path);
	check_problem(cause, path, 2, "limits.errors", "unknown key",
		      "an unknown key in limits");
	free(cause);
	free(path);
}

/* Malformed YAML, duplicate keys and a missing file. */
static void test_unreadable(void)
{
	char *path, *cause;

	cause = refused("malformed.yaml",
			"database: x\n"
			"workers: 2\n"
			"schedules: [a, b\n"
			"state_dir: /x\n",
			&path);
	contains(cause, path, "malformed: names the file");
	ok(cause != NULL && strncmp(cause, path, strlen(path)) == 0 &&
		   cause[strlen(path)] == ':' && cause[strlen(path) + 1] == '4',
	   "malformed: FILE:4:COL");
	contains(cause, "flow sequence", "malformed: says what is wrong");
	free(cause);
	free(path);

	cause = refused("tabs.yaml", "database: x\n\tworkers: 2\n", &path);
	ok(cause != NULL && strstr(cause, path) == cause &&
		   strncmp(cause + strlen(path), ":2:", 3) == 0,
	   "tab indentation: FILE:2:");
	free(cause);
	free(path);

	cause = refused("dup.yaml", "workers: 2\ndatabase: x\nworkers: 3\n",
			&path);
	ok(cause != NULL && strstr(cause, path) == cause &&
		   strncmp(cause + strlen(path), ":3:", 3) == 0,
	   "duplicate key: FILE:3:");
	contains(cause, "duplicate key \"workers\"", "duplicate key: named");
	free(cause);
	free(path);

	cause = refused("utf8.yaml", "database: x\nworkers: 2\nx: caf\xe9\n",
			&path);
	ok(cause != NULL && strstr(cause, path) == cause &&
		   strncmp(cause + strlen(path), ":3:", 3) == 0,
	   "invalid UTF-8: FILE:3:");
	free(cause);
	free(path);

	cause = refused("seq.yaml", "- database: x\n", &path);
	contains(cause, "must be a mapping", "top level not a mapping");
	free(cause);
	free(path);

	cause = NULL;
	path = xasprintf("%s/does-not-exist.yaml", tmpdir);
	ok(config_load(path, &cause) == NULL, "missing file refused");
	contains(cause, path, "missing file: names the file");
	contains(cause, "No such file", "missing file: says why");
	free(cause);
	free(path);
}

/* The shipped example loads and matches DESIGN.md. */
static void test_example(void)
{
	const char *top = getenv("top_srcdir");
	char *path = xasprintf("%s/etc/pgtenantd.yaml", top ? top : ".");
	char *cause = NULL;
	struct config *c;

	/* Run by hand without top_srcdir, from elsewhere than the source
	 * tree: a TAP skip (never a pass). Under make check, top_srcdir is
	 * set and a missing example fails below. */
	if (top == NULL && access(path, R_OK) != 0) {
		printf("ok %d # SKIP no ./etc/pgtenantd.yaml, no top_srcdir\n",
		       ++unit_count);
		free(path);
		return;
	}
	c = config_load(path, &cause);
	ok(c != NULL, "etc/pgtenantd.yaml loads");
	if (c == NULL)
		printf("# %s\n", cause);
	if (c != NULL) {
		is_str(c->database,
		       "host=/run/postgresql dbname=knowledge_graph user=pgtenantd",
		       "example database");
		ok(c->schedule_count >= 1 && c->schedules[0].name != NULL &&
			   strcmp(c->schedules[0].name, "nightly-vacuum") == 0,
		   "example schedule");
	}
	config_free(c);
	free(cause);
	free(path);
}

/* yamlpos maps key paths and sequence items to their lines. */
static void test_yamlpos(void)
{
	char *cause = NULL;
	char *path = write_yaml("pos.yaml", "kind: migrate\n"
					    "steps:\n"
					    "  - name: copy\n"
					    "    sql: |\n"
					    "      SELECT 1\n"
					    "  -\n"
					    "    name: check\n"
					    "    verify:\n"
					    "      actual: SELECT 2\n"
					    "      expected: >\n"
					    "        SELECT 2\n"
					    "  - [a, {b: 1}]\n"
					    "  - plain\n"
					    "? [complex, key]\n"
					    ": {inner: 1}\n"
					    "after: {x: [1, 2]}\n");
	struct yamlpos *pos = yamlpos_load(path, &cause);

	ok(pos != NULL, "yamlpos loads");
	if (pos == NULL)
		printf("# %s\n", cause);
	is_int(yamlpos_line(pos, "kind"), 1, "top-level key");
	is_int(yamlpos_line(pos, "steps"), 2, "sequence key");
	is_int(yamlpos_line(pos, "steps[0]"), 3, "item on the dash line");
	is_int(yamlpos_line(pos, "steps[0].sql"), 4, "key in item");
	is_int(yamlpos_line(pos, "steps[1]"), 7, "item below its dash");
	is_int(yamlpos_line(pos, "steps[1].verify.expected"), 10, "nested key");
	is_int(yamlpos_line(pos, "steps[2]"), 12, "flow item");
	is_int(yamlpos_line(pos, "steps[2][1].b"), 12, "key in flow item");
	is_int(yamlpos_line(pos, "steps[3]"), 13, "scalar item");
	is_int(yamlpos_line(pos, "after.x[1]"), 16, "after a complex key");
	is_int(yamlpos_line(pos, "inner"), 0, "complex key not indexed");
	is_int(yamlpos_line(pos, "steps[1].verify.missing"), 8,
	       "missing key: line of its parent");
	is_int(yamlpos_line(pos, "steps[9].name"), 2,
	       "missing item: line of the sequence");
	is_int(yamlpos_line(pos, "nothing"), 0, "unknown path is 0");
	yamlpos_free(pos);
	free(cause);
	free(path);
}

/* Remove the temporary directory and the files in it. */
static void cleanup(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	free(cmd);
}

/* Tenant history (tenants.c): snapshots, their retention, the metrics
 * cap and the free-space settings. */
static void test_tenant_history(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("tenants-default.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->tenant_snapshot_interval_ms == 3600000 &&
		   c->keep_tenant_history_ms == 90LL * 86400 * 1000 &&
		   c->metrics_max_tenants == 100 &&
		   c->backup_min_free_bytes == 0 && c->database_max_bytes == 0,
	   "tenant history defaults: hourly, kept 90d, 100 series, no reserve, no budget");
	config_free(c);
	free(path);

	path = write_yaml("tenants.yaml",
			  "tenant_snapshot_interval: 0\n"
			  "keep_tenant_history: 7d\n"
			  "metrics_max_tenants: 0\n"
			  "backup_min_free_bytes: 1073741824\n"
			  "database_max_bytes: 9000000000000\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->tenant_snapshot_interval_ms == 0 &&
		   c->keep_tenant_history_ms == 7LL * 86400 * 1000 &&
		   c->metrics_max_tenants == 0 &&
		   c->backup_min_free_bytes == 1073741824 &&
		   c->database_max_bytes == 9000000000000LL,
	   "tenant history settings load");
	config_free(c);
	free(path);
	free(cause);

	cause = refused("tenants-bad.yaml",
			"metrics_max_tenants: 100001\n"
			"backup_min_free_bytes: -1\n"
			"keep_tenant_history: a while\n",
			&path);
	check_problem(cause, path, 1, "metrics_max_tenants", "out of range",
		      "too many tenant series");
	check_problem(cause, path, 2, "backup_min_free_bytes", "out of range",
		      "a negative reserve");
	check_problem(cause, path, 3, "keep_tenant_history", "not a duration",
		      "a keep_tenant_history that is no duration");
	free(cause);
	free(path);
}

/* tenant_roles (create_tenant): a list of role names, each once, none
 * empty or over PostgreSQL's 63 bytes; absent or empty is no role. */
static void test_tenant_roles(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("roles-none.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->tenant_roles == NULL,
	   "tenant_roles: none by default");
	config_free(c);
	free(path);

	path = write_yaml("roles.yaml",
			  "tenant_roles: [app_rw, \"App Reader\"]\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->tenant_roles != NULL &&
		   strcmp(c->tenant_roles[0], "app_rw") == 0 &&
		   strcmp(c->tenant_roles[1], "App Reader") == 0 &&
		   c->tenant_roles[2] == NULL,
	   "tenant_roles: the names as written, any spelling PostgreSQL allows");
	config_free(c);
	free(path);

	path = write_yaml("roles-empty.yaml", "tenant_roles: []\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->tenant_roles == NULL,
	   "tenant_roles: an empty list is no role");
	config_free(c);
	free(path);
	free(cause);

	cause = refused("roles-empty-name.yaml",
			"workers: 1\n"
			"tenant_roles: [app, \"\"]\n",
			&path);
	check_problem(cause, path, 2, "tenant_roles",
		      "\"\" is not a role name; a role name has 1 to 63 bytes",
		      "tenant_roles: an empty name");
	free(cause);
	free(path);

	cause = refused(
		"roles-long.yaml",
		"tenant_roles:\n"
		"  - a234567890123456789012345678901234567890123456789012345678901234\n",
		&path);
	check_problem(cause, path, 1, "tenant_roles",
		      "is not a role name; a role name has 1 to 63 bytes",
		      "tenant_roles: a name of 64 bytes");
	free(cause);
	free(path);

	cause = refused("roles-twice.yaml", "tenant_roles: [app, x, app]\n",
			&path);
	check_problem(cause, path, 1, "tenant_roles",
		      "names role \"app\" twice", "tenant_roles: a role twice");
	free(cause);
	free(path);
}

/* backup_digests: on by default, off when false, a problem otherwise. */
static void test_backup_digests(void)
{
	char *path, *cause = NULL;
	struct config *c;

	path = write_yaml("digests.yaml", "workers: 1\n");
	c = config_load(path, &cause);
	ok(c != NULL && c->backup_digests, "backup_digests is on by default");
	config_free(c);
	free(path);
	path = write_yaml("digests.yaml", "backup_digests: false\n");
	c = config_load(path, &cause);
	ok(c != NULL && !c->backup_digests,
	   "backup_digests: false turns it off");
	config_free(c);
	free(path);
	cause = refused("digests.yaml", "workers: 1\nbackup_digests: often\n",
			&path);
	check_problem(cause, path, 2, "backup_digests",
		      "\"often\" is not true or false",
		      "backup_digests: often");
	free(cause);
	free(path);
}

/* A schedule's fleet: mapping (fleet schedules). */
static const char fleet_head[] = "schedules:\n"
				 "  - name: wave\n"
				 "    cron: \"0 22 * * *\"\n"
				 "    job: migrate_to_separate_schema\n"
				 "    tenants: shared\n";

/* Load fleet_head followed by the fleet lines; must be refused. */
static char *fleet_refused(const char *fleet, char **path)
{
	char *text = xasprintf("%s%s", fleet_head, fleet);
	char *cause = refused("fleet-sched-bad.yaml", text, path);

	free(text);
	return cause;
}

/* The commented fleet schedule of etc/pgtenantd.yaml, uncommented, loads
 * as a fleet schedule. */
static void test_fleet_example(void)
{
	const char *top = getenv("top_srcdir");
	char *path = xasprintf("%s/etc/pgtenantd.yaml", top ? top : ".");
	char line[512], *text = xstrdup("schedules:\n"), *next, *cause = NULL;
	bool in = false;
	struct config *c;
	FILE *f = fopen(path, "r");

	free(path);
	if (f == NULL) {
		printf("ok %d # SKIP no etc/pgtenantd.yaml\n", ++unit_count);
		free(text);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "#  - name: nightly-fleet", 24) == 0)
			in = true;
		else if (in && line[0] != '#')
			break;
		if (!in)
			continue;
		next = xasprintf("%s%s", text, line + 1);
		free(text);
		text = next;
	}
	fclose(f);
	ok(in, "etc/pgtenantd.yaml has a commented fleet schedule");
	path = write_yaml("fleet-example.yaml", text);
	c = config_load(path, &cause);
	ok(c != NULL && c->schedule_count == 1 &&
		   c->schedules[0].fleet_json != NULL,
	   "the example fleet schedule, uncommented, loads");
	if (cause != NULL)
		printf("#     got: %s\n", cause);
	config_free(c);
	free(cause);
	free(path);
	free(text);
}

static void test_fleet_schedule(void)
{
	static const struct {
		const char *fleet;
		int line;
		const char *key, *what;
	} bad[] = {
		{ "    fleet:\n      max_paralel: 2\n", 7,
		  "schedules[0].fleet.max_paralel", "unknown key" },
		{ "    fleet:\n      max_parallel: 0\n", 7,
		  "schedules[0].fleet.max_parallel",
		  "\"0\" is not a whole number from 1 to 1000" },
		{ "    fleet:\n      max_parallel: 1001\n", 7,
		  "schedules[0].fleet.max_parallel",
		  "\"1001\" is not a whole number from 1 to 1000" },
		{ "    fleet:\n      max_parallel: \"2\"\n", 7,
		  "schedules[0].fleet.max_parallel", "is not a whole number" },
		{ "    fleet:\n      window: \"22:00-24:00\"\n", 7,
		  "schedules[0].fleet.window", "is not HH:MM-HH:MM" },
		{ "    fleet:\n      window: \"22:00-22:00\"\n", 7,
		  "schedules[0].fleet.window", "two different times" },
		{ "    fleet:\n      on_failure: stop\n", 7,
		  "schedules[0].fleet.on_failure",
		  "\"stop\" is not understood" },
		{ "    fleet:\n      min_bytes: -1\n", 7,
		  "schedules[0].fleet.min_bytes",
		  "\"-1\" is not a whole number of bytes" },
		{ "    fleet:\n      max_rows: many\n", 7,
		  "schedules[0].fleet.max_rows",
		  "is not a whole number of rows" },
		{ "    fleet:\n      time_zone:\n", 7,
		  "schedules[0].fleet.time_zone", "expected a single value" },
		{ "    fleet:\n      window: [\"22:00\"]\n", 7,
		  "schedules[0].fleet.window", "got a list" },
		{ "    fleet:\n      min_rows: 10\n      max_rows: 5\n", 7,
		  "schedules[0].fleet.min_rows", "10 is over max_rows, 5" },
		{ "    fleet: yes\n", 6, "schedules[0].fleet",
		  "expected a mapping of fleet settings" },
	};
	char *path = NULL, *cause = NULL, *label;
	struct config *c;

	path = write_yaml("fleet-sched.yaml",
			  "schedules:\n"
			  "  - name: wave\n"
			  "    cron: \"0 22 * * *\"\n"
			  "    job: migrate_to_separate_schema\n"
			  "    tenants: [a, b]\n"
			  "    fleet:\n"
			  "      max_parallel: 3\n"
			  "      window: \"22:00-06:00\"\n"
			  "      time_zone: Europe/Berlin\n"
			  "      on_failure: continue\n"
			  "      min_rows: 0\n"
			  "      max_rows: 1000000\n"
			  "      min_bytes: 10\n"
			  "      max_bytes: 9223372036854775807\n"
			  "  - name: plain\n"
			  "    cron: \"0 22 * * *\"\n"
			  "    job: migrate_to_separate_schema\n"
			  "    tenants: shared\n"
			  "  - name: defaults\n"
			  "    cron: \"0 22 * * *\"\n"
			  "    job: migrate_to_separate_schema\n"
			  "    tenants: {query: \"SELECT 'a'\"}\n"
			  "    fleet: {}\n");
	c = config_load(path, &cause);
	ok(c != NULL, "a fleet schedule with every key is accepted");
	if (cause != NULL)
		printf("#     got: %s\n", cause);
	if (c != NULL && c->schedule_count == 3) {
		is_str(c->schedules[0].fleet_json,
		       "{\"max_parallel\":3,\"window\":\"22:00-06:00\","
		       "\"time_zone\":\"Europe/Berlin\",\"on_failure\":"
		       "\"continue\",\"min_rows\":0,\"max_rows\":1000000,"
		       "\"min_bytes\":10,\"max_bytes\":9223372036854775807}",
		       "the fleet settings as JSON for fire_slot_fleet");
		ok(c->schedules[1].fleet_json == NULL,
		   "a schedule without fleet: is not a fleet schedule");
		is_str(c->schedules[2].fleet_json, "{}",
		       "fleet: {} is a fleet schedule with start_fleet's "
		       "defaults");
	} else {
		ok(false, "three schedules");
	}
	config_free(c);
	free(path);
	free(cause);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cause = fleet_refused(bad[i].fleet, &path);
		label = xasprintf("fleet refused: %s", bad[i].what);
		check_problem(cause, path, bad[i].line, bad[i].key, bad[i].what,
			      label);
		free(label);
		free(cause);
		free(path);
	}

	cause = refused("fleet-sched-job.yaml",
			"schedules:\n"
			"  - name: nightly\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: vacuum\n"
			"    tenants: shared\n"
			"    fleet: {max_parallel: 2}\n",
			&path);
	check_problem(cause, path, 6, "schedules[0].fleet",
		      "only a schedule of job migrate_to_separate_schema "
		      "may have a fleet, not one of \"vacuum\"",
		      "fleet with another job kind");
	free(cause);
	free(path);

	cause = refused("fleet-sched-separate.yaml",
			"schedules:\n"
			"  - name: wave\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: migrate_to_separate_schema\n"
			"    tenants: separate\n"
			"    fleet: {}\n",
			&path);
	check_problem(cause, path, 6, "schedules[0].fleet",
		      "tenants: separate has none to move",
		      "fleet over tenants: separate");
	free(cause);
	free(path);

	cause = refused("fleet-sched-inactive.yaml",
			"schedules:\n"
			"  - name: wave\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: migrate_to_separate_schema\n"
			"    tenants: inactive\n"
			"    fleet: {}\n",
			&path);
	check_problem(cause, path, 6, "schedules[0].fleet",
		      "tenants: inactive has none to move",
		      "fleet over tenants: inactive");
	free(cause);
	free(path);

	cause = refused("fleet-sched-name.yaml",
			"schedules:\n"
			"  - name: \"wave one\"\n"
			"    cron: \"0 3 * * *\"\n"
			"    job: migrate_to_separate_schema\n"
			"    tenants: shared\n"
			"    fleet: {}\n",
			&path);
	check_problem(cause, path, 6, "schedules[0].fleet",
		      "the schedule's name \"wave one\" cannot name its fleets",
		      "a schedule name no fleet name can start with");
	free(cause);
	free(path);

	test_fleet_example();

	ok(fleet_window_valid("22:00-06:00"), "window 22:00-06:00");
	ok(fleet_window_valid(" 1:30 - 05:00 "), "window 1:30 - 05:00");
	ok(fleet_window_valid("00:00-23:59"), "window 00:00-23:59");
	ok(!fleet_window_valid("24:00-06:00"), "no hour 24");
	ok(!fleet_window_valid("22:60-06:00"), "no minute 60");
	ok(!fleet_window_valid("22:00-06:00x"), "nothing after the window");
	ok(!fleet_window_valid("22:00"), "a window has two times");
	ok(!fleet_window_valid("-1:00-06:00"), "no sign");
	ok(!fleet_window_valid("22:0-06:00"), "two digits of minutes");
	ok(!fleet_window_valid("06:00-6:00"), "two different times");
	ok(!fleet_window_valid(""), "not empty");
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/pgt-config-XXXXXX",
		 base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_full();
	test_defaults();
	test_heartbeat_default();
	test_log_format();
	test_unknown_keys();
	test_durations();
	test_workers();
	test_tenants();
	test_socket_mode();
	test_control_access();
	test_secret_warning();
	test_test_hooks();
	test_many_problems();
	test_maintenance();
	test_history();
	test_limits();
	test_unreadable();
	test_example();
	test_yamlpos();
	test_tenant_history();
	test_tenant_roles();
	test_backup_digests();
	test_fleet();
	test_fleet_schedule();
	cleanup();
	return done_testing();
}
