/* notify.h - readiness and status for systemd (sd_notify); without
 * libsystemd, or when not started by systemd, every call does nothing. */
#ifndef PGT_NOTIFY_H
#define PGT_NOTIFY_H

/* Tell systemd the daemon is up: connected and answering (READY=1). */
void notify_ready(void);

/* Tell systemd the daemon is stopping (STOPPING=1). */
void notify_stopping(void);

/* Set the one-line status that `systemctl status` shows (STATUS=...). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
