/* table.h - plain-text tables for people: columns sized to their widest
 * cell, long cells shortened with an ellipsis. Used by pgtenantctl. */
#ifndef PGT_TABLE_H
#define PGT_TABLE_H

#include <jansson.h>

#define TABLE_MAX_CELL 60 /* characters; longer cells end with "…" */

struct table;

/* A table with ncols columns titled by headers. */
struct table *table_new(unsigned ncols, const char *const *headers);
void table_free(struct table *table);

/* Append a row of ncols cells (copied); a NULL cell prints as "-".
 * Control characters in cells print as spaces. */
void table_add_row(struct table *table, const char *const *cells);
unsigned table_rows(const struct table *table);

/* The table as text: a header line, then one line per row, columns two
 * spaces apart, numeric columns right-aligned, no trailing blanks. */
char *table_render(const struct table *table);

/* One cell for a JSON value: strings as they are, null or NULL as "-",
 * numbers and booleans as text, arrays and objects as compact JSON. */
char *table_cell(const json_t *value);

/* A table from an array of objects with one column for each key of the
 * first object (headers upper-cased). NULL if array is not an array whose
 * first element is an object. */
struct table *table_from_json(const json_t *array);

#endif
