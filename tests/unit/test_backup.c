/* test_backup.c - backups without a database: fake pg_dump, pg_restore and
 * psql programs on PATH drive the operations on a real event loop; the
 * catalog and retention run on a real SQLite state store. */
#include <dirent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "child.h"
#include "ckpt.h"
#include "log.h"
#include "unit.h"
#include "util.h"

static char tmpdir[256];
static char backup_dir[300];
static struct event_base *base;
static struct ckpt *ckpt;

/* What an operation's done callback saw. */
struct outcome {
	bool called;
	bool ok;
	bool retry;
	bool cancelled;
	char *error;
	json_t *vars;
	json_t *result;
};

static void outcome_clear(struct outcome *o)
{
	free(o->error);
	json_decref(o->vars);
	json_decref(o->result);
	memset(o, 0, sizeof(*o));
}

static void op_done(const struct backup_result *r, void *arg)
{
	struct outcome *o = arg;

	o->called = true;
	o->ok = r->ok;
	o->retry = r->retry;
	o->cancelled = r->cancelled;
	o->error = r->error ? xstrdup(r->error) : NULL;
	o->vars = json_incref(r->vars);
	o->result = json_incref(r->result);
}

/* Write an executable script. */
static void write_script(const char *name, const char *text)
{
	char *path = xasprintf("%s/bin/%s", tmpdir, name);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0 ||
	    chmod(path, 0755) != 0) {
		perror(path);
		exit(99);
	}
	free(path);
}

/* Set what the fake pg_dump does: ok, fail, garbage, other, slow. */
static void fake_mode(const char *mode)
{
	char *path = xasprintf("%s/mode", tmpdir);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(mode, f) == EOF || fclose(f) != 0) {
		perror(path);
		exit(99);
	}
	free(path);
}

/* Run one operation to its end. */
static void run_op(enum backup_kind kind, const char *tenant, const char *arg,
		   unsigned keep, struct outcome *o, bool cancel_soon)
{
	char *const env[] = { "PGDATABASE=fake", NULL };
	struct backup_request req = {
		.kind = kind,
		.base = base,
		.ckpt = ckpt,
		.backup_dir = backup_dir,
		.keep = keep,
		.env = env,
		.timeout_ms = 20000,
		.job_id = 42,
		.tenant_id = tenant,
		.schema = "tenant_acme",
		.arg = arg,
	};
	struct backup_op *op;
	int64_t deadline = mono_ms() + 20000;
	bool cancelled = false;

	outcome_clear(o);
	op = backup_start(&req, op_done, o);
	ok(!o->called, "done is not called from inside backup_start");
	while (!o->called && mono_ms() < deadline) {
		struct timeval tick = { 0, 20000 };

		if (cancel_soon && !cancelled && child_running_count() > 0) {
			backup_cancel(op);
			cancelled = true;
		}
		event_base_loopexit(base, &tick);
		event_base_loop(base, EVLOOP_ONCE);
	}
	ok(o->called, "the operation ends");
	if (o->error != NULL)
		printf("# error: %s\n", o->error);
}

/* Number of entries in dir whose name contains part ("" for all). */
static int count_files(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 && strstr(de->d_name, part))
			n++;
	closedir(d);
	return n;
}

