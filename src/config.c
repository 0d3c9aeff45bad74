/* config.c - pgtenantd.yaml loaded with libcyaml and validated. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cyaml/cyaml.h>
#include <libpq-fe.h>
#include <yaml.h>

#include "cron.h"
#include "tenant.h"
#include "util.h"
#include "yamlpos.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/pgtenantd"
#endif

#define WORKERS_MIN 1
#define WORKERS_MAX 64
#define BACKUP_KEEP_DEFAULT 7
#define BACKUP_KEEP_MAX 100000
#define METRICS_MAX_TENANTS_DEFAULT 100
#define METRICS_MAX_TENANTS_MAX 100000
#define VALUE_SHOWN_MAX 60
#define CONTROL_MAX_CLIENTS_DEFAULT 64
#define CONTROL_MAX_CLIENTS_MAX 4096

/* The file as libcyaml reads it: every key optional, values unchecked. */
struct raw_schedule {
	char *name;
	char *cron;
	char *job;
	char *catch_up;
};

/* limits: the size limits (bytes). */
struct raw_limits {
	int64_t *args_bytes;
	int64_t *result_bytes;
	int64_t *error_bytes;
};

struct raw_config {
	char *database;
	char *state_dir;
	char *control_socket;
	char *control_socket_mode;
	char **control_allow_users;
	unsigned control_allow_users_count;
	char **control_allow_groups;
	unsigned control_allow_groups_count;
	int64_t *control_max_clients;
	char *control_idle_timeout;
	char *jobs_dir;
	char *backup_dir;
	char *restore_role;
	char *pid_file;
	int64_t *workers;
	char *log_level;
	char *log_format;
	char *listen;
	char *test_hooks;
	char *application_name;
	char *poll_interval;
	char *lease;
	char *heartbeat_interval;
	char *retry_base_delay;
	char *retry_max_delay;
	char *reconnect_max_delay;
	char *shutdown_timeout;
	char *batch_target;
	char *keep_succeeded_jobs;
	char *keep_failed_jobs;
	char *keep_schedule_slots;
	char *keep_removed_backups;
	char *keep_fleets;
	char *prune_interval;
	char **hook_on_failure;
	unsigned hook_on_failure_count;
	char **hook_on_success;
	unsigned hook_on_success_count;
	char *hook_timeout;
	char *fleet_interval;
	int64_t *backup_keep;
	char *backup_max_age;
	char *tenant_snapshot_interval;
	char *keep_tenant_history;
	int64_t *metrics_max_tenants;
	int64_t *backup_min_free_bytes;
	int64_t *database_max_bytes;
	struct raw_schedule *schedules;
	unsigned schedules_count;
	struct raw_limits *limits;
	char **tenant_roles;
	unsigned tenant_roles_count;
	char *backup_digests;
};

#define OPT CYAML_FLAG_OPTIONAL
#define RAW_STRING(key, flags, type, member)                                  \
	CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER | OPT | (flags), type, \
			       member, 0, CYAML_UNLIMITED)
#define RAW_IGNORE(k)                                                      \
	{                                                                  \
		.key = (k), .value = {.type = CYAML_IGNORE, .flags = OPT } \
	}

static const cyaml_schema_field_t schedule_fields[] = {
	RAW_STRING("name", 0, struct raw_schedule, name),
	RAW_STRING("cron", 0, struct raw_schedule, cron),
	RAW_STRING("job", 0, struct raw_schedule, job),
	RAW_STRING("catch_up", 0, struct raw_schedule, catch_up),
	RAW_IGNORE("tenants"),
	RAW_IGNORE("args"),
	RAW_IGNORE("fleet"),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t schedule_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_schedule,
			    schedule_fields),
};

