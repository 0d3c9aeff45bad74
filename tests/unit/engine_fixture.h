/* engine_fixture.h - an engine of the daemon's without the daemon, for the
 * unit tests of the layers inside it (runner, queue): a database of its
 * own on the PostgreSQL of the PG* environment, the schema installed and
 * the test's job kinds published by setup_start, a SQLite checkpoint file
 * and its workers connected, all in a temporary directory. */
#ifndef PGT_ENGINE_FIXTURE_H
#define PGT_ENGINE_FIXTURE_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "engine.h"

#define FX_MAX_WORKERS 4

extern struct engine fx; /* the engine; fx.workers has fx.worker_count */
extern PGconn *fx_admin; /* the test's own synchronous session there */
/* If set: told when the dispatcher connection goes down or comes up
 * again (as the daemon tells its queue). */
extern void (*fx_on_dispatcher)(bool up);

/* Add job kind name (its YAML text) before fx_start. */
void fx_kind(const char *name, const char *yaml);

/* Set it all up: name names the database and directory; config_extra is
 * YAML lines added to the config (or NULL); on_notify gets the dispatcher
 * connection's notifications. False (said as a TAP comment) if anything
 * failed. */
bool fx_start(const char *name, unsigned workers, const char *config_extra,
	      pgconn_notify_fn on_notify, void *arg);

/* Close the connections: their pending queries fail, calling back now.
 * Call it before freeing a layer whose queries may still be pending (as
 * the daemon frees its connections before its queue). */
void fx_disconnect(void);

/* Tear it all down: connections, engine, database and directory. */
void fx_stop(void);

/* The first value of sql on fx_admin ("" for none), or "ERROR: ...". The
 * text lives until the next call. */
const char *fx_value(const char *sql);

/* Run the loop until *cond is true or seconds passed; returns *cond. */
bool fx_loop_until(const bool *cond, int seconds);

/* Run the loop for ms milliseconds. */
void fx_run_ms(int ms);

/* Run the loop until sql (on fx_admin) returns t, at most seconds;
 * returns whether it did. */
bool fx_wait_true(const char *sql, int seconds);

/* The temporary directory. */
const char *fx_dir(void);

#endif
