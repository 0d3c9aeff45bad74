/* pgtenantctl.c - the control socket client: send one command to a running
 * pgtenantd, print its answer as tables for people or as JSON for scripts;
 * watch the running jobs; help for every command. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "table.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

#define DEFAULT_SOCKET "/run/pgtenantd/control.sock"
#define DEFAULT_TIMEOUT "30" /* seconds */
#define MAX_RESPONSE (256 * 1024 * 1024)
#define WATCH_INTERVAL_MS 2000
#define WATCH_MIN_INTERVAL_MS 100
#define PROGRESS_BAR_WIDTH 20

enum {
	EXIT_OK = 0,
	EXIT_DAEMON_ERROR = 1,
	EXIT_USAGE = 2,
};

/* Print to fp what fmt makes, with every control character escaped
 * (table_escape) but newlines and tabs: the daemon's answers carry text
 * from job rows, which anyone who may enqueue can write, and an escape
 * sequence in it must not reach the terminal. */
static void __attribute__((format(printf, 2, 3)))
say(FILE *fp, const char *fmt, ...)
{
	va_list ap;
	char *text, *safe;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	safe = table_escape(text, true);
	fputs(safe, fp);
	free(safe);
	free(text);
}

/* Print the daemon's JSON answer as it is, but with the characters a
 * terminal acts on that JSON may leave raw (C1 controls, DEL) written as
 * \u escapes: the same JSON. */
static void print_json_line(const char *line)
{
	char *safe = table_json_escape(line);

	fputs(safe, stdout);
	fputc('\n', stdout);
	free(safe);
}

/* Set by SIGINT or SIGTERM while watching. */
static volatile sig_atomic_t interrupted;

/* What `help COMMAND` and `COMMAND --help` print, and how many arguments
 * each command takes. Commands not listed go to the daemon unchecked. */
struct command_help {
	const char *name;
	const char *usage;
	const char *summary;
	const char *details;
	int min_args, max_args;
	bool local; /* handled by pgtenantctl itself */
};

/* clang-format off */
static const struct command_help commands[] = {
	{ "status", "status", "the daemon, its workers and the running jobs",
	  "Prints the daemon's id, host, pid, version, uptime, state (running,\n"
	  "paused or stopping), database connection and busy workers, then one\n"
	  "line per running job: id, kind, tenant, step (with its number of\n"
	  "the job's steps), progress, time running and ETA; for a migration\n"
	  "also its phase, backlog of changed keys and cut-over attempts. The\n"
	  "JSON answer has daemon{...} and running[] with each job's progress\n"
	  "object and, for a migration, its migration object.\n",
	  0, 0, false },
	{ "jobs", "jobs [STATE]", "recent jobs, or only those in STATE",
	  "Lists the 200 newest jobs from pgtenantd.jobs, newest first, or only\n"
	  "those in STATE: queued, running, succeeded, failed or cancelled.\n",
	  0, 1, false },
	{ "job", "job ID", "every column of one job",
	  "Prints every column of the job's row in pgtenantd.jobs, one per\n"
	  "line; the progress and result objects one member per line, sizes\n"
	  "(*_bytes) and durations (*_s) written for people. For a\n"
	  "migrate_to_separate_schema job that has started, also the\n"
	  "migration (pgtenantd.migration_status): phase, rows copied of the\n"
	  "total, backlog of changed keys, keys replayed and the replay rate,\n"
	  "cut-over mode and whether go was given, throttle, cut-over attempts\n"
	  "with the last error, and how long the cut-over took; with --json\n"
	  "as the object \"migration\" of the job.\n",
	  1, 1, false },
	{ "cancel", "cancel ID", "stop a job at its next safe point",
	  "A queued job is cancelled at once; a running one stops at its next\n"
	  "safe point (between batches or statements) and ends cancelled. The\n"
	  "same as SELECT pgtenantd.cancel_job(ID) in SQL.\n",
	  1, 1, false },
	{ "cutover", "cutover ID", "let a migration waiting for go cut over",
	  "A migrate_to_separate_schema job run with {\"cutover\": \"manual\"}\n"
	  "copies and catches up, then waits, caught up, until this says go;\n"
	  "it then cuts over as soon as the backlog is small (writers of the\n"
	  "tenant wait at most its lock budget). Saying go before the job gets\n"
	  "there lets it cut over without waiting. The same as\n"
	  "SELECT pgtenantd.migration_cutover(ID) in SQL.\n",
	  1, 1, false },
	{ "throttle", "throttle ID [N]",
	  "slow down a migration's batches, or pause them",
	  "Without N (or with 0) the copy, catch-up and delete batches of the\n"
	  "migration job ID wait until unthrottle; with N each batch covers at\n"
	  "most N pages (copy, delete) or changed keys (catch-up). The job stays\n"
	  "running. The same as SELECT pgtenantd.migration_throttle(ID, N).\n",
	  1, 2, false },
	{ "unthrottle", "unthrottle ID", "lift a migration's throttle",
	  "The migration's batches are sized by the engine again. The same as\n"
	  "SELECT pgtenantd.migration_throttle(ID, NULL) in SQL.\n",
	  1, 1, false },
	{ "pause", "pause", "stop claiming new jobs",
	  "The daemon claims no new jobs until resume; running jobs go on.\n",
	  0, 0, false },
	{ "resume", "resume", "claim new jobs again after pause", "",
	  0, 0, false },
	{ "schedules", "schedules", "the schedules, their last and next fire",
	  "Each schedule of the configuration with its cron expression, job,\n"
	  "tenants, catch_up, and its last and next fire.\n",
	  0, 0, false },
	{ "backups", "backups [TENANT]", "the backups, of all tenants or one",
	  "The backup catalog, newest first (at most 500): id, tenant, when,\n"
	  "status (verified, failed or deleted by retention), size, how long\n"
	  "it took, the job and the file. --json adds the sha256 and the path.\n",
	  0, 1, false },
	{ "reload", "reload", "reload the configuration and job definitions",
	  "The same as SIGHUP. A bad configuration or job file is refused as a\n"
	  "whole and the old one stays; the answer says why. Settings that\n"
	  "need a restart (database, state_dir, control_socket and the other\n"
	  "control_* settings, workers, lease, poll_interval, listen) are\n"
	  "named, not applied.\n",
	  0, 0, false },
	{ "metrics", "metrics", "metrics in the Prometheus text format", "",
	  0, 0, false },
	{ "watch", "watch [INTERVAL] [COUNT]",
	  "redraw the running jobs until interrupted",
	  "Asks for status every INTERVAL (default 2s; \"500ms\", \"5s\" or a\n"
	  "number of seconds) and shows the running jobs with a progress bar\n"
	  "and ETA (and a migration's phase, backlog and cut-over attempts).\n"
	  "On a terminal the screen is redrawn; otherwise one line is\n"
	  "printed per refresh; with --json each status answer is printed as\n"
	  "it is. Stops on Ctrl-C (exit status 0) or after COUNT refreshes\n"
	  "(the exit status of the last one). A daemon that does not answer is\n"
	  "reported and asked again at the next refresh.\n",
	  0, 2, true },
	{ "fleet", "fleet [NAME] | fleet pause|resume|skip|cancel NAME",
	  "the fleets moving tenants in waves, or one with its tenants",
	  "Without NAME, one line per fleet (pgtenantd.fleet_status): state,\n"
	  "tenants done, running, waiting, failed and skipped, rows moved of\n"
	  "the total, ETA from the rate so far, max_parallel and window. With\n"
	  "NAME, the fleet's fields (why it is paused, its time zone, ...) and\n"
	  "its tenants in the order they move: state, rows, size, job, time\n"
	  "taken and error. pause stops releasing tenants (running ones go\n"
	  "on); resume runs the failed tenants again and goes on; skip goes on\n"
	  "leaving them failed; cancel cancels the waiting tenants. The same\n"
	  "as SELECT pgtenantd.fleet_pause/fleet_resume/fleet_cancel(NAME).\n"
	  "Start a fleet with SELECT pgtenantd.start_fleet(...) (README).\n",
	  0, 2, false },
	{ "help", "help [COMMAND]", "this help, or the help of one command", "",
	  0, 1, true },
	{ "tenants", "tenants", "every tenant: layout, size, growth, last backup",
	  "Every tenant of the newest snapshot (tenant_snapshot_interval),\n"
	  "largest first: layout (shared, separate, or migrating when it has\n"
	  "rows in both), size, rows (~: the planner's estimate, for tenants\n"
	  "with a schema), growth of size and rows per day and per week (from\n"
	  "the snapshot at least a day or a week older, scaled; - while the\n"
	  "history is shorter), the age of the newest verified backup, of the\n"
	  "last vacuum of every table (pg_stat), and the last job. --json gives\n"
	  "timestamps and the same figures as numbers.\n",
	  0, 0, false },
};
/* clang-format on */

