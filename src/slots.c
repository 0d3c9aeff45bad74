/* slots.c - which slot of a schedule fires next, without I/O. */
#include "slots.h"

#include <stddef.h>

#include "cron.h"
#include "util.h"

int64_t slots_next_after(const struct cron *cron, int64_t t)
{
	int64_t next;

	return cron_next(cron, t, &next) ? next : 0;
}

int64_t slots_newest(const struct cron *cron, int64_t base, int64_t now)
{
	static const int64_t windows[] = { 3600, 86400, 32 * 86400, 367 * 86400,
					   0 };

	for (size_t i = 0; i < ARRAY_SIZE(windows); i++) {
		int64_t start = windows[i] == 0 || now - windows[i] < base ?
					base :
					now - windows[i];
		int64_t t = start, last = 0;

		while (cron_next(cron, t, &t) && t <= now)
			last = t;
		if (last != 0 || start == base)
			return last;
	}
	return 0;
}

struct slots_plan slots_plan_start(const struct cron *cron, int64_t base,
				   int64_t now, bool fired_lately,
				   bool catch_up_latest)
{
	struct slots_plan p = { 0 };

	if (base == 0) {
		p.how = SLOTS_FROM_NOW;
		p.cursor = now;
		p.next = slots_next_after(cron, now);
		return p;
	}
	p.cursor = base;
	p.newest_missed = base < now ? slots_newest(cron, base, now) : 0;
	if (p.newest_missed == 0 || fired_lately) {
		p.how = SLOTS_IN_ORDER;
		p.newest_missed = 0;
		p.next = slots_next_after(cron, base);
	} else if (catch_up_latest) {
		p.how = SLOTS_CATCH_UP;
		p.next = p.newest_missed;
	} else {
		p.how = SLOTS_SKIP_MISSED;
		p.cursor = p.newest_missed;
		p.next = slots_next_after(cron, p.newest_missed);
	}
	return p;
}
