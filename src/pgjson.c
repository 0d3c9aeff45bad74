/* pgjson.c - libpq results as JSON: each value by its column's type. */
#include "pgjson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* A column value as JSON by its type: json, numbers, booleans, text. */
json_t *pgjson_value(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);
	json_error_t jerr;
	json_t *j;
	char *end;

	if (PQgetisnull(res, row, col))
		return json_null();
	switch (PQftype(res, col)) {
	case 114:  /* json */
	case 3802: /* jsonb */
		j = json_loads(v, JSON_DECODE_ANY, &jerr);
		return j ? j : json_string(v);
	case 16: /* bool */
		return json_boolean(v[0] == 't');
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
	case 26: /* oid */
		return json_integer(strtoll(v, NULL, 10));
	case 700: /* float4 */
	case 701: /* float8 */
	case 1700: /* numeric */ {
		long long ll = strtoll(v, &end, 10);

		if (*end == '\0')
			return json_integer(ll);
		double dv = strtod(v, &end);

		if (*end == '\0' && isfinite(dv))
			return json_real(dv);
		return json_string(v);
	}
	default:
		return json_string(v);
	}
}

/* The first row of a result as an object of column names, or NULL. */
json_t *pgjson_first_row(const PGresult *res)
{
	json_t *row;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQntuples(res) == 0)
		return NULL;
	row = json_object();
	for (int c = 0; c < PQnfields(res); c++)
		json_object_set_new(row, PQfname(res, c),
				    pgjson_value(res, 0, c));
	return row;
}

/* Every row of a result as an array of arrays of text (NULL as null). */
json_t *pgjson_rows(const PGresult *res)
{
	json_t *rows = json_array();

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		return rows;
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *row = json_array();

		for (int c = 0; c < PQnfields(res); c++)
			json_array_append_new(
				row,
				PQgetisnull(res, i, c) ?
					json_null() :
					json_string(PQgetvalue(res, i, c)));
		json_array_append_new(rows, row);
	}
	return rows;
}
