/* unit.h - a minimal TAP producer for the unit tests.
 *
 *   int main(void) { ok(1 + 1 == 2, "adds"); is_str(a, "b", "names"); return done_testing(); }
 */
#ifndef PGT_UNIT_H
#define PGT_UNIT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int unit_count;
static int unit_failed;

/* Record one assertion; prints "ok N - name" or "not ok N - name". */
static inline bool unit_ok(bool cond, const char *file, int line,
			   const char *name)
{
	unit_count++;
	printf("%sok %d - %s\n", cond ? "" : "not ", unit_count, name);
	if (!cond) {
		unit_failed++;
		printf("#   Failed test '%s'\n#   at %s line %d.\n", name, file,
		       line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, name) unit_ok((cond), __FILE__, __LINE__, (name))

/* String equality that prints both values on failure (NULL-safe). */
#define is_str(got, want, name)                                                \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		bool same_ =                                                   \
			(g_ == NULL && w_ == NULL) ||                          \
			(g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0);     \
		if (!unit_ok(same_, __FILE__, __LINE__, (name)))               \
			printf("#          got: '%s'\n#     expected: '%s'\n", \
			       g_ ? g_ : "(null)", w_ ? w_ : "(null)");        \
	} while (0)

/* Integer equality that prints both values on failure. */
#define is_int(got, want, name)                                                \
	do {                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(want);       \
		if (!unit_ok(g_ == w_, __FILE__, __LINE__, (name)))            \
			printf("#          got: %lld\n#     expected: %lld\n", \
			       g_, w_);                                        \
	} while (0)

/* Substring check, for error messages. */
#define contains(haystack, needle, name)                                     \
	do {                                                                 \
		const char *h_ = (haystack), *n_ = (needle);                 \
		if (!unit_ok(h_ != NULL && strstr(h_, n_) != NULL, __FILE__, \
			     __LINE__, (name)))                              \
			printf("#     '%s'\n#     does not contain '%s'\n",  \
			       h_ ? h_ : "(null)", n_);                      \
	} while (0)

/* Print the plan and return the exit code for main(). */
static inline int done_testing(void)
{
	printf("1..%d\n", unit_count);
	return unit_failed == 0 ? 0 : 1;
}

#endif
