/* test_child.c - child processes on the event loop. */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "unit.h"
#include "util.h"

/* What one child's done callback saw. */
struct capture {
	int calls;
	unsigned running_in_done;
	pid_t pid;
	int exit_code;
	int term_signal;
	bool timed_out;
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
	double elapsed_ms;
	int64_t done_at;
};

static struct event_base *base;

/* Record a child's result. */
static void capture_done(const struct child_result *r, void *arg)
{
	struct capture *c = arg;

	c->calls++;
	c->running_in_done = child_running_count();
	c->pid = r->pid;
	c->exit_code = r->exit_code;
	c->term_signal = r->term_signal;
	c->timed_out = r->timed_out;
	c->out = xmalloc(r->stdout_len + 1);
	memcpy(c->out, r->stdout_text, r->stdout_len + 1);
	c->out_len = r->stdout_len;
	c->err = xmalloc(r->stderr_len + 1);
	memcpy(c->err, r->stderr_text, r->stderr_len + 1);
	c->err_len = r->stderr_len;
	c->elapsed_ms = r->elapsed_ms;
	c->done_at = mono_ms();
}

/* Free what a capture copied. */
static void capture_clear(struct capture *c)
{
	free(c->out);
	free(c->err);
	memset(c, 0, sizeof(*c));
}

/* Run the loop until every capture was called or limit_ms passed. */
static bool wait_for(struct capture **caps, int n, int64_t limit_ms)
{
	int64_t until = mono_ms() + limit_ms;
	struct timeval tick = { 0, 50000 };

	for (;;) {
		bool all = true;

		for (int i = 0; i < n; i++)
			all = all && caps[i]->calls > 0;
		if (all || mono_ms() > until)
			break;
		event_base_loopexit(base, &tick);
		event_base_loop(base, EVLOOP_ONCE);
	}
	for (int i = 0; i < n; i++) {
		if (caps[i]->calls == 0)
			return false;
	}
	return true;
}

/* Spawn argv and wait for it; false if it did not start or finish. */
static bool run(char *const argv[], char *const env[], int64_t timeout_ms,
		struct capture *c)
{
	struct capture *caps[] = { c };
	char *cause = NULL;
	struct child *child;

	child = child_spawn(base, argv, env, timeout_ms, capture_done, c,
			    &cause);
	if (child == NULL) {
		printf("# spawn %s: %s\n", argv[0], cause);
		free(cause);
		return false;
	}
	return wait_for(caps, 1, 15000);
}

/* Exit code, stdout and stderr of a shell command. */
static void test_basic(void)
{
	char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	struct capture c = { 0 };

	ok(run(argv, NULL, 0, &c), "sh runs and finishes");
	is_int(c.calls, 1, "done called once");
	is_int(c.exit_code, 3, "exit code 3");
	is_int(c.term_signal, 0, "no signal");
	ok(!c.timed_out, "not timed out");
	is_str(c.out, "out\n", "stdout captured");
	is_str(c.err, "err\n", "stderr captured");
	is_int(c.running_in_done, 0, "no child counted as running in done");
	ok(c.pid > 0, "pid reported");
	capture_clear(&c);
}

/* A large stdout is drained and truncated to its head. */
static void test_big_stdout(void)
{
	char *argv[] = { "head", "-c", "5000000", "/dev/zero", NULL };
	struct capture c = { 0 };

	ok(run(argv, NULL, 0, &c), "5 MB of stdout does not hang");
	is_int(c.exit_code, 0, "head exits 0");
	is_int(c.out_len, CHILD_STDOUT_KEEP, "stdout keeps its first bytes");
	capture_clear(&c);
}

/* A large stderr keeps its tail. */
static void test_big_stderr(void)
{
	char *argv[] = { "sh", "-c",
			 "printf BEGIN >&2;"
			 " head -c 300000 /dev/zero | tr '\\000' a >&2;"
			 " printf END >&2",
			 NULL };
	struct capture c = { 0 };

	ok(run(argv, NULL, 0, &c), "300 kB of stderr");
	is_int(c.err_len, CHILD_STDERR_KEEP, "stderr keeps its size limit");
	ok(c.err_len >= 3 && strcmp(c.err + c.err_len - 3, "END") == 0,
	   "stderr keeps the last bytes");
	ok(c.err[0] == 'a', "stderr dropped the first bytes");
	is_int(strlen(c.err), c.err_len, "stderr is NUL-terminated");
	capture_clear(&c);
}