static const cyaml_schema_value_t name_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t limits_fields[] = {
	CYAML_FIELD_INT_PTR("args_bytes", CYAML_FLAG_POINTER | OPT,
			    struct raw_limits, args_bytes),
	CYAML_FIELD_INT_PTR("result_bytes", CYAML_FLAG_POINTER | OPT,
			    struct raw_limits, result_bytes),
	CYAML_FIELD_INT_PTR("error_bytes", CYAML_FLAG_POINTER | OPT,
			    struct raw_limits, error_bytes),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t config_fields[] = {
	RAW_STRING("database", 0, struct raw_config, database),
	RAW_STRING("state_dir", 0, struct raw_config, state_dir),
	RAW_STRING("control_socket", 0, struct raw_config, control_socket),
	RAW_STRING("control_socket_mode", 0, struct raw_config,
		   control_socket_mode),
	CYAML_FIELD_SEQUENCE("control_allow_users",
			     CYAML_FLAG_POINTER_NULL | OPT, struct raw_config,
			     control_allow_users, &name_schema, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("control_allow_groups",
			     CYAML_FLAG_POINTER_NULL | OPT, struct raw_config,
			     control_allow_groups, &name_schema, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_INT_PTR("control_max_clients", CYAML_FLAG_POINTER | OPT,
			    struct raw_config, control_max_clients),
	RAW_STRING("control_idle_timeout", 0, struct raw_config,
		   control_idle_timeout),
	RAW_STRING("jobs_dir", 0, struct raw_config, jobs_dir),
	RAW_STRING("backup_dir", 0, struct raw_config, backup_dir),
	RAW_STRING("restore_role", 0, struct raw_config, restore_role),
	RAW_STRING("pid_file", CYAML_FLAG_POINTER_NULL_STR, struct raw_config,
		   pid_file),
	CYAML_FIELD_INT_PTR("workers", CYAML_FLAG_POINTER | OPT,
			    struct raw_config, workers),
	RAW_STRING("log_level", 0, struct raw_config, log_level),
	RAW_STRING("log_format", 0, struct raw_config, log_format),
	RAW_STRING("listen", 0, struct raw_config, listen),
	RAW_STRING("test_hooks", 0, struct raw_config, test_hooks),
	RAW_STRING("application_name", 0, struct raw_config, application_name),
	RAW_STRING("poll_interval", 0, struct raw_config, poll_interval),
	RAW_STRING("lease", 0, struct raw_config, lease),
	RAW_STRING("heartbeat_interval", 0, struct raw_config,
		   heartbeat_interval),
	RAW_STRING("retry_base_delay", 0, struct raw_config, retry_base_delay),
	RAW_STRING("retry_max_delay", 0, struct raw_config, retry_max_delay),
	RAW_STRING("reconnect_max_delay", 0, struct raw_config,
		   reconnect_max_delay),
	RAW_STRING("shutdown_timeout", 0, struct raw_config, shutdown_timeout),
	RAW_STRING("batch_target", 0, struct raw_config, batch_target),
	RAW_STRING("keep_succeeded_jobs", 0, struct raw_config,
		   keep_succeeded_jobs),
	RAW_STRING("keep_failed_jobs", 0, struct raw_config, keep_failed_jobs),
	RAW_STRING("keep_fleets", 0, struct raw_config, keep_fleets),
	RAW_STRING("keep_schedule_slots", 0, struct raw_config,
		   keep_schedule_slots),
	RAW_STRING("keep_removed_backups", 0, struct raw_config,
		   keep_removed_backups),
	RAW_STRING("prune_interval", 0, struct raw_config, prune_interval),
	CYAML_FIELD_SEQUENCE("hook_on_failure", CYAML_FLAG_POINTER_NULL | OPT,
			     struct raw_config, hook_on_failure, &name_schema,
			     0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("hook_on_success", CYAML_FLAG_POINTER_NULL | OPT,
			     struct raw_config, hook_on_success, &name_schema,
			     0, CYAML_UNLIMITED),
	RAW_STRING("hook_timeout", 0, struct raw_config, hook_timeout),
	RAW_STRING("fleet_interval", 0, struct raw_config, fleet_interval),
	CYAML_FIELD_INT_PTR("backup_keep", CYAML_FLAG_POINTER | OPT,
			    struct raw_config, backup_keep),
	RAW_STRING("backup_max_age", 0, struct raw_config, backup_max_age),
	RAW_STRING("tenant_snapshot_interval", 0, struct raw_config,
		   tenant_snapshot_interval),
	RAW_STRING("keep_tenant_history", 0, struct raw_config,
		   keep_tenant_history),
	CYAML_FIELD_INT_PTR("metrics_max_tenants", CYAML_FLAG_POINTER | OPT,
			    struct raw_config, metrics_max_tenants),
	CYAML_FIELD_INT_PTR("backup_min_free_bytes", CYAML_FLAG_POINTER | OPT,
			    struct raw_config, backup_min_free_bytes),
	CYAML_FIELD_INT_PTR("database_max_bytes", CYAML_FLAG_POINTER | OPT,
			    struct raw_config, database_max_bytes),
	CYAML_FIELD_SEQUENCE("schedules", CYAML_FLAG_POINTER_NULL | OPT,
			     struct raw_config, schedules, &schedule_schema, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("limits", CYAML_FLAG_POINTER_NULL | OPT,
				struct raw_config, limits, limits_fields),
	CYAML_FIELD_SEQUENCE("tenant_roles", CYAML_FLAG_POINTER_NULL | OPT,
			     struct raw_config, tenant_roles, &name_schema, 0,
			     CYAML_UNLIMITED),
	RAW_STRING("backup_digests", 0, struct raw_config, backup_digests),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t config_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config,
			    config_fields),
};

/* Path-like settings: where each lives and what it defaults to. */
static const struct {
	const char *key;
	size_t raw;
	size_t out;
	const char *fallback;
	bool may_be_empty;
} string_keys[] = {
	{ "database", offsetof(struct raw_config, database),
	  offsetof(struct config, database), "", true },
	{ "state_dir", offsetof(struct raw_config, state_dir),
	  offsetof(struct config, state_dir), "/var/lib/pgtenantd", false },
	{ "control_socket", offsetof(struct raw_config, control_socket),
	  offsetof(struct config, control_socket),
	  "/run/pgtenantd/control.sock", false },
	{ "jobs_dir", offsetof(struct raw_config, jobs_dir),
	  offsetof(struct config, jobs_dir), PKGDATADIR "/jobs", false },
	{ "backup_dir", offsetof(struct raw_config, backup_dir),
	  offsetof(struct config, backup_dir), "/var/lib/pgtenantd/backups",
	  false },
	{ "restore_role", offsetof(struct raw_config, restore_role),
	  offsetof(struct config, restore_role), "", true },
	{ "application_name", offsetof(struct raw_config, application_name),
	  offsetof(struct config, application_name), "pgtenantd", false },
};

/* Durations: default and lower bound in milliseconds. heartbeat_interval
 * is handled apart because its default depends on lease. */
static const struct {
	const char *key;
	size_t raw;
	size_t out;
	int64_t fallback;
	int64_t min;
	const char *min_text;
} duration_keys[] = {
	{ "poll_interval", offsetof(struct raw_config, poll_interval),
	  offsetof(struct config, poll_interval_ms), 5000, 10, "10ms" },
	{ "lease", offsetof(struct raw_config, lease),
	  offsetof(struct config, lease_ms), 30000, 1000, "1s" },
	{ "retry_base_delay", offsetof(struct raw_config, retry_base_delay),
	  offsetof(struct config, retry_base_ms), 5000, 1, "1ms" },
	{ "retry_max_delay", offsetof(struct raw_config, retry_max_delay),
	  offsetof(struct config, retry_max_ms), 600000, 1, "1ms" },
	{ "reconnect_max_delay",
	  offsetof(struct raw_config, reconnect_max_delay),
	  offsetof(struct config, reconnect_max_ms), 30000, 1, "1ms" },
	{ "shutdown_timeout", offsetof(struct raw_config, shutdown_timeout),
	  offsetof(struct config, shutdown_timeout_ms), 30000, 0, "0s" },
	{ "batch_target", offsetof(struct raw_config, batch_target),
	  offsetof(struct config, batch_target_ms), 1000, 1, "1ms" },
	{ "backup_max_age", offsetof(struct raw_config, backup_max_age),
	  offsetof(struct config, backup_max_age_ms), 30LL * 86400 * 1000, 0,
	  "0s" },
	{ "control_idle_timeout",
	  offsetof(struct raw_config, control_idle_timeout),
	  offsetof(struct config, control_idle_timeout_ms), 60000, 100,
	  "100ms" },
	/* history kept (prune.c); 0: for ever */
	{ "keep_succeeded_jobs",
	  offsetof(struct raw_config, keep_succeeded_jobs),
	  offsetof(struct config, keep_succeeded_ms), 14LL * 86400 * 1000, 0,
	  "0s" },
	{ "keep_failed_jobs", offsetof(struct raw_config, keep_failed_jobs),
	  offsetof(struct config, keep_failed_ms), 90LL * 86400 * 1000, 0,
	  "0s" },
	{ "keep_schedule_slots",
	  offsetof(struct raw_config, keep_schedule_slots),
	  offsetof(struct config, keep_slots_ms), 30LL * 86400 * 1000, 0,
	  "0s" },
	{ "keep_removed_backups",
	  offsetof(struct raw_config, keep_removed_backups),
	  offsetof(struct config, keep_removed_backups_ms), 90LL * 86400 * 1000,
	  0, "0s" },
	{ "keep_fleets", offsetof(struct raw_config, keep_fleets),
	  offsetof(struct config, keep_fleets_ms), 90LL * 86400 * 1000, 0,
	  "0s" },
	{ "prune_interval", offsetof(struct raw_config, prune_interval),
	  offsetof(struct config, prune_interval_ms), 600000, 100, "100ms" },
	{ "hook_timeout", offsetof(struct raw_config, hook_timeout),
	  offsetof(struct config, hook_timeout_ms), 30000, 100, "100ms" },
	/* tenant history (tenants.c); 0: no snapshots, kept for ever */
	{ "tenant_snapshot_interval",
	  offsetof(struct raw_config, tenant_snapshot_interval),
	  offsetof(struct config, tenant_snapshot_interval_ms), 3600000, 0,
	  "0s" },
	{ "keep_tenant_history",
	  offsetof(struct raw_config, keep_tenant_history),
	  offsetof(struct config, keep_tenant_history_ms), 90LL * 86400 * 1000,
	  0, "0s" },
	{ "fleet_interval", offsetof(struct raw_config, fleet_interval),
	  offsetof(struct config, fleet_interval_ms), 10000, 100, "100ms" },
};

/* One problem found while validating, kept to be sorted by line. */
struct problem {
	unsigned line;
	size_t order;
	char *text;
};

struct problems {
	const char *file;
	const struct yamlpos *pos;
	struct problem *list;
	size_t count;
};

/* libcyaml's log output, collected to become part of the cause. */
struct cyaml_log_buffer {
	char *text;
	size_t len;
};

/* Record "FILE:LINE: key "KEY": message" for the key at path. */
static void __attribute__((format(printf, 3, 4)))
problem_add(struct problems *p, const char *path, const char *fmt, ...)
{
	unsigned line = yamlpos_line(p->pos, path);
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	p->list = xrealloc(p->list, (p->count + 1) * sizeof(*p->list));
	p->list[p->count].line = line;
	p->list[p->count].order = p->count;
	if (line > 0)
		p->list[p->count].text = xasprintf("%s:%u: key \"%s\": %s",
						   p->file, line, path, what);
	else
		p->list[p->count].text =
			xasprintf("%s: key \"%s\": %s", p->file, path, what);
	p->count++;
	free(what);
}

/* Order problems by line, keeping the order of those on one line. */
static int problem_compare(const void *a, const void *b)
{
	const struct problem *pa = a, *pb = b;

	if (pa->line != pb->line)
		return pa->line < pb->line ? -1 : 1;
	return pa->order < pb->order ? -1 : pa->order > pb->order;
}

/* Join all problems, sorted by line, into one newline-separated cause. */
static void problems_finish(struct problems *p, char **cause)
{
	size_t len = 0;
	char *text, *q;

	qsort(p->list, p->count, sizeof(*p->list), problem_compare);
	for (size_t i = 0; i < p->count; i++)
		len += strlen(p->list[i].text) + 1;
	text = q = xmalloc(len + 1);
	for (size_t i = 0; i < p->count; i++) {
		if (i > 0)
			*q++ = '\n';
		q = stpcpy(q, p->list[i].text);
		free(p->list[i].text);
	}
	*q = '\0';
	free(p->list);
	p->list = NULL;
	p->count = 0;
	if (cause != NULL) {
		free(*cause);
		*cause = text;
	} else {
		free(text);
	}
}

/* Quote a value for a message: escaped, and shortened if very long. */
static char *value_display(const char *value)
{
	char *inner = display_escape(value, VALUE_SHOWN_MAX, false);
	char *out = xasprintf("\"%s\"", inner);

	free(inner);
	return out;
}

/* libcyaml log_fn: append each message to a buffer instead of stderr. */
static void cyaml_log_collect(cyaml_log_t level, void *ctx, const char *fmt,
			      va_list args)
{
	struct cyaml_log_buffer *buf = ctx;
	char *piece = xvasprintf(fmt, args);
	size_t n = strlen(piece);

	buf->text = xrealloc(buf->text, buf->len + n + 1);
	memcpy(buf->text + buf->len, piece, n + 1);
	buf->len += n;
	free(piece);
}

/* Join a key path and a key: "schedules[0]" + "cron". */
static char *path_join(const char *parent, const char *key)
{
	if (*parent == '\0')
		return xstrdup(key);
	return xasprintf("%s.%s", parent, key);
}

/* Say what kind of YAML node a libcyaml type or event name stands for. */
static const char *cyaml_kind_name(const char *name, size_t len)
{
	if (len >= 7 && strncmp(name, "MAPPING", 7) == 0)
		return "a mapping";
	if (len >= 8 && strncmp(name, "SEQUENCE", 8) == 0)
		return "a list";
	if (len == 5 && strncmp(name, "ALIAS", 5) == 0)
		return "an alias";
	if (len == 6 && strncmp(name, "STRING", 6) == 0)
		return "a string";
	if ((len == 3 && strncmp(name, "INT", 3) == 0) ||
	    (len == 4 && strncmp(name, "UINT", 4) == 0))
		return "a whole number";
	return "a single value";
}

/* Turn one libcyaml error message into key path and friendly text. */
static char *cyaml_translate(const char *msg, const char *path, char **key)
{
	const char *arg, *got;
	char *shown, *text;

	if ((arg = strchr(msg, ':')) != NULL && arg[1] == ' ')
		arg += 2;
	if (strncmp(msg, "Unexpected key: ", 16) == 0) {
		*key = path_join(path, arg);
		if (strncmp(path, "schedules[", 10) == 0 &&
		    strchr(path, '.') == NULL)
			return xstrdup("unknown key; a schedule has name, "
				       "cron, job, tenants, args and "
				       "catch_up");
		return xstrdup("unknown key");
	}
	if (strncmp(msg, "Mapping field already seen: ", 28) == 0) {
		*key = path_join(path, arg);
		return xstrdup("given more than once");
	}
	if (strncmp(msg, "Missing required mapping field: ", 32) == 0) {
		*key = path_join(path, arg);
		return xstrdup("missing");
	}
	*key = xstrdup(path);
	if (strncmp(msg, "Invalid INT value: ", 19) == 0 ||
	    strncmp(msg, "Invalid UINT value: ", 20) == 0) {
		char *value = xstrdup(arg);
		size_t n = strlen(value);

		if (n >= 2 && value[0] == '\'' && value[n - 1] == '\'') {
			memmove(value, value + 1, n - 2);
			value[n - 2] = '\0';
		}
		shown = value_display(value);
		text = xasprintf("%s is not a whole number", shown);
		free(shown);
		free(value);
		return text;
	}
	if (strncmp(msg, "Expecting ", 10) == 0 &&
	    (got = strstr(msg, ", got event: ")) != NULL) {
		const char *want = msg + 10;
		const char *event = got + 13;

		return xasprintf("expected %s, got %s",
				 cyaml_kind_name(want, (size_t)(got - want)),
				 cyaml_kind_name(event, strlen(event)));
	}
	text = xstrdup(msg);
	text[0] = (char)tolower((unsigned char)text[0]);
	return text;
}

/* Build the cause for a failed cyaml_load_file from what libcyaml logged:
 * its last message, with the key path taken from its backtrace. */
static char *cyaml_cause(const char *file, const struct yamlpos *pos,
			 const char *log, cyaml_err_t err)
{
	char *msg = NULL, *path = xstrdup(""), *key = NULL, *text, *out;
	char **frames = NULL;
	size_t nframes = 0;
	unsigned line = 0, fallback = 0;
	bool in_backtrace = false;
	const char *s = log != NULL ? log : "";

	while (*s != '\0') {
		const char *end = strchrnul(s, '\n');
		char *l = xstrndup(s, (size_t)(end - s));
		char *t = l, *mark;
		unsigned n;

		while (*t == ' ' || *t == '\t')
			t++;
		if (strcmp(t, "Load: Backtrace:") == 0) {
			in_backtrace = true;
		} else if (!in_backtrace && strncmp(t, "Load: ", 6) == 0) {
			free(msg);
			msg = xstrdup(t + 6);
		} else if (in_backtrace && strncmp(t, "in ", 3) == 0) {
			if ((mark = strstr(t, "(line: ")) != NULL &&
			    sscanf(mark, "(line: %u", &n) == 1 && fallback == 0)
				fallback = n;
			frames = xrealloc(frames,
					  (nframes + 1) * sizeof(*frames));
			frames[nframes++] = xstrdup(t + 3);
		}
		free(l);
		s = *end != '\0' ? end + 1 : end;
	}
	for (size_t i = nframes; i-- > 0;) {
		const char *f = frames[i];
		const char *q = strstr(f, "' (line: ");
		char *next = NULL;
		unsigned n;

		if (strncmp(f, "mapping field '", 15) == 0 && q != NULL) {
			char *k = xstrndup(f + 15, (size_t)(q - f - 15));

			next = path_join(path, k);
			free(k);
		} else if (sscanf(f, "sequence entry '%u'", &n) == 1 && n > 0) {
			next = xasprintf("%s[%u]", path, n - 1);
		}
		if (next != NULL) {
			free(path);
			path = next;
		}
		free(frames[i]);
	}
	free(frames);
	if (msg == NULL) {
		out = xasprintf("%s: cannot load: %s", file,
				cyaml_strerror(err));
		free(path);
		return out;
	}
	text = cyaml_translate(msg, path, &key);
	if (*key != '\0')
		line = yamlpos_line(pos, key);
	if (line == 0)
		line = fallback != 0 ? fallback : 1;
	if (*key == '\0')
		out = xasprintf("%s:%u: the file must be a mapping of keys "
				"to values: %s",
				file, line, text);
	else
		out = xasprintf("%s:%u: key \"%s\": %s", file, line, key, text);
	free(text);
	free(key);
	free(path);
	free(msg);
	return out;
}

/* The value of key in a libyaml mapping node, or NULL. */
static yaml_node_t *node_get(yaml_document_t *doc, yaml_node_t *map,
			     const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);

		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, pair->value);
	}
	return NULL;
}

/* Item i of a libyaml sequence node, or NULL. */
static yaml_node_t *node_item(yaml_document_t *doc, yaml_node_t *seq, size_t i)
{
	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	if (i >= (size_t)(seq->data.sequence.items.top -
			  seq->data.sequence.items.start))
		return NULL;
	return yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
}

/* Say what a non-scalar node is, for messages. */
static const char *node_kind(const yaml_node_t *node)
{
	if (node->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (node->type == YAML_SEQUENCE_NODE)
		return "a list";
	return "a single value";
}

/* True if a plain scalar means "no value" in YAML. */
static bool scalar_is_null(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* True if text is a number in JSON's grammar. */
static bool json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (isdigit((unsigned char)*s))
			s++;
	else
		return false;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

/* Append text to a growing string. */
static void buf_add(char **buf, size_t *len, const char *text, size_t n)
{
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, text, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* Append s as a JSON string literal, escaping what JSON requires. */
static void buf_add_json_string(char **buf, size_t *len, const char *s)
{
	char esc[8];

	buf_add(buf, len, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			buf_add(buf, len, esc, 2);
		} else if (c == '\n') {
			buf_add(buf, len, "\\n", 2);
		} else if (c == '\t') {
			buf_add(buf, len, "\\t", 2);
		} else if (c == '\r') {
			buf_add(buf, len, "\\r", 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_add(buf, len, esc, 6);
		} else {
			buf_add(buf, len, (const char *)s, 1);
		}
	}
	buf_add(buf, len, "\"", 1);
}

/* Append a YAML scalar as JSON: plain numbers, booleans and nulls keep
 * their type, everything else (and anything quoted) is a string. */
static void buf_add_json_scalar(char **buf, size_t *len,
				const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (scalar_is_null(node)) {
			buf_add(buf, len, "null", 4);
			return;
		}
		if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 ||
		    strcmp(v, "TRUE") == 0) {
			buf_add(buf, len, "true", 4);
			return;
		}
		if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 ||
		    strcmp(v, "FALSE") == 0) {
			buf_add(buf, len, "false", 5);
			return;
		}
		if (json_number(v)) {
			buf_add(buf, len, v, strlen(v));
			return;
		}
	}
	buf_add_json_string(buf, len, v);
}

/* Turn a schedule's args mapping into JSON object text. */
static void schedule_args(struct problems *p, yaml_document_t *doc,
			  yaml_node_t *node, const char *base,
			  struct schedule_config *sc)
{
	char *path = path_join(base, "args");
	char *json = NULL;
	size_t len = 0;
	bool good = true;

	if (node == NULL ||
	    (node->type == YAML_SCALAR_NODE && scalar_is_null(node))) {
		sc->args_json = xstrdup("{}");
		free(path);
		return;
	}
	if (node->type != YAML_MAPPING_NODE) {
		problem_add(p, path,
			    "expected a mapping of argument names "
			    "to values, got %s",
			    node_kind(node));
		free(path);
		return;
	}
	buf_add(&json, &len, "{", 1);
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(doc, pair->value);
		char *vpath;

		if (k == NULL || v == NULL)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			problem_add(p, path,
				    "argument names must be strings, "
				    "not %s",
				    node_kind(k));
			good = false;
			continue;
		}
		if (v->type != YAML_SCALAR_NODE) {
			vpath = path_join(path,
					  (const char *)k->data.scalar.value);
			problem_add(p, vpath, "expected a single value, got %s",
				    node_kind(v));
			free(vpath);
			good = false;
			continue;
		}
		if (pair != node->data.mapping.pairs.start)
			buf_add(&json, &len, ",", 1);
		buf_add_json_string(&json, &len,
				    (const char *)k->data.scalar.value);
		buf_add(&json, &len, ":", 1);
		buf_add_json_scalar(&json, &len, v);
	}
	buf_add(&json, &len, "}", 1);
	if (good)
		sc->args_json = json;
	else
		free(json);
	free(path);
}