static const char exit_status_text[] =
	"Exit status: 0 on success, 1 if the daemon answered with an error,\n"
	"2 on usage or connection problems.\n";

/* The help entry of a command; NULL if pgtenantctl does not know it. */
static const struct command_help *command_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

/* Print the help of one command to fp. */
static void command_usage(FILE *fp, const struct command_help *c)
{
	say(fp, "Usage: pgtenantctl [-s SOCKET] [--json] [-t SECONDS] %s\n\n",
	    c->usage);
	say(fp, "%c%s.\n", c->summary[0] - 'a' + 'A', c->summary + 1);
	if (*c->details != '\0')
		say(fp, "\n%s", c->details);
	say(fp, "\n%s", exit_status_text);
}

/* Print the help text to fp. */
static void usage(FILE *fp)
{
	static const char *const options[][2] = {
		{ "-s, --socket PATH", "control socket (default: "
				       "$PGTENANTD_SOCKET, else" },
		{ "", DEFAULT_SOCKET ")" },
		{ "-j, --json", "print the daemon's JSON response as it is" },
		{ "-t, --timeout SECONDS", "wait this long for the answer" },
		{ "", "(default " DEFAULT_TIMEOUT "; 0 waits forever)" },
		{ "-h, --help", "print this help and exit" },
		{ "-V, --version", "print the version and exit" },
	};

	fputs("Usage: pgtenantctl [-s SOCKET] [--json] [-t SECONDS] "
	      "COMMAND [ARGS]\n\n"
	      "Send one command to a running pgtenantd over its control "
	      "socket.\n\nOptions:\n",
	      fp);
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		say(fp, "  %-24s  %s\n", options[i][0], options[i][1]);
	fputs("\nCommands:\n", fp);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		say(fp, "  %-24s  %s\n", commands[i].usage,
		    commands[i].summary);
	fputs("\n'pgtenantctl help COMMAND' or 'pgtenantctl COMMAND --help' "
	      "says more.\nSizes (*_bytes) and durations (*_s) are written for "
	      "people; --json\nprints the daemon's answer as it is.\n\n",
	      fp);
	fputs(exit_status_text, fp);
}

/* The request line for argv: {"command": argv[0], "args": [...]}. */
static char *build_request(int argc, char **argv)
{
	json_t *request, *args, *value;
	char *text, *line;

	args = json_array();
	for (int i = 1; i < argc; i++) {
		value = json_string(argv[i]);
		if (value == NULL) {
			say(stderr,
			    "pgtenantctl: argument %d is not valid UTF-8\n", i);
			json_decref(args);
			return NULL;
		}
		json_array_append_new(args, value);
	}
	value = json_string(argv[0]);
	if (value == NULL) {
		say(stderr, "pgtenantctl: the command is not valid "
			    "UTF-8\n");
		json_decref(args);
		return NULL;
	}
	request = json_object();
	json_object_set_new(request, "command", value);
	json_object_set_new(request, "args", args);
	text = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	if (text == NULL)
		return NULL;
	line = xasprintf("%s\n", text);
	free(text);
	return line;
}

