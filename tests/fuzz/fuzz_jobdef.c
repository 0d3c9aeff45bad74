/* fuzz_jobdef.c - fuzz target: a job definition file through
 * jobdef_load_file (libyaml, libcyaml, the SQL lexer and the checks of
 * steps and variables). A file is either loaded, with at least one named
 * step, or refused with a cause naming the file. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jobdef.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct jobdef def;
	const char *path;
	char *cause = NULL;

	if (!quiet) {
		log_set_level(LOG_LEVEL_ERROR);
		quiet = true;
	}
	path = fuzz_write_file("fuzz_kind.yaml", data, size);
	if (!jobdef_load_file(path, 1000, &def, &cause)) {
		FUZZ_ASSERT(cause != NULL && cause[0] != '\0',
			    "a refused file has a cause");
		FUZZ_ASSERT(strstr(cause, path) != NULL,
			    "the cause names the file");
		free(cause);
		return 0;
	}
	FUZZ_ASSERT(cause == NULL, "no cause on success");
	FUZZ_ASSERT(strcmp(def.kind, "fuzz_kind") == 0,
		    "the kind is the file's base name");
	FUZZ_ASSERT(def.step_count >= 1, "a job has a step");
	for (unsigned i = 0; i < def.step_count; i++) {
		FUZZ_ASSERT(def.steps[i].name != NULL &&
				    def.steps[i].name[0] != '\0',
			    "every step has a name");
		for (unsigned j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(def.steps[i].name,
					   def.steps[j].name) != 0,
				    "step names are unique");
		if (def.steps[i].type == STEP_BATCH)
			FUZZ_ASSERT(def.steps[i].batch.stmt_count == 1,
				    "a batch is one statement");
		if (def.steps[i].type == STEP_EXEC)
			FUZZ_ASSERT(def.steps[i].argc >= 1 &&
					    def.steps[i].argv[0] != NULL,
				    "exec has a program");
	}
	jobdef_clear(&def);
	return 0;
}