/* Read a schedule's tenants: separate, shared, a list or {query: SQL}. */
static void schedule_tenants(struct problems *p, yaml_document_t *doc,
			     yaml_node_t *node, const char *base,
			     struct schedule_config *sc)
{
	static const char usage[] = "use \"separate\", \"shared\", "
				    "\"inactive\", a list of tenant ids or "
				    "{query: SQL}";
	char *path = path_join(base, "tenants");
	char *cause = NULL, *shown, *item;
	size_t count;

	if (node == NULL ||
	    (node->type == YAML_SCALAR_NODE && scalar_is_null(node))) {
		problem_add(p, path, "missing; %s", usage);
	} else if (node->type == YAML_SCALAR_NODE) {
		const char *v = (const char *)node->data.scalar.value;

		if (strcmp(v, "separate") == 0) {
			sc->tenants = SCHEDULE_TENANTS_SEPARATE;
		} else if (strcmp(v, "shared") == 0) {
			sc->tenants = SCHEDULE_TENANTS_SHARED;
		} else if (strcmp(v, "inactive") == 0) {
			sc->tenants = SCHEDULE_TENANTS_INACTIVE;
		} else {
			shown = value_display(v);
			problem_add(p, path, "%s is not understood; %s", shown,
				    usage);
			free(shown);
		}
	} else if (node->type == YAML_SEQUENCE_NODE) {
		count = (size_t)(node->data.sequence.items.top -
				 node->data.sequence.items.start);
		sc->tenants = SCHEDULE_TENANTS_LIST;
		sc->tenant_list = xcalloc(count + 1, sizeof(char *));
		if (count == 0)
			problem_add(p, path, "the list of tenants is empty");
		for (size_t i = 0; i < count; i++) {
			yaml_node_t *t = node_item(doc, node, i);

			item = xasprintf("%s[%zu]", path, i);
			if (t == NULL || t->type != YAML_SCALAR_NODE) {
				problem_add(p, item,
					    "expected a tenant id, "
					    "got %s",
					    t ? node_kind(t) : "?");
			} else if (!tenant_id_valid(
					   (const char *)t->data.scalar.value,
					   &cause)) {
				problem_add(p, item, "%s", cause);
			} else {
				sc->tenant_list[sc->tenant_list_count++] =
					xstrdup((const char *)
							t->data.scalar.value);
			}
			free(item);
		}
	} else {
		sc->tenants = SCHEDULE_TENANTS_QUERY;
		for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
		     pair < node->data.mapping.pairs.top; pair++) {
			yaml_node_t *k = yaml_document_get_node(doc, pair->key);
			yaml_node_t *v =
				yaml_document_get_node(doc, pair->value);
			const char *name =
				k != NULL && k->type == YAML_SCALAR_NODE ?
					(const char *)k->data.scalar.value :
					"?";

			item = path_join(path, name);
			if (strcmp(name, "query") != 0) {
				problem_add(p, item,
					    "unknown key; tenants "
					    "as a mapping takes only query");
			} else if (v == NULL || v->type != YAML_SCALAR_NODE) {
				problem_add(p, item,
					    "expected SQL text, got "
					    "%s",
					    v ? node_kind(v) : "?");
			} else if (*v->data.scalar.value == '\0') {
				problem_add(p, item, "the query is empty");
			} else {
				free(sc->tenant_query);
				sc->tenant_query = xstrdup(
					(const char *)v->data.scalar.value);
			}
			free(item);
		}
		if (sc->tenant_query == NULL &&
		    node_get(doc, node, "query") == NULL)
			problem_add(p, path,
				    "a mapping of tenants needs a "
				    "query: {query: SQL}");
	}
	free(cause);
	free(path);
}

