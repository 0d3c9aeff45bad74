/* test_ctl.c - the control socket: request parser, table renderer, and a
 * real server on an event loop driven by a client thread. */
#include "ctl.h"
#include "log.h"
#include "table.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "unit.h"

#define BIG_REPLY (1536 * 1024)

/* Parse text and return the result; cause is left in *cause. */
static bool parse(const char *text, struct ctl_request *req, char **cause)
{
	free(*cause);
	*cause = NULL;
	return ctl_parse_request(text, strlen(text), req, cause);
}

/* Request parser: words, JSON and every kind of bad input. */
static void test_parse(void)
{
	struct ctl_request req;
	char *cause = NULL;
	char line[512];

	ok(parse("jobs running", &req, &cause), "words parse");
	is_str(req.command, "jobs", "words: command");
	is_int(req.argc, 1, "words: one arg");
	is_str(req.args[0], "running", "words: arg");
	ok(req.args[1] == NULL, "words: args end with NULL");
	ctl_request_clear(&req);
	ok(req.command == NULL && req.argc == 0, "clear empties the request");

	ok(parse("  cancel \t 42   \r", &req, &cause), "extra blanks parse");
	is_str(req.command, "cancel", "extra blanks: command");
	is_int(req.argc, 1, "extra blanks: one arg");
	is_str(req.args[0], "42", "extra blanks: arg");
	ctl_request_clear(&req);

	ok(parse("status", &req, &cause), "bare command parses");
	is_int(req.argc, 0, "bare command: no args");
	ctl_request_clear(&req);

	ok(parse("{\"command\":\"backups\",\"args\":[\"acme-corp\"]}", &req,
		 &cause),
	   "JSON parses");
	is_str(req.command, "backups", "JSON: command");
	is_int(req.argc, 1, "JSON: one arg");
	is_str(req.args[0], "acme-corp", "JSON: arg");
	ctl_request_clear(&req);

	ok(parse(" {\"command\":\"status\"} ", &req, &cause),
	   "JSON without args parses");
	is_int(req.argc, 0, "JSON without args: none");
	ctl_request_clear(&req);

	ok(parse("{\"command\":\"jobs\",\"args\":[\"a b\"]}", &req, &cause),
	   "JSON arg with a blank parses");
	is_str(req.args[0], "a b", "JSON arg keeps its blank");
	ctl_request_clear(&req);

	ok(!parse("{\"command\": \"status\"", &req, &cause), "bad JSON fails");
	contains(cause, "bad JSON request", "bad JSON: says so");
	ok(req.command == NULL, "bad JSON: nothing returned");

	ok(!parse("[\"status\"]", &req, &cause), "JSON array fails");
	contains(cause, "must be an object, not an array",
		 "JSON array: names the type");

	ok(!parse("{\"args\":[]}", &req, &cause), "missing command fails");
	contains(cause, "no \"command\"", "missing command: says so");

	ok(!parse("{\"command\":42}", &req, &cause), "number command fails");
	contains(cause, "\"command\" must be a string, not a number",
		 "number command: says so");

	ok(!parse("{\"command\":\"\"}", &req, &cause), "empty command fails");
	contains(cause, "\"command\" is empty", "empty command: says so");

	ok(!parse("{\"command\":\"cancel\",\"args\":[42]}", &req, &cause),
	   "non-string arg fails");
	contains(cause, "args[0] must be a string, not a number",
		 "non-string arg: names the index");

	ok(!parse("{\"command\":\"cancel\",\"args\":\"42\"}", &req, &cause),
	   "string args fails");
	contains(cause, "\"args\" must be an array", "string args: says so");

	strcpy(line, "{\"command\":\"x\",\"args\":[");
	for (int i = 0; i <= CTL_MAX_ARGS; i++)
		strcat(line, i == 0 ? "\"a\"" : ",\"a\"");
	strcat(line, "]}");
	ok(!parse(line, &req, &cause), "too many JSON args fail");
	contains(cause, "too many args (17, at most 16)",
		 "too many JSON args: counts them");

	strcpy(line, "x");
	for (int i = 0; i <= CTL_MAX_ARGS; i++)
		strcat(line, " a");
	ok(!parse(line, &req, &cause), "too many words fail");
	contains(cause, "too many args (17", "too many words: counts them");

	strcpy(line, "x");
	for (int i = 0; i < CTL_MAX_ARGS; i++)
		strcat(line, " a");
	ok(parse(line, &req, &cause), "CTL_MAX_ARGS words parse");
	is_int(req.argc, CTL_MAX_ARGS, "CTL_MAX_ARGS words: all there");
	ctl_request_clear(&req);

	ok(!parse("", &req, &cause), "empty line fails");
	contains(cause, "empty request", "empty line: says so");
	ok(!parse(" \t \r", &req, &cause), "blank line fails");
	contains(cause, "empty request", "blank line: says so");

	ok(!parse("jobs \x01", &req, &cause), "control character fails");
	contains(cause, "control character 0x01", "control character: named");
	ok(!parse("jobs \xff\xfe", &req, &cause), "bad UTF-8 fails");
	contains(cause, "not valid UTF-8", "bad UTF-8: says so");
	ok(!ctl_parse_request("jobs\0x", 6, &req, &cause), "NUL byte fails");
	free(cause);
}