/* Connect to the control socket at path; -1 after printing why not. */
static int connect_socket(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		say(stderr,
		    "pgtenantctl: control socket path %s is too "
		    "long (at most %zu bytes)\n",
		    path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		say(stderr, "pgtenantctl: cannot create a socket: %s\n",
		    strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int err = errno;

		say(stderr, "pgtenantctl: cannot connect to %s: %s%s\n", path,
		    strerror(err),
		    err == ENOENT || err == ECONNREFUSED ?
			    " (is pgtenantd running?)" :
			    "");
		close(fd);
		return -1;
	}
	return fd;
}

/* Write all of text to fd; false after printing why not. */
static bool send_all(int fd, const char *path, const char *text)
{
	size_t len = strlen(text), done = 0;
	ssize_t n;

	while (done < len) {
		n = send(fd, text + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return true; /* the daemon closed: read why */
		if (n < 0) {
			say(stderr, "pgtenantctl: cannot send to %s: %s\n",
			    path, strerror(errno));
			return false;
		}
		done += (size_t)n;
	}
	return true;
}

/* Read one line from fd within timeout_ms (0: no limit); NULL after
 * printing why not. The newline is removed. */
static char *read_line(int fd, const char *path, int64_t timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	size_t len = 0, size = 4096;
	char *buf = xmalloc(size);
	char *newline;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int wait, rc;

	for (;;) {
		wait = -1;
		if (timeout_ms > 0) {
			int64_t left = deadline - mono_ms();

			if (left <= 0)
				goto timeout;
			wait = left > 1000000 ? 1000000 : (int)left;
		}
		rc = poll(&pfd, 1, wait);
		if (rc < 0 && errno == EINTR && interrupted)
			goto fail;
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			say(stderr, "pgtenantctl: cannot wait for %s: %s\n",
			    path, strerror(errno));
			goto fail;
		}
		if (rc == 0)
			continue;
		if (size - len < 4096) {
			if (size >= MAX_RESPONSE) {
				say(stderr,
				    "pgtenantctl: the response "
				    "from %s is longer than %d bytes\n",
				    path, MAX_RESPONSE);
				goto fail;
			}
			size *= 2;
			buf = xrealloc(buf, size);
		}
		n = read(fd, buf + len, size - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say(stderr, "pgtenantctl: cannot read from %s: %s\n",
			    path, strerror(errno));
			goto fail;
		}
		if (n == 0) {
			say(stderr,
			    "pgtenantctl: %s closed the connection "
			    "without a response\n",
			    path);
			goto fail;
		}
		newline = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (newline != NULL) {
			*newline = '\0';
			if (newline > buf && newline[-1] == '\r')
				newline[-1] = '\0';
			return buf;
		}
	}
timeout:
	say(stderr, "pgtenantctl: no response from %s within %.3g s\n", path,
	    timeout_ms / 1000.0);
fail:
	free(buf);
	return NULL;
}

/* A duration in seconds for people: "45s", "3m12s", "2h05m", "3d04h". */
static char *format_duration(const json_t *value)
{
	if (!json_is_number(value))
		return xstrdup("-");
	return table_duration(json_number_value(value));
}

/* The rows a progress object counts: "1200/2824 rows" of a batch step,
 * "3/10 rows" of a for_each step; NULL if it counts none. */
static char *format_rows(const json_t *progress)
{
	const json_t *done, *total;

	done = json_object_get(progress, "rows_done");
	total = json_object_get(progress, "total_rows");
	if (!json_is_number(total))
		total = json_object_get(progress, "rows_total");
	if (!json_is_number(done)) {
		done = json_object_get(progress, "for_each_done");
		total = json_object_get(progress, "for_each_total");
	}
	if (json_is_number(done) && json_is_number(total))
		return xasprintf("%.0f/%.0f rows", json_number_value(done),
				 json_number_value(total));
	if (json_is_number(done))
		return xasprintf("%.0f rows", json_number_value(done));
	return NULL;
}

/* Progress for people: "42.5% (1200/2824 rows)", or the JSON itself. */
static char *format_progress(const json_t *progress)
{
	const json_t *percent;
	char *rows, *text;

	if (!json_is_object(progress) || json_object_size(progress) == 0)
		return xstrdup("-");
	percent = json_object_get(progress, "percent");
	rows = format_rows(progress);
	if (!json_is_number(percent) && rows == NULL)
		return table_cell(progress);
	if (!json_is_number(percent))
		return rows;
	if (rows == NULL)
		return xasprintf("%.1f%%", json_number_value(percent));
	text = xasprintf("%.1f%% (%s)", json_number_value(percent), rows);
	free(rows);
	return text;
}

/* A timestamp cell: "2026-11-27 04:30:00" from an ISO or PostgreSQL
 * timestamp, anything else as it is. */
static char *format_time(const json_t *value)
{
	const char *s = json_string_value(value);
	char *text;

	if (s == NULL || strlen(s) < 19 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != ' ' && s[10] != 'T'))
		return table_cell(value);
	text = xstrndup(s, 19);
	text[10] = ' ';
	return text;
}

/* Print "key:" padded to width, then the value. */
static void print_field(int width, const char *key, const char *value)
{
	say(stdout, "%s:%*s %s\n", key, width - (int)strlen(key), "", value);
}

/* Print "key: value" for a JSON value if it is there, humanized by key. */
static void print_json_field(int width, const char *key, const json_t *value)
{
	char *text;

	if (value == NULL)
		return;
	text = table_cell_for(key, value);
	print_field(width, key, text);
	free(text);
}

/* Print a table and free it. */
static void print_table(struct table *table)
{
	char *text = table_render(table);

	say(stdout, "%s", text);
	free(text);
	table_free(table);
}

/* The daemon's state in a word: running, paused, stopping; NULL if the
 * answer does not say. */
static const char *daemon_state(const json_t *daemon)
{
	const json_t *paused = json_object_get(daemon, "paused");
	const json_t *stopping = json_object_get(daemon, "stopping");

	if (json_is_true(stopping))
		return "stopping";
	if (json_is_true(paused))
		return "paused";
	if (paused != NULL || stopping != NULL)
		return "running";
	return NULL;
}

/* "connected", "connected, starting" (schema not ready yet) or
 * "disconnected"; NULL if the answer does not say. */
static const char *daemon_database(const json_t *daemon)
{
	const json_t *db = json_object_get(daemon, "db_connected");
	const json_t *ready = json_object_get(daemon, "ready");

	if (!json_is_boolean(db))
		return NULL;
	if (!json_is_true(db))
		return "disconnected";
	return json_is_false(ready) ? "connected, starting" : "connected";
}

/* "1 busy of 2", or NULL if the answer does not say. */
static char *daemon_workers(const json_t *daemon)
{
	const json_t *workers = json_object_get(daemon, "workers");
	const json_t *busy = json_object_get(daemon, "busy");

	if (!json_is_integer(workers) || !json_is_integer(busy))
		return NULL;
	return xasprintf("%" JSON_INTEGER_FORMAT
			 " busy of %" JSON_INTEGER_FORMAT,
			 json_integer_value(busy), json_integer_value(workers));
}

/* A job's step with its place among the job's steps: "copy (2/5)". */
static char *format_step(const json_t *job)
{
	const json_t *progress = json_object_get(job, "progress");
	const json_t *step = json_object_get(job, "step");
	const json_t *index = json_object_get(progress, "step_index");
	const json_t *total = json_object_get(progress, "steps_total");

	if (!json_is_string(step))
		step = json_object_get(progress, "step");
	if (!json_is_string(step))
		return xstrdup("-");
	if (json_is_integer(index) && json_is_integer(total))
		return xasprintf("%s (%" JSON_INTEGER_FORMAT
				 "/%" JSON_INTEGER_FORMAT ")",
				 json_string_value(step),
				 json_integer_value(index) + 1,
				 json_integer_value(total));
	return xstrdup(json_string_value(step));
}

