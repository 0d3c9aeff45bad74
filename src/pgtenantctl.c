/* pgtenantctl.c - the control socket client: send one command to a running
 * pgtenantd, print its answer as tables for people or as JSON for scripts. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

enum {
	EXIT_OK = 0,
	EXIT_DAEMON_ERROR = 1,
	EXIT_USAGE = 2,
};

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
	static const char *const commands[][2] = {
		{ "status", "the daemon, its workers and the running jobs" },
		{ "jobs [STATE]", "recent jobs, or only those in STATE" },
		{ "job ID", "every column of one job" },
		{ "cancel ID", "stop a job at its next safe point" },
		{ "pause, resume", "stop or restart claiming new jobs" },
		{ "schedules", "the configured schedules" },
		{ "backups [TENANT]", "the backups on disk" },
		{ "reload", "reload the configuration and job definitions" },
		{ "metrics", "metrics in the Prometheus text format" },
	};

	fputs("Usage: pgtenantctl [-s SOCKET] [--json] [-t SECONDS] "
	      "COMMAND [ARGS]\n\n"
	      "Send one command to a running pgtenantd over its control "
	      "socket.\n\nOptions:\n",
	      fp);
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		fprintf(fp, "  %-21s  %s\n", options[i][0], options[i][1]);
	fputs("\nCommands:\n", fp);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(fp, "  %-21s  %s\n", commands[i][0], commands[i][1]);
	fputs("\nExit status: 0 on success, 1 if the daemon answered with an "
	      "error,\n2 on usage or connection problems.\n",
	      fp);
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
			fprintf(stderr,
				"pgtenantctl: argument %d is not valid UTF-8\n",
				i);
			json_decref(args);
			return NULL;
		}
		json_array_append_new(args, value);
	}
	value = json_string(argv[0]);
	if (value == NULL) {
		fprintf(stderr, "pgtenantctl: the command is not valid "
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
		fprintf(stderr,
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
		fprintf(stderr, "pgtenantctl: cannot create a socket: %s\n",
			strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int err = errno;

		fprintf(stderr, "pgtenantctl: cannot connect to %s: %s%s\n",
			path, strerror(err),
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
		if (n < 0) {
			fprintf(stderr, "pgtenantctl: cannot send to %s: %s\n",
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
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			fprintf(stderr, "pgtenantctl: cannot wait for %s: %s\n",
				path, strerror(errno));
			goto fail;
		}
		if (rc == 0)
			continue;
		if (size - len < 4096) {
			if (size >= MAX_RESPONSE) {
				fprintf(stderr,
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
			fprintf(stderr,
				"pgtenantctl: cannot read from %s: %s\n", path,
				strerror(errno));
			goto fail;
		}
		if (n == 0) {
			fprintf(stderr,
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
	fprintf(stderr, "pgtenantctl: no response from %s within %.3g s\n",
		path, timeout_ms / 1000.0);
fail:
	free(buf);
	return NULL;
}

/* A duration in seconds for people: "45s", "3m12s", "2h05m", "3d04h". */
static char *format_duration(const json_t *value)
{
	double s;
	long n;

	if (!json_is_number(value) || json_number_value(value) < 0 ||
	    !isfinite(json_number_value(value)))
		return xstrdup("-");
	s = json_number_value(value);
	n = (long)llround(s);
	if (n < 60)
		return xasprintf("%lds", n);
	if (n < 3600)
		return xasprintf("%ldm%02lds", n / 60, n % 60);
	if (n < 86400)
		return xasprintf("%ldh%02ldm", n / 3600, n % 3600 / 60);
	return xasprintf("%ldd%02ldh", n / 86400, n % 86400 / 3600);
}

/* Progress for people: "42.5% (1200/2824 rows)", or the JSON itself. */
static char *format_progress(const json_t *progress)
{
	const json_t *percent, *done, *total;
	char *rows = NULL, *text;

	if (!json_is_object(progress) || json_object_size(progress) == 0)
		return xstrdup("-");
	percent = json_object_get(progress, "percent");
	done = json_object_get(progress, "rows_done");
	total = json_object_get(progress, "rows_total");
	if (!json_is_number(percent) && !json_is_number(done))
		return table_cell(progress);
	if (json_is_number(done) && json_is_number(total))
		rows = xasprintf("%.0f/%.0f rows", json_number_value(done),
				 json_number_value(total));
	else if (json_is_number(done))
		rows = xasprintf("%.0f rows", json_number_value(done));
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
	printf("%s:%*s %s\n", key, width - (int)strlen(key), "", value);
}

/* Print "key: value" for a JSON value if it is there. */
static void print_json_field(int width, const char *key, const json_t *value)
{
	char *text;

	if (value == NULL)
		return;
	text = table_cell(value);
	print_field(width, key, text);
	free(text);
}

/* Print a table and free it. */
static void print_table(struct table *table)
{
	char *text = table_render(table);

	fputs(text, stdout);
	free(text);
	table_free(table);
}

