/* child.c - child processes run without blocking the event loop. */
#include "child.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define CHILD_KILL_AFTER_MS 5000  /* SIGTERM, then SIGKILL this later */
#define CHILD_DRAIN_GRACE_MS 2000 /* wait for EOF this long after exit */
#define CHILD_READ_CHUNK 65536
#define CHILD_READS_PER_EVENT 16

extern char **environ;

enum child_timer_phase {
	CHILD_TIMER_NONE,
	CHILD_TIMER_TIMEOUT, /* timeout_ms running: then SIGTERM */
	CHILD_TIMER_KILL,    /* SIGTERM sent: then SIGKILL */
	CHILD_TIMER_DRAIN,   /* exited, pipes still open: then close */
};

/* One captured output stream of a child. */
struct child_stream {
	struct child *child;
	int fd;
	struct event *ev;
	bool keep_last; /* stderr: keep the tail, else the head */
	char *buf;	/* at most CHILD_*_KEEP bytes plus a NUL */
	size_t len;
	size_t limit;
};

struct child {
	LIST_ENTRY(child) entry;
	struct event_base *base;
	pid_t pid;
	char *name;
	struct child_stream out;
	struct child_stream err;
	struct event *timer;
	enum child_timer_phase phase;
	struct event *finish;
	int64_t timeout_ms;
	int64_t start_ms;
	int64_t end_ms;
	bool exited;
	bool timed_out;
	bool finishing;
	int status;
	child_done_fn done;
	void *arg;
};

static LIST_HEAD(, child) live_children = LIST_HEAD_INITIALIZER(live_children);
static struct event *sigchld_event;
static struct event_base *sigchld_base;

/* Arm the child's timer for ms milliseconds in the given phase. */
static void child_timer_arm(struct child *child, enum child_timer_phase phase,
			    int64_t ms)
{
	struct timeval tv = {
		.tv_sec = ms / 1000,
		.tv_usec = (ms % 1000) * 1000,
	};

	child->phase = phase;
	evtimer_add(child->timer, &tv);
}

/* Append data read from a stream, keeping its head or its tail. */
static void child_stream_keep(struct child_stream *s, const char *data,
			      size_t n)
{
	if (!s->keep_last) {
		if (s->len >= s->limit)
			return;
		if (n > s->limit - s->len)
			n = s->limit - s->len;
		memcpy(s->buf + s->len, data, n);
		s->len += n;
		return;
	}
	if (n >= s->limit) {
		memcpy(s->buf, data + n - s->limit, s->limit);
		s->len = s->limit;
		return;
	}
	if (s->len + n > s->limit) {
		size_t drop = s->len + n - s->limit;

		memmove(s->buf, s->buf + drop, s->len - drop);
		s->len -= drop;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
}

/* Stop watching a stream and close its pipe. */
static void child_stream_close(struct child_stream *s)
{
	if (s->ev != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

/* Schedule done for the next loop turn once the process exited and both
 * pipes are closed. */
static void child_maybe_finish(struct child *child)
{
	if (child->finishing || !child->exited || child->out.fd >= 0 ||
	    child->err.fd >= 0)
		return;
	child->finishing = true;
	evtimer_del(child->timer);
	child->phase = CHILD_TIMER_NONE;
	event_active(child->finish, EV_TIMEOUT, 0);
}

/* Read what a stream has, up to a bound per call; close it at EOF. */
static void child_stream_read(struct child_stream *s, bool until_eagain)
{
	char chunk[CHILD_READ_CHUNK];
	ssize_t n;

	for (int i = 0; s->fd >= 0; i++) {
		if (!until_eagain && i == CHILD_READS_PER_EVENT)
			return;
		n = read(s->fd, chunk, sizeof(chunk));
		if (n > 0) {
			child_stream_keep(s, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (until_eagain)
				child_stream_close(s);
			return;
		}
		if (n < 0)
			log_warning("%s (pid %ld): cannot read its output: %s",
				    s->child->name, (long)s->child->pid,
				    strerror(errno));
		child_stream_close(s);
	}
}

/* The pipe of a stream is readable. */
static void child_stream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child_stream *s = arg;

	child_stream_read(s, false);
	child_maybe_finish(s->child);
}

/* Timeout, kill and drain deadlines of a child. */
static void child_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *child = arg;

	switch (child->phase) {
	case CHILD_TIMER_TIMEOUT:
		log_warning(
			"%s (pid %ld) timed out after %lld ms: sending SIGTERM",
			child->name, (long)child->pid,
			(long long)child->timeout_ms);
		child->timed_out = true;
		child_kill(child, SIGTERM);
		child_timer_arm(child, CHILD_TIMER_KILL, CHILD_KILL_AFTER_MS);
		break;
	case CHILD_TIMER_KILL:
		log_warning("%s (pid %ld) ignored SIGTERM: sending SIGKILL",
			    child->name, (long)child->pid);
		child_kill(child, SIGKILL);
		child->phase = CHILD_TIMER_NONE;
		break;
	case CHILD_TIMER_DRAIN:
		log_debug("%s (pid %ld) exited but its output is still open",
			  child->name, (long)child->pid);
		child->phase = CHILD_TIMER_NONE;
		child_stream_read(&child->out, true);
		child_stream_read(&child->err, true);
		child_maybe_finish(child);
		break;
	case CHILD_TIMER_NONE:
	default:
		break;
	}
}

/* Record that the process exited; output may still be draining. */
static void child_exited(struct child *child, int status)
{
	child->exited = true;
	child->status = status;
	child->end_ms = mono_ms();
	evtimer_del(child->timer);
	child->phase = CHILD_TIMER_NONE;
	if (child->out.fd >= 0 || child->err.fd >= 0)
		child_timer_arm(child, CHILD_TIMER_DRAIN, CHILD_DRAIN_GRACE_MS);
	child_maybe_finish(child);
}

/* SIGCHLD: reap every exited child and dispatch by pid. */
static void child_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *child;
	pid_t pid;
	int status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		LIST_FOREACH(child, &live_children, entry) {
			if (child->pid == pid && !child->exited)
				break;
		}
		if (child == NULL) {
			log_debug("reaped unknown child process %ld",
				  (long)pid);
			continue;
		}
		child_exited(child, status);
	}
}

