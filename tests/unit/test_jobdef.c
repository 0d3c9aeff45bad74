/* test_jobdef.c - job files: parsed fields and defaults, and the messages
 * for every kind of mistake, written to a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobdef.h"
#include "unit.h"
#include "util.h"

static char tmp_dir[] = "/tmp/test_jobdef.XXXXXX";

/* Write text to dir/name and return the path. */
static char *write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load text as job file name, expecting failure; returns the cause. */
static char *load_bad(const char *name, const char *text)
{
	struct jobdef def;
	char *path = write_file(tmp_dir, name, text);
	char *cause = NULL, *label;

	label = xasprintf("%s is refused", name);
	ok(!jobdef_load_file(path, 1000, &def, &cause), label);
	free(label);
	if (cause != NULL)
		printf("# %s\n", cause);
	unlink(path);
	free(path);
	return cause;
}

/* Check that a message starts with "TMP/name:line: ". */
static void check_where(const char *cause, const char *name, unsigned line,
			const char *what)
{
	char *want = xasprintf("%s/%s:%u: ", tmp_dir, name, line);

	ok(cause != NULL && strncmp(cause, want, strlen(want)) == 0, what);
	if (cause != NULL && strncmp(cause, want, strlen(want)) != 0)
		printf("#     '%s'\n#     does not start with '%s'\n", cause,
		       want);
	free(want);
}

/* clang-format off */
static const char valid_yaml[] =
	"description: Every step type\n"			/* 1 */
	"args:\n"
	"  - name: batch_rows\n"
	"    default: 500\n"
	"    description: Rows per batch\n"			/* 5 */
	"  - name: target\n"
	"steps:\n"
	"  - name: prepare\n"
	"    when: SELECT to_regnamespace(:'schema') IS NULL\n"
	"    sql: |\n"						/* 10 */
	"      CREATE SCHEMA :\"schema\";\n"
	"      SELECT :'tenant_id' AS tid, 1 AS n\n"
	"    set: [tid, n]\n"
	"    result: true\n"
	"  - name: per_table\n"					/* 15 */
	"    transaction: false\n"
	"    for_each: SELECT relname FROM pg_class ORDER BY 1\n"
	"    for_each_vars: [relname]\n"
	"    sql: VACUUM :\"schema\".:\"relname\"\n"
	"  - name: copy\n"					/* 20 */
	"    batch: >\n"
	"      SELECT max(id), count(*) FROM x\n"
	"      WHERE id > :'last_key' LIMIT :batch_size::int\n"
	"        AND t = :'tid'\n"
	"    start_key: \"\"\n"				/* 25 */
	"    batch_size: 200\n"
	"    min_batch_size: 10\n"
	"    max_batch_size: 5000\n"
	"    target_time: 250ms\n"
	"    total: SELECT count(*) FROM x WHERE t = :'target'\n"	/* 30 */
	"  - name: check\n"
	"    verify:\n"
	"      expected: SELECT count(*) FROM a WHERE n = :n\n"
	"      actual: SELECT count(*) FROM :\"schema\".a\n"
	"  - name: dump\n"					/* 35 */
	"    exec: [pg_dump, \"--schema=:schema\", -f, \":backup_dir/:tid.dump\"]\n"
	"    timeout: 2h\n"
	"  - name: defaults\n"
	"    batch: SELECT :'last_key', :batch_size\n";
/* clang-format on */

