/* mig-writer.c - a tenant's application while it migrates: routed, retried writes, then a check that none was lost. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tenant.h"
#include "util.h"

#define GIVE_UP_MS 30000.0 /* a write fails for good after retrying this long */
#define SAMPLE 50	   /* pre-existing rows per table and connection */
#define BATCH 1000	   /* keys per read of the check */
#define SHOW_LOST 10
#define MAX_CODES 24

enum {
	INS,
	UPD,
	DEL
};
enum outcome {
	DONE,
	RETRY,
	UNKNOWN
};
static const char *const tables[] = { "graph_entities", "graph_relations" };
static const char *const ops[] = { "insert", "update", "delete" };

/* A row state: absent, or present with properties {"v": v} (v < 0: with
 * the properties it had when sampled). */
struct kstate {
	bool exists;
	int64_t v;
};

/* A key of the tenant that one connection writes (no other one does). */
struct key {
	char *id;
	int table;    /* index into tables[] */
	bool own;     /* inserted by us (else sampled: updated only) */
	bool touched; /* written at least once: checked at the end */
	bool unsure;  /* a COMMIT of unknown outcome: state or alt */
	struct kstate state, alt;
};

/* Failures seen, by SQLSTATE, "conn" (connection lost, no SQLSTATE),
 * "nomatch" (no row where the route said) or "aborted". */
struct codes {
	char code[MAX_CODES][8];
	long n[MAX_CODES];
	size_t len;
};

/* One connection and everything only its thread touches. */
struct worker {
	int no;
	PGconn *conn;
	uint64_t rng;
	struct key *keys;
	size_t nkeys, capkeys;
	long next_id, ok, retries, failed, unknown, abandoned;
	double *lat; /* ms of each successful write, retries included */
	size_t nlat, caplat;
	struct codes codes;
	pthread_t thread;
};

static struct {
	const char *conninfo, *tenant, *prefix, *log, *report, *state;
	int connections;
	double rate;
	int64_t duration_ms; /* 0: until a signal */
	uint64_t seed;
	bool check, check_after;
} opt;

/* SQL by [in the tenant's schema][table][op], and the check's reads. */
static char *stmt[2][2][3], *sel[2][2], *sample[2][2];
static FILE *log_file;
static atomic_bool stopping;
static atomic_llong counter; /* the last properties value "v" used */

static const char usage[] =
	"usage: mig-writer --conninfo STR --tenant ID [--connections N] [--rate W]\n"
	"                  [--duration SECS] [--prefix P] [--seed N] [--log FILE]\n"
	"                  [--report FILE] [--state FILE] [--check-after]\n"
	"       mig-writer --check --conninfo STR --tenant ID --state FILE [--report FILE]\n"
	"Writes about W rows/s (0: no limit; default 200) over N connections (4) to the\n"
	"tenant's rows where public.tenant_metadata routes them, each write retried for\n"
	"up to 30 s, until SECS are over or SIGTERM/SIGINT, then prints a summary.\n"
	"--state saves the expected state of every key written; --check compares a\n"
	"saved state with the database, --check-after this run's. Exit 0 when no write\n"
	"was lost or failed for good, 1 otherwise, 2 on usage errors.\n";

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mig-writer: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n%s", usage);
	va_end(ap);
	exit(2);
}

/* Milliseconds on the monotonic clock, with fractions. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { 0, (long)(ms * 1e6) }; /* ms < 1000 */

	nanosleep(&ts, NULL);
}

/* A number in [0, bound) from the worker's own xorshift64 generator. */
static uint32_t rnd(struct worker *w, size_t bound)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng % bound);
}

static size_t key_add(struct worker *w, char *id, int table, bool own)
{
	if (w->nkeys == w->capkeys) {
		w->capkeys = w->capkeys ? 2 * w->capkeys : 256;
		w->keys = xrealloc(w->keys, w->capkeys * sizeof(*w->keys));
	}
	w->keys[w->nkeys] = (struct key){ .id = id,
					  .table = table,
					  .own = own,
					  .state = { !own, -1 } };
	return w->nkeys++;
}

static void codes_add(struct codes *c, const char *code, long n)
{
	size_t i = 0;

	while (i < c->len && strcmp(c->code[i], code) != 0)
		i++;
	if (i == MAX_CODES)
		i--; /* the last one counts the rest too */
	else if (i == c->len)
		snprintf(c->code[c->len++], sizeof(c->code[0]), "%s", code);
	c->n[i] += n;
}