/* A running job's ETA from the job or its progress object. */
static char *format_eta(const json_t *job)
{
	const json_t *eta = json_object_get(job, "eta_s");

	if (!json_is_number(eta))
		eta = json_object_get(json_object_get(job, "progress"),
				      "eta_s");
	return format_duration(eta);
}

/* "[#########-----------]  42.5%" for a percentage; "-" without one. */
static char *format_bar(const json_t *progress)
{
	const json_t *percent = json_object_get(progress, "percent");
	char bar[PROGRESS_BAR_WIDTH + 1];
	double p;
	int filled;

	if (!json_is_number(percent))
		return xstrdup("-");
	p = json_number_value(percent);
	p = p < 0 ? 0 : p > 100 ? 100 : p;
	filled = (int)(p * PROGRESS_BAR_WIDTH / 100);
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '-', (size_t)(PROGRESS_BAR_WIDTH - filled));
	bar[PROGRESS_BAR_WIDTH] = '\0';
	return xasprintf("[%s] %5.1f%%", bar, p);
}

/* True if the migration object (a row of pgtenantd.migration_status) says
 * the cut-over is manual and no go has been given yet. */
static bool migration_awaits_go(const json_t *m)
{
	const char *mode =
		json_string_value(json_object_get(m, "cutover_mode"));
	const char *phase = json_string_value(json_object_get(m, "phase"));

	return mode != NULL && strcmp(mode, "manual") == 0 &&
	       !json_is_true(json_object_get(m, "cutover_go")) &&
	       (phase == NULL ||
		(strcmp(phase, "moved") != 0 && strcmp(phase, "done") != 0));
}

/* A running migration in a few words: "catch_up, backlog 120, attempts
 * 0", with ", paused" or ", at most N per batch" when throttled and
 * ", waiting for go" when a manual cut-over waits; NULL if the job has no
 * migration object. */
static char *format_migration_brief(const json_t *job)
{
	const json_t *m = json_object_get(job, "migration");
	const json_t *limit = json_object_get(m, "batch_limit");
	const char *step = json_string_value(json_object_get(job, "step"));
	char *phase, *backlog, *attempts, *throttle, *text;

	if (!json_is_object(m))
		return NULL;
	phase = table_cell(json_object_get(m, "phase"));
	backlog = table_cell(json_object_get(m, "backlog_keys"));
	attempts = table_cell(json_object_get(m, "cutover_attempts"));
	if (!json_is_integer(limit))
		throttle = xstrdup("");
	else if (json_integer_value(limit) == 0)
		throttle = xstrdup(", paused");
	else
		throttle = xasprintf(", at most %" JSON_INTEGER_FORMAT
				     " per batch",
				     json_integer_value(limit));
	text = xasprintf("%s, backlog %s, attempts %s%s%s", phase, backlog,
			 attempts, throttle,
			 migration_awaits_go(m) && step != NULL &&
					 strcmp(step, "cutover") == 0 ?
				 ", waiting for go" :
				 "");
	free(phase);
	free(backlog);
	free(attempts);
	free(throttle);
	return text;
}

/* The running jobs as a table; with bars, progress as a bar. A column
 * MIGRATION when one of them is a migration. */
static struct table *running_table(const json_t *running, bool bars)
{
	static const char *const headers[] = {
		"ID",	    "KIND",    "TENANT", "STEP",
		"PROGRESS", "RUNNING", "ETA",	 "MIGRATION",
	};
	const json_t *job, *progress;
	struct table *table;
	char *cells[ARRAY_SIZE(headers)];
	unsigned ncols = ARRAY_SIZE(headers) - 1;
	size_t i;

	json_array_foreach(running, i, job) {
		if (json_is_object(json_object_get(job, "migration")))
			ncols = ARRAY_SIZE(headers);
	}
	table = table_new(ncols, headers);
	json_array_foreach(running, i, job) {
		progress = json_object_get(job, "progress");
		cells[0] = table_cell(json_object_get(job, "id"));
		cells[1] = table_cell(json_object_get(job, "kind"));
		cells[2] = table_cell(json_object_get(job, "tenant_id"));
		cells[3] = format_step(job);
		cells[4] = bars ? format_bar(progress) :
				  format_progress(progress);
		cells[5] = format_duration(json_object_get(job, "running_s"));
		cells[6] = format_eta(job);
		cells[7] = format_migration_brief(job);
		table_add_row(table, (const char *const *)cells);
		for (size_t c = 0; c < ARRAY_SIZE(cells); c++)
			free(cells[c]);
	}
	return table;
}

/* Render the status response: a summary, then the running jobs. */
static void render_status(const json_t *response)
{
	const json_t *daemon = json_object_get(response, "daemon");
	const json_t *running = json_object_get(response, "running");
	const char *word;
	char *text;

	if (json_is_object(daemon)) {
		print_json_field(8, "id", json_object_get(daemon, "id"));
		print_json_field(8, "host", json_object_get(daemon, "host"));
		print_json_field(8, "pid", json_object_get(daemon, "pid"));
		print_json_field(8, "version",
				 json_object_get(daemon, "version"));
		if (json_object_get(daemon, "uptime_s") != NULL) {
			text = format_duration(
				json_object_get(daemon, "uptime_s"));
			print_field(8, "uptime", text);
			free(text);
		}
		if ((word = daemon_state(daemon)) != NULL)
			print_field(8, "state", word);
		if ((word = daemon_database(daemon)) != NULL)
			print_field(8, "database", word);
		if ((text = daemon_workers(daemon)) != NULL)
			print_field(8, "workers", text);
		else
			print_json_field(8, "workers",
					 json_object_get(daemon, "workers"));
		free(text);
	}
	if (!json_is_array(running))
		return;
	if (json_array_size(running) == 0) {
		say(stdout, "\nno running jobs\n");
		return;
	}
	say(stdout, "\n");
	print_table(running_table(running, false));
}

