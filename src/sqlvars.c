/* sqlvars.c - psql-style variables in job SQL, compiled to bound parameters.
 *
 * The lexer follows PostgreSQL's scanner closely enough to know where
 * string literals, quoted identifiers, comments and dollar quotes begin and
 * end, so that a ':' inside them is never taken for a variable and a ';'
 * inside them never ends a statement. */
#include "sqlvars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tenant.h"
#include "util.h"

/* A growing string. */
struct sqlvars_buf {
	char *data;
	size_t len;
	size_t alloc;
};

/* The state of one compilation. */
struct sqlvars_lexer {
	const char *text;
	size_t pos;
	size_t line_pos; /* offset whose line is line_at */
	unsigned line_at;

	struct sqlvars_script *out;

	/* the statement being built */
	struct sqlvars_buf buf; /* the current literal piece */
	size_t mark;		/* buf length at the end of the last token */
	struct sqlvars_piece *pieces;
	unsigned piece_count;
	char **params;
	unsigned param_count;
	bool has_token;
	unsigned stmt_line;
	int paren_depth;
	int begin_depth;      /* BEGIN ATOMIC .. END of a function body */
	unsigned ident_count; /* identifiers seen in the statement */
	char idents[4];	      /* first letters of CREATE OR REPLACE .. */
};

