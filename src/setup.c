/* setup.c - the daemon's own rows on each dispatcher session: the schema
 * installed or upgraded (schema.c), then the loaded job kinds published,
 * the configured limits written and the grants applied. */
#include "setup.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "jobdef.h"
#include "log.h"
#include "pgconn.h"
#include "schema.h"
#include "util.h"

struct setup {
	struct engine *e;
	setup_done_fn done;
	void *arg;
};

static void setup_published(const struct pgconn_result *r, void *arg)
{
	if (r->error != NULL) {
		if (!r->connection_lost)
			log_error("publishing job kinds failed: %s", r->error);
		return;
	}
	log_debug("published %s job kind(s) to pgtenantd.job_kinds",
		  PQgetvalue(r->res, 0, 0));
}

static void setup_limits_done(const struct pgconn_result *r, void *arg)
{
	if (r->error != NULL) {
		if (!r->connection_lost)
			log_error("writing limits and grants failed: %s",
				  r->error);
		return;
	}
	if (!PQgetisnull(r->res, 0, 0) && PQgetvalue(r->res, 0, 0)[0] != '\0')
		log_warning(
			"the group roles %s do not exist, so no role can be granted what they give: a superuser creates them with etc/pgtenantd-setup.sql (see README, Roles)",
			PQgetvalue(r->res, 0, 0));
}

/* Write the configured limits to pgtenantd.settings and (re)grant the
 * schema's objects to the group roles. */
static void setup_limits(struct engine *e)
{
	const struct config *c = e->config;
	char args[24], result[24], error[24], space[24];
	const char *params[3] = { args, result, error };
	const char *space_params[1] = { space };

	snprintf(args, sizeof(args), "%lld", (long long)c->args_bytes);
	snprintf(result, sizeof(result), "%lld", (long long)c->result_bytes);
	snprintf(error, sizeof(error), "%lld", (long long)c->error_bytes);
	pgconn_query(e->dispatcher,
		     "SELECT pgtenantd.daemon_setup($1::bigint, $2::bigint, "
		     "$3::bigint)",
		     3, params, setup_limits_done, NULL);
	/* the migration's space check reads database_max_bytes there */
	snprintf(space, sizeof(space), "%lld",
		 (long long)c->database_max_bytes);
	pgconn_query(e->dispatcher,
		     "SELECT pgtenantd.tenant_history_setup($1::bigint)", 1,
		     space_params, setup_limits_done, NULL);
}

void setup_publish_kinds(struct engine *e)
{
	const struct jobdefs *defs = e->jobdefs;
	json_t *kinds = json_array();
	const char *params[2];
	char *text;

	for (unsigned i = 0; i < defs->count; i++) {
		const struct jobdef *def = &defs->defs[i];
		json_t *args = json_array(), *steps = json_array();

		for (unsigned a = 0; a < def->arg_count; a++)
			json_array_append_new(
				args,
				json_pack("{s:s, s:b, s:s?, s:s?}", "name",
					  def->args[a].name, "required",
					  def->args[a].default_value == NULL,
					  "default", def->args[a].default_value,
					  "description",
					  def->args[a].description));
		/* published whatever test_hooks says, so that the INSERT
		 * trigger lets them through and a daemon that refuses them
		 * says why when it claims the job (runner.c) */
		for (unsigned a = 0; jobdef_reserved_args[a].name != NULL; a++)
			json_array_append_new(
				args,
				json_pack("{s:s, s:b, s:b, s:s}", "name",
					  jobdef_reserved_args[a].name,
					  "required", 0, "reserved", 1,
					  "description",
					  jobdef_reserved_args[a].description));
		for (unsigned s = 0; s < def->step_count; s++)
			json_array_append_new(steps,
					      json_string(def->steps[s].name));
		json_array_append_new(
			kinds,
			json_pack("{s:s, s:s, s:o, s:o, s:s, s:s}", "kind",
				  def->kind, "description",
				  def->description ? def->description : "",
				  "args", args, "steps", steps, "file",
				  def->file, "enqueue_role",
				  def->enqueue_role));
	}
	text = json_dumps(kinds, JSON_COMPACT);
	params[0] = e->owner;
	params[1] = text;
	pgconn_query(e->dispatcher,
		     "SELECT pgtenantd.publish_kinds($1, $2::jsonb)", 2, params,
		     setup_published, NULL);
	free(text);
	json_decref(kinds);
	setup_limits(e);
}

/* The schema is in place: publish and write what this daemon loaded. */
static void setup_schema_done(bool ok, const char *error, void *arg)
{
	struct setup *st = arg;

	if (ok)
		setup_publish_kinds(st->e);
	st->done(ok, error, st->arg);
	free(st);
}

void setup_start(struct engine *e, setup_done_fn done, void *arg)
{
	struct setup *st = xcalloc(1, sizeof(*st));

	st->e = e;
	st->done = done;
	st->arg = arg;
	schema_install(e->dispatcher, setup_schema_done, st);
}
