/* drill.h - restore drills: what a drill's psql printed, and the
 * comparison of the tables a backup recorded when it was taken (row count
 * and hash of every table, pgtenantd.table_digests) with those of the copy
 * the drill restored. No database, no event loop: backup.c runs the drill
 * and calls these. */
#ifndef PGT_DRILL_H
#define PGT_DRILL_H

#include <stdbool.h>

#include <jansson.h>

#include "util.h"

/* The start of the line on which psql prints pgtenantd.table_digests (one
 * JSON object on the rest of that line): a backup's of the snapshot it
 * dumps, a drill's of the restored copy. */
#define DRILL_MARKER "pgtenantd-table-digests "

/* The outcomes recorded in the backup catalog and counted in metrics. */
#define DRILL_PASSED "passed"
#define DRILL_FAILED "failed"

/* Find the last line of psql's output that starts with DRILL_MARKER and
 * parse the JSON object after it into *digests (a new reference); it must
 * be valid (drill_digests_valid). */
bool drill_parse_output(const char *output, json_t **digests, char **cause)
	MUST_CHECK;

/* Whether a digests value is one table_digests could have made: an object
 * of objects, each with an integer "rows" >= 0 and a string "hash". */
bool drill_digests_valid(const json_t *digests, char **cause) MUST_CHECK;

/* Compare what the backup recorded with what the restored copy has: the
 * same tables, each with the same rows and hash. On a difference, false
 * and cause names every table that differs and how (at most a few, then
 * how many more). */
bool drill_compare(const json_t *recorded, const json_t *restored, char **cause)
	MUST_CHECK;

/* The restored copy's tables as a short text for the job result and the
 * log: "graph_entities 3000 rows, notes 500 rows". A new string. */
char *drill_summary(const json_t *digests);

#endif
