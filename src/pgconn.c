/* pgconn.c - one asynchronous libpq connection driven by the event loop. */
#include "pgconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "child.h"
#include "log.h"
#include "util.h"

enum pgconn_state {
	PGCONN_DOWN,	   /* waiting for the reconnect timer */
	PGCONN_CONNECTING, /* PQconnectPoll in progress */
	PGCONN_INIT,	   /* connected, running init_sql */
	PGCONN_READY,
	PGCONN_CLOSED, /* freed by its owner, no reconnect */
};

struct pgstmt {
	char *sql;
	int nparams;
	char **values;
	bool prepare; /* the caller asked for a prepared statement */
	bool used_prepared;
};

struct pgquery {
	struct pgquery *next;
	struct pgstmt *stmts;
	int nstmts;
	bool simple;   /* pgconn_exec: simple query protocol */
	bool pipeline; /* pgconn_transaction: one Sync for all */
	bool resent;   /* sent again after its prepared statement was gone */
	struct pgprepared *preparing; /* an internal Prepare, not a query */
	pgconn_result_fn cb;
	void *arg;
};

/* A statement prepared on the current session, by its text. ok false:
 * the Prepare failed (the statement goes unnamed on this session). */
struct pgprepared {
	struct pgprepared *next;
	char *sql;
	char name[24];
	bool ok;
};

/* At most this many prepared statements per session: callers prepare only
 * fixed texts of the engine, so the bound is never reached in practice. */
#define PGCONN_MAX_PREPARED 32

struct pgconn {
	struct event_base *base;
	char *conninfo;
	char *name;
	char *application_name;
	char *init_sql;
	int64_t reconnect_max_ms;
	int64_t connect_timeout_ms;
	pgconn_state_fn on_state;
	pgconn_notify_fn on_notify;
	void *arg;

	enum pgconn_state state;
	PGconn *pg;
	struct event *io;	/* socket readiness */
	short io_what;		/* events io is armed for */
	struct event *timer;	/* reconnect delay or connect timeout */
	struct event *deferred; /* fails queries while not ready */
	int failures;		/* consecutive failed connects */
	unsigned generation;
	unsigned long reconnects;
	char last_error[512];

	struct pgquery *head, *tail; /* head is in flight when sent */
	bool sent;
	bool flushing;
	PGresult *last_res;
	char *first_error;
	char sqlstate[6];
	char error_function[64]; /* the server function that raised it */
	int64_t sent_at;

	struct pgprepared *prepared; /* of the current session */
	unsigned prepared_count;
	unsigned prepared_seq; /* names pgt_1, pgt_2, ... */
};

/* Run first on every connection, before the owner's init_sql and any
 * query: built-in names resolve from pg_catalog and nothing another role
 * created (a public.format, a temporary table) shadows them, as pg_dump
 * does. A failure here resets the connection, so no query ever runs on a
 * session without it. */
#define PGCONN_SESSION_SQL "SET search_path = pg_catalog, pg_temp;"

static void pgconn_io_cb(evutil_socket_t fd, short what, void *arg);
static void pgconn_send_next(struct pgconn *c);
static void pgconn_lost(struct pgconn *c, const char *why);

/* Log a server notice at debug level instead of libpq's stderr default. */
static void pgconn_notice(void *arg, const char *message)
{
	struct pgconn *c = arg;

	log_msg(LOG_LEVEL_DEBUG, c->name, "server: %s", message);
}

/* Append a copy of one statement and its parameters to q. */
static void pgquery_add(struct pgquery *q, const char *sql, int nparams,
			const char *const *values)
{
	struct pgstmt *st;

	q->stmts = xrealloc(q->stmts, (q->nstmts + 1) * sizeof(*q->stmts));
	st = &q->stmts[q->nstmts++];
	memset(st, 0, sizeof(*st));
	st->sql = xstrdup(sql);
	st->nparams = nparams;
	st->values = xcalloc(nparams > 0 ? nparams : 1, sizeof(char *));
	for (int i = 0; values != NULL && i < nparams; i++)
		st->values[i] = values[i] ? xstrdup(values[i]) : NULL;
}

