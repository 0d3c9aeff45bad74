/* space.h - free-space checks before work that writes much: the free bytes
 * of a directory (statvfs) against an estimate of what the work writes
 * plus a reserve that must stay free. */
#ifndef PGT_SPACE_H
#define PGT_SPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The bytes a backup of a tenant is expected to write: its newest verified
 * backup's size with a quarter more for growth since (last_backup_bytes,
 * 0 if none), else the on-disk size of its schema (schema_bytes, 0 if not
 * known), which a compressed dump does not exceed. */
int64_t space_backup_estimate(int64_t last_backup_bytes, int64_t schema_bytes);

/* Whether free_bytes hold estimate_bytes and still leave reserve_bytes
 * free. On false, cause names what (a sentence start such as "backup of
 * tenant 'acme'"), path, the free bytes, the estimate and the reserve. */
bool space_enough(const char *what, const char *path, int64_t free_bytes,
		  int64_t estimate_bytes, int64_t reserve_bytes, char **cause)
	MUST_CHECK;

/* The bytes an unprivileged process may still write under path
 * (statvfs f_bavail * f_frsize); false with cause if path cannot be
 * examined. */
bool space_free_bytes(const char *path, int64_t *free_bytes, char **cause)
	MUST_CHECK;

#endif