/* A message of libpq on one line: newlines made spaces, the last cut. */
static char *one_line(const char *text)
{
	char *m = xstrdup(text);
	size_t n = strlen(m);

	while (n > 0 && m[n - 1] == '\n')
		m[--n] = '\0';
	for (char *p = m; *p; p++)
		*p = *p == '\n' ? ' ' : *p;
	return m;
}

static PGconn *connect_db(char **cause)
{
	const char *const kw[] = { "dbname", "fallback_application_name",
				   NULL };
	const char *const val[] = { opt.conninfo, "mig-writer", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);
	char *m;

	if (PQstatus(c) == CONNECTION_OK)
		return c;
	m = one_line(PQerrorMessage(c));
	set_cause(cause, "cannot connect with '%s': %s", opt.conninfo, m);
	free(m);
	PQfinish(c);
	return NULL;
}

/* Run a statement; false with the SQLSTATE (or "conn") in code when it
 * fails. The result is kept in *res when res is not NULL. */
static bool run(PGconn *c, const char *sql, int n, const char *const *p,
		PGresult **res, char code[8])
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		  PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(code, 8, "%s", s ? s : "conn");
	if (ok && res)
		*res = r;
	else
		PQclear(r);
	return ok;
}

/* Read in the open transaction whether the tenant's rows are in its own
 * schema (public.tenant_metadata; no table or no row means shared). */
static bool read_route(PGconn *c, bool *separate, char code[8])
{
	const char *p[1] = { opt.tenant };
	PGresult *res;

	if (!run(c, "SELECT to_regclass('public.tenant_metadata') IS NULL", 0,
		 NULL, &res, code))
		return false;
	*separate = false;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		return true;
	}
	PQclear(res);
	if (!run(c,
		 "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = $1",
		 1, p, &res, code))
		return false;
	*separate = PQntuples(res) == 1 &&
		    strcmp(PQgetvalue(res, 0, 0), "separate_schema") == 0;
	PQclear(res);
	return true;
}

/* One attempt of a write, in its own transaction. */
static enum outcome attempt(PGconn *c, struct key *k, int op, const char *props,
			    const char *end, char code[8])
{
	const char *p[5] = { k->id };
	int n = 1;
	bool sep;
	PGresult *res;

	if (!run(c, "BEGIN", 0, NULL, NULL, code) || !read_route(c, &sep, code))
		goto fail;
	if (op != DEL)
		p[n++] = props;
	if (op == INS && k->table == 1) {
		p[n++] = end;
		p[n++] = end;
	}
	if (!sep)
		p[n++] = opt.tenant;
	if (!run(c, stmt[sep][k->table][op], n, p, &res, code))
		goto fail;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		/* not where the route said: moved under us, route again */
		PQclear(res);
		snprintf(code, 8, "nomatch");
		goto fail;
	}
	PQclear(res);
	if (run(c, "COMMIT", 0, NULL, &res, code)) {
		n = strcmp(PQcmdStatus(res), "COMMIT");
		PQclear(res);
		if (n != 0) /* "ROLLBACK": it had failed */
			snprintf(code, 8, "aborted");
		return n == 0 ? DONE : RETRY;
	}
	/* an error sent over a live connection rolled it back */
	if (PQstatus(c) != CONNECTION_OK || strcmp(code, "conn") == 0)
		return UNKNOWN;
fail:
	if (PQstatus(c) == CONNECTION_OK)
		PQclear(PQexec(c, "ROLLBACK"));
	return RETRY;
}

/* Do one logical write of key ki until it commits, its outcome is
 * unknown, or it has been retried for GIVE_UP_MS. */
