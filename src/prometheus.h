/* prometheus.h - the control socket's `metrics` answer: the daemon's
 * counters and gauges as Prometheus exposition text. */
#ifndef PGT_PROMETHEUS_H
#define PGT_PROMETHEUS_H

struct daemon;

/* The exposition text of d's counters and gauges. Returns a new string. */
char *metrics_render(const struct daemon *d);

#endif
