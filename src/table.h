/* table.h - plain-text tables for people: columns sized to their widest
 * cell, long cells shortened with an ellipsis, and text made safe for a
 * terminal. Used by pgtenantctl. */
#ifndef PGT_TABLE_H
#define PGT_TABLE_H

#include <stdbool.h>

#include <jansson.h>

#define TABLE_MAX_CELL 60 /* characters; longer cells end with "…" */

struct table;

/* A table with ncols columns titled by headers. */
struct table *table_new(unsigned ncols, const char *const *headers);
void table_free(struct table *table);

/* Append a row of ncols cells (copied); a NULL cell prints as "-".
 * Control characters in cells are escaped as table_escape() does. */
void table_add_row(struct table *table, const char *const *cells);
unsigned table_rows(const struct table *table);

/* The table as text: a header line, then one line per row, columns two
 * spaces apart, columns of numbers, sizes and durations right-aligned, no
 * trailing blanks. */
char *table_render(const struct table *table);

/* One cell for a JSON value: strings as they are, null or NULL as "-",
 * numbers and booleans as text, arrays and objects as compact JSON. */
char *table_cell(const json_t *value);

/* Bytes for people: "512 B", "1.2 KiB", "3.4 MiB", "1.0 GiB"; "-" for a
 * negative or non-finite value. */
char *table_size(double bytes);

/* Seconds for people: "12ms", "0.4s", "45s", "3m12s", "2h05m", "3d04h"; "-" for a
 * negative or non-finite value. */
char *table_duration(double seconds);

/* One cell for the value of key: numbers under a key ending in "_bytes"
 * as sizes, under one ending in "_s" (not "_per_s") or "_ms" as durations,
 * the rest as table_cell() does. */
char *table_cell_for(const char *key, const json_t *value);

/* A table from an array of objects with one column for each key of the
 * first object (headers upper-cased, without a "_bytes", "_s" or "_ms" suffix;
 * cells as table_cell_for() makes them). NULL if array is not an array
 * whose first element is an object. */
struct table *table_from_json(const json_t *array);

/* Text that is safe to print on a terminal: every C0 control character
 * (with keep_layout, all but newline and tab), DEL and byte that is not
 * part of valid UTF-8 as "\xNN", every C1 control (U+0080..U+009F) and
 * bidirectional override or isolate as "\uNNNN". No escape sequence
 * (ESC, CSI, OSC) gets through. A new string. */
char *table_escape(const char *text, bool keep_layout);

/* A JSON text with the characters that JSON may leave raw but a terminal
 * would act on (DEL, C1 controls, bidirectional overrides) written as
 * "\uNNNN" escapes: the same JSON value, safe to print. json must be valid
 * UTF-8 JSON (C0 controls are escaped in it already). A new string. */
char *table_json_escape(const char *json);

#endif
