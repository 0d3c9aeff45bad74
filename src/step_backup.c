/* step_backup.c - the backup, backup_check and restore steps, through
 * backup. */
#include "runner-int.h"

#include <stdlib.h>

#include "backup.h"
#include "config.h"
#include "engine.h"
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

static void runner_backup_done(const struct backup_result *br, void *arg)
{
	struct runner *r = arg;

	r->backup = NULL;
	r->busy = false;
	if (!br->ok) {
		if (runner_interrupted(r))
			runner_end(r, runner_interrupt_outcome(r), NULL);
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
	runner_step_done_autocommit(r);
}

void runner_backup_step(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	struct job *job = r->job;
	struct engine *e = job->engine;
	struct backup_request req = { 0 };
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
	req.kind = s->type == STEP_BACKUP	? BACKUP_MAKE :
		   s->type == STEP_BACKUP_CHECK ? BACKUP_CHECK :
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
	req.arg = arg;
	req.min_free_bytes = e->config->backup_min_free_bytes;
	/* a job file may measure the schema first (jobs/backup.yaml) */
	schema_bytes = runner_var_lookup("schema_bytes", r);
	if (schema_bytes != NULL)
		req.schema_bytes = strtoll(schema_bytes, NULL, 10);
	r->busy = true;
	r->backup = backup_start(&req, runner_backup_done, r);
	free(arg);
	pgconn_env_free(env);
}