/* Read a small file. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	size_t n;

	if (f == NULL)
		return xstrdup("");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(buf);
}

static const char *var_str(const struct outcome *o, const char *key)
{
	return json_string_value(json_object_get(o->vars, key));
}

static void setup(void)
{
	char *cause = NULL, *path;

	snprintf(tmpdir, sizeof(tmpdir), "%s/pgt-backup-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	snprintf(backup_dir, sizeof(backup_dir), "%s/backups", tmpdir);
	path = xasprintf("%s/bin", tmpdir);
	mkdir(path, 0700);
	free(path);
	path = xasprintf("%s/state", tmpdir);
	ckpt = ckpt_open(path, &cause);
	free(path);
	if (ckpt == NULL) {
		printf("Bail out! %s\n", cause);
		exit(1);
	}
	/* A dump is "PGDMP <schema>"; pg_restore --list prints a TOC with
	 * that schema, or fails on anything else. */
	path = xasprintf(
		"#!/bin/sh\n"
		"mode=$(cat %s/mode)\n"
		"for a; do case $a in --file=*) f=${a#--file=};;"
		" --schema=*) s=${a#--schema=};; esac; done\n"
		"s=$(echo \"$s\" | tr -d '\"')\n"
		"case $mode in\n"
		"fail) echo 'pg_dump: error: connection refused' >&2; exit 2;;\n"
		"garbage) echo 'not a dump' > \"$f\";;\n"
		"other) echo 'PGDMP tenant_other' > \"$f\";;\n"
		"function) printf 'PGDMP %%s\\nFUNCTION\\n' \"$s\" > \"$f\";;\n"
		"slow) echo 'PGDMP '\"$s\" > \"$f\"; exec sleep 30;;\n"
		"*) echo 'PGDMP '\"$s\" > \"$f\"; echo \"$@\" > %s/dump.args;;\n"
		"esac\n",
		tmpdir, tmpdir);
	write_script("pg_dump", path);
	free(path);
	/* pg_restore --list reads the file it is given, or stdin (as the
	 * restore runs it); a second line "FUNCTION" in a dump lists a
	 * function of the schema. Other runs print their section on stdout. */
	path = xasprintf(
		"#!/bin/sh\n"
		"if [ \"$1\" = --list ]; then\n"
		"  if [ -n \"$2\" ]; then exec < \"$2\"; fi\n"
		"  read -r magic schema || exit 1\n"
		"  read -r extra\n"
		"  if [ \"$magic\" != PGDMP ]; then\n"
		"    echo 'pg_restore: error: input file does not appear to be a valid archive' >&2; exit 1\n"
		"  fi\n"
		"  echo ';'; echo '; Archive created at 2024-01-01'\n"
		"  echo \"5; 2615 16390 SCHEMA - $schema alice\"\n"
		"  [ \"$extra\" = FUNCTION ] && echo \"221; 1255 16388 FUNCTION $schema ok(integer) alice\"\n"
		"  echo \"214; 1259 16391 TABLE $schema graph_entities alice\"\n"
		"  exit 0\n"
		"fi\n"
		"read -r magic schema || exit 1\n"
		"echo \"-- restore script $1\"\n"
		"echo \"$@\" >> %s/restore.args\n",
		tmpdir);
	write_script("pg_restore", path);
	free(path);
	path = xasprintf("#!/bin/sh\n"
			 "for a; do printf '%%s|' \"$a\"; done > %s/psql.args\n"
			 "cat > %s/psql.script\n",
			 tmpdir, tmpdir);
	write_script("psql", path);
	free(path);
	path = xasprintf("%s/bin:%s", tmpdir, getenv("PATH"));
	setenv("PATH", path, 1);
	free(path);
}

