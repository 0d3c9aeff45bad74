/* hooks.h - the configured commands run when a job ends: hook_on_failure
 * when it failed for good, hook_on_success when it succeeded. */
#ifndef PGTENANTD_HOOKS_H
#define PGTENANTD_HOOKS_H

struct engine;
struct job;

/* The end of job (state "succeeded" or "failed", error NULL or the
 * recorded last_error) is in its row: run the matching hook, if any. */
void hooks_job_ended(struct engine *e, const struct job *job, const char *state,
		     const char *error);

#endif