/* Render the jobs response as a table. */
static void render_jobs(const json_t *response)
{
	static const char *const headers[] = {
		"ID", "KIND", "TENANT", "STATE", "STEP", "ATTEMPTS", "CREATED",
	};
	const json_t *jobs = json_object_get(response, "jobs");
	const json_t *job, *attempts, *max;
	struct table *table;
	char *cells[ARRAY_SIZE(headers)];
	size_t i;

	if (!json_is_array(jobs) || json_array_size(jobs) == 0) {
		say(stdout, "no jobs\n");
		return;
	}
	table = table_new(ARRAY_SIZE(headers), headers);
	json_array_foreach(jobs, i, job) {
		cells[0] = table_cell(json_object_get(job, "id"));
		cells[1] = table_cell(json_object_get(job, "kind"));
		cells[2] = table_cell(json_object_get(job, "tenant_id"));
		cells[3] = table_cell(json_object_get(job, "state"));
		cells[4] = table_cell(json_object_get(job, "step"));
		attempts = json_object_get(job, "attempts");
		max = json_object_get(job, "max_attempts");
		if (json_is_integer(attempts) && json_is_integer(max))
			cells[5] = xasprintf("%" JSON_INTEGER_FORMAT
					     "/%" JSON_INTEGER_FORMAT,
					     json_integer_value(attempts),
					     json_integer_value(max));
		else
			cells[5] = table_cell(attempts);
		cells[6] = format_time(json_object_get(job, "created_at"));
		table_add_row(table, (const char *const *)cells);
		for (size_t c = 0; c < ARRAY_SIZE(cells); c++)
			free(cells[c]);
	}
	print_table(table);
}

/* Print every member of object as aligned "key: value" lines indented by
 * indent spaces, skipping "ok" at the top; a non-empty object member as
 * "key:" with its own members below it, two levels deep at most. */
static void render_fields_at(const json_t *object, int indent, int depth)
{
	const char *key;
	const json_t *value;
	int width = 0;

	json_object_foreach((json_t *)object, key, value) {
		if ((depth > 0 || strcmp(key, "ok") != 0) &&
		    (int)strlen(key) > width)
			width = (int)strlen(key);
	}
	json_object_foreach((json_t *)object, key, value) {
		if (depth == 0 && strcmp(key, "ok") == 0)
			continue;
		say(stdout, "%*s", indent, "");
		if (json_is_object(value) && json_object_size(value) > 0 &&
		    depth < 2) {
			say(stdout, "%s:\n", key);
			render_fields_at(value, indent + 2, depth + 1);
		} else {
			print_json_field(width, key, value);
		}
	}
}

/* Print every member of object as aligned "key: value" lines. */
static void render_fields(const json_t *object)
{
	render_fields_at(object, 0, 0);
}

/* Print "  label: value" of a migration, the label (a literal of this
 * file) padded to width, the value (printf-style) escaped once, newlines
 * too: it may hold text from the database and must stay on its line. */
static void __attribute__((format(printf, 3, 4)))
print_migration_line(int width, const char *label, const char *fmt, ...)
{
	va_list ap;
	char *value, *safe;

	va_start(ap, fmt);
	value = xvasprintf(fmt, ap);
	va_end(ap);
	safe = table_escape(value, false);
	printf("  %s:%*s %s\n", label, width - (int)strlen(label), "", safe);
	free(safe);
	free(value);
}

/* A JSON number as an integer, 0 if it is none. */
static double number_or_zero(const json_t *value)
{
	return json_is_number(value) ? json_number_value(value) : 0;
}

/* Render a job's migration (its row of pgtenantd.migration_status) for
 * people, under "migration:". */
static void render_migration(const json_t *m, const json_t *job)
{
	const int width = 18; /* "last cutover error" */
	double copied = number_or_zero(json_object_get(m, "rows_copied"));
	double total = number_or_zero(json_object_get(m, "rows_total"));
	const json_t *rate = json_object_get(m, "replay_rate");
	const json_t *limit = json_object_get(m, "batch_limit");
	const json_t *ms = json_object_get(m, "cutover_ms");
	const json_t *error = json_object_get(m, "last_cutover_error");
	const char *mode =
		json_string_value(json_object_get(m, "cutover_mode"));
	char *id = table_cell(json_object_get(job, "id"));
	char *phase = table_cell(json_object_get(m, "phase"));
	char *since = format_time(json_object_get(m, "phase_at"));
	char *schema = table_cell(json_object_get(m, "schema_name"));
	char *attempts = table_cell(json_object_get(m, "cutover_attempts"));
	char *budget = table_cell(json_object_get(m, "lock_budget"));

	say(stdout, "migration:\n");
	print_migration_line(width, "phase", "%s (since %s)", phase, since);
	print_migration_line(width, "schema", "%s", schema);
	if (total > 0)
		print_migration_line(width, "copied", "%.0f/%.0f rows (%.1f%%)",
				     copied, total, 100.0 * copied / total);
	else
		print_migration_line(width, "copied", "%.0f/%.0f rows", copied,
				     total);
	print_migration_line(
		width, "backlog", "%.0f keys",
		number_or_zero(json_object_get(m, "backlog_keys")));
	print_migration_line(
		width, "replayed", "%.0f keys (%.1f keys/s)",
		number_or_zero(json_object_get(m, "replayed_keys")),
		number_or_zero(rate));
	if (mode != NULL && strcmp(mode, "manual") == 0 &&
	    migration_awaits_go(m))
		print_migration_line(
			width, "cutover",
			"manual, waiting for go (pgtenantctl cutover %s)", id);
	else if (mode != NULL && strcmp(mode, "manual") == 0)
		print_migration_line(width, "cutover", "manual, go given");
	else
		print_migration_line(width, "cutover", "%s",
				     mode != NULL ? mode : "-");
	if (!json_is_integer(limit))
		print_migration_line(width, "throttle", "none");
	else if (json_integer_value(limit) == 0)
		print_migration_line(width, "throttle",
				     "paused (pgtenantctl unthrottle %s)", id);
	else
		print_migration_line(width, "throttle",
				     "at most %" JSON_INTEGER_FORMAT
				     " pages or keys per batch",
				     json_integer_value(limit));
	print_migration_line(width, "cutover attempts", "%s", attempts);
	if (json_is_string(error))
		print_migration_line(width, "last cutover error", "%s",
				     json_string_value(error));
	if (json_is_number(ms)) {
		char *took = table_duration(json_number_value(ms) / 1000.0);
		char *at = format_time(json_object_get(m, "moved_at"));

		if (json_is_string(json_object_get(m, "moved_at")))
			print_migration_line(width, "cutover took",
					     "%s (moved at %s)", took, at);
		else
			print_migration_line(width, "cutover took", "%s", took);
		free(took);
		free(at);
	}
	print_migration_line(width, "lock budget", "%s", budget);
	free(id);
	free(phase);
	free(since);
	free(schema);
	free(attempts);
	free(budget);
}

/* Render the job response: one line per column, then a migration's
 * state. */
