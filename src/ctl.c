/* ctl.c - the control socket: one request per line on a Unix stream socket,
 * one compact JSON response per line, served from the event loop. */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "util.h"

#define CTL_BACKLOG 64
#define CTL_PEER_GROUPS_MAX 1024
#define CTL_REFUSAL_LOG_MS \
	1000 /* at most one refusal or eviction logged
				 * per second */
#define NOT_AN_OBJECT "internal error: the response is not a JSON object"

struct ctl_client {
	struct ctl_server *server; /* NULL once the connection is gone */
	struct bufferevent *bev;   /* NULL once the connection is gone */
	struct event_base *base;
	struct event *resume; /* reads the next line after a reply */
	struct event *idle;   /* closes it idle_ms after its last line */
	TAILQ_ENTRY(ctl_client) entry;
	unsigned id;
	uid_t uid;	 /* the peer's, from SO_PEERCRED */
	bool admin;	 /* root or the daemon's uid */
	int64_t last_ms; /* mono_ms of the connect, last whole line or reply */
	int64_t idle_ms; /* the server's idle timeout */
	bool pending;	 /* the handler owes a reply */
	bool eof;	 /* the peer has sent everything */
	bool closing;	 /* close once the output is written */
	bool processing; /* inside client_process() */
	bool freeing;	 /* the free is scheduled */
};

struct ctl_server {
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *retry; /* accepts again after an error */
	char *path;
	dev_t dev;
	ino_t ino;
	ctl_handler_fn handler;
	void *arg;
	struct ctl_options options; /* path unused; ids from below */
	uid_t *allow_uids;	    /* owned copies of the options' ids */
	gid_t *allow_gids;
	uid_t self; /* the daemon's effective uid */
	TAILQ_HEAD(, ctl_client) clients;
	unsigned nclients;
	unsigned next_id;
	unsigned long requests;
	int64_t refusal_logged_ms; /* mono_ms of the last refused peer logged */
	unsigned refusals_unlogged;
	int64_t eviction_logged_ms; /* the same for clients closed for room */
	unsigned evictions_unlogged;
};

/* Name a JSON value's type for error messages. */
static const char *json_type_name(const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/* Free a client on the next loop turn, once nothing can use it any more. */
static void client_free_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_client *client = arg;

	event_free(client->resume);
	event_free(client->idle);
	free(client);
}

/* Schedule the free of a client that has neither a connection nor a
 * pending request. */
static void client_schedule_free(struct ctl_client *client)
{
	const struct timeval now = { 0, 0 };

	if (client->freeing)
		return;
	client->freeing = true;
	if (event_base_once(client->base, -1, EV_TIMEOUT, client_free_deferred,
			    client, &now) != 0)
		log_error("control client %u: cannot schedule its release",
			  client->id);
}

/* Close the connection of a client; the struct lives on while the handler
 * still owes it a reply. */
static void client_disconnect(struct ctl_client *client)
{
	struct ctl_server *server = client->server;

	if (client->bev == NULL)
		return;
	evtimer_del(client->idle);
	bufferevent_free(client->bev);
	client->bev = NULL;
	if (server != NULL) {
		TAILQ_REMOVE(&server->clients, client, entry);
		server->nclients--;
		client->server = NULL;
	}
	log_debug("control client %u: disconnected", client->id);
	if (!client->pending)
		client_schedule_free(client);
}

/* The text of one response line, newline included; the reference to
 * response is stolen. */
static char *response_text(json_t *response)
{
	json_t *line;
	char *text, *out;

	line = json_object();
	if (json_is_object(response)) {
		if (json_object_get(response, "ok") == NULL)
			json_object_set_new(line, "ok", json_true());
		json_object_update(line, response);
	} else {
		json_object_set_new(line, "ok", json_false());
		json_object_set_new(line, "error", json_string(NOT_AN_OBJECT));
	}
	json_decref(response);
	text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	if (text == NULL)
		text = xstrdup("{\"ok\":false,\"error\":\"internal error: "
			       "cannot encode the response\"}");
	out = xasprintf("%s\n", text);
	free(text);
	return out;
}

