/* space.c - free-space checks before work that writes much (a backup):
 * statvfs of the directory against an estimate plus a reserve. */
#include "space.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/statvfs.h>

int64_t space_backup_estimate(int64_t last_backup_bytes, int64_t schema_bytes)
{
	if (last_backup_bytes > 0)
		return last_backup_bytes + last_backup_bytes / 4;
	return schema_bytes > 0 ? schema_bytes : 0;
}

bool space_enough(const char *what, const char *path, int64_t free_bytes,
		  int64_t estimate_bytes, int64_t reserve_bytes, char **cause)
{
	/* compared without adding: estimate + reserve may overflow */
	if (free_bytes >= estimate_bytes &&
	    free_bytes - estimate_bytes >= reserve_bytes)
		return true;
	return set_cause(cause,
			 "not enough free space for the %s in '%s': %" PRId64
			 " bytes free, it needs an estimated %" PRId64
			 " bytes and backup_min_free_bytes keeps %" PRId64
			 " bytes free",
			 what, path, free_bytes, estimate_bytes, reserve_bytes);
}

bool space_free_bytes(const char *path, int64_t *free_bytes, char **cause)
{
	struct statvfs st;
	unsigned long long bytes;

	if (statvfs(path, &st) != 0)
		return set_cause(cause,
				 "cannot read the free space of '%s': %s", path,
				 strerror(errno));
	bytes = (unsigned long long)st.f_bavail * st.f_frsize;
	*free_bytes = bytes > INT64_MAX ? INT64_MAX : (int64_t)bytes;
	return true;
}
