/* jobdef.c - job kinds: one YAML file per kind, loaded with libcyaml into
 * raw strings, then validated into struct jobdef with every problem named
 * by file, line and step. */
#include "jobdef.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "yamlpos.h"

/* clang-format off */
const char *const jobdef_builtin_vars[] = {
	"tenant_id", "schema", "job_id", "kind", "attempt", "args",
	"backup_dir", "state_dir", "tenant_roles", NULL,
};

const char *const jobdef_batch_vars[] = { "last_key", "batch_size", NULL };

const char *const jobdef_backup_vars[] = {
	"backup_file", "backup_id", "backup_sha256", "backup_size", NULL,
};

const struct jobdef_reserved_arg jobdef_reserved_args[] = {
	{ "test_gate", "Reserved for tests, refused unless the daemon's configuration has test_hooks: true: in every step and batch, before it commits, the job waits for a shared advisory lock on hashtext(test_gate), which a test holds to stop it there" },
	{ "test_sleep", "Reserved for tests, refused unless the daemon's configuration has test_hooks: true: milliseconds every step and batch sleeps before it commits" },
	{ NULL, NULL },
};
/* clang-format on */

#define JOBDEF_BATCH_SIZE 1000
#define JOBDEF_MIN_BATCH_SIZE 1
#define JOBDEF_MAX_BATCH_SIZE 100000

/* A step as written in the file; every scalar is kept as text so that the
 * validation pass can say exactly what is wrong with it. */
struct raw_verify {
	char *expected;
	char *actual;
};

struct raw_step {
	char *name;
	char *when;
	char *sql;
	char *transaction;
	char *for_each;
	char **for_each_vars;
	unsigned for_each_vars_count;
	char **set;
	unsigned set_count;
	char *result;
	char *batch;
	char *start_key;
	char *batch_size;
	char *min_batch_size;
	char *max_batch_size;
	char *target_time;
	char *total;
	struct raw_verify *verify;
	char **exec;
	unsigned exec_count;
	char *timeout;
	char *retry;
	char *destructive;
	char **requires;
	unsigned requires_count;
	char *collect;
	char *backup;
	char *backup_check;
	char *restore;
	char *restore_drill;
};

struct raw_arg {
	char *name;
	char *default_value;
	char *description;
};

struct raw_file {
	char *description;
	char *enqueue_role;
	struct raw_arg *args;
	unsigned args_count;
	struct raw_step *steps;
	unsigned steps_count;
};

/* clang-format off */
#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define RAW_STRING(key, type, member) \
	CYAML_FIELD_STRING_PTR(key, OPT, type, member, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t raw_string_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t raw_verify_fields[] = {
	RAW_STRING("expected", struct raw_verify, expected),
	RAW_STRING("actual", struct raw_verify, actual),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t raw_step_fields[] = {
	RAW_STRING("name", struct raw_step, name),
	RAW_STRING("when", struct raw_step, when),
	RAW_STRING("sql", struct raw_step, sql),
	RAW_STRING("transaction", struct raw_step, transaction),
	RAW_STRING("for_each", struct raw_step, for_each),
	CYAML_FIELD_SEQUENCE("for_each_vars", OPT, struct raw_step,
			     for_each_vars, &raw_string_entry, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("set", OPT, struct raw_step, set,
			     &raw_string_entry, 0, CYAML_UNLIMITED),
	RAW_STRING("result", struct raw_step, result),
	RAW_STRING("batch", struct raw_step, batch),
	RAW_STRING("start_key", struct raw_step, start_key),
	RAW_STRING("batch_size", struct raw_step, batch_size),
	RAW_STRING("min_batch_size", struct raw_step, min_batch_size),
	RAW_STRING("max_batch_size", struct raw_step, max_batch_size),
	RAW_STRING("target_time", struct raw_step, target_time),
	RAW_STRING("total", struct raw_step, total),
	CYAML_FIELD_MAPPING_PTR("verify", OPT, struct raw_step, verify,
				raw_verify_fields),
	CYAML_FIELD_SEQUENCE("exec", OPT, struct raw_step, exec,
			     &raw_string_entry, 0, CYAML_UNLIMITED),
	RAW_STRING("timeout", struct raw_step, timeout),
	RAW_STRING("retry", struct raw_step, retry),
	RAW_STRING("destructive", struct raw_step, destructive),
	CYAML_FIELD_SEQUENCE("requires", OPT, struct raw_step, requires,
			     &raw_string_entry, 0, CYAML_UNLIMITED),
	RAW_STRING("collect", struct raw_step, collect),
	RAW_STRING("backup", struct raw_step, backup),
	RAW_STRING("backup_check", struct raw_step, backup_check),
	RAW_STRING("restore", struct raw_step, restore),
	RAW_STRING("restore_drill", struct raw_step, restore_drill),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t raw_step_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_step,
			    raw_step_fields),
};

static const cyaml_schema_field_t raw_arg_fields[] = {
	RAW_STRING("name", struct raw_arg, name),
	RAW_STRING("default", struct raw_arg, default_value),
	RAW_STRING("description", struct raw_arg, description),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t raw_arg_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_arg,
			    raw_arg_fields),
};

static const cyaml_schema_field_t raw_file_fields[] = {
	RAW_STRING("description", struct raw_file, description),
	RAW_STRING("enqueue_role", struct raw_file, enqueue_role),
	CYAML_FIELD_SEQUENCE("args", OPT, struct raw_file, args,
			     &raw_arg_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("steps", OPT, struct raw_file, steps,
			     &raw_step_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t raw_file_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_file,
			    raw_file_fields),
};
/* clang-format on */

/* The state of loading one file. */
struct jobdef_load {
	const char *file;
	struct yamlpos *pos;
	const struct raw_file *raw;
	struct jobdef *def;
	char *problems; /* one line per problem */
};

/* The state of checking the variables of one key of one step. */
struct jobdef_var_check {
	struct jobdef_load *ld;
	unsigned step;
	const char *key;
	bool batch_vars;    /* :last_key and :batch_size are known */
	bool for_each_vars; /* the step's for_each_vars are known */
	char **reported;
	unsigned reported_count;
};

/* Add one problem line to the load. */
static void __attribute__((format(printf, 2, 3)))
jobdef_problem(struct jobdef_load *ld, const char *fmt, ...)
{
	va_list ap;
	char *line, *joined;

	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	if (ld->problems == NULL) {
		ld->problems = line;
		return;
	}
	joined = xasprintf("%s\n%s", ld->problems, line);
	free(ld->problems);
	free(line);
	ld->problems = joined;
}

/* Report a problem with a top-level key (path as yamlpos spells it). */
static void __attribute__((format(printf, 3, 4)))
jobdef_key_problem(struct jobdef_load *ld, const char *path, const char *fmt,
		   ...)
{
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	jobdef_problem(ld, "%s:%u: key \"%s\": %s", ld->file,
		       yamlpos_line(ld->pos, path), path, what);
	free(what);
}

/* Report a problem with step i, naming the step and its line. */
static void __attribute__((format(printf, 3, 4)))
jobdef_step_problem(struct jobdef_load *ld, unsigned i, const char *fmt, ...)
{
	const char *name = ld->raw->steps[i].name;
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	if (name != NULL && *name != '\0')
		jobdef_problem(ld, "%s:%u: step \"%s\": %s", ld->file,
			       ld->def->steps[i].line, name, what);
	else
		jobdef_problem(ld, "%s:%u: step #%u: %s", ld->file,
			       ld->def->steps[i].line, i + 1, what);
	free(what);
}

/* True if s is a step or kind name: [a-z0-9_]+. */
static bool jobdef_valid_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	}
	return true;
}