/* Free one queued query. */
static void pgquery_free(struct pgquery *q)
{
	for (int k = 0; k < q->nstmts; k++) {
		for (int i = 0; i < q->stmts[k].nparams; i++)
			free(q->stmts[k].values[i]);
		free(q->stmts[k].values);
		free(q->stmts[k].sql);
	}
	free(q->stmts);
	free(q);
}

/* Call every queued query's callback with a connection error. */
static void pgconn_fail_all(struct pgconn *c, const char *why)
{
	struct pgquery *q;
	struct pgconn_result r = {
		.error = why,
		.connection_lost = true,
	};

	while ((q = c->head) != NULL) {
		c->head = q->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->sent = false;
		if (q->cb != NULL)
			q->cb(&r, q->arg);
		pgquery_free(q);
	}
}

/* Deferred failure of queries queued while the connection is not ready. */
static void pgconn_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	if (c->state != PGCONN_READY && c->state != PGCONN_INIT)
		pgconn_fail_all(c, c->last_error[0] ?
					   c->last_error :
					   "not connected to the database");
	else if (!c->sent)
		pgconn_send_next(c);
}

/* Arm the socket event for the given readiness. */
static void pgconn_watch(struct pgconn *c, short what)
{
	int fd = PQsocket(c->pg);

	if (c->io != NULL &&
	    (event_get_fd(c->io) != fd || c->io_what != what)) {
		event_free(c->io);
		c->io = NULL;
	}
	if (c->io == NULL && fd >= 0) {
		c->io = event_new(c->base, fd, what | EV_PERSIST, pgconn_io_cb,
				  c);
		c->io_what = what;
		event_add(c->io, NULL);
	}
}

/* Forget the session's prepared statements (it ended, or they were
 * deallocated by DISCARD ALL or DEALLOCATE in job SQL). */
static void pgconn_forget_prepared(struct pgconn *c)
{
	struct pgprepared *p;

	while ((p = c->prepared) != NULL) {
		c->prepared = p->next;
		free(p->sql);
		free(p);
	}
	c->prepared_count = 0;
}

/* The prepared statement of sql on this session, or NULL. */
static struct pgprepared *pgconn_find_prepared(struct pgconn *c,
					       const char *sql)
{
	for (struct pgprepared *p = c->prepared; p != NULL; p = p->next)
		if (strcmp(p->sql, sql) == 0)
			return p;
	return NULL;
}

/* Close the libpq connection and its events. */
static void pgconn_close_pg(struct pgconn *c)
{
	pgconn_forget_prepared(c);
	if (c->io != NULL) {
		event_free(c->io);
		c->io = NULL;
	}
	if (c->last_res != NULL) {
		PQclear(c->last_res);
		c->last_res = NULL;
	}
	free(c->first_error);
	c->first_error = NULL;
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->sent = false;
	c->flushing = false;
}

/* The reconnect timer fired, or the connect timeout did. */
static void pgconn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	if (c->state == PGCONN_CONNECTING) {
		pgconn_lost(c, "timed out connecting to the database");
		return;
	}
	if (c->state == PGCONN_DOWN)
		pgconn_start(c);
}