static void do_write(struct worker *w, size_t ki, int op)
{
	struct key *k = &w->keys[ki];
	struct kstate to = { op != DEL, atomic_fetch_add(&counter, 1) + 1 };
	char props[40], code[8] = "", *shown;
	const char *end = w->keys[0].id, *result = "ok";
	double t0 = now_ms(), ms;
	int attempts = 0;
	enum outcome out;

	snprintf(props, sizeof(props), "{\"v\": %" PRId64 "}", to.v);
	for (;;) {
		attempts++;
		if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK) {
			PQfinish(w->conn);
			w->conn = connect_db(NULL);
			snprintf(code, sizeof(code), "conn");
		}
		out = w->conn ? attempt(w->conn, k, op, props, end, code) :
				RETRY;
		if (out != RETRY)
			break;
		codes_add(&w->codes, code, 1);
		if (now_ms() - t0 > GIVE_UP_MS || atomic_load(&stopping))
			break;
		w->retries++;
		/* longer when the server may be restarting */
		if (w->conn && PQstatus(w->conn) == CONNECTION_OK)
			sleep_ms(5 + rnd(w, 16));
		else
			sleep_ms(20 + rnd(w, 80));
	}
	ms = now_ms() - t0;
	if (out == DONE) {
		w->ok++;
		if (w->nlat == w->caplat) {
			w->caplat = w->caplat ? 2 * w->caplat : 1024;
			w->lat = xrealloc(w->lat, w->caplat * sizeof(*w->lat));
		}
		w->lat[w->nlat++] = ms;
		k->touched = true;
		k->state = to;
	} else if (out == UNKNOWN) {
		result = "unknown";
		w->unknown++;
		codes_add(&w->codes, code, 1);
		k->touched = k->unsure = true; /* never written again */
		k->alt = to;
	} else if (atomic_load(&stopping)) {
		result = "abandoned";
		w->abandoned++;
	} else {
		result = "failed";
		w->failed++;
	}
	if (log_file) {
		shown = display_escape(k->id, 80, false);
		fprintf(log_file,
			"%.3f conn %d %s %s '%s' attempts %d ms %.2f %s%s%s\n",
			wall_seconds(), w->no, ops[op], tables[k->table], shown,
			attempts, ms, result, out == DONE ? "" : " ",
			out == DONE ? "" : code);
		free(shown);
	}
}

/* A random key of the table that exists and may take op (a delete only
 * takes our own rows); -1 when a few tries found none. */
static long pick(struct worker *w, int table, int op)
{
	for (int i = 0; i < 32 && w->nkeys > 0; i++) {
		struct key *k = &w->keys[rnd(w, w->nkeys)];

		if (k->table == table && k->state.exists && !k->unsure &&
		    (k->own || op == UPD))
			return k - w->keys;
	}
	return -1;
}

/* A worker thread: at its share of the rate until stopping, writes of the
 * mix 50% insert, 35% update, 15% delete, one in five on relations. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	double interval = opt.rate > 0 ? 1e3 * opt.connections / opt.rate : 0;
	double next = now_ms() + interval * rnd(w, 1000) / 1000.0, now;
	int table, r, op;
	long ki;

	while (!atomic_load(&stopping)) {
		now = now_ms();
		if (next > now) {
			sleep_ms(next - now < 50 ? next - now : 50);
			continue;
		}
		table = rnd(w, 100) < 20;
		r = (int)rnd(w, 100);
		op = r < 50 ? INS : r < 85 ? UPD : DEL;
		ki = op == INS ? -1 : pick(w, table, op);
		if (ki < 0) {
			op = INS;
			ki = (long)key_add(w,
					   xasprintf("%s-%d-%s%ld", opt.prefix,
						     w->no, table ? "r" : "",
						     ++w->next_id),
					   table, true);
		}
		do_write(w, (size_t)ki, op);
		next += interval;
		if (next < now_ms() - 1000)
			next = now_ms(); /* no burst after a long stall */
	}
	return NULL;
}

/* Build the statements, with the tenant's schema name quoted by c. */
static bool build_sql(PGconn *c, char **cause)
{
	char schema[PG_IDENTIFIER_MAX + 1], *q, *t;

	if (!tenant_schema_name(opt.tenant, schema, sizeof(schema), cause))
		return false;
	if ((q = PQescapeIdentifier(c, schema, strlen(schema))) == NULL)
		return set_cause(cause, "cannot quote '%s'", schema);
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < 2; i++) {
			const char *tc = s ? "" : ", tenant_id",
				   *tw = s ? "" : " AND tenant_id = $";

			t = xasprintf("%s.%s", s ? q : "public", tables[i]);
			stmt[s][i][INS] =
				i == 0 ?
					xasprintf(
						"INSERT INTO %s (id, entity_type, properties%s) VALUES ($1, 'bench', $2::jsonb%s)",
						t, tc, s ? "" : ", $3") :
					xasprintf(
						"INSERT INTO %s (id, relation_type, properties, source_id, target_id%s) VALUES ($1, 'bench', $2::jsonb, $3, $4%s)",
						t, tc, s ? "" : ", $5");
			stmt[s][i][UPD] = xasprintf(
				"UPDATE %s SET properties = $2::jsonb, updated_at = now() WHERE id = $1%s%s",
				t, tw, s ? "" : "3");
			stmt[s][i][DEL] =
				xasprintf("DELETE FROM %s WHERE id = $1%s%s", t,
					  tw, s ? "" : "2");
			sel[s][i] = xasprintf(
				"SELECT u.i, t.id IS NOT NULL, t.properties::text FROM unnest($1::text[]) WITH ORDINALITY u(id, i) LEFT JOIN %s t ON t.id = u.id%s%s",
				t, tw, s ? "" : "2");
			sample[s][i] = xasprintf(
				"SELECT id FROM %s WHERE true%s%s ORDER BY md5(id) LIMIT $1::int",
				t, tw, s ? "" : "2");
			free(t);
		}
	PQfreemem(q);
	return true;
}