/* Table renderer: widths, alignment, truncation, JSON cells. */
static void test_table(void)
{
	static const char *const headers[] = { "ID", "NAME", "NOTE" };
	const char *row1[] = { "7", "vacuum", NULL };
	const char *row2[] = { "1234", "x", "line\nbreak" };
	char long_cell[100];
	const char *row3[] = { "5", "y", long_cell };
	struct table *table;
	json_error_t error;
	json_t *json;
	char *text, *cell;

	table = table_new(3, headers);
	table_add_row(table, row1);
	table_add_row(table, row2);
	is_int(table_rows(table), 2, "two rows");
	text = table_render(table);
	is_str(text,
	       "  ID  NAME    NOTE\n   7  vacuum  -\n"
	       "1234  x       line break\n",
	       "columns sized, numbers right-aligned, no trailing blanks");
	free(text);
	memset(long_cell, 'z', 70);
	long_cell[70] = '\0';
	table_add_row(table, row3);
	text = table_render(table);
	contains(text, "zzz…\n", "long cell ends with an ellipsis");
	ok(strstr(text, "zzzz…") != NULL &&
		   strlen(strstr(text, "z")) == 59 + strlen("…\n"),
	   "long cell cut to 60 characters");
	free(text);
	table_free(table);

	json = json_loads("[{\"name\":\"nightly\",\"next\":null,\"n\":3,"
			  "\"tenants\":[\"a\",\"b\"]},{\"name\":\"weekly\","
			  "\"n\":2.5,\"extra\":true}]",
			  0, &error);
	table = table_from_json(json);
	ok(table != NULL, "table from a JSON array of objects");
	text = table != NULL ? table_render(table) : NULL;
	is_str(text,
	       "NAME     NEXT    N  TENANTS\n"
	       "nightly  -       3  [\"a\",\"b\"]\nweekly   -     2.5  -\n",
	       "JSON table: columns from the first object");
	free(text);
	table_free(table);
	json_decref(json);

	json = json_loads("[1, 2]", 0, &error);
	ok(table_from_json(json) == NULL, "no table from an array of numbers");
	json_decref(json);
	json = json_loads("[]", 0, &error);
	ok(table_from_json(json) == NULL, "no table from an empty array");
	json_decref(json);

	json = json_loads("{\"a\":1}", 0, &error);
	cell = table_cell(json);
	is_str(cell, "{\"a\":1}", "object cell is compact JSON");
	free(cell);
	json_decref(json);
	cell = table_cell(NULL);
	is_str(cell, "-", "missing cell is a dash");
	free(cell);
}

/* Check one escaped text and free it. */
static void is_escaped(char *got, const char *want, const char *name)
{
	is_str(got, want, name);
	free(got);
}

/* True if text holds a byte a terminal acts on: C0 but newline, DEL, or
 * the UTF-8 of a C1 control. */
static bool has_raw_control(const char *text)
{
	for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
		if ((*s < 0x20 && *s != '\n') || *s == 0x7f ||
		    (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f))
			return true;
	}
	return false;
}