/* Schedule the next connection attempt with backoff and jitter. */
static void pgconn_schedule_reconnect(struct pgconn *c)
{
	int64_t base = 100, delay;
	struct timeval tv;

	if (c->state == PGCONN_CLOSED)
		return;
	c->state = PGCONN_DOWN;
	delay = backoff_ms(c->failures + 1, base, c->reconnect_max_ms);
	c->failures++;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* The connection broke or could not be made: fail queries, retry later. */
static void pgconn_lost(struct pgconn *c, const char *why)
{
	bool was_up = c->state == PGCONN_READY || c->state == PGCONN_INIT;
	char reason[400];

	snprintf(reason, sizeof(reason), "%s", why);
	snprintf(c->last_error, sizeof(c->last_error),
		 "database connection lost: %.400s", reason);
	if (was_up)
		log_warning("%s: database connection lost: %s", c->name,
			    reason);
	else if (c->failures == 0 || c->failures % 10 == 0)
		log_warning("%s: cannot connect to the database: %s", c->name,
			    reason);
	evtimer_del(c->timer);
	pgconn_close_pg(c);
	pgconn_schedule_reconnect(c);
	pgconn_fail_all(c, c->last_error);
	if (was_up && c->on_state != NULL)
		c->on_state(c, false, c->arg);
}

/* Error text of a libpq connection without its trailing newline. */
static const char *pgconn_pq_error(struct pgconn *c)
{
	static char buf[512];
	size_t n;

	snprintf(buf, sizeof(buf), "%s",
		 c->pg ? PQerrorMessage(c->pg) : "out of memory");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

/* The init script finished: the connection is ready for queries. */
static void pgconn_init_done(const struct pgconn_result *r, void *arg)
{
	struct pgconn *c = arg;

	if (r->connection_lost)
		return;
	if (r->error != NULL) {
		log_error("%s: connection setup failed: %s", c->name, r->error);
		pgconn_reset(c, "connection setup failed");
		return;
	}
	c->state = PGCONN_READY;
	if (c->on_state != NULL)
		c->on_state(c, true, c->arg);
}

/* PQconnectPoll reached CONNECTION_OK. */
static void pgconn_connected(struct pgconn *c)
{
	struct pgquery *q;

	evtimer_del(c->timer);
	PQsetnonblocking(c->pg, 1);
	PQsetNoticeProcessor(c->pg, pgconn_notice, c);
	if (c->generation > 0)
		c->reconnects++;
	c->generation++;
	c->failures = 0;
	c->last_error[0] = '\0';
	log_msg(c->generation > 1 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, c->name,
		"connected to the database (backend pid %d)",
		PQbackendPID(c->pg));
	pgconn_watch(c, EV_READ);
	q = xcalloc(1, sizeof(*q));
	c->state = PGCONN_INIT;
	pgquery_add(q, c->init_sql, 0, NULL);
	q->simple = true;
	q->cb = pgconn_init_done;
	q->arg = c;
	q->next = c->head;
	c->head = q;
	if (c->tail == NULL)
		c->tail = q;
	pgconn_send_next(c);
}

/* Advance the non-blocking connection handshake. */
static void pgconn_poll_connect(struct pgconn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		pgconn_watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		pgconn_watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		pgconn_connected(c);
		break;
	default:
		pgconn_lost(c, pgconn_pq_error(c));
		break;
	}
}

/* Begin connecting (and keep reconnecting after failures). */
void pgconn_start(struct pgconn *c)
{
	const char *keys[] = { "dbname", "fallback_application_name", NULL,
			       NULL };
	const char *values[] = { c->conninfo, c->application_name, NULL, NULL };
	struct timeval tv;

	if (c->state == PGCONN_CLOSED || c->state == PGCONN_CONNECTING ||
	    c->state == PGCONN_READY || c->state == PGCONN_INIT)
		return;
	evtimer_del(c->timer);
	c->pg = PQconnectStartParams(keys, values, 1);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
		c->state = PGCONN_CONNECTING;
		pgconn_lost(c, pgconn_pq_error(c));
		return;
	}
	c->state = PGCONN_CONNECTING;
	tv.tv_sec = c->connect_timeout_ms / 1000;
	tv.tv_usec = (c->connect_timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	pgconn_poll_connect(c);
}

/* Hand each pending notification to the owner. */
static void pgconn_drain_notifies(struct pgconn *c)
{
	PGnotify *n;

	while (c->pg != NULL && (n = PQnotifies(c->pg)) != NULL) {
		if (c->on_notify != NULL)
			c->on_notify(c, n->relname, n->extra, c->arg);
		PQfreemem(n);
	}
}

/* Whether q failed because a prepared statement it used is gone (job SQL
 * ran DISCARD ALL or DEALLOCATE) or no longer fits (a newer schema version
 * changed the row type it returns: "cached plan must not change result
 * type"): nothing of it ran, so it goes again, once, with the statements
 * prepared anew. */
static bool pgconn_lost_prepared(struct pgconn *c, struct pgquery *q)
{
	bool used = false;

	if (c->first_error == NULL || q->resent)
		return false;
	/* the function, not the message, which lc_messages may translate */
	if (strcmp(c->sqlstate, "26000") != 0 &&
	    !(strcmp(c->sqlstate, "0A000") == 0 &&
	      strcmp(c->error_function, "RevalidateCachedQuery") == 0))
		return false;
	for (int k = 0; k < q->nstmts; k++)
		used = used || q->stmts[k].used_prepared;
	if (!used)
		return false;
	log_msg(LOG_LEVEL_DEBUG, c->name,
		"prepared statements are gone or out of date (%s): preparing them again",
		c->first_error);
	pgconn_forget_prepared(c);
	for (int k = 0; k < q->nstmts; k++)
		q->stmts[k].used_prepared = false;
	q->resent = true;
	return true;
}

/* Forget what was collected for the query just completed. */
static void pgconn_clear_results(struct pgconn *c)
{
	if (c->last_res != NULL) {
		PQclear(c->last_res);
		c->last_res = NULL;
	}
	free(c->first_error);
	c->first_error = NULL;
	c->sqlstate[0] = '\0';
	c->error_function[0] = '\0';
}

/* The head query's results are all in: hand them to its callback, or send
 * it again when it failed only because its prepared statements were gone. */
static void pgconn_complete(struct pgconn *c)
{
	struct pgquery *q = c->head;
	struct pgconn_result r = { 0 };

	c->sent = false;
	if (q->preparing != NULL) {
		q->preparing->ok = c->first_error == NULL;
	} else if (pgconn_lost_prepared(c, q)) {
		/* q stays at the head and goes out again, its result unseen */
		pgconn_clear_results(c);
		return;
	}
	c->head = q->next;
	if (c->head == NULL)
		c->tail = NULL;
	r.elapsed_ms = (double)(mono_ms() - c->sent_at);
	if (c->first_error != NULL) {
		r.error = c->first_error;
		r.sqlstate = c->sqlstate[0] ? c->sqlstate : NULL;
	} else {
		r.res = c->last_res;
	}
	if (q->cb != NULL)
		q->cb(&r, q->arg);
	pgquery_free(q);
	pgconn_clear_results(c);
}

/* Collect results while libpq has them without blocking. */
static void pgconn_read_results(struct pgconn *c)
{
	while (c->pg != NULL && c->sent && !PQisBusy(c->pg)) {
		PGresult *res = PQgetResult(c->pg);
		bool pipeline = c->head->pipeline;
		ExecStatusType st;

		if (res == NULL && pipeline)
			continue; /* the end of one statement's results */
		if (res != NULL && pipeline &&
		    (PQresultStatus(res) == PGRES_PIPELINE_SYNC ||
		     PQresultStatus(res) == PGRES_PIPELINE_ABORTED)) {
			bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;

			PQclear(res);
			if (!sync)
				continue;
			if (!PQexitPipelineMode(c->pg)) {
				pgconn_lost(c, pgconn_pq_error(c));
				return;
			}
			res = NULL;
		}
		if (res == NULL) {
			pgconn_complete(c);
			if (c->state == PGCONN_READY || c->state == PGCONN_INIT)
				pgconn_send_next(c);
			return;
		}
		st = PQresultStatus(res);
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ||
		    st == PGRES_NONFATAL_ERROR) {
			if (c->first_error == NULL) {
				const char *code = PQresultErrorField(
					res, PG_DIAG_SQLSTATE);

				const char *fn = PQresultErrorField(
					res, PG_DIAG_SOURCE_FUNCTION);

				c->first_error =
					xstrdup(pgconn_result_error(res));
				snprintf(c->sqlstate, sizeof(c->sqlstate), "%s",
					 code ? code : "");
				snprintf(c->error_function,
					 sizeof(c->error_function), "%s",
					 fn ? fn : "");
			}
			PQclear(res);
		} else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
			   st == PGRES_COPY_BOTH) {
			PQclear(res);
			pgconn_lost(c, "COPY is not supported in job SQL");
			return;
		} else {
			if (c->last_res != NULL)
				PQclear(c->last_res);
			c->last_res = res;
		}
	}
}