/* Append n bytes to a buffer. */
static void buf_add(struct sqlvars_buf *buf, const char *s, size_t n)
{
	if (buf->len + n + 1 > buf->alloc) {
		buf->alloc = buf->alloc ? buf->alloc * 2 : 128;
		while (buf->len + n + 1 > buf->alloc)
			buf->alloc *= 2;
		buf->data = xrealloc(buf->data, buf->alloc);
	}
	memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

/* Append a string to a buffer. */
static void buf_adds(struct sqlvars_buf *buf, const char *s)
{
	buf_add(buf, s, strlen(s));
}

/* True for a character that may start a name: [A-Za-z_]. */
static bool name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* True for a character that may continue a name: [A-Za-z0-9_]. */
static bool name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

/* True for a character of an SQL identifier or keyword (with '$' and the
 * bytes of non-ASCII letters, as PostgreSQL's scanner has them). */
static bool ident_char(char c)
{
	return name_char(c) || c == '$' || (unsigned char)c >= 0x80;
}

/* True if s[0..n) is a variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || !name_start(s[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (!name_char(s[i]))
			return false;
	}
	return true;
}

/* 1-based line of offset pos in the text (pos never moves backwards much,
 * so the count continues from the last answer). */
static unsigned lex_line(struct sqlvars_lexer *lx, size_t pos)
{
	if (pos < lx->line_pos) {
		lx->line_pos = 0;
		lx->line_at = 1;
	}
	for (; lx->line_pos < pos; lx->line_pos++) {
		if (lx->text[lx->line_pos] == '\n')
			lx->line_at++;
	}
	return lx->line_at;
}

/* Start a token at the current position: the statement is not empty. */
static void lex_token_start(struct sqlvars_lexer *lx)
{
	if (!lx->has_token) {
		lx->has_token = true;
		lx->stmt_line = lex_line(lx, lx->pos);
	}
}

/* Copy source bytes [from, lx->pos) into the statement. */
static void lex_copy(struct sqlvars_lexer *lx, size_t from)
{
	if (lx->has_token)
		buf_add(&lx->buf, lx->text + from, lx->pos - from);
}

/* Copy the token [from, lx->pos) and mark the statement's end after it. */
static void lex_copy_token(struct sqlvars_lexer *lx, size_t from)
{
	lex_copy(lx, from);
	lx->mark = lx->buf.len;
}

/* Close the current literal piece (up to the last token) if it has text. */
static void lex_flush_text(struct sqlvars_lexer *lx, bool to_mark)
{
	struct sqlvars_piece *piece;

	if (to_mark) {
		lx->buf.len = lx->mark;
		if (lx->buf.data != NULL)
			lx->buf.data[lx->buf.len] = '\0';
	}
	if (lx->buf.len == 0)
		return;
	lx->pieces = xrealloc(lx->pieces,
			      (lx->piece_count + 1) * sizeof(*lx->pieces));
	piece = &lx->pieces[lx->piece_count++];
	piece->text = xstrndup(lx->buf.data, lx->buf.len);
	piece->ident_var = NULL;
	lx->buf.len = 0;
	lx->mark = 0;
}

/* Free the pieces and params of the statement being built. */
static void lex_stmt_reset(struct sqlvars_lexer *lx)
{
	for (unsigned i = 0; i < lx->piece_count; i++) {
		free(lx->pieces[i].text);
		free(lx->pieces[i].ident_var);
	}
	free(lx->pieces);
	for (unsigned i = 0; i < lx->param_count; i++)
		free(lx->params[i]);
	free(lx->params);
	lx->pieces = NULL;
	lx->piece_count = 0;
	lx->params = NULL;
	lx->param_count = 0;
	lx->buf.len = 0;
	lx->mark = 0;
	lx->has_token = false;
	lx->paren_depth = 0;
	lx->begin_depth = 0;
	lx->ident_count = 0;
	memset(lx->idents, 0, sizeof(lx->idents));
}

/* Finish the statement being built and add it to the script, unless it
 * is empty. */
static void lex_stmt_end(struct sqlvars_lexer *lx)
{
	struct sqlvars_script *out = lx->out;
	struct sqlvars_stmt *stmt;

	if (!lx->has_token) {
		lex_stmt_reset(lx);
		return;
	}
	lex_flush_text(lx, true);
	out->stmts = xrealloc(out->stmts,
			      (out->stmt_count + 1) * sizeof(*out->stmts));
	stmt = &out->stmts[out->stmt_count++];
	stmt->pieces = lx->pieces;
	stmt->piece_count = lx->piece_count;
	stmt->params = lx->params;
	stmt->param_count = lx->param_count;
	stmt->line = lx->stmt_line;
	lx->pieces = NULL;
	lx->piece_count = 0;
	lx->params = NULL;
	lx->param_count = 0;
	lex_stmt_reset(lx);
}

/* Emit a :'name' or :name variable as its $n parameter. */
static void lex_emit_param(struct sqlvars_lexer *lx, const char *name,
			   size_t len)
{
	unsigned n;
	char num[16];

	for (n = 0; n < lx->param_count; n++) {
		if (strlen(lx->params[n]) == len &&
		    memcmp(lx->params[n], name, len) == 0)
			break;
	}
	if (n == lx->param_count) {
		size_t size = (lx->param_count + 1) * sizeof(*lx->params);

		lx->params = xrealloc(lx->params, size);
		lx->params[lx->param_count++] = xstrndup(name, len);
	}
	snprintf(num, sizeof(num), "$%u", n + 1);
	/* "a:x" must not become the identifier "a$1". */
	if (lx->buf.len > 0 && ident_char(lx->buf.data[lx->buf.len - 1]))
		buf_adds(&lx->buf, " ");
	buf_adds(&lx->buf, num);
	if (ident_char(lx->text[lx->pos]))
		buf_adds(&lx->buf, " ");
	lx->mark = lx->buf.len;
}

/* Emit a :"name" variable as an identifier piece of its own. */
static void lex_emit_ident(struct sqlvars_lexer *lx, const char *name,
			   size_t len)
{
	struct sqlvars_piece *piece;

	lex_flush_text(lx, false);
	lx->pieces = xrealloc(lx->pieces,
			      (lx->piece_count + 1) * sizeof(*lx->pieces));
	piece = &lx->pieces[lx->piece_count++];
	piece->text = NULL;
	piece->ident_var = xstrndup(name, len);
}

/* Skip a quoted run that ends at an unescaped quote character q; doubled
 * quotes stand for one, and with backslashes true a backslash escapes the
 * next byte. lx->pos is on the opening quote. */
static bool lex_skip_quoted(struct sqlvars_lexer *lx, char q, bool backslashes,
			    const char *what, char **cause)
{
	size_t start = lx->pos;
	const char *t = lx->text;

	for (lx->pos++; t[lx->pos] != '\0'; lx->pos++) {
		if (backslashes && t[lx->pos] == '\\' && t[lx->pos + 1] != '\0')
			lx->pos++;
		else if (t[lx->pos] == q && t[lx->pos + 1] == q)
			lx->pos++;
		else if (t[lx->pos] == q) {
			lx->pos++;
			return true;
		}
	}
	return set_cause(cause, "line %u: unterminated %s", lex_line(lx, start),
			 what);
}

/* Skip a block comment, nested as PostgreSQL nests them; lx->pos is on
 * the opening slash. */
static bool lex_skip_block_comment(struct sqlvars_lexer *lx, char **cause)
{
	size_t start = lx->pos;
	const char *t = lx->text;
	int depth = 0;

	while (t[lx->pos] != '\0') {
		if (t[lx->pos] == '/' && t[lx->pos + 1] == '*') {
			depth++;
			lx->pos += 2;
		} else if (t[lx->pos] == '*' && t[lx->pos + 1] == '/') {
			lx->pos += 2;
			if (--depth == 0)
				return true;
		} else {
			lx->pos++;
		}
	}
	return set_cause(cause, "line %u: unterminated /* comment",
			 lex_line(lx, start));
}

/* Length of a dollar-quote delimiter ($$ or $tag$) at p, or 0. */
static size_t dollar_delim_len(const char *p)
{
	size_t n = 1;

	if (p[0] != '$')
		return 0;
	if (p[1] == '$')
		return 2;
	if (!name_start(p[1]) && (unsigned char)p[1] < 0x80)
		return 0;
	while (name_char(p[n]) || (unsigned char)p[n] >= 0x80)
		n++;
	return p[n] == '$' ? n + 1 : 0;
}

/* Skip a dollar-quoted string whose opening delimiter of len bytes is at
 * lx->pos. */
static bool lex_skip_dollar(struct sqlvars_lexer *lx, size_t len, char **cause)
{
	const char *delim = lx->text + lx->pos;
	const char *end;
	size_t start = lx->pos;

	end = strstr(delim + len, "$");
	while (end != NULL && strncmp(end, delim, len) != 0)
		end = strchr(end + 1, '$');
	if (end == NULL) {
		return set_cause(cause,
				 "line %u: unterminated dollar quote %.*s",
				 lex_line(lx, start), (int)len, delim);
	}
	lx->pos = (size_t)(end - lx->text) + len;
	return true;
}

/* Track CREATE [OR REPLACE] FUNCTION|PROCEDURE .. BEGIN ATOMIC .. END the
 * way psql does, so that the ';' inside such a body do not split it. */
static void lex_track_ident(struct sqlvars_lexer *lx, const char *word,
			    size_t len)
{
	static const char *const lead[] = {
		"create", "function", "procedure", "or", "replace",
	};
	const char *id = lx->idents;

	if (lx->ident_count < sizeof(lx->idents)) {
		for (size_t i = 0; i < ARRAY_SIZE(lead); i++) {
			if (strlen(lead[i]) == len &&
			    strncasecmp(word, lead[i], len) == 0)
				lx->idents[lx->ident_count] = lead[i][0];
		}
	}
	lx->ident_count++;
	if (id[0] != 'c' || lx->paren_depth != 0)
		return;
	if (!(id[1] == 'f' || id[1] == 'p' ||
	      (id[1] == 'o' && id[2] == 'r' && (id[3] == 'f' || id[3] == 'p'))))
		return;
	if (len == 5 && strncasecmp(word, "begin", 5) == 0)
		lx->begin_depth++;
	else if (len == 4 && strncasecmp(word, "case", 4) == 0) {
		if (lx->begin_depth > 0)
			lx->begin_depth++;
	} else if (len == 3 && strncasecmp(word, "end", 3) == 0) {
		if (lx->begin_depth > 0)
			lx->begin_depth--;
	}
}

/* Handle a ':' at lx->pos: a variable, a cast, ':=' or a plain colon. */
static bool lex_colon(struct sqlvars_lexer *lx, char **cause)
{
	const char *t = lx->text;
	size_t start = lx->pos, name, len;
	char q = t[lx->pos + 1];

	if (q == ':' || q == '=') {
		lx->pos += 2;
		lex_copy_token(lx, start);
		return true;
	}
	if (q == '\'' || q == '"') {
		name = lx->pos + 2;
		len = 0;
		while (t[name + len] != '\0' && t[name + len] != q &&
		       t[name + len] != '\n')
			len++;
		if (t[name + len] != q) {
			return set_cause(
				cause, "line %u: unterminated variable :%c%.*s",
				lex_line(lx, start), q, (int)len, t + name);
		}
		if (len == 0) {
			return set_cause(
				cause,
				"line %u: variable :%c%c has an empty name",
				lex_line(lx, start), q, q);
		}
		if (!valid_name(t + name, len)) {
			return set_cause(
				cause,
				"line %u: bad variable name :%c%.*s%c (names are [A-Za-z_][A-Za-z0-9_]*)",
				lex_line(lx, start), q, (int)len, t + name, q);
		}
		lex_token_start(lx);
		lx->pos = name + len + 1;
		if (q == '"')
			lex_emit_ident(lx, t + name, len);
		else
			lex_emit_param(lx, t + name, len);
		return true;
	}
	if (name_start(q)) {
		name = lx->pos + 1;
		len = 0;
		while (name_char(t[name + len]))
			len++;
		lex_token_start(lx);
		lx->pos = name + len;
		lex_emit_param(lx, t + name, len);
		return true;
	}
	lx->pos++;
	lex_copy_token(lx, start);
	return true;
}

/* Handle the token at lx->pos; false with cause on a lexing error. */
static bool lex_token(struct sqlvars_lexer *lx, char **cause)
{
	const char *t = lx->text;
	size_t start = lx->pos;
	size_t len;
	char c = t[lx->pos];

	if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v') {
		lx->pos++;
		lex_copy(lx, start);
		return true;
	}
	if (c == '-' && t[lx->pos + 1] == '-') {
		while (t[lx->pos] != '\0' && t[lx->pos] != '\n')
			lx->pos++;
		lex_copy(lx, start);
		return true;
	}
	if (c == '/' && t[lx->pos + 1] == '*') {
		if (!lex_skip_block_comment(lx, cause))
			return false;
		lex_copy(lx, start);
		return true;
	}
	if (c == ';' && lx->paren_depth == 0 && lx->begin_depth == 0) {
		lx->pos++;
		lex_stmt_end(lx);
		return true;
	}
	if (c == ':')
		return lex_colon(lx, cause);

	lex_token_start(lx);
	if (c == '\'') {
		if (!lex_skip_quoted(lx, '\'', false, "quoted string", cause))
			return false;
	} else if (c == '"') {
		if (!lex_skip_quoted(lx, '"', false, "quoted identifier",
				     cause))
			return false;
	} else if ((c == 'e' || c == 'E') && t[lx->pos + 1] == '\'') {
		lx->pos++;
		if (!lex_skip_quoted(lx, '\'', true, "E'' string", cause))
			return false;
	} else if ((c == 'u' || c == 'U') && t[lx->pos + 1] == '&' &&
		   (t[lx->pos + 2] == '\'' || t[lx->pos + 2] == '"')) {
		const char *what = t[lx->pos + 2] == '\'' ? "U&'' string" :
							    "U&\"\" identifier";

		lx->pos += 2;
		if (!lex_skip_quoted(lx, t[lx->pos], false, what, cause))
			return false;
	} else if (c == '$' && t[lx->pos + 1] >= '0' && t[lx->pos + 1] <= '9') {
		len = 1;
		while (t[lx->pos + len] >= '0' && t[lx->pos + len] <= '9')
			len++;
		return set_cause(
			cause,
			"line %u: positional parameter %.*s is not allowed in job SQL; use :name variables",
			lex_line(lx, start), (int)len, t + lx->pos);
	} else if ((len = dollar_delim_len(t + lx->pos)) > 0) {
		if (!lex_skip_dollar(lx, len, cause))
			return false;
	} else if (name_start(c) || (unsigned char)c >= 0x80) {
		while (ident_char(t[lx->pos]))
			lx->pos++;
		lex_track_ident(lx, t + start, lx->pos - start);
	} else if (c >= '0' && c <= '9') {
		while (name_char(t[lx->pos]) || t[lx->pos] == '.')
			lx->pos++;
	} else {
		if (c == '(')
			lx->paren_depth++;
		else if (c == ')' && lx->paren_depth > 0)
			lx->paren_depth--;
		lx->pos++;
	}
	lex_copy_token(lx, start);
	return true;
}

