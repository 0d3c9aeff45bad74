/* engine_fixture.c - see engine_fixture.h. */
#include "engine_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "ckpt.h"
#include "config.h"
#include "jobdef.h"
#include "setup.h"
#include "util.h"

struct engine fx;
PGconn *fx_admin;
void (*fx_on_dispatcher)(bool up);

static struct worker workers[FX_MAX_WORKERS];
static char dir[] = "/tmp/pgt-unit-engine.XXXXXX";
static bool have_dir;
static char dbname[64];
static char value_text[2048];
static unsigned connected, connections_wanted;
static bool all_connected;
static bool set_up, set_up_ok;

/* Kinds written before the directory exists wait here. */
static struct {
	char *name;
	char *yaml;
} kinds[16];
static unsigned kind_count;

const char *fx_dir(void)
{
	return dir;
}

const char *fx_value(const char *sql)
{
	PGresult *res = PQexec(fx_admin, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK)
		snprintf(value_text, sizeof(value_text), "ERROR: %s",
			 PQresultErrorMessage(res));
	else if (PQntuples(res) > 0)
		snprintf(value_text, sizeof(value_text), "%s",
			 PQgetvalue(res, 0, 0));
	else
		value_text[0] = '\0';
	PQclear(res);
	return value_text;
}

static bool write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		printf("# cannot write %s\n", path);
		return false;
	}
	return true;
}

void fx_kind(const char *name, const char *yaml)
{
	if (kind_count < sizeof(kinds) / sizeof(kinds[0])) {
		kinds[kind_count].name = strdup(name);
		kinds[kind_count].yaml = strdup(yaml);
		kind_count++;
	}
}

static void on_state(struct pgconn *c, bool up, void *arg)
{
	(void)c;
	(void)arg;
	if (up)
		connected++;
	all_connected = connected >= connections_wanted;
	if (c == fx.dispatcher && fx_on_dispatcher != NULL)
		fx_on_dispatcher(up);
}

static void on_setup(bool ok, const char *error, void *arg)
{
	(void)arg;
	set_up = true;
	set_up_ok = ok;
	if (!ok)
		printf("# setup: %s\n", error ? error : "?");
	event_base_loopbreak(fx.base);
}

static void on_synced(const struct pgconn_result *r, void *arg)
{
	(void)r;
	*(bool *)arg = true;
	event_base_loopbreak(fx.base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
	event_base_loopbreak(fx.base);
}

/* Run the loop until *cond is true or ms passed. */
static bool loop_until_ms(const bool *cond, int64_t ms)
{
	bool timed_out = false;
	struct event *timer = evtimer_new(fx.base, on_timeout, &timed_out);

	timer_add_ms(timer, ms);
	while (!*cond && !timed_out)
		event_base_loop(fx.base, EVLOOP_ONCE);
	event_free(timer);
	return *cond;
}

bool fx_loop_until(const bool *cond, int seconds)
{
	return loop_until_ms(cond, (int64_t)seconds * 1000);
}

void fx_run_ms(int ms)
{
	static const bool never = false;

	loop_until_ms(&never, ms);
}

bool fx_wait_true(const char *sql, int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		if (strcmp(fx_value(sql), "t") == 0)
			return true;
		fx_run_ms(50);
	}
	return strcmp(fx_value(sql), "t") == 0;
}

/* The database, the tables' owner's session and the directory. */
static bool fx_make_room(const char *name)
{
	char sql[256];

	snprintf(dbname, sizeof(dbname), "pgt_unit_%s_%d", name, (int)getpid());
	fx_admin = PQconnectdb("");
	if (PQstatus(fx_admin) != CONNECTION_OK) {
		printf("# %s", PQerrorMessage(fx_admin));
		return false;
	}
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
	if (strncmp(fx_value(sql), "ERROR", 5) == 0) {
		printf("# %s\n", value_text);
		dbname[0] = '\0';
		return false;
	}
	PQfinish(fx_admin);
	snprintf(sql, sizeof(sql), "dbname=%s", dbname);
	fx_admin = PQconnectdb(sql);
	if (PQstatus(fx_admin) != CONNECTION_OK) {
		printf("# %s", PQerrorMessage(fx_admin));
		return false;
	}
	if (mkdtemp(dir) == NULL)
		return false;
	have_dir = true;
	snprintf(sql, sizeof(sql), "%s/jobs", dir);
	if (mkdir(sql, 0755) != 0)
		return false;
	snprintf(sql, sizeof(sql), "%s/state", dir);
	return mkdir(sql, 0700) == 0;
}