/* finding 13: control characters never reach the terminal raw. */
static void test_escape(void)
{
	const char *hostile = "a\x1b]0;pwned\x07"
			      "b\x1b[2Jc";
	const char *row[] = { "1", hostile };
	static const char *const headers[] = { "ID", "NOTE\x1b[1m" };
	json_error_t error;
	json_t *json, *back;
	struct table *table;
	char *text, *fixed;

	is_escaped(table_escape(hostile, true), "a\\x1b]0;pwned\\x07b\\x1b[2Jc",
		   "finding 13: ESC ]0;title BEL and ESC [2J escaped");
	is_escaped(table_escape("x\xc2\x9b"
				"2Jy\xc2\x9d"
				"z",
				true),
		   "x\\u009b2Jy\\u009dz",
		   "finding 13: C1 CSI and OSC (UTF-8) escaped");
	is_escaped(table_escape("del\x7f cr\r bs\b", true),
		   "del\\x7f cr\\x0d bs\\x08",
		   "finding 13: DEL, CR and backspace escaped");
	is_escaped(table_escape("raw\x9b\xff\xc0\xaf", true),
		   "raw\\x9b\\xff\\xc0\\xaf",
		   "finding 13: bytes that are not UTF-8 escaped (8-bit CSI)");
	is_escaped(table_escape("l1\nl2\tx", true), "l1\nl2\tx",
		   "finding 13: newline and tab kept for the layout");
	is_escaped(table_escape("l1\nl2\tx", false), "l1\\x0al2\\x09x",
		   "finding 13: ... escaped without it");
	is_escaped(table_escape("caf\xc3\xa9 \xe2\x80\xae \xf0\x9f\x98\x80",
				true),
		   "caf\xc3\xa9 \\u202e \xf0\x9f\x98\x80",
		   "finding 13: UTF-8 kept, a bidi override escaped");
	is_escaped(table_escape("", true), "", "empty text");

	table = table_new(2, headers);
	table_add_row(table, row);
	text = table_render(table);
	ok(!has_raw_control(text), "finding 13: no raw control in a table");
	contains(text, "a\\x1b]0;pwned\\x07b", "finding 13: cell escaped");
	contains(text, "NOTE\\x1b[1m", "finding 13: header escaped");
	free(text);
	table_free(table);

	text = xstrdup("{\"k\\u001b\":\"x\xc2\x9by\x7f\\\\\xc2\x85\","
		       "\"e\":\"\\u001b[2J\"}");
	fixed = table_json_escape(text);
	is_str(fixed,
	       "{\"k\\u001b\":\"x\\u009by\\u007f\\\\\\u0085\","
	       "\"e\":\"\\u001b[2J\"}",
	       "finding 13: --json: C1 and DEL as \\u escapes");
	ok(!has_raw_control(fixed), "finding 13: --json: no raw control");
	json = json_loads(text, 0, &error);
	back = json_loads(fixed, 0, &error);
	ok(json != NULL && back != NULL && json_equal(json, back),
	   "finding 13: --json: the same JSON value");
	json_decref(json);
	json_decref(back);
	free(text);
	free(fixed);
}

/* Check one humanized cell and free it. */
static void is_human(char *got, const char *want, const char *name)
{
	is_str(got, want, name);
	free(got);
}

/* Sizes, durations, and JSON tables that use them. */
static void test_table_human(void)
{
	json_error_t error;
	json_t *json, *n;
	struct table *table;
	char *text;

	is_human(table_size(0), "0 B", "size 0");
	is_human(table_size(1023), "1023 B", "size under 1 KiB");
	is_human(table_size(1024), "1.0 KiB", "size 1 KiB");
	is_human(table_size(1258291), "1.2 MiB", "size 1.2 MiB");
	is_human(table_size(5.0 * 1024 * 1024 * 1024), "5.0 GiB", "size GiB");
	is_human(table_size(-1), "-", "negative size");
	is_human(table_duration(0), "0s", "duration 0");
	is_human(table_duration(0.4), "0.4s", "duration under 10 s");
	is_human(table_duration(0.012), "12ms", "duration under 0.1 s");
	is_human(table_duration(45), "45s", "duration seconds");
	is_human(table_duration(192), "3m12s", "duration minutes");
	is_human(table_duration(7500), "2h05m", "duration hours");
	is_human(table_duration(273600), "3d04h", "duration days");
	is_human(table_duration(-1), "-", "negative duration");
	is_human(table_duration(NAN), "-", "NaN duration");

	n = json_integer(81920);
	is_human(table_cell_for("size_bytes", n), "80.0 KiB", "*_bytes");
	is_human(table_cell_for("eta_s", n), "22h45m", "*_s");
	is_human(table_cell_for("rows_per_s", n), "81920", "*_per_s is a rate");
	is_human(table_cell_for("dump_ms", n), "1m22s", "*_ms");
	is_human(table_cell_for("bytes", n), "81920", "bare bytes kept");
	is_human(table_cell_for("total_rows", n), "81920", "other key kept");
	is_human(table_cell_for(NULL, n), "81920", "no key kept");
	json_decref(n);
	n = json_string("big");
	is_human(table_cell_for("size_bytes", n), "big", "a string stays");
	json_decref(n);

	json = json_loads("[{\"tenant\":\"acme\",\"size_bytes\":1258291,"
			  "\"age_s\":192},{\"tenant\":\"globex\","
			  "\"size_bytes\":512,\"age_s\":0.012}]",
			  0, &error);
	table = table_from_json(json);
	text = table != NULL ? table_render(table) : NULL;
	is_str(text,
	       "TENANT     SIZE    AGE\n"
	       "acme    1.2 MiB  3m12s\n"
	       "globex    512 B   12ms\n",
	       "JSON table: sizes and durations, suffix dropped, right-aligned");
	free(text);
	table_free(table);
	json_decref(json);
}

/* ---------------------------------------------------------------- server */

struct server_state {
	struct event_base *base;
	struct ctl_server *server;
	const char *path;
	unsigned long requests;
	unsigned clients;
	atomic_bool done;
};

struct delayed {
	struct ctl_client *client;
	struct event *ev;
};

static struct server_state state;