/* Give each worker SAMPLE existing rows of the tenant per table. */
static bool sample_rows(PGconn *c, struct worker *ws, char **cause)
{
	char code[8] = "", limit[16];
	const char *p[2] = { limit, opt.tenant };
	bool sep, ok;
	PGresult *res;

	snprintf(limit, sizeof(limit), "%d", SAMPLE * opt.connections);
	ok = run(c, "BEGIN", 0, NULL, NULL, code) && read_route(c, &sep, code);
	for (int t = 0; ok && t < 2; t++) {
		ok = run(c, sample[sep][t], sep ? 1 : 2, p, &res, code);
		for (int i = 0; ok && i < PQntuples(res); i++)
			key_add(&ws[i % opt.connections],
				xstrdup(PQgetvalue(res, i, 0)), t, false);
		if (ok)
			PQclear(res);
	}
	if (!ok || !run(c, "COMMIT", 0, NULL, NULL, code))
		return set_cause(cause,
				 "cannot sample rows of tenant '%s' (error %s)",
				 opt.tenant, code);
	return true;
}

/* Whether a key's row (found, with properties text) is in state s. */
static bool matches(const struct kstate *s, bool found, const char *props)
{
	char want[40];

	snprintf(want, sizeof(want), "{\"v\": %" PRId64 "}", s->v);
	return s->exists == found &&
	       (!found || s->v < 0 || strcmp(want, props) == 0);
}

/* Report a lost write of k, whose row is absent or has props. */
static void show_lost(FILE *out, struct key *k, bool found, const char *props)
{
	char *shown = display_escape(k->id, 80, false);

	fprintf(out, "lost: %s '%s' should be ", tables[k->table], shown);
	for (int i = 0; i < 1 + k->unsure; i++) {
		struct kstate *s = i ? &k->alt : &k->state;

		fputs(i ? " or " : "", out);
		if (s->exists && s->v < 0)
			fputs("as sampled", out);
		else if (s->exists)
			fprintf(out, "{\"v\": %" PRId64 "}", s->v);
		else
			fputs("absent", out);
	}
	fprintf(out, ", is %s\n", found ? props : "absent");
	free(shown);
}

/* Compare the keys in ks with where the tenant's rows live now; write the
 * verdict to out. Returns the number of lost writes, -1 on error. */
static long check_keys(PGconn *c, struct key **ks, size_t n, FILE *out)
{
	char code[8] = "", *arr = NULL;
	const char *p[2] = { NULL, opt.tenant };
	long lost = 0;
	bool sep, ok;
	PGresult *res;
	struct key *b[BATCH];
	size_t nb, len, i = 0;
	FILE *f;

	ok = run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
		 NULL, code) &&
	     read_route(c, &sep, code);
	for (int t = 0; ok && t < 2; t++, i = 0)
		while (ok && i < n) {
			/* the batch's ids as an array literal, bound */
			f = open_memstream(&arr, &len);
			for (nb = 0; i < n && nb < BATCH; i++) {
				if (ks[i]->table != t)
					continue;
				fputs(nb ? ",\"" : "{\"", f);
				for (const char *s = ks[i]->id; *s; s++)
					fprintf(f, "%s%c",
						*s == '"' || *s == '\\' ? "\\" :
									  "",
						*s);
				fputc('"', f);
				b[nb++] = ks[i];
			}
			fputs(nb ? "}" : "{}", f);
			fclose(f);
			p[0] = arr;
			ok = run(c, sel[sep][t], sep ? 1 : 2, p, &res, code);
			free(arr);
			for (int r = 0; ok && r < PQntuples(res); r++) {
				struct key *k =
					b[atol(PQgetvalue(res, r, 0)) - 1];
				bool found = *PQgetvalue(res, r, 1) == 't';
				const char *props = PQgetvalue(res, r, 2);

				if (!matches(&k->state, found, props) &&
				    !(k->unsure &&
				      matches(&k->alt, found, props)) &&
				    lost++ < SHOW_LOST)
					show_lost(out, k, found, props);
			}
			if (ok)
				PQclear(res);
		}
	if (!ok) {
		fprintf(out,
			"check failed: cannot read the tenant's rows: SQLSTATE %s\n",
			code);
		return -1;
	}
	PQclear(PQexec(c, "COMMIT"));
	fprintf(out, "checked keys: %zu in the %s\nlost writes: %ld\n", n,
		sep ? "tenant's schema" : "shared tables", lost);
	return lost;
}

