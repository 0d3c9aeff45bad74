/* fuzz_sqlvars.c - fuzz target: job SQL through the variable lexer
 * (sqlvars_compile), then every statement through sqlvars_bind, and the
 * text as an exec word through sqlvars_expand_word. The values are
 * hostile; a value must never reach the SQL text except as a quoted
 * identifier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sqlvars.h"
#include "util.h"

/* A value that would break out of a string literal or an identifier if it
 * were pasted into SQL. */
#define HOSTILE "h\"x');DROP TABLE t;--"

/* Variables named u* are unknown, e* are empty, the rest are HOSTILE. */
static const char *lookup(const char *name, void *arg)
{
	(void)arg;
	if (name[0] == 'u')
		return NULL;
	if (name[0] == 'e')
		return "";
	return HOSTILE;
}

/* Whether the statement can bind: every variable known, no empty
 * identifier. */
static bool bindable(const struct sqlvars_stmt *stmt)
{
	for (unsigned i = 0; i < stmt->param_count; i++) {
		if (lookup(stmt->params[i], NULL) == NULL)
			return false;
	}
	for (unsigned i = 0; i < stmt->piece_count; i++) {
		const char *v;

		if (stmt->pieces[i].ident_var == NULL)
			continue;
		v = lookup(stmt->pieces[i].ident_var, NULL);
		if (v == NULL || *v == '\0')
			return false;
	}
	return true;
}

/* Count the variables that sqlvars_each_var visits. */
static bool count_var(const char *name, void *arg)
{
	FUZZ_ASSERT(name != NULL && name[0] != '\0', "a variable has a name");
	(*(unsigned *)arg)++;
	return true;
}

/* Check one compiled statement and bind it. */
static void check_stmt(const char *text, const struct sqlvars_stmt *stmt,
		       unsigned prev_line)
{
	const char **values = NULL;
	char *sql = NULL, *cause = NULL;
	char num[16];

	FUZZ_ASSERT(stmt->line >= 1 && stmt->line >= prev_line,
		    "statement lines start at 1 and do not go back");
	for (unsigned i = 0; i < stmt->piece_count; i++)
		FUZZ_ASSERT((stmt->pieces[i].text == NULL) !=
				    (stmt->pieces[i].ident_var == NULL),
			    "a piece is text or an identifier");
	if (!sqlvars_bind(stmt, lookup, NULL, &sql, &values, &cause)) {
		FUZZ_ASSERT(!bindable(stmt), "a bindable statement binds");
		FUZZ_ASSERT(cause != NULL, "a failed bind has a cause");
		free(cause);
		return;
	}
	FUZZ_ASSERT(bindable(stmt), "an unbindable statement is refused");
	FUZZ_ASSERT(sql != NULL && values != NULL, "bind gives sql and values");
	for (unsigned i = 0; i < stmt->param_count; i++) {
		FUZZ_ASSERT(values[i] != NULL, "every parameter has a value");
		snprintf(num, sizeof(num), "$%u", i + 1);
		FUZZ_ASSERT(strstr(sql, num) != NULL,
			    "every parameter is used in the SQL");
	}
	if (strstr(text, HOSTILE) == NULL)
		FUZZ_ASSERT(strstr(sql, HOSTILE) == NULL,
			    "a value is never pasted into the SQL as it is");
	free(sql);
	free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqlvars_script script;
	char *text, *cause = NULL, *word;
	unsigned nvars = 0, nexpected = 0, prev_line = 1;

	text = xstrndup((const char *)data, size);
	if (sqlvars_compile(text, &script, &cause)) {
		FUZZ_ASSERT(cause == NULL, "no cause on success");
		for (unsigned i = 0; i < script.stmt_count; i++) {
			check_stmt(text, &script.stmts[i], prev_line);
			prev_line = script.stmts[i].line;
			nexpected += script.stmts[i].param_count;
			for (unsigned j = 0; j < script.stmts[i].piece_count;
			     j++)
				nexpected +=
					script.stmts[i].pieces[j].ident_var !=
					NULL;
		}
		FUZZ_ASSERT(sqlvars_each_var(&script, count_var, &nvars),
			    "each_var visits every variable");
		FUZZ_ASSERT(nvars == nexpected,
			    "each_var visits each parameter and identifier");
		sqlvars_script_free(&script);
	} else {
		FUZZ_ASSERT(cause != NULL && cause[0] != '\0',
			    "a refused text has a cause");
		FUZZ_ASSERT(strncmp(cause, "line ", 5) == 0,
			    "the cause names the line");
		free(cause);
		cause = NULL;
	}

	nvars = 0;
	FUZZ_ASSERT(sqlvars_word_each_var(text, count_var, &nvars),
		    "word_each_var visits every variable");
	word = sqlvars_expand_word(text, lookup, NULL, &cause);
	if (word != NULL) {
		FUZZ_ASSERT(cause == NULL, "no cause on success");
		free(word);
	} else {
		FUZZ_ASSERT(cause != NULL && nvars > 0,
			    "only an unknown variable fails a word");
		free(cause);
	}
	free(text);
	return 0;
}
