/* test_ckpt.c - the SQLite checkpoint store. */
#include <ctype.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "log.h"
#include "unit.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_ckpt.XXXXXX";

/* Run one PRAGMA on a separate connection and return its text. */
static char *pragma_of(const char *db_path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	char *value = NULL;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) ==
		    SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		value = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return value;
}

/* True if every character of s is a lowercase hex digit. */
static bool all_hex(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return false;
	}
	return true;
}

/* Opening creates the directory, the database in WAL mode and a node id. */
static void test_open(char *node_id, size_t size)
{
	char *dir = xasprintf("%s/state/sub", tmpdir);
	char *db_path = xasprintf("%s/pgtenantd.sqlite", dir);
	char *cause = NULL;
	struct ckpt *ckpt;
	struct stat st;
	char *mode;

	ckpt = ckpt_open(dir, &cause);
	ok(ckpt != NULL, "open creates a missing state_dir");
	if (ckpt == NULL) {
		printf("# %s\n", cause);
		exit(1);
	}
	ok(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700,
	   "state_dir has mode 0700");
	ok(access(db_path, F_OK) == 0, "database file exists");
	mode = pragma_of(db_path, "PRAGMA journal_mode");
	is_str(mode, "wal", "journal_mode is WAL");
	free(mode);
	mode = pragma_of(db_path, "PRAGMA user_version");
	is_str(mode, "3",
	       "schema version 3 (checkpoints, backup catalog, drills)");
	free(mode);
	is_int(strlen(ckpt_node_id(ckpt)), 16, "node id has 16 characters");
	ok(all_hex(ckpt_node_id(ckpt)), "node id is hex");
	snprintf(node_id, size, "%s", ckpt_node_id(ckpt));
	ckpt_close(ckpt);

	ckpt = ckpt_open(dir, &cause);
	ok(ckpt != NULL, "reopen");
	if (ckpt != NULL) {
		is_str(ckpt_node_id(ckpt), node_id, "node id stable on reopen");
		ckpt_close(ckpt);
	}
	free(cause);
	free(dir);
	free(db_path);
}

/* Save then load one step and compare every field. */
static void check_round_trip(struct ckpt *ckpt, const char *last_key,
			     const char *label)
{
	struct ckpt_step in = { 0 }, out;
	char *cause = NULL;
	char name[128];
	bool found = false;

	in.job_id = 42;
	in.step_index = 3;
	snprintf(in.step_name, sizeof(in.step_name), "copy_entities");
	in.last_key = last_key != NULL ? xstrdup(last_key) : NULL;
	in.rows_done = 123456789012LL;
	in.batches = 77;
	in.batch_size = 5000;
	in.done = true;
	in.started_at = 1700000000.25;
	in.updated_at = 1700000100.5;
	in.elapsed_ms = 100250.75;

	snprintf(name, sizeof(name), "save (%s)", label);
	ok(ckpt_save(ckpt, &in, &cause), name);
	snprintf(name, sizeof(name), "load (%s)", label);
	ok(ckpt_load(ckpt, 42, 3, &out, &found, &cause) && found, name);
	snprintf(name, sizeof(name), "last_key (%s)", label);
	if (last_key == NULL)
		ok(out.last_key == NULL, name);
	else
		is_str(out.last_key, last_key, name);
	ok(out.job_id == 42 && out.step_index == 3 &&
		   strcmp(out.step_name, "copy_entities") == 0 &&
		   out.rows_done == 123456789012LL && out.batches == 77 &&
		   out.batch_size == 5000 && out.done &&
		   out.started_at == 1700000000.25 &&
		   out.updated_at == 1700000100.5 &&
		   out.elapsed_ms == 100250.75,
	   "every field round-trips");
	ckpt_step_clear(&out);
	ok(out.last_key == NULL, "clear frees last_key");
	free(in.last_key);
	free(cause);
}

