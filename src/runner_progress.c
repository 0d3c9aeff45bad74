/* runner_progress.c - where a job stands: its progress object, the ETA
 * for status, the checkpoint in SQLite, and the parameters of the job
 * row's copy that runner_mirror writes with each step's (or batch's)
 * work. */
#include "runner-int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ckpt.h"
#include "engine.h"
#include "jobdef.h"
#include "pace.h"
#include "util.h"

/* The progress object of where the job stands now. */
static json_t *runner_progress(struct runner *r, int step_index)
{
	const struct jobdef *def = r->job->def;
	json_t *p = json_object();
	json_t *vars = json_object_get(r->job->progress, "vars");
	double percent = -1;

	json_object_set_new(p, "step_index", json_integer(step_index));
	json_object_set_new(p, "steps_total", json_integer(def->step_count));
	if (step_index < (int)def->step_count)
		json_object_set_new(p, "step",
				    json_string(def->steps[step_index].name));
	if (r->step != NULL && step_index == r->step_index) {
		double elapsed = (double)(mono_ms() - r->step_started_ms) / 1e3;

		json_object_set_new(p, "step_elapsed_s",
				    json_real(round(elapsed * 1000) / 1000));
		if (r->step->type == STEP_BATCH) {
			json_object_set_new(p, "last_key",
					    r->last_key ?
						    json_string(r->last_key) :
						    json_null());
			json_object_set_new(p, "rows_done",
					    json_integer(r->rows_done));
			json_object_set_new(p, "batches",
					    json_integer(r->batches));
			json_object_set_new(p, "batch_size",
					    json_integer(r->batch_size));
			if (r->rate > 0)
				json_object_set_new(
					p, "rows_per_s",
					json_real(round(r->rate * 10) / 10));
			if (r->total_rows >= 0) {
				json_object_set_new(
					p, "total_rows",
					json_integer(r->total_rows));
				if (r->total_rows > 0)
					percent = 100.0 * (double)r->rows_done /
						  (double)r->total_rows;
				if (r->rate > 0 && r->total_rows > r->rows_done)
					json_object_set_new(
						p, "eta_s",
						json_integer(pace_eta_s(
							r->total_rows,
							r->rows_done,
							r->rate)));
			}
		} else if (r->each_rows != NULL) {
			int total = PQntuples(r->each_rows);

			json_object_set_new(p, "for_each_done",
					    json_integer(r->each_index));
			json_object_set_new(p, "for_each_total",
					    json_integer(total));
			if (total > 0)
				percent = 100.0 * r->each_index / total;
		}
	}
	if (percent < 0 && def->step_count > 0)
		percent = 100.0 * step_index / def->step_count;
	if (percent > 100)
		percent = 100;
	json_object_set_new(p, "percent", json_real(round(percent * 10) / 10));
	if (json_object_size(vars) > 0)
		json_object_set(p, "vars", vars);
	if (json_array_size(r->job->passed) > 0)
		json_object_set(p, "passed", r->job->passed);
	return p;
}

/* Progress for status: where the job stands, with an ETA when known. */
json_t *runner_status(const struct job *job)
{
	if (job->runner == NULL || job->runner->step == NULL)
		return json_copy(job->progress);
	return runner_progress(job->runner, job->runner->step_index);
}

/* Write a checkpoint of the current step to SQLite. */
void runner_save_ckpt(struct runner *r, bool done)
{
	struct ckpt_step cs = { 0 };
	char *cause = NULL;

	cs.job_id = r->job->id;
	cs.step_index = r->step_index;
	snprintf(cs.step_name, sizeof(cs.step_name), "%s", r->step->name);
	cs.last_key = r->last_key;
	cs.rows_done = r->step->type == STEP_BATCH ? r->rows_done :
						     r->each_index;
	cs.batches = r->batches;
	cs.batch_size = r->batch_size;
	cs.done = done;
	cs.updated_at = wall_seconds();
	cs.elapsed_ms = (double)(mono_ms() - r->step_started_ms);
	cs.started_at = cs.updated_at - cs.elapsed_ms / 1000.0;
	if (!ckpt_save(r->job->engine->ckpt, &cs, &cause)) {
		job_log_warning(r->job, "%s", cause);
		free(cause);
	}
}

void runner_progress_params(struct runner *r, int step_index,
			    struct runner_progress_params *pp)
{
	struct job *job = r->job;
	json_t *next = runner_progress(r, step_index);

	json_decref(job->progress);
	job->progress = next;
	pp->progress = json_dumps(job->progress,
				  JSON_COMPACT | JSON_REAL_PRECISION(6));
	pp->result = json_dumps(job->result, JSON_COMPACT);
	snprintf(pp->id, sizeof(pp->id), "%" PRId64, job->id);
	snprintf(pp->idx, sizeof(pp->idx), "%d", step_index);
	pp->values[0] = pp->id;
	pp->values[1] = job->engine->owner;
	pp->values[2] = step_index < (int)job->def->step_count ?
				job->def->steps[step_index].name :
				NULL;
	pp->values[3] = pp->idx;
	pp->values[4] = pp->progress;
	pp->values[5] = pp->result;
}

void runner_progress_settle(struct runner *r, int step_index)
{
	/* the new progress is built from the old one */
	json_t *progress = runner_progress(r, step_index);

	json_decref(r->job->progress);
	r->job->progress = progress;
}

void runner_progress_params_clear(struct runner_progress_params *pp)
{
	free(pp->progress);
	free(pp->result);
}

/* The local checkpoint of the current step, if any and not done. */
bool runner_load_ckpt(struct runner *r, struct ckpt_step *cs)
{
	bool found = false;
	char *cause = NULL;

	memset(cs, 0, sizeof(*cs));
	if (!ckpt_load(r->job->engine->ckpt, r->job->id, r->step_index, cs,
		       &found, &cause) &&
	    cause != NULL) {
		job_log_warning(r->job, "%s", cause);
		free(cause);
	}
	if (found && cs->done) {
		ckpt_step_clear(cs);
		found = false;
	}
	return found;
}