/* Render the status response: a summary, then the running jobs. */
static void render_status(const json_t *response)
{
	static const char *const headers[] = {
		"ID", "KIND", "TENANT", "STEP", "PROGRESS", "ETA",
	};
	const json_t *daemon = json_object_get(response, "daemon");
	const json_t *running = json_object_get(response, "running");
	const json_t *paused, *stopping, *db, *workers, *busy, *job;
	struct table *table;
	char *cells[ARRAY_SIZE(headers)];
	char *text;
	size_t i;

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
		paused = json_object_get(daemon, "paused");
		stopping = json_object_get(daemon, "stopping");
		if (json_is_true(stopping))
			print_field(8, "state", "stopping");
		else if (json_is_true(paused))
			print_field(8, "state", "paused");
		else if (paused != NULL || stopping != NULL)
			print_field(8, "state", "running");
		db = json_object_get(daemon, "db_connected");
		if (json_is_boolean(db))
			print_field(8, "database",
				    json_is_true(db) ? "connected" :
						       "disconnected");
		workers = json_object_get(daemon, "workers");
		busy = json_object_get(daemon, "busy");
		if (json_is_integer(workers) && json_is_integer(busy)) {
			text = xasprintf("%" JSON_INTEGER_FORMAT
					 " busy of %" JSON_INTEGER_FORMAT,
					 json_integer_value(busy),
					 json_integer_value(workers));
			print_field(8, "workers", text);
			free(text);
		} else {
			print_json_field(8, "workers", workers);
		}
	}
	if (!json_is_array(running))
		return;
	if (json_array_size(running) == 0) {
		printf("\nno running jobs\n");
		return;
	}
	table = table_new(ARRAY_SIZE(headers), headers);
	json_array_foreach(running, i, job) {
		cells[0] = table_cell(json_object_get(job, "id"));
		cells[1] = table_cell(json_object_get(job, "kind"));
		cells[2] = table_cell(json_object_get(job, "tenant_id"));
		cells[3] = table_cell(json_object_get(job, "step"));
		cells[4] = format_progress(json_object_get(job, "progress"));
		cells[5] = format_duration(json_object_get(job, "eta_s"));
		table_add_row(table, (const char *const *)cells);
		for (size_t c = 0; c < ARRAY_SIZE(cells); c++)
			free(cells[c]);
	}
	printf("\n");
	print_table(table);
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
		printf("no jobs\n");
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

/* Print every member of object as aligned "key: value" lines, skipping
 * "ok". */
static void render_fields(const json_t *object)
{
	const char *key;
	const json_t *value;
	int width = 0;

	json_object_foreach((json_t *)object, key, value) {
		if (strcmp(key, "ok") != 0 && (int)strlen(key) > width)
			width = (int)strlen(key);
	}
	json_object_foreach((json_t *)object, key, value) {
		if (strcmp(key, "ok") != 0)
			print_json_field(width, key, value);
	}
}

/* Render the job response: one line per column. */
static void render_job(const json_t *response)
{
	const json_t *job = json_object_get(response, "job");

	render_fields(json_is_object(job) ? job : response);
}

/* Render the metrics response: the Prometheus text as it is. */
static void render_metrics(const json_t *response)
{
	const char *text = json_string_value(json_object_get(response, "text"));
	size_t len;

	if (text == NULL)
		return;
	len = strlen(text);
	fputs(text, stdout);
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
		printf("no %s\n", what);
		return;
	}
	table = table_from_json(array);
	if (table != NULL) {
		print_table(table);
		return;
	}
	json_array_foreach(array, i, item) {
		text = table_cell(item);
		printf("%s\n", text);
		free(text);
	}
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

/* Render any other response: "ok" with its message, then other fields. */
static void render_other(json_t *response)
{
	const char *message;
	json_t *rest;

	message = json_string_value(json_object_get(response, "message"));
	if (message != NULL)
		printf("ok: %s\n", message);
	else
		printf("ok\n");
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
	else if ((strcmp(command, "schedules") == 0 ||
		  strcmp(command, "backups") == 0) &&
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
	int64_t timeout_ms = 0;
	bool json_output = false;
	json_error_t error;
	json_t *response;
	const char *text;
	char *request, *line;
	int opt, fd, status;

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
				fprintf(stderr,
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
			printf("pgtenantctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'pgtenantctl --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "pgtenantctl: no command given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	request = build_request(argc - optind, argv + optind);
	if (request == NULL)
		return EXIT_USAGE;
	fd = connect_socket(path);
	if (fd < 0) {
		free(request);
		return EXIT_USAGE;
	}
	line = NULL;
	if (send_all(fd, path, request))
		line = read_line(fd, path, timeout_ms);
	close(fd);
	free(request);
	if (line == NULL)
		return EXIT_USAGE;
	response = json_loads(line, 0, &error);
	if (!json_is_object(response)) {
		fprintf(stderr, "pgtenantctl: bad response from %s: %s\n", path,
			response == NULL ? error.text : "not a JSON object");
		json_decref(response);
		free(line);
		return EXIT_USAGE;
	}
	if (json_output)
		printf("%s\n", line);
	if (json_is_true(json_object_get(response, "ok"))) {
		if (!json_output)
			render(argv[optind], response);
		status = EXIT_OK;
	} else {
		text = json_string_value(json_object_get(response, "error"));
		fprintf(stderr, "pgtenantctl: %s\n",
			text != NULL ? text :
				       "the daemon answered with an "
				       "error but gave no message");
		status = EXIT_DAEMON_ERROR;
	}
	json_decref(response);
	free(line);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "pgtenantctl: cannot write the output: %s\n",
			strerror(errno));
		return EXIT_USAGE;
	}
	return status;
}