/* Write one response line; the reference to response is stolen. */
static void client_send(struct ctl_client *client, json_t *response)
{
	struct evbuffer *output;
	char *text;

	if (client->bev == NULL) {
		json_decref(response);
		return;
	}
	output = bufferevent_get_output(client->bev);
	if (evbuffer_get_length(output) > CTL_MAX_OUTPUT) {
		log_warning(
			"control client %u: more than %d bytes of unread output, closing it",
			client->id, CTL_MAX_OUTPUT);
		json_decref(response);
		client_disconnect(client);
		return;
	}
	text = response_text(response);
	evbuffer_add(output, text, strlen(text));
	free(text);
}

/* Build {"ok": false, "error": "..."} from a format. */
static json_t *error_response(const char *fmt, va_list ap)
{
	json_t *response;
	char *text;

	text = xvasprintf(fmt, ap);
	response = json_object();
	json_object_set_new(response, "ok", json_false());
	json_object_set_new(response, "error", json_string(text));
	if (json_object_get(response, "error") == NULL)
		json_object_set_new(response, "error",
				    json_string("(error text is not UTF-8)"));
	free(text);
	return response;
}

/* Write an error line that answers no handler call (a request that did not
 * parse, a line that is too long). */
static void __attribute__((format(printf, 2, 3)))
client_send_error(struct ctl_client *client, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_send(client, error_response(fmt, ap));
	va_end(ap);
}

/* Stop reading and close the connection once its output is written. */
static void client_close_when_written(struct ctl_client *client)
{
	client->closing = true;
	bufferevent_disable(client->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(client->bev)) == 0)
		client_disconnect(client);
}

/* Answer a request line longer than CTL_MAX_LINE and close the client. */
static void client_refuse_line(struct ctl_client *client)
{
	client_send_error(client, "request line longer than %d bytes",
			  CTL_MAX_LINE);
	client->closing = true;
}

/* Handle complete lines until one needs an answer the handler has not
 * given yet. */
static void client_process(struct ctl_client *client)
{
	struct ctl_request request;
	struct evbuffer *input;
	char *cause = NULL;
	char *line;
	size_t len;

	if (client->processing)
		return;
	client->processing = true;
	while (client->bev != NULL && !client->pending && !client->closing) {
		input = bufferevent_get_input(client->bev);
		line = evbuffer_readln(input, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(input) > CTL_MAX_LINE + 1)
				client_refuse_line(client);
			else if (client->eof)
				client->closing = true;
			break;
		}
		client->last_ms = mono_ms();
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len > CTL_MAX_LINE) {
			client_refuse_line(client);
		} else if (!ctl_parse_request(line, len, &request, &cause)) {
			client_send_error(client, "%s", cause);
			free(cause);
			cause = NULL;
		} else {
			client->server->requests++;
			client->pending = true;
			client->server->handler(client, &request,
						client->server->arg);
			ctl_request_clear(&request);
		}
		free(line);
	}
	client->processing = false;
	if (client->bev != NULL && client->closing)
		client_close_when_written(client);
}

/* Read callback: new request bytes arrived. */
static void client_read(struct bufferevent *bev, void *arg)
{
	client_process(arg);
}

/* Write callback: the output is written; close if that was the last. */
static void client_written(struct bufferevent *bev, void *arg)
{
	struct ctl_client *client = arg;

	if (client->closing)
		client_disconnect(client);
}

/* Close the connection at once (its slot is free on return), telling the
 * peer why if no output is queued and the socket takes the line now. */