/* Timer callback: answer a "slow" request. */
static void slow_reply(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *d = arg;

	ctl_reply(d->client, json_pack("{s:s}", "reply", "slow"));
	event_free(d->ev);
	free(d);
}

/* Answer "slow" in 50 ms. */
static void reply_later(struct ctl_client *client)
{
	struct delayed *d = xcalloc(1, sizeof(*d));
	const struct timeval delay = { 0, 50000 };

	d->client = client;
	d->ev = evtimer_new(state.base, slow_reply, d);
	evtimer_add(d->ev, &delay);
}

/* The test's command handler. */
static void handler(struct ctl_client *client,
		    const struct ctl_request *request, void *arg)
{
	json_t *args;
	char *big;

	if (strcmp(request->command, "ping") == 0) {
		args = json_array();
		for (unsigned i = 0; i < request->argc; i++)
			json_array_append_new(args,
					      json_string(request->args[i]));
		ctl_reply(client,
			  json_pack("{s:s,s:i,s:o}", "reply", "ping", "argc",
				    (int)request->argc, "args", args));
	} else if (strcmp(request->command, "slow") == 0) {
		reply_later(client);
	} else if (strcmp(request->command, "big") == 0) {
		big = xmalloc(BIG_REPLY + 1);
		memset(big, 'b', BIG_REPLY);
		big[BIG_REPLY] = '\0';
		ctl_reply(client, json_pack("{s:s}", "big", big));
		free(big);
	} else if (strcmp(request->command, "count") == 0) {
		ctl_reply(client,
			  json_pack("{s:i}", "clients",
				    (int)ctl_client_count(state.server)));
	} else if (strcmp(request->command, "close") == 0) {
		state.requests = ctl_request_total(state.server);
		state.clients = ctl_client_count(state.server);
		ctl_close(state.server);
		state.server = NULL;
		reply_later(client);
	} else {
		ctl_reply_error(client, "unknown command \"%s\"",
				request->command);
	}
}

/* A client connection with a read buffer. */
struct conn {
	int fd;
	size_t len;
	char buf[64 * 1024];
};

/* Connect to the test server; fd -1 on failure. */
static struct conn *conn_open(void)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	strcpy(sun.sun_path, state.path);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		printf("# connect: %s\n", strerror(errno));
		close(c->fd);
		c->fd = -1;
	}
	return c;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Send all of text. */