static void test_valid(void)
{
	struct jobdef def;
	char *path = write_file(tmp_dir, "every_type.yaml", valid_yaml);
	char *cause = NULL;
	const struct jobdef_step *st;

	if (!ok(jobdef_load_file(path, 1234, &def, &cause), "valid file")) {
		printf("# %s\n", cause);
		free(cause);
		free(path);
		return;
	}
	is_str(def.kind, "every_type", "kind from the file name");
	is_str(def.file, path, "file kept");
	is_str(def.description, "Every step type", "description");
	is_int(def.arg_count, 2, "two args");
	is_str(def.args[0].name, "batch_rows", "arg name");
	is_str(def.args[0].default_value, "500", "arg default");
	is_str(def.args[0].description, "Rows per batch", "arg description");
	ok(def.args[1].default_value == NULL, "arg without default required");
	is_int(def.step_count, 6, "six steps");

	st = &def.steps[0];
	is_str(st->name, "prepare", "sql step name");
	is_int(st->type, STEP_SQL, "sql step type");
	is_int(st->line, 8, "sql step line");
	ok(st->has_when, "when present");
	is_int(st->when.stmt_count, 1, "when one statement");
	is_int(st->sql.stmt_count, 2, "sql two statements");
	is_int(st->sql.stmts[1].line, 2, "second statement line");
	ok(st->transaction, "transaction defaults to true");
	ok(!st->has_for_each, "no for_each");
	is_int(st->set_var_count, 2, "set vars");
	is_str(st->set_vars[1], "n", "set var name");
	ok(st->result, "result true");

	st = &def.steps[1];
	is_int(st->line, 15, "for_each step line");
	ok(!st->transaction, "transaction false");
	ok(st->has_for_each, "for_each present");
	is_int(st->for_each_var_count, 1, "for_each_vars");
	is_str(st->for_each_vars[0], "relname", "for_each var name");
	ok(!st->result, "result defaults to false");
	ok(!st->has_when, "no when");

	st = &def.steps[2];
	is_int(st->type, STEP_BATCH, "batch step type");
	is_int(st->batch.stmt_count, 1, "batch one statement");
	is_int(st->batch.stmts[0].param_count, 3, "batch params");
	is_str(st->start_key, "", "start_key");
	is_int(st->batch_size, 200, "batch_size");
	is_int(st->min_batch_size, 10, "min_batch_size");
	is_int(st->max_batch_size, 5000, "max_batch_size");
	is_int(st->target_ms, 250, "target_time");
	ok(st->has_total, "total present");

	st = &def.steps[3];
	is_int(st->type, STEP_VERIFY, "verify step type");
	is_int(st->expected.stmt_count, 1, "expected");
	is_int(st->actual.stmt_count, 1, "actual");

	st = &def.steps[4];
	is_int(st->type, STEP_EXEC, "exec step type");
	is_int(st->argc, 4, "exec argc");
	is_str(st->argv[0], "pg_dump", "exec program");
	is_str(st->argv[3], ":backup_dir/:tid.dump", "exec word kept as is");
	is_int(st->timeout_ms, 7200000, "timeout");

	st = &def.steps[5];
	is_str(st->start_key, "", "default start_key");
	is_int(st->batch_size, 1000, "default batch_size");
	is_int(st->min_batch_size, 1, "default min_batch_size");
	is_int(st->max_batch_size, 100000, "default max_batch_size");
	is_int(st->target_ms, 1234, "default target_time from the config");
	ok(!st->has_total, "no total");

	jobdef_clear(&def);
	is_int(def.step_count, 0, "clear empties the definition");
	unlink(path);
	free(path);
}

