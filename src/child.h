/* child.h - child processes (pg_dump, pg_restore) run without blocking the
 * event loop: stdout and stderr captured in bounded buffers, SIGCHLD reaped
 * with waitpid(-1, WNOHANG) and dispatched by pid, optional timeout. */
#ifndef PGT_CHILD_H
#define PGT_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "util.h"

struct event_base;
struct child;

#define CHILD_STDERR_KEEP (64 * 1024)	/* last bytes of stderr kept */
#define CHILD_STDOUT_KEEP (1024 * 1024) /* first bytes of stdout kept */

struct child_result {
	pid_t pid;
	int exit_code;		 /* exit status, or -1 if killed by a signal */
	int term_signal;	 /* the signal, or 0 */
	bool timed_out;		 /* killed because timeout_ms passed */
	const char *stdout_text; /* NUL-terminated, valid during the callback */
	size_t stdout_len;
	const char *stderr_text;
	size_t stderr_len;
	double elapsed_ms;
};

typedef void (*child_done_fn)(const struct child_result *result, void *arg);

/* Install the SIGCHLD handler on base. Call once at start. */
void child_init(struct event_base *base);

/* Start argv[0] (searched in PATH) with argv, the daemon's environment plus
 * env_extra ("NAME=value" strings, NULL-terminated, may be NULL; a bare
 * "NAME" removes NAME from the child's environment), stdin
 * from /dev/null. done is called exactly once, on the loop, after the
 * process exited and its output was drained. timeout_ms 0 means none; on
 * timeout the child gets SIGTERM, then SIGKILL 5 s later. Returns NULL with
 * cause if it cannot start (including a program that is not found). */
struct child *child_spawn(struct event_base *base, char *const argv[],
			  char *const env_extra[], int64_t timeout_ms,
			  child_done_fn done, void *arg, char **cause)
	MUST_CHECK;

/* child_spawn with the child's stdin read from stdin_fd and its stdout
 * written to stdout_fd (not captured: stdout_text is then empty); -1 for
 * /dev/null and a captured pipe. The descriptors are duplicated, the
 * caller keeps its own; a shared file offset is the caller's business. */
struct child *child_spawn_fds(struct event_base *base, char *const argv[],
			      char *const env_extra[], int stdin_fd,
			      int stdout_fd, int64_t timeout_ms,
			      child_done_fn done, void *arg, char **cause)
	MUST_CHECK;

/* The environment entries that give a child the connection settings opts
 * (from PQconninfo() of a live connection): "ENVVAR=value" for every
 * option with an environment variable and a value (the password too: it
 * never goes into argv), and a bare "ENVVAR" for every other one, which
 * child_spawn removes from the daemon's environment so that a stale PG*
 * variable cannot contradict the connection. NULL-terminated, for
 * env_extra; the caller frees each string and the array. Options without
 * an environment variable (keepalives*, fallback_application_name) are
 * not passed. */
char **child_conninfo_env(const PQconninfoOption *opts);

/* Send sig to the child (e.g. on cancel). done is still called later. */
void child_kill(struct child *child, int sig);

pid_t child_pid(const struct child *child);

/* Number of children still running (for shutdown). */
unsigned child_running_count(void);

#endif
