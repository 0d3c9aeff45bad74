/* engine.c - the engine's shared state: its connections and workers. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "util.h"

/* Statement settings of every connection: orphaned backends notice a dead
 * daemon within a second, and notices stay quiet. */
#define CONNECTION_INIT_SQL                            \
	"SET client_connection_check_interval = '1s';" \
	"SET standard_conforming_strings = on;"        \
	"SET client_min_messages = warning;"

struct pgconn *engine_connect(struct engine *e, const char *name,
			      pgconn_state_fn on_state,
			      pgconn_notify_fn on_notify, void *arg)
{
	struct pgconn_options o = { 0 };
	char app[64];

	snprintf(app, sizeof(app), "%s %s", e->config->application_name, name);
	o.conninfo = e->config->database;
	o.name = name;
	o.application_name = app;
	o.init_sql = CONNECTION_INIT_SQL;
	o.reconnect_max_ms = e->config->reconnect_max_ms;
	return pgconn_new(e->base, &o, on_state, on_notify, arg);
}

unsigned engine_busy_workers(const struct engine *e)
{
	unsigned n = 0;

	for (unsigned i = 0; i < e->worker_count; i++)
		if (e->workers[i].job != NULL)
			n++;
	return n;
}

bool worker_is_free(const struct worker *w)
{
	return w->job == NULL && w->cancels_pending == 0 &&
	       pgconn_is_ready(w->conn);
}

/* Which worker a cancel was for: by index, since the workers may be gone
 * when the dispatcher fails its queries at exit. */
struct cancel_ctx {
	struct engine *e;
	unsigned worker;
};

static void engine_statement_cancelled(const struct pgconn_result *r, void *arg)
{
	struct cancel_ctx *ctx = arg;
	struct engine *e = ctx->e;

	if (r->error != NULL && !r->connection_lost)
		log_warning("cancelling a worker's statement failed: %s",
			    r->error);
	if (ctx->worker < e->worker_count && e->workers != NULL) {
		struct worker *w = &e->workers[ctx->worker];

		if (--w->cancels_pending == 0 && e->hooks.worker_free != NULL)
			e->hooks.worker_free(e);
	}
	free(ctx);
}

void engine_cancel_statement(struct worker *w)
{
	struct engine *e = w->engine;
	struct cancel_ctx *ctx;
	char pid[16];
	const char *params[1] = { pid };
	int backend_pid = pgconn_backend_pid(w->conn);

	if (backend_pid <= 0 || !pgconn_is_ready(e->dispatcher))
		return;
	snprintf(pid, sizeof(pid), "%d", backend_pid);
	ctx = xmalloc(sizeof(*ctx));
	ctx->e = e;
	ctx->worker = (unsigned)(w - e->workers);
	w->cancels_pending++;
	pgconn_query(e->dispatcher,
		     "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
		     " WHERE pid = $1::integer AND state = 'active'",
		     1, params, engine_statement_cancelled, ctx);
}

void timer_add_ms(struct event *timer, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(timer, &tv);
}