/* The job kind a fleet schedule runs, and the longest schedule name that
 * leaves room in a fleet name (63 bytes) for "-YYYYMMDDTHHMMZ". */
#define FLEET_JOB "migrate_to_separate_schema"
#define FLEET_SCHEDULE_NAME_MAX (63 - 15)

/* True if text is a whole number from min to max (plain YAML digits). */
static bool fleet_number(const yaml_node_t *v, long long min, long long max)
{
	const char *text = (const char *)v->data.scalar.value;
	char *end;
	long long n;

	if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    !isdigit((unsigned char)*text))
		return false;
	errno = 0;
	n = strtoll(text, &end, 10);
	return errno == 0 && *end == '\0' && n >= min && n <= max;
}

/* Read "H:MM" or "HH:MM" at *s into minutes of the day; false if it is
 * not one. */
static bool clock_time_read(const char **s, unsigned *minutes)
{
	const char *t = *s;
	unsigned h = 0, m;

	if (!isdigit((unsigned char)t[0]))
		return false;
	h = (unsigned)(*t++ - '0');
	if (isdigit((unsigned char)*t))
		h = h * 10 + (unsigned)(*t++ - '0');
	if (*t++ != ':' || !isdigit((unsigned char)t[0]) ||
	    !isdigit((unsigned char)t[1]))
		return false;
	m = (unsigned)(t[0] - '0') * 10 + (unsigned)(t[1] - '0');
	if (h > 23 || m > 59)
		return false;
	*minutes = h * 60 + m;
	*s = t + 2;
	return true;
}