/* Save the expected state of every key in ks (ids in hex). */
static bool save_state(struct key **ks, size_t n, char **cause)
{
	FILE *f = fopen(opt.state, "w");

	if (f == NULL)
		return set_cause(cause, "%s: cannot write: %m", opt.state);
	fprintf(f, "mig-writer-state 1 %s\n", opt.tenant);
	for (size_t i = 0; i < n; i++) {
		struct key *k = ks[i];

		fprintf(f, "%d %d %" PRId64 " %d %d %" PRId64 " x", k->table,
			k->state.exists, k->state.v, k->unsure, k->alt.exists,
			k->alt.v);
		for (const char *s = k->id; *s; s++)
			fprintf(f, "%02x", (unsigned char)*s);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		return set_cause(cause, "%s: cannot write: %m", opt.state);
	return true;
}

/* Read a file of save_state() into the keys of w. */
static bool load_state(struct worker *w, char **cause)
{
	FILE *f = fopen(opt.state, "r");
	char *line = NULL, *hex, tenant[TENANT_ID_MAX + 1] = "";
	size_t cap = 0, ln = 1, len, i;
	int e, u, a;
	bool ok;

	if (f == NULL)
		return set_cause(cause, "%s: cannot read: %m", opt.state);
	ok = fscanf(f, "mig-writer-state 1 %255s\n", tenant) == 1 &&
	     strcmp(tenant, opt.tenant) == 0;
	if (!ok)
		set_cause(cause,
			  "%s: not a state file of mig-writer for tenant '%s'",
			  opt.state, opt.tenant);
	while (ok && getline(&line, &cap, f) > 0) {
		struct key k = { .touched = true };

		ln++;
		hex = NULL;
		if (sscanf(line,
			   "%d %d %" SCNd64 " %d %d %" SCNd64 " x%m[0-9a-f]",
			   &k.table, &e, &k.state.v, &u, &a, &k.alt.v,
			   &hex) < 6 ||
		    (k.table & ~1)) {
			ok = set_cause(cause, "%s:%zu: not a key", opt.state,
				       ln);
			break;
		}
		len = hex ? strlen(hex) / 2 : 0;
		k.id = xcalloc(1, len + 1);
		for (size_t j = 0; j < len; j++)
			sscanf(hex + 2 * j, "%2hhx", (unsigned char *)&k.id[j]);
		free(hex);
		k.state.exists = e;
		k.unsure = u;
		k.alt.exists = a;
		i = key_add(w, NULL, 0, false); /* may move w->keys */
		w->keys[i] = k;
	}
	free(line);
	fclose(f);
	return ok;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Print the summary of the workers' writes to out; false if one failed
 * for good. */
static bool summary(FILE *out, struct worker *ws, double secs)
{
	struct worker all = { 0 };
	static const double pct[] = { 50, 90, 99 };

	for (int i = 0; i < opt.connections; i++) {
		struct worker *w = &ws[i];

		all.ok += w->ok;
		all.retries += w->retries;
		all.failed += w->failed;
		all.unknown += w->unknown;
		all.abandoned += w->abandoned;
		all.lat = xrealloc(all.lat,
				   (all.nlat + w->nlat + 1) * sizeof(double));
		memcpy(all.lat + all.nlat, w->lat, w->nlat * sizeof(double));
		all.nlat += w->nlat;
		for (size_t j = 0; j < w->codes.len; j++)
			codes_add(&all.codes, w->codes.code[j], w->codes.n[j]);
	}
	qsort(all.lat, all.nlat, sizeof(double), cmp_double);
	fprintf(out,
		"tenant: %s\nconnections: %d\nseconds: %.1f\nwrites/s: %.1f\n",
		opt.tenant, opt.connections, secs, all.ok / secs);
	fprintf(out,
		"writes ok: %ld\nretries: %ld\nfailed for good: %ld\nunknown outcome: %ld\nabandoned at stop: %ld\n",
		all.ok, all.retries, all.failed, all.unknown, all.abandoned);
	all.lat[all.nlat] = 0; /* reported when there were no writes */
	for (size_t i = 0; i < ARRAY_SIZE(pct); i++) {
		size_t rank = (size_t)(pct[i] / 100 * all.nlat + 0.999999);

		fprintf(out, "latency p%g ms: %.1f\n", pct[i],
			all.lat[rank ? rank - 1 : 0]);
	}
	fprintf(out, "latency max ms: %.1f\nerrors:",
		all.lat[all.nlat ? all.nlat - 1 : 0]);
	for (size_t j = 0; j < all.codes.len; j++)
		fprintf(out, " %s=%ld", all.codes.code[j], all.codes.n[j]);
	fprintf(out, "%s\n", all.codes.len ? "" : " none");
	free(all.lat);
	return all.failed == 0;
}

/* A number option's value, or a usage error naming it. */
static double number(const char *name, const char *text, double min, double max)
{
	char *end;
	double d = strtod(text, &end);

	if (*text == '\0' || *end != '\0' || !(d >= min) || d > max)
		usage_error("--%s: '%s' is not a number from %g to %g", name,
			    text, min, max);
	return d;
}

static void parse_args(int argc, char **argv)
{
	const char *conns = "4", *rate = "200", *dur = NULL, *seed = "0";
	const struct {
		const char *name, **to;
	} strs[] = { { "conninfo", &opt.conninfo },
		     { "tenant", &opt.tenant },
		     { "connections", &conns },
		     { "rate", &rate },
		     { "duration", &dur },
		     { "prefix", &opt.prefix },
		     { "seed", &seed },
		     { "log", &opt.log },
		     { "report", &opt.report },
		     { "state", &opt.state } };
	char *cause = NULL;
	size_t j;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strcmp(a, "--check") == 0 ||
		    strcmp(a, "--check-after") == 0) {
			*(a[7] ? &opt.check_after : &opt.check) = true;
			continue;
		}
		for (j = 0; j < ARRAY_SIZE(strs); j++)
			if (strncmp(a, "--", 2) == 0 &&
			    strcmp(a + 2, strs[j].name) == 0)
				break;
		if (j == ARRAY_SIZE(strs))
			usage_error("unknown option '%s'", a);
		if (++i == argc)
			usage_error("option '%s' needs a value", a);
		*strs[j].to = argv[i];
	}
	opt.connections = (int)number("connections", conns, 1, 1000);
	opt.rate = number("rate", rate, 0, 1e6);
	opt.seed = (uint64_t)number("seed", seed, 0, 1e15);
	if (dur &&
	    (!duration_parse(dur, &opt.duration_ms) || opt.duration_ms <= 0))
		usage_error(
			"--duration: '%s' is not a positive number of seconds (or 250ms, 2m)",
			dur);
	if (opt.conninfo == NULL || opt.tenant == NULL)
		usage_error("--%s is missing",
			    opt.tenant ? "conninfo" : "tenant");
	if (!tenant_id_valid(opt.tenant, &cause))
		usage_error("--tenant: %s", cause);
	if (opt.check && opt.check_after)
		usage_error("--check and --check-after exclude each other");
	if (opt.check && opt.state == NULL)
		usage_error(
			"--check needs --state FILE (written by a run with --state)");
}

