/* table.c - plain-text tables for people, from strings or JSON arrays, and
 * text made safe for a terminal. */
#include "table.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct table {
	unsigned ncols;
	unsigned nrows;
	unsigned alloc;
	char **headers;
	char **cells; /* nrows rows of ncols cells */
};

/* Characters in UTF-8 text: every byte that does not continue one. */
static size_t text_width(const char *text)
{
	size_t width = 0;

	for (; *text != '\0'; text++) {
		if (((unsigned char)*text & 0xc0) != 0x80)
			width++;
	}
	return width;
}

/* The length of the valid UTF-8 sequence at s (1 to 4) and its code
 * point; 0 if s does not start one (a stray continuation byte, an overlong
 * form, a surrogate, past U+10FFFF, or cut short). */
static size_t utf8_decode(const unsigned char *s, unsigned *cp)
{
	size_t n;
	unsigned v, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, v = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3, v = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, v = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* True for the code points above 0x7f that a terminal acts on or that
 * reorder what is shown: C1 controls and bidirectional formatting. */
static bool is_hidden_control(unsigned cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

char *table_escape(const char *text, bool keep_layout)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i = 0, n;
	char *out = xmalloc(len * 6 + 1), *p = out;
	unsigned cp;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x20 || c == 0x7f) {
			if (keep_layout && (c == '\n' || c == '\t'))
				*p++ = (char)c;
			else
				p += sprintf(p, "\\x%02x", c);
			i++;
			continue;
		}
		n = utf8_decode(s + i, &cp);
		if (n == 0) {
			p += sprintf(p, "\\x%02x", c);
			i++;
		} else if (is_hidden_control(cp)) {
			p += sprintf(p, "\\u%04x", cp);
			i += n;
		} else {
			memcpy(p, s + i, n);
			p += n;
			i += n;
		}
	}
	*p = '\0';
	return out;
}

char *table_json_escape(const char *json)
{
	const unsigned char *s = (const unsigned char *)json;
	size_t len = strlen(json), i = 0, n;
	char *out = xmalloc(len * 6 + 1), *p = out;
	unsigned cp;

	while (i < len) {
		n = utf8_decode(s + i, &cp);
		if (n == 0) {
			/* not UTF-8, so not JSON: show the byte, not act on it */
			p += sprintf(p, "\\x%02x", s[i]);
			i++;
		} else if (cp == 0x7f || is_hidden_control(cp) ||
			   (cp < 0x20 && cp != '\n' && cp != '\t' &&
			    cp != '\r' && cp != ' ')) {
			/* raw only inside strings in valid JSON */
			p += sprintf(p, "\\u%04x", cp);
			i += n;
		} else {
			memcpy(p, s + i, n);
			p += n;
			i += n;
		}
	}
	*p = '\0';
	return out;
}

/* A copy of text fit for one cell: newlines, tabs and carriage returns
 * as spaces, other control characters escaped, and text longer than
 * TABLE_MAX_CELL characters ending with an ellipsis. */
static char *cell_copy(const char *text)
{
	size_t len, width = 0, i;
	char *copy, *safe, *flat;

	if (text == NULL)
		return xstrdup("-");
	flat = xstrdup(text);
	for (char *q = flat; *q != '\0'; q++) {
		if (*q == '\n' || *q == '\t' || *q == '\r')
			*q = ' ';
	}
	safe = table_escape(flat, false);
	free(flat);
	len = strlen(safe);
	copy = xmalloc(len + sizeof("…"));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)safe[i];

		if ((c & 0xc0) != 0x80) {
			if (width == TABLE_MAX_CELL - 1 &&
			    text_width(safe + i) > 1)
				break;
			width++;
		}
		copy[i] = (char)c;
	}
	if (i < len)
		strcpy(copy + i, "…");
	else
		copy[i] = '\0';
	free(safe);
	return copy;
}

/* Create an empty table with the given column headers. */
struct table *table_new(unsigned ncols, const char *const *headers)
{
	struct table *table = xcalloc(1, sizeof(*table));

	table->ncols = ncols;
	table->headers = xcalloc(ncols, sizeof(*table->headers));
	for (unsigned i = 0; i < ncols; i++)
		table->headers[i] = cell_copy(headers[i]);
	return table;
}

/* Free a table and its cells. */
void table_free(struct table *table)
{
	if (table == NULL)
		return;
	for (unsigned i = 0; i < table->ncols; i++)
		free(table->headers[i]);
	for (size_t i = 0; i < (size_t)table->nrows * table->ncols; i++)
		free(table->cells[i]);
	free(table->headers);
	free(table->cells);
	free(table);
}