static void __attribute__((format(printf, 2, 3)))
client_close_now(struct ctl_client *client, const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (client->bev == NULL)
		return;
	va_start(ap, fmt);
	text = response_text(error_response(fmt, ap));
	va_end(ap);
	if (evbuffer_get_length(bufferevent_get_output(client->bev)) == 0 &&
	    send(bufferevent_getfd(client->bev), text, strlen(text),
		 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("control client %u: cannot send its last line: %s",
			  client->id, strerror(errno));
	free(text);
	client_disconnect(client);
}

/* Wake up in ms to check the idle timeout of client. */
static void client_idle_arm(struct ctl_client *client, int64_t ms)
{
	const struct timeval tv = { (time_t)(ms / 1000),
				    (suseconds_t)(ms % 1000 * 1000) };

	evtimer_add(client->idle, &tv);
}

/* Timer callback: close a client that has sent no whole line (and got no
 * reply) for the idle timeout. Bytes without a newline do not count, so
 * trickling a byte now and then does not keep a slot. */
static void client_idle_check(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_client *client = arg;
	int64_t left;

	if (client->bev == NULL)
		return;
	if (client->pending) {
		client_idle_arm(client, client->idle_ms);
		return;
	}
	left = client->last_ms + client->idle_ms - mono_ms();
	if (left > 0) {
		client_idle_arm(client, left);
		return;
	}
	log_debug("control client %u: no whole request line for %" PRId64
		  " ms, closing it",
		  client->id, client->idle_ms);
	client_close_now(
		client,
		"closing an idle connection: no whole request line for %" PRId64
		" ms",
		client->idle_ms);
}

/* Event callback: end of input, an error or a write timeout. */
static void client_event(struct bufferevent *bev, short events, void *arg)
{
	struct ctl_client *client = arg;

	if (events & BEV_EVENT_EOF) {
		client->eof = true;
		client_process(client);
		return;
	}
	if (events & BEV_EVENT_TIMEOUT) {
		log_debug(
			"control client %u: its output is not read, closing it",
			client->id);
		client_disconnect(client);
		return;
	}
	if (events & BEV_EVENT_ERROR) {
		log_debug("control client %u: %s", client->id,
			  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		client_disconnect(client);
	}
}

/* Resume reading requests after a reply given outside client_process. */
static void client_resume(evutil_socket_t fd, short what, void *arg)
{
	client_process(arg);
}

/* Answer a connection with an error line (text: JSON-safe) and close it. */
static void server_refuse(evutil_socket_t fd, const char *text)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n",
		     text);
	if (n > 0 && (size_t)n < sizeof(line) &&
	    send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("control socket: cannot refuse a client: %s",
			  strerror(errno));
	evutil_closesocket(fd);
}

enum ctl_peer ctl_peer_class(const struct ctl_options *options, uid_t self,
			     uid_t uid, const gid_t *gids, size_t ngids)
{
	if (uid == 0 || uid == self)
		return CTL_PEER_ADMIN;
	for (unsigned i = 0; i < options->allow_uid_count; i++) {
		if (options->allow_uids[i] == uid)
			return CTL_PEER_ALLOWED;
	}
	for (unsigned i = 0; i < options->allow_gid_count; i++) {
		for (size_t j = 0; j < ngids; j++) {
			if (options->allow_gids[i] == gids[j])
				return CTL_PEER_ALLOWED;
		}
	}
	return CTL_PEER_REFUSED;
}

/* The peer's uid, pid and groups (its gid first, then the supplementary
 * groups where the kernel tells them); false if the kernel does not say.
 * *gids is allocated. */
static bool peer_credentials(int fd, uid_t *uid, pid_t *pid, gid_t **gids,
			     size_t *ngids)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	*gids = NULL;
	*ngids = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred))
		return false;
	*uid = cred.uid;
	*pid = cred.pid;
	*gids = xcalloc(1, sizeof(**gids));
	(*gids)[0] = cred.gid;
	*ngids = 1;
#ifdef SO_PEERGROUPS
	{
		gid_t *more = xcalloc(CTL_PEER_GROUPS_MAX, sizeof(*more));
		socklen_t size = CTL_PEER_GROUPS_MAX * sizeof(*more);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, more, &size) ==
			    0 &&
		    size > 0) {
			size_t n = size / sizeof(*more);

			*gids = xrealloc(*gids, (n + 1) * sizeof(**gids));
			memcpy(*gids + 1, more, n * sizeof(*more));
			*ngids = n + 1;
		}
		free(more);
	}