/* True if text is "HH:MM-HH:MM" with two different times: the daily
 * window of pgtenantd.start_fleet (which checks it again). */
bool fleet_window_valid(const char *text)
{
	unsigned from, to;

	while (*text == ' ')
		text++;
	if (!clock_time_read(&text, &from))
		return false;
	while (*text == ' ')
		text++;
	if (*text++ != '-')
		return false;
	while (*text == ' ')
		text++;
	if (!clock_time_read(&text, &to))
		return false;
	while (*text == ' ')
		text++;
	return *text == '\0' && from != to;
}

/* True if a schedule name may start a fleet name: [A-Za-z0-9_.-], short
 * enough for the slot's time after it. */
static bool fleet_schedule_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > FLEET_SCHEDULE_NAME_MAX)
		return false;
	for (; *name != '\0'; name++)
		if (!isalnum((unsigned char)*name) && *name != '_' &&
		    *name != '.' && *name != '-')
			return false;
	return true;
}

/* Read a schedule's fleet: mapping (its keys are start_fleet's settings)
 * into sc->fleet_json, checking every key and value here so that a typo
 * is a config error, not a slot that fails at night. */
static void schedule_fleet(struct problems *p, yaml_document_t *doc,
			   yaml_node_t *node, yaml_node_t *tenants,
			   const char *base, struct schedule_config *sc)
{
	static const char *const keys[] = { "max_parallel", "window",
					    "time_zone",    "on_failure",
					    "min_rows",	    "max_rows",
					    "min_bytes",    "max_bytes" };
	char *path = path_join(base, "fleet");
	char *json = NULL, *item, *shown;
	const char *which;
	size_t len = 0;
	long long bound[4] = { -1, -1, -1, -1 }; /* min/max rows, bytes */
	bool good = true;

	if (node == NULL) {
		free(path);
		return;
	}
	if (node->type != YAML_MAPPING_NODE) {
		problem_add(
			p, path,
			"expected a mapping of fleet settings (max_parallel, window, time_zone, on_failure, min_rows, max_rows, min_bytes, max_bytes), got %s",
			node->type == YAML_SCALAR_NODE && scalar_is_null(node) ?
				"nothing" :
				node_kind(node));
		free(path);
		return;
	}
	if (sc->job != NULL && strcmp(sc->job, FLEET_JOB) != 0) {
		shown = value_display(sc->job);
		problem_add(
			p, path,
			"only a schedule of job migrate_to_separate_schema may have a fleet, not one of %s",
			shown);
		free(shown);
		good = false;
	}
	/* separate and inactive tenants have their own schema already */
	which = tenants != NULL && tenants->type == YAML_SCALAR_NODE ?
			(const char *)tenants->data.scalar.value :
			"";
	if (strcmp(which, "separate") == 0 || strcmp(which, "inactive") == 0) {
		problem_add(
			p, path,
			"a fleet moves shared tenants; tenants: %s has none to move",
			which);
		good = false;
	}
	if (sc->name != NULL && !fleet_schedule_name_valid(sc->name)) {
		shown = value_display(sc->name);
		problem_add(
			p, path,
			"the schedule's name %s cannot name its fleets: use 1 to %d of A-Z, a-z, 0-9, '_', '.' and '-'",
			shown, FLEET_SCHEDULE_NAME_MAX);
		free(shown);
		good = false;
	}
	buf_add(&json, &len, "{", 1);
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(doc, pair->value);
		const char *name = k != NULL && k->type == YAML_SCALAR_NODE ?
					   (const char *)k->data.scalar.value :
					   "?";
		const char *text;
		size_t ki;

		item = path_join(path, name);
		for (ki = 0; ki < sizeof(keys) / sizeof(keys[0]); ki++)
			if (strcmp(name, keys[ki]) == 0)
				break;
		if (ki == sizeof(keys) / sizeof(keys[0])) {
			problem_add(
				p, item,
				"unknown key; a fleet takes max_parallel, window, time_zone, on_failure, min_rows, max_rows, min_bytes and max_bytes");
			good = false;
			free(item);
			continue;
		}
		if (v == NULL || v->type != YAML_SCALAR_NODE ||
		    scalar_is_null(v)) {
			problem_add(p, item, "expected a single value, got %s",
				    v == NULL || v->type == YAML_SCALAR_NODE ?
					    "nothing" :
					    node_kind(v));
			good = false;
			free(item);
			continue;
		}
		text = (const char *)v->data.scalar.value;
		shown = value_display(text);
		if (ki == 0 && !fleet_number(v, 1, 1000)) {
			problem_add(p, item,
				    "%s is not a whole number from 1 to 1000",
				    shown);
			good = false;
		} else if (ki == 1 && !fleet_window_valid(text)) {
			problem_add(
				p, item,
				"%s is not HH:MM-HH:MM with two different times, such as \"22:00-06:00\"",
				shown);
			good = false;
		} else if (ki == 2 && (*text == '\0' || strlen(text) > 64)) {
			problem_add(
				p, item,
				"%s is not a time zone name such as \"Europe/Berlin\" or \"UTC\"",
				shown);
			good = false;
		} else if (ki == 3 && strcmp(text, "pause") != 0 &&
			   strcmp(text, "continue") != 0) {
			problem_add(
				p, item,
				"%s is not understood; use \"pause\" (stop at the first failure) or \"continue\"",
				shown);
			good = false;
		} else if (ki >= 4 && !fleet_number(v, 0, INT64_MAX)) {
			problem_add(p, item, "%s is not a whole number of %s",
				    shown, ki < 6 ? "rows" : "bytes");
			good = false;
		} else {
			if (ki >= 4)
				bound[ki - 4] = strtoll(text, NULL, 10);
			if (len > 1)
				buf_add(&json, &len, ",", 1);
			buf_add_json_string(&json, &len, name);
			buf_add(&json, &len, ":", 1);
			if (ki == 0 || ki >= 4)
				buf_add(&json, &len, text, strlen(text));
			else
				buf_add_json_string(&json, &len, text);
		}
		free(shown);
		free(item);
	}
	buf_add(&json, &len, "}", 1);
	for (int b = 0; b < 4; b += 2) {
		if (bound[b] < 0 || bound[b + 1] < 0 ||
		    bound[b] <= bound[b + 1])
			continue;
		item = path_join(path, b == 0 ? "min_rows" : "min_bytes");
		problem_add(p, item, "%lld is over %s, %lld", bound[b],
			    b == 0 ? "max_rows" : "max_bytes", bound[b + 1]);
		free(item);
		good = false;
	}
	if (good)
		sc->fleet_json = json;
	else
		free(json);
	free(path);
}

/* Count whitespace-separated fields, skipping a leading TZ= setting. */
static unsigned cron_fields(const char *cron)
{
	unsigned n = 0;
	const char *s = cron;
	bool first = true;

	while (*s != '\0') {
		const char *start;

		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		start = s;
		while (*s != '\0' && !isspace((unsigned char)*s))
			s++;
		if (first && (strncmp(start, "TZ=", 3) == 0 ||
			      strncmp(start, "CRON_TZ=", 8) == 0)) {
			first = false;
			continue;
		}
		first = false;
		n++;
	}
	return n;
}

/* True if a job kind is [a-z0-9_]+. */
static bool job_kind_valid(const char *job)
{
	if (*job == '\0')
		return false;
	for (; *job != '\0'; job++) {
		if (!((*job >= 'a' && *job <= 'z') ||
		      (*job >= '0' && *job <= '9') || *job == '_'))
			return false;
	}
	return true;
}

