/* test_resume.c - what the runner takes from a claimed job row: the
 * progress save_progress writes is accepted, anything else (malformed,
 * forged, inconsistent with the kind) is refused with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobdef.h"
#include "resume.h"
#include "unit.h"
#include "util.h"

/* clang-format off */
static const char kind_yaml[] =
	"description: test kind for resume_parse\n"
	"args:\n"
	"  - name: dry_run\n"
	"    default: \"false\"\n"
	"steps:\n"
	"  - name: plan\n"
	"    sql: SELECT true AS go, 1 AS n\n"
	"    set: [go, n]\n"
	"  - name: backup\n"
	"    when: SELECT :'go'::boolean\n"
	"    backup: \":schema\"\n"
	"  - name: drop\n"
	"    when: SELECT :'go'::boolean\n"
	"    destructive: true\n"
	"    requires: [backup]\n"
	"    sql: DROP SCHEMA IF EXISTS :\"schema\" CASCADE\n"
	"  - name: copy\n"
	"    batch: SELECT NULL::text AS last_key, 0 AS rows\n"
	"  - name: idx\n"
	"    for_each: SELECT 1 AS x\n"
	"    for_each_vars: [x]\n"
	"    sql: SELECT :'x'\n";
/* clang-format on */

static struct jobdef def;

/* Parse a row; returns the cause (NULL if accepted) and checks the
 * outcome against want_ok. */
static char *parse(const char *step, const char *idx, const char *progress,
		   bool want_ok, const char *name, struct resume_point *out)
{
	struct resume_point rp;
	char *cause = NULL;
	bool good = resume_parse(&def, step, idx, progress, &rp, &cause);

	ok(good == want_ok, name);
	if (!good && cause != NULL)
		printf("# %s\n", cause);
	if (good && cause != NULL)
		printf("# accepted, yet a cause: %s\n", cause);
	if (good && out != NULL)
		*out = rp;
	else if (good)
		resume_clear(&rp);
	return cause;
}

/* A refused row: the message names what is wrong. */
static void refused(const char *step, const char *idx, const char *progress,
		    const char *name, const char *needle)
{
	char *cause = parse(step, idx, progress, false, name, NULL);
	char *label = xasprintf("%s: message says '%s'", name, needle);

	contains(cause, needle, label);
	contains(cause, "does not hold what pgtenantd wrote", label);
	free(label);
	free(cause);
}

/* Which position a resumed step takes: the row's unless SQLite holds it
 * back; SQLite ahead of the row is a commit the database lost. */
static void test_pick(void)
{
	int64_t done = -7;

	is_int(resume_pick_batch(0, -1), RESUME_ROW,
	       "batch: no local checkpoint, the row's (the step's start)");
	is_int(resume_pick_batch(5, -1), RESUME_ROW,
	       "batch: no local checkpoint, the row's counters");
	is_int(resume_pick_batch(5, 5), RESUME_ROW, "batch: both agree");
	is_int(resume_pick_batch(5, 4), RESUME_LOCAL,
	       "batch: SQLite behind the row (the crash came between a commit and its SQLite write) wins");
	is_int(resume_pick_batch(5, 9), RESUME_ROW_LOCAL_AHEAD,
	       "batch: SQLite ahead of the row: the row's, and say so");
	is_int(resume_pick_batch(0, 3), RESUME_ROW_LOCAL_AHEAD,
	       "batch: a row without counters is the step's start, even with SQLite at batch 3");

	is_int(resume_pick_for_each(-1, true, -1, &done), RESUME_ROW,
	       "for_each in a transaction, nothing anywhere: the row's");
	is_int(done, 0, "... from the first row");
	is_int(resume_pick_for_each(-1, true, 4, &done), RESUME_ROW_LOCAL_AHEAD,
	       "for_each in a transaction: no row position is the start, SQLite at 4 is ahead");
	is_int(done, 0, "... from the first row");
	is_int(resume_pick_for_each(6, true, 4, &done), RESUME_LOCAL,
	       "for_each in a transaction: SQLite behind the row wins");
	is_int(done, 4, "... from row 4");
	is_int(resume_pick_for_each(6, true, 6, &done), RESUME_ROW,
	       "for_each in a transaction: both at 6");
	is_int(done, 6, "... from row 6");
	is_int(resume_pick_for_each(-1, false, 4, &done), RESUME_LOCAL,
	       "for_each outside a transaction, no row position: SQLite's");
	is_int(done, 4, "... from row 4");
	is_int(resume_pick_for_each(3, false, 8, &done), RESUME_ROW,
	       "for_each outside a transaction: the earlier of the two (the lazily mirrored row)");
	is_int(done, 3, "... from row 3");
	is_int(resume_pick_for_each(8, false, 3, &done), RESUME_LOCAL,
	       "for_each outside a transaction: the earlier of the two (SQLite)");
	is_int(done, 3, "... from row 3");
	is_int(resume_pick_for_each(-1, false, -1, &done), RESUME_ROW,
	       "for_each outside a transaction, nothing anywhere");
	is_int(done, 0, "... from the first row");
}