/* True if s is a variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool jobdef_valid_var(const char *s)
{
	if (s == NULL || !((*s >= 'a' && *s <= 'z') ||
			   (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	}
	return true;
}

/* True if name is in the NULL-terminated list. */
static bool jobdef_in_list(const char *const *list, const char *name)
{
	for (; *list != NULL; list++) {
		if (strcmp(*list, name) == 0)
			return true;
	}
	return false;
}

/* True if name is in the counted list. */
static bool jobdef_in_array(char *const *list, unsigned count, const char *name)
{
	for (unsigned i = 0; i < count; i++) {
		if (strcmp(list[i], name) == 0)
			return true;
	}
	return false;
}

/* Parse a whole decimal integer. */
static bool jobdef_parse_int(const char *text, int64_t *out)
{
	char *end;
	long long v;

	if (text == NULL || *text == '\0')
		return false;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || end == text)
		return false;
	*out = v;
	return true;
}

/* Parse a YAML boolean word. */
static bool jobdef_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };

	for (size_t i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Copy a list of strings. */
static char **jobdef_copy_list(char *const *list, unsigned count)
{
	char **copy = xcalloc(count + 1, sizeof(*copy));

	for (unsigned i = 0; i < count; i++)
		copy[i] = xstrdup(list[i]);
	return copy;
}

/* Free a list of strings. */
static void jobdef_free_list(char **list, unsigned count)
{
	if (list == NULL)
		return;
	for (unsigned i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

/* Collects libcyaml's log lines while it loads a file. */
static void jobdef_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt,
			     va_list args)
{
	char **log = ctx, *line, *joined;

	(void)level;
	line = xvasprintf(fmt, args);
	if (*log == NULL) {
		*log = line;
		return;
	}
	joined = xasprintf("%s%s", *log, line);
	free(*log);
	free(line);
	*log = joined;
}

/* Name a libcyaml schema type or event the way a YAML author would. */
static const char *jobdef_cyaml_noun(const char *word)
{
	/* clang-format off */
	static const char *const nouns[][2] = {
		{ "SEQUENCE_START", "a list" },
		{ "SEQUENCE", "a list" },
		{ "MAPPING_START", "a mapping" },
		{ "MAPPING", "a mapping" },
		{ "STRING", "a string" },
		{ "SCALAR", "a plain value" },
		{ "ALIAS", "an alias" },
	};
	/* clang-format on */

	for (size_t i = 0; i < ARRAY_SIZE(nouns); i++) {
		if (strcmp(word, nouns[i][0]) == 0)
			return nouns[i][1];
	}
	return word;
}

/* Rewrite libcyaml's "Expecting X, got event: Y" in plain words; other
 * messages are kept as they are. */
static char *jobdef_cyaml_tidy(const char *msg)
{
	char want[32], got[32], *tidy;

	if (sscanf(msg, "Expecting %31[A-Z_], got event: %31[A-Z_]", want,
		   got) == 2)
		return xasprintf("expected %s, found %s",
				 jobdef_cyaml_noun(want),
				 jobdef_cyaml_noun(got));
	tidy = xstrdup(msg);
	if (*tidy >= 'A' && *tidy <= 'Z')
		*tidy = (char)(*tidy - 'A' + 'a');
	return tidy;
}

/* Turn libcyaml's message and backtrace into one problem naming the file,
 * the line and the key path. */
static void jobdef_cyaml_problem(struct jobdef_load *ld, const char *log,
				 cyaml_err_t err)
{
	char *copy = xstrdup(log != NULL ? log : ""), *save = NULL, *line;
	char *path = xstrdup(""), *joined, *tidy, field[256];
	const char *msg = NULL;
	char **frames = NULL;
	unsigned frame_count = 0, at = 0, entry;
	size_t fl, fc;
	const char *key;

	for (line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "  in ", 5) == 0) {
			frames = xrealloc(frames,
					  (frame_count + 1) * sizeof(*frames));
			frames[frame_count++] = line + 5;
		} else if (strncmp(line, "Load: ", 6) == 0 && msg == NULL &&
			   strcmp(line, "Load: Backtrace:") != 0) {
			msg = line + 6;
		}
	}
	for (unsigned i = frame_count; i-- > 0;) {
		joined = NULL;
		if (sscanf(frames[i],
			   "mapping field '%255[^']' (line: %zu, column: %zu)",
			   field, &fl, &fc) == 3) {
			joined = *path == '\0' ?
					 xstrdup(field) :
					 xasprintf("%s.%s", path, field);
			at = (unsigned)fl;
		} else if (sscanf(frames[i],
				  "sequence entry '%u' (line: %zu, column: %zu)",
				  &entry, &fl, &fc) == 3) {
			joined = xasprintf("%s[%u]", path,
					   entry > 0 ? entry - 1 : 0);
			at = (unsigned)fl;
		} else if (sscanf(frames[i], "mapping (line: %zu, column: %zu)",
				  &fl, &fc) == 2) {
			at = (unsigned)fl;
		}
		if (joined != NULL) {
			free(path);
			path = joined;
		}
	}
	if (msg != NULL && strncmp(msg, "Unexpected key: ", 16) == 0) {
		key = msg + 16;
		joined = *path == '\0' ? xstrdup(key) :
					 xasprintf("%s.%s", path, key);
		free(path);
		path = joined;
		at = yamlpos_line(ld->pos, path);
		msg = "unknown key";
	} else if (*path != '\0' && yamlpos_line(ld->pos, path) != 0) {
		at = yamlpos_line(ld->pos, path);
	}
	if (msg == NULL)
		msg = cyaml_strerror(err);
	msg = tidy = jobdef_cyaml_tidy(msg);
	if (*path != '\0')
		jobdef_problem(ld, "%s:%u: key \"%s\": %s", ld->file,
			       at > 0 ? at : 1, path, msg);
	else
		jobdef_problem(ld, "%s:%u: %s", ld->file, at > 0 ? at : 1, msg);
	free(tidy);
	free(frames);
	free(path);
	free(copy);
}