/* Free a child and everything it holds. */
static void child_free(struct child *child)
{
	child_stream_close(&child->out);
	child_stream_close(&child->err);
	if (child->timer != NULL)
		event_free(child->timer);
	if (child->finish != NULL)
		event_free(child->finish);
	free(child->out.buf);
	free(child->err.buf);
	free(child->name);
	free(child);
}

/* Hand the result to the owner on its own loop turn, then free the child. */
static void child_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *child = arg;
	struct child_result result = { 0 };
	int status = child->status;

	LIST_REMOVE(child, entry);
	child->out.buf[child->out.len] = '\0';
	child->err.buf[child->err.len] = '\0';
	result.pid = child->pid;
	if (WIFEXITED(status)) {
		result.exit_code = WEXITSTATUS(status);
	} else {
		result.exit_code = -1;
		result.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
	result.timed_out = child->timed_out;
	result.stdout_text = child->out.buf;
	result.stdout_len = child->out.len;
	result.stderr_text = child->err.buf;
	result.stderr_len = child->err.len;
	result.elapsed_ms = (double)(child->end_ms - child->start_ms);
	log_debug("%s (pid %ld) finished: exit %d, signal %d, %.0f ms",
		  child->name, (long)child->pid, result.exit_code,
		  result.term_signal, result.elapsed_ms);
	if (child->done != NULL)
		child->done(&result, child->arg);
	child_free(child);
}

/* Install the SIGCHLD handler on base. */
void child_init(struct event_base *base)
{
	if (sigchld_event != NULL) {
		if (sigchld_base != base)
			log_warning(
				"child_init called again with another event base; keeping the first");
		return;
	}
	sigchld_event = evsignal_new(base, SIGCHLD, child_signal_cb, NULL);
	if (sigchld_event == NULL || evsignal_add(sigchld_event, NULL) != 0) {
		log_error(
			"cannot watch SIGCHLD: child processes will not be reaped");
		return;
	}
	sigchld_base = base;
}

/* True if entry ("NAME=value" or "NAME") sets or unsets the variable of
 * the environment entry var ("NAME=value"). */
static bool child_env_names(const char *entry, const char *var)
{
	size_t n = strcspn(entry, "=");

	return strncmp(entry, var, n) == 0 && var[n] == '=';
}

/* Build the child's environment: ours, with env_extra overriding ("NAME"
 * alone removes NAME). */