int main(void)
{
	char dir[] = "/tmp/test_resume.XXXXXX";
	char *path, *cause = NULL;
	struct resume_point rp;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	path = xasprintf("%s/kind.yaml", dir);
	f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	fputs(kind_yaml, f);
	fclose(f);
	if (!ok(jobdef_load_file(path, 1000, &def, &cause), "kind loads"))
		printf("# %s\n", cause);
	unlink(path);
	rmdir(dir);
	free(path);
	if (cause != NULL)
		return done_testing();

	/* What a fresh row and save_progress's rows hold. */
	ok(parse(NULL, "0", "{}", true, "a fresh row", &rp) == NULL,
	   "a fresh row has no cause");
	is_int(rp.step_index, 0, "a fresh row starts at step 0");
	is_int(json_array_size(rp.passed), 0, "nothing passed");
	ok(rp.vars == NULL && !rp.has_batch && !rp.has_for_each,
	   "no vars, no position");
	resume_clear(&rp);
	free(parse(NULL, NULL, NULL, true, "NULL columns are a fresh row",
		   NULL));
	free(parse("drop", "2",
		   "{\"step_index\":2,\"steps_total\":5,\"step\":\"drop\","
		   "\"percent\":40.0,\"vars\":{\"go\":true,\"n\":1,"
		   "\"backup_file\":\"/b/x.dump\",\"backup_id\":3,"
		   "\"backup_sha256\":\"ab\",\"backup_size\":10},"
		   "\"passed\":[\"plan\",\"backup\"]}",
		   true, "a row at the destructive step after its backup",
		   &rp));
	is_int(rp.step_index, 2, "resumes at step 2");
	is_int(json_array_size(rp.passed), 2, "two steps passed");
	ok(json_is_true(json_object_get(rp.vars, "go")), "vars kept");
	resume_clear(&rp);
	free(parse(
		"drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"vars\":{\"go\":false},"
		"\"passed\":[\"plan\"]}",
		true, "a skipped backup (when false) is not in passed", NULL));
	free(parse("copy", "3",
		   "{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],"
		   "\"last_key\":\"0:40\",\"rows_done\":12,\"batches\":4,"
		   "\"batch_size\":10,\"rows_per_s\":1.5}",
		   true, "a batch step's counters", &rp));
	ok(rp.has_batch && rp.batches == 4 && rp.rows_done == 12 &&
		   rp.batch_size == 10 && rp.last_key != NULL &&
		   strcmp(rp.last_key, "0:40") == 0,
	   "batch counters read");
	resume_clear(&rp);
	free(parse("copy", "3",
		   "{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],"
		   "\"last_key\":null,\"rows_done\":0,\"batches\":1}",
		   true, "last_key null", &rp));
	ok(rp.has_batch && rp.last_key == NULL, "no last key");
	resume_clear(&rp);
	free(parse("copy", "3",
		   "{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"]}",
		   true, "a row at a batch step's start", &rp));
	ok(!rp.has_batch, "at the step's start: no counters");
	resume_clear(&rp);
	free(parse("idx", "4",
		   "{\"step_index\":4,\"step\":\"idx\",\"passed\":[\"plan\","
		   "\"copy\"],\"for_each_done\":1,\"for_each_total\":3}",
		   true, "a for_each position", &rp));
	ok(rp.has_for_each && rp.for_each_done == 1, "for_each_done read");
	resume_clear(&rp);
	free(parse(NULL, "5",
		   "{\"step_index\":5,\"steps_total\":5,\"passed\":[\"plan\","
		   "\"copy\",\"idx\"],\"percent\":100}",
		   true, "a row past the last step", NULL));

	/* Finding 4: malformed progress fails the job with a message. */
	refused(NULL, "0", "[]", "finding 4: progress '[]'",
		"progress is not a JSON object");
	refused(NULL, "0", "{\"passed\":[1]}",
		"finding 4: progress {\"passed\":[1]}", "progress.step_index");
	refused("plan", "0",
		"{\"step_index\":0,\"step\":\"plan\",\"passed\":[1]}",
		"finding 4: a number in passed",
		"progress.passed[0] is not a string");
	refused("plan", "0",
		"{\"step_index\":0,\"step\":\"plan\",\"passed\":{}}",
		"finding 4: passed an object",
		"progress.passed is not an array");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"vars\":[]}",
		"finding 4: vars not an object",
		"progress.vars is not an object");
	refused("drop", "2", "{\"step_index\":\"2\",\"step\":\"drop\"}",
		"finding 4: step_index a string", "progress.step_index");
	refused("copy", "3",
		"{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],\"batches\":\"4\"}",
		"finding 4: batches a string",
		"progress.batches is not a non-negative integer");
	refused("copy", "3",
		"{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],\"batches\":-1}",
		"finding 4: negative batches",
		"progress.batches is not a non-negative integer");
	refused("copy", "3",
		"{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],\"batches\":1,\"last_key\":5}",
		"finding 4: last_key a number",
		"progress.last_key is neither a string nor null");
	refused("copy", "3",
		"{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],\"rows_done\":3}",
		"finding 4: counters without batches",
		"without progress.batches");
	refused("idx", "4",
		"{\"step_index\":4,\"step\":\"idx\",\"passed\":[\"plan\",\"copy\"],\"for_each_done\":1.5}",
		"finding 4: for_each_done a real",
		"progress.for_each_done is not a non-negative integer");
	refused("drop", "2", "{\"step_index\":2,\"step\":7}",
		"finding 4: step a number", "progress.step is not a string");
	refused(NULL, "0", "{\"step_index\":0,", "finding 4: not JSON",
		"progress is not JSON");
	refused(NULL, "0", "\"x\"", "finding 4: a JSON string",
		"progress is not");
	refused(NULL, "x", "{}", "finding 4: step_index column not a number",
		"step_index 'x' is not a step of kind");
	refused(NULL, "9", "{}", "finding 4: step_index past the kind",
		"step_index '9' is not a step of kind");
	refused(NULL, "-1", "{}", "finding 4: negative step_index",
		"step_index '-1'");

	/* Finding 1: forged rows cannot steer the job. */
	refused("drop", "2",
		"{\"passed\":[\"backup\"],\"vars\":{\"go\":true,\"schema\":\"billing\"}}",
		"finding 1: the issue's forged drop_tenant progress",
		"progress.step_index");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"backup\"],\"vars\":{\"go\":true}}",
		"finding 1: passed lacks a step without `when`",
		"progress.passed lacks step 'plan'");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\",\"backup\"],\"vars\":{\"go\":true,\"schema\":\"billing\"}}",
		"finding 1: vars cannot set the built-in schema",
		"progress.vars sets 'schema'");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"vars\":{\"tenant_id\":\"b\"}}",
		"finding 1: vars cannot set tenant_id",
		"progress.vars sets 'tenant_id'");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"vars\":{\"job_id\":\"1\"}}",
		"finding 1: vars cannot set job_id",
		"progress.vars sets 'job_id'");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"vars\":{\"dry_run\":\"false\"}}",
		"finding 1: vars cannot set an arg",
		"progress.vars sets 'dry_run'");
	refused("backup", "1",
		"{\"step_index\":1,\"step\":\"backup\",\"passed\":[\"plan\"],\"vars\":{\"go\":true,\"backup_id\":3}}",
		"finding 1: backup outputs only from a backup step before",
		"progress.vars sets 'backup_id'");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"vars\":{\"backup_file\":\"/etc/x\"}}",
		"finding 1: backup outputs of a backup step that did not pass",
		"progress.vars sets 'backup_file'");
	refused("plan", "0",
		"{\"step_index\":0,\"step\":\"plan\",\"passed\":[\"backup\"]}",
		"finding 1: passed names a later step",
		"progress.passed names step 'backup', which is not before");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\",\"drop\"]}",
		"finding 1: passed names the step itself",
		"progress.passed names step 'drop', which is not before");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\",\"nope\"]}",
		"finding 1: passed names an unknown step",
		"progress.passed names 'nope', which is not a step");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\",\"plan\"]}",
		"finding 1: passed names a step twice", "twice");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"plan\",\"passed\":[\"plan\"]}",
		"finding 1: progress.step is not the step at step_index",
		"progress.step 'plan' and the row's step 'drop' are not both step 3");
	refused("plan", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"]}",
		"finding 1: the step column disagrees",
		"the row's step 'plan' are not both step 3");
	refused(NULL, "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"]}",
		"finding 1: no step column", "the row's step '(none)'");
	refused("drop", "2", "{}", "finding 1: step_index without progress",
		"without progress");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"batches\":1}",
		"finding 1: batch counters at a step that is not a batch",
		"is not a batch step");
	refused("copy", "3",
		"{\"step_index\":3,\"step\":\"copy\",\"passed\":[\"plan\"],\"for_each_done\":1}",
		"finding 1: for_each_done at a step without for_each",
		"has no for_each");
	refused("drop", "2",
		"{\"step_index\":2,\"step\":\"drop\",\"passed\":[\"plan\"],\"vars\":{\"\\u001b]0;x\\u0007\":1}}",
		"finding 1: a hostile var name is shown escaped",
		"\\x1b]0;x\\x07");

	jobdef_clear(&def);
	test_pick();
	return done_testing();
}