/* Socket readiness: advance the handshake, flush output, read results. */
static void pgconn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	if (c->state == PGCONN_CONNECTING) {
		pgconn_poll_connect(c);
		return;
	}
	if (c->pg == NULL)
		return;
	if ((what & EV_WRITE) && c->flushing) {
		int rc = PQflush(c->pg);

		if (rc < 0) {
			pgconn_lost(c, pgconn_pq_error(c));
			return;
		}
		if (rc == 0) {
			c->flushing = false;
			pgconn_watch(c, EV_READ);
		}
	}
	if (what & EV_READ) {
		if (!PQconsumeInput(c->pg)) {
			pgconn_lost(c, pgconn_pq_error(c));
			return;
		}
		pgconn_drain_notifies(c);
		pgconn_read_results(c);
		pgconn_drain_notifies(c);
		if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_BAD)
			pgconn_lost(c, pgconn_pq_error(c));
	}
}

/* Put a Prepare of the first statement of q that asks for one and has none
 * on this session in front of q; NULL if there is none to make. */
static struct pgquery *pgconn_prepare_first(struct pgconn *c, struct pgquery *q)
{
	struct pgquery *qp;
	struct pgprepared *p;

	if (q->simple || q->preparing != NULL)
		return NULL;
	for (int k = 0; k < q->nstmts; k++) {
		if (!q->stmts[k].prepare ||
		    pgconn_find_prepared(c, q->stmts[k].sql) != NULL ||
		    c->prepared_count >= PGCONN_MAX_PREPARED)
			continue;
		p = xcalloc(1, sizeof(*p));
		p->sql = xstrdup(q->stmts[k].sql);
		snprintf(p->name, sizeof(p->name), "pgt_%u", ++c->prepared_seq);
		p->next = c->prepared;
		c->prepared = p;
		c->prepared_count++;
		qp = xcalloc(1, sizeof(*qp));
		pgquery_add(qp, p->sql, q->stmts[k].nparams, NULL);
		qp->preparing = p;
		qp->next = q;
		c->head = qp;
		return qp;
	}
	return NULL;
}