/* Why name is not known where it is used, as a hint after the message. */
static const char *jobdef_var_hint(struct jobdef_var_check *vc,
				   const char *name, char *hint, size_t len)
{
	const struct raw_file *raw = vc->ld->raw;

	*hint = '\0';
	if (jobdef_in_list(jobdef_batch_vars, name)) {
		snprintf(hint, len, " (only a batch statement has it)");
		return hint;
	}
	if (jobdef_reserved_arg(name)) {
		snprintf(
			hint, len,
			" (a reserved arg: the engine pauses in every step itself, see test_hooks in the configuration)");
		return hint;
	}
	for (unsigned j = vc->step; j < raw->steps_count; j++) {
		const struct raw_step *rs = &raw->steps[j];

		if (j == vc->step &&
		    jobdef_in_array(rs->for_each_vars, rs->for_each_vars_count,
				    name)) {
			snprintf(hint, len,
				 " (for_each_vars are known only in sql)");
			return hint;
		}
		if (!jobdef_in_array(rs->set, rs->set_count, name))
			continue;
		if (j == vc->step)
			snprintf(
				hint, len,
				" (this step sets it; only later steps can use it)");
		else
			snprintf(
				hint, len,
				" (it is set by the later step \"%s\" at line %u)",
				rs->name ? rs->name : "",
				vc->ld->def->steps[j].line);
		return hint;
	}
	return hint;
}

/* Check that one variable is known where it is used; reports each
 * unknown name once per key. */
static bool jobdef_check_var(const char *name, void *arg)
{
	struct jobdef_var_check *vc = arg;
	struct jobdef_load *ld = vc->ld;
	const struct raw_file *raw = ld->raw;
	const struct raw_step *rs = &raw->steps[vc->step];
	char hint[256];

	if (jobdef_in_list(jobdef_builtin_vars, name))
		return true;
	if (vc->batch_vars && jobdef_in_list(jobdef_batch_vars, name))
		return true;
	for (unsigned i = 0; i < raw->args_count; i++) {
		if (raw->args[i].name != NULL &&
		    strcmp(raw->args[i].name, name) == 0)
			return true;
	}
	for (unsigned j = 0; j < vc->step; j++) {
		if (jobdef_in_array(raw->steps[j].set, raw->steps[j].set_count,
				    name))
			return true;
		if ((raw->steps[j].backup != NULL ||
		     raw->steps[j].backup_check != NULL) &&
		    jobdef_in_list(jobdef_backup_vars, name))
			return true;
	}
	if (vc->for_each_vars &&
	    jobdef_in_array(rs->for_each_vars, rs->for_each_vars_count, name))
		return true;
	if (jobdef_in_array(vc->reported, vc->reported_count, name))
		return true;
	vc->reported = xrealloc(vc->reported, (vc->reported_count + 1) *
						      sizeof(*vc->reported));
	vc->reported[vc->reported_count++] = xstrdup(name);
	jobdef_step_problem(ld, vc->step, "unknown variable '%s' in %s%s", name,
			    vc->key,
			    jobdef_var_hint(vc, name, hint, sizeof(hint)));
	return true;
}