static void test_make(void)
{
	struct outcome o = { 0 };
	struct backup_record rec;
	bool found = false;
	char *cause = NULL, *dir, *cmd, *args;
	const char *file;
	FILE *p;
	char sha[80] = "";

	fake_mode("ok");
	run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, false);
	ok(o.ok, "a backup succeeds");
	file = var_str(&o, "backup_file");
	ok(file != NULL && access(file, R_OK) == 0, "its file exists");
	dir = xasprintf("%s/acme", backup_dir);
	ok(file != NULL && strncmp(file, dir, strlen(dir)) == 0 &&
		   strstr(file, "/tenant_acme-") != NULL &&
		   strstr(file, "-j42.dump") != NULL,
	   "under backup_dir/<tenant>/, named <schema>-<time>-j<job>.dump");
	is_int(count_files(dir, ".partial"), 0, "no temporary file is left");
	args = xasprintf("%s/dump.args", tmpdir);
	cmd = slurp(args);
	contains(cmd, "--format=custom", "pg_dump writes the custom format");
	contains(cmd, "--schema=\"tenant_acme\"",
		 "of the schema, quoted so that it is no pattern");
	contains(cmd, "--strict-names", "and fails if there is no such schema");
	free(cmd);
	free(args);
	cmd = xasprintf("sha256sum %s", file ? file : "/dev/null");
	p = popen(cmd, "r");
	if (p != NULL) {
		if (fscanf(p, "%64s", sha) != 1)
			sha[0] = '\0';
		pclose(p);
	}
	free(cmd);
	is_str(var_str(&o, "backup_sha256"), sha,
	       "backup_sha256 is the file's");
	ok(json_integer_value(json_object_get(o.vars, "backup_id")) > 0,
	   "backup_id is the catalog id");
	ok(json_is_true(json_object_get(json_object_get(o.result, "backup"),
					"verified")),
	   "the result says verified");
	is_int(json_integer_value(json_object_get(
		       json_object_get(o.result, "backup"), "toc_entries")),
	       2, "and counts the TOC entries pg_restore listed");
	ok(backup_catalog_find(ckpt, "acme", "", &rec, &found, &cause) && found,
	   "the catalog has it as the newest verified backup");
	if (found) {
		is_str(rec.status, "verified", "status verified");
		is_str(rec.sha256, sha, "with its sha256");
		is_str(rec.file, file, "and its file");
		backup_record_clear(&rec);
	}
	free(dir);
	outcome_clear(&o);
	free(cause);
}

static void test_make_failures(void)
{
	struct outcome o = { 0 };
	char *dir = xasprintf("%s/acme", backup_dir), *cause = NULL;
	int before = count_files(dir, "");
	json_t *list = NULL;

	fake_mode("fail");
	run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, false);
	ok(!o.ok && o.retry, "a failing pg_dump fails the operation (retry)");
	contains(o.error, "pg_dump exited with status 2",
		 "the error says how pg_dump ended");
	contains(o.error, "connection refused", "with its stderr");
	is_int(count_files(dir, ""), before, "no file is left behind");

	fake_mode("garbage");
	run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, false);
	ok(!o.ok, "a dump pg_restore cannot read fails");
	contains(o.error, "not readable", "the error says it is not readable");
	contains(o.error, "does not appear to be a valid archive",
		 "with pg_restore's message");
	is_int(count_files(dir, ""), before, "and the file is removed");

	fake_mode("other");
	run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, false);
	ok(!o.ok, "a dump without the tenant's schema fails");
	contains(o.error, "shows no schema tenant_acme", "says so");
	is_int(count_files(dir, ""), before, "and the file is removed");

	ok(backup_catalog_list(ckpt, "acme", 10, &list, &cause),
	   "the catalog lists the tenant's backups");
	is_int(json_array_size(list), 4, "one verified and three failed");
	is_str(json_string_value(
		       json_object_get(json_array_get(list, 0), "status")),
	       "failed", "the newest is failed");
	ok(json_string_value(
		   json_object_get(json_array_get(list, 0), "error")) != NULL,
	   "with its error");
	json_decref(list);

	/* an interrupted run left a partial file: the next one removes it */
	{
		char *partial =
			xasprintf("%s/.tenant_acme-x.dump.partial", dir);
		FILE *f = fopen(partial, "w");

		if (f != NULL)
			fclose(f);
		fake_mode("slow");
		run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, true);
		ok(!o.ok && o.cancelled, "a cancelled backup ends cancelled");
		ok(access(partial, F_OK) != 0,
		   "a leftover partial file is removed by the next run");
		is_int(count_files(dir, ".partial"), 0,
		       "and the cancelled one leaves none");
		free(partial);
	}
	outcome_clear(&o);
	free(dir);
	free(cause);
}

