/* drill.c - restore drills: the digests a drill's psql printed, and their
 * comparison with what the backup recorded when it was taken. */
#include "drill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Name at most this many differing tables in a cause. */
#define DRILL_MAX_NAMED 3

/* Find and parse the digests line of a drill's psql output. */
bool drill_parse_output(const char *output, json_t **digests, char **cause)
{
	const char *line = output != NULL ? output : "", *found = NULL;
	json_error_t err;
	json_t *v;
	char *text;

	*digests = NULL;
	while (*line != '\0') {
		const char *end = strchrnul(line, '\n');

		if (strncmp(line, DRILL_MARKER, strlen(DRILL_MARKER)) == 0)
			found = line;
		line = *end != '\0' ? end + 1 : end;
	}
	if (found == NULL)
		return set_cause(
			cause,
			"psql printed no table digests (no line starting with '%s')",
			DRILL_MARKER);
	found += strlen(DRILL_MARKER);
	text = xstrndup(found, strcspn(found, "\n"));
	v = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	free(text);
	if (v == NULL)
		return set_cause(
			cause,
			"the table digests psql printed are not JSON: %s",
			err.text);
	if (!drill_digests_valid(v, cause)) {
		json_decref(v);
		return false;
	}
	*digests = v;
	return true;
}

/* Whether digests has the shape table_digests gives. */
bool drill_digests_valid(const json_t *digests, char **cause)
{
	const char *table;
	json_t *d;

	if (!json_is_object(digests))
		return set_cause(cause, "table digests are not a JSON object");
	json_object_foreach((json_t *)digests, table, d) {
		json_t *rows = json_object_get(d, "rows");

		if (!json_is_object(d) || !json_is_integer(rows) ||
		    json_integer_value(rows) < 0 ||
		    !json_is_string(json_object_get(d, "hash")))
			return set_cause(
				cause,
				"the digest of table '%s' is not {\"rows\": N, \"hash\": \"...\"}",
				table);
	}
	return true;
}

/* Add one difference to the text, or count it past the first few. */
static void note_difference(char **text, unsigned *count, char *difference)
{
	if (*count < DRILL_MAX_NAMED) {
		char *joined = *text == NULL ?
				       xstrdup(difference) :
				       xasprintf("%s; %s", *text, difference);

		free(*text);
		*text = joined;
	}
	(*count)++;
	free(difference);
}

/* Compare recorded and restored digests, table by table. */
bool drill_compare(const json_t *recorded, const json_t *restored, char **cause)
{
	const char *table;
	json_t *want, *have;
	char *text = NULL;
	unsigned count = 0;

	json_object_foreach((json_t *)recorded, table, want) {
		json_int_t want_rows =
			json_integer_value(json_object_get(want, "rows"));
		const char *want_hash =
			json_string_value(json_object_get(want, "hash"));
		json_int_t have_rows;
		const char *have_hash;

		have = json_object_get(restored, table);
		if (have == NULL) {
			note_difference(
				&text, &count,
				xasprintf(
					"table %s: the backup recorded %" JSON_INTEGER_FORMAT
					" rows, the restored copy has no such table",
					table, want_rows));
			continue;
		}
		have_rows = json_integer_value(json_object_get(have, "rows"));
		have_hash = json_string_value(json_object_get(have, "hash"));
		if (have_rows != want_rows)
			note_difference(
				&text, &count,
				xasprintf(
					"table %s: the backup recorded %" JSON_INTEGER_FORMAT
					" rows, the restored copy has %" JSON_INTEGER_FORMAT,
					table, want_rows, have_rows));
		else if (want_hash == NULL || have_hash == NULL ||
			 strcmp(want_hash, have_hash) != 0)
			note_difference(
				&text, &count,
				xasprintf(
					"table %s: same %" JSON_INTEGER_FORMAT
					" rows, but the backup recorded hash %s and the restored rows hash to %s",
					table, want_rows,
					want_hash ? want_hash : "none",
					have_hash ? have_hash : "none"));
	}
	json_object_foreach((json_t *)restored, table, have) {
		if (json_object_get(recorded, table) == NULL)
			note_difference(
				&text, &count,
				xasprintf(
					"table %s: in the restored copy (%" JSON_INTEGER_FORMAT
					" rows) but not recorded in the backup",
					table,
					json_integer_value(json_object_get(
						have, "rows"))));
	}
	if (count == 0)
		return true;
	if (count > DRILL_MAX_NAMED)
		set_cause(
			cause,
			"%u tables differ from what the backup recorded: %s; and %u more",
			count, text, count - DRILL_MAX_NAMED);
	else
		set_cause(
			cause,
			"%u table%s differ%s from what the backup recorded: %s",
			count, count == 1 ? "" : "s", count == 1 ? "s" : "",
			text);
	free(text);
	return false;
}

/* The tables of digests with their rows, as text. */
char *drill_summary(const json_t *digests)
{
	const char *table;
	json_t *d;
	char *text = NULL;

	json_object_foreach((json_t *)digests, table, d) {
		char *joined = xasprintf(
			"%s%s%s %" JSON_INTEGER_FORMAT " rows",
			text ? text : "", text ? ", " : "", table,
			json_integer_value(json_object_get(d, "rows")));

		free(text);
		text = joined;
	}
	return text != NULL ? text : xstrdup("no tables");
}
