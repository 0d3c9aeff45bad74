/* test_pgconn.c - the connection's prepared statements, on a real
 * PostgreSQL (the PG* environment scripts/check sets; skipped without):
 * prepared once per session and then sent by name, prepared again after job
 * SQL deallocated them, unnamed when the Prepare fails (with the server's
 * own error), and inside a pipelined transaction. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgconn.h"
#include "unit.h"
#include "util.h"

static struct event_base *base;
static struct pgconn *conn;
static bool connected;

/* What the last query returned: its first value, or its error. */
static struct {
	bool done;
	char value[256];
	char error[512];
	char sqlstate[6];
} got;

static void on_state(struct pgconn *c, bool up, void *arg)
{
	(void)c;
	(void)arg;
	connected = up;
	if (up)
		event_base_loopbreak(base);
}

static void on_result(const struct pgconn_result *r, void *arg)
{
	(void)arg;
	got.done = true;
	got.value[0] = got.error[0] = got.sqlstate[0] = '\0';
	if (r->error != NULL) {
		snprintf(got.error, sizeof(got.error), "%s", r->error);
		snprintf(got.sqlstate, sizeof(got.sqlstate), "%s",
			 r->sqlstate ? r->sqlstate : "");
	} else if (r->res != NULL && PQntuples(r->res) > 0) {
		snprintf(got.value, sizeof(got.value), "%s",
			 PQgetvalue(r->res, 0, 0));
	}
	event_base_loopbreak(base);
}

/* Run the loop until the query's callback (at most 10 s). */
static void wait_result(void)
{
	struct timeval tv = { 10, 0 };

	got.done = false;
	while (!got.done) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		if (!got.done) {
			got.done = true;
			snprintf(got.error, sizeof(got.error), "timed out");
		}
	}
}

static const char *query(const char *sql)
{
	pgconn_query(conn, sql, 0, NULL, on_result, NULL);
	wait_result();
	return got.error[0] ? got.error : got.value;
}

static const char *query_prepared(const char *sql, const char *param)
{
	const char *values[1] = { param };

	pgconn_query_prepared(conn, sql, param ? 1 : 0, values, on_result,
			      NULL);
	wait_result();
	return got.error[0] ? got.error : got.value;
}

/* How many statements the session has prepared under the engine's names. */
static const char *prepared_count(void)
{
	return query("SELECT count(*) FROM pg_catalog.pg_prepared_statements"
		     " WHERE name LIKE 'pgt\\_%'");
}

#define DOUBLE_SQL "SELECT ($1::integer * 2)::text"

static void test_prepared_once(void)
{
	is_str(query_prepared(DOUBLE_SQL, "21"), "42",
	       "a prepared query returns its result the first time");
	is_str(prepared_count(), "1", "... and left one prepared statement");
	is_str(query_prepared(DOUBLE_SQL, "5"), "10",
	       "the second call, by name, binds its own parameter");
	is_str(prepared_count(), "1", "... and prepared nothing more");
	is_str(query("SELECT statement FROM pg_catalog.pg_prepared_statements"
		     " WHERE name LIKE 'pgt\\_%'"),
	       DOUBLE_SQL, "the session's statement is the query's text");
}

static void test_deallocated(void)
{
	is_str(query("DEALLOCATE ALL"), "", "job SQL deallocates everything");
	is_str(prepared_count(), "0", "... the session has none left");
	is_str(query_prepared(DOUBLE_SQL, "4"), "8",
	       "the next call prepares it again and succeeds");
	is_str(prepared_count(), "1", "... one prepared statement again");
}

static void test_result_type_changed(void)
{
	const char *sql = "SELECT * FROM t_rowtype WHERE a = $1::integer";

	is_str(query("CREATE TEMP TABLE t_rowtype (a integer)"), "",
	       "a table a prepared statement reads all columns of");
	query("INSERT INTO t_rowtype VALUES (1)");
	is_str(query_prepared(sql, "1"), "1",
	       "read through a prepared statement");
	query("ALTER TABLE t_rowtype ADD COLUMN b text DEFAULT 'added'");
	is_str(query_prepared(sql, "1"), "1",
	       "after a column is added (as a newer schema version would), it is prepared again and runs");
	is_str(got.error, "", "... without an error");
}

static void test_failed_prepare(void)
{
	query_prepared("SELEC 1", NULL);
	is_str(got.sqlstate, "42601",
	       "a text that does not parse fails with the server's own error");
	contains(got.error, "syntax error", "... its message");
	query_prepared("SELEC 1", NULL);
	is_str(got.sqlstate, "42601", "... also the second time (unnamed)");
	is_str(query_prepared(DOUBLE_SQL, "1"), "2",
	       "the connection goes on serving");
	query_prepared("SELECT 1 / ($1::integer - 1)", "1");
	is_str(got.sqlstate, "22012",
	       "a prepared statement failing at run time reports its error");
	is_str(query_prepared("SELECT 1 / ($1::integer - 1)", "3"), "0",
	       "... and the same statement runs by name the next time");
}

static void test_transaction(void)
{
	const char *v1[1] = { "7" }, *v2[1] = { "prepared-in-a-pipeline" };
	struct pgconn_stmt stmts[] = {
		{ .sql = "CREATE TEMP TABLE IF NOT EXISTS t_prep (v text)" },
		{ .sql = "INSERT INTO t_prep VALUES ($1)",
		  .nparams = 1,
		  .values = v2,
		  .prepare = true },
		{ .sql = DOUBLE_SQL,
		  .nparams = 1,
		  .values = v1,
		  .prepare = true },
	};

	pgconn_transaction(conn, stmts, 3, on_result, NULL);
	wait_result();
	is_str(got.value, "14", "a transaction with prepared statements");
	is_str(query("SELECT v FROM t_prep"), "prepared-in-a-pipeline",
	       "... committed its work");
	pgconn_transaction(conn, stmts, 3, on_result, NULL);
	wait_result();
	is_str(query("SELECT count(*) FROM t_prep"), "2",
	       "... and runs again by name");
}

int main(void)
{
	struct pgconn_options o = { .conninfo = "", .name = "test" };
	struct timeval tv = { 15, 0 };

	if (getenv("PGHOST") == NULL) {
		printf("1..0 # SKIP no PostgreSQL (PGHOST unset)\n");
		return 0;
	}
	base = event_base_new();
	conn = pgconn_new(base, &o, on_state, NULL, NULL);
	pgconn_start(conn);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	if (!ok(connected, "connected to PostgreSQL"))
		return done_testing();
	test_prepared_once();
	test_deallocated();
	test_result_type_changed();
	test_failed_prepare();
	test_transaction();
	pgconn_free(conn);
	event_base_free(base);
	return done_testing();
}