static char **child_environ(char *const env_extra[], char **cause)
{
	size_t n_env = 0, n_extra = 0, n = 0;
	char **envp;

	for (size_t i = 0; env_extra != NULL && env_extra[i] != NULL; i++) {
		if (env_extra[i][0] == '\0' || env_extra[i][0] == '=') {
			set_cause(
				cause,
				"bad environment entry '%s': not NAME=value or NAME",
				env_extra[i]);
			return NULL;
		}
		n_extra++;
	}
	while (environ != NULL && environ[n_env] != NULL)
		n_env++;
	envp = xcalloc(n_env + n_extra + 1, sizeof(*envp));
	for (size_t i = 0; i < n_env; i++) {
		bool overridden = false;

		for (size_t j = 0; j < n_extra; j++) {
			if (child_env_names(env_extra[j], environ[i])) {
				overridden = true;
				break;
			}
		}
		if (!overridden)
			envp[n++] = environ[i];
	}
	for (size_t j = 0; j < n_extra; j++)
		if (strchr(env_extra[j], '=') != NULL)
			envp[n++] = env_extra[j];
	envp[n] = NULL;
	return envp;
}

/* The environment that gives a child the connection settings in opts. */
char **child_conninfo_env(const PQconninfoOption *opts)
{
	size_t n = 0, k = 0;
	char **env;

	for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL;
	     o++)
		n++;
	env = xcalloc(n + 1, sizeof(*env));
	for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL;
	     o++) {
		bool dup = false;

		if (o->envvar == NULL || o->envvar[0] == '\0')
			continue;
		for (const PQconninfoOption *p = opts; p < o && !dup; p++)
			dup = p->envvar != NULL &&
			      strcmp(p->envvar, o->envvar) == 0;
		if (dup)
			continue;
		env[k++] = o->val != NULL && o->val[0] != '\0' ?
				   xasprintf("%s=%s", o->envvar, o->val) :
				   xstrdup(o->envvar);
	}
	env[k] = NULL;
	return env;
}

/* Move *fd above the standard descriptors so dup2 onto 0-2 is safe. */
static bool child_fd_above_stdio(int *fd, char **cause)
{
	int moved;

	if (*fd > STDERR_FILENO)
		return true;
	moved = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (moved < 0)
		return set_cause(cause, "cannot duplicate a descriptor: %s",
				 strerror(errno));
	close(*fd);
	*fd = moved;
	return true;
}

/* In the forked child: make every descriptor above stdio close on exec;
 * status_fd already does and stays usable until then. */
static void child_close_inherited(int status_fd)
{
	long max;

#ifdef CLOSE_RANGE_CLOEXEC
	if (close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = STDERR_FILENO + 1; fd < max; fd++) {
		if (fd != status_fd)
			close(fd);
	}
}

/* In the forked child: wire up stdio, reset signals, exec; never returns. */
static void __attribute__((noreturn))
child_exec(char *const argv[], char **envp, int in_fd, int out_fd, int err_fd,
	   int status_fd)
{
	struct sigaction sa;
	sigset_t none;
	int err;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0)
		goto fail;
	child_close_inherited(status_fd);
	execvpe(argv[0], argv, envp);
fail:
	err = errno;
	while (write(status_fd, &err, sizeof(err)) < 0 && errno == EINTR)
		;
	_exit(127);
}

/* Close every descriptor in fds that is open. */
static void child_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Set up a stream that reads fd into a buffer of at most limit bytes. */
static void child_stream_init(struct child *child, struct child_stream *s,
			      int fd, size_t limit, bool keep_last)
{
	s->child = child;
	s->fd = fd;
	s->limit = limit;
	s->keep_last = keep_last;
	s->buf = xmalloc(limit + 1);
	s->len = 0;
	if (fd < 0)
		return; /* not captured: it goes where the caller said */
	s->ev = event_new(child->base, fd, EV_READ | EV_PERSIST,
			  child_stream_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		log_error("%s: cannot watch its output; discarding it",
			  child->name);
		child_stream_close(s);
	}
}

/* Start argv[0] with captured output, reporting exec failures at once. */
struct child *child_spawn(struct event_base *base, char *const argv[],
			  char *const env_extra[], int64_t timeout_ms,
			  child_done_fn done, void *arg, char **cause)
{
	return child_spawn_fds(base, argv, env_extra, -1, -1, timeout_ms, done,
			       arg, cause);
}