/* Compile the SQL of one key of step i into out and check its statement
 * count (0: one or more) and variables. */
static bool jobdef_step_sql(struct jobdef_load *ld, unsigned i, const char *key,
			    const char *text, bool one, bool batch_vars,
			    bool for_each_vars, struct sqlvars_script *out)
{
	struct jobdef_var_check vc = {
		.ld = ld,
		.step = i,
		.key = key,
		.batch_vars = batch_vars,
		.for_each_vars = for_each_vars,
	};
	char *cause = NULL;

	if (!sqlvars_compile(text, out, &cause)) {
		jobdef_step_problem(ld, i, "%s: %s", key, cause);
		free(cause);
		return false;
	}
	if (out->stmt_count == 0) {
		jobdef_step_problem(ld, i, "%s has no statement", key);
		return false;
	}
	if (one && out->stmt_count != 1) {
		jobdef_step_problem(
			ld, i,
			"%s must be exactly one statement, found %u (the second at line %u of it)",
			key, out->stmt_count, out->stmts[1].line);
		return false;
	}
	sqlvars_each_var(out, jobdef_check_var, &vc);
	jobdef_free_list(vc.reported, vc.reported_count);
	return true;
}

/* Check a list of variable names given by key (set, for_each_vars). */
static void jobdef_check_names(struct jobdef_load *ld, unsigned i,
			       const char *key, char *const *names,
			       unsigned count)
{
	const struct raw_file *raw = ld->raw;

	for (unsigned k = 0; k < count; k++) {
		if (!jobdef_valid_var(names[k])) {
			jobdef_step_problem(
				ld, i,
				"%s: '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
				key, names[k]);
			continue;
		}
		if (jobdef_in_list(jobdef_builtin_vars, names[k]) ||
		    jobdef_in_list(jobdef_batch_vars, names[k])) {
			jobdef_step_problem(ld, i,
					    "%s: '%s' is a built-in variable",
					    key, names[k]);
			continue;
		}
		for (unsigned a = 0; a < raw->args_count; a++) {
			if (raw->args[a].name != NULL &&
			    strcmp(raw->args[a].name, names[k]) == 0)
				jobdef_step_problem(
					ld, i, "%s: '%s' is a declared arg",
					key, names[k]);
		}
		if (jobdef_in_array(names, k, names[k]))
			jobdef_step_problem(ld, i, "%s: '%s' is listed twice",
					    key, names[k]);
	}
}

/* Parse a positive batch size given by key, keeping the default if the
 * key is absent. */
static void jobdef_batch_size(struct jobdef_load *ld, unsigned i,
			      const char *key, const char *text, int64_t *out)
{
	int64_t v;

	if (text == NULL)
		return;
	if (!jobdef_parse_int(text, &v) || v <= 0) {
		jobdef_step_problem(ld, i, "%s '%s' is not a positive integer",
				    key, text);
		return;
	}
	*out = v;
}

/* Refuse the keys of other step types that step i has. */
static void jobdef_foreign_keys(struct jobdef_load *ld, unsigned i)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	enum step_type type = ld->def->steps[i].type;
	const struct {
		const char *key;
		bool present;
		enum step_type type;
		const char *owner;
	} keys[] = {
		{ "transaction", rs->transaction != NULL, STEP_SQL, "sql" },
		{ "for_each", rs->for_each != NULL, STEP_SQL, "sql" },
		{ "for_each_vars",
		  rs->for_each_vars != NULL || rs->for_each_vars_count > 0,
		  STEP_SQL, "sql" },
		{ "set", rs->set != NULL || rs->set_count > 0, STEP_SQL,
		  "sql" },
		{ "result", rs->result != NULL, STEP_SQL, "sql" },
		{ "collect", rs->collect != NULL, STEP_SQL, "sql" },
		{ "start_key", rs->start_key != NULL, STEP_BATCH, "batch" },
		{ "batch_size", rs->batch_size != NULL, STEP_BATCH, "batch" },
		{ "min_batch_size", rs->min_batch_size != NULL, STEP_BATCH,
		  "batch" },
		{ "max_batch_size", rs->max_batch_size != NULL, STEP_BATCH,
		  "batch" },
		{ "target_time", rs->target_time != NULL, STEP_BATCH, "batch" },
		{ "total", rs->total != NULL, STEP_BATCH, "batch" },
	};

	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		if (keys[k].present && keys[k].type != type)
			jobdef_step_problem(
				ld, i, "\"%s\" is only allowed on %s steps",
				keys[k].key, keys[k].owner);
	}
	if (rs->timeout != NULL && type != STEP_EXEC && type != STEP_BACKUP &&
	    type != STEP_BACKUP_CHECK && type != STEP_RESTORE &&
	    type != STEP_RESTORE_DRILL)
		jobdef_step_problem(
			ld, i,
			"\"timeout\" is only allowed on exec, backup, backup_check, restore and restore_drill steps");
}