#endif
	return true;
}

/* Log a refused peer, at most once per CTL_REFUSAL_LOG_MS: a local user
 * who may reach the socket must not flood the log. */
static void server_log_refusal(struct ctl_server *server, uid_t uid, pid_t pid)
{
	int64_t now = mono_ms();

	if (now - server->refusal_logged_ms < CTL_REFUSAL_LOG_MS &&
	    server->refusal_logged_ms != 0) {
		server->refusals_unlogged++;
		return;
	}
	log_warning(
		"control socket %s: refused a client with uid %u (pid %ld): not root, not the daemon's user, not in control_allow_users or control_allow_groups (%u more refused since the last such message)",
		server->path, (unsigned)uid, (long)pid,
		server->refusals_unlogged);
	server->refusal_logged_ms = now;
	server->refusals_unlogged = 0;
}

/* The client that had no whole line for the longest time and owes no
 * answer, preferring those that are not admins; NULL if none. */
static struct ctl_client *server_idlest(struct ctl_server *server)
{
	struct ctl_client *client, *best = NULL;

	TAILQ_FOREACH(client, &server->clients, entry) {
		if (client->pending)
			continue;
		if (best == NULL || (best->admin && !client->admin) ||
		    (best->admin == client->admin &&
		     client->last_ms < best->last_ms))
			best = client;
	}
	return best;
}

/* Make room for a new client: true if a slot is free or an admin's
 * connection freed one by closing the idlest client. */
static bool server_make_room(struct ctl_server *server, bool admin, uid_t uid)
{
	struct ctl_client *victim;

	if (server->nclients < server->options.max_clients)
		return true;
	victim = admin ? server_idlest(server) : NULL;
	if (victim == NULL) {
		log_warning(
			"control socket %s: refusing a client (uid %u), %u are connected already",
			server->path, (unsigned)uid, server->nclients);
		return false;
	}
	if (server->eviction_logged_ms != 0 &&
	    mono_ms() - server->eviction_logged_ms < CTL_REFUSAL_LOG_MS) {
		server->evictions_unlogged++;
	} else {
		log_warning(
			"control socket %s: all %u client slots are in use; closing client %u (uid %u, no whole line for %" PRId64
			" ms) to serve an administrator's connection (%u more closed so since the last such message)",
			server->path, server->options.max_clients, victim->id,
			(unsigned)victim->uid, mono_ms() - victim->last_ms,
			server->evictions_unlogged);
		server->eviction_logged_ms = mono_ms();
		server->evictions_unlogged = 0;
	}
	client_close_now(
		victim,
		"too many control clients (at most %u): this idle connection was closed to make room for an administrator",
		server->options.max_clients);
	return server->nclients < server->options.max_clients;
}

/* Accept callback: check the peer and set up a client for it. */
static void server_accept(struct evconnlistener *listener, evutil_socket_t fd,
			  struct sockaddr *sa, int socklen, void *arg)
{
	struct ctl_server *server = arg;
	struct ctl_client *client;
	const struct timeval write_limit = {
		(time_t)(server->options.idle_timeout_ms / 1000),
		(suseconds_t)(server->options.idle_timeout_ms % 1000 * 1000)
	};
	enum ctl_peer peer;
	char text[160];
	gid_t *gids;
	size_t ngids;
	uid_t uid;
	pid_t pid;