/* Run the writers until the duration is over or a signal comes. */
static bool run_writers(PGconn *c, struct worker *ws, FILE *out, char **cause)
{
	struct itimerval it = { { 0, 0 },
				{ opt.duration_ms / 1000,
				  opt.duration_ms % 1000 * 1000 } };
	uint64_t seed = opt.seed ? opt.seed :
				   (uint64_t)time(NULL) ^ (uint64_t)getpid();
	sigset_t sigs;
	double t0;
	bool ok;

	if (opt.log && (log_file = fopen(opt.log, "a")) == NULL)
		return set_cause(cause, "%s: cannot open the log: %m", opt.log);
	for (int i = 0; i < opt.connections; i++) {
		ws[i].no = i;
		ws[i].rng = (seed + (uint64_t)i) * 0x9e3779b97f4a7c15u | 1;
		if ((ws[i].conn = connect_db(cause)) == NULL)
			return false;
	}
	if (!sample_rows(c, ws, cause))
		return false;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	fprintf(stderr,
		"mig-writer: tenant '%s', %d connections, %g writes/s, prefix '%s', seed %" PRIu64
		"\n",
		opt.tenant, opt.connections, opt.rate, opt.prefix, seed);
	t0 = now_ms();
	for (int i = 0; i < opt.connections; i++)
		pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
	setitimer(ITIMER_REAL, &it, NULL); /* zero: none */
	while (sigwaitinfo(&sigs, NULL) < 0)
		;
	atomic_store(&stopping, true);
	for (int i = 0; i < opt.connections; i++)
		pthread_join(ws[i].thread, NULL);
	ok = summary(out, ws, (now_ms() - t0) / 1e3);
	if (log_file)
		fclose(log_file);
	return ok;
}

