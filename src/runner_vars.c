/* runner_vars.c - a job's variables: the built-ins, the declared args,
 * the outputs of the steps that passed, and the `set` and `result` columns
 * a step's last row gives. */
#include "runner-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "jobdef.h"
#include "util.h"

/* Set (or replace) a variable; value NULL is SQL NULL. */
void runner_var_set(struct runner *r, const char *name, const char *value)
{
	for (unsigned i = 0; i < r->var_count; i++) {
		if (strcmp(r->vars[i].name, name) == 0) {
			free(r->vars[i].value);
			r->vars[i].value = value ? xstrdup(value) : NULL;
			return;
		}
	}
	r->vars = xrealloc(r->vars, (r->var_count + 1) * sizeof(*r->vars));
	r->vars[r->var_count].name = xstrdup(name);
	r->vars[r->var_count].value = value ? xstrdup(value) : NULL;
	r->var_count++;
}

/* The value of a variable for sqlvars_bind; NULL if unknown or NULL. */
const char *runner_var_lookup(const char *name, void *arg)
{
	struct runner *r = arg;

	for (unsigned i = 0; i < r->var_count; i++)
		if (strcmp(r->vars[i].name, name) == 0)
			return r->vars[i].value;
	return NULL;
}

/* Text of a JSON value as a variable: strings bare, the rest as JSON. */
char *runner_json_text(const json_t *value)
{
	if (json_is_string(value))
		return xstrdup(json_string_value(value));
	if (json_is_null(value))
		return NULL;
	return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* A NULL-terminated list of role names (NULL: none) as a JSON array text,
 * so that job SQL reads every name intact: jsonb_array_elements_text. */
static char *runner_roles_json(char *const *roles)
{
	json_t *array = json_array();
	char *text;

	for (unsigned i = 0; roles != NULL && roles[i] != NULL; i++)
		json_array_append_new(array, json_string(roles[i]));
	text = json_dumps(array, JSON_COMPACT);
	json_decref(array);
	return text;
}

/* Vars set by finished steps, args (or their defaults) and built-ins, in
 * that order so that a built-in always wins (resume_parse already refuses
 * progress vars that name an arg or a built-in). */
void runner_init_vars(struct runner *r)
{
	struct job *job = r->job;
	const struct config *config = job->engine->config;
	char buf[32];
	char *text;
	json_t *vars, *value;
	const char *key;

	vars = json_object_get(job->progress, "vars");
	json_object_foreach(vars, key, value) {
		text = runner_json_text(value);
		runner_var_set(r, key, text);
		free(text);
	}
	for (unsigned i = 0; i < job->def->arg_count; i++) {
		const struct jobdef_arg *arg = &job->def->args[i];

		value = json_object_get(job->args, arg->name);
		if (value != NULL) {
			text = runner_json_text(value);
			runner_var_set(r, arg->name, text);
			free(text);
		} else {
			runner_var_set(r, arg->name, arg->default_value);
		}
	}
	runner_var_set(r, "tenant_id", job->tenant_id);
	runner_var_set(r, "schema", job->schema);
	snprintf(buf, sizeof(buf), "%" PRId64, job->id);
	runner_var_set(r, "job_id", buf);
	runner_var_set(r, "kind", job->kind);
	snprintf(buf, sizeof(buf), "%d", job->attempts);
	runner_var_set(r, "attempt", buf);
	text = json_dumps(job->args, JSON_COMPACT);
	runner_var_set(r, "args", text);
	free(text);
	runner_var_set(r, "backup_dir", config->backup_dir);
	runner_var_set(r, "state_dir", config->state_dir);
	text = runner_roles_json(config->tenant_roles);
	runner_var_set(r, "tenant_roles", text);
	free(text);
}

/* The job progress's vars object, made if there is none yet. */
json_t *runner_progress_vars(struct runner *r)
{
	json_t *vars = json_object_get(r->job->progress, "vars");

	if (!json_is_object(vars)) {
		vars = json_object();
		json_object_set_new(r->job->progress, "vars", vars);
	}
	return vars;
}

/* Take the last row's `set` columns as variables and its `result`. */
bool runner_take_outputs(struct runner *r, enum job_outcome *outcome,
			 char **cause)
{
	const struct jobdef_step *s = r->step;
	json_t *vars;

	if (s->set_var_count > 0) {
		if (r->last_row == NULL) {
			*outcome = JOB_FAILED_RETRY;
			return set_cause(
				cause,
				"the last statement returned no row for `set`");
		}
		vars = runner_progress_vars(r);
		for (unsigned i = 0; i < s->set_var_count; i++) {
			json_t *v =
				json_object_get(r->last_row, s->set_vars[i]);
			char *text;

			if (v == NULL) {
				*outcome = JOB_FAILED_FINAL;
				return set_cause(
					cause,
					"`set` names column \"%s\" that the last statement does not return",
					s->set_vars[i]);
			}
			text = runner_json_text(v);
			runner_var_set(r, s->set_vars[i], text);
			free(text);
			json_object_set(vars, s->set_vars[i], v);
		}
	}
	if (s->result && r->last_row != NULL)
		json_object_update(r->job->result, r->last_row);
	return true;
}
