/* fuzz_ctl.c - fuzz target: one control socket request line through
 * ctl_parse_request, as the daemon hands it over: cut at its first newline,
 * NUL-terminated, possibly with NUL bytes inside. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "fuzz.h"
#include "util.h"

/* True if s is valid UTF-8 (jansson accepts it as a string). */
static bool utf8_ok(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request req;
	char *cause = NULL;
	char *line;

	if (size > CTL_MAX_LINE)
		return 0;
	if (memchr(data, '\n', size) != NULL)
		size = (size_t)((const uint8_t *)memchr(data, '\n', size) -
				data);
	line = xmalloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	if (ctl_parse_request(line, size, &req, &cause)) {
		FUZZ_ASSERT(cause == NULL, "no cause on success");
		FUZZ_ASSERT(req.command != NULL && req.command[0] != '\0',
			    "a request has a command");
		FUZZ_ASSERT(req.argc <= CTL_MAX_ARGS, "at most CTL_MAX_ARGS");
		FUZZ_ASSERT(req.argc == 0 || req.args != NULL,
			    "args is an array");
		FUZZ_ASSERT(utf8_ok(req.command), "the command is UTF-8");
		for (unsigned i = 0; i < req.argc; i++) {
			FUZZ_ASSERT(req.args[i] != NULL, "every arg is set");
			FUZZ_ASSERT(utf8_ok(req.args[i]), "every arg is UTF-8");
		}
		ctl_request_clear(&req);
	} else {
		FUZZ_ASSERT(cause != NULL && cause[0] != '\0',
			    "a refused request has a cause");
		FUZZ_ASSERT(strchr(cause, '\n') == NULL,
			    "the cause is one line");
		FUZZ_ASSERT(utf8_ok(cause),
			    "the cause can go into a JSON response");
		free(cause);
	}
	free(line);
	return 0;
}