/* clang-format off */
static void test_errors(void)
{
	char *cause;

	cause = load_bad("unknown_key.yaml",
			 "steps:\n"
			 "  - name: a\n"
			 "    sql: SELECT 1\n"
			 "    bogus: 1\n");
	check_where(cause, "unknown_key.yaml", 4, "unknown key line");
	contains(cause, "key \"steps[0].bogus\": unknown key",
		 "unknown key named");
	free(cause);

	cause = load_bad("unknown_top.yaml",
			 "description: x\n"
			 "stepz: []\n");
	check_where(cause, "unknown_top.yaml", 2, "unknown top key line");
	contains(cause, "key \"stepz\": unknown key", "unknown top key named");
	free(cause);

	cause = load_bad("two_types.yaml",
			 "steps:\n"
			 "  - name: a\n"
			 "    sql: SELECT 1\n"
			 "  - name: b\n"
			 "    sql: SELECT 1\n"
			 "    exec: [true]\n");
	check_where(cause, "two_types.yaml", 4, "two types line");
	contains(cause, "step \"b\": the step has both sql and exec",
		 "two types named");
	free(cause);

	cause = load_bad("no_type.yaml",
			 "steps:\n"
			 "  - name: a\n");
	contains(cause, "step \"a\": the step has none of sql, batch, verify, exec, backup, backup_check, restore or restore_drill", "no type named");
	free(cause);

	cause = load_bad("unknown_var.yaml",
			 "args:\n"
			 "  - name: days\n"
			 "steps:\n"
			 "  - name: first\n"
			 "    sql: SELECT :'days'\n"
			 "  - name: second\n"
			 "    sql: |\n"
			 "      SELECT 1;\n"
			 "      SELECT :'tenant_id', :\"nosuch\", :nosuch\n");
	check_where(cause, "unknown_var.yaml", 6, "unknown var at step line");
	contains(cause, "step \"second\": unknown variable 'nosuch' in sql",
		 "unknown var named");
	ok(cause != NULL && strchr(cause, '\n') == NULL,
	   "unknown var reported once");
	free(cause);

	cause = load_bad("set_later.yaml",
			 "steps:\n"
			 "  - name: use\n"
			 "    sql: SELECT :'found'\n"
			 "  - name: define\n"
			 "    sql: SELECT 1 AS found\n"
			 "    set: [found]\n");
	check_where(cause, "set_later.yaml", 2, "set later line");
	contains(cause, "step \"use\": unknown variable 'found' in sql (it is set by the later step \"define\" at line 4)",
		 "set later hint");
	free(cause);

	cause = load_bad("set_self.yaml",
			 "steps:\n"
			 "  - name: both\n"
			 "    sql: SELECT 1 AS x; SELECT :x\n"
			 "    set: [x]\n");
	contains(cause, "this step sets it", "own set var hint");
	free(cause);

	cause = load_bad("batch_var.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: SELECT :'last_key'\n"
			 "  - name: b\n"
			 "    batch: SELECT 1, 0\n"
			 "    total: SELECT :batch_size\n");
	contains(cause, "step \"s\": unknown variable 'last_key' in sql (only a batch statement has it)", "batch var outside batch");
	contains(cause, "step \"b\": unknown variable 'batch_size' in total",
		 "batch var in total");
	free(cause);

	cause = load_bad("reserved.yaml",
			 "args:\n"
			 "  - name: test_gate\n"
			 "    default: \"\"\n"
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: SELECT :'test_sleep'\n");
	contains(cause, "reserved.yaml:2: key \"args[0]\": arg name 'test_gate' is reserved: the engine handles it for every kind (configuration key test_hooks)", "a reserved arg may not be declared");
	contains(cause, "step \"s\": unknown variable 'test_sleep' in sql (a reserved arg: the engine pauses in every step itself, see test_hooks in the configuration)", "a reserved arg is no variable");
	free(cause);

	cause = load_bad("exec_var.yaml",
			 "steps:\n"
			 "  - name: run\n"
			 "    exec: [echo, \"--x=:nope\"]\n");
	contains(cause, "step \"run\": unknown variable 'nope' in exec",
		 "exec unknown var");
	free(cause);

	cause = load_bad("dup_step.yaml",
			 "steps:\n"
			 "  - name: a\n"
			 "    sql: SELECT 1\n"
			 "  - name: a\n"
			 "    sql: SELECT 2\n");
	check_where(cause, "dup_step.yaml", 4, "duplicate step line");
	contains(cause, "step \"a\": duplicate step name (first at line 2)",
		 "duplicate step named");
	free(cause);

	cause = load_bad("two_batch.yaml",
			 "steps:\n"
			 "  - name: copy\n"
			 "    batch: |\n"
			 "      SELECT 1, 0;\n"
			 "      SELECT 2, 0\n");
	check_where(cause, "two_batch.yaml", 2, "two batch statements line");
	contains(cause, "step \"copy\": batch must be exactly one statement, found 2", "two batch statements named");
	free(cause);

	cause = load_bad("bad_duration.yaml",
			 "steps:\n"
			 "  - name: copy\n"
			 "    batch: SELECT 1, 0\n"
			 "    target_time: soon\n"
			 "  - name: run\n"
			 "    exec: [true]\n"
			 "    timeout: 5 years\n");
	contains(cause, "step \"copy\": target_time 'soon' is not a positive duration", "bad target_time");
	contains(cause, "step \"run\": timeout '5 years' is not a duration",
		 "bad timeout");
	free(cause);

	cause = load_bad("sizes.yaml",
			 "steps:\n"
			 "  - name: copy\n"
			 "    batch: SELECT 1, 0\n"
			 "    batch_size: 50\n"
			 "    min_batch_size: 100\n"
			 "  - name: zero\n"
			 "    batch: SELECT 1, 0\n"
			 "    max_batch_size: 0\n");
	contains(cause, "min_batch_size <= batch_size <= max_batch_size, got 100 <= 50 <= 100000", "sizes out of order");
	contains(cause, "max_batch_size '0' is not a positive integer",
		 "zero size");
	free(cause);

	cause = load_bad("misplaced.yaml",
			 "steps:\n"
			 "  - name: v\n"
			 "    verify:\n"
			 "      expected: SELECT 1\n"
			 "      actual: SELECT 1\n"
			 "    set: [x]\n"
			 "    timeout: 1s\n"
			 "  - name: s\n"
			 "    sql: SELECT 1\n"
			 "    batch_size: 5\n");
	contains(cause, "step \"v\": \"set\" is only allowed on sql steps",
		 "set on verify");
	contains(cause, "step \"v\": \"timeout\" is only allowed on exec, backup, backup_check, restore and restore_drill steps", "timeout on verify");
	contains(cause, "step \"s\": \"batch_size\" is only allowed on batch steps", "batch key on sql");
	free(cause);

	cause = load_bad("one_stmt.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    when: SELECT true; SELECT false\n"
			 "    for_each: SELECT 1; SELECT 2\n"
			 "    sql: SELECT 1\n"
			 "  - name: v\n"
			 "    verify:\n"
			 "      expected: SELECT 1; SELECT 2\n");
	contains(cause, "step \"s\": when must be exactly one statement",
		 "when one statement");
	contains(cause, "step \"s\": for_each must be exactly one statement",
		 "for_each one statement");
	contains(cause, "step \"v\": verify.expected must be exactly one",
		 "verify one statement");
	contains(cause, "step \"v\": verify needs \"actual\"",
		 "verify needs actual");
	free(cause);

	cause = load_bad("bad_sql.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: |\n"
			 "      SELECT 1;\n"
			 "      SELECT 'abc\n");
	contains(cause, "step \"s\": sql: line 2: unterminated quoted string",
		 "SQL lexing error");
	free(cause);

	cause = load_bad("positional.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: SELECT $1\n");
	contains(cause, "positional parameter $1", "positional refused");
	free(cause);

	cause = load_bad("names.yaml",
			 "args:\n"
			 "  - name: schema\n"
			 "  - name: days\n"
			 "  - name: days\n"
			 "  - default: x\n"
			 "steps:\n"
			 "  - name: Bad-Name\n"
			 "    sql: SELECT 1 AS \"a b\"\n"
			 "    set: [\"a b\"]\n"
			 "  - sql: SELECT 1\n");
	contains(cause, "names.yaml:2: key \"args[0]\": arg name 'schema' is a built-in variable", "arg shadows a built-in");
	contains(cause, "names.yaml:4: key \"args[2]\": arg 'days' is declared twice", "duplicate arg");
	contains(cause, "names.yaml:5: key \"args[3]\": the arg has no name",
		 "arg without name");
	contains(cause, "step \"Bad-Name\": step names are [a-z0-9_]+",
		 "bad step name");
	contains(cause, "set: 'a b' is not a variable name", "bad set name");
	contains(cause, "names.yaml:10: step #2: the step has no name",
		 "step without name");
	free(cause);

	cause = load_bad("bad_bool.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: SELECT 1\n"
			 "    transaction: maybe\n");
	contains(cause, "transaction 'maybe' is not true or false",
		 "bad bool");
	free(cause);

	cause = load_bad("no_steps.yaml", "description: nothing to do\n");
	contains(cause, "a job needs at least one step", "no steps");
	free(cause);

	cause = load_bad("wrong_shape.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    exec: {program: x}\n");
	check_where(cause, "wrong_shape.yaml", 3, "wrong shape line");
	contains(cause, "key \"steps[0].exec\": expected a list, found a mapping", "wrong shape key");
	free(cause);

	cause = load_bad("syntax.yaml", "steps:\n  - name: [a\n");
	contains(cause, "syntax.yaml:", "YAML syntax error names the file");
	free(cause);

	cause = load_bad("Bad-Kind.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: SELECT 1\n");
	contains(cause, "Bad-Kind.yaml: kind 'Bad-Kind' (the file's base name) must be [a-z0-9_]+", "bad kind name");
	free(cause);
}

/* clang-format on */

static void test_dir(void)
{
	char *dir = xasprintf("%s/jobs", tmp_dir);
	char *good, *bad, *other, *cause = NULL, *missing;
	struct jobdefs *defs, *again;

	mkdir(dir, 0700);
	defs = jobdefs_load_dir(dir, 1000, &cause);
	ok(defs == NULL, "empty dir refused");
	contains(cause, dir, "empty dir named");
	contains(cause, "no *.yaml job files", "empty dir message");

	missing = xasprintf("%s/nope", tmp_dir);
	defs = jobdefs_load_dir(missing, 1000, &cause);
	ok(defs == NULL, "missing dir refused");
	contains(cause, missing, "missing dir named");
	free(missing);

	good = write_file(dir, "zeta.yaml",
			  "steps:\n"
			  "  - name: s\n"
			  "    sql: SELECT 1\n");
	other = write_file(dir, "alpha.yaml",
			   "steps:\n"
			   "  - name: s\n"
			   "    sql: SELECT 2\n");
	free(write_file(dir, "README.txt", "not a job\n"));
	free(write_file(dir, ".hidden.yaml", "junk: [\n"));
	defs = jobdefs_load_dir(dir, 1000, &cause);
	if (ok(defs != NULL, "dir of good files loads")) {
		is_int(defs->count, 2, "only visible *.yaml files");
		is_str(defs->defs[0].kind, "alpha", "sorted by name");
		is_str(defs->defs[1].kind, "zeta", "sorted by name too");
		ok(jobdefs_find(defs, "zeta") == &defs->defs[1], "find");
		ok(jobdefs_find(defs, "nope") == NULL, "find unknown");
		is_int(defs->refs, 1, "one reference");
		again = jobdefs_ref(defs);
		ok(again == defs, "ref returns the set");
		is_int(defs->refs, 2, "two references");
		jobdefs_unref(again);
		is_int(defs->refs, 1, "unref drops one");
		jobdefs_unref(defs);
	} else {
		printf("# %s\n", cause);
	}

	bad = write_file(dir, "middle.yaml",
			 "steps:\n"
			 "  - name: s\n"
			 "    sql: SELECT :'nope'\n");
	defs = jobdefs_load_dir(dir, 1000, &cause);
	ok(defs == NULL, "dir with a bad file refused");
	contains(cause, "middle.yaml:2: step \"s\": unknown variable 'nope'",
		 "bad file named");
	free(write_file(dir, "worse.yaml", "nothing: here\n"));
	defs = jobdefs_load_dir(dir, 1000, &cause);
	ok(defs == NULL, "dir with two bad files refused");
	contains(cause, "middle.yaml", "first bad file named");
	contains(cause, "\n", "problems on separate lines");
	contains(cause, "worse.yaml", "second bad file named");

	unlink(bad);
	free(bad);
	bad = xasprintf("%s/worse.yaml", dir);
	unlink(bad);
	free(bad);
	unlink(good);
	free(good);
	unlink(other);
	free(other);
	bad = xasprintf("%s/README.txt", dir);
	unlink(bad);
	free(bad);
	bad = xasprintf("%s/.hidden.yaml", dir);
	unlink(bad);
	free(bad);
	rmdir(dir);
	free(dir);
	free(cause);
}

static void test_shipped(void)
{
	const char *top = getenv("top_srcdir");
	char *dir = xasprintf("%s/jobs", top != NULL ? top : "..");
	char *cause = NULL;
	struct jobdefs *defs;

	defs = jobdefs_load_dir(dir, 1000, &cause);
	if (!ok(defs != NULL, "shipped jobs load"))
		printf("# %s\n", cause);
	ok(jobdefs_find(defs, "tenant_stats") != NULL, "tenant_stats shipped");
	ok(jobdefs_find(defs, "vacuum") != NULL &&
		   jobdefs_find(defs, "reindex") != NULL &&
		   jobdefs_find(defs, "backup") != NULL &&
		   jobdefs_find(defs, "restore") != NULL &&
		   jobdefs_find(defs, "drop_tenant") != NULL,
	   "the maintenance kinds are shipped");
	jobdefs_unref(defs);
	free(cause);
	free(dir);
}

/* enqueue_role: given, or by the default rule; checked as a role name
 * (issue 10, finding 3). */
static void test_enqueue_role(void)
{
	const char *top = getenv("top_srcdir");
	char *dir = xasprintf("%s/jobs", top != NULL ? top : "..");
	struct jobdefs *defs = jobdefs_load_dir(dir, 1000, NULL);
	const char *expect[][2] = {
		{ "tenant_stats", "pgtenantd_enqueue" },
		{ "vacuum", "pgtenantd_enqueue" },
		{ "backup", "pgtenantd_enqueue" },
		{ "drop_tenant", "pgtenantd_operate" },
		{ "restore", "pgtenantd_operate" },
		{ "migrate_to_separate_schema", "pgtenantd_operate" },
		{ "create_tenant", "pgtenantd_operate" },
	};
	struct jobdef def;
	char *path, *cause;

	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		const struct jobdef *d = jobdefs_find(defs, expect[i][0]);
		char *label = xasprintf("%s: enqueue_role %s", expect[i][0],
					expect[i][1]);

		is_str(d != NULL ? d->enqueue_role : NULL, expect[i][1], label);
		free(label);
	}
	jobdefs_unref(defs);
	free(dir);

	path = write_file(tmp_dir, "own_role.yaml",
			  "enqueue_role: app_maint\n"
			  "steps:\n  - name: a\n    sql: SELECT 1\n");
	ok(jobdef_load_file(path, 1000, &def, NULL),
	   "enqueue_role: app_maint loads");
	is_str(def.enqueue_role, "app_maint", "... and is kept");
	jobdef_clear(&def);
	unlink(path);
	free(path);

	cause = load_bad("bad_role.yaml",
			 "enqueue_role: \"Robert'); DROP\"\n"
			 "steps:\n  - name: a\n    sql: SELECT 1\n");
	contains(
		cause,
		"bad_role.yaml:1: key \"enqueue_role\": 'Robert'); DROP' is not a role name",
		"a bad enqueue_role names file, line and key");
	free(cause);
}

