/* ctl.h - the control socket: a Unix stream socket, one request per line,
 * one JSON response per line. This module is the transport and the request
 * parser; the daemon supplies the command handler. */
#ifndef PGT_CTL_H
#define PGT_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "util.h"

struct event_base;
struct ctl_server;
struct ctl_client;

#define CTL_MAX_LINE (64 * 1024) /* longer requests get an error */
#define CTL_MAX_CLIENTS 64	 /* default of control_max_clients */
#define CTL_MAX_ARGS 16
#define CTL_IDLE_TIMEOUT_MS 60000 /* default of control_idle_timeout */
#define CTL_MAX_OUTPUT \
	(4 * 1024 * 1024) /* unread output that closes a client */

/* A parsed request: "jobs running" or {"command":"jobs","args":["running"]}. */
struct ctl_request {
	char *command;
	char **args;
	unsigned argc;
};

/* Called for each request. It must call ctl_reply() exactly once for the
 * client, now or later (for example from a database callback). The next
 * request of the same client is not read until then. The client stays
 * valid until that reply even if the peer has gone. */
typedef void (*ctl_handler_fn)(struct ctl_client *client,
			       const struct ctl_request *request, void *arg);

/* Where the socket is and who may use it. Root and the daemon's own uid
 * (the "admins") may always connect; other peers only if their uid is in
 * allow_uids or one of their groups in allow_gids. */
struct ctl_options {
	const char *path;
	unsigned mode;		 /* of the socket file; "other" bits refused */
	unsigned max_clients;	 /* 0: CTL_MAX_CLIENTS */
	int64_t idle_timeout_ms; /* since the last whole line or reply; 0:
				  * CTL_IDLE_TIMEOUT_MS */
	const uid_t *allow_uids; /* may be NULL */
	unsigned allow_uid_count;
	const gid_t *allow_gids; /* may be NULL */
	unsigned allow_gid_count;
};

/* What a peer may do, by its credentials. */
enum ctl_peer {
	CTL_PEER_REFUSED, /* closed with an error line */
	CTL_PEER_ALLOWED, /* served while a client slot is free */
	CTL_PEER_ADMIN,	  /* root or the daemon's uid: served even when
			   * every slot is taken (the idlest client makes room) */
};

/* Bind options->path (replacing a stale socket file, refusing one a live
 * daemon answers on), chmod it to options->mode, and start accepting. NULL
 * with cause on failure. */
struct ctl_server *ctl_listen_with(struct event_base *base,
				   const struct ctl_options *options,
				   ctl_handler_fn handler, void *arg,
				   char **cause) MUST_CHECK;

/* ctl_listen_with() with the defaults: admins only, CTL_MAX_CLIENTS,
 * CTL_IDLE_TIMEOUT_MS. */
struct ctl_server *ctl_listen(struct event_base *base, const char *path,
			      unsigned mode, ctl_handler_fn handler, void *arg,
			      char **cause) MUST_CHECK;

/* Classify a peer of a server run by uid self from its uid and groups. */
enum ctl_peer ctl_peer_class(const struct ctl_options *options, uid_t self,
			     uid_t uid, const gid_t *gids, size_t ngids);

/* Stop accepting, close every client, unlink the socket file. */
void ctl_close(struct ctl_server *server);

/* Parse one request line (without its newline). False with cause on an
 * empty line, bad JSON, a JSON value that is not an object with a string
 * "command" and an optional array of string "args", or too many args. */
bool ctl_parse_request(const char *line, size_t len, struct ctl_request *out,
		       char **cause) MUST_CHECK;
void ctl_request_clear(struct ctl_request *request);

/* Send response (a JSON object; the reference is stolen) as one line. "ok":
 * true is added unless the object has "ok" already. */
void ctl_reply(struct ctl_client *client, json_t *response);

/* Send {"ok": false, "error": "..."}. */
void ctl_reply_error(struct ctl_client *client, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Counters for metrics and status. */
unsigned ctl_client_count(const struct ctl_server *server);
unsigned long ctl_request_total(const struct ctl_server *server);

#endif
