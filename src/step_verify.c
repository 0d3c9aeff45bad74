/* step_verify.c - the verify step: two queries whose rows must be equal. */
#include "runner-int.h"

#include <stdlib.h>
#include <string.h>

#include "jobdef.h"
#include "pgjson.h"
#include "util.h"

/* Render a result for a mismatch message, cut to a readable size. */
static char *verify_text(const json_t *rows)
{
	char *text = json_dumps(rows, JSON_COMPACT);

	if (text != NULL && strlen(text) > 2000) {
		char *cut = xasprintf("%.2000s... (%zu rows)", text,
				      json_array_size(rows));

		free(text);
		return cut;
	}
	return text ? text : xstrdup("?");
}

/* Both results are in (and the test pause point passed): compare. */
static void runner_verify_compare(struct runner *r)
{
	if (!json_equal(r->actual, r->expected)) {
		char *e = verify_text(r->expected), *a = verify_text(r->actual);

		runner_fail(r, JOB_FAILED_FINAL,
			    "verify failed: expected %s but actual is %s", e,
			    a);
		free(e);
		free(a);
		return;
	}
	runner_step_done_autocommit(r);
}

static void runner_actual_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	json_decref(r->actual);
	r->actual = pgjson_rows(res->res);
	runner_test_pause(r, runner_verify_compare);
}

static void runner_expected_result(const struct pgconn_result *res, void *arg)
{
	struct runner *r = arg;

	if (!runner_query_ok(r, res))
		return;
	json_decref(r->expected);
	r->expected = pgjson_rows(res->res);
	runner_send(r, &r->step->actual.stmts[0], runner_actual_result);
}

void runner_verify_step(struct runner *r)
{
	runner_send(r, &r->step->expected.stmts[0], runner_expected_result);
}
