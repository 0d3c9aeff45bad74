/* step_exec.c - the exec step: a program and its arguments, no shell,
 * through child. */
#include "runner-int.h"

#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "engine.h"
#include "jobdef.h"
#include "sqlvars.h"
#include "util.h"

/* The last line-ish part of a child's stderr, for error messages. */
static char *stderr_tail(const char *text, size_t len)
{
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	if (len > 1000) {
		text += len - 1000;
		len = 1000;
	}
	return xstrndup(text, len);
}

static void runner_child_done(const struct child_result *cr, void *arg)
{
	struct runner *r = arg;
	char *tail;

	r->child = NULL;
	r->busy = false;
	if (cr->exit_code == 0 && !cr->timed_out) {
		job_log_debug(r->job, "%s finished in %.0f ms",
			      r->step->argv[0], cr->elapsed_ms);
		if (!pgconn_is_ready(r->conn)) {
			runner_connection_lost(r);
			return;
		}
		runner_step_done_autocommit(r);
		return;
	}
	if (runner_interrupted(r)) {
		runner_end(r, runner_interrupt_outcome(r), NULL);
		return;
	}
	tail = stderr_tail(cr->stderr_text ? cr->stderr_text : "",
			   cr->stderr_len);
	if (cr->timed_out)
		runner_fail(r, JOB_FAILED_RETRY,
			    "%s timed out after %.0f ms%s%s", r->step->argv[0],
			    cr->elapsed_ms, tail[0] ? ": " : "", tail);
	else if (cr->term_signal != 0)
		runner_fail(r, JOB_FAILED_RETRY,
			    "%s was killed by signal %d%s%s", r->step->argv[0],
			    cr->term_signal, tail[0] ? ": " : "", tail);
	else
		runner_fail(r, JOB_FAILED_RETRY, "%s exited with status %d%s%s",
			    r->step->argv[0], cr->exit_code,
			    tail[0] ? ": " : "", tail);
	free(tail);
}

/* Whether argument i of an exec step, as the file writes it and as
 * expanded, would turn a variable's value into an option: the expansion
 * starts with '-' where the word does not, and no literal "--" came
 * before it. Fills cause then. */
static bool exec_arg_is_option(const struct jobdef_step *s, unsigned i,
			       const char *expanded, char **cause)
{
	char *shown;

	if (i == 0 || expanded[0] != '-' || s->argv[i][0] == '-')
		return false;
	for (unsigned k = 1; k < i; k++)
		if (strcmp(s->argv[k], "--") == 0)
			return false;
	shown = display_escape(expanded, 80, false);
	set_cause(
		cause,
		"argument %u of %s ('%s' from '%s') starts with '-' and would be taken as an option; refusing to run it (put \"--\" before it if the program takes one)",
		i, s->argv[0], shown, s->argv[i]);
	free(shown);
	return true;
}

void runner_exec_step(struct runner *r)
{
	const struct jobdef_step *s = r->step;
	char **argv = xcalloc(s->argc + 1, sizeof(char *));
	char **env = pgconn_child_env(r->conn);
	char *cause = NULL;

	for (unsigned i = 0; i < s->argc; i++) {
		argv[i] = sqlvars_expand_word(s->argv[i], runner_var_lookup, r,
					      &cause);
		if (argv[i] != NULL &&
		    exec_arg_is_option(s, i, argv[i], &cause)) {
			free(argv[i]);
			argv[i] = NULL;
		}
		if (argv[i] == NULL) {
			for (unsigned k = 0; k < i; k++)
				free(argv[k]);
			free(argv);
			pgconn_env_free(env);
			runner_fail(r, JOB_FAILED_FINAL, "%s", cause);
			free(cause);
			return;
		}
	}
	r->child = child_spawn(r->job->engine->base, argv, env, s->timeout_ms,
			       runner_child_done, r, &cause);
	for (unsigned i = 0; i < s->argc; i++)
		free(argv[i]);
	free(argv);
	pgconn_env_free(env);
	if (r->child == NULL) {
		runner_fail(r, JOB_FAILED_RETRY, "%s", cause);
		free(cause);
		return;
	}
	r->busy = true;
	job_log_debug(r->job, "started %s (pid %d)", s->argv[0],
		      (int)child_pid(r->child));
}