/* A child that outlives its timeout gets SIGTERM. */
static void test_timeout(void)
{
	char *argv[] = { "sleep", "10", NULL };
	struct capture c = { 0 };
	int64_t start = mono_ms();

	ok(run(argv, NULL, 200, &c), "sleep with a timeout finishes");
	ok(c.timed_out, "timed_out is set");
	is_int(c.term_signal, SIGTERM, "killed by SIGTERM");
	is_int(c.exit_code, -1, "exit code -1 when signalled");
	ok(mono_ms() - start < 2000, "finished in under 2 s");
	ok(c.elapsed_ms >= 150 && c.elapsed_ms < 2000, "elapsed_ms plausible");
	capture_clear(&c);
}

/* A child that ignores SIGTERM gets SIGKILL 5 s later. */
static void test_timeout_kill(void)
{
	char *argv[] = { "sh", "-c",
			 "trap '' TERM; while :; do sleep 0.05; done", NULL };
	struct capture c = { 0 };
	int64_t start = mono_ms();

	ok(run(argv, NULL, 100, &c), "a child ignoring SIGTERM finishes");
	ok(c.timed_out, "timed_out is set");
	is_int(c.term_signal, SIGKILL, "killed by SIGKILL");
	ok(mono_ms() - start >= 4900 && mono_ms() - start < 9000,
	   "SIGKILL comes about 5 s after SIGTERM");
	capture_clear(&c);
}

/* Output held open by a grandchild does not delay done for long. */
static void test_drain_grace(void)
{
	char *argv[] = { "sh", "-c", "sleep 4 & echo started", NULL };
	struct capture c = { 0 };
	int64_t start = mono_ms();

	ok(run(argv, NULL, 0, &c), "child with a background grandchild");
	is_int(c.exit_code, 0, "exit code 0");
	is_str(c.out, "started\n", "output before the exit is kept");
	ok(mono_ms() - start >= 1500 && mono_ms() - start < 3500,
	   "done follows the exit after a grace period");
	capture_clear(&c);
}

/* A program that does not exist is reported by child_spawn itself. */
static void test_not_found(void)
{
	char *argv[] = { "pg_dumpx", "--version", NULL };
	char *path[] = { "/nonexistent/dir/prog", NULL };
	char *bad_env[] = { "=NONAME", NULL };
	struct capture c = { 0 };
	char *cause = NULL;
	struct child *child;

	child = child_spawn(base, argv, NULL, 0, capture_done, &c, &cause);
	ok(child == NULL, "a missing program is refused");
	is_str(cause, "cannot run pg_dumpx: No such file or directory",
	       "cause names the program and the reason");
	is_int(child_running_count(), 0, "nothing left running");

	child = child_spawn(base, path, NULL, 0, capture_done, &c, &cause);
	ok(child == NULL, "a missing path is refused");
	contains(cause, "/nonexistent/dir/prog", "cause names the path");

	child = child_spawn(base, argv, bad_env, 0, capture_done, &c, &cause);
	ok(child == NULL, "a bad environment entry is refused");
	contains(cause, "=NONAME", "cause names the entry");
	is_int(c.calls, 0, "done is not called for a child that never ran");
	free(cause);
}

/* env_extra reaches the child and overrides same-named variables. */
static void test_env(void)
{
	char *argv[] = { "sh", "-c", "echo \"$FOO|$PGT_X|$PGT_XY\"", NULL };
	char *env[] = { "FOO=bar baz", "PGT_X=new", NULL };
	struct capture c = { 0 };

	setenv("PGT_X", "old", 1);
	setenv("PGT_XY", "kept", 1);
	ok(run(argv, env, 0, &c), "sh with env_extra");
	is_str(c.out, "bar baz|new|kept\n", "env_extra set and overriding");
	capture_clear(&c);
}

/* A bare NAME in env_extra removes the daemon's variable of that name. */
static void test_env_unset(void)
{
	char *argv[] = { "sh", "-c", "echo \"${PGT_GONE-unset}|$PGT_GONEX\"",
			 NULL };
	char *env[] = { "PGT_GONE", NULL };
	struct capture c = { 0 };

	setenv("PGT_GONE", "stale", 1);
	setenv("PGT_GONEX", "kept", 1);
	ok(run(argv, env, 0, &c), "sh with a bare name in env_extra");
	is_str(c.out, "unset|kept\n",
	       "the variable is removed, a longer name is kept");
	capture_clear(&c);
}