	if (!peer_credentials(fd, &uid, &pid, &gids, &ngids)) {
		log_warning(
			"control socket %s: refusing a client whose credentials the kernel does not tell: %s",
			server->path, strerror(errno));
		server_refuse(
			fd, "cannot check the credentials of this connection");
		return;
	}
	peer = ctl_peer_class(&server->options, server->self, uid, gids, ngids);
	free(gids);
	if (peer == CTL_PEER_REFUSED) {
		server_log_refusal(server, uid, pid);
		snprintf(
			text, sizeof(text),
			"uid %u may not use this control socket (see control_allow_users and control_allow_groups in the daemon's configuration)",
			(unsigned)uid);
		server_refuse(fd, text);
		return;
	}
	if (!server_make_room(server, peer == CTL_PEER_ADMIN, uid)) {
		snprintf(text, sizeof(text),
			 "too many control clients (at most %u)",
			 server->options.max_clients);
		server_refuse(fd, text);
		return;
	}
	client = xcalloc(1, sizeof(*client));
	client->bev =
		bufferevent_socket_new(server->base, fd, BEV_OPT_CLOSE_ON_FREE);
	client->resume = event_new(server->base, -1, 0, client_resume, client);
	client->idle = evtimer_new(server->base, client_idle_check, client);
	if (client->bev == NULL || client->resume == NULL ||
	    client->idle == NULL) {
		log_error("control socket %s: cannot set up a client",
			  server->path);
		if (client->bev != NULL)
			bufferevent_free(client->bev);
		else
			evutil_closesocket(fd);
		if (client->resume != NULL)
			event_free(client->resume);
		if (client->idle != NULL)
			event_free(client->idle);
		free(client);
		return;
	}
	client->server = server;
	client->base = server->base;
	client->id = ++server->next_id;
	client->uid = uid;
	client->admin = peer == CTL_PEER_ADMIN;
	client->idle_ms = server->options.idle_timeout_ms;
	client->last_ms = mono_ms();
	bufferevent_setcb(client->bev, client_read, client_written,
			  client_event, client);
	bufferevent_setwatermark(client->bev, EV_READ, 0, CTL_MAX_LINE + 2);
	/* the read side is client_idle_check's: bytes are not a line */
	bufferevent_set_timeouts(client->bev, NULL, &write_limit);
	bufferevent_enable(client->bev, EV_READ);
	client_idle_arm(client, client->idle_ms);
	TAILQ_INSERT_TAIL(&server->clients, client, entry);
	server->nclients++;
	log_debug("control client %u: connected (uid %u, pid %ld%s)",
		  client->id, (unsigned)uid, (long)pid,
		  client->admin ? ", admin" : "");
}

/* Accept error callback: pause accepting for a second (out of descriptors,
 * for example) instead of spinning. */
static void server_accept_error(struct evconnlistener *listener, void *arg)
{
	struct ctl_server *server = arg;
	const struct timeval pause = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	log_warning("control socket %s: accept failed: %s; retrying in 1 s",
		    server->path, evutil_socket_error_to_string(err));
	evconnlistener_disable(listener);
	evtimer_add(server->retry, &pause);
}

/* Timer callback: accept again after an accept error. */
static void server_retry(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_server *server = arg;

	evconnlistener_enable(server->listener);
}

/* Make path free for bind: nothing there, or a stale socket no daemon
 * answers on (removed). Refuse anything else. */
