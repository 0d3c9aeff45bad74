/* fuzz_config.c - fuzz target: a configuration file through config_load
 * (libyaml, libcyaml and the validation pass). A file is either loaded
 * with every value in bounds, or refused with a cause naming the file. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct config *config;
	const char *path;
	char *cause = NULL;

	if (!quiet) {
		log_set_level(LOG_LEVEL_ERROR);
		quiet = true;
	}
	path = fuzz_write_file("pgtenantd.yaml", data, size);
	config = config_load(path, &cause);
	if (config == NULL) {
		FUZZ_ASSERT(cause != NULL && cause[0] != '\0',
			    "a refused file has a cause");
		FUZZ_ASSERT(strstr(cause, path) != NULL,
			    "the cause names the file");
		free(cause);
		return 0;
	}
	FUZZ_ASSERT(cause == NULL, "no cause on success");
	FUZZ_ASSERT(config->workers >= 1 && config->workers <= 64,
		    "workers in 1..64");
	FUZZ_ASSERT(
		config->state_dir != NULL && config->control_socket != NULL &&
			config->jobs_dir != NULL && config->backup_dir != NULL,
		"the paths have defaults");
	FUZZ_ASSERT(config->database != NULL, "database is set, maybe empty");
	FUZZ_ASSERT(config->heartbeat_ms < config->lease_ms,
		    "the heartbeat is shorter than the lease");
	FUZZ_ASSERT(config->retry_base_ms <= config->retry_max_ms,
		    "retry_base_delay <= retry_max_delay");
	for (unsigned i = 0; i < config->schedule_count; i++)
		FUZZ_ASSERT(config->schedules[i].name != NULL &&
				    config->schedules[i].job != NULL,
			    "a schedule has a name and a job");
	config_free(config);
	return 0;
}
