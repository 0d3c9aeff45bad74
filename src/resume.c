/* resume.c - where a claimed job resumes: its row's step and progress,
 * checked against the job's definition before the runner trusts them.
 *
 * The row is written by save_progress only (the INSERT trigger refuses
 * these columns from enqueuers), but the runner does not rely on that:
 * anything that is not what save_progress writes for this kind fails the
 * job instead of steering it. A row that passes can still only name a
 * position inside the kind's own steps, never override a built-in or an
 * arg, and never claim that a step at or after it passed. */
#include "resume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "jobdef.h"

/* Index of the step called name in def, or -1. */
static int resume_step_named(const struct jobdef *def, const char *name)
{
	for (unsigned i = 0; i < def->step_count; i++)
		if (strcmp(def->steps[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Whether name is in a NULL-terminated list. */
static bool resume_in_list(const char *const *list, const char *name)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

/* Whether step s sets name (`set`, or a backup type's outputs). */
static bool resume_step_sets(const struct jobdef_step *s, const char *name)
{
	for (unsigned k = 0; k < s->set_var_count; k++)
		if (strcmp(s->set_vars[k], name) == 0)
			return true;
	return (s->type == STEP_BACKUP || s->type == STEP_BACKUP_CHECK) &&
	       resume_in_list(jobdef_backup_vars, name);
}

/* Whether the step at index k is in rp->passed. */
static bool resume_has_passed(const struct jobdef *def,
			      const struct resume_point *rp, int k)
{
	size_t i;
	json_t *v;

	json_array_foreach(rp->passed, i, v)
		if (strcmp(json_string_value(v), def->steps[k].name) == 0)
			return true;
	return false;
}

/* Whether a variable name can be in the progress of a job at
 * rp->step_index: an output of a step that passed before it, or a `set` of
 * the for_each step it is in (set on every row, saved with the row). */
static bool resume_var_known(const struct jobdef *def,
			     const struct resume_point *rp, const char *name)
{
	for (int k = 0; k < rp->step_index && k < (int)def->step_count; k++)
		if (resume_step_sets(&def->steps[k], name) &&
		    resume_has_passed(def, rp, k))
			return true;
	if (rp->step_index < (int)def->step_count) {
		const struct jobdef_step *s = &def->steps[rp->step_index];

		return s->type == STEP_SQL && s->has_for_each &&
		       resume_step_sets(s, name);
	}
	return false;
}

/* A progress key that must be a non-negative integer if present; false
 * with cause if it is something else. */
static bool resume_count(const json_t *progress, const char *key, bool *present,
			 int64_t *value, char **cause)
{
	const json_t *v = json_object_get(progress, key);

	*present = v != NULL;
	*value = 0;
	if (v == NULL)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return set_cause(cause,
				 "progress.%s is not a non-negative integer",
				 key);
	*value = (int64_t)json_integer_value(v);
	return true;
}

/* The step_index column as an integer in 0..step_count. */
static bool resume_index(const struct jobdef *def, const char *text, int *out,
			 char **cause)
{
	char *end, *shown;
	long long v;

	*out = 0;
	if (text == NULL)
		return true;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno == 0 && end != text && *end == '\0' && v >= 0 &&
	    v <= (long long)def->step_count) {
		*out = (int)v;
		return true;
	}
	shown = display_escape(text, 40, false);
	set_cause(cause, "step_index '%s' is not a step of kind %s (0 to %u)",
		  shown, def->kind, def->step_count);
	free(shown);
	return false;
}

/* Check progress.passed; fills rp->passed with a copy. */
static bool resume_passed(const struct jobdef *def, const json_t *progress,
			  struct resume_point *rp, char **cause)
{
	const json_t *passed = json_object_get(progress, "passed");
	bool *seen;
	size_t i;
	json_t *v;
	bool good = true;

	rp->passed = json_array();
	if (passed != NULL && !json_is_array(passed))
		return set_cause(cause, "progress.passed is not an array");
	seen = xcalloc(def->step_count + 1, sizeof(*seen));
	json_array_foreach(passed, i, v) {
		int k;

		if (!json_is_string(v)) {
			good = set_cause(cause,
					 "progress.passed[%zu] is not a string",
					 i);
			break;
		}
		k = resume_step_named(def, json_string_value(v));
		if (k < 0 || k >= rp->step_index) {
			char *shown =
				display_escape(json_string_value(v), 80, false);

			good = set_cause(
				cause,
				k < 0 ? "progress.passed names '%s', which is not a step of kind %s" :
					"progress.passed names step '%s', which is not before the step the job resumes at in kind %s",
				shown, def->kind);
			free(shown);
			break;
		}
		if (seen[k]) {
			good = set_cause(
				cause, "progress.passed names step '%s' twice",
				def->steps[k].name);
			break;
		}
		seen[k] = true;
		json_array_append(rp->passed, v);
	}
	for (int k = 0; good && k < rp->step_index; k++)
		if (!seen[k] && !def->steps[k].has_when)
			good = set_cause(
				cause,
				"progress.passed lacks step '%s', which has no `when` and is before the step the job resumes at",
				def->steps[k].name);
	free(seen);
	return good;
}

/* Check progress.vars; fills rp->vars with a copy. */
static bool resume_vars(const struct jobdef *def, const json_t *progress,
			struct resume_point *rp, char **cause)
{
	const json_t *vars = json_object_get(progress, "vars");
	const char *key;
	json_t *v;

	if (vars == NULL)
		return true;
	if (!json_is_object(vars))
		return set_cause(cause, "progress.vars is not an object");
	json_object_foreach((json_t *)vars, key, v) {
		char *shown;

		if (resume_var_known(def, rp, key) &&
		    !resume_in_list(jobdef_builtin_vars, key) &&
		    !resume_in_list(jobdef_batch_vars, key))
			continue;
		shown = display_escape(key, 80, false);
		set_cause(
			cause,
			"progress.vars sets '%s', which no step of kind %s that passed before the step the job resumes at sets",
			shown, def->kind);
		free(shown);
		return false;
	}
	rp->vars = json_deep_copy(vars);
	return true;
}

/* Check the position inside the step: batch or for_each counters. */
static bool resume_position(const struct jobdef *def, const json_t *progress,
			    struct resume_point *rp, char **cause)
{
	const struct jobdef_step *s = rp->step_index < (int)def->step_count ?
					      &def->steps[rp->step_index] :
					      NULL;
	const json_t *key = json_object_get(progress, "last_key");
	bool has_rows, has_batches, has_size, has_done;

	if (!resume_count(progress, "rows_done", &has_rows, &rp->rows_done,
			  cause) ||
	    !resume_count(progress, "batches", &has_batches, &rp->batches,
			  cause) ||
	    !resume_count(progress, "batch_size", &has_size, &rp->batch_size,
			  cause) ||
	    !resume_count(progress, "for_each_done", &has_done,
			  &rp->for_each_done, cause))
		return false;
	if (key != NULL && !json_is_string(key) && !json_is_null(key))
		return set_cause(
			cause,
			"progress.last_key is neither a string nor null");
	if (has_rows || has_batches || has_size || key != NULL) {
		if (s == NULL || s->type != STEP_BATCH)
			return set_cause(
				cause,
				"progress has batch counters but step %d of kind %s is not a batch step",
				rp->step_index + 1, def->kind);
		if (!has_batches)
			return set_cause(
				cause,
				"progress has batch counters without progress.batches");
		rp->has_batch = true;
		rp->last_key = json_is_string(key) ?
				       xstrdup(json_string_value(key)) :
				       NULL;
	}
	if (has_done) {
		if (s == NULL || s->type != STEP_SQL || !s->has_for_each)
			return set_cause(
				cause,
				"progress.for_each_done is set but step %d of kind %s has no for_each",
				rp->step_index + 1, def->kind);
		rp->has_for_each = true;
	}
	return true;
}

/* Check the step named by the row against def. */
static bool resume_step(const struct jobdef *def, const char *step,
			const json_t *progress, struct resume_point *rp,
			char **cause)
{
	const json_t *pidx = json_object_get(progress, "step_index");
	const json_t *pstep = json_object_get(progress, "step");
	const char *want = rp->step_index < (int)def->step_count ?
				   def->steps[rp->step_index].name :
				   NULL;
	char *shown, *shown_col;

	if (!json_is_integer(pidx) ||
	    json_integer_value(pidx) != rp->step_index)
		return set_cause(
			cause,
			"progress.step_index does not match the row's step_index %d",
			rp->step_index);
	if (pstep != NULL && !json_is_string(pstep))
		return set_cause(cause, "progress.step is not a string");
	if (want == NULL ?
		    pstep == NULL && step == NULL :
		    json_is_string(pstep) && step != NULL &&
			    strcmp(json_string_value(pstep), want) == 0 &&
			    strcmp(step, want) == 0)
		return true;
	shown = display_escape(
		json_is_string(pstep) ? json_string_value(pstep) : "(none)", 80,
		false);
	shown_col = display_escape(step ? step : "(none)", 80, false);
	set_cause(
		cause,
		"progress.step '%s' and the row's step '%s' are not both step %d of kind %s ('%s')",
		shown, shown_col, rp->step_index + 1, def->kind,
		want ? want : "(none): the end");
	free(shown);
	free(shown_col);
	return false;
}

bool resume_parse(const struct jobdef *def, const char *step,
		  const char *step_index, const char *progress,
		  struct resume_point *out, char **cause)
{
	json_error_t jerr;
	json_t *p;

	memset(out, 0, sizeof(*out));
	if (!resume_index(def, step_index, &out->step_index, cause))
		goto bad;
	p = progress != NULL ? json_loads(progress, 0, &jerr) : json_object();
	if (p == NULL) {
		set_cause(cause, "progress is not JSON: %s", jerr.text);
		goto bad;
	}
	out->progress = p;
	if (!json_is_object(p)) {
		set_cause(cause, "progress is not a JSON object");
		goto bad;
	}
	if (json_object_size(p) == 0) {
		/* What a job that never ran has. */
		out->passed = json_array();
		if (out->step_index != 0 ||
		    (step != NULL && (def->step_count == 0 ||
				      strcmp(step, def->steps[0].name) != 0))) {
			set_cause(
				cause,
				"the row is at step_index %d without progress",
				out->step_index);
			goto bad;
		}
		return true;
	}
	if (!resume_step(def, step, p, out, cause) ||
	    !resume_passed(def, p, out, cause) ||
	    !resume_vars(def, p, out, cause) ||
	    !resume_position(def, p, out, cause))
		goto bad;
	return true;
bad:
	if (cause != NULL && *cause != NULL) {
		char *full = xasprintf(
			"the job row does not hold what pgtenantd wrote: %s",
			*cause);

		free(*cause);
		*cause = full;
	}
	resume_clear(out);
	return false;
}

void resume_clear(struct resume_point *rp)
{
	json_decref(rp->progress);
	json_decref(rp->passed);
	json_decref(rp->vars);
	free(rp->last_key);
	memset(rp, 0, sizeof(*rp));
}

enum resume_pick resume_pick_batch(int64_t row_batches, int64_t local_batches)
{
	if (local_batches < 0 || local_batches == row_batches)
		return RESUME_ROW;
	return local_batches < row_batches ? RESUME_LOCAL :
					     RESUME_ROW_LOCAL_AHEAD;
}

enum resume_pick resume_pick_for_each(int64_t row_done, bool transactional,
				      int64_t local_done, int64_t *done)
{
	int64_t row = row_done >= 0 ? row_done : transactional ? 0 : -1;

	*done = row > 0 ? row : 0;
	if (local_done < 0)
		return RESUME_ROW;
	if (row < 0 || local_done < row) {
		*done = local_done;
		return RESUME_LOCAL;
	}
	if (local_done > row && transactional)
		return RESUME_ROW_LOCAL_AHEAD;
	return RESUME_ROW;
}
