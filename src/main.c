/* main.c - pgtenantd: command line, background mode, pid file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctlcmd.h"
#include "daemon.h"
#include "jobdef.h"
#include "log.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pgtenantd [-c FILE] [-f] [--check-config]\n\nRuns tenant migration and maintenance jobs enqueued in the\npgtenantd.jobs table of a PostgreSQL database.\n\n  -c, --config FILE   configuration (default %s/pgtenantd.yaml)\n  -f, --foreground    stay in the foreground (logs go to stderr)\n      --check-config  check the configuration and job files, then exit\n      --version       print the version and exit\n  -h, --help          print this help and exit\n",
		SYSCONFDIR);
}

/* Detach from the terminal: fork, new session, stdin from /dev/null. The
 * original process waits until the daemon reports that it started (or why
 * it could not) through *report_fd, and exits with that status. */
static bool daemonize(int *report_fd, char **cause)
{
	int fds[2], fd;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return set_cause(cause, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return set_cause(cause, "fork: %s", strerror(errno));
	if (pid > 0) {
		char buf[4096];
		ssize_t n, len = 0;

		close(fds[1]);
		while (len < (ssize_t)sizeof(buf) - 1 &&
		       (n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
			len += n;
		buf[len] = '\0';
		if (len == 0) {
			fprintf(stderr,
				"pgtenantd: the daemon exited while starting\n");
			_exit(1);
		}
		if (strcmp(buf, "ok") != 0) {
			fprintf(stderr, "pgtenantd: %s\n", buf);
			_exit(1);
		}
		_exit(0);
	}
	close(fds[0]);
	if (setsid() < 0)
		return set_cause(cause, "setsid: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return set_cause(cause, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	*report_fd = fds[1];
	return true;
}

/* Tell the waiting original process how the start went, once. */
static void report_start(int *report_fd, const char *error)
{
	const char *text = error ? error : "ok";

	if (*report_fd < 0)
		return;
	if (write(*report_fd, text, strlen(text)) < 0) {
		/* the parent is gone: nobody to tell */
	}
	close(*report_fd);
	*report_fd = -1;
}

/* Write our pid to path (replacing a stale file). */
static bool write_pid_file(const char *path, char **cause)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return set_cause(cause, "cannot write pid file %s: %s", path,
				 strerror(errno));
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0)
		return set_cause(cause, "cannot write pid file %s: %s", path,
				 strerror(errno));
	return true;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = SYSCONFDIR "/pgtenantd.yaml";
	bool foreground = false, check_only = false;
	struct daemon d = { 0 };
	struct config *config;
	struct jobdefs *defs;
	char *cause = NULL;
	int opt, rc, report_fd = -1;

	while ((opt = getopt_long(argc, argv, "c:fh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'C':
			check_only = true;
			break;
		case 'V':
			printf("pgtenantd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pgtenantd: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	config = config_load(config_path, &cause);
	if (config == NULL) {
		fprintf(stderr, "pgtenantd: %s\n", cause);
		free(cause);
		return 1;
	}
	defs = jobdefs_load_dir(config->jobs_dir, config->batch_target_ms,
				&cause);
	if (defs == NULL) {
		fprintf(stderr, "pgtenantd: %s\n", cause);
		free(cause);
		config_free(config);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration OK; %u job kind(s) in %s:",
		       config_path, defs->count, config->jobs_dir);
		for (unsigned i = 0; i < defs->count; i++)
			printf(" %s", defs->defs[i].kind);
		printf("\n");
		jobdefs_unref(defs);
		config_free(config);
		return 0;
	}

	if (!foreground && !daemonize(&report_fd, &cause))
		goto fail;
	d.config_path = xstrdup(config_path);
	d.foreground = foreground;
	if (!daemon_init(&d, config, defs, ctlcmd_handle, &cause)) {
		config = NULL;
		goto fail;
	}
	/* only now: daemon_init holds the state_dir lock, so a second daemon
	 * cannot get here and overwrite a running daemon's pid file */
	if (d.engine.config->pid_file != NULL &&
	    !write_pid_file(d.engine.config->pid_file, &cause))
		goto fail;
	report_start(&report_fd, NULL);
	rc = daemon_run(&d);
	if (d.engine.config->pid_file != NULL)
		unlink(d.engine.config->pid_file);
	daemon_cleanup(&d);
	free(d.config_path);
	return rc;

fail:
	log_error("%s", cause);
	report_start(&report_fd, cause);
	free(cause);
	if (d.engine.config == NULL && config != NULL) {
		jobdefs_unref(defs);
		config_free(config);
	} else {
		daemon_cleanup(&d);
	}
	free(d.config_path);
	return 1;
}