static void render_job(const json_t *response)
{
	const json_t *job = json_object_get(response, "job");
	const json_t *migration = json_object_get(job, "migration");
	json_t *rest;

	if (!json_is_object(job)) {
		render_fields(response);
		return;
	}
	if (!json_is_object(migration)) {
		render_fields(job);
		return;
	}
	rest = json_deep_copy(job);
	json_object_del(rest, "migration");
	render_fields(rest);
	json_decref(rest);
	render_migration(migration, job);
}

/* Render the metrics response: the Prometheus text as it is. */
static void render_metrics(const json_t *response)
{
	const char *text = json_string_value(json_object_get(response, "text"));
	size_t len;

	if (text == NULL)
		return;
	len = strlen(text);
	say(stdout, "%s", text);
	if (len > 0 && text[len - 1] != '\n')
		putchar('\n');
}

/* Render an array as a table with columns from its first object. */
static void render_array(const json_t *array, const char *what)
{
	struct table *table;
	const json_t *item;
	char *text;
	size_t i;

	if (json_array_size(array) == 0) {
		say(stdout, "no %s\n", what);
		return;
	}
	table = table_from_json(array);
	if (table != NULL) {
		print_table(table);
		return;
	}
	json_array_foreach(array, i, item) {
		text = table_cell(item);
		say(stdout, "%s\n", text);
		free(text);
	}
}

/* The last restore drill of a listed backup: DRILL is its outcome and
 * time ("passed 2024-05-01T03:00:00Z"; "passed (not compared) ..." for a
 * backup that recorded no tables), and a failed drill's message goes into
 * ERROR when the backup itself has none. */
static void backup_drill_cells(const json_t *backup, char **error_cell,
			       char **drill_cell)
{
	const char *outcome =
		json_string_value(json_object_get(backup, "drill"));
	const char *at = json_string_value(json_object_get(backup, "drill_at"));
	const char *drill_error =
		json_string_value(json_object_get(backup, "drill_error"));

	if (outcome != NULL) {
		/* a backup that recorded no tables was only restored */
		bool compared = !json_is_null(
			json_object_get(backup, "tables_recorded"));

		free(*drill_cell);
		*drill_cell = xasprintf("%s%s %s", outcome,
					compared ? "" : " (not compared)",
					at ? at : "");
	}
	if (drill_error != NULL &&
	    json_string_value(json_object_get(backup, "error")) == NULL) {
		free(*error_cell);
		*error_cell = xstrdup(drill_error);
	}
}

/* Render the backups response: the columns people need (the checksum and
 * the full path are in --json). */
static void render_backups(const json_t *response)
{
	static const char *const keys[] = {
		"id",	      "tenant_id", "created", "status", "size_bytes",
		"duration_s", "job_id",	   "file",    "error",	"drill",
	};
	static const char *const headers[] = {
		"ID",	"TENANT", "CREATED", "STATUS", "SIZE",
		"TOOK", "JOB",	  "FILE",    "ERROR",  "DRILL",
	};
	const json_t *backups = json_object_get(response, "backups");
	const json_t *backup;
	struct table *table;
	char *cells[ARRAY_SIZE(keys)];
	size_t i;

	if (!json_is_array(backups) || json_array_size(backups) == 0) {
		say(stdout, "no backups\n");
		return;
	}
	table = table_new(ARRAY_SIZE(headers), headers);
	json_array_foreach(backups, i, backup) {
		for (size_t c = 0; c < ARRAY_SIZE(keys); c++)
			cells[c] = table_cell_for(
				keys[c], json_object_get(backup, keys[c]));
		backup_drill_cells(backup, &cells[8], &cells[9]);
		table_add_row(table, (const char *const *)cells);
		for (size_t c = 0; c < ARRAY_SIZE(keys); c++)
			free(cells[c]);
	}
	print_table(table);
}

/* A growth figure with its sign: a size ("+1.2 KiB") or a count
 * ("+10.5"); "-" when there is not enough history. */
static char *format_growth(const json_t *value, bool size)
{
	double v;
	char *magnitude, *text;

	if (!json_is_number(value))
		return xstrdup("-");
	v = json_number_value(value);
	if (!size)
		return xasprintf("%+.1f", v);
	magnitude = table_size(v < 0 ? -v : v);
	text = xasprintf("%s%s", v < 0 ? "-" : "+", magnitude);
	free(magnitude);
	return text;
}

/* An age in seconds as "2h05m", "-" when there is none. */
static char *format_age(const json_t *value)
{
	return json_is_number(value) ?
		       table_duration(json_number_value(value)) :
		       xstrdup("-");
}

/* Render the tenants response: one line per tenant. */
static void render_tenants(const json_t *response)
{
	static const char *const headers[] = {
		"TENANT",   "LAYOUT",	 "SIZE",     "ROWS",
		"SIZE/DAY", "SIZE/WEEK", "ROWS/DAY", "ROWS/WEEK",
		"BACKUP",   "VACUUM",	 "LAST JOB",
	};
	const json_t *tenants = json_object_get(response, "tenants");
	const json_t *tenant;
	struct table *table;
	char *cells[ARRAY_SIZE(headers)];
	size_t i;

	if (!json_is_array(tenants) || json_array_size(tenants) == 0) {
		say(stdout,
		    "no tenants: no snapshot yet (tenant_snapshot_interval)\n");
		return;
	}
	table = table_new(ARRAY_SIZE(headers), headers);
	json_array_foreach(tenants, i, tenant) {
		const json_t *rows = json_object_get(tenant, "rows");
		const json_t *kind = json_object_get(tenant, "last_job_kind");
		char *age;

		cells[0] = table_cell(json_object_get(tenant, "tenant_id"));
		cells[1] = table_cell(json_object_get(tenant, "layout"));
		cells[2] = table_cell_for("size_bytes",
					  json_object_get(tenant, "bytes"));
		cells[3] = xasprintf("%s%" JSON_INTEGER_FORMAT,
				     json_is_true(json_object_get(
					     tenant, "rows_estimated")) ?
					     "~" :
					     "",
				     json_integer_value(rows));
		cells[4] = format_growth(
			json_object_get(tenant, "bytes_per_day"), true);
		cells[5] = format_growth(
			json_object_get(tenant, "bytes_per_week"), true);
		cells[6] = format_growth(
			json_object_get(tenant, "rows_per_day"), false);
		cells[7] = format_growth(
			json_object_get(tenant, "rows_per_week"), false);
		cells[8] = format_age(
			json_object_get(tenant, "last_backup_age_s"));
		cells[9] = format_age(
			json_object_get(tenant, "last_vacuum_age_s"));
		age = format_age(json_object_get(tenant, "last_job_age_s"));
		cells[10] =
			json_is_string(kind) ?
				xasprintf("%s %s %s ago",
					  json_string_value(kind),
					  json_string_value(json_object_get(
						  tenant, "last_job_state")),
					  age) :
				xstrdup("-");
		free(age);
		table_add_row(table, (const char *const *)cells);
		for (size_t c = 0; c < ARRAY_SIZE(cells); c++)
			free(cells[c]);
	}
	print_table(table);
	say(stdout,
	    "\nBACKUP, VACUUM: age of the newest verified backup and of the oldest table's last vacuum; ~: estimated rows\n");
}

