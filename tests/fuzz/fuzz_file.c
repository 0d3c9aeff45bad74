/* fuzz_file.c - helpers of the fuzz targets: input files and failed
 * properties. */
#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static char *fuzz_dir;	/* NULL until the first file */
static char *fuzz_path; /* the file written last, or NULL */

/* Remove the file and the temporary directory at exit. */
static void fuzz_cleanup(void)
{
	if (fuzz_path != NULL)
		unlink(fuzz_path);
	if (fuzz_dir != NULL)
		rmdir(fuzz_dir);
	free(fuzz_path);
	free(fuzz_dir);
}

/* Write the input to name in the private directory. */
const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	char *path;
	FILE *f;

	if (fuzz_dir == NULL) {
		fuzz_dir =
			xasprintf("%s/pgt-fuzz.XXXXXX",
				  tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
		if (mkdtemp(fuzz_dir) == NULL) {
			fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_dir,
				strerror(errno));
			abort();
		}
		atexit(fuzz_cleanup);
	}
	path = xasprintf("%s/%s", fuzz_dir, name);
	if (fuzz_path != NULL && strcmp(path, fuzz_path) != 0)
		unlink(fuzz_path);
	free(fuzz_path);
	fuzz_path = path;
	f = fopen(path, "wb");
	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) ||
	    fclose(f) != 0) {
		fprintf(stderr, "fuzz: cannot write %s: %s\n", path,
			strerror(errno));
		abort();
	}
	return path;
}

/* Report a property that does not hold and abort. */
void fuzz_fail(const char *file, int line, const char *cond, const char *what)
{
	fprintf(stderr, "fuzz: %s:%d: property failed: %s (%s)\n", file, line,
		what, cond);
	abort();
}