/* Save, load, list and forget checkpoints. */
static void test_save_load(void)
{
	char *dir = xasprintf("%s/state/sub", tmpdir);
	struct ckpt_step step = { 0 }, out;
	char *cause = NULL;
	struct ckpt *ckpt;
	int64_t *ids = NULL;
	unsigned count = 0;
	bool found = true;

	ckpt = ckpt_open(dir, &cause);
	if (!ok(ckpt != NULL, "open for save/load")) {
		printf("# %s\n", cause);
		exit(1);
	}
	check_round_trip(ckpt, NULL, "NULL");
	check_round_trip(ckpt, "", "empty");
	check_round_trip(ckpt, "it's \"quoted\"; DROP TABLE x; --", "quotes");
	check_round_trip(ckpt, "tenant\xc3\xa9/42", "UTF-8");

	ok(!ckpt_load(ckpt, 42, 4, &out, &found, &cause) && !found &&
		   cause == NULL,
	   "missing step: false, not found, no cause");
	ok(!ckpt_load(ckpt, 7, 0, &out, &found, &cause) && !found &&
		   cause == NULL,
	   "missing job: not found");

	step.job_id = 7;
	snprintf(step.step_name, sizeof(step.step_name), "vacuum");
	ok(ckpt_save(ckpt, &step, &cause), "save job 7 step 0");
	step.step_index = 1;
	ok(ckpt_save(ckpt, &step, &cause), "save job 7 step 1");
	step.job_id = 1000000000000LL;
	ok(ckpt_save(ckpt, &step, &cause), "save a large job id");

	ok(ckpt_jobs(ckpt, &ids, &count, &cause), "jobs");
	is_int(count, 3, "three jobs have checkpoints");
	if (count == 3) {
		ok(ids[0] == 7 && ids[1] == 42 && ids[2] == 1000000000000LL,
		   "job ids in order");
	}
	free(ids);

	ok(ckpt_forget(ckpt, 7, &cause), "forget job 7");
	ok(!ckpt_load(ckpt, 7, 1, &out, &found, &cause) && !found,
	   "forgotten step is gone");
	ok(ckpt_load(ckpt, 42, 3, &out, &found, &cause) && found,
	   "other jobs are kept");
	ckpt_step_clear(&out);
	ok(ckpt_jobs(ckpt, &ids, &count, &cause) && count == 2,
	   "two jobs left");
	free(ids);
	ok(ckpt_forget(ckpt, 12345, &cause), "forgetting nothing succeeds");
	ckpt_close(ckpt);

	ckpt = ckpt_open(dir, &cause);
	ok(ckpt != NULL && ckpt_load(ckpt, 42, 3, &out, &found, &cause) &&
		   found,
	   "checkpoints survive reopen");
	if (found)
		ckpt_step_clear(&out);
	ckpt_close(ckpt);
	free(cause);
	free(dir);
}

/* A second open of the same state_dir is refused while the first holds it. */
static void test_lock(void)
{
	char *dir = xasprintf("%s/state/sub", tmpdir);
	char *want = xasprintf("state_dir %s is in use by another pgtenantd"
			       " (pid %ld)",
			       dir, (long)getpid());
	char *cause = NULL;
	struct ckpt *first, *second;
	int fds[2];
	pid_t pid;
	char buf[512] = "";
	ssize_t n;
	int status;

	first = ckpt_open(dir, &cause);
	ok(first != NULL, "first open");
	second = ckpt_open(dir, &cause);
	ok(second == NULL, "second open in the same process fails");
	is_str(cause, want, "the error names the dir and the holder's pid");
	ckpt_close(second);

	if (pipe(fds) != 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		struct ckpt *third;
		char *c = NULL;

		close(fds[0]);
		third = ckpt_open(dir, &c);
		if (write(fds[1], third == NULL && c != NULL ? c : "opened",
			  third == NULL && c != NULL ? strlen(c) : 6) < 0)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	is_str(buf, want, "another process is refused too");

	ckpt_close(first);
	second = ckpt_open(dir, &cause);
	ok(second != NULL, "open succeeds once the first is closed");
	ckpt_close(second);
	free(want);
	free(cause);
	free(dir);
}

/* A state_dir that cannot be a directory gives an error naming it. */
static void test_bad_dir(void)
{
	char *file = xasprintf("%s/plain", tmpdir);
	char *under = xasprintf("%s/state", file);
	char *cause = NULL;
	struct ckpt *ckpt;
	FILE *f;

	f = fopen(file, "w");
	if (f != NULL)
		fclose(f);
	ckpt = ckpt_open(under, &cause);
	ok(ckpt == NULL, "a state_dir under a regular file fails");
	contains(cause, under, "the error names the state_dir");
	contains(cause, "Not a directory", "the error says why");
	ckpt_close(ckpt);

	ckpt = ckpt_open(file, &cause);
	ok(ckpt == NULL, "a state_dir that is a regular file fails");
	contains(cause, file, "the error names it");
	ckpt_close(ckpt);

	ckpt = ckpt_open("", &cause);
	ok(ckpt == NULL, "an empty state_dir fails");
	free(cause);
	free(file);
	free(under);
}

int main(void)
{
	char node_id[32];
	char *cmd;

	log_set_level(LOG_LEVEL_WARNING);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_open(node_id, sizeof(node_id));
	test_save_load();
	test_lock();
	test_bad_dir();
	cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", tmpdir);
	free(cmd);
	return done_testing();
}