static void test_check(void)
{
	struct outcome o = { 0 };
	char id[32], *name, *cause = NULL;
	const char *file;
	json_t *list = NULL;
	FILE *f;

	run_op(BACKUP_CHECK, "acme", "", 0, &o, false);
	ok(o.ok, "backup_check finds the newest verified backup");
	file = var_str(&o, "backup_file");
	ok(file != NULL, "and sets backup_file");
	ok(json_is_true(json_object_get(json_object_get(o.result, "backup"),
					"checked")),
	   "the result says it was checked");
	snprintf(id, sizeof(id), "%lld",
		 (long long)json_integer_value(
			 json_object_get(o.vars, "backup_id")));
	name = xstrdup(file ? strrchr(file, '/') + 1 : "?");
	outcome_clear(&o);

	run_op(BACKUP_CHECK, "acme", id, 0, &o, false);
	ok(o.ok, "by catalog id");
	outcome_clear(&o);
	run_op(BACKUP_CHECK, "acme", name, 0, &o, false);
	ok(o.ok, "by file name");
	outcome_clear(&o);
	run_op(BACKUP_CHECK, "acme", "nope.dump", 0, &o, false);
	ok(!o.ok && !o.retry, "an unknown name fails, final");
	contains(o.error, "has no backup 'nope.dump'", "saying so");
	outcome_clear(&o);
	run_op(BACKUP_CHECK, "globex", "", 0, &o, false);
	ok(!o.ok && !o.retry, "a tenant without backups fails");
	contains(o.error, "tenant globex has no verified backup", "saying so");
	outcome_clear(&o);
	ok(backup_catalog_list(ckpt, "acme", 10, &list, &cause), "list");
	snprintf(id, sizeof(id), "%lld",
		 (long long)json_integer_value(
			 json_object_get(json_array_get(list, 0), "id")));
	json_decref(list);
	run_op(BACKUP_CHECK, "acme", id, 0, &o, false);
	ok(!o.ok, "a failed backup is refused by id");
	contains(o.error, "is failed, not verified", "saying it failed");
	outcome_clear(&o);

	run_op(BACKUP_CHECK, "acme", "", 0, &o, false);
	file = var_str(&o, "backup_file");
	f = file ? fopen(file, "a") : NULL;
	if (f != NULL) {
		fputs("tampered\n", f);
		fclose(f);
	}
	outcome_clear(&o);
	run_op(BACKUP_CHECK, "acme", "", 0, &o, false);
	ok(!o.ok && !o.retry, "a file changed after it was made is refused");
	contains(o.error, "has changed since it was made",
		 "its sha256 differs");
	outcome_clear(&o);
	free(name);
	free(cause);
}

/* Replace the catalog hash of backup file by a wrong one: as if the file
 * had been changed after it was verified. */
static void file_append(const char *file, const char *text)
{
	FILE *f = fopen(file, "a");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(file);
		exit(99);
	}
}