/* Check one schedule entry and fill sc. */
static void schedule_validate(struct problems *p, yaml_document_t *doc,
			      yaml_node_t *entry, const struct raw_schedule *rs,
			      unsigned index, struct config *config)
{
	struct schedule_config *sc = &config->schedules[index];
	char *base = xasprintf("schedules[%u]", index);
	char *path, *shown, *cause = NULL;
	unsigned fields;
	struct cron cron;

	sc->line = yamlpos_line(p->pos, base);
	path = path_join(base, "name");
	if (rs->name == NULL || *rs->name == '\0') {
		problem_add(p, path, "missing; every schedule needs a name");
	} else {
		sc->name = xstrdup(rs->name);
		for (unsigned i = 0; i < index; i++) {
			if (config->schedules[i].name == NULL ||
			    strcmp(config->schedules[i].name, sc->name) != 0)
				continue;
			shown = value_display(sc->name);
			problem_add(p, path,
				    "%s is already the name of the "
				    "schedule at line %u",
				    shown, config->schedules[i].line);
			free(shown);
			break;
		}
	}
	free(path);

	path = path_join(base, "cron");
	if (rs->cron == NULL || *rs->cron == '\0') {
		problem_add(p, path,
			    "missing; give five fields such as "
			    "\"0 3 * * *\"");
	} else if ((fields = cron_fields(rs->cron)) != 5) {
		shown = value_display(rs->cron);
		problem_add(p, path,
			    "%s has %u field%s; a cron expression "
			    "has five: minute hour day-of-month month "
			    "day-of-week",
			    shown, fields, fields == 1 ? "" : "s");
		free(shown);
	} else if (!cron_parse(rs->cron, &cron, &cause)) {
		problem_add(p, path, "%s", cause);
		free(cause);
	} else {
		sc->cron = xstrdup(rs->cron);
	}
	free(path);

	path = path_join(base, "catch_up");
	sc->catch_up = SCHEDULE_CATCH_UP_LATEST;
	if (rs->catch_up == NULL || strcmp(rs->catch_up, "latest") == 0) {
		sc->catch_up = SCHEDULE_CATCH_UP_LATEST;
	} else if (strcmp(rs->catch_up, "none") == 0) {
		sc->catch_up = SCHEDULE_CATCH_UP_NONE;
	} else {
		shown = value_display(rs->catch_up);
		problem_add(p, path,
			    "%s is not understood; use \"latest\" (one run "
			    "for the newest slot missed while no daemon ran) "
			    "or \"none\"",
			    shown);
		free(shown);
	}
	free(path);

	path = path_join(base, "job");
	if (rs->job == NULL || *rs->job == '\0') {
		problem_add(p, path, "missing; name a job kind such as vacuum");
	} else if (!job_kind_valid(rs->job)) {
		shown = value_display(rs->job);
		problem_add(p, path,
			    "%s is not a job kind: use lowercase "
			    "letters, digits and '_'",
			    shown);
		free(shown);
	} else {
		sc->job = xstrdup(rs->job);
	}
	free(path);

	schedule_tenants(p, doc, node_get(doc, entry, "tenants"), base, sc);
	schedule_args(p, doc, node_get(doc, entry, "args"), base, sc);
	schedule_fleet(p, doc, node_get(doc, entry, "fleet"),
		       node_get(doc, entry, "tenants"), base, sc);
	free(base);
}

/* Parse control_socket_mode: octal, at most 0777, owner read and write. */
static void validate_mode(struct problems *p, const char *text,
			  struct config *config)
{
	const char *key = "control_socket_mode";
	unsigned long mode = 0;
	size_t len;
	char *shown;

	config->control_socket_mode = 0600;
	if (text == NULL)
		return;
	len = strlen(text);
	if (len == 0 || len > 4 || strspn(text, "01234567") != len) {
		shown = value_display(text);
		problem_add(p, key,
			    "%s is not an octal mode such as \"0600\" "
			    "or \"0660\"",
			    shown);
		free(shown);
		return;
	}
	mode = strtoul(text, NULL, 8);
	if (mode > 0777) {
		problem_add(p, key, "%s has bits above 0777", text);
		return;
	}
	if ((mode & 0600) != 0600) {
		problem_add(p, key,
			    "%s does not let the owner read and write "
			    "the socket; it needs at least 0600",
			    text);
		return;
	}
	if ((mode & 0007) != 0) {
		problem_add(
			p, key,
			"\"%s\" lets every user of the host connect (\"other\" bits %03lo); use \"0600\" or \"0660\" and name who else may connect in control_allow_users or control_allow_groups",
			text, mode & 0007);
		return;
	}
	config->control_socket_mode = (unsigned)mode;
}

/* True if text is a decimal id that fits in an unsigned int below the
 * "no id" value (unsigned)-1. */
static bool id_parse(const char *text, unsigned *id)
{
	unsigned long long v;
	char *end;

	if (*text < '0' || *text > '9')
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v >= (unsigned)-1)
		return false;
	*id = (unsigned)v;
	return true;
}

/* The uid of a user of this host (false if there is none). */
static bool user_id(const char *name, unsigned *id)
{
	const struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		return false;
	*id = pw->pw_uid;
	return true;
}

/* The gid of a group of this host (false if there is none). */
static bool group_id(const char *name, unsigned *id)
{
	const struct group *gr = getgrnam(name);

	if (gr == NULL)
		return false;
	*id = gr->gr_gid;
	return true;
}

/* The ids of the N names of the list KEY (each a number or a WHAT of this
 * host, looked up with LOOKUP), in an array of N + 1 with *COUNT set; a
 * name that is neither is a problem named KEY[i]. */
static unsigned *resolve_ids(struct problems *p, const char *key,
			     const char *what, char **names, unsigned n,
			     bool (*lookup)(const char *, unsigned *),
			     unsigned *count)
{
	unsigned *ids = xcalloc(n + 1, sizeof(*ids));

	*count = 0;
	for (unsigned i = 0; i < n; i++) {
		const char *name = names[i];
		char *item, *shown;

		if (id_parse(name, &ids[*count]) ||
		    (*name != '\0' && lookup(name, &ids[*count]))) {
			(*count)++;
			continue;
		}
		item = xasprintf("%s[%u]", key, i);
		shown = value_display(name);
		problem_add(p, item,
			    "%s is neither a %s of this host nor a %cid", shown,
			    what, what[0]);
		free(shown);
		free(item);
	}
	return ids;
}

/* Resolve control_allow_users (names or uids) and control_allow_groups
 * (names or gids). */
static void validate_control_access(struct problems *p,
				    const struct raw_config *raw,
				    struct config *config)
{
	config->control_allow_uids = resolve_ids(
		p, "control_allow_users", "user", raw->control_allow_users,
		raw->control_allow_users_count, user_id,
		&config->control_allow_uid_count);
	config->control_allow_gids = resolve_ids(
		p, "control_allow_groups", "group", raw->control_allow_groups,
		raw->control_allow_groups_count, group_id,
		&config->control_allow_gid_count);
	config->control_max_clients = CONTROL_MAX_CLIENTS_DEFAULT;
	if (raw->control_max_clients != NULL) {
		if (*raw->control_max_clients < 1 ||
		    *raw->control_max_clients > CONTROL_MAX_CLIENTS_MAX)
			problem_add(p, "control_max_clients",
				    "%lld is out of range; use 1 to %d",
				    (long long)*raw->control_max_clients,
				    CONTROL_MAX_CLIENTS_MAX);
		else
			config->control_max_clients =
				(unsigned)*raw->control_max_clients;
	}
}

/* Parse a YAML-style boolean written as text. */
static bool bool_parse(const char *text, bool *value)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*value = true;
			return true;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*value = false;
			return true;
		}
	}
	return false;
}

