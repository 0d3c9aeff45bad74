/* hooks.c - the configured commands run when a job ends, for people who
 * page on failures. The program runs without a shell, its arguments as
 * configured, with the daemon's environment plus PGTENANTD_JOB_ID,
 * PGTENANTD_JOB_KIND, PGTENANTD_TENANT_ID, PGTENANTD_JOB_STATE,
 * PGTENANTD_JOB_ATTEMPTS and PGTENANTD_JOB_ERROR (cut to 4 KiB), stdin
 * from /dev/null, at most hook_timeout long. It runs once the end is
 * recorded in the job's row. At most HOOKS_MAX_RUNNING run at once; a hook
 * over that is skipped with a warning, never queued without bound. */
#include "hooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "config.h"
#include "engine.h"
#include "job.h"
#include "log.h"
#include "util.h"

#define HOOKS_MAX_RUNNING 8
#define HOOKS_ERROR_MAX 4096

static unsigned hooks_running;

struct hook_run {
	int64_t job_id;
	char *program;
};

static void hook_done(const struct child_result *r, void *arg)
{
	struct hook_run *run = arg;

	hooks_running--;
	if (r->timed_out)
		log_warning("hook %s for job %" PRId64
			    " timed out (hook_timeout) and was killed",
			    run->program, run->job_id);
	else if (r->exit_code != 0)
		log_warning("hook %s for job %" PRId64 " failed (%s %d): %.*s",
			    run->program, run->job_id,
			    r->term_signal ? "signal" : "exit status",
			    r->term_signal ? r->term_signal : r->exit_code,
			    (int)(r->stderr_len > 500 ? 500 : r->stderr_len),
			    r->stderr_text);
	else
		log_debug("hook %s for job %" PRId64 " done in %.0f ms",
			  run->program, run->job_id, r->elapsed_ms);
	free(run->program);
	free(run);
}

void hooks_job_ended(struct engine *e, const struct job *job, const char *state,
		     const char *error)
{
	char *const *argv =
		strcmp(state, "failed") == 0	? e->config->hook_on_failure :
		strcmp(state, "succeeded") == 0 ? e->config->hook_on_success :
						  NULL;
	char *env[7], *cause = NULL;
	struct hook_run *run;
	struct child *child;

	if (argv == NULL)
		return;
	if (hooks_running >= HOOKS_MAX_RUNNING) {
		log_warning("hook %s for job %" PRId64
			    " skipped: %d hooks are running already",
			    argv[0], job->id, HOOKS_MAX_RUNNING);
		return;
	}
	env[0] = xasprintf("PGTENANTD_JOB_ID=%" PRId64, job->id);
	env[1] = xasprintf("PGTENANTD_JOB_KIND=%s", job->kind);
	env[2] = xasprintf("PGTENANTD_TENANT_ID=%s", job->tenant_id);
	env[3] = xasprintf("PGTENANTD_JOB_STATE=%s", state);
	env[4] = xasprintf("PGTENANTD_JOB_ATTEMPTS=%d", job->attempts);
	env[5] = xasprintf("PGTENANTD_JOB_ERROR=%.*s", HOOKS_ERROR_MAX,
			   error != NULL ? error : "");
	env[6] = NULL;
	run = xcalloc(1, sizeof(*run));
	run->job_id = job->id;
	run->program = xstrdup(argv[0]);
	child = child_spawn(e->base, argv, env, e->config->hook_timeout_ms,
			    hook_done, run, &cause);
	for (int i = 0; i < 6; i++)
		free(env[i]);
	if (child == NULL) {
		log_warning("hook %s for job %" PRId64 " could not start: %s",
			    argv[0], job->id, cause);
		free(cause);
		free(run->program);
		free(run);
		return;
	}
	hooks_running++;
}