static bool conn_send(struct conn *c, const char *text, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = send(c->fd, text + done, len - done, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* Read more into the buffer within 5 s: bytes read, 0 at the end, -1 on an
 * error (ECONNRESET counts as the end). */
static ssize_t conn_fill(struct conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

/* Next response line (static storage), or NULL at the end. */
static const char *conn_line(struct conn *c)
{
	static char line[64 * 1024];
	char *nl;
	size_t n;

	while ((nl = memchr(c->buf, '\n', c->len)) == NULL) {
		if (conn_fill(c) <= 0)
			return NULL;
	}
	n = (size_t)(nl - c->buf);
	memcpy(line, c->buf, n);
	line[n] = '\0';
	c->len -= n + 1;
	memmove(c->buf, nl + 1, c->len);
	return line;
}

/* True if the server closed the connection (after any pending lines). */
static bool conn_closed(struct conn *c)
{
	ssize_t n;

	c->len = 0;
	while ((n = conn_fill(c)) > 0)
		c->len = 0;
	return n == 0;
}

/* Read until the server closes the connection; the number of complete
 * lines seen, -1 if it stays open. */
static int conn_count_lines(struct conn *c)
{
	int lines = 0;
	ssize_t n;

	for (;;) {
		c->len = 0;
		n = conn_fill(c);
		if (n <= 0)
			return n == 0 ? lines : -1;
		for (ssize_t i = 0; i < n; i++)
			lines += c->buf[i] == '\n';
	}
}

/* Send one line and return the response line. */
static const char *conn_ask(struct conn *c, const char *line)
{
	if (!conn_send(c, line, strlen(line)))
		return NULL;
	return conn_line(c);
}

/* Wait until the server has let go of every other client. */
static bool wait_idle(void)
{
	struct conn *c;
	const char *line;
	bool idle;

	for (int i = 0; i < 500; i++) {
		c = conn_open();
		line = conn_ask(c, "count\n");
		idle = line != NULL && strstr(line, "\"clients\":1}") != NULL;
		conn_close(c);
		if (idle)
			return true;
		usleep(10000);
	}
	return false;
}

/* The client side of the socket test, run in its own thread. */
static void *client_main(void *arg)
{
	struct conn *c1, *c2, *c3, *many[CTL_MAX_CLIENTS + 1];
	char *junk;
	const char *line;
	struct stat st;
	int lines;

	c1 = conn_open();
	ok(c1->fd >= 0, "client connects");
	ok(conn_send(c1, "slow\nping a b\n", 14), "two pipelined requests");
	line = conn_line(c1);
	is_str(line, "{\"ok\":true,\"reply\":\"slow\"}",
	       "first (slow) answer comes first");
	line = conn_line(c1);
	is_str(line,
	       "{\"ok\":true,\"reply\":\"ping\",\"argc\":2,"
	       "\"args\":[\"a\",\"b\"]}",
	       "second answer comes second");
	line = conn_ask(c1, "{\"command\":\"ping\",\"args\":[\"x y\"]}\n");
	contains(line, "\"args\":[\"x y\"]", "JSON request over the socket");
	line = conn_ask(c1, "ping\r\n");
	contains(line, "\"argc\":0", "CRLF line is tolerated");
	line = conn_ask(c1, "{\"command\":\n");
	contains(line, "{\"ok\":false,\"error\":\"bad JSON request",
		 "bad JSON gets an error");
	line = conn_ask(c1, "\n");
	is_str(line, "{\"ok\":false,\"error\":\"empty request\"}",
	       "empty line gets an error");
	line = conn_ask(c1, "nosuch\n");
	contains(line, "unknown command", "handler error reply");
	line = conn_ask(c1, "ping\n");
	contains(line, "\"ok\":true", "connection still serves after errors");

	c2 = conn_open();
	c3 = conn_open();
	junk = xmalloc(CTL_MAX_LINE + 5000);
	memset(junk, 'x', CTL_MAX_LINE + 5000);
	ok(conn_send(c2, junk, CTL_MAX_LINE + 5000), "over-long line sent");
	free(junk);
	line = conn_ask(c3, "ping\n");
	contains(line, "\"ok\":true", "other client served meanwhile");
	line = conn_line(c2);
	contains(line, "{\"ok\":false,\"error\":\"request line longer than",
		 "over-long line gets an error");
	ok(conn_closed(c2), "over-long line closes the connection");
	conn_close(c2);

	c2 = conn_open();
	ok(conn_send(c2, "slow\n", 5), "slow request sent");
	conn_close(c2);
	usleep(150000);
	line = conn_ask(c3, "ping\n");
	contains(line, "\"ok\":true",
		 "server survives a client that left before its answer");

	c2 = conn_open();
	conn_send(c2, "big\nbig\nbig\nbig\nbig\nbig\nbig\nbig\n", 32);
	usleep(300000);
	lines = conn_count_lines(c2);
	ok(lines >= 0 && lines < 8, "client that does not read is closed");
	conn_close(c2);

	conn_close(c1);
	conn_close(c3);
	ok(wait_idle(), "closed clients are let go");
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		many[i] = conn_open();
		line = conn_ask(many[i], "ping\n");
		if (line == NULL || strstr(line, "\"ok\":true") == NULL) {
			printf("# client %d: %s\n", i, line ? line : "(none)");
			break;
		}
	}
	ok(line != NULL && strstr(line, "\"ok\":true") != NULL,
	   "CTL_MAX_CLIENTS clients served");
	/* finding 12: this process is the server's own uid, an admin */
	many[CTL_MAX_CLIENTS] = conn_open();
	line = conn_ask(many[CTL_MAX_CLIENTS], "ping\n");
	contains(line, "\"ok\":true",
		 "finding 12: an admin is served when every slot is taken");
	line = conn_line(many[0]);
	contains(line, "closed to make room for an administrator",
		 "finding 12: ... the idlest client made room, and was told");
	ok(conn_closed(many[0]), "finding 12: ... and closed");
	for (int i = 0; i <= CTL_MAX_CLIENTS; i++)
		conn_close(many[i]);
	ok(wait_idle(), "many clients let go");

	c1 = conn_open();
	ok(conn_send(c1, "close\n", 6), "close request sent");
	ok(conn_line(c1) == NULL,
	   "ctl_close closes a client with a pending answer");
	conn_close(c1);
	ok(stat(state.path, &st) != 0 && errno == ENOENT,
	   "ctl_close removes the socket file");
	atomic_store(&state.done, true);
	return NULL;
}

/* Timer callback: stop the loop when the client thread is done. */
static void check_done(evutil_socket_t fd, short what, void *arg)
{
	if (atomic_load(&state.done))
		event_base_loopbreak(state.base);
}

/* Binding: stale sockets, files that are not sockets, missing dirs, modes. */
static void test_bind(const char *dir)
{
	struct event_base *base = event_base_new();
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_server *server;
	struct stat st;
	char *path, *cause = NULL;
	int fd;

	path = xasprintf("%s/stale.sock", dir);
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ok(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
	   "stale socket file made");
	close(fd);
	umask(077);
	server = ctl_listen(base, path, 0660, handler, NULL, &cause);
	ok(server != NULL, "stale socket file replaced");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660,
	   "mode 0660 applied despite umask 077");
	umask(022);
	ctl_close(server);
	ok(stat(path, &st) != 0, "ctl_close removes the socket");
	free(path);

	path = xasprintf("%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	server = ctl_listen(base, path, 0600, handler, NULL, &cause);
	ok(server == NULL, "regular file refused");
	contains(cause, "exists and is not a socket", "regular file: says so");
	ok(stat(path, &st) == 0 && S_ISREG(st.st_mode), "regular file kept");
	unlink(path);
	free(path);

	path = xasprintf("%s/nodir/ctl.sock", dir);
	server = ctl_listen(base, path, 0600, handler, NULL, &cause);
	ok(server == NULL, "missing directory refused");
	contains(cause, "/nodir does not exist", "missing directory: named");
	free(path);

	path = xasprintf("%s/%0120d.sock", dir, 0);
	server = ctl_listen(base, path, 0600, handler, NULL, &cause);
	ok(server == NULL, "over-long path refused");
	contains(cause, "is too long", "over-long path: says so");
	free(path);
	free(cause);
	event_base_free(base);
}

/* A real server on an event loop, driven by a client thread. */
static void test_server(const char *dir)
{
	struct event *tick, *watchdog;
	const struct timeval tick_tv = { 0, 10000 }, limit = { 60, 0 };
	struct ctl_server *second;
	pthread_t thread;
	struct stat st;
	char *path, *cause = NULL;

	path = xasprintf("%s/ctl.sock", dir);
	state.path = path;
	state.base = event_base_new();
	umask(022);
	state.server =
		ctl_listen(state.base, path, 0600, handler, NULL, &cause);
	ok(state.server != NULL, "ctl_listen binds");
	if (state.server == NULL) {
		printf("# %s\n", cause);
		return;
	}
	ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		   (st.st_mode & 0777) == 0600,
	   "socket file has mode 0600");
	second = ctl_listen(state.base, path, 0600, handler, NULL, &cause);
	ok(second == NULL, "second ctl_listen on a live socket refused");
	contains(cause, "is in use by a running daemon",
		 "second ctl_listen: says so");
	free(cause);
	ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode),
	   "live socket file kept");

	tick = event_new(state.base, -1, EV_PERSIST, check_done, NULL);
	event_add(tick, &tick_tv);
	watchdog = evtimer_new(state.base, check_done, NULL);
	event_add(watchdog, &limit);
	pthread_create(&thread, NULL, client_main, NULL);
	event_base_dispatch(state.base);
	pthread_join(thread, NULL);
	ok(atomic_load(&state.done), "client thread finished in time");
	ok(state.server == NULL, "server closed by the close command");
	ok(state.requests >= 12, "requests counted");
	ok(state.clients >= 1 && state.clients <= 4, "clients counted");
	if (state.server != NULL)
		ctl_close(state.server);
	event_free(tick);
	event_free(watchdog);
	event_base_dispatch(state.base);
	event_base_free(state.base);
	free(path);
}