/* Finding 8: every connection option with a PG* variable reaches the
 * child, TLS and timeouts included; unset ones are removed. */
static void test_conninfo_env(void)
{
	PQconninfoOption opts[] = {
		{ .keyword = "host", .envvar = "PGHOST", .val = "db.example" },
		{ .keyword = "password",
		  .envvar = "PGPASSWORD",
		  .val = "s3cret" },
		{ .keyword = "sslmode",
		  .envvar = "PGSSLMODE",
		  .val = "verify-full" },
		{ .keyword = "sslrootcert",
		  .envvar = "PGSSLROOTCERT",
		  .val = "/etc/ca.pem" },
		{ .keyword = "connect_timeout",
		  .envvar = "PGCONNECT_TIMEOUT",
		  .val = "7" },
		{ .keyword = "application_name",
		  .envvar = "PGAPPNAME",
		  .val = "app" },
		{ .keyword = "sslcert", .envvar = "PGSSLCERT", .val = NULL },
		{ .keyword = "options", .envvar = "PGOPTIONS", .val = "" },
		{ .keyword = "keepalives", .envvar = NULL, .val = "1" },
		{ .keyword = "fallback_application_name",
		  .envvar = NULL,
		  .val = "pgtenantd" },
		{ .keyword = NULL },
	};
	char **env = child_conninfo_env(opts);
	char *joined = xstrdup("");
	size_t n = 0;

	for (; env[n] != NULL; n++) {
		char *next = xasprintf("%s%s;", joined, env[n]);

		free(joined);
		joined = next;
		free(env[n]);
	}
	free(env);
	is_str(joined,
	       "PGHOST=db.example;PGPASSWORD=s3cret;PGSSLMODE=verify-full;"
	       "PGSSLROOTCERT=/etc/ca.pem;PGCONNECT_TIMEOUT=7;PGAPPNAME=app;"
	       "PGSSLCERT;PGOPTIONS;",
	       "set options become PG* variables, unset ones are removed, those without a variable are left out");
	is_int((int)n, 8, "one entry per option with a variable");
	free(joined);
	env = child_conninfo_env(NULL);
	ok(env[0] == NULL, "no options, no entries");
	free(env);
}

/* stdin and stdout can be the caller's descriptors. */
static void test_fds(void)
{
	char in_path[] = "/tmp/pgt-child-in-XXXXXX";
	char out_path[] = "/tmp/pgt-child-out-XXXXXX";
	int in = mkstemp(in_path), out = mkstemp(out_path);
	char *argv[] = { "sh", "-c", "tr a-z A-Z; echo err >&2", NULL };
	struct capture c = { 0 };
	struct capture *caps[] = { &c };
	char buf[64] = "";
	char *cause = NULL;
	struct child *child;
	ssize_t n;

	unlink(in_path);
	unlink(out_path);
	ok(in >= 0 && out >= 0 && write(in, "hello\n", 6) == 6 &&
		   lseek(in, 0, SEEK_SET) == 0,
	   "two temporary files");
	child = child_spawn_fds(base, argv, NULL, in, out, 0, capture_done, &c,
				&cause);
	ok(child != NULL && wait_for(caps, 1, 15000),
	   "sh with our stdin and stdout");
	is_str(c.out, "", "stdout is not captured");
	is_str(c.err, "err\n", "stderr still is");
	n = pread(out, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	is_str(buf, "HELLO\n", "the child read our stdin and wrote our stdout");
	capture_clear(&c);
	free(cause);
	close(in);
	close(out);
}

/* The child starts with a clean signal state, stdin and descriptors. */
static void test_clean_state(void)
{
	char *sig_argv[] = { "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status",
			     NULL };
	char *fd_argv[] = { "ls", "/proc/self/fd", NULL };
	char *in_argv[] = { "cat", NULL };
	struct capture c = { 0 };
	sigset_t block, old;
	int leak;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	ok(run(sig_argv, NULL, 0, &c), "grep own status");
	{
		unsigned long long blocked = ~0ULL, ignored = ~0ULL;
		/* 32 and 33 are glibc's own; a parent may ignore them and
		 * sigaction() cannot reset them. */
		unsigned long long glibc = (1ULL << 31) | (1ULL << 32);

		sscanf(c.out ? c.out : "", "SigBlk:\t%llx\nSigIgn:\t%llx",
		       &blocked, &ignored);
		is_int(blocked, 0, "no signal blocked in the child");
		is_int(ignored & ~glibc, 0, "no signal ignored in the child");
	}
	capture_clear(&c);
	sigprocmask(SIG_SETMASK, &old, NULL);

	leak = open("/dev/null", O_RDONLY);
	ok(run(fd_argv, NULL, 0, &c), "ls own descriptors");
	is_str(c.out, "0\n1\n2\n3\n", "only stdio (and ls's own) are open");
	capture_clear(&c);
	close(leak);

	ok(run(in_argv, NULL, 2000, &c), "cat with stdin");
	ok(!c.timed_out && c.exit_code == 0 && c.out_len == 0,
	   "stdin is /dev/null");
	capture_clear(&c);
}

/* Deliver a signal from the loop. */
static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
	child_kill(arg, SIGKILL);
}

