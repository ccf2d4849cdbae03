/* spawn.c - a child program under a deadline, with the cluster pumped while it runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/accept/spawn.h"
#include "collectives/sync.h"

static pid_t start(const char *prog, char *const argv[], const char *log_path)
{
	pid_t parent = getpid(), pid = fork();
	if (pid != 0)
		return pid;
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int null = open("/dev/null", O_RDONLY);
	if (fd < 0 || null < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || dup2(null, 0) < 0)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	execvp(prog, argv);
	dprintf(2, "cannot run %s: %s\n", prog, strerror(errno));
	_exit(127);
}

static void stop(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int ep_accept_spawn(const char *prog, char *const argv[], const char *log_path, double deadline_s,
		    ep_pump_fn pump, void *ctx, int *pump_rc, char *msg, size_t len)
{
	int st;
	fflush(NULL);
	msg[0] = 0;
	pid_t pid = start(prog, argv, log_path);
	if (pid < 0)
		return snprintf(msg, len, "fork: %s", strerror(errno)), -1;
	setpgid(pid, pid);
	int64_t end = ep_now_ns() + (int64_t)(deadline_s * 1e9);
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return snprintf(msg, len, "waitpid: %s", strerror(errno)), -1;
		if (ep_now_ns() > end) {
			stop(pid);
			return snprintf(msg, len, "%s ran past its deadline of %g s: killed", argv[0], deadline_s), -2;
		}
		int rc = pump ? pump(ctx, 100, msg, len) : (usleep(20000), 0);
		if (rc) {
			stop(pid);
			*pump_rc = rc;
			return -3;
		}
	}
	if (WIFSIGNALED(st))
		return snprintf(msg, len, "%s was killed by signal %d", argv[0], WTERMSIG(st)), 128 + WTERMSIG(st);
	if (WEXITSTATUS(st) == 127)
		snprintf(msg, len, "%s could not be started (see its log)", argv[0]);
	return WEXITSTATUS(st);
}

void ep_log_tail(const char *path, int n, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	out[0] = 0;
	if (!f)
		return;
	char *buf = calloc(1, len);
	size_t got = buf ? fread(buf, 1, len - 1, f) : 0;
	if (buf && got == len - 1) { /* long log: its end */
		fseek(f, -(long)(len - 1), SEEK_END);
		got = fread(buf, 1, len - 1, f);
	}
	fclose(f);
	if (!buf)
		return;
	buf[got] = 0;
	while (got && buf[got - 1] == '\n')
		buf[--got] = 0;
	char *p = buf + got;
	for (int lines = 0; p > buf; p--)
		if (p[-1] == '\n' && ++lines == n)
			break;
	snprintf(out, len, "%s", p);
	free(buf);
}
