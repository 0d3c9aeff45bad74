/* schema.h - installs and upgrades the pgtenantd schema in the database. */
#ifndef PGT_SCHEMA_H
#define PGT_SCHEMA_H

#include <stdbool.h>

struct pgconn;

/* The schema version this build installs. */
#define SCHEMA_VERSION 11

typedef void (*schema_done_fn)(bool ok, const char *error, void *arg);

/* Bring the schema to SCHEMA_VERSION: in one transaction that holds an
 * advisory lock (so that daemons starting together take turns), create the
 * schema if missing and apply each missing version in order. A database
 * whose schema is newer than this build is refused. done is called once. */
void schema_install(struct pgconn *conn, schema_done_fn done, void *arg);

#endif
