/* test_slots.c - where a schedule starts after the scheduler (re)connects:
 * from now, in order, catching up once, or skipping what was missed. */
#include <stdlib.h>

#include "cron.h"
#include "slots.h"
#include "unit.h"

/* 2026-12-01 00:00:00 UTC */
#define DAY0 1764547200
#define H 3600

static struct cron hourly, yearly, never_again;

static void parse(const char *text, struct cron *out)
{
	char *cause = NULL;

	if (!cron_parse(text, out, &cause)) {
		printf("Bail out! cannot parse '%s': %s\n", text, cause);
		exit(1);
	}
}

static void test_next_and_newest(void)
{
	is_int(slots_next_after(&hourly, DAY0), DAY0 + H,
	       "hourly: the slot after midnight is 01:00");
	is_int(slots_next_after(&hourly, DAY0 + 1), DAY0 + H,
	       "hourly: after 00:00:01 too");
	is_int(slots_newest(&hourly, DAY0, DAY0 + 5 * H + 30), DAY0 + 5 * H,
	       "hourly: the newest slot in (00:00, 05:00:30] is 05:00");
	is_int(slots_newest(&hourly, DAY0, DAY0 + 30), 0,
	       "hourly: none in (00:00, 00:00:30]");
	is_int(slots_newest(&hourly, DAY0, DAY0 + 400 * 86400),
	       DAY0 + 400 * 86400,
	       "hourly: found after 400 days down (growing windows)");
	is_int(slots_newest(&yearly, DAY0, DAY0 + 30 * 86400), 0,
	       "yearly (1 Jan): none in (1 Dec, 31 Dec]");
	is_int(slots_newest(&yearly, DAY0 - 86400, DAY0 + 40 * 86400),
	       DAY0 + 31 * 86400, "yearly: 1 Jan 2027 in a 41-day window");
	is_int(slots_next_after(&never_again, DAY0), 0,
	       "an expression that never fires (30 Feb): 0");
}

static void test_plan(void)
{
	struct slots_plan p;

	p = slots_plan_start(&hourly, 0, DAY0 + 30 * 60, false, true);
	is_int(p.how, SLOTS_FROM_NOW, "never fired: from now");
	is_int(p.next, DAY0 + H, "... the next slot after now");
	is_int(p.cursor, DAY0 + 30 * 60, "... and nothing before now counts");

	p = slots_plan_start(&hourly, DAY0, DAY0 + 30 * 60, false, true);
	is_int(p.how, SLOTS_IN_ORDER, "fired at 00:00, now 00:30: in order");
	is_int(p.next, DAY0 + H, "... next 01:00");

	p = slots_plan_start(&hourly, DAY0, DAY0 + 5 * H + 60, false, true);
	is_int(p.how, SLOTS_CATCH_UP,
	       "fired at 00:00, now 05:01, no daemon fired lately: catch up");
	is_int(p.next, DAY0 + 5 * H,
	       "... once, with the newest missed (05:00)");
	is_int(p.cursor, DAY0, "... the cursor stays at what was fired");
	is_int(p.newest_missed, DAY0 + 5 * H, "... newest_missed says which");

	p = slots_plan_start(&hourly, DAY0, DAY0 + 5 * H + 60, false, false);
	is_int(p.how, SLOTS_SKIP_MISSED, "the same with catch_up none: skip");
	is_int(p.cursor, DAY0 + 5 * H, "... the missed slots are done with");
	is_int(p.next, DAY0 + 6 * H, "... next 06:00");

	p = slots_plan_start(&hourly, DAY0, DAY0 + 5 * H + 60, true, true);
	is_int(p.how, SLOTS_IN_ORDER,
	       "the same gap while a daemon fired a slot less than a lease ago: a daemon behind, not missed slots");
	is_int(p.next, DAY0 + H, "... every slot in order, from 01:00");
	is_int(p.newest_missed, 0, "... and nothing counts as missed");

	p = slots_plan_start(&hourly, DAY0 + 2 * H, DAY0 + H, false, true);
	is_int(p.how, SLOTS_IN_ORDER,
	       "base ahead of now (a clock behind the database's): in order");
	is_int(p.next, DAY0 + 3 * H, "... after base");

	p = slots_plan_start(&never_again, DAY0, DAY0 + H, false, true);
	is_int(p.next, 0, "an expression that never fires: next 0");
}

int main(void)
{
	parse("TZ=UTC 0 * * * *", &hourly);
	parse("TZ=UTC 0 0 1 1 *", &yearly);
	parse("TZ=UTC 0 0 30 2 *", &never_again);
	test_next_and_newest();
	test_plan();
	return done_testing();
}