/* Start argv[0] with the given stdin and stdout, or /dev/null and a pipe. */
struct child *child_spawn_fds(struct event_base *base, char *const argv[],
			      char *const env_extra[], int stdin_fd,
			      int stdout_fd, int64_t timeout_ms,
			      child_done_fn done, void *arg, char **cause)
{
	/* null, out[2], err[2], status[2] */
	int fds[7] = { -1, -1, -1, -1, -1, -1, -1 };
	struct child *child;
	sigset_t all, old;
	char **envp;
	ssize_t n;
	pid_t pid;
	int err, status;

	if (argv == NULL || argv[0] == NULL || *argv[0] == '\0') {
		set_cause(cause, "no program to run");
		return NULL;
	}
	if (sigchld_event == NULL)
		child_init(base);
	if (sigchld_event == NULL) {
		set_cause(cause, "cannot run %s: SIGCHLD is not watched",
			  argv[0]);
		return NULL;
	}
	envp = child_environ(env_extra, cause);
	if (envp == NULL)
		return NULL;

	fds[0] = stdin_fd >= 0 ?
			 fcntl(stdin_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1) :
			 open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fds[0] < 0) {
		set_cause(cause, "cannot run %s: its standard input: %s",
			  argv[0], strerror(errno));
		goto fail;
	}
	if (stdout_fd >= 0) {
		fds[2] = fcntl(stdout_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		if (fds[2] < 0) {
			set_cause(cause,
				  "cannot run %s: its standard output: %s",
				  argv[0], strerror(errno));
			goto fail;
		}
	} else if (pipe2(fds + 1, O_CLOEXEC) != 0) {
		set_cause(cause, "cannot run %s: pipe: %s", argv[0],
			  strerror(errno));
		goto fail;
	}
	if (pipe2(fds + 3, O_CLOEXEC) != 0 || pipe2(fds + 5, O_CLOEXEC) != 0) {
		set_cause(cause, "cannot run %s: pipe: %s", argv[0],
			  strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (fds[i] >= 0 && !child_fd_above_stdio(&fds[i], cause))
			goto fail;
	}

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_exec(argv, envp, fds[0], fds[2], fds[4], fds[6]);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		set_cause(cause, "cannot run %s: fork: %s", argv[0],
			  strerror(err));
		goto fail;
	}
	close(fds[0]);
	close(fds[2]);
	close(fds[4]);
	close(fds[6]);
	fds[0] = fds[2] = fds[4] = fds[6] = -1;

	do {
		n = read(fds[5], &err, sizeof(err));
	} while (n < 0 && errno == EINTR);
	if (n != 0) {
		if (n != (ssize_t)sizeof(err))
			err = n < 0 ? errno : EIO;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		set_cause(cause, "cannot run %s: %s", argv[0], strerror(err));
		goto fail;
	}
	close(fds[5]);
	fds[5] = -1;
	free(envp);
	envp = NULL;

	if ((fds[1] >= 0 && fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0) ||
	    fcntl(fds[3], F_SETFL, O_NONBLOCK) != 0)
		log_warning("%s: cannot make its pipes non-blocking: %s",
			    argv[0], strerror(errno));

	child = xcalloc(1, sizeof(*child));
	child->base = base;
	child->pid = pid;
	child->name = xstrdup(argv[0]);
	child->timeout_ms = timeout_ms;
	child->start_ms = mono_ms();
	child->done = done;
	child->arg = arg;
	child->timer = evtimer_new(base, child_timer_cb, child);
	child->finish = evtimer_new(base, child_finish_cb, child);
	if (child->timer == NULL || child->finish == NULL) {
		log_error("%s: out of event structures", argv[0]);
		abort();
	}
	child_stream_init(child, &child->out, fds[1], CHILD_STDOUT_KEEP, false);
	child_stream_init(child, &child->err, fds[3], CHILD_STDERR_KEEP, true);
	LIST_INSERT_HEAD(&live_children, child, entry);
	if (timeout_ms > 0)
		child_timer_arm(child, CHILD_TIMER_TIMEOUT, timeout_ms);
	log_debug("started %s (pid %ld)", child->name, (long)pid);
	return child;

fail:
	child_close_fds(fds, ARRAY_SIZE(fds));
	free(envp);
	return NULL;
}

/* Send sig to the child unless it has already been reaped. */
void child_kill(struct child *child, int sig)
{
	if (child->exited)
		return;
	if (kill(child->pid, sig) != 0 && errno != ESRCH)
		log_warning("cannot signal %s (pid %ld): %s", child->name,
			    (long)child->pid, strerror(errno));
}

/* The process id of a child that has not been reported yet. */
pid_t child_pid(const struct child *child)
{
	return child->pid;
}

/* Count the children whose done callback has not run yet. */
unsigned child_running_count(void)
{
	struct child *child;
	unsigned n = 0;

	LIST_FOREACH(child, &live_children, entry)
		n++;
	return n;
}
