/* sqlvars.h - psql-style variables in job SQL, compiled to bound parameters.
 *
 *   :"name"  the value as a quoted identifier, spliced at run time
 *            (sql_quote_ident; never unquoted)
 *   :'name'  a bound parameter $n (text)
 *   :name    a bound parameter $n
 *
 * The lexer skips string literals ('..', E'..' with backslash escapes),
 * quoted identifiers, -- and nested block comments, dollar quotes
 * ($$..$$, $tag$..$tag$) and :: casts. It also splits a text into its
 * top-level statements at ';'. */
#ifndef PGT_SQLVARS_H
#define PGT_SQLVARS_H

#include <stdbool.h>

#include "util.h"

/* One piece of a compiled statement: literal text, or an identifier
 * variable to quote and splice at run time. */
struct sqlvars_piece {
	char *text;	 /* literal SQL (with $n already in it), or NULL */
	char *ident_var; /* variable name for :"name", or NULL */
};

/* A single statement, ready to bind. */
struct sqlvars_stmt {
	struct sqlvars_piece *pieces;
	unsigned piece_count;
	char **params; /* variable name of $1, $2, ... */
	unsigned param_count;
	unsigned line; /* 1-based line of the statement in the text */
};

/* Every variable name the statements use, identifier or parameter. */
struct sqlvars_script {
	struct sqlvars_stmt *stmts;
	unsigned stmt_count;
};

/* Compile text into its statements. Empty statements are dropped. False
 * with cause on an unterminated string, quoted identifier, comment or dollar
 * quote, or on a variable with an empty name (the cause names the line). */
bool sqlvars_compile(const char *text, struct sqlvars_script *out, char **cause)
	MUST_CHECK;

void sqlvars_script_free(struct sqlvars_script *script);

/* Call fn for each variable name used by the script (repeats possible).
 * Stops and returns false as soon as fn returns false. */
bool sqlvars_each_var(const struct sqlvars_script *script,
		      bool (*fn)(const char *name, void *arg), void *arg);

/* Lookup of a variable's value at run time; NULL means unknown. */
typedef const char *(*sqlvars_lookup_fn)(const char *name, void *arg);

/* Build the SQL text of stmt (identifiers quoted and spliced) and the
 * parameter values in $n order. *values gets an array of param_count
 * pointers owned by the lookup's storage (not copied); free *sql and
 * *values with free(). False with cause if a variable has no value or an
 * identifier value is empty. */
bool sqlvars_bind(const struct sqlvars_stmt *stmt, sqlvars_lookup_fn lookup,
		  void *arg, char **sql, const char ***values, char **cause)
	MUST_CHECK;

/* Substitute :name (and :'name', :"name", all as plain text) in one argv
 * word of an exec step. Returns a new string, or NULL with cause if a
 * variable is unknown. No quoting: each word is one argv entry. */
char *sqlvars_expand_word(const char *word, sqlvars_lookup_fn lookup, void *arg,
			  char **cause);

/* Call fn for each variable name in an exec argv word. */
bool sqlvars_word_each_var(const char *word,
			   bool (*fn)(const char *name, void *arg), void *arg);

#endif
