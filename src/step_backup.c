/* step_backup.c - the backup, backup_check, restore and restore_drill
 * steps, through backup. A backup first opens a REPEATABLE READ
 * transaction on the job's connection and exports its snapshot: pg_dump
 * dumps it (--snapshot) while a psql takes the digests of the schema's
 * tables (pgtenantd.table_digests) in it, both at once; the transaction
 * stays open, idle, until both are done. */
#include "runner-int.h"

#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "config.h"
#include "drill.h"
#include "engine.h"
#include "job.h"
#include "jobdef.h"
#include "sqlvars.h"

/* Variables a step produced: for the later steps and the job row. */
static void runner_set_outputs(struct runner *r, json_t *values)
{
	json_t *vars = runner_progress_vars(r), *v;
	const char *key;
	char *text;

	json_object_foreach(values, key, v) {
		text = runner_json_text(v);
		runner_var_set(r, key, text);
		free(text);
		json_object_set(vars, key, v);
	}
}

/* The snapshot transaction of a backup ended: the step is done. */
static void runner_backup_snapshot_closed(const struct pgconn_result *res,
					  void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	runner_step_done_autocommit(r);
}

static void runner_backup_done(const struct backup_result *br, void *arg)
{
	struct runner *r = arg;
	struct metrics *m = &r->job->engine->metrics;

	r->backup = NULL;
	r->busy = false;
	if (br->drill_outcome != NULL) {
		if (strcmp(br->drill_outcome, DRILL_PASSED) == 0)
			m->restore_drills_passed++;
		else
			m->restore_drills_failed++;
	}
	if (!br->ok) {
		/* runner_finish rolls back a backup's snapshot transaction */
		if (runner_interrupted(r))
			runner_finish(r, runner_interrupt_outcome(r), NULL);
		else
			runner_fail(r,
				    br->retry ? JOB_FAILED_RETRY :
						JOB_FAILED_FINAL,
				    "%s", br->error);
		return;
	}
	if (br->vars != NULL)
		runner_set_outputs(r, br->vars);
	if (br->result != NULL)
		json_object_update(r->job->result, br->result);
	if (!pgconn_is_ready(r->conn)) {
		runner_connection_lost(r);
		return;
	}
	if (r->in_txn) {
		/* read only: nothing to commit */
		r->in_txn = false;
		r->busy = true;
		pgconn_query(r->conn, "ROLLBACK", 0, NULL,
			     runner_backup_snapshot_closed, r);
		return;
	}
	runner_step_done_autocommit(r);
}

/* What a backup step starts with once its snapshot (if any) is taken. */
struct backup_start_ctx {
	struct runner *r;
	struct backup_request req;
	char *arg;
	char **env;
	char *snapshot;
};

static void backup_start_ctx_free(struct backup_start_ctx *ctx)
{
	free(ctx->arg);
	pgconn_env_free(ctx->env);
	free(ctx->snapshot);
	free(ctx);
}

/* Start the backup operation of the step. */
static void runner_backup_launch(struct backup_start_ctx *ctx)
{
	struct runner *r = ctx->r;

	ctx->req.arg = ctx->arg;
	ctx->req.env = ctx->env;
	ctx->req.snapshot = ctx->snapshot;
	r->busy = true;
	r->backup = backup_start(&ctx->req, runner_backup_done, r);
	backup_start_ctx_free(ctx);
}

/* The snapshot's id: pg_dump and the digests' psql import it. */
static void runner_backup_exported(const struct pgconn_result *res, void *arg)
{
	struct backup_start_ctx *ctx = arg;
	struct runner *r = ctx->r;

	if (!runner_query_ok(r, res)) {
		backup_start_ctx_free(ctx);
		return;
	}
	if (PQntuples(res->res) != 1 || PQgetisnull(res->res, 0, 0)) {
		backup_start_ctx_free(ctx);
		runner_fail(
			r, JOB_FAILED_RETRY,
			"backup of schema %s: pg_export_snapshot returned no row",
			r->job->schema);
		return;
	}
	ctx->snapshot = xstrdup(PQgetvalue(res->res, 0, 0));
	ctx->req.digests = true;
	runner_backup_launch(ctx);
}

/* Export the snapshot of the transaction that pg_dump will dump. */
static void runner_backup_begun(const struct pgconn_result *res, void *arg)
{
	struct backup_start_ctx *ctx = arg;
	struct runner *r = ctx->r;

	if (!runner_query_ok(r, res)) {
		backup_start_ctx_free(ctx);
		return;
	}
	r->busy = true;
	pgconn_query(r->conn, "SELECT pg_catalog.pg_export_snapshot()", 0, NULL,
		     runner_backup_exported, ctx);
}

void runner_backup_step(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	struct job *job = r->job;
	struct engine *e = job->engine;
	struct backup_request req = { 0 };
	struct backup_start_ctx *ctx;
	char *arg, *cause = NULL;
	const char *schema_bytes;
	char **env;

	arg = sqlvars_expand_word(s->target, runner_var_lookup, r, &cause);
	if (arg == NULL) {
		runner_fail(r, JOB_FAILED_FINAL, "%s", cause);
		free(cause);
		return;
	}
	env = pgconn_child_env(r->conn);
	if (env == NULL) {
		free(arg);
		runner_connection_lost(r);
		return;
	}
	req.kind = s->type == STEP_BACKUP	 ? BACKUP_MAKE :
		   s->type == STEP_BACKUP_CHECK	 ? BACKUP_CHECK :
		   s->type == STEP_RESTORE_DRILL ? BACKUP_DRILL :
						   BACKUP_RESTORE;
	req.base = e->base;
	req.ckpt = e->ckpt;
	req.backup_dir = e->config->backup_dir;
	req.keep = e->config->backup_keep;
	req.max_age_ms = e->config->backup_max_age_ms;
	req.restore_role = e->config->restore_role;
	req.env = env;
	req.timeout_ms = s->timeout_ms;
	req.job_id = job->id;
	req.tenant_id = job->tenant_id;
	req.schema = job->schema;
	req.test_gate = job->test_gate; /* only with test_hooks (job.c) */
	req.min_free_bytes = e->config->backup_min_free_bytes;
	/* a job file may measure the schema first (jobs/backup.yaml) */
	schema_bytes = runner_var_lookup("schema_bytes", r);
	if (schema_bytes != NULL)
		req.schema_bytes = strtoll(schema_bytes, NULL, 10);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->r = r;
	ctx->req = req;
	ctx->arg = arg;
	ctx->env = env;
	if (req.kind != BACKUP_MAKE || !e->config->backup_digests) {
		runner_backup_launch(ctx);
		return;
	}
	/* one snapshot for pg_dump and the digests; nothing to write */
	r->in_txn = true;
	r->busy = true;
	pgconn_query(r->conn,
		     "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
		     NULL, runner_backup_begun, ctx);
}