/* Send one statement: by its prepared name where the session has one. */
static int pgconn_send_stmt(struct pgconn *c, struct pgstmt *st)
{
	struct pgprepared *p = st->prepare ? pgconn_find_prepared(c, st->sql) :
					     NULL;

	if (p != NULL && p->ok) {
		st->used_prepared = true;
		return PQsendQueryPrepared(c->pg, p->name, st->nparams,
					   (const char *const *)st->values,
					   NULL, NULL, 0);
	}
	return PQsendQueryParams(c->pg, st->sql, st->nparams, NULL,
				 (const char *const *)st->values, NULL, NULL,
				 0);
}

/* Send the query at the head of the queue if nothing is in flight. */
static void pgconn_send_next(struct pgconn *c)
{
	struct pgquery *q = c->head, *qp;
	int ok, rc;

	if (q == NULL || c->sent || c->pg == NULL ||
	    (c->state != PGCONN_READY && c->state != PGCONN_INIT))
		return;
	if ((qp = pgconn_prepare_first(c, q)) != NULL)
		q = qp;
	if (q->preparing != NULL) {
		ok = PQsendPrepare(c->pg, q->preparing->name, q->stmts[0].sql,
				   q->stmts[0].nparams, NULL);
	} else if (q->simple) {
		ok = PQsendQuery(c->pg, q->stmts[0].sql);
	} else if (q->pipeline) {
		ok = PQenterPipelineMode(c->pg);
		for (int k = 0; ok && k < q->nstmts; k++)
			ok = pgconn_send_stmt(c, &q->stmts[k]);
		if (ok)
			ok = PQpipelineSync(c->pg);
	} else {
		ok = pgconn_send_stmt(c, &q->stmts[0]);
	}
	if (!ok) {
		pgconn_lost(c, pgconn_pq_error(c));
		return;
	}
	c->sent = true;
	c->sent_at = mono_ms();
	rc = PQflush(c->pg);
	if (rc < 0) {
		pgconn_lost(c, pgconn_pq_error(c));
	} else if (rc == 1) {
		c->flushing = true;
		pgconn_watch(c, EV_READ | EV_WRITE);
	}
}