/* A server's counters. */
static void test_counters(const char *dir)
{
	struct event_base *base = event_base_new();
	struct ctl_server *server;
	char *path = xasprintf("%s/count.sock", dir), *cause = NULL;

	server = ctl_listen(base, path, 0600, handler, NULL, &cause);
	ok(server != NULL, "counting server binds");
	if (server != NULL) {
		is_int(ctl_client_count(server), 0, "no clients yet");
		is_int(ctl_request_total(server), 0, "no requests yet");
		ctl_close(server);
	}
	free(cause);
	free(path);
	event_base_free(base);
}

/* finding 12: who may connect, by uid and groups. */
static void test_peer_class(void)
{
	const uid_t uids[] = { 1001 };
	const gid_t gids[] = { 2002 };
	const struct ctl_options none = { 0 };
	const struct ctl_options some = { .allow_uids = uids,
					  .allow_uid_count = 1,
					  .allow_gids = gids,
					  .allow_gid_count = 1 };
	const gid_t plain[] = { 100 }, member[] = { 100, 2002 };

	is_int(ctl_peer_class(&none, 500, 0, plain, 1), CTL_PEER_ADMIN,
	       "finding 12: root is an admin");
	is_int(ctl_peer_class(&none, 500, 500, plain, 1), CTL_PEER_ADMIN,
	       "finding 12: the daemon's uid is an admin");
	is_int(ctl_peer_class(&none, 500, 1001, member, 2), CTL_PEER_REFUSED,
	       "finding 12: another uid is refused by default");
	is_int(ctl_peer_class(&some, 500, 1001, plain, 1), CTL_PEER_ALLOWED,
	       "finding 12: a listed uid is allowed");
	is_int(ctl_peer_class(&some, 500, 1002, member, 2), CTL_PEER_ALLOWED,
	       "finding 12: a member of a listed group is allowed");
	is_int(ctl_peer_class(&some, 500, 1002, plain, 1), CTL_PEER_REFUSED,
	       "finding 12: anybody else is refused");
	is_int(ctl_peer_class(&some, 500, 1002, NULL, 0), CTL_PEER_REFUSED,
	       "finding 12: no groups, not listed: refused");
}