/* child_kill signals the child; done still follows. */
static void test_kill(void)
{
	char *argv[] = { "sleep", "10", NULL };
	struct capture c = { 0 };
	struct capture *caps[] = { &c };
	struct timeval tv = { 0, 50000 };
	char *cause = NULL;
	struct child *child;

	child = child_spawn(base, argv, NULL, 0, capture_done, &c, &cause);
	ok(child != NULL, "sleep started");
	if (child == NULL)
		return;
	ok(child_pid(child) > 0, "child_pid");
	is_int(child_running_count(), 1, "one child running");
	event_base_once(base, -1, EV_TIMEOUT, kill_cb, child, &tv);
	ok(wait_for(caps, 1, 3000), "killed child reported");
	is_int(c.term_signal, SIGKILL, "term_signal SIGKILL");
	ok(!c.timed_out, "not a timeout");
	is_int(child_running_count(), 0, "none running");
	capture_clear(&c);
}

/* Two children at once are both reported, each to its own callback. */
static void test_two(void)
{
	char *slow[] = { "sh", "-c", "sleep 0.2; echo slow; exit 1", NULL };
	char *fast[] = { "sh", "-c", "echo fast; exit 2", NULL };
	struct capture a = { 0 }, b = { 0 };
	struct capture *caps[] = { &a, &b };
	struct child *ca, *cb;
	pid_t pa, pb;
	char *cause = NULL;

	ca = child_spawn(base, slow, NULL, 0, capture_done, &a, &cause);
	cb = child_spawn(base, fast, NULL, 0, capture_done, &b, &cause);
	ok(ca != NULL && cb != NULL, "two children started");
	if (ca == NULL || cb == NULL)
		return;
	pa = child_pid(ca);
	pb = child_pid(cb);
	is_int(child_running_count(), 2, "two running");
	ok(wait_for(caps, 2, 5000), "both reported");
	ok(a.pid == pa && a.exit_code == 1 && strcmp(a.out, "slow\n") == 0,
	   "slow child result");
	ok(b.pid == pb && b.exit_code == 2 && strcmp(b.out, "fast\n") == 0,
	   "fast child result");
	ok(b.done_at <= a.done_at, "fast one reported first");
	ok(a.calls == 1 && b.calls == 1, "each done called once");
	capture_clear(&a);
	capture_clear(&b);
}

/* Count timer ticks. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(*(int *)arg)++;
}

/* The loop keeps running timers while a child runs. */
static void test_not_blocking(void)
{
	char *argv[] = { "sleep", "0.3", NULL };
	struct timeval tv = { 0, 20000 };
	struct capture c = { 0 };
	struct event *timer;
	int ticks = 0;

	timer = event_new(base, -1, EV_PERSIST, tick_cb, &ticks);
	event_add(timer, &tv);
	ok(run(argv, NULL, 0, &c), "sleep 0.3 finishes");
	ok(ticks >= 8, "a 20 ms timer kept firing while the child ran");
	printf("# %d ticks\n", ticks);
	event_free(timer);
	capture_clear(&c);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	base = event_base_new();
	child_init(base);
	test_basic();
	test_big_stdout();
	test_big_stderr();
	test_timeout();
	test_not_found();
	test_env();
	test_env_unset();
	test_conninfo_env();
	test_fds();
	test_clean_state();
	test_kill();
	test_two();
	test_not_blocking();
	test_drain_grace();
	test_timeout_kill();
	event_base_free(base);
	return done_testing();
}
