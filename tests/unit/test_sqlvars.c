/* test_sqlvars.c - the SQL-variable lexer: skipped constructs, statement
 * splitting, parameters and identifiers. */
#include <stdlib.h>
#include <string.h>

#include "sqlvars.h"
#include "unit.h"
#include "util.h"

static const char *const test_values[][2] = {
	{ "tenant_id", "acme-corp" },
	{ "schema", "tenant_acme_corp" },
	{ "odd", "we\"ird" },
	{ "empty", "" },
	{ "n", "42" },
	{ "x", "X" },
	{ "y", "Y" },
};

/* Look a name up in test_values. */
static const char *lookup(const char *name, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < ARRAY_SIZE(test_values); i++) {
		if (strcmp(test_values[i][0], name) == 0)
			return test_values[i][1];
	}
	return NULL;
}

/* Compile text and check that it has one statement whose bound SQL is
 * want_sql and whose parameters, joined with ',', are want_params. */
static void check_one(const char *text, const char *want_sql,
		      const char *want_params, const char *what)
{
	struct sqlvars_script script;
	char *cause = NULL, *sql = NULL, *label;
	const char **values = NULL;
	char params[512] = "";

	label = xasprintf("%s: compiles", what);
	if (!ok(sqlvars_compile(text, &script, &cause), label)) {
		printf("#     %s\n", cause);
		free(cause);
		free(label);
		return;
	}
	free(label);
	label = xasprintf("%s: one statement", what);
	is_int(script.stmt_count, 1, label);
	free(label);
	if (script.stmt_count != 1) {
		sqlvars_script_free(&script);
		return;
	}
	label = xasprintf("%s: binds", what);
	if (ok(sqlvars_bind(&script.stmts[0], lookup, NULL, &sql, &values,
			    &cause),
	       label)) {
		free(label);
		label = xasprintf("%s: sql", what);
		is_str(sql, want_sql, label);
		for (unsigned i = 0; i < script.stmts[0].param_count; i++) {
			if (i > 0)
				strcat(params, ",");
			strcat(params, script.stmts[0].params[i]);
			strcat(params, "=");
			strcat(params, values[i]);
		}
		free(label);
		label = xasprintf("%s: params", what);
		is_str(params, want_params, label);
	} else {
		printf("#     %s\n", cause);
	}
	free(label);
	free(sql);
	free(values);
	free(cause);
	sqlvars_script_free(&script);
}

/* Compile text, expecting failure with a cause containing want. */
static void check_error(const char *text, const char *want, const char *what)
{
	struct sqlvars_script script;
	char *cause = NULL, *label;

	label = xasprintf("%s: refused", what);
	ok(!sqlvars_compile(text, &script, &cause), label);
	free(label);
	label = xasprintf("%s: message", what);
	contains(cause, want, label);
	free(label);
	free(cause);
}

/* Collect variable names into a comma-separated list. */
static bool collect(const char *name, void *arg)
{
	char *list = arg;

	if (*list != '\0')
		strcat(list, ",");
	strcat(list, name);
	return true;
}

/* Stop at the first name. */
static bool stop_first(const char *name, void *arg)
{
	(*(int *)arg)++;
	(void)name;
	return false;
}

static void test_params(void)
{
	check_one("SELECT :'tenant_id'", "SELECT $1", "tenant_id=acme-corp",
		  "quoted param");
	check_one("SELECT :n + 1", "SELECT $1 + 1", "n=42", "bare param");
	check_one("SELECT :x, :'y', :x, :'x', :y", "SELECT $1, $2, $1, $1, $2",
		  "x=X,y=Y", "repeated vars");
	check_one("SELECT :'n'::int", "SELECT $1::int", "n=42",
		  "param with cast");
	check_one("SELECT x::int, y::text[] FROM t",
		  "SELECT x::int, y::text[] FROM t", "", "casts");
	check_one("SELECT :n::bigint", "SELECT $1::bigint", "n=42",
		  "bare param then cast");
	check_one("SELECT a[1:2], a[:3] FROM t", "SELECT a[1:2], a[:3] FROM t",
		  "", "slices with numbers");
	check_one("DO $$BEGIN x := 1; END$$", "DO $$BEGIN x := 1; END$$", "",
		  "assignment in dollar quote");
	check_one("SELECT f(a := 1)", "SELECT f(a := 1)", "", "named arg :=");
	check_one("SELECT a:x, 1:y, \"q\":x", "SELECT a $1, 1 $2, \"q\"$1",
		  "x=X,y=Y", "param right after an identifier or a number");
	check_one("SELECT :'x'abc", "SELECT $1 abc", "x=X",
		  "param followed by a word gets a space");
}

