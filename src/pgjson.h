/* pgjson.h - libpq results as JSON: json and jsonb as themselves, numbers
 * as numbers, booleans as booleans, NULL as null, the rest as strings. */
#ifndef PGT_PGJSON_H
#define PGT_PGJSON_H

#include <jansson.h>
#include <libpq-fe.h>

/* One value (a new reference). */
json_t *pgjson_value(const PGresult *res, int row, int col);

/* The first row as an object of column names (a new reference), or NULL
 * when there is no row. */
json_t *pgjson_first_row(const PGresult *res);

/* Every row as an array of such objects (a new reference). */
json_t *pgjson_rows(const PGresult *res);

#endif