/* Compile text into its statements. */
bool sqlvars_compile(const char *text, struct sqlvars_script *out, char **cause)
{
	struct sqlvars_lexer lx;
	bool good = true;

	memset(out, 0, sizeof(*out));
	memset(&lx, 0, sizeof(lx));
	lx.text = text != NULL ? text : "";
	lx.line_at = 1;
	lx.out = out;
	while (good && lx.text[lx.pos] != '\0')
		good = lex_token(&lx, cause);
	if (good)
		lex_stmt_end(&lx);
	lex_stmt_reset(&lx);
	free(lx.buf.data);
	if (!good)
		sqlvars_script_free(out);
	return good;
}

void sqlvars_script_free(struct sqlvars_script *script)
{
	if (script == NULL)
		return;
	for (unsigned i = 0; i < script->stmt_count; i++) {
		struct sqlvars_stmt *stmt = &script->stmts[i];

		for (unsigned j = 0; j < stmt->piece_count; j++) {
			free(stmt->pieces[j].text);
			free(stmt->pieces[j].ident_var);
		}
		free(stmt->pieces);
		for (unsigned j = 0; j < stmt->param_count; j++)
			free(stmt->params[j]);
		free(stmt->params);
	}
	free(script->stmts);
	script->stmts = NULL;
	script->stmt_count = 0;
}