static void test_skipped(void)
{
	check_one("SELECT ':x', 'it''s :y', :'n'",
		  "SELECT ':x', 'it''s :y', $1", "n=42", "plain strings");
	check_one("SELECT E'a\\' :x', e'\\\\', :n",
		  "SELECT E'a\\' :x', e'\\\\', $1", "n=42", "E strings");
	check_one("SELECT 'a\\', :n", "SELECT 'a\\', $1", "n=42",
		  "backslash in a standard string ends nothing");
	check_one("SELECT U&'d\\0061t :x', U&\"d:x\" FROM t",
		  "SELECT U&'d\\0061t :x', U&\"d:x\" FROM t", "",
		  "U& strings and identifiers");
	check_one("SELECT \"col:x\", \"a\"\"b:y\" FROM t",
		  "SELECT \"col:x\", \"a\"\"b:y\" FROM t", "",
		  "quoted identifiers");
	check_one("SELECT 1 -- :x here\n, :n", "SELECT 1 -- :x here\n, $1",
		  "n=42", "line comment");
	check_one("SELECT /* :x /* nested :y */ still :x */ :n",
		  "SELECT /* :x /* nested :y */ still :x */ $1", "n=42",
		  "nested block comment");
	check_one("SELECT $$ :x ; $$, :n", "SELECT $$ :x ; $$, $1", "n=42",
		  "dollar quote");
	check_one("SELECT $fn$ :x $$ ; $ $fn$, :n",
		  "SELECT $fn$ :x $$ ; $ $fn$, $1", "n=42",
		  "tagged dollar quote holding $$");
	check_one("SELECT a$b, :n FROM t", "SELECT a$b, $1 FROM t", "n=42",
		  "dollar inside an identifier");
	check_one("SELECT e$x$, :y", "SELECT e$x$, $1", "y=Y",
		  "identifier ending in dollar is no quote");
	check_one("SELECT B'101', X'ff', N':x'", "SELECT B'101', X'ff', N':x'",
		  "", "bit and national strings");
}

static void test_idents(void)
{
	struct sqlvars_script script;
	char *cause = NULL, *sql = NULL;
	const char **values = NULL;

	check_one("CREATE SCHEMA IF NOT EXISTS :\"schema\"",
		  "CREATE SCHEMA IF NOT EXISTS \"tenant_acme_corp\"", "",
		  "identifier");
	check_one(
		"SELECT count(*) FROM :\"schema\".graph_entities WHERE tenant_id = :'tenant_id'",
		"SELECT count(*) FROM \"tenant_acme_corp\".graph_entities WHERE tenant_id = $1",
		"tenant_id=acme-corp", "identifier and param");
	check_one("DROP TABLE :\"odd\"", "DROP TABLE \"we\"\"ird\"", "",
		  "identifier with a double quote is doubled");
	check_one(":\"schema\"", "\"tenant_acme_corp\"", "",
		  "identifier alone");

	ok(sqlvars_compile("SELECT 1 FROM :\"empty\"", &script, &cause),
	   "empty identifier compiles");
	ok(!sqlvars_bind(&script.stmts[0], lookup, NULL, &sql, &values, &cause),
	   "empty identifier does not bind");
	contains(cause, "empty", "empty identifier message");
	sqlvars_script_free(&script);

	ok(sqlvars_compile("SELECT :'nope', :\"schema\"", &script, &cause),
	   "unknown param compiles");
	ok(!sqlvars_bind(&script.stmts[0], lookup, NULL, &sql, &values, &cause),
	   "unknown param does not bind");
	contains(cause, ":nope has no value", "unknown param message");
	ok(sql == NULL && values == NULL, "nothing returned on failure");
	sqlvars_script_free(&script);

	ok(sqlvars_compile("SELECT 1 FROM :\"nope\"", &script, &cause),
	   "unknown identifier compiles");
	ok(!sqlvars_bind(&script.stmts[0], lookup, NULL, &sql, &values, &cause),
	   "unknown identifier does not bind");
	contains(cause, ":\"nope\" has no value", "unknown identifier message");
	sqlvars_script_free(&script);
	free(cause);
}