/* Fill in the fields of an sql step. */
static void jobdef_sql_step(struct jobdef_load *ld, unsigned i)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	struct jobdef_step *st = &ld->def->steps[i];

	if (rs->transaction != NULL &&
	    !jobdef_parse_bool(rs->transaction, &st->transaction))
		jobdef_step_problem(ld, i,
				    "transaction '%s' is not true or false",
				    rs->transaction);
	if (rs->result != NULL && !jobdef_parse_bool(rs->result, &st->result))
		jobdef_step_problem(ld, i, "result '%s' is not true or false",
				    rs->result);
	jobdef_check_names(ld, i, "for_each_vars", rs->for_each_vars,
			   rs->for_each_vars_count);
	jobdef_check_names(ld, i, "set", rs->set, rs->set_count);
	st->for_each_vars =
		jobdef_copy_list(rs->for_each_vars, rs->for_each_vars_count);
	st->for_each_var_count = rs->for_each_vars_count;
	st->set_vars = jobdef_copy_list(rs->set, rs->set_count);
	st->set_var_count = rs->set_count;
	if (rs->for_each != NULL) {
		st->has_for_each = true;
		jobdef_step_sql(ld, i, "for_each", rs->for_each, true, false,
				false, &st->for_each);
	} else if (rs->for_each_vars_count > 0) {
		jobdef_step_problem(ld, i, "for_each_vars needs for_each");
	}
	if (rs->collect != NULL) {
		if (rs->for_each == NULL)
			jobdef_step_problem(ld, i, "collect needs for_each");
		else if (!jobdef_valid_var(rs->collect))
			jobdef_step_problem(
				ld, i,
				"collect: '%s' is not a name ([A-Za-z_][A-Za-z0-9_]*)",
				rs->collect);
		else
			st->collect = xstrdup(rs->collect);
	}
	jobdef_step_sql(ld, i, "sql", rs->sql, false, false, true, &st->sql);
}

/* Fill in the fields of a batch step. */
static void jobdef_batch_step(struct jobdef_load *ld, unsigned i,
			      int64_t default_target_ms)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	struct jobdef_step *st = &ld->def->steps[i];
	bool sizes_ok;

	st->start_key = xstrdup(rs->start_key != NULL ? rs->start_key : "");
	st->batch_size = JOBDEF_BATCH_SIZE;
	st->min_batch_size = JOBDEF_MIN_BATCH_SIZE;
	st->max_batch_size = JOBDEF_MAX_BATCH_SIZE;
	st->target_ms = default_target_ms;
	jobdef_batch_size(ld, i, "batch_size", rs->batch_size, &st->batch_size);
	jobdef_batch_size(ld, i, "min_batch_size", rs->min_batch_size,
			  &st->min_batch_size);
	jobdef_batch_size(ld, i, "max_batch_size", rs->max_batch_size,
			  &st->max_batch_size);
	sizes_ok = st->min_batch_size <= st->batch_size &&
		   st->batch_size <= st->max_batch_size;
	if (!sizes_ok)
		jobdef_step_problem(
			ld, i,
			"batch sizes must have min_batch_size <= batch_size <= max_batch_size, got %" PRId64
			" <= %" PRId64 " <= %" PRId64,
			st->min_batch_size, st->batch_size, st->max_batch_size);
	if (rs->target_time != NULL &&
	    (!duration_parse(rs->target_time, &st->target_ms) ||
	     st->target_ms <= 0))
		jobdef_step_problem(
			ld, i,
			"target_time '%s' is not a positive duration (like '500ms' or '2s')",
			rs->target_time);
	if (rs->total != NULL) {
		st->has_total = true;
		jobdef_step_sql(ld, i, "total", rs->total, true, false, false,
				&st->total);
	}
	jobdef_step_sql(ld, i, "batch", rs->batch, true, true, false,
			&st->batch);
}

/* Fill in the fields of a verify step. */
static void jobdef_verify_step(struct jobdef_load *ld, unsigned i)
{
	const struct raw_verify *rv = ld->raw->steps[i].verify;
	struct jobdef_step *st = &ld->def->steps[i];

	if (rv->expected == NULL)
		jobdef_step_problem(ld, i, "verify needs \"expected\"");
	else
		jobdef_step_sql(ld, i, "verify.expected", rv->expected, true,
				false, false, &st->expected);
	if (rv->actual == NULL)
		jobdef_step_problem(ld, i, "verify needs \"actual\"");
	else
		jobdef_step_sql(ld, i, "verify.actual", rv->actual, true, false,
				false, &st->actual);
}

/* Fill in the fields of an exec step. */
static void jobdef_exec_step(struct jobdef_load *ld, unsigned i)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	struct jobdef_step *st = &ld->def->steps[i];
	struct jobdef_var_check vc = {
		.ld = ld,
		.step = i,
		.key = "exec",
	};

	if (rs->exec_count == 0 || *rs->exec[0] == '\0')
		jobdef_step_problem(ld, i,
				    "exec needs a program and its arguments");
	st->argv = jobdef_copy_list(rs->exec, rs->exec_count);
	st->argc = rs->exec_count;
	for (unsigned k = 0; k < rs->exec_count; k++)
		sqlvars_word_each_var(rs->exec[k], jobdef_check_var, &vc);
	jobdef_free_list(vc.reported, vc.reported_count);
	if (rs->timeout != NULL &&
	    (!duration_parse(rs->timeout, &st->timeout_ms) ||
	     st->timeout_ms < 0))
		jobdef_step_problem(
			ld, i,
			"timeout '%s' is not a duration (like '30s' or '2h')",
			rs->timeout);
}

/* Fill in the fields of a backup, backup_check or restore step. A restore
 * overwrites a schema, so it must be destructive (and so require earlier
 * steps, such as the backup_check that found its file). */
