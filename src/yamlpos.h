/* yamlpos.h - where each key of a YAML file stands, so that errors found
 * after parsing can name the line. Built with libyaml's event parser. */
#ifndef PGT_YAMLPOS_H
#define PGT_YAMLPOS_H

#include <stdbool.h>

struct yamlpos;

/* Index the file at path. Paths look like "workers", "schedules[1].cron",
 * "steps[0].verify.expected" (sequence indexes are 0-based). Returns NULL
 * with cause if the file cannot be read or is not well-formed YAML (the
 * cause then names file, line and column). */
struct yamlpos *yamlpos_load(const char *path, char **cause);

/* 1-based line of the key (or sequence item) at path, or 0 if unknown.
 * For a path that is missing, the line of its nearest present parent. */
unsigned yamlpos_line(const struct yamlpos *pos, const char *path);

void yamlpos_free(struct yamlpos *pos);

#endif