/* Call fn for every variable of every statement. */
bool sqlvars_each_var(const struct sqlvars_script *script,
		      bool (*fn)(const char *name, void *arg), void *arg)
{
	for (unsigned i = 0; i < script->stmt_count; i++) {
		const struct sqlvars_stmt *stmt = &script->stmts[i];

		for (unsigned j = 0; j < stmt->piece_count; j++) {
			if (stmt->pieces[j].ident_var != NULL &&
			    !fn(stmt->pieces[j].ident_var, arg))
				return false;
		}
		for (unsigned j = 0; j < stmt->param_count; j++) {
			if (!fn(stmt->params[j], arg))
				return false;
		}
	}
	return true;
}

/* Build the SQL text and parameter values of one statement. */
bool sqlvars_bind(const struct sqlvars_stmt *stmt, sqlvars_lookup_fn lookup,
		  void *arg, char **sql, const char ***values, char **cause)
{
	struct sqlvars_buf buf = { 0 };
	const char **vals;
	const char *value;
	char *quoted;

	*sql = NULL;
	*values = NULL;
	vals = xcalloc(stmt->param_count + 1, sizeof(*vals));
	for (unsigned i = 0; i < stmt->param_count; i++) {
		vals[i] = lookup(stmt->params[i], arg);
		if (vals[i] == NULL) {
			free(vals);
			return set_cause(cause, "variable :%s has no value",
					 stmt->params[i]);
		}
	}
	buf_adds(&buf, "");
	for (unsigned i = 0; i < stmt->piece_count; i++) {
		const struct sqlvars_piece *piece = &stmt->pieces[i];

		if (piece->ident_var == NULL) {
			buf_adds(&buf, piece->text);
			continue;
		}
		value = lookup(piece->ident_var, arg);
		if (value == NULL || *value == '\0') {
			free(buf.data);
			free(vals);
			return set_cause(
				cause, "variable :\"%s\" %s", piece->ident_var,
				value == NULL ?
					"has no value" :
					"is empty and cannot be an identifier");
		}
		quoted = sql_quote_ident(value);
		buf_adds(&buf, quoted);
		free(quoted);
	}
	*sql = buf.data;
	*values = vals;
	return true;
}

