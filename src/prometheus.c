/* prometheus.c - the daemon's counters (metrics.h) and gauges, rendered as
 * Prometheus text for the control socket's `metrics`. */
#include "prometheus.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "backup.h"
#include "ctl.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "queue.h"
#include "tenants.h"
#include "util.h"

/* Append one metric with its HELP and TYPE lines. */
static void metric(FILE *out, const char *name, const char *type,
		   const char *help, double value)
{
	fprintf(out,
		"# HELP pgtenantd_%s %s\n# TYPE pgtenantd_%s %s\npgtenantd_%s %.17g\n",
		name, help, name, type, name, value);
}

/* Restore drills: the outcomes counted since the start, and from the
 * backup catalog (so across restarts) when the last one passed and failed
 * and how many tenants' newest drill failed. */
static void metrics_restore_drills(FILE *out, const struct daemon *d)
{
	const struct metrics *m = &d->engine.metrics;
	double last_passed, last_failed;
	unsigned failing;
	char *cause = NULL;

	fprintf(out,
		"# HELP pgtenantd_restore_drills_total Restore drills that found a backup and ended, by outcome.\n"
		"# TYPE pgtenantd_restore_drills_total counter\n"
		"pgtenantd_restore_drills_total{outcome=\"passed\"} %" PRIu64
		"\npgtenantd_restore_drills_total{outcome=\"failed\"} %" PRIu64
		"\n",
		m->restore_drills_passed, m->restore_drills_failed);
	if (!backup_catalog_drill_stats(d->engine.ckpt, &last_passed,
					&last_failed, &failing, &cause)) {
		log_warning("metrics: %s", cause);
		free(cause);
		return;
	}
	metric(out, "restore_drill_last_success_timestamp_seconds", "gauge",
	       "When a restore drill last passed (0: never).", last_passed);
	metric(out, "restore_drill_last_failure_timestamp_seconds", "gauge",
	       "When a restore drill last failed (0: never).", last_failed);
	metric(out, "restore_drill_failing_tenants", "gauge",
	       "Tenants whose newest restore drill failed.", failing);
}

/* The Prometheus exposition text of the daemon's counters and gauges. */
char *metrics_render(const struct daemon *d)
{
	const struct metrics *m = &d->engine.metrics;
	unsigned long reconnects = pgconn_reconnects(d->engine.dispatcher);
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		return xstrdup("");
	for (unsigned i = 0; i < d->engine.worker_count; i++)
		reconnects += pgconn_reconnects(d->engine.workers[i].conn);
	metric(out, "up", "gauge", "1 while the daemon runs.", 1);
	metric(out, "database_connected", "gauge",
	       "1 while the dispatcher connection is up.",
	       pgconn_is_ready(d->engine.dispatcher));
	metric(out, "database_reconnects_total", "counter",
	       "Connections re-made after a loss.", (double)reconnects);
	metric(out, "paused", "gauge", "1 while claiming is paused.",
	       d->engine.paused);
	metric(out, "workers", "gauge", "Configured workers.",
	       d->engine.worker_count);
	metric(out, "workers_busy", "gauge", "Workers running a job.",
	       engine_busy_workers(&d->engine));
	metric(out, "jobs_claimed_total", "counter", "Jobs claimed.",
	       (double)m->jobs_claimed);
	metric(out, "jobs_succeeded_total", "counter", "Jobs that succeeded.",
	       (double)m->jobs_succeeded);
	metric(out, "jobs_failed_total", "counter",
	       "Jobs that failed for good.", (double)m->jobs_failed);
	metric(out, "jobs_retried_total", "counter",
	       "Failed attempts queued again with backoff.",
	       (double)m->jobs_retried);
	metric(out, "jobs_cancelled_total", "counter", "Jobs cancelled.",
	       (double)m->jobs_cancelled);
	metric(out, "jobs_handed_back_total", "counter",
	       "Jobs returned to the queue at shutdown.",
	       (double)m->jobs_handed_back);
	metric(out, "jobs_lost_total", "counter",
	       "Job runs abandoned because their job was handed back to the queue without them (a lease lost), their ends not recorded.",
	       (double)m->jobs_lost);
	metric(out, "jobs_ended_late_total", "counter",
	       "Job ends not recorded because another daemon had taken the job over meanwhile (also counted by their outcome).",
	       (double)m->jobs_ended_late);
	metric(out, "job_duration_seconds_sum", "counter",
	       "Run time of ended jobs.", m->job_seconds_sum);
	metric(out, "job_duration_seconds_count", "counter",
	       "Ended jobs timed.", (double)m->job_seconds_count);
	metric(out, "steps_total", "counter", "Steps completed.",
	       (double)m->steps_done);
	metric(out, "batches_total", "counter", "Batches committed.",
	       (double)m->batches_done);
	metric(out, "batch_rows_total", "counter",
	       "Rows processed by batch steps.", (double)m->batch_rows);
	metric(out, "claim_queries_total", "counter", "Claim queries sent.",
	       (double)m->claim_queries);
	metric(out, "notifications_total", "counter", "Notifications received.",
	       (double)m->notifications);
	metric(out, "polls_total", "counter", "Poll timer wake-ups.",
	       (double)m->polls);
	metric(out, "leases_rescued_total", "counter",
	       "Expired leases taken back.", (double)m->leases_rescued);
	metric(out, "history_pruned_total", "counter",
	       "Finished jobs, schedule slots, removed backups' catalog rows and tenant history rows deleted past their age.",
	       (double)m->history_pruned);
	metrics_restore_drills(out, d);
	metric(out, "control_requests_total", "counter",
	       "Control socket requests.", (double)m->ctl_requests);
	metric(out, "control_clients", "gauge",
	       "Connected control socket clients.",
	       d->ctl ? ctl_client_count(d->ctl) : 0);
	tenants_write_metrics(d->tenants, out);
	fclose(out);
	return text;
}
