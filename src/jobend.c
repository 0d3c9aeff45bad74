/* jobend.c - what a job's row becomes when its run ends, without I/O. */
#include "jobend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum jobend_state jobend_state(enum job_outcome outcome, int attempts,
			       int max_attempts)
{
	switch (outcome) {
	case JOB_SUCCEEDED:
		return JOBEND_SUCCEEDED;
	case JOB_FAILED_RETRY:
		return attempts < max_attempts ? JOBEND_RETRY : JOBEND_FAILED;
	case JOB_FAILED_FINAL:
		return JOBEND_FAILED;
	case JOB_CANCELLED:
		return JOBEND_CANCELLED;
	case JOB_HANDED_BACK:
		return JOBEND_HANDED_BACK;
	case JOB_LOST:
		return JOBEND_LOST;
	}
	return JOBEND_FAILED;
}

const char *jobend_state_name(enum jobend_state state)
{
	static const char *const names[] = {
		[JOBEND_SUCCEEDED] = "succeeded",
		[JOBEND_RETRY] = "queued",
		[JOBEND_FAILED] = "failed",
		[JOBEND_CANCELLED] = "cancelled",
		[JOBEND_HANDED_BACK] = "queued",
		[JOBEND_LOST] = "lost",
	};

	return names[state];
}

char *jobend_cut_error(const char *error, int64_t max)
{
	size_t len = strlen(error), keep;
	char note[64];

	if ((int64_t)len <= max)
		return xstrdup(error);
	snprintf(note, sizeof(note), "... (truncated, %zu bytes)", len);
	keep = (size_t)max > strlen(note) ? (size_t)max - strlen(note) : 0;
	while (keep > 0 && ((unsigned char)error[keep] & 0xc0) == 0x80)
		keep--;
	return xasprintf("%.*s%s", (int)keep, error, note);
}

json_t *jobend_cut_result(json_t *result, int64_t max, size_t *bytes)
{
	char *text;
	size_t len;

	*bytes = 0;
	if (result == NULL)
		return NULL;
	text = json_dumps(result, JSON_COMPACT);
	len = text != NULL ? strlen(text) : 0;
	free(text);
	if ((int64_t)len <= max)
		return json_incref(result);
	*bytes = len;
	return json_pack("{s:b, s:I, s:I}", "truncated", 1, "bytes",
			 (json_int_t)len, "limit", (json_int_t)max);
}