/* Finding 2: the TOC of a dump holds only the schema's tables. */
static void test_toc_check(void)
{
	static const char head[] = ";\n; Archive created at 2024-01-01\n;\n"
				   "6; 2615 16387 SCHEMA - tenant_x alice\n";
	static const char *const good[] = {
		"3389; 0 0 COMMENT - SCHEMA tenant_x alice",
		"219; 1259 16414 TABLE tenant_x p alice",
		"3390; 0 0 ACL tenant_x TABLE p alice",
		"3392; 0 0 COMMENT tenant_x COLUMN t.v alice",
		"215; 1259 16389 SEQUENCE tenant_x t_id_seq alice",
		"3395; 0 0 SEQUENCE OWNED BY tenant_x t_id_seq alice",
		"3223; 0 0 TABLE ATTACH tenant_x p1 alice",
		"3224; 2604 16393 DEFAULT tenant_x t id alice",
		"3382; 0 16417 TABLE DATA tenant_x p1 alice",
		"3396; 0 0 SEQUENCE SET tenant_x t_id_seq alice",
		"3229; 2606 16397 CONSTRAINT tenant_x t t_pkey alice",
		"3228; 2606 16396 CHECK CONSTRAINT tenant_x t c2 alice",
		"3231; 1259 16420 INDEX tenant_x p_k_idx alice",
		"3233; 0 0 INDEX ATTACH tenant_x p1_k_idx alice",
		"3234; 3381 16412 STATISTICS tenant_x st alice",
		"3235; 2606 16402 FK CONSTRAINT tenant_x u u_id_fkey alice",
	};
	static const char *const bad[] = {
		"221; 1255 16388 FUNCTION tenant_x ok(integer) alice",
		"222; 1255 16389 PROCEDURE tenant_x p() alice",
		"223; 1255 16390 AGGREGATE tenant_x agg(integer) alice",
		"224; 2617 16391 OPERATOR tenant_x === alice",
		"862; 1247 16426 DOMAIN tenant_x d alice",
		"859; 1247 16423 TYPE tenant_x mood alice",
		"218; 1259 16408 VIEW tenant_x vv alice",
		"3300; 2620 16500 TRIGGER tenant_x t tr alice",
		"3301; 2618 16501 RULE tenant_x t r alice",
		"3302; 3256 16502 POLICY tenant_x t p alice",
		"2060; 826 16413 DEFAULT ACL tenant_x DEFAULT PRIVILEGES FOR TABLES alice",
		"10; 3079 16384 EXTENSION - hstore",
		"11; 2605 16385 CAST - CAST (integer AS text)",
		"12; 3466 16386 EVENT TRIGGER - et alice",
		"213; 1259 16395 TABLE public graph_entities alice",
		"214; 1259 16396 TABLE tenant_xy t alice",
		"3391; 0 0 COMMENT - SCHEMA public alice",
		"7; 2615 16388 SCHEMA - public alice",
		"garbage",
	};
	char *toc, *owner = (char *)"x", *cause = NULL, *want;

	toc = xasprintf("%s", head);
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char *next = xasprintf("%s%s\n", toc, good[i]);

		free(toc);
		toc = next;
	}
	ok(backup_toc_check(toc, "tenant_x", &owner, &cause),
	   "a schema of tables, sequences, constraints, indexes, comments and grants passes the TOC check");
	is_str(owner, "alice", "the schema's owner is taken from its entry");
	free(owner);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *t = xasprintf("%s%s\n%s", head, bad[i], good[1]);
		char *name = xasprintf("refused: %s", bad[i]);

		ok(!backup_toc_check(t, "tenant_x", &owner, &cause), name);
		want = xasprintf("'%s'", bad[i]);
		contains(cause, want, "the cause quotes the entry");
		ok(owner == NULL, "and gives no owner");
		free(want);
		free(name);
		free(t);
	}
	ok(!backup_toc_check(toc + strlen(head), "tenant_x", NULL, &cause),
	   "a TOC without the schema's entry is refused");
	contains(cause, "0 entries for schema tenant_x", "saying so");
	free(toc);
	free(cause);
}