/* Render a response that holds a list (schedules, backups): the member
 * named like the command, else the first array member. */
static bool render_list(const json_t *response, const char *command)
{
	const json_t *array = json_object_get(response, command);
	const char *key;
	const json_t *value;

	if (!json_is_array(array)) {
		array = NULL;
		json_object_foreach((json_t *)response, key, value) {
			if (json_is_array(value)) {
				array = value;
				break;
			}
		}
	}
	if (array == NULL)
		return false;
	render_array(array, command);
	return true;
}

/* Render one fleet: its fields, then its tenants as a table. */
static void render_fleet(const json_t *response)
{
	json_t *fleet = json_deep_copy(json_object_get(response, "fleet"));
	const json_t *members = json_object_get(fleet, "members");

	json_incref((json_t *)members);
	json_object_del(fleet, "members");
	render_fields(fleet);
	if (json_is_array(members)) {
		say(stdout, "\n");
		render_array(members, "tenants");
	}
	json_decref((json_t *)members);
	json_decref(fleet);
}

/* Render any other response: "ok" with its message, then other fields. */
static void render_other(json_t *response)
{
	const char *message;
	json_t *rest;

	message = json_string_value(json_object_get(response, "message"));
	if (message != NULL)
		say(stdout, "ok: %s\n", message);
	else
		say(stdout, "ok\n");
	rest = json_deep_copy(response);
	json_object_del(rest, "ok");
	json_object_del(rest, "message");
	render_fields(rest);
	json_decref(rest);
}

/* Print a successful response for people. */
static void render(const char *command, json_t *response)
{
	if (strcmp(command, "status") == 0)
		render_status(response);
	else if (strcmp(command, "jobs") == 0)
		render_jobs(response);
	else if (strcmp(command, "job") == 0)
		render_job(response);
	else if (strcmp(command, "metrics") == 0)
		render_metrics(response);
	else if (strcmp(command, "fleet") == 0 &&
		 json_is_object(json_object_get(response, "fleet")))
		render_fleet(response);
	else if (strcmp(command, "backups") == 0 &&
		 json_is_array(json_object_get(response, "backups")))
		render_backups(response);
	else if (strcmp(command, "tenants") == 0)
		render_tenants(response);
	else if ((strcmp(command, "schedules") == 0 ||
		  strcmp(command, "backups") == 0 ||
		  strcmp(command, "fleet") == 0) &&
		 render_list(response, command))
		return;
	else
		render_other(response);
}

/* Parse a timeout in seconds; false on anything but a number >= 0. */
static bool parse_timeout(const char *text, int64_t *ms)
{
	char *end;
	double seconds;

	errno = 0;
	seconds = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(seconds) ||
	    seconds < 0 || seconds > 86400.0 * 365)
		return false;
	*ms = (int64_t)llround(seconds * 1000);
	if (*ms == 0 && seconds > 0)
		*ms = 1;
	return true;
}

/* Send argv as one request and read the answer. EXIT_OK with *line (the
 * answer's text) and *response (a JSON object) set, else EXIT_USAGE after
 * printing why. */
