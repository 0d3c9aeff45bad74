/* replay.c - main() for a fuzz target built without libFuzzer: runs the
 * target over every file of the corpus directories (or files) given, or of
 * $top_srcdir/tests/fuzz/corpus/<name> where <name> is the program's name
 * without "fuzz_", and prints TAP, one result per input. make check runs
 * the targets this way, so every seed and every saved crash input stays a
 * regression test, under the sanitizers in the sanitizer build. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

static unsigned tests;

/* Compare two names for qsort. */
static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read a whole file into a malloc'd buffer. */
static bool read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	size_t alloc = 4096, n;

	if (f == NULL)
		return false;
	*data = xmalloc(alloc);
	*size = 0;
	while ((n = fread(*data + *size, 1, alloc - *size, f)) > 0) {
		*size += n;
		if (*size == alloc)
			*data = xrealloc(*data, alloc *= 2);
	}
	fclose(f);
	return true;
}

/* Run the target over one file; a crash ends the program, so reaching the
 * "ok" line is the pass. */
static void replay_file(const char *path)
{
	uint8_t *data;
	size_t size;

	if (!read_file(path, &data, &size)) {
		printf("not ok %u - %s: %s\n", ++tests, path, strerror(errno));
		exit(1);
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	printf("ok %u - %s (%zu bytes)\n", ++tests, path, size);
	fflush(stdout);
}

/* Run the target over every file of a directory, in name order. */
static void replay_dir(const char *dir)
{
	struct dirent *de;
	char **names = NULL;
	size_t count = 0;
	DIR *d = opendir(dir);

	if (d == NULL) {
		printf("not ok %u - %s: %s\n", ++tests, dir, strerror(errno));
		exit(1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), name_cmp);
	for (size_t i = 0; i < count; i++) {
		replay_file(names[i]);
		free(names[i]);
	}
	free(names);
}

/* Replay one path, a file or a directory. */
static void replay(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		replay_dir(path);
	else
		replay_file(path);
}

int main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir");
	const char *name = strrchr(argv[0], '/');
	char *dir;

	name = name != NULL ? name + 1 : argv[0];
	if (strncmp(name, "lt-", 3) == 0)
		name += 3;
	if (strncmp(name, "fuzz_", 5) == 0)
		name += 5;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			replay(argv[i]);
	} else {
		dir = xasprintf("%s/tests/fuzz/corpus/%s",
				top != NULL ? top : ".", name);
		replay(dir);
		free(dir);
	}
	printf("1..%u\n", tests);
	return 0;
}