/* retry, destructive and requires: the safety keys every step may have. */
static void test_safety(void)
{
	struct jobdef def;
	char *cause = NULL, *path;

	path = write_file(tmp_dir, "safe.yaml",
			  "steps:\n"
			  "  - name: check\n"
			  "    retry: false\n"
			  "    sql: SELECT 1\n"
			  "  - name: counts\n"
			  "    verify:\n"
			  "      expected: SELECT 1\n"
			  "      actual: SELECT 1\n"
			  "  - name: flip\n"
			  "    sql: SELECT 2\n"
			  "  - name: wipe\n"
			  "    destructive: true\n"
			  "    sql: SELECT 3\n"
			  "  - name: drop\n"
			  "    destructive: true\n"
			  "    requires: [check, flip]\n"
			  "    sql: SELECT 4\n");
	ok(jobdef_load_file(path, 1000, &def, &cause), "safety keys load");
	if (cause != NULL)
		printf("# %s\n", cause);
	is_int(def.steps[0].retry, 0, "retry: false is kept");
	is_int(def.steps[1].retry, 1, "retry defaults to true");
	is_int(def.steps[3].destructive, 1, "destructive: true is kept");
	is_int(def.steps[3].require_count, 1,
	       "a destructive step requires the earlier verify steps");
	is_int(def.steps[3].requires[0], 1, "namely the verify step");
	is_int(def.steps[4].require_count, 2, "requires names two steps");
	is_int(def.steps[4].requires[0], 0, "the first is check");
	is_int(def.steps[4].requires[1], 2, "the second is flip");
	jobdef_clear(&def);
	unlink(path);
	free(path);

	cause = load_bad("unsafe.yaml", "steps:\n"
					"  - name: wipe\n"
					"    destructive: true\n"
					"    sql: DELETE FROM t\n");
	check_where(cause, "unsafe.yaml", 2,
		    "a destructive step without a verify names its line");
	contains(cause, "must come after a verify step",
		 "and says what is missing");
	free(cause);

	cause = load_bad("later.yaml", "steps:\n"
				       "  - name: wipe\n"
				       "    requires: [check]\n"
				       "    sql: DELETE FROM t\n"
				       "  - name: check\n"
				       "    sql: SELECT 1\n");
	contains(cause, "requires 'check', which is not an earlier step",
		 "requires must name an earlier step");
	free(cause);

	cause = load_bad("retry.yaml", "steps:\n"
				       "  - name: a\n"
				       "    retry: sometimes\n"
				       "    sql: SELECT 1\n");
	contains(cause, "retry 'sometimes' is not true or false",
		 "a bad retry value is named");
	free(cause);
}