/* Parse a duration setting; false (with a problem) if it is bad. */
static bool validate_duration(struct problems *p, const char *key,
			      const char *text, int64_t fallback, int64_t min,
			      const char *min_text, int64_t *out)
{
	char *shown;
	int64_t ms;

	*out = fallback;
	if (text == NULL)
		return true;
	if (!duration_parse(text, &ms)) {
		shown = value_display(text);
		problem_add(p, key,
			    "%s is not a duration; write e.g. "
			    "\"250ms\", \"5s\", \"10m\", \"1h\" or \"1d\"",
			    shown);
		free(shown);
		return false;
	}
	if (ms < min) {
		shown = value_display(text);
		problem_add(p, key, "%s is too short; the minimum is %s", shown,
			    min_text);
		free(shown);
		return false;
	}
	*out = ms;
	return true;
}

/* Check the top-level settings and fill config with them or defaults. */
/* One optional whole number of raw, within min..max, else its default. */
static int64_t validate_count(struct problems *p, const char *key,
			      const int64_t *raw, int64_t fallback, int64_t min,
			      int64_t max)
{
	if (raw == NULL)
		return fallback;
	if (*raw < min || *raw > max) {
		problem_add(p, key, "%lld is out of range; use %lld to %lld",
			    (long long)*raw, (long long)min, (long long)max);
		return fallback;
	}
	return *raw;
}

/* The tenant history's numbers: the metrics cap and the space checks. */
static void validate_tenant_history(struct problems *p,
				    const struct raw_config *raw,
				    struct config *config)
{
	config->metrics_max_tenants = (unsigned)validate_count(
		p, "metrics_max_tenants", raw->metrics_max_tenants,
		METRICS_MAX_TENANTS_DEFAULT, 0, METRICS_MAX_TENANTS_MAX);
	config->backup_min_free_bytes =
		validate_count(p, "backup_min_free_bytes",
			       raw->backup_min_free_bytes, 0, 0, INT64_MAX);
	config->database_max_bytes = validate_count(p, "database_max_bytes",
						    raw->database_max_bytes, 0,
						    0, INT64_MAX);
}

/* A hook: a program and its arguments, run without a shell; *out gets a
 * NULL-terminated copy, NULL when the key is absent or the list empty. */
static void validate_hook(struct problems *p, const char *key,
			  char *const *argv, unsigned count, char ***out)
{
	*out = NULL;
	if (argv == NULL || count == 0)
		return;
	if (argv[0][0] == '\0') {
		problem_add(
			p, key,
			"names no program; write a list such as [\"/usr/local/bin/page\", \"--team\", \"db\"]");
		return;
	}
	*out = xcalloc(count + 1, sizeof(**out));
	for (unsigned i = 0; i < count; i++)
		(*out)[i] = xstrdup(argv[i]);
}

/* tenant_roles: PostgreSQL role names (1 to 63 bytes, each once); *out
 * gets a NULL-terminated copy, NULL when the key is absent or empty.
 * Whether each role exists is the database's to say, when a job runs. */
static void validate_tenant_roles(struct problems *p, char *const *names,
				  unsigned count, char ***out)
{
	*out = NULL;
	for (unsigned i = 0; i < count; i++) {
		size_t len = strlen(names[i]);
		char *shown = value_display(names[i]);

		if (len == 0 || len > 63)
			problem_add(
				p, "tenant_roles",
				"%s is not a role name; a role name has 1 to 63 bytes",
				shown);
		for (unsigned k = 0; k < i; k++)
			if (strcmp(names[k], names[i]) == 0) {
				problem_add(p, "tenant_roles",
					    "names role %s twice", shown);
				break;
			}
		free(shown);
	}
	if (count == 0)
		return;
	*out = xcalloc(count + 1, sizeof(**out));
	for (unsigned i = 0; i < count; i++)
		(*out)[i] = xstrdup(names[i]);
}

static void validate_settings(struct problems *p, const struct raw_config *raw,
			      struct config *config)
{
	char *shown;

	for (size_t i = 0; i < ARRAY_SIZE(string_keys); i++) {
		const char *v = *(char *const *)((const char *)raw +
						 string_keys[i].raw);
		char **out = (char **)((char *)config + string_keys[i].out);

		if (v != NULL && *v == '\0' && !string_keys[i].may_be_empty)
			problem_add(p, string_keys[i].key,
				    "must not be "
				    "empty");
		*out = xstrdup(v != NULL ? v : string_keys[i].fallback);
	}
	if (strlen(config->control_socket) >=
	    sizeof(((struct sockaddr_un *)NULL)->sun_path))
		problem_add(p, "control_socket",
			    "the path is %zu bytes; a "
			    "Unix socket path must be shorter than %zu",
			    strlen(config->control_socket),
			    sizeof(((struct sockaddr_un *)NULL)->sun_path));
	if (raw->pid_file != NULL)
		config->pid_file = xstrdup(raw->pid_file);
	validate_mode(p, raw->control_socket_mode, config);
	validate_control_access(p, raw, config);

	config->workers = 2;
	if (raw->workers != NULL) {
		if (*raw->workers < WORKERS_MIN || *raw->workers > WORKERS_MAX)
			problem_add(p, "workers",
				    "%lld is out of range; "
				    "use %d to %d",
				    (long long)*raw->workers, WORKERS_MIN,
				    WORKERS_MAX);
		else
			config->workers = (unsigned)*raw->workers;
	}

	config->log_level = LOG_LEVEL_INFO;
	if (raw->log_level != NULL &&
	    !log_level_parse(raw->log_level, &config->log_level)) {
		shown = value_display(raw->log_level);
		problem_add(p, "log_level",
			    "%s is not a level; use debug, "
			    "info, warning or error",
			    shown);
		free(shown);
	}

	config->log_format = LOG_FORMAT_TEXT;
	if (raw->log_format != NULL &&
	    !log_format_parse(raw->log_format, &config->log_format)) {
		shown = value_display(raw->log_format);
		problem_add(p, "log_format",
			    "%s is not a format; use text or json", shown);
		free(shown);
	}

	config->listen = true;
	if (raw->listen != NULL && !bool_parse(raw->listen, &config->listen)) {
		shown = value_display(raw->listen);
		problem_add(p, "listen", "%s is not true or false", shown);
		free(shown);
	}

	config->test_hooks = false;
	if (raw->test_hooks != NULL &&
	    !bool_parse(raw->test_hooks, &config->test_hooks)) {
		shown = value_display(raw->test_hooks);
		problem_add(p, "test_hooks", "%s is not true or false", shown);
		free(shown);
	}

	for (size_t i = 0; i < ARRAY_SIZE(duration_keys); i++) {
		const char *v = *(char *const *)((const char *)raw +
						 duration_keys[i].raw);
		int64_t *out =
			(int64_t *)((char *)config + duration_keys[i].out);

		validate_duration(p, duration_keys[i].key, v,
				  duration_keys[i].fallback,
				  duration_keys[i].min,
				  duration_keys[i].min_text, out);
	}
	config->backup_keep = BACKUP_KEEP_DEFAULT;
	if (raw->backup_keep != NULL) {
		if (*raw->backup_keep < 0 ||
		    *raw->backup_keep > BACKUP_KEEP_MAX)
			problem_add(p, "backup_keep",
				    "%lld is out of range; use 0 (no limit by "
				    "count) to %d",
				    (long long)*raw->backup_keep,
				    BACKUP_KEEP_MAX);
		else
			config->backup_keep = (unsigned)*raw->backup_keep;
	}
	validate_tenant_history(p, raw, config);
	config->heartbeat_ms = config->lease_ms / 3;
	if (validate_duration(p, "heartbeat_interval", raw->heartbeat_interval,
			      config->lease_ms / 3, 1, "1ms",
			      &config->heartbeat_ms) &&
	    config->heartbeat_ms >= config->lease_ms)
		problem_add(p, "heartbeat_interval",
			    "heartbeat_interval "
			    "(%lldms) must be shorter than lease (%lldms)",
			    (long long)config->heartbeat_ms,
			    (long long)config->lease_ms);
	if (config->retry_max_ms < config->retry_base_ms)
		problem_add(p,
			    raw->retry_max_delay != NULL ? "retry_max_delay" :
							   "retry_base_delay",
			    "retry_max_delay (%lldms) must not be shorter "
			    "than retry_base_delay (%lldms)",
			    (long long)config->retry_max_ms,
			    (long long)config->retry_base_ms);
}