static void jobdef_backup_step(struct jobdef_load *ld, unsigned i,
			       const char *key, const char *word)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	struct jobdef_step *st = &ld->def->steps[i];
	struct jobdef_var_check vc = {
		.ld = ld,
		.step = i,
		.key = key,
	};

	st->target = xstrdup(word);
	sqlvars_word_each_var(word, jobdef_check_var, &vc);
	jobdef_free_list(vc.reported, vc.reported_count);
	if ((st->type == STEP_BACKUP || st->type == STEP_RESTORE) &&
	    *word == '\0')
		jobdef_step_problem(ld, i, "%s needs a value, such as %s", key,
				    st->type == STEP_BACKUP ?
					    "\":schema\"" :
					    "\":backup_file\"");
	if (st->type == STEP_RESTORE && !st->destructive)
		jobdef_step_problem(
			ld, i,
			"a restore step overwrites a schema: it must be destructive: true, with requires naming the backup_check step that found its file");
	if (rs->timeout != NULL &&
	    (!duration_parse(rs->timeout, &st->timeout_ms) ||
	     st->timeout_ms < 0))
		jobdef_step_problem(
			ld, i,
			"timeout '%s' is not a duration (like '30s' or '2h')",
			rs->timeout);
}

/* The keys every step may have: retry, destructive and requires. A
 * destructive step needs at least one earlier step that must have passed:
 * the ones in requires, or else every earlier verify step. */
static void jobdef_safety(struct jobdef_load *ld, unsigned i)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	struct jobdef_step *st = &ld->def->steps[i];

	st->retry = true;
	if (rs->retry != NULL && !jobdef_parse_bool(rs->retry, &st->retry))
		jobdef_step_problem(ld, i, "retry '%s' is not true or false",
				    rs->retry);
	if (rs->destructive != NULL &&
	    !jobdef_parse_bool(rs->destructive, &st->destructive))
		jobdef_step_problem(ld, i,
				    "destructive '%s' is not true or false",
				    rs->destructive);
	st->requires = xcalloc(i + 1, sizeof(unsigned));
	for (unsigned k = 0; k < rs->requires_count; k++) {
		unsigned j;

		for (j = 0; j < i; j++)
			if (ld->raw->steps[j].name != NULL &&
			    strcmp(ld->raw->steps[j].name, rs->requires[k]) ==
				    0)
				break;
		if (j == i)
			jobdef_step_problem(ld, i,
					    "requires '%s', which is not an "
					    "earlier step",
					    rs->requires[k]);
		else if (st->require_count < i)
		st->requires[st->require_count++] = j;
	}
	if (rs->requires_count == 0 && st->destructive) {
		for (unsigned j = 0; j < i; j++)
			if (ld->raw->steps[j].verify != NULL)
		st->requires[st->require_count++] = j;
	}
	if (st->destructive && st->require_count == 0)
		jobdef_step_problem(ld, i,
				    "a destructive step must come after a "
				    "verify step, or name the earlier steps it "
				    "requires");
}

/* Validate step i and fill in its definition. */
static void jobdef_step(struct jobdef_load *ld, unsigned i,
			int64_t default_target_ms)
{
	const struct raw_step *rs = &ld->raw->steps[i];
	struct jobdef_step *st = &ld->def->steps[i];
	const char *types[7];
	unsigned type_count = 0;

	st->transaction = true;
	if (rs->name == NULL || *rs->name == '\0') {
		jobdef_step_problem(ld, i, "the step has no name");
	} else {
		st->name = xstrdup(rs->name);
		if (!jobdef_valid_name(rs->name))
			jobdef_step_problem(ld, i, "step names are [a-z0-9_]+");
		for (unsigned j = 0; j < i; j++) {
			if (ld->raw->steps[j].name != NULL &&
			    strcmp(ld->raw->steps[j].name, rs->name) == 0) {
				jobdef_step_problem(
					ld, i,
					"duplicate step name (first at line %u)",
					ld->def->steps[j].line);
				break;
			}
		}
	}
	if (rs->sql != NULL) {
		types[type_count++] = "sql";
		st->type = STEP_SQL;
	}
	if (rs->batch != NULL) {
		types[type_count++] = "batch";
		st->type = STEP_BATCH;
	}
	if (rs->verify != NULL) {
		types[type_count++] = "verify";
		st->type = STEP_VERIFY;
	}
	if (rs->exec != NULL || rs->exec_count > 0) {
		types[type_count++] = "exec";
		st->type = STEP_EXEC;
	}
	if (rs->backup != NULL) {
		types[type_count++] = "backup";
		st->type = STEP_BACKUP;
	}
	if (rs->backup_check != NULL) {
		types[type_count++] = "backup_check";
		st->type = STEP_BACKUP_CHECK;
	}
	if (rs->restore != NULL) {
		types[type_count++] = "restore";
		st->type = STEP_RESTORE;
	}
	if (rs->restore_drill != NULL) {
		types[type_count++] = "restore_drill";
		st->type = STEP_RESTORE_DRILL;
	}
	if (type_count != 1) {
		if (type_count == 0)
			jobdef_step_problem(
				ld, i,
				"the step has none of sql, batch, verify, exec, backup, backup_check, restore or restore_drill");
		else
			jobdef_step_problem(
				ld, i,
				"the step has both %s and %s; it must have exactly one of sql, batch, verify, exec, backup, backup_check, restore or restore_drill",
				types[0], types[1]);
		return;
	}
	jobdef_foreign_keys(ld, i);
	jobdef_safety(ld, i);
	if (rs->when != NULL) {
		st->has_when = true;
		jobdef_step_sql(ld, i, "when", rs->when, true, false, false,
				&st->when);
	}
	switch (st->type) {
	case STEP_SQL:
		jobdef_sql_step(ld, i);
		break;
	case STEP_BATCH:
		jobdef_batch_step(ld, i, default_target_ms);
		break;
	case STEP_VERIFY:
		jobdef_verify_step(ld, i);
		break;
	case STEP_EXEC:
		jobdef_exec_step(ld, i);
		break;
	case STEP_BACKUP:
		jobdef_backup_step(ld, i, "backup", rs->backup);
		break;
	case STEP_BACKUP_CHECK:
		jobdef_backup_step(ld, i, "backup_check", rs->backup_check);
		break;
	case STEP_RESTORE:
		jobdef_backup_step(ld, i, "restore", rs->restore);
		break;
	case STEP_RESTORE_DRILL:
		jobdef_backup_step(ld, i, "restore_drill", rs->restore_drill);
		break;
	}
}