/* Append one row of cells. */
void table_add_row(struct table *table, const char *const *cells)
{
	char **row;

	if (table->nrows == table->alloc) {
		table->alloc = table->alloc ? table->alloc * 2 : 16;
		table->cells = xrealloc(table->cells,
					(size_t)table->alloc * table->ncols *
						sizeof(*table->cells));
	}
	row = table->cells + (size_t)table->nrows * table->ncols;
	for (unsigned i = 0; i < table->ncols; i++)
		row[i] = cell_copy(cells[i]);
	table->nrows++;
}

/* Rows added so far. */
unsigned table_rows(const struct table *table)
{
	return table->nrows;
}

/* True if text is a plain decimal number such as "42" or "-1.5". */
static bool is_number(const char *text)
{
	bool digits = false, dot = false;

	if (*text == '-')
		text++;
	for (; *text != '\0'; text++) {
		if (isdigit((unsigned char)*text))
			digits = true;
		else if (*text == '.' && !dot)
			dot = true;
		else
			return false;
	}
	return digits;
}

/* True if text is a size or duration as table_size() and
 * table_duration() write them: "1.2 MiB", "512 B", "3m12s", "12ms". */
static bool is_quantity(const char *text)
{
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p) || *p == '.')
		p++;
	if (*p == ' ')
		return strcmp(p, " B") == 0 ||
		       (strlen(p) == 4 && p[2] == 'i' && p[3] == 'B' &&
			strchr("KMGTPE", p[1]) != NULL);
	for (;;) {
		if (*p == '\0' || strchr("dhms", *p) == NULL)
			return false;
		p += strncmp(p, "ms", 2) == 0 ? 2 : 1;
		if (*p == '\0')
			return true;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
}

/* True if every cell of column col that is not "-" is a number, size or
 * duration, and one is. */
static bool column_numeric(const struct table *table, unsigned col)
{
	bool any = false;
	const char *cell;

	for (unsigned r = 0; r < table->nrows; r++) {
		cell = table->cells[(size_t)r * table->ncols + col];
		if (strcmp(cell, "-") == 0)
			continue;
		if (!is_number(cell) && !is_quantity(cell))
			return false;
		any = true;
	}
	return any;
}

/* Print one line of cells, padded to widths, without trailing blanks. */
static void render_line(FILE *fp, const struct table *table, char **cells,
			const size_t *widths, const bool *right)
{
	char *line = NULL;
	size_t size = 0, len;
	FILE *lp = open_memstream(&line, &size);

	if (lp == NULL)
		abort();
	for (unsigned c = 0; c < table->ncols; c++) {
		size_t pad = widths[c] - text_width(cells[c]);

		if (c > 0)
			fputs("  ", lp);
		if (right[c])
			fprintf(lp, "%*s", (int)pad, "");
		fputs(cells[c], lp);
		if (!right[c])
			fprintf(lp, "%*s", (int)pad, "");
	}
	fclose(lp);
	len = strlen(line);
	while (len > 0 && line[len - 1] == ' ')
		len--;
	fwrite(line, 1, len, fp);
	fputc('\n', fp);
	free(line);
}

/* Lay the table out as text. */
char *table_render(const struct table *table)
{
	size_t *widths = xcalloc(table->ncols, sizeof(*widths));
	bool *right = xcalloc(table->ncols, sizeof(*right));
	char *text = NULL;
	size_t size = 0;
	FILE *fp;

	for (unsigned c = 0; c < table->ncols; c++) {
		widths[c] = text_width(table->headers[c]);
		for (unsigned r = 0; r < table->nrows; r++) {
			size_t w = text_width(
				table->cells[(size_t)r * table->ncols + c]);

			if (w > widths[c])
				widths[c] = w;
		}
		right[c] = column_numeric(table, c);
	}
	fp = open_memstream(&text, &size);
	if (fp == NULL)
		abort();
	render_line(fp, table, table->headers, widths, right);
	for (unsigned r = 0; r < table->nrows; r++)
		render_line(fp, table, table->cells + (size_t)r * table->ncols,
			    widths, right);
	fclose(fp);
	free(widths);
	free(right);
	return text;
}