/* limits: each size in bytes, within its range, else its default. */
static void validate_limits(struct problems *p, const struct raw_limits *raw,
			    struct config *config)
{
	static const struct {
		const char *key;
		size_t raw;
		size_t out;
		int64_t fallback;
		int64_t min;
		int64_t max;
	} keys[] = {
		{ "limits.args_bytes", offsetof(struct raw_limits, args_bytes),
		  offsetof(struct config, args_bytes), 65536, 256, 67108864 },
		{ "limits.result_bytes",
		  offsetof(struct raw_limits, result_bytes),
		  offsetof(struct config, result_bytes), 1048576, 256,
		  67108864 },
		{ "limits.error_bytes",
		  offsetof(struct raw_limits, error_bytes),
		  offsetof(struct config, error_bytes), 65536, 256, 16777216 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const int64_t *v =
			raw == NULL ? NULL :
				      *(int64_t *const *)((const char *)raw +
							  keys[i].raw);
		int64_t *out = (int64_t *)((char *)config + keys[i].out);

		*out = keys[i].fallback;
		if (v == NULL)
			continue;
		if (*v < keys[i].min || *v > keys[i].max)
			problem_add(
				p, keys[i].key,
				"%lld is out of range; use %lld to %lld bytes",
				(long long)*v, (long long)keys[i].min,
				(long long)keys[i].max);
		else
			*out = *v;
	}
}

/* Free a schedule entry's contents. */
static void schedule_clear(struct schedule_config *sc)
{
	free(sc->name);
	free(sc->cron);
	free(sc->job);
	for (unsigned i = 0; i < sc->tenant_list_count; i++)
		free(sc->tenant_list[i]);
	free(sc->tenant_list);
	free(sc->tenant_query);
	free(sc->args_json);
	free(sc->fleet_json);
}

/* Load the file again as a libyaml document, for tenants and args. */
static bool document_load(const char *path, yaml_document_t *doc, char **cause)
{
	yaml_parser_t parser;
	FILE *f;
	bool good;

	f = fopen(path, "rb");
	if (f == NULL)
		return set_cause(cause, "%s: cannot open: %m", path);
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return set_cause(cause, "%s: cannot start the YAML parser",
				 path);
	}
	yaml_parser_set_input_file(&parser, f);
	good = yaml_parser_load(&parser, doc) != 0;
	if (!good)
		set_cause(cause, "%s:%zu: %s", path,
			  parser.problem_mark.line + 1,
			  parser.problem ? parser.problem : "cannot parse");
	yaml_parser_delete(&parser);
	fclose(f);
	return good;
}

/* True if a libpq conninfo string or URI holds a password. */
static bool conninfo_has_password(const char *database)
{
	PQconninfoOption *options;
	const char *at, *colon, *scheme;
	bool found = false;

	options = PQconninfoParse(database, NULL);
	if (options != NULL) {
		for (PQconninfoOption *o = options; o->keyword != NULL; o++) {
			if (strcmp(o->keyword, "password") == 0 &&
			    o->val != NULL && *o->val != '\0')
				found = true;
		}
		PQconninfoFree(options);
		return found;
	}
	/* libpq cannot parse it (the daemon will say so): look for the
	 * forms a password takes */
	if (strcasestr(database, "password") != NULL)
		return true;
	scheme = strstr(database, "://");
	if (scheme == NULL)
		return false;
	at = strchr(scheme + 3, '@');
	colon = strchr(scheme + 3, ':');
	return at != NULL && colon != NULL && colon < at;
}

char *config_secret_warning(const char *path, unsigned mode,
			    const char *database)
{
	const char *who;

	if ((mode & 0044) == 0 || database == NULL ||
	    !conninfo_has_password(database))
		return NULL;
	who = (mode & 0004) != 0 ?
		      ((mode & 0040) != 0 ? "group and others" : "others") :
		      "its group";
	return xasprintf(
		"%s holds the database password and is readable by %s (mode %04o): run chmod 600 %s (the daemon's user must own it), or keep the password in a .pgpass file (passfile=)",
		path, who, mode & 07777, path);
}

/* Warn if the file holds a password that others may read. */
static void secret_check(const struct config *config)
{
	struct stat st;
	char *warning;

	if (stat(config->path, &st) != 0)
		return;
	warning = config_secret_warning(config->path, (unsigned)st.st_mode,
					config->database);
	if (warning != NULL)
		log_warning("%s", warning);
	free(warning);
}

/* Load path with libcyaml, then validate every setting. */
struct config *config_load(const char *path, char **cause)
{
	static const struct raw_config empty;
	struct cyaml_log_buffer log = { 0 };
	const cyaml_config_t cyaml = {
		.log_fn = cyaml_log_collect,
		.log_ctx = &log,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_WARNING,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct raw_config *raw = NULL;
	const struct raw_config *r;
	struct problems p = { .file = path };
	struct yamlpos *pos;
	struct config *config;
	yaml_document_t doc;
	yaml_node_t *root, *schedules;
	cyaml_err_t err;

	pos = yamlpos_load(path, cause);
	if (pos == NULL)
		return NULL;
	p.pos = pos;
	err = cyaml_load_file(path, &cyaml, &config_schema,
			      (cyaml_data_t **)&raw, NULL);
	if (err != CYAML_OK) {
		if (cause != NULL) {
			free(*cause);
			*cause = cyaml_cause(path, pos, log.text, err);
		}
		free(log.text);
		yamlpos_free(pos);
		return NULL;
	}
	free(log.text);
	if (!document_load(path, &doc, cause)) {
		cyaml_free(&cyaml, &config_schema, raw, 0);
		yamlpos_free(pos);
		return NULL;
	}
	r = raw != NULL ? raw : &empty;

	config = xcalloc(1, sizeof(*config));
	config->path = xstrdup(path);
	validate_settings(&p, r, config);
	validate_hook(&p, "hook_on_failure", r->hook_on_failure,
		      r->hook_on_failure_count, &config->hook_on_failure);
	validate_hook(&p, "hook_on_success", r->hook_on_success,
		      r->hook_on_success_count, &config->hook_on_success);
	validate_limits(&p, r->limits, config);
	validate_tenant_roles(&p, r->tenant_roles, r->tenant_roles_count,
			      &config->tenant_roles);
	config->backup_digests = true;
	if (r->backup_digests != NULL &&
	    !bool_parse(r->backup_digests, &config->backup_digests)) {
		char *shown = value_display(r->backup_digests);

		problem_add(&p, "backup_digests", "%s is not true or false",
			    shown);
		free(shown);
	}
	root = yaml_document_get_root_node(&doc);
	schedules = node_get(&doc, root, "schedules");
	config->schedule_count = r->schedules_count;
	config->schedules =
		xcalloc(r->schedules_count + 1, sizeof(*config->schedules));
	for (unsigned i = 0; i < r->schedules_count; i++)
		schedule_validate(&p, &doc, node_item(&doc, schedules, i),
				  &r->schedules[i], i, config);

	yaml_document_delete(&doc);
	cyaml_free(&cyaml, &config_schema, raw, 0);
	yamlpos_free(pos);
	if (p.count > 0) {
		problems_finish(&p, cause);
		config_free(config);
		return NULL;
	}
	secret_check(config);
	return config;
}

void config_free(struct config *config)
{
	if (config == NULL)
		return;
	free(config->path);
	free(config->database);
	free(config->state_dir);
	free(config->control_socket);
	free(config->control_allow_uids);
	free(config->control_allow_gids);
	free(config->jobs_dir);
	free(config->backup_dir);
	free(config->restore_role);
	free(config->pid_file);
	free(config->application_name);
	strv_free(config->hook_on_failure);
	strv_free(config->hook_on_success);
	strv_free(config->tenant_roles);
	for (unsigned i = 0; i < config->schedule_count; i++)
		schedule_clear(&config->schedules[i]);
	free(config->schedules);
	free(config);
}