/* Whether name is one of jobdef_reserved_args. */
bool jobdef_reserved_arg(const char *name)
{
	for (unsigned i = 0; jobdef_reserved_args[i].name != NULL; i++)
		if (strcmp(jobdef_reserved_args[i].name, name) == 0)
			return true;
	return false;
}

/* Validate the declared args and copy them into the definition. */
static void jobdef_args(struct jobdef_load *ld)
{
	const struct raw_file *raw = ld->raw;
	struct jobdef *def = ld->def;
	char path[64];

	def->args = xcalloc(raw->args_count + 1, sizeof(*def->args));
	def->arg_count = raw->args_count;
	for (unsigned i = 0; i < raw->args_count; i++) {
		const struct raw_arg *ra = &raw->args[i];

		snprintf(path, sizeof(path), "args[%u]", i);
		if (ra->default_value != NULL)
			def->args[i].default_value = xstrdup(ra->default_value);
		if (ra->description != NULL)
			def->args[i].description = xstrdup(ra->description);
		if (ra->name == NULL) {
			jobdef_key_problem(ld, path, "the arg has no name");
			continue;
		}
		def->args[i].name = xstrdup(ra->name);
		if (!jobdef_valid_var(ra->name))
			jobdef_key_problem(
				ld, path,
				"arg name '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
				ra->name);
		else if (jobdef_in_list(jobdef_builtin_vars, ra->name) ||
			 jobdef_in_list(jobdef_batch_vars, ra->name))
			jobdef_key_problem(
				ld, path,
				"arg name '%s' is a built-in variable",
				ra->name);
		else if (jobdef_reserved_arg(ra->name))
			jobdef_key_problem(
				ld, path,
				"arg name '%s' is reserved: the engine handles it for every kind (configuration key test_hooks)",
				ra->name);
		for (unsigned j = 0; j < i; j++) {
			if (raw->args[j].name != NULL &&
			    strcmp(raw->args[j].name, ra->name) == 0) {
				jobdef_key_problem(ld, path,
						   "arg '%s' is declared twice",
						   ra->name);
				break;
			}
		}
	}
}

/* The kind named by a file path: its base name without ".yaml". */
static char *jobdef_kind_of(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base != NULL ? base + 1 : path;
	len = strlen(base);
	if (len > 5 && strcmp(base + len - 5, ".yaml") == 0)
		len -= 5;
	return xstrndup(base, len);
}

/* Load one file. */
/* The role whose members may enqueue the kind: enqueue_role, else
 * JOBDEF_ROLE_OPERATE for a kind with a destructive step and for
 * migrate_to_separate_schema, else JOBDEF_ROLE_ENQUEUE. */
static void jobdef_enqueue_role(struct jobdef_load *ld)
{
	const char *role = ld->raw->enqueue_role;
	struct jobdef *def = ld->def;
	size_t len;

	if (role == NULL) {
		bool operate =
			strcmp(def->kind, "migrate_to_separate_schema") == 0;

		for (unsigned i = 0; i < def->step_count; i++)
			operate = operate || def->steps[i].destructive;
		def->enqueue_role = xstrdup(operate ? JOBDEF_ROLE_OPERATE :
						      JOBDEF_ROLE_ENQUEUE);
		return;
	}
	len = strlen(role);
	if (len == 0 || len > 63 ||
	    strspn(role, "abcdefghijklmnopqrstuvwxyz0123456789_$") != len ||
	    isdigit((unsigned char)role[0]) || role[0] == '$') {
		char *shown = display_escape(role, 64, true);

		jobdef_key_problem(
			ld, "enqueue_role",
			"'%s' is not a role name (1 to 63 bytes of a-z, 0-9, _ and $, not starting with a digit)",
			shown);
		free(shown);
		return;
	}
	def->enqueue_role = xstrdup(role);
}