/* Find the next variable in an exec word at or after p: its start, its
 * name and the end of its syntax. False if there is none. */
static bool word_next_var(const char *p, const char **start, const char **name,
			  size_t *len, const char **end)
{
	for (; *p != '\0'; p++) {
		const char *n;
		size_t l = 0;

		if (p[0] != ':')
			continue;
		if (p[1] == ':') {
			p++;
			continue;
		}
		if (p[1] == '\'' || p[1] == '"') {
			n = p + 2;
			while (name_char(n[l]))
				l++;
			if (n[l] != p[1] || !valid_name(n, l))
				continue;
			*end = n + l + 1;
		} else if (name_start(p[1])) {
			n = p + 1;
			while (name_char(n[l]))
				l++;
			*end = n + l;
		} else {
			continue;
		}
		*start = p;
		*name = n;
		*len = l;
		return true;
	}
	return false;
}

/* Substitute the variables of an exec argv word as plain text. */
char *sqlvars_expand_word(const char *word, sqlvars_lookup_fn lookup, void *arg,
			  char **cause)
{
	struct sqlvars_buf buf = { 0 };
	const char *p = word, *start, *name, *end, *value;
	size_t len;
	char *copy;

	buf_adds(&buf, "");
	while (word_next_var(p, &start, &name, &len, &end)) {
		buf_add(&buf, p, (size_t)(start - p));
		copy = xstrndup(name, len);
		value = lookup(copy, arg);
		if (value == NULL) {
			set_cause(cause, "variable :%s has no value", copy);
			free(copy);
			free(buf.data);
			return NULL;
		}
		free(copy);
		buf_adds(&buf, value);
		p = end;
	}
	buf_adds(&buf, p);
	return buf.data;
}

/* Call fn for each variable name in an exec argv word. */
bool sqlvars_word_each_var(const char *word,
			   bool (*fn)(const char *name, void *arg), void *arg)
{
	const char *p = word, *start, *name, *end;
	size_t len;
	char *copy;
	bool more;

	while (word_next_var(p, &start, &name, &len, &end)) {
		copy = xstrndup(name, len);
		more = fn(copy, arg);
		free(copy);
		if (!more)
			return false;
		p = end;
	}
	return true;
}