/* Text for one JSON value in a cell. */
char *table_cell(const json_t *value)
{
	char *text;

	switch (value == NULL ? JSON_NULL : json_typeof(value)) {
	case JSON_NULL:
		return xstrdup("-");
	case JSON_STRING:
		return xstrndup(json_string_value(value),
				json_string_length(value));
	case JSON_INTEGER:
		return xasprintf("%" JSON_INTEGER_FORMAT,
				 json_integer_value(value));
	case JSON_REAL:
		return xasprintf("%.15g", json_real_value(value));
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	case JSON_OBJECT:
	case JSON_ARRAY:
		break;
	}
	text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	return text != NULL ? text : xstrdup("?");
}

/* Format bytes with binary units. */
char *table_size(double bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	size_t unit = 0;

	if (!isfinite(bytes) || bytes < 0)
		return xstrdup("-");
	if (bytes < 1024)
		return xasprintf("%.0f B", bytes);
	bytes /= 1024;
	while (bytes >= 1024 && unit + 1 < ARRAY_SIZE(units)) {
		bytes /= 1024;
		unit++;
	}
	return xasprintf("%.1f %s", bytes, units[unit]);
}

/* Format seconds as the two largest units. */
char *table_duration(double seconds)
{
	long n;

	if (!isfinite(seconds) || seconds < 0 || seconds > 1e15)
		return xstrdup("-");
	if (seconds > 0 && seconds < 0.0995)
		return xasprintf("%.0fms", seconds * 1000);
	if (seconds < 9.95 && seconds != floor(seconds))
		return xasprintf("%.1fs", seconds);
	n = (long)llround(seconds);
	if (n < 60)
		return xasprintf("%lds", n);
	if (n < 3600)
		return xasprintf("%ldm%02lds", n / 60, n % 60);
	if (n < 86400)
		return xasprintf("%ldh%02ldm", n / 3600, n % 3600 / 60);
	return xasprintf("%ldd%02ldh", n / 86400, n % 86400 / 3600);
}

/* True if key ends with suffix (and has something before it). */
static bool key_ends_with(const char *key, const char *suffix)
{
	size_t k = strlen(key), s = strlen(suffix);

	return k > s && strcmp(key + k - s, suffix) == 0;
}

/* Whether the key's numbers are sizes (1), seconds (2), milliseconds (3)
 * or none of these (0). */
static int key_unit(const char *key)
{
	if (key == NULL)
		return 0;
	if (key_ends_with(key, "_bytes"))
		return 1;
	if (key_ends_with(key, "_s") && !key_ends_with(key, "_per_s"))
		return 2;
	if (key_ends_with(key, "_ms"))
		return 3;
	return 0;
}

/* A cell for a value, humanized by its key. */
char *table_cell_for(const char *key, const json_t *value)
{
	if (json_is_number(value)) {
		switch (key_unit(key)) {
		case 1:
			return table_size(json_number_value(value));
		case 2:
			return table_duration(json_number_value(value));
		case 3:
			return table_duration(json_number_value(value) / 1000);
		}
	}
	return table_cell(value);
}

/* Build a table from an array of objects, columns from the first one. */
struct table *table_from_json(const json_t *array)
{
	const json_t *first = json_array_get(array, 0);
	const json_t *item, *value;
	struct table *table;
	const char *key;
	char **headers, **cells;
	unsigned ncols, c;
	size_t i;

	if (!json_is_object(first) || json_object_size(first) == 0)
		return NULL;
	ncols = (unsigned)json_object_size(first);
	headers = xcalloc(ncols, sizeof(*headers));
	c = 0;
	json_object_foreach((json_t *)first, key, value) {
		headers[c] = xstrdup(key);
		if (key_unit(key) != 0)
			*strrchr(headers[c], '_') = '\0';
		for (char *p = headers[c]; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		c++;
	}
	table = table_new(ncols, (const char *const *)headers);
	cells = xcalloc(ncols, sizeof(*cells));
	json_array_foreach(array, i, item) {
		c = 0;
		json_object_foreach((json_t *)first, key, value) {
			if (json_is_object(item))
				cells[c] = table_cell_for(
					key, json_object_get(item, key));
			else
				cells[c] = c == 0 ? table_cell(item) : NULL;
			c++;
		}
		table_add_row(table, (const char *const *)cells);
		for (c = 0; c < ncols; c++) {
			free(cells[c]);
			cells[c] = NULL;
		}
	}
	for (c = 0; c < ncols; c++)
		free(headers[c]);
	free(headers);
	free(cells);
	return table;
}