bool jobdef_load_file(const char *path, int64_t default_target_ms,
		      struct jobdef *out, char **cause)
{
	struct jobdef_load ld = { .file = path, .def = out };
	cyaml_config_t config = {
		.log_fn = jobdef_cyaml_log,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct raw_file *raw = NULL;
	char *log = NULL;
	cyaml_err_t err;
	unsigned at;

	memset(out, 0, sizeof(*out));
	out->file = xstrdup(path);
	out->kind = jobdef_kind_of(path);
	if (!jobdef_valid_name(out->kind))
		jobdef_problem(
			&ld,
			"%s: kind '%s' (the file's base name) must be [a-z0-9_]+",
			path, out->kind);
	ld.pos = yamlpos_load(path, &log);
	if (ld.pos == NULL) {
		jobdef_problem(&ld, "%s", log);
		free(log);
		jobdef_clear(out);
		if (cause != NULL) {
			free(*cause);
			*cause = ld.problems;
		} else {
			free(ld.problems);
		}
		return false;
	}
	log = NULL;
	config.log_ctx = &log;
	err = cyaml_load_file(path, &config, &raw_file_schema,
			      (cyaml_data_t **)&raw, NULL);
	if (err != CYAML_OK) {
		jobdef_cyaml_problem(&ld, log, err);
	} else if (raw == NULL || raw->steps_count == 0) {
		at = yamlpos_line(ld.pos, "steps");
		jobdef_problem(
			&ld,
			"%s:%u: key \"steps\": a job needs at least one step",
			path, at > 0 ? at : 1);
	} else {
		char item[32];

		ld.raw = raw;
		if (raw->description != NULL)
			out->description = xstrdup(raw->description);
		jobdef_args(&ld);
		out->steps = xcalloc(raw->steps_count, sizeof(*out->steps));
		out->step_count = raw->steps_count;
		for (unsigned i = 0; i < raw->steps_count; i++) {
			snprintf(item, sizeof(item), "steps[%u]", i);
			out->steps[i].line = yamlpos_line(ld.pos, item);
		}
		for (unsigned i = 0; i < raw->steps_count; i++)
			jobdef_step(&ld, i, default_target_ms);
		jobdef_enqueue_role(&ld);
	}
	if (raw != NULL)
		cyaml_free(&config, &raw_file_schema, raw, 0);
	free(log);
	yamlpos_free(ld.pos);
	if (ld.problems != NULL) {
		jobdef_clear(out);
		if (cause != NULL) {
			free(*cause);
			*cause = ld.problems;
		} else {
			free(ld.problems);
		}
		return false;
	}
	return true;
}

void jobdef_clear(struct jobdef *def)
{
	if (def == NULL)
		return;
	for (unsigned i = 0; i < def->step_count; i++) {
		struct jobdef_step *st = &def->steps[i];

		free(st->name);
		sqlvars_script_free(&st->when);
		sqlvars_script_free(&st->sql);
		sqlvars_script_free(&st->for_each);
		jobdef_free_list(st->for_each_vars, st->for_each_var_count);
		jobdef_free_list(st->set_vars, st->set_var_count);
		sqlvars_script_free(&st->batch);
		free(st->start_key);
		sqlvars_script_free(&st->total);
		sqlvars_script_free(&st->expected);
		sqlvars_script_free(&st->actual);
		jobdef_free_list(st->argv, st->argc);
		free(st->requires);
		free(st->collect);
		free(st->target);
	}
	free(def->steps);
	for (unsigned i = 0; i < def->arg_count; i++) {
		free(def->args[i].name);
		free(def->args[i].default_value);
		free(def->args[i].description);
	}
	free(def->args);
	free(def->kind);
	free(def->description);
	free(def->enqueue_role);
	free(def->file);
	memset(def, 0, sizeof(*def));
}

/* scandir filter: visible *.yaml entries. */
static int jobdef_dir_filter(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	return de->d_name[0] != '.' && len > 5 &&
	       strcmp(de->d_name + len - 5, ".yaml") == 0;
}

/* scandir order: byte order of the names, whatever the locale. */
static int jobdef_dir_compare(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Load every *.yaml file in dir. */
struct jobdefs *jobdefs_load_dir(const char *dir, int64_t default_target_ms,
				 char **cause)
{
	struct dirent **names = NULL;
	struct jobdefs *defs;
	char *problems = NULL, *one = NULL, *path, *joined;
	int n;

	n = scandir(dir, &names, jobdef_dir_filter, jobdef_dir_compare);
	if (n < 0) {
		set_cause(cause, "jobs directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	if (n == 0) {
		free(names);
		set_cause(cause, "jobs directory %s has no *.yaml job files",
			  dir);
		return NULL;
	}
	defs = xcalloc(1, sizeof(*defs));
	defs->refs = 1;
	defs->dir = xstrdup(dir);
	defs->defs = xcalloc((size_t)n, sizeof(*defs->defs));
	for (int i = 0; i < n; i++) {
		path = xasprintf("%s/%s", dir, names[i]->d_name);
		free(names[i]);
		if (jobdef_load_file(path, default_target_ms,
				     &defs->defs[defs->count], &one)) {
			defs->count++;
		} else {
			joined = problems == NULL ?
					 xstrdup(one) :
					 xasprintf("%s\n%s", problems, one);
			free(problems);
			problems = joined;
		}
		free(path);
	}
	free(names);
	free(one);
	if (problems != NULL) {
		jobdefs_unref(defs);
		if (cause != NULL) {
			free(*cause);
			*cause = problems;
		} else {
			free(problems);
		}
		return NULL;
	}
	return defs;
}

/* The definition of kind in defs, or NULL. */
const struct jobdef *jobdefs_find(const struct jobdefs *defs, const char *kind)
{
	if (defs == NULL || kind == NULL)
		return NULL;
	for (unsigned i = 0; i < defs->count; i++) {
		if (strcmp(defs->defs[i].kind, kind) == 0)
			return &defs->defs[i];
	}
	return NULL;
}

/* Take one more reference to defs. */
struct jobdefs *jobdefs_ref(struct jobdefs *defs)
{
	if (defs != NULL)
		defs->refs++;
	return defs;
}

/* Drop one reference to defs, freeing it with the last. */
void jobdefs_unref(struct jobdefs *defs)
{
	if (defs == NULL || --defs->refs > 0)
		return;
	for (unsigned i = 0; i < defs->count; i++)
		jobdef_clear(&defs->defs[i]);
	free(defs->defs);
	free(defs->dir);
	free(defs);
}
