/* backup-int.h - what backup.c (the operations) and backup_catalog.c (the
 * catalog) share and nothing else uses. */
#ifndef PGTENANTD_BACKUP_INT_H
#define PGTENANTD_BACKUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup.h"
#include "util.h"

struct ckpt;

/* The last part of path (after its last '/'). */
const char *backup_base_name(const char *path);

/* t (seconds since the epoch) as UTC text: "2024-01-01T03:00:00Z", or
 * "20240101T030000Z" when compact (file names). */
void backup_utc_text(double t, char *buf, size_t len, bool compact);

/* Note that backup id was read back again at now. */
bool backup_catalog_mark_checked(struct ckpt *ckpt, int64_t id, double now,
				 char **cause) MUST_CHECK;

/* The newest catalog row of tenant_id's backup file (*found false if
 * none). */
bool backup_catalog_find_file(struct ckpt *ckpt, const char *tenant_id,
			      const char *file, struct backup_record *out,
			      bool *found, char **cause) MUST_CHECK;

#endif
