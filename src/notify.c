/* notify.c - readiness and status for systemd (sd_notify); without
 * libsystemd, or when not started by systemd, every call does nothing. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"

/* Send one state string; sd_notify returns 0 when NOTIFY_SOCKET is unset. */
static void notify_send(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	int rc = sd_notify(0, state);

	if (rc < 0)
		log_debug("sd_notify(\"%s\") failed: error %d", state, -rc);
#else
	(void)state;
#endif
}

void notify_ready(void)
{
	notify_send("READY=1");
}

void notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void notify_status(const char *fmt, ...)
{
	char state[256];
	va_list ap;
	int n;

	n = snprintf(state, sizeof(state), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(state + n, sizeof(state) - (size_t)n, fmt, ap);
	va_end(ap);
	notify_send(state);
}