/* Append a query and send it, or fail it on the next turn if not ready. */
static void pgconn_enqueue(struct pgconn *c, struct pgquery *q)
{
	if (c->tail != NULL)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	if (c->state == PGCONN_READY && !c->sent)
		event_active(c->deferred, EV_TIMEOUT, 0);
	else if (c->state != PGCONN_READY && c->state != PGCONN_INIT)
		event_active(c->deferred, EV_TIMEOUT, 0);
}

/* Queue one statement with text parameters. */
void pgconn_query(struct pgconn *c, const char *sql, int nparams,
		  const char *const *values, pgconn_result_fn cb, void *arg)
{
	struct pgquery *q = xcalloc(1, sizeof(*q));

	pgquery_add(q, sql, nparams, values);
	q->cb = cb;
	q->arg = arg;
	pgconn_enqueue(c, q);
}

/* Queue one statement as pgconn_query does, prepared once per session. */
void pgconn_query_prepared(struct pgconn *c, const char *sql, int nparams,
			   const char *const *values, pgconn_result_fn cb,
			   void *arg)
{
	struct pgquery *q = xcalloc(1, sizeof(*q));

	pgquery_add(q, sql, nparams, values);
	q->stmts[0].prepare = true;
	q->cb = cb;
	q->arg = arg;
	pgconn_enqueue(c, q);
}

/* Queue a text of one or more statements without parameters. */
void pgconn_exec(struct pgconn *c, const char *sql, pgconn_result_fn cb,
		 void *arg)
{
	struct pgquery *q = xcalloc(1, sizeof(*q));

	pgquery_add(q, sql, 0, NULL);
	q->simple = true;
	q->cb = cb;
	q->arg = arg;
	pgconn_enqueue(c, q);
}

/* Queue statements to run in one round trip as one implicit transaction:
 * pipeline mode with a single Sync, so they commit together or not at all. */
void pgconn_transaction(struct pgconn *c, const struct pgconn_stmt *stmts,
			int n, pgconn_result_fn cb, void *arg)
{
	struct pgquery *q = xcalloc(1, sizeof(*q));

	for (int k = 0; k < n; k++) {
		pgquery_add(q, stmts[k].sql, stmts[k].nparams, stmts[k].values);
		q->stmts[k].prepare = stmts[k].prepare;
	}
	q->pipeline = true;
	q->cb = cb;
	q->arg = arg;
	pgconn_enqueue(c, q);
}

