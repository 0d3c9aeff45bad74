/* fuzz.h - what the fuzz targets share: the libFuzzer entry point (each
 * target defines it), a file to hand loaders that read a path, and the
 * check that aborts with a message when a property does not hold. */
#ifndef PGT_FUZZ_H
#define PGT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input through the code under test; libFuzzer calls this, and
 * replay.c does for each file of a corpus. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write data to a file named name (for example "kind.yaml") in a private
 * temporary directory, replacing the last input, and return its path. */
const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size);

/* Abort with the message if cond is false: a property of the code under
 * test does not hold, which is a finding like a crash. */
#define FUZZ_ASSERT(cond, what)                                       \
	do {                                                          \
		if (!(cond))                                          \
			fuzz_fail(__FILE__, __LINE__, #cond, (what)); \
	} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *what)
	__attribute__((noreturn));

#endif