/* finding 12: a socket mode with "other" bits is refused. */
static void test_listen_mode(const char *dir)
{
	struct event_base *base = event_base_new();
	struct ctl_server *server;
	char *path = xasprintf("%s/mode.sock", dir), *cause = NULL;
	struct stat st;

	server = ctl_listen(base, path, 0666, handler, NULL, &cause);
	ok(server == NULL, "finding 12: mode 0666 refused");
	contains(cause, "lets every user of the host connect",
		 "finding 12: mode 0666: says why");
	server = ctl_listen(base, path, 0604, handler, NULL, &cause);
	ok(server == NULL, "finding 12: mode 0604 refused");
	ok(stat(path, &st) != 0, "finding 12: no socket file left behind");
	free(cause);
	free(path);
	event_base_free(base);
}

/* The limits test: a small server with a short idle timeout. */
#define LIMIT_CLIENTS 3
#define LIMIT_IDLE_MS 400

struct limits_state {
	struct event_base *base;
	const char *path;      /* admins only, LIMIT_CLIENTS */
	const char *open_path; /* uid 65534 allowed, one client */
	bool as_root;	       /* may fork a child of another uid */
	atomic_bool done;
};

static struct limits_state lim;

/* Connect to path; -1 on failure. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sun.sun_path, path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* In a child of uid 65534 (group 0, so that a 0660 socket lets it in):
 * connect to path, send "ping", and report the first line on the pipe.
 * No malloc: the parent has other threads. */
static void child_ask(const char *path, int report)
{
	char buf[512];
	ssize_t n = 0, got;
	int fd;

	if (setgroups(0, NULL) != 0 || setgid(0) != 0 || setuid(65534) != 0)
		_exit(3);
	fd = raw_connect(path);
	if (fd < 0) {
		if (write(report, "(connect failed)", 16) < 0)
			_exit(4);
		_exit(0);
	}
	if (send(fd, "ping\n", 5, MSG_NOSIGNAL) < 0) {
		/* the server may have closed already: read its line */
	}
	while ((size_t)n < sizeof(buf) - 1 &&
	       (got = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0) {
		n += got;
		if (memchr(buf, '\n', (size_t)n) != NULL)
			break;
	}
	if (n > 0 && write(report, buf, (size_t)n) < 0)
		_exit(4);
	_exit(0);
}

/* Run child_ask in a child and return its line (static storage). */
static const char *other_uid_asks(const char *path)
{
	static char line[512];
	int fds[2], status;
	ssize_t n, len = 0;
	pid_t pid;

	if (pipe(fds) != 0)
		return NULL;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child_ask(path, fds[1]);
	}
	close(fds[1]);
	while ((n = read(fds[0], line + len, sizeof(line) - 1 - (size_t)len)) >
	       0)
		len += n;
	close(fds[0]);
	line[len] = '\0';
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return NULL;
	return line;
}