static void test_restore(void)
{
	struct outcome o = { 0 };
	char *file, *args, *text, *outside, *planted, *want;
	FILE *f;

	fake_mode("ok");
	run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, false);
	file = xstrdup(var_str(&o, "backup_file") ? var_str(&o, "backup_file") :
						    "?");
	outcome_clear(&o);
	args = xasprintf("%s/restore.args", tmpdir);
	unlink(args);
	run_op(BACKUP_RESTORE, "acme", file, 0, &o, false);
	ok(o.ok, "a restore succeeds");
	text = slurp(args);
	contains(
		text,
		"--section=pre-data --schema=tenant_acme --no-owner --no-privileges --file=-\n",
		"pg_restore writes the pre-data SQL of the schema only, without owners and grants");
	contains(
		text,
		"--section=data --section=post-data --schema=tenant_acme --no-owner --no-privileges --file=-\n",
		"then the rest");
	free(text);
	free(args);
	args = xasprintf("%s/psql.args", tmpdir);
	text = slurp(args);
	contains(
		text,
		"--single-transaction|-v|schema=tenant_acme|-v|restore_role=|-v|dump_owner=alice|-f|-|",
		"psql runs the script from stdin in one transaction, with the schema, the restore role and the dump's owner");
	free(text);
	free(args);
	args = xasprintf("%s/psql.script", tmpdir);
	text = slurp(args);
	contains(text, "CREATE SCHEMA %I AUTHORIZATION %I",
		 "the script creates the schema for the restore role");
	contains(text, "is a superuser", "refusing a superuser");
	contains(text, "SET ROLE %I", "and becomes that role");
	contains(text, "-- restore script --section=pre-data\n",
		 "then has pg_restore's pre-data SQL");
	contains(text, "pg_catalog.pg_depend",
		 "then the check of what it depends on");
	contains(text, "-- restore script --section=data\n",
		 "then the data and post-data SQL");
	ok(strstr(text, "SET ROLE") < strstr(text, "-- restore script") &&
		   strstr(text, "--section=pre-data") <
			   strstr(text, "pg_catalog.pg_depend") &&
		   strstr(text, "pg_catalog.pg_depend") <
			   strstr(text, "--section=data"),
	   "in that order");
	free(text);
	free(args);
	args = xasprintf("%s/acme", backup_dir);
	is_int(count_files(args, ".sql"), 0,
	       "no script is left in the directory");
	free(args);
	ok(json_object_get(o.result, "restore") != NULL,
	   "the result has the restore");
	outcome_clear(&o);

	outside = xasprintf("%s/elsewhere.dump", tmpdir);
	f = fopen(outside, "w");
	if (f != NULL)
		fclose(f);
	run_op(BACKUP_RESTORE, "acme", outside, 0, &o, false);
	ok(!o.ok && !o.retry,
	   "a file outside the tenant's directory is refused");
	contains(o.error, "is not a backup of tenant acme", "saying so");
	outcome_clear(&o);
	free(outside);

	/* finding 2: a file planted in the directory, without a catalog row */
	planted = xasprintf("%s/acme/planted.dump", backup_dir);
	file_append(planted, "PGDMP tenant_acme\n");
	run_op(BACKUP_RESTORE, "acme", planted, 0, &o, false);
	ok(!o.ok && !o.retry,
	   "finding 2: a dump without a catalog row is refused by the restore");
	contains(o.error, "has no row in tenant acme's backup catalog",
		 "saying so");
	outcome_clear(&o);
	run_op(BACKUP_CHECK, "acme", "planted.dump", 0, &o, false);
	ok(!o.ok && !o.retry, "and by backup_check");
	contains(o.error, "has no backup 'planted.dump' in its catalog",
		 "saying so");
	outcome_clear(&o);
	free(planted);

	/* finding 2: changed after it was verified */
	file_append(file, "changed\n");
	run_op(BACKUP_RESTORE, "acme", file, 0, &o, false);
	ok(!o.ok && !o.retry,
	   "finding 2: a dump changed after it was verified is refused");
	want = xasprintf(
		"restore of %s refused: the file has changed since it was verified: the catalog has sha256 ",
		file);
	contains(o.error, want, "naming the file and the catalog's hash");
	contains(o.error, ", the file now has ", "and the file's");
	free(want);
	outcome_clear(&o);

	/* finding 2: a catalogued dump with a function in the schema */
	fake_mode("function");
	run_op(BACKUP_MAKE, "acme", "tenant_acme", 0, &o, false);
	ok(o.ok, "a dump with a function is backed up");
	free(file);
	file = xstrdup(var_str(&o, "backup_file") ? var_str(&o, "backup_file") :
						    "?");
	outcome_clear(&o);
	args = xasprintf("%s/psql.args", tmpdir);
	unlink(args);
	run_op(BACKUP_RESTORE, "acme", file, 0, &o, false);
	ok(!o.ok && !o.retry,
	   "finding 2: but its restore is refused by the TOC check");
	contains(o.error,
		 "'221; 1255 16388 FUNCTION tenant_acme ok(integer) alice'",
		 "naming the entry");
	ok(access(args, F_OK) != 0, "psql never ran");
	free(args);
	outcome_clear(&o);
	fake_mode("ok");
	free(file);
}