static bool fx_load(unsigned worker_count, const char *config_extra)
{
	char path[512], *conf, *cause = NULL;
	bool ok;

	for (unsigned i = 0; i < kind_count; i++) {
		snprintf(path, sizeof(path), "jobs/%s.yaml", kinds[i].name);
		if (!write_file(path, kinds[i].yaml))
			return false;
	}
	conf = xasprintf("database: \"dbname=%s\"\n"
			 "state_dir: %s/state\n"
			 "control_socket: %s/ctl.sock\n"
			 "jobs_dir: %s/jobs\n"
			 "backup_dir: %s/backups\n"
			 "workers: %u\n"
			 "%s",
			 dbname, dir, dir, dir, dir, worker_count,
			 config_extra ? config_extra : "");
	ok = write_file("config.yaml", conf);
	free(conf);
	if (!ok)
		return false;
	snprintf(path, sizeof(path), "%s/config.yaml", dir);
	fx.config = config_load(path, &cause);
	if (fx.config != NULL)
		fx.jobdefs = jobdefs_load_dir(fx.config->jobs_dir,
					      fx.config->batch_target_ms,
					      &cause);
	if (fx.jobdefs != NULL)
		fx.ckpt = ckpt_open(fx.config->state_dir, &cause);
	if (fx.ckpt == NULL) {
		printf("# %s\n", cause ? cause : "?");
		free(cause);
		return false;
	}
	return true;
}

bool fx_start(const char *name, unsigned worker_count, const char *config_extra,
	      pgconn_notify_fn on_notify, void *arg)
{
	if (worker_count > FX_MAX_WORKERS || !fx_make_room(name) ||
	    !fx_load(worker_count, config_extra))
		return false;
	fx.base = event_base_new();
	snprintf(fx.owner, sizeof(fx.owner), "unit-%s:1", name);
	fx.workers = workers;
	fx.worker_count = worker_count;
	fx.dispatcher =
		engine_connect(&fx, "dispatcher", on_state, on_notify, arg);
	pgconn_start(fx.dispatcher);
	for (unsigned i = 0; i < worker_count; i++) {
		char wname[16];

		snprintf(wname, sizeof(wname), "worker %u", i + 1);
		workers[i].engine = &fx;
		workers[i].index = i + 1;
		workers[i].conn =
			engine_connect(&fx, wname, on_state, NULL, NULL);
		pgconn_start(workers[i].conn);
	}
	connections_wanted = worker_count + 1;
	if (!fx_loop_until(&all_connected, 15)) {
		printf("# could not connect (%u of %u connections)\n",
		       connected, connections_wanted);
		return false;
	}
	setup_start(&fx, on_setup, NULL);
	if (!fx_loop_until(&set_up, 30) || !set_up_ok)
		return false;
	/* the kinds are published by queries sent after done: one more
	 * round trip on the dispatcher's session waits for them */
	set_up = false;
	pgconn_exec(fx.dispatcher, "SELECT 1", on_synced, &set_up);
	return fx_loop_until(&set_up, 15);
}

void fx_disconnect(void)
{
	for (unsigned i = 0; i < fx.worker_count; i++) {
		pgconn_free(workers[i].conn);
		workers[i].conn = NULL;
	}
	if (fx.dispatcher != NULL)
		pgconn_free(fx.dispatcher);
	fx.dispatcher = NULL;
}

void fx_stop(void)
{
	char cmd[600];

	fx_disconnect();
	if (fx.ckpt != NULL)
		ckpt_close(fx.ckpt);
	if (fx.jobdefs != NULL)
		jobdefs_unref(fx.jobdefs);
	if (fx.config != NULL)
		config_free(fx.config);
	if (fx.base != NULL)
		event_base_free(fx.base);
	PQfinish(fx_admin);
	if (dbname[0] != '\0') {
		fx_admin = PQconnectdb("");
		snprintf(cmd, sizeof(cmd), "DROP DATABASE %s WITH (FORCE)",
			 dbname);
		fx_value(cmd);
		PQfinish(fx_admin);
	}
	fx_admin = NULL;
	for (unsigned i = 0; i < kind_count; i++) {
		free(kinds[i].name);
		free(kinds[i].yaml);
	}
	if (have_dir) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
}