struct pgconn *pgconn_new(struct event_base *base,
			  const struct pgconn_options *o,
			  pgconn_state_fn on_state, pgconn_notify_fn on_notify,
			  void *arg)
{
	struct pgconn *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->conninfo = xstrdup(o->conninfo ? o->conninfo : "");
	c->name = xstrdup(o->name ? o->name : "db");
	c->application_name = xstrdup(
		o->application_name ? o->application_name : "pgtenantd");
	c->init_sql = xasprintf("%s%s", PGCONN_SESSION_SQL,
				o->init_sql ? o->init_sql : "");
	c->reconnect_max_ms = o->reconnect_max_ms > 0 ? o->reconnect_max_ms :
							30000;
	c->connect_timeout_ms =
		o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	c->on_state = on_state;
	c->on_notify = on_notify;
	c->arg = arg;
	c->state = PGCONN_DOWN;
	c->timer = evtimer_new(base, pgconn_timer_cb, c);
	c->deferred = event_new(base, -1, 0, pgconn_deferred_cb, c);
	return c;
}

/* Drop the connection (failing pending queries) and connect again. */
void pgconn_reset(struct pgconn *c, const char *why)
{
	if (c->state == PGCONN_CLOSED)
		return;
	c->failures = 0;
	pgconn_lost(c, why);
}

bool pgconn_is_ready(const struct pgconn *c)
{
	return c->state == PGCONN_READY;
}

unsigned pgconn_pending(const struct pgconn *c)
{
	unsigned n = 0;

	for (const struct pgquery *q = c->head; q != NULL; q = q->next)
		n++;
	return n;
}

const char *pgconn_parameter(const struct pgconn *c, const char *name)
{
	if (c->pg == NULL ||
	    (c->state != PGCONN_READY && c->state != PGCONN_INIT))
		return NULL;
	return PQparameterStatus(c->pg, name);
}

int pgconn_backend_pid(const struct pgconn *c)
{
	return c->state == PGCONN_READY || c->state == PGCONN_INIT ?
		       PQbackendPID(c->pg) :
		       0;
}

unsigned pgconn_generation(const struct pgconn *c)
{
	return c->generation;
}

unsigned long pgconn_reconnects(const struct pgconn *c)
{
	return c->reconnects;
}

const char *pgconn_name(const struct pgconn *c)
{
	return c->name;
}

const char *pgconn_last_error(const struct pgconn *c)
{
	return c->last_error;
}

/* Environment that points a child process at the same database with
 * every setting of the live connection, TLS included (child.h). */
char **pgconn_child_env(const struct pgconn *c)
{
	PQconninfoOption *opts;
	char **env;

	if (c->pg == NULL || c->state != PGCONN_READY)
		return NULL;
	opts = PQconninfo(c->pg);
	if (opts == NULL)
		return NULL;
	env = child_conninfo_env(opts);
	PQconninfoFree(opts);
	return env;
}

void pgconn_env_free(char **env)
{
	strv_free(env);
}

/* Close for good. */
void pgconn_free(struct pgconn *c)
{
	if (c == NULL)
		return;
	c->state = PGCONN_CLOSED;
	evtimer_del(c->timer);
	pgconn_close_pg(c);
	pgconn_fail_all(c, "database connection closed");
	event_free(c->timer);
	event_free(c->deferred);
	free(c->conninfo);
	free(c->name);
	free(c->application_name);
	free(c->init_sql);
	free(c);
}

/* The primary message of a failed result, with its SQLSTATE in front. */
const char *pgconn_result_error(const PGresult *res)
{
	static char buf[2048];
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

	if (msg == NULL) {
		size_t n;

		snprintf(buf, sizeof(buf), "%s", PQresultErrorMessage(res));
		n = strlen(buf);
		while (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s", code ? code : "",
		 code ? ": " : "", msg, detail ? " (" : "",
		 detail ? detail : "", detail ? ")" : "", hint ? "" : "");
	if (hint != NULL) {
		size_t n = strlen(buf);

		snprintf(buf + n, sizeof(buf) - n, " HINT: %s", hint);
	}
	return buf;
}
