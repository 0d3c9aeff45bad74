/* test_jobend.c - what a job's row becomes when its run ends: the state an
 * outcome leads to, and the error and result cut to their limits. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jobend.h"
#include "unit.h"

static void test_state(void)
{
	is_int(jobend_state(JOB_SUCCEEDED, 1, 3), JOBEND_SUCCEEDED,
	       "succeeded");
	is_int(jobend_state(JOB_FAILED_RETRY, 1, 3), JOBEND_RETRY,
	       "a failure with attempts left is retried");
	is_int(jobend_state(JOB_FAILED_RETRY, 2, 3), JOBEND_RETRY,
	       "... also the second of three");
	is_int(jobend_state(JOB_FAILED_RETRY, 3, 3), JOBEND_FAILED,
	       "the last attempt's failure is final");
	is_int(jobend_state(JOB_FAILED_RETRY, 4, 3), JOBEND_FAILED,
	       "an attempt past max_attempts (lowered meanwhile) is final");
	is_int(jobend_state(JOB_FAILED_FINAL, 1, 3), JOBEND_FAILED,
	       "a final failure is final on attempt 1");
	is_int(jobend_state(JOB_CANCELLED, 1, 3), JOBEND_CANCELLED,
	       "cancelled");
	is_int(jobend_state(JOB_HANDED_BACK, 3, 3), JOBEND_HANDED_BACK,
	       "handed back, even on the last attempt (refunded)");
	is_int(jobend_state(JOB_LOST, 1, 3), JOBEND_LOST, "lost");
	is_str(jobend_state_name(JOBEND_SUCCEEDED), "succeeded",
	       "recorded as succeeded");
	is_str(jobend_state_name(JOBEND_RETRY), "queued",
	       "a retry is recorded as queued");
	is_str(jobend_state_name(JOBEND_HANDED_BACK), "queued",
	       "a hand-back is recorded as queued");
	is_str(jobend_state_name(JOBEND_FAILED), "failed", "failed");
	is_str(jobend_state_name(JOBEND_CANCELLED), "cancelled", "cancelled");
	is_str(jobend_state_name(JOBEND_LOST), "lost", "lost");
}

static void test_cut_error(void)
{
	char big[300], *cut;

	cut = jobend_cut_error("short", 100);
	is_str(cut, "short", "an error under the limit is kept");
	free(cut);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cut = jobend_cut_error(big, 100);
	is_int(strlen(cut) <= 100, 1, "a long error is cut to the limit");
	contains(cut, "... (truncated, 299 bytes)", "and says how long it was");
	free(cut);
	/* "é" is two bytes (c3 a9); the cut may not split it */
	strcpy(big, "");
	for (int i = 0; i < 100; i++)
		strcat(big, "\xc3\xa9");
	cut = jobend_cut_error(big, 60);
	ok(strstr(cut, "\xc3...") == NULL,
	   "a cut never leaves half a UTF-8 character");
	ok(((unsigned char)cut[strcspn(cut, ".") - 1]) == 0xa9,
	   "it ends on a whole character before the note");
	free(cut);
	cut = jobend_cut_error(big, 5);
	contains(cut, "(truncated, 200 bytes)",
		 "a limit shorter than the note keeps only the note");
	free(cut);
}

static void test_cut_result(void)
{
	json_t *small = json_pack("{s:i}", "rows", 3), *got;
	json_t *large = json_object();
	size_t bytes = 99;
	char key[16];

	got = jobend_cut_result(small, 100, &bytes);
	ok(got == small, "a result under the limit is itself");
	is_int(bytes, 0, "... and bytes is 0");
	json_decref(got);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		json_object_set_new(large, key, json_integer(i));
	}
	got = jobend_cut_result(large, 100, &bytes);
	ok(got != large, "a result over the limit is replaced");
	ok(json_is_true(json_object_get(got, "truncated")),
	   "... by a note that it was truncated");
	is_int(json_integer_value(json_object_get(got, "bytes")), bytes,
	       "... with its size");
	ok(bytes > 100, "... which is over the limit");
	is_int(json_integer_value(json_object_get(got, "limit")), 100,
	       "... and the limit");
	json_decref(got);
	ok(jobend_cut_result(NULL, 100, &bytes) == NULL && bytes == 0,
	   "no result stays none");
	json_decref(small);
	json_decref(large);
}

int main(void)
{
	test_state();
	test_cut_error();
	test_cut_result();
	return done_testing();
}
