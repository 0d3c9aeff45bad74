/* test_drill.c - the digests a drill's psql prints and their comparison
 * with what a backup recorded. */
#include <stdlib.h>

#include "drill.h"
#include "unit.h"

static json_t *digests(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);

	if (v == NULL)
		abort();
	return v;
}

static void test_parse(void)
{
	json_t *d = NULL;
	char *cause = NULL;

	ok(drill_parse_output(
		   "ignored\n" DRILL_MARKER
		   "{\"t\": {\"rows\": 1, \"hash\": \"x\"}}\n" DRILL_MARKER
		   "{\"t\": {\"rows\": 2, \"hash\": \"y\"}}\n",
		   &d, &cause),
	   "the marker line parses");
	is_int(json_integer_value(
		       json_object_get(json_object_get(d, "t"), "rows")),
	       2, "the last marker line counts");
	json_decref(d);
	ok(drill_parse_output(DRILL_MARKER "{}", &d, &cause) &&
		   json_object_size(d) == 0,
	   "a schema without tables parses, without a newline at the end");
	json_decref(d);
	ok(!drill_parse_output("SET\nBEGIN\n", &d, &cause) && d == NULL,
	   "no marker line is refused");
	contains(cause, "printed no digests", "the cause says what is missing");
	ok(!drill_parse_output(DRILL_MARKER "{\"t\": ", &d, &cause),
	   "broken JSON is refused");
	contains(cause, "not JSON", "the cause says it is not JSON");
	ok(!drill_parse_output(DRILL_MARKER
			       "{\"t\": {\"rows\": -1, \"hash\": \"x\"}}",
			       &d, &cause),
	   "negative rows are refused");
	contains(cause, "table 't'", "the cause names the table");
	ok(!drill_parse_output(DRILL_MARKER "[1]", &d, &cause),
	   "an array is refused");
	free(cause);
}

static void test_compare(void)
{
	json_t *rec = digests("{\"a\": {\"rows\": 3, \"hash\": \"h1\"},"
			      " \"b\": {\"rows\": 0, \"hash\": \"h0\"}}");
	json_t *same = digests("{\"b\": {\"rows\": 0, \"hash\": \"h0\"},"
			       " \"a\": {\"rows\": 3, \"hash\": \"h1\"}}");
	json_t *fewer = digests("{\"a\": {\"rows\": 2, \"hash\": \"h2\"},"
				" \"b\": {\"rows\": 0, \"hash\": \"h0\"}}");
	json_t *changed = digests("{\"a\": {\"rows\": 3, \"hash\": \"h9\"},"
				  " \"b\": {\"rows\": 0, \"hash\": \"h0\"}}");
	json_t *missing = digests("{\"a\": {\"rows\": 3, \"hash\": \"h1\"}}");
	json_t *extra = digests("{\"a\": {\"rows\": 3, \"hash\": \"h1\"},"
				" \"b\": {\"rows\": 0, \"hash\": \"h0\"},"
				" \"c\": {\"rows\": 7, \"hash\": \"h7\"}}");
	json_t *many_rec = digests("{\"a\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"b\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"c\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"d\": {\"rows\": 1, \"hash\": \"x\"},"
				   " \"e\": {\"rows\": 1, \"hash\": \"x\"}}");
	json_t *many_have = digests("{\"a\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"b\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"c\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"d\": {\"rows\": 2, \"hash\": \"x\"},"
				    " \"e\": {\"rows\": 2, \"hash\": \"x\"}}");
	char *cause = NULL;

	ok(drill_compare(rec, same, &cause),
	   "equal digests in another order pass");
	ok(!drill_compare(rec, fewer, &cause), "a missing row fails");
	contains(
		cause,
		"1 table differs from what the backup recorded: table a: the backup recorded 3 rows, the restored copy has 2",
		"the cause names the table and both counts");
	ok(!drill_compare(rec, changed, &cause), "a changed row fails");
	contains(
		cause,
		"table a: same 3 rows, but the backup recorded hash h1 and the restored rows hash to h9",
		"the cause names the table and both hashes");
	ok(!drill_compare(rec, missing, &cause), "a missing table fails");
	contains(
		cause,
		"table b: the backup recorded 0 rows, the restored copy has no such table",
		"the cause names the missing table");
	ok(!drill_compare(rec, extra, &cause), "an extra table fails");
	contains(
		cause,
		"table c: in the restored copy (7 rows) but not recorded in the backup",
		"the cause names the extra table");
	ok(!drill_compare(many_rec, many_have, &cause),
	   "five differences fail");
	contains(cause, "5 tables differ", "the cause counts them all");
	contains(cause, "; and 2 more", "and names only the first three");
	free(cause);
	json_decref(rec);
	json_decref(same);
	json_decref(fewer);
	json_decref(changed);
	json_decref(missing);
	json_decref(extra);
	json_decref(many_rec);
	json_decref(many_have);
}

static void test_summary(void)
{
	json_t *d = digests("{\"a\": {\"rows\": 3, \"hash\": \"h\"},"
			    " \"b\": {\"rows\": 0, \"hash\": \"h\"}}");
	json_t *none = digests("{}");
	char *text = drill_summary(d);

	is_str(text, "a 3 rows, b 0 rows", "the summary lists the tables");
	free(text);
	text = drill_summary(none);
	is_str(text, "no tables", "an empty schema says so");
	free(text);
	json_decref(d);
	json_decref(none);
}

int main(void)
{
	test_parse();
	test_compare();
	test_summary();
	return done_testing();
}