/* Retention: by count and by age, verified backups only, never the newest. */
static void test_retention(void)
{
	char *cause = NULL, *dir = xasprintf("%s/ret", backup_dir);
	double now = wall_seconds();
	unsigned removed = 99;
	json_t *list = NULL;
	/* ages in days; the failed one is the oldest */
	const struct {
		double age_days;
		const char *status;
	} rows[] = {
		{ 0.1, "verified" }, { 1, "verified" }, { 2, "verified" },
		{ 40, "verified" },  { 50, "failed" },
	};

	mkdir(dir, 0700);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct backup_record rec = { 0 };
		char *file = xasprintf("%s/b%zu.dump", dir, i);
		FILE *f = fopen(file, "w");

		if (f != NULL)
			fclose(f);
		rec.tenant_id = "ret";
		rec.schema = "tenant_ret";
		rec.file = file;
		rec.status = (char *)rows[i].status;
		rec.started_at = now - rows[i].age_days * 86400;
		ok(backup_catalog_add(ckpt, &rec, &cause), "catalog add");
		free(file);
	}
	ok(backup_retention(ckpt, "ret", 0, 30LL * 86400 * 1000, now, &removed,
			    &cause),
	   "retention by age runs");
	is_int(removed, 1, "it removes the verified backup older than 30 days");
	{
		struct backup_record rec;
		bool found = false;

		ok(backup_catalog_find(ckpt, "ret", "b3.dump", &rec, &found,
				       &cause) &&
			   found,
		   "its catalog row stays");
		is_str(found ? rec.status : NULL, "deleted", "marked deleted");
		ok(found && rec.deleted_at == now, "at the time of the run");
		if (found)
			backup_record_clear(&rec);
	}
	{
		char *f3 = xasprintf("%s/b3.dump", dir),
		     *f4 = xasprintf("%s/b4.dump", dir);

		ok(access(f3, F_OK) != 0, "its file is gone");
		ok(access(f4, F_OK) == 0,
		   "a failed backup is left alone, however old");
		free(f3);
		free(f4);
	}
	ok(backup_retention(ckpt, "ret", 2, 0, now, &removed, &cause),
	   "retention by count runs");
	is_int(removed, 1, "keep 2 removes the third verified backup");
	ok(backup_retention(ckpt, "ret", 1, 1, now + 86400 * 365, &removed,
			    &cause),
	   "retention with everything expired runs");
	is_int(removed, 1, "it removes all but the newest verified backup");
	ok(backup_catalog_list(ckpt, "ret", 10, &list, &cause), "list");
	is_str(json_string_value(
		       json_object_get(json_array_get(list, 0), "status")),
	       "verified", "the newest stays verified");
	is_int(json_array_size(list), 5, "every row stays in the catalog");
	is_str(json_string_value(
		       json_object_get(json_array_get(list, 1), "status")),
	       "deleted", "the others are marked deleted");
	json_decref(list);
	is_int(count_files(dir, ".dump"), 2,
	       "the newest and the failed files remain");
	free(dir);
	free(cause);
}

static void cleanup(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	free(cmd);
}

int main(void)
{
	char *pattern;

	log_set_level(LOG_LEVEL_ERROR);
	setup();
	base = event_base_new();
	child_init(base);
	pattern = backup_schema_pattern("we\"ird");
	is_str(pattern, "\"we\"\"ird\"", "schema patterns quote the name");
	free(pattern);
	test_make();
	test_make_failures();
	test_check();
	test_toc_check();
	test_restore();
	test_retention();
	ckpt_close(ckpt);
	event_base_free(base);
	cleanup();
	return done_testing();
}