static void test_split(void)
{
	struct sqlvars_script script;
	char *cause = NULL, *sql = NULL;
	const char **values = NULL;
	char names[256] = "";
	int calls = 0;
	const char *text =
		"-- leading comment; with a semicolon\n"
		"CREATE TABLE :\"schema\".t (a int);\n"
		"\n"
		";;\n"
		"  INSERT INTO t VALUES (:'x'), (:y); -- trailing\n"
		"SELECT ';', $$;$$ /* ; */,\n"
		"  :'x'\n"
		";\n"
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"
		"BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\n"
		"SELECT (1;2)\n"
		"  -- only a comment at the end\n";

	if (!ok(sqlvars_compile(text, &script, &cause), "script compiles")) {
		printf("#     %s\n", cause);
		return;
	}
	is_int(script.stmt_count, 5, "empty statements dropped");
	if (script.stmt_count != 5) {
		sqlvars_script_free(&script);
		return;
	}
	is_int(script.stmts[0].line, 2, "first statement line");
	is_int(script.stmts[1].line, 5, "second statement line");
	is_int(script.stmts[2].line, 6, "third statement line");
	is_int(script.stmts[3].line, 9, "function statement line");
	is_int(script.stmts[4].line, 11, "last statement line");
	is_int(script.stmts[1].param_count, 2, "per statement params");
	is_int(script.stmts[2].param_count, 1, "numbering restarts");

	ok(sqlvars_bind(&script.stmts[0], lookup, NULL, &sql, &values, &cause),
	   "first binds");
	is_str(sql, "CREATE TABLE \"tenant_acme_corp\".t (a int)",
	       "leading comment dropped, no semicolon");
	free(sql);
	free(values);
	ok(sqlvars_bind(&script.stmts[1], lookup, NULL, &sql, &values, &cause),
	   "second binds");
	is_str(sql, "INSERT INTO t VALUES ($1), ($2)", "trailing comment cut");
	is_str(values[0], "X", "value 1");
	is_str(values[1], "Y", "value 2");
	free(sql);
	free(values);
	ok(sqlvars_bind(&script.stmts[2], lookup, NULL, &sql, &values, &cause),
	   "third binds");
	is_str(sql, "SELECT ';', $$;$$ /* ; */,\n  $1",
	       "semicolons inside constructs do not split");
	free(sql);
	free(values);
	ok(sqlvars_bind(&script.stmts[3], lookup, NULL, &sql, &values, &cause),
	   "function binds");
	contains(sql, "THEN 2 END; END", "BEGIN ATOMIC body kept whole");
	free(sql);
	free(values);
	ok(sqlvars_bind(&script.stmts[4], lookup, NULL, &sql, &values, &cause),
	   "last binds");
	is_str(sql, "SELECT (1;2)", "semicolon inside parentheses");
	free(sql);
	free(values);

	ok(sqlvars_each_var(&script, collect, names), "each_var runs through");
	is_str(names, "schema,x,y,x", "each_var names");
	ok(!sqlvars_each_var(&script, stop_first, &calls), "each_var stops");
	is_int(calls, 1, "each_var stops at once");
	sqlvars_script_free(&script);
	is_int(script.stmt_count, 0, "free empties the script");

	ok(sqlvars_compile(" ; -- nothing\n /* at all */ ;", &script, &cause),
	   "blank script compiles");
	is_int(script.stmt_count, 0, "blank script has no statements");
	sqlvars_script_free(&script);
	ok(sqlvars_compile("", &script, &cause), "empty text compiles");
	is_int(script.stmt_count, 0, "empty text has no statements");
	sqlvars_script_free(&script);
	free(cause);
}

static void test_errors(void)
{
	check_error("SELECT 1;\nSELECT 'abc",
		    "line 2: unterminated quoted string",
		    "unterminated string");
	check_error("SELECT E'abc\\'", "line 1: unterminated E'' string",
		    "unterminated E string");
	check_error("\n\nSELECT \"abc",
		    "line 3: unterminated quoted identifier",
		    "unterminated identifier");
	check_error("SELECT 1 /* a /* b */\n",
		    "line 1: unterminated /* comment",
		    "unterminated nested comment");
	check_error("SELECT $q$ abc $$\n",
		    "line 1: unterminated dollar quote $q$",
		    "unterminated dollar quote");
	check_error("SELECT\n$1",
		    "line 2: positional parameter $1 is not allowed",
		    "positional param refused");
	check_error("SELECT :'' ", "variable :'' has an empty name",
		    "empty variable name");
	check_error("SELECT :\"\"", "empty name", "empty identifier name");
	check_error("SELECT :'abc", "unterminated variable",
		    "unterminated variable");
	check_error("SELECT :'a b'", "bad variable name", "bad variable name");
	check_error("SELECT :\"9x\"", "bad variable name",
		    "variable name starting with a digit");
}

static void test_words(void)
{
	char *cause = NULL, *word;
	char names[256] = "";

	word = sqlvars_expand_word("--schema=:schema", lookup, NULL, &cause);
	is_str(word, "--schema=tenant_acme_corp", "word with :name");
	free(word);
	word = sqlvars_expand_word(":'x':\"y\"-:n", lookup, NULL, &cause);
	is_str(word, "XY-42", "quoted forms as plain text");
	free(word);
	word = sqlvars_expand_word("postgres://h:5432/db a::b :", lookup, NULL,
				   &cause);
	is_str(word, "postgres://h:5432/db a::b :", "colons left alone");
	free(word);
	word = sqlvars_expand_word("--x=:odd", lookup, NULL, &cause);
	is_str(word, "--x=we\"ird", "no quoting in words");
	free(word);
	word = sqlvars_expand_word("-f :'x", lookup, NULL, &cause);
	is_str(word, "-f :'x", "unterminated quote is plain text");
	free(word);
	word = sqlvars_expand_word("--file=:nope.dump", lookup, NULL, &cause);
	ok(word == NULL, "unknown variable in word");
	contains(cause, ":nope has no value", "unknown word variable message");
	ok(sqlvars_word_each_var("-d :\"schema\" :x:y::z", collect, names),
	   "word_each_var runs through");
	is_str(names, "schema,x,y", "word_each_var names");
	free(cause);
}

int main(void)
{
	test_params();
	test_skipped();
	test_idents();
	test_split();
	test_errors();
	test_words();
	return done_testing();
}
