/* pgconn.h - one asynchronous libpq connection driven by the event loop.
 *
 * Connects with PQconnectStartParams/PQconnectPoll, sends with
 * PQsendQueryParams (or PQsendQueryPrepared, for the engine's statements
 * prepared once per session) + PQflush, reads with PQconsumeInput/PQisBusy/
 * PQgetResult, and hands every notification to a callback. Queries queue
 * up and go one at a time. When the connection breaks, every pending query
 * fails with connection_lost and the connection is re-made with backoff
 * and jitter; the owner hears about both through the state callback.
 * Every session runs with search_path = pg_catalog, pg_temp, set right
 * after each connect before anything else: SQL sent through here must
 * schema-qualify what is not built in. */
#ifndef PGT_PGCONN_H
#define PGT_PGCONN_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

struct event_base;
struct pgconn;

/* What a query callback receives. res is the last result of the query (for
 * a multi-statement text, the last statement's), owned by pgconn and valid
 * only during the callback; NULL when the query failed. */
struct pgconn_result {
	PGresult *res;
	const char *error;    /* NULL on success; the server's message */
	const char *sqlstate; /* SQLSTATE of the error, or NULL */
	bool connection_lost; /* not sent, or the connection broke */
	double elapsed_ms;    /* from send to the last result */
};

typedef void (*pgconn_result_fn)(const struct pgconn_result *result, void *arg);
typedef void (*pgconn_state_fn)(struct pgconn *conn, bool connected, void *arg);
typedef void (*pgconn_notify_fn)(struct pgconn *conn, const char *channel,
				 const char *payload, void *arg);

struct pgconn_options {
	const char *conninfo; /* libpq conninfo or URI, may be "" */
	const char *name;     /* for logs: "dispatcher", "worker 1" */
	const char *application_name;
	const char *init_sql;	    /* run after each connect, may be NULL */
	int64_t reconnect_max_ms;   /* cap of the reconnect backoff */
	int64_t connect_timeout_ms; /* 0: 10 s */
};

struct pgconn *pgconn_new(struct event_base *base,
			  const struct pgconn_options *options,
			  pgconn_state_fn on_state, pgconn_notify_fn on_notify,
			  void *arg);

/* Begin connecting (and keep reconnecting after failures). */
void pgconn_start(struct pgconn *conn);

/* Queue one statement with text parameters. cb is always called exactly
 * once, from the loop (never from inside this call). */
void pgconn_query(struct pgconn *conn, const char *sql, int nparams,
		  const char *const *values, pgconn_result_fn cb, void *arg);

/* The same for one of the engine's own statements, sent often with the same
 * text: prepared on the session at its first use (one more round trip),
 * then sent by name, so the server parses and plans it once per session
 * instead of on every call. A statement prepared on a session that job SQL
 * deallocated (DISCARD ALL, DEALLOCATE) is prepared again and the query
 * sent again; a text whose Prepare fails goes unnamed on that session.
 * Not for job SQL: its texts vary, and a generic plan may not suit every
 * tenant. */
void pgconn_query_prepared(struct pgconn *conn, const char *sql, int nparams,
			   const char *const *values, pgconn_result_fn cb,
			   void *arg);

/* One statement of pgconn_transaction. */
struct pgconn_stmt {
	const char *sql;
	int nparams;
	const char *const *values;
	bool prepare; /* as pgconn_query_prepared */
};

/* Queue statements to run in one round trip as one implicit transaction
 * (pipeline mode, a single Sync): they commit together, or an error rolls
 * all of them back. cb gets the last statement's result or the first
 * error. Statements that cannot run in a transaction block (VACUUM) do not
 * belong here. */
void pgconn_transaction(struct pgconn *conn, const struct pgconn_stmt *stmts,
			int n, pgconn_result_fn cb, void *arg);

/* Queue a text of one or more statements without parameters (simple query
 * protocol); cb gets the last result, or the first error. */
void pgconn_exec(struct pgconn *conn, const char *sql, pgconn_result_fn cb,
		 void *arg);

/* Drop the connection (failing pending queries) and connect again. */
void pgconn_reset(struct pgconn *conn, const char *why);

bool pgconn_is_ready(const struct pgconn *conn);
/* Queries queued or in flight. */
unsigned pgconn_pending(const struct pgconn *conn);
/* A parameter the server reported for the current connection
 * (PQparameterStatus: "is_superuser", "session_authorization",
 * "server_version"), or NULL when not connected or not reported. */
const char *pgconn_parameter(const struct pgconn *conn, const char *name);
/* The server process id of the current connection, or 0. */
int pgconn_backend_pid(const struct pgconn *conn);
/* Increases by one on every successful connect. */
unsigned pgconn_generation(const struct pgconn *conn);
unsigned long pgconn_reconnects(const struct pgconn *conn);
const char *pgconn_name(const struct pgconn *conn);
/* The last connection error, or "". */
const char *pgconn_last_error(const struct pgconn *conn);

/* Environment for a child process that should reach the same database:
 * every setting of the live connection (PQconninfo) through its PG*
 * variable, TLS, timeouts and password included, and the daemon's own
 * PG* variables of unset options removed (child_conninfo_env in
 * child.h); free with pgconn_env_free. NULL if not connected. */
char **pgconn_child_env(const struct pgconn *conn);
void pgconn_env_free(char **env);

/* Close for good: pending queries fail, no reconnect. Do not call from
 * inside one of this connection's callbacks. */
void pgconn_free(struct pgconn *conn);

/* "42P01: relation ... does not exist" style text of a result's error. */
const char *pgconn_result_error(const PGresult *res);

#endif