/* backup, backup_check and restore steps, and collect. */
static void test_maintenance_steps(void)
{
	struct jobdef def;
	char *cause = NULL, *path;

	path = write_file(tmp_dir, "maint.yaml",
			  "steps:\n"
			  "  - name: each\n"
			  "    for_each: SELECT 'a' AS t\n"
			  "    for_each_vars: [t]\n"
			  "    transaction: false\n"
			  "    sql: SELECT 1\n"
			  "    collect: tables\n"
			  "  - name: dump\n"
			  "    backup: \":schema\"\n"
			  "    timeout: 1h\n"
			  "  - name: find\n"
			  "    backup_check: \":backup_id\"\n"
			  "  - name: put_back\n"
			  "    destructive: true\n"
			  "    requires: [find]\n"
			  "    restore: \":backup_file\"\n"
			  "  - name: after\n"
			  "    sql: SELECT :'backup_sha256', :'backup_size'\n");
	ok(jobdef_load_file(path, 1000, &def, &cause),
	   "backup, backup_check, restore and collect load");
	if (cause != NULL)
		printf("# %s\n", cause);
	is_str(def.steps[0].collect, "tables", "collect names the array");
	is_int(def.steps[1].type, STEP_BACKUP, "backup step");
	is_str(def.steps[1].target, ":schema", "its target word");
	is_int(def.steps[1].timeout_ms, 3600000, "timeout on a backup step");
	is_int(def.steps[2].type, STEP_BACKUP_CHECK, "backup_check step");
	is_int(def.steps[3].type, STEP_RESTORE, "restore step");
	is_int(def.steps[3].require_count, 1, "which requires find");
	jobdef_clear(&def);
	unlink(path);
	free(path);

	cause = load_bad("restore_unsafe.yaml",
			 "steps:\n"
			 "  - name: find\n"
			 "    backup_check: ''\n"
			 "  - name: put_back\n"
			 "    restore: \":backup_file\"\n");
	contains(
		cause,
		"a restore step overwrites a schema: it must be destructive: true",
		"a restore that is not destructive is refused");
	free(cause);

	cause = load_bad("backup_vars.yaml", "steps:\n"
					     "  - name: early\n"
					     "    sql: SELECT :'backup_file'\n"
					     "  - name: dump\n"
					     "    backup: \":nosuch\"\n");
	contains(cause, "unknown variable 'backup_file' in sql",
		 "backup variables exist only after a backup step");
	contains(cause, "unknown variable 'nosuch' in backup",
		 "the target word's variables are checked");
	free(cause);

	cause = load_bad("collect_bad.yaml",
			 "steps:\n"
			 "  - name: a\n"
			 "    sql: SELECT 1\n"
			 "    collect: x\n"
			 "  - name: b\n"
			 "    verify: {expected: SELECT 1, actual: SELECT 1}\n"
			 "    collect: y\n");
	contains(cause, "step \"a\": collect needs for_each",
		 "collect needs for_each");
	contains(cause, "step \"b\": \"collect\" is only allowed on sql steps",
		 "collect only on sql steps");
	free(cause);
}

int main(void)
{
	if (mkdtemp(tmp_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_valid();
	test_errors();
	test_dir();
	test_shipped();
	test_safety();
	test_enqueue_role();
	test_maintenance_steps();
	rmdir(tmp_dir);
	return done_testing();
}
