/* schema.c - installs and upgrades the pgtenantd schema in the database. */
#include "schema.h"

#include <stdlib.h>

#include "log.h"
#include "pgconn.h"
#include "util.h"

/* Each version's SQL, generated from src/sql/vN.sql at build time. */
static const char *const migrations[SCHEMA_VERSION] = {
#include "sql/v1.inc"
	, /* each file is one string */
#include "sql/v2.inc"
	,
#include "sql/v3.inc"
	,
#include "sql/v4.inc"
	,
#include "sql/v5.inc"
	,
#include "sql/v6.inc"
	,
#include "sql/v7.inc"
	,
#include "sql/v8.inc"
	,
#include "sql/v9.inc"
	,
#include "sql/v10.inc"
	,
#include "sql/v11.inc"
};

struct schema_install {
	struct pgconn *conn;
	schema_done_fn done;
	void *arg;
	char *error;
};

/* Report the outcome and free the request. */
static void schema_finish(struct schema_install *si, bool ok)
{
	si->done(ok, si->error, si->arg);
	free(si->error);
	free(si);
}

static void schema_rolled_back(const struct pgconn_result *r, void *arg)
{
	schema_finish(arg, false);
}

/* Roll back after a failure, keeping the first error. */
static void schema_fail(struct schema_install *si, const char *error)
{
	if (si->error == NULL)
		si->error = xstrdup(error);
	pgconn_exec(si->conn, "ROLLBACK", schema_rolled_back, si);
}

static void schema_committed(const struct pgconn_result *r, void *arg)
{
	struct schema_install *si = arg;

	if (r->error != NULL) {
		si->error = xasprintf("installing the pgtenantd schema: %s",
				      r->error);
		if (r->connection_lost)
			schema_finish(si, false);
		else
			schema_fail(si, si->error);
		return;
	}
	schema_finish(si, true);
}

/* The lock is held and the current version known: apply what is missing. */
static void schema_have_version(const struct pgconn_result *r, void *arg)
{
	struct schema_install *si = arg;
	int current;
	char *script, *next;

	if (r->error != NULL) {
		si->error = xasprintf(
			"reading the pgtenantd schema version: %s", r->error);
		if (r->connection_lost)
			schema_finish(si, false);
		else
			schema_fail(si, si->error);
		return;
	}
	current = atoi(PQgetvalue(r->res, 0, 0));
	if (current > SCHEMA_VERSION) {
		si->error = xasprintf(
			"the database has pgtenantd schema version %d, newer "
			"than this pgtenantd (version %d): upgrade pgtenantd",
			current, SCHEMA_VERSION);
		schema_fail(si, si->error);
		return;
	}
	if (current == SCHEMA_VERSION) {
		pgconn_exec(si->conn, "COMMIT", schema_committed, si);
		return;
	}
	script = xstrdup("");
	for (int v = current + 1; v <= SCHEMA_VERSION; v++) {
		log_info("installing pgtenantd schema version %d", v);
		next = xasprintf("%s%s;\nINSERT INTO pgtenantd.schema_version "
				 "(version) VALUES (%d);\n",
				 script, migrations[v - 1], v);
		free(script);
		script = next;
	}
	next = xasprintf("%sCOMMIT;", script);
	free(script);
	pgconn_exec(si->conn, next, schema_committed, si);
	free(next);
}

/* Bring the schema to SCHEMA_VERSION. */
void schema_install(struct pgconn *conn, schema_done_fn done, void *arg)
{
	struct schema_install *si = xcalloc(1, sizeof(*si));

	si->conn = conn;
	si->done = done;
	si->arg = arg;
	pgconn_exec(conn,
		    "BEGIN;"
		    "SELECT pg_advisory_xact_lock(1886680148, 0);"
		    "SET LOCAL client_min_messages = warning;"
		    "CREATE SCHEMA IF NOT EXISTS pgtenantd;"
		    "CREATE TABLE IF NOT EXISTS pgtenantd.schema_version ("
		    " version integer PRIMARY KEY,"
		    " installed_at timestamptz NOT NULL DEFAULT now());"
		    "SELECT coalesce(max(version), 0) "
		    "FROM pgtenantd.schema_version;",
		    schema_have_version, si);
}