/* Free what main holds, so that a leak checker (the sanitizer build of
 * scripts/check) reports only real leaks. */
static void free_all(struct worker *ws, int nws, struct key **ks, char *text,
		     PGconn *c)
{
	for (int i = 0; ws != NULL && i < nws; i++) {
		if (ws[i].conn != NULL)
			PQfinish(ws[i].conn);
		for (size_t j = 0; j < ws[i].nkeys; j++)
			free(ws[i].keys[j].id);
		free(ws[i].keys);
		free(ws[i].lat);
	}
	for (int s = 0; s < 2; s++)
		for (int t = 0; t < 2; t++) {
			for (int o = 0; o < 3; o++)
				free(stmt[s][t][o]);
			free(sel[s][t]);
			free(sample[s][t]);
		}
	free(ks);
	free(text);
	if (c != NULL)
		PQfinish(c);
}

int main(int argc, char **argv)
{
	struct worker *ws = NULL, checked = { 0 };
	struct key **ks = NULL;
	size_t nks = 0, len;
	char *cause = NULL, *text = NULL, prefix[32];
	FILE *out = open_memstream(&text, &len), *f;
	long lost = 0;
	bool ok = true;
	PGconn *c;

	parse_args(argc, argv);
	snprintf(prefix, sizeof(prefix), "mw%d", (int)getpid());
	opt.prefix = opt.prefix ? opt.prefix : prefix;
	if ((c = connect_db(&cause)) == NULL || !build_sql(c, &cause))
		goto fatal;
	if (opt.check) {
		ws = &checked;
		opt.connections = 1;
		if (!load_state(ws, &cause))
			goto fatal;
	} else {
		ws = xcalloc((size_t)opt.connections, sizeof(*ws));
		ok = run_writers(c, ws, out, &cause);
		if (cause)
			goto fatal;
	}
	for (int i = 0; i < opt.connections; i++)
		nks += ws[i].nkeys;
	ks = xcalloc(nks + 1, sizeof(*ks));
	nks = 0;
	for (int i = 0; i < opt.connections; i++)
		for (size_t j = 0; j < ws[i].nkeys; j++)
			if (ws[i].keys[j].touched)
				ks[nks++] = &ws[i].keys[j];
	if (!opt.check && opt.state && !save_state(ks, nks, &cause))
		goto fatal;
	if (opt.check_after) {
		PQfinish(
			c); /* idle since the sample: the server may have restarted */
		if ((c = connect_db(&cause)) == NULL)
			goto fatal;
	}
	if (opt.check || opt.check_after)
		lost = check_keys(c, ks, nks, out);
	fclose(out);
	fputs(text, stdout);
	if (opt.report && ((f = fopen(opt.report, "w")) == NULL ||
			   fputs(text, f) < 0 || fclose(f) != 0)) {
		set_cause(&cause, "%s: cannot write the report: %m",
			  opt.report);
		goto fatal;
	}
	free_all(ws, opt.check ? 1 : opt.connections, ks, text, c);
	if (ws != &checked)
		free(ws);
	return ok && lost == 0 ? 0 : 1;
fatal:
	fprintf(stderr, "mig-writer: %s\n", cause);
	free(cause);
	return 1;
}