static bool socket_path_clear(const char *path, char **cause)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, rc, err;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return true;
		return set_cause(cause, "cannot check control socket %s: %s",
				 path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return set_cause(
			cause,
			"control socket path %s exists and is not a socket; not replacing it",
			path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return set_cause(cause, "cannot check control socket %s: %s",
				 path, strerror(errno));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	err = errno;
	close(fd);
	if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
		return set_cause(
			cause,
			"control socket %s is in use by a running daemon",
			path);
	if (err == ENOENT)
		return true;
	if (err != ECONNREFUSED)
		return set_cause(cause, "cannot check control socket %s: %s",
				 path, strerror(err));
	if (unlink(path) != 0 && errno != ENOENT)
		return set_cause(cause,
				 "cannot remove stale control socket %s: %s",
				 path, strerror(errno));
	log_info("removed stale control socket %s", path);
	return true;
}

/* Explain a failed bind; a missing directory is named. */
static bool bind_error(const char *path, int err, char **cause)
{
	char *dir, *slash;
	bool result;

	if (err != ENOENT && err != ENOTDIR)
		return set_cause(cause, "cannot create control socket %s: %s",
				 path, strerror(err));
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	result = set_cause(
		cause,
		"cannot create control socket %s: directory %s does not exist",
		path, dir);
	free(dir);
	return result;
}

/* Create, bind (under a restrictive umask), chmod and listen on path;
 * -1 with cause on failure. */
static int socket_open(const char *path, unsigned mode, struct stat *st,
		       char **cause)
{
	struct sockaddr_un sun;
	mode_t old_umask;
	int fd, rc, err;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		set_cause(cause, "cannot create control socket %s: %s", path,
			  strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	old_umask = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	err = errno;
	umask(old_umask);
	if (rc != 0) {
		close(fd);
		bind_error(path, err, cause);
		return -1;
	}
	if (chmod(path, (mode_t)(mode & 07777)) != 0) {
		set_cause(cause,
			  "cannot set mode %04o on control socket %s: %s",
			  mode & 07777, path, strerror(errno));
		goto fail;
	}
	if (listen(fd, CTL_BACKLOG) != 0) {
		set_cause(cause, "cannot listen on control socket %s: %s", path,
			  strerror(errno));
		goto fail;
	}
	if (lstat(path, st) != 0) {
		set_cause(cause, "cannot check control socket %s: %s", path,
			  strerror(errno));
		goto fail;
	}
	return fd;
fail:
	unlink(path);
	close(fd);
	return -1;
}

/* Ignore SIGPIPE if nobody chose otherwise: a client that goes away must
 * make a write fail, not end the process. */
static void ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
	    !(sa.sa_flags & SA_SIGINFO)) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

/* Copy n ids (n may be 0). */
static void *ids_copy(const void *ids, size_t n, size_t size)
{
	void *copy;

	if (n == 0 || ids == NULL)
		return NULL;
	copy = xcalloc(n, size);
	memcpy(copy, ids, n * size);
	return copy;
}

/* Bind the control socket and start accepting clients. */
struct ctl_server *ctl_listen_with(struct event_base *base,
				   const struct ctl_options *options,
				   ctl_handler_fn handler, void *arg,
				   char **cause)
{
	const char *path = options->path;
	unsigned mode = options->mode;
	struct sockaddr_un sun;
	struct ctl_server *server;
	struct stat st;
	int fd;

	if (mode & 0007) {
		set_cause(
			cause,
			"control socket mode %04o lets every user of the host connect; use at most 0660 and name who else may connect in control_allow_users or control_allow_groups",
			mode & 07777);
		return NULL;
	}
	if (path == NULL || *path == '\0') {
		set_cause(cause, "control socket path is empty");
		return NULL;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		set_cause(
			cause,
			"control socket path %s is too long (at most %zu bytes)",
			path, sizeof(sun.sun_path) - 1);
		return NULL;
	}
	if (!socket_path_clear(path, cause))
		return NULL;
	fd = socket_open(path, mode, &st, cause);
	if (fd < 0)
		return NULL;
	server = xcalloc(1, sizeof(*server));
	server->base = base;
	server->path = xstrdup(path);
	server->dev = st.st_dev;
	server->ino = st.st_ino;
	server->handler = handler;
	server->arg = arg;
	server->options = *options;
	server->options.path = NULL;
	if (server->options.max_clients == 0)
		server->options.max_clients = CTL_MAX_CLIENTS;
	if (server->options.idle_timeout_ms <= 0)
		server->options.idle_timeout_ms = CTL_IDLE_TIMEOUT_MS;
	server->allow_uids = ids_copy(options->allow_uids,
				      options->allow_uid_count, sizeof(uid_t));
	server->allow_gids = ids_copy(options->allow_gids,
				      options->allow_gid_count, sizeof(gid_t));
	server->options.allow_uids = server->allow_uids;
	server->options.allow_gids = server->allow_gids;
	if (server->allow_uids == NULL)
		server->options.allow_uid_count = 0;
	if (server->allow_gids == NULL)
		server->options.allow_gid_count = 0;
	server->self = geteuid();
	TAILQ_INIT(&server->clients);
	server->retry = evtimer_new(base, server_retry, server);
	server->listener = evconnlistener_new(
		base, server_accept, server,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (server->listener == NULL || server->retry == NULL) {
		set_cause(cause,
			  "cannot listen on control socket %s: libevent failed",
			  path);
		if (server->listener != NULL)
			evconnlistener_free(server->listener);
		else
			close(fd);
		if (server->retry != NULL)
			event_free(server->retry);
		unlink(path);
		free(server->allow_uids);
		free(server->allow_gids);
		free(server->path);
		free(server);
		return NULL;
	}
	evconnlistener_set_error_cb(server->listener, server_accept_error);
	ignore_sigpipe();
	log_info(
		"control socket listening on %s (mode %04o, at most %u clients, %u more users and %u groups allowed besides root and uid %u)",
		path, mode & 07777, server->options.max_clients,
		server->options.allow_uid_count,
		server->options.allow_gid_count, (unsigned)server->self);
	return server;
}

/* Bind the control socket with the default limits, for admins only. */
struct ctl_server *ctl_listen(struct event_base *base, const char *path,
			      unsigned mode, ctl_handler_fn handler, void *arg,
			      char **cause)
{
	const struct ctl_options options = { .path = path, .mode = mode };

	return ctl_listen_with(base, &options, handler, arg, cause);
}

/* Stop accepting, close every client and remove the socket file if it is
 * still the one this server created. */
void ctl_close(struct ctl_server *server)
{
	struct ctl_client *client;
	struct stat st;

	if (server == NULL)
		return;
	evconnlistener_free(server->listener);
	event_free(server->retry);
	while ((client = TAILQ_FIRST(&server->clients)) != NULL) {
		if (client->pending) {
			client_disconnect(client); /* freed by its reply */
			continue;
		}
		/* The loop may not run again to do a deferred free. */
		client->freeing = true;
		client_disconnect(client);
		event_free(client->resume);
		event_free(client->idle);
		free(client);
	}
	if (lstat(server->path, &st) == 0 && st.st_dev == server->dev &&
	    st.st_ino == server->ino && unlink(server->path) != 0)
		log_warning("cannot remove control socket %s: %s", server->path,
			    strerror(errno));
	free(server->allow_uids);
	free(server->allow_gids);
	free(server->path);
	free(server);
}

/* True for the blanks that separate words. */
static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parse {"command": "...", "args": ["...", ...]}. */
static bool parse_json(const char *line, size_t len, struct ctl_request *out,
		       char **cause)
{
	json_error_t error;
	json_t *root, *command, *args, *arg;
	size_t n, i;

	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
	if (root == NULL) {
		/* jansson quotes the bad token, which may be any bytes: keep
		 * the message printable ASCII so that it fits in the reply. */
		for (char *p = error.text; *p != '\0'; p++) {
			unsigned char c = (unsigned char)*p;

			if (c < 0x20 || c >= 0x7f)
				*p = '?';
		}
		return set_cause(cause, "bad JSON request at column %d: %s",
				 error.column, error.text);
	}
	if (!json_is_object(root)) {
		set_cause(cause, "a JSON request must be an object, not %s",
			  json_type_name(root));
		goto fail;
	}
	command = json_object_get(root, "command");
	if (command == NULL) {
		set_cause(cause, "JSON request has no \"command\"");
		goto fail;
	}
	if (!json_is_string(command)) {
		set_cause(cause, "\"command\" must be a string, not %s",
			  json_type_name(command));
		goto fail;
	}
	if (json_string_length(command) == 0) {
		set_cause(cause, "\"command\" is empty");
		goto fail;
	}
	args = json_object_get(root, "args");
	if (args != NULL && !json_is_null(args) && !json_is_array(args)) {
		set_cause(cause, "\"args\" must be an array of strings, not %s",
			  json_type_name(args));
		goto fail;
	}
	n = json_is_array(args) ? json_array_size(args) : 0;
	if (n > CTL_MAX_ARGS) {
		set_cause(cause, "too many args (%zu, at most %d)", n,
			  CTL_MAX_ARGS);
		goto fail;
	}
	json_array_foreach(args, i, arg) {
		if (!json_is_string(arg)) {
			set_cause(cause, "args[%zu] must be a string, not %s",
				  i, json_type_name(arg));
			goto fail;
		}
	}
	out->command = xstrdup(json_string_value(command));
	out->args = xcalloc(n + 1, sizeof(*out->args));
	json_array_foreach(args, i, arg)
		out->args[i] = xstrdup(json_string_value(arg));
	out->argc = (unsigned)n;
	json_decref(root);
	return true;
fail:
	json_decref(root);
	return false;
}

/* Parse "command arg arg" separated by blanks. */
static bool parse_words(const char *line, size_t len, struct ctl_request *out,
			char **cause)
{
	json_t *check;
	size_t i, start, nwords = 0;
	unsigned argc = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && !is_blank((char)c)) || c == 0x7f)
			return set_cause(
				cause,
				"request contains control character 0x%02x at column %zu",
				c, i + 1);
		if (!is_blank((char)c) && (i == 0 || is_blank(line[i - 1])))
			nwords++;
	}
	check = json_stringn(line, len);
	if (check == NULL)
		return set_cause(cause, "request is not valid UTF-8");
	json_decref(check);
	if (nwords - 1 > CTL_MAX_ARGS)
		return set_cause(cause, "too many args (%zu, at most %d)",
				 nwords - 1, CTL_MAX_ARGS);
	out->args = xcalloc(nwords, sizeof(*out->args));
	for (i = 0; i < len;) {
		while (i < len && is_blank(line[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !is_blank(line[i]))
			i++;
		if (out->command == NULL)
			out->command = xstrndup(line + start, i - start);
		else
			out->args[argc++] = xstrndup(line + start, i - start);
	}
	out->argc = argc;
	return true;
}

/* Parse one request line: plain words or a JSON object. */
bool ctl_parse_request(const char *line, size_t len, struct ctl_request *out,
		       char **cause)
{
	memset(out, 0, sizeof(*out));
	while (len > 0 && is_blank(line[0])) {
		line++;
		len--;
	}
	while (len > 0 && is_blank(line[len - 1]))
		len--;
	if (len == 0)
		return set_cause(cause, "empty request");
	if (line[0] == '{' || line[0] == '[')
		return parse_json(line, len, out, cause);
	return parse_words(line, len, out, cause);
}

/* Free what ctl_parse_request allocated. */
void ctl_request_clear(struct ctl_request *request)
{
	for (unsigned i = 0; i < request->argc; i++)
		free(request->args[i]);
	free(request->args);
	free(request->command);
	memset(request, 0, sizeof(*request));
}

/* Answer the pending request of client and read its next one. */
void ctl_reply(struct ctl_client *client, json_t *response)
{
	if (!client->pending) {
		log_error("control client %u: a reply without a request",
			  client->id);
		json_decref(response);
		return;
	}
	client->pending = false;
	client->last_ms = mono_ms();
	if (client->bev == NULL) {
		json_decref(response);
		client_schedule_free(client);
		return;
	}
	client_send(client, response);
	if (client->bev != NULL && !client->processing)
		event_active(client->resume, EV_TIMEOUT, 1);
}

/* Answer the pending request of client with an error. */
void ctl_reply_error(struct ctl_client *client, const char *fmt, ...)
{
	va_list ap;
	json_t *response;

	va_start(ap, fmt);
	response = error_response(fmt, ap);
	va_end(ap);
	ctl_reply(client, response);
}

/* Connected clients, for status and metrics. */
unsigned ctl_client_count(const struct ctl_server *server)
{
	return server->nclients;
}

/* Requests parsed and handed to the handler since ctl_listen. */
unsigned long ctl_request_total(const struct ctl_server *server)
{
	return server->requests;
}