/* The client side of the limits test. */
static void *limits_main(void *arg)
{
	struct conn *trickler, *talker, *many[LIMIT_CLIENTS + 1];
	const char *line;
	int64_t t0, gone_ms = -1;
	bool talked = true;
	int fd;

	state.path = lim.path;
	trickler = conn_open();
	talker = conn_open();
	t0 = mono_ms();
	/* a byte every 100 ms for 1.5 s: more often than the idle timeout,
	 * but never a whole line */
	for (int i = 0; i < 15; i++) {
		struct pollfd pfd = { .fd = trickler->fd, .events = POLLIN };

		if (send(trickler->fd, "p", 1, MSG_NOSIGNAL) < 0 && i < 3)
			printf("# trickle %d: %s\n", i, strerror(errno));
		line = conn_ask(talker, "ping\n");
		talked = talked && line != NULL && strstr(line, "\"ok\":true");
		if (gone_ms < 0 && poll(&pfd, 1, 0) == 1)
			gone_ms = mono_ms() - t0;
		usleep(100000);
	}
	printf("# the trickler was closed after %lld ms\n", (long long)gone_ms);
	ok(gone_ms >= LIMIT_IDLE_MS - 50 && gone_ms < 1200,
	   "finding 12: a client trickling a byte every 100 ms without a "
	   "newline is closed after the idle timeout (400 ms)");
	line = conn_line(trickler);
	contains(line, "closing an idle connection",
		 "finding 12: ... with an error line that says why");
	ok(conn_closed(trickler), "finding 12: ... and disconnected");
	ok(talked, "finding 12: a client sending whole lines as often stays");
	conn_close(trickler);
	conn_close(talker);
	ok(wait_idle(), "limits: clients let go");

	for (int i = 0; i < LIMIT_CLIENTS; i++) {
		many[i] = conn_open();
		line = conn_ask(many[i], "ping\n");
		usleep(20000);
	}
	/* many[1] is the idlest: many[0] speaks again */
	line = conn_ask(many[0], "ping\n");
	ok(line != NULL && strstr(line, "\"ok\":true"),
	   "limits: every slot taken");
	many[LIMIT_CLIENTS] = conn_open();
	line = conn_ask(many[LIMIT_CLIENTS], "ping\n");
	contains(line, "\"ok\":true",
		 "finding 12: with every slot taken, an admin is served");
	line = conn_line(many[1]);
	contains(line, "make room for an administrator",
		 "finding 12: ... the client idle longest made room");
	line = conn_ask(many[0], "ping\n");
	contains(line, "\"ok\":true", "finding 12: ... the others stay");

	if (lim.as_root) {
		line = other_uid_asks(lim.path);
		contains(line, "uid 65534 may not use this control socket",
			 "finding 12: a peer of another uid is refused");
		/* the open server has one slot, taken by an admin */
		fd = raw_connect(lim.open_path);
		usleep(50000);
		line = other_uid_asks(lim.open_path);
		contains(line, "too many control clients (at most 1)",
			 "finding 12: an allowed non-admin takes no slot "
			 "from others");
		close(fd);
		usleep(50000);
		line = other_uid_asks(lim.open_path);
		contains(line, "\"ok\":true",
			 "finding 12: an allowed uid is served");
	} else {
		printf("ok %d - # SKIP peers of another uid need root\n",
		       ++unit_count);
	}
	for (int i = 0; i <= LIMIT_CLIENTS; i++)
		conn_close(many[i]);
	atomic_store(&lim.done, true);
	return NULL;
}

/* Timer callback: stop the limits loop when its client is done. */
static void limits_done(evutil_socket_t fd, short what, void *arg)
{
	if (atomic_load(&lim.done))
		event_base_loopbreak(lim.base);
}

/* finding 12: idle timeout from the last whole line, a slot for an admin
 * when all are taken, peer credentials. */
static void test_limits(const char *dir)
{
	const uid_t nobody[] = { 65534 };
	struct ctl_options options = { .mode = 0600,
				       .max_clients = LIMIT_CLIENTS,
				       .idle_timeout_ms = LIMIT_IDLE_MS };
	struct ctl_options open_options = { .mode = 0660,
					    .max_clients = 1,
					    .allow_uids = nobody,
					    .allow_uid_count = 1 };
	const struct timeval tick_tv = { 0, 10000 }, limit = { 60, 0 };
	struct ctl_server *server, *open_server;
	struct event *tick, *watchdog;
	char *path, *open_path, *cause = NULL;
	pthread_t thread;

	path = xasprintf("%s/limits.sock", dir);
	open_path = xasprintf("%s/open.sock", dir);
	lim.base = event_base_new();
	lim.path = path;
	lim.open_path = open_path;
	lim.as_root = geteuid() == 0;
	/* the child of uid 65534 must reach the sockets */
	if (lim.as_root && chmod(dir, 0711) != 0)
		lim.as_root = false;
	options.path = path;
	open_options.path = open_path;
	options.mode = 0660; /* group 0 lets the child past the file mode */
	server = ctl_listen_with(lim.base, &options, handler, NULL, &cause);
	open_server =
		ctl_listen_with(lim.base, &open_options, handler, NULL, &cause);
	ok(server != NULL && open_server != NULL, "limits: servers bind");
	if (server == NULL || open_server == NULL) {
		printf("# %s\n", cause);
		free(cause);
		return;
	}
	state.server = server;
	tick = event_new(lim.base, -1, EV_PERSIST, limits_done, NULL);
	event_add(tick, &tick_tv);
	watchdog = evtimer_new(lim.base, limits_done, NULL);
	event_add(watchdog, &limit);
	pthread_create(&thread, NULL, limits_main, NULL);
	event_base_dispatch(lim.base);
	pthread_join(thread, NULL);
	ok(atomic_load(&lim.done), "limits: client thread finished in time");
	ctl_close(server);
	ctl_close(open_server);
	state.server = NULL;
	event_free(tick);
	event_free(watchdog);
	event_base_dispatch(lim.base);
	event_base_free(lim.base);
	free(path);
	free(open_path);
}

int main(void)
{
	char dir[] = "/tmp/test_ctl.XXXXXX";

	signal(SIGPIPE, SIG_IGN);
	log_set_level(getenv("CTL_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	test_parse();
	test_table();
	test_table_human();
	test_escape();
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_peer_class();
	test_bind(dir);
	test_listen_mode(dir);
	test_counters(dir);
	test_limits(dir);
	test_server(dir);
	rmdir(dir);
	return done_testing();
}