static int fetch(const char *path, int64_t timeout_ms, int argc, char **argv,
		 char **line, json_t **response)
{
	json_error_t error;
	char *request;
	int fd;

	*line = NULL;
	*response = NULL;
	request = build_request(argc, argv);
	if (request == NULL)
		return EXIT_USAGE;
	fd = connect_socket(path);
	if (fd < 0) {
		free(request);
		return EXIT_USAGE;
	}
	if (send_all(fd, path, request))
		*line = read_line(fd, path, timeout_ms);
	close(fd);
	free(request);
	if (*line == NULL)
		return EXIT_USAGE;
	*response = json_loads(*line, 0, &error);
	if (!json_is_object(*response)) {
		say(stderr, "pgtenantctl: bad response from %s: %s\n", path,
		    *response == NULL ? error.text : "not a JSON object");
		json_decref(*response);
		*response = NULL;
		free(*line);
		*line = NULL;
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Print a daemon's error answer; EXIT_DAEMON_ERROR. */
static int daemon_error(const json_t *response)
{
	const char *text =
		json_string_value(json_object_get(response, "error"));

	say(stderr, "pgtenantctl: %s\n",
	    text != NULL ? text :
			   "the daemon answered with an error but gave no "
			   "message");
	return EXIT_DAEMON_ERROR;
}

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleep ms, or less if interrupted. */
static void watch_sleep(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	if (!interrupted)
		nanosleep(&ts, NULL);
}

/* The local time as "2026-11-27 04:30:00". */
static void now_text(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* One screen of watch on a terminal: who, then the jobs with bars. */
static void watch_draw(const json_t *response, int64_t interval_ms)
{
	const json_t *daemon = json_object_get(response, "daemon");
	const json_t *running = json_object_get(response, "running");
	const char *state = daemon_state(daemon);
	const char *db = daemon_database(daemon);
	char *workers = daemon_workers(daemon);
	char *uptime = format_duration(json_object_get(daemon, "uptime_s"));
	char *host = table_cell(json_object_get(daemon, "host"));
	char *pid = table_cell(json_object_get(daemon, "pid"));

	say(stdout,
	    "pgtenantd on %s (pid %s): %s, database %s, workers %s, up %s\n",
	    host, pid, state ? state : "-", db ? db : "-",
	    workers ? workers : "-", uptime);
	free(workers);
	free(uptime);
	free(host);
	free(pid);
	if (!json_is_array(running) || json_array_size(running) == 0)
		say(stdout, "\nno running jobs\n");
	else {
		say(stdout, "\n");
		print_table(running_table(running, true));
	}
	(void)interval_ms;
}

/* One line of watch when stdout is not a terminal. */
static void watch_line(const json_t *response, const char *stamp)
{
	const json_t *daemon = json_object_get(response, "daemon");
	const json_t *running = json_object_get(response, "running");
	const json_t *job;
	const char *state = daemon_state(daemon);
	char *workers = daemon_workers(daemon);
	size_t i;

	say(stdout, "%s %s, workers %s:", stamp, state ? state : "-",
	    workers ? workers : "-");
	free(workers);
	if (!json_is_array(running) || json_array_size(running) == 0)
		say(stdout, " no running jobs");
	json_array_foreach(running, i, job) {
		char *id = table_cell(json_object_get(job, "id"));
		char *kind = table_cell(json_object_get(job, "kind"));
		char *tenant = table_cell(json_object_get(job, "tenant_id"));
		char *step = format_step(job);
		char *progress =
			format_progress(json_object_get(job, "progress"));
		char *eta = format_eta(job);
		char *migration = format_migration_brief(job);

		say(stdout, "%s job %s %s %s step %s %s eta %s",
		    i > 0 ? ";" : "", id, kind, tenant, step, progress, eta);
		if (migration != NULL)
			say(stdout, " migration %s", migration);
		free(migration);
		free(id);
		free(kind);
		free(tenant);
		free(step);
		free(progress);
		free(eta);
	}
	say(stdout, "\n");
}

/* watch [INTERVAL] [COUNT]: ask for status again and again. */
static int cmd_watch(const char *path, int64_t timeout_ms, bool json_output,
		     int argc, char **argv)
{
	int64_t interval_ms = WATCH_INTERVAL_MS;
	long count = 0, done = 0;
	bool tty = isatty(STDOUT_FILENO) && !json_output;
	struct sigaction sa;
	char *status_argv[] = { "status", NULL };
	char *line, *end, stamp[32];
	json_t *response;
	int status = EXIT_OK;

	if (argc > 1 && (!duration_parse(argv[1], &interval_ms) ||
			 interval_ms < WATCH_MIN_INTERVAL_MS)) {
		say(stderr,
		    "pgtenantctl: bad interval \"%s\": give e.g. \"2\", "
		    "\"500ms\" or \"5s\" (at least 100ms)\n",
		    argv[1]);
		return EXIT_USAGE;
	}
	if (argc > 2) {
		errno = 0;
		count = strtol(argv[2], &end, 10);
		if (errno != 0 || end == argv[2] || *end != '\0' || count < 1) {
			say(stderr,
			    "pgtenantctl: bad count \"%s\": give a number "
			    "of refreshes, at least 1\n",
			    argv[2]);
			return EXIT_USAGE;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	while (!interrupted) {
		now_text(stamp, sizeof(stamp));
		if (tty) {
			fputs("\033[H\033[2J", stdout); /* ours: clear */
			say(stdout,
			    "Every %.3gs: pgtenantctl status   %s   "
			    "(Ctrl-C to stop)\n\n",
			    interval_ms / 1000.0, stamp);
		}
		fflush(stdout);
		status = fetch(path, timeout_ms, 1, status_argv, &line,
			       &response);
		if (interrupted) {
			json_decref(response);
			free(line);
			break;
		}
		if (status == EXIT_OK && json_output) {
			print_json_line(line);
			if (!json_is_true(json_object_get(response, "ok")))
				status = daemon_error(response);
		} else if (status == EXIT_OK &&
			   !json_is_true(json_object_get(response, "ok"))) {
			status = daemon_error(response);
		} else if (status == EXIT_OK && tty) {
			watch_draw(response, interval_ms);
		} else if (status == EXIT_OK) {
			watch_line(response, stamp);
		} else if (!tty) {
			say(stdout, "%s no answer from %s\n", stamp, path);
		}
		json_decref(response);
		free(line);
		if (fflush(stdout) != 0 || ferror(stdout))
			return EXIT_USAGE;
		if (count > 0 && ++done >= count)
			return status;
		watch_sleep(interval_ms);
	}
	return EXIT_OK;
}

/* help [COMMAND]: the general help, or one command's. */
static int cmd_help(int argc, char **argv)
{
	const struct command_help *c;

	if (argc < 2) {
		usage(stdout);
		return EXIT_OK;
	}
	c = command_find(argv[1]);
	if (c == NULL) {
		say(stderr,
		    "pgtenantctl: no help for \"%s\": not a command; see "
		    "'pgtenantctl --help'\n",
		    argv[1]);
		return EXIT_USAGE;
	}
	command_usage(stdout, c);
	return EXIT_OK;
}

/* True if one of the command's arguments asks for help. */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

/* Parse the options, send the command, print the answer. */
int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("PGTENANTD_SOCKET");
	const struct command_help *c;
	int64_t timeout_ms = 0;
	bool json_output = false;
	json_t *response;
	char *line;
	int opt, status, nargs;

	if (path == NULL || *path == '\0')
		path = DEFAULT_SOCKET;
	if (!parse_timeout(DEFAULT_TIMEOUT, &timeout_ms))
		abort();
	while ((opt = getopt_long(argc, argv, "+s:jt:hV", long_options,
				  NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json_output = true;
			break;
		case 't':
			if (!parse_timeout(optarg, &timeout_ms)) {
				say(stderr,
				    "pgtenantctl: bad timeout "
				    "\"%s\": give seconds, 0 for none\n",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			say(stdout, "pgtenantctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			say(stderr, "Try 'pgtenantctl --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		say(stderr, "pgtenantctl: no command given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	c = command_find(argv[0]);
	if (strcmp(argv[0], "help") == 0 && argc <= 2)
		return cmd_help(argc, argv);
	if (wants_help(argc, argv)) {
		if (c == NULL) {
			say(stderr,
			    "pgtenantctl: unknown command \"%s\"; see "
			    "'pgtenantctl --help'\n",
			    argv[0]);
			return EXIT_USAGE;
		}
		command_usage(stdout, c);
		return EXIT_OK;
	}
	nargs = argc - 1;
	if (c != NULL && (nargs < c->min_args || nargs > c->max_args)) {
		say(stderr, "pgtenantctl: %s: %s\nusage: pgtenantctl %s\n",
		    c->name,
		    nargs < c->min_args ? "missing argument" :
					  "too many arguments",
		    c->usage);
		return EXIT_USAGE;
	}
	if (strcmp(argv[0], "watch") == 0)
		return cmd_watch(path, timeout_ms, json_output, argc, argv);

	status = fetch(path, timeout_ms, argc, argv, &line, &response);
	if (status != EXIT_OK)
		return status;
	if (json_output)
		print_json_line(line);
	if (json_is_true(json_object_get(response, "ok"))) {
		if (!json_output)
			render(argv[0], response);
	} else {
		status = daemon_error(response);
	}
	json_decref(response);
	free(line);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		say(stderr, "pgtenantctl: cannot write the output: %s\n",
		    strerror(errno));
		return EXIT_USAGE;
	}
	return status;
}
