/* supervise.c - polls a point's rank processes and says why a point ended. */
#define _GNU_SOURCE
#include "cli/supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli/state_block.h"
#include "collectives/error.h"

#define POLL_NS (10 * 1000 * 1000LL)
#define STALL_GRACE_S 5.0

static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t state_asked; /* SIGUSR1: print the state block, go on */

void ep_launcher_interrupt(int sig)
{
	interrupted = sig;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		state_asked = 1;
	else
		interrupted = sig;
}

void ep_launcher_catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_flags = SA_RESTART; /* a state request must not cut a blocking call short */
	sigaction(SIGUSR1, &sa, NULL);
}

int ep_launcher_interrupted(void)
{
	return (int)interrupted;
}

int ep_launcher_state_requested(void)
{
	int asked = state_asked;
	state_asked = 0;
	return asked;
}

void ep_kill_all(struct ep_child *kids, int n)
{
	for (int r = 0; r < n; r++)
		if (kids[r].pid > 0 && !kids[r].done)
			kill(kids[r].pid, SIGKILL);
	for (int r = 0; r < n; r++)
		if (kids[r].pid > 0 && !kids[r].done) {
			while (waitpid(kids[r].pid, &kids[r].status, 0) < 0 && errno == EINTR)
				;
			kids[r].done = 1;
		}
}

/* "0,2,5": the ranks (global) of those waiting for local rank r, into buf. */
static void waiters_of(const struct ep_sync *s, int r, int base, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int q = 0; q < s->num_ranks; q++) {
		struct ep_rank_view v;
		ep_sync_view(s, q, &v);
		if (q != r && v.waiting_on == r && n + 12 < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%d", n ? "," : "", base + q);
	}
}

/* Message for the first rank that failed. */
static void describe_failure(const struct ep_sync *s, int r, int base, int status, char *msg,
			     size_t len)
{
	struct ep_rank_view v;
	char waiters[128];
	ep_sync_view(s, r, &v);
	waiters_of(s, r, base, waiters, sizeof(waiters));
	if (WIFSIGNALED(status))
		snprintf(msg, len, "rank %d (pid %d) was killed by signal %d (%s) in phase %s%s%s%s", base + r,
			 v.pid, WTERMSIG(status), strsignal(WTERMSIG(status)), v.phase,
			 waiters[0] ? "; ranks " : "", waiters, waiters[0] ? " were waiting for it" : "");
	else if (v.message[0])
		snprintf(msg, len, "%s", v.message);
	else
		snprintf(msg, len, "rank %d exited with status %d in phase %s", base + r, WEXITSTATUS(status),
			 v.phase);
}

/* Message when nobody progresses: every rank's phase, and whom it waits for. */
static void describe_stall(const struct ep_sync *s, int base, double secs, char *msg, size_t len)
{
	size_t n = (size_t)snprintf(msg, len, "no rank made progress for %.0f s:", secs);
	for (int r = 0; r < s->num_ranks && n + 80 < len; r++) {
		struct ep_rank_view v;
		ep_sync_view(s, r, &v);
		if (v.waiting_on >= 0)
			n += (size_t)snprintf(msg + n, len - n, " rank %d in %s waits for rank %d;", base + r,
					      v.phase, base + v.waiting_on);
		else
			n += (size_t)snprintf(msg + n, len - n, " rank %d in %s;", base + r, v.phase);
	}
}

/* When each rank last made progress, as the supervisor saw it. */
struct watch {
	uint64_t progress;
	int64_t since_ns;
};

/* Updates w; returns the sum of every rank's progress counter. */
static uint64_t watch_update(struct watch *w, const struct ep_sync *s, int64_t now)
{
	uint64_t sum = 0;
	for (int r = 0; r < s->num_ranks; r++) {
		struct ep_rank_view v;
		ep_sync_view(s, r, &v);
		if (v.progress != w[r].progress || !w[r].since_ns)
			w[r].progress = v.progress, w[r].since_ns = now;
		sum += v.progress;
	}
	return sum;
}

/* After another node's failure: which of this node's ranks held the others
 * up, appended to msg as "; on node N, rank ...". A rank whose process is
 * stopped (SIGSTOP, a debugger) is named as such; otherwise a rank that
 * local peers wait for, that waits for no one here and has made no
 * progress for a second is stalled (wedged or starved). A network wait
 * that timed out on another node often blames a rank here that was merely
 * waiting for such a rank, so this view goes with the message. With a
 * timeout, the deadline in force is named too. */
static void describe_local_stall(const struct ep_sync *s, const struct ep_child *kids,
				 const struct watch *w, int base, int code, double timeout_s, int64_t now,
				 char *msg, size_t len)
{
	size_t n = strlen(msg);
	int found = 0;
	char *pairs = strstr(msg, "; missing pairs: "); /* the state block lists them; a stalled rank here says more */
	if (pairs && n + 200 >= len)
		*pairs = '\0', n = strlen(msg);
	for (int r = 0; r < s->num_ranks && n + 200 < len; r++) {
		struct ep_rank_view v;
		char waiters[128], st = kids[r].done ? 'X' : ep_proc_state(kids[r].pid);
		double idle = (double)(now - w[r].since_ns) * 1e-9;
		int stopped = st == 'T' || st == 't';
		ep_sync_view(s, r, &v);
		waiters_of(s, r, base, waiters, sizeof(waiters));
		if (!stopped && (!waiters[0] || v.waiting_on >= 0 || idle < 1.0))
			continue;
		if (!found++)
			n += (size_t)snprintf(msg + n, len - n, "; on node %d", base / s->num_ranks);
		n += (size_t)snprintf(msg + n, len - n, ", rank %d %s for %.1f s in phase %s", base + r,
				      stopped ? "is stopped (SIGSTOP or a debugger): no progress" : "made no progress",
				      idle, v.phase);
		if (waiters[0])
			n += (size_t)snprintf(msg + n, len - n, " (ranks %s wait for it)", waiters);
	}
	if (code == EP_EXIT_TIMEOUT && n + 96 < len)
		snprintf(msg + n, len - n, "; --timeout %.1f s (network waits give up 1 s earlier)", timeout_s);
}

/* A rank exited: 0 to go on, else the point's status (msg says why). */
static int reaped(struct ep_child *kids, int n, int r, int status, const struct ep_sync *s, int base,
		  int *code, char *msg, size_t len)
{
	(void)n;
	kids[r].done = 1;
	kids[r].status = status;
	int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (exit_code == EP_EXIT_OK)
		return 0;
	if (exit_code == EP_EXIT_WRONG) {
		struct ep_rank_view v;
		ep_sync_view(s, r, &v);
		if (!msg[0] && v.message[0]) /* wrong data found by the protocol, not by a check */
			snprintf(msg, len, "%s", v.message);
		*code = EP_EXIT_WRONG;
		return 0;
	}
	describe_failure(s, r, base, status, msg, len);
	return exit_code > 0 ? exit_code : EP_EXIT_TIMEOUT;
}

/* The block is due: printed (across nodes through the hook), and the
 * likely culprit appended to msg (and so to the JSON's error); msg NULL
 * (SIGUSR1): the point goes on. */
static char *last_block; /* the block of the point that ended stuck, for ep_supervise_take_block */

char *ep_supervise_take_block(void)
{
	char *b = last_block;
	last_block = NULL;
	return b;
}

static void state_now(const struct ep_state_scene *sc, const struct ep_watch_hooks *hk, const char *why, char *msg,
		      size_t len)
{
	char culprit[1024] = "", *text = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&text, &n); /* printed on stderr, and kept for the JSON when the point ends */
	if (hk && hk->state)
		hk->state(hk->arg, why, msg != NULL, sc, out ? out : stderr, culprit, sizeof(culprit));
	else
		ep_state_local(out ? out : stderr, sc, why, culprit, sizeof(culprit));
	if (out && !fclose(out) && text) {
		fputs(text, stderr);
		fflush(stderr);
		if (msg && n)
			free(last_block), last_block = text, text = NULL;
	}
	free(text);
	size_t at = msg ? strlen(msg) : 0;
	if (msg && culprit[0] && at + 16 < len)
		snprintf(msg + at, len - at, "; likely: %s", culprit);
}

int ep_supervise(struct ep_child *kids, int n, const struct ep_sync *s, double timeout_s,
		 const struct ep_watch_hooks *hk, char *msg, size_t len)
{
	int base = hk ? hk->rank_base : 0, remaining = n, code = EP_EXIT_OK, end = 0;
	int64_t last_change = ep_now_ns();
	struct watch *w = calloc((size_t)n, sizeof(*w));
	if (!w) {
		snprintf(msg, len, "out of memory");
		ep_kill_all(kids, n);
		return EP_EXIT_ENV;
	}
	uint64_t last_progress = watch_update(w, s, last_change);
	struct ep_state_scene sc = {s, kids, n, base, hk ? hk->traffic : NULL, hk ? hk->op_names : NULL,
				    hk ? hk->nops : 0};
	while (remaining > 0 && !end) {
		int status, r;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		for (r = 0; pid > 0 && r < n && kids[r].pid != pid; r++)
			;
		if (pid > 0) {
			if (r < n && !(end = reaped(kids, n, r, status, s, base, &code, msg, len)))
				remaining--;
			else if (end == EP_EXIT_TIMEOUT)
				state_now(&sc, hk, "the point ends stuck", msg, len);
			continue;
		}
		if (state_asked) {
			state_asked = 0;
			state_now(&sc, hk, "SIGUSR1; the run goes on", NULL, 0);
		} else if (hk && hk->state) {
			hk->state(hk->arg, NULL, 0, &sc, stderr, NULL, 0); /* answers node 0, if it asked */
		}
		int64_t now = ep_now_ns();
		uint64_t p = watch_update(w, s, now);
		if (hk && hk->tick) {
			struct ep_rank_view v0;
			ep_sync_view(s, 0, &v0);
			hk->tick(hk->tick_arg, &v0);
		}
		if (interrupted) {
			snprintf(msg, len, "interrupted by signal %d", (int)interrupted);
			end = EP_EXIT_TIMEOUT;
		} else if (hk && hk->poll && (end = hk->poll(hk->arg, msg, len))) {
			/* another node failed, or the job was aborted */
			describe_local_stall(s, kids, w, base, end, timeout_s, now, msg, len);
			if (end == EP_EXIT_TIMEOUT && hk->state)
				state_now(&sc, hk, "another node failed", msg, len);
		} else if (p != last_progress) {
			last_progress = p;
			last_change = now;
		} else if ((double)(now - last_change) * 1e-9 > timeout_s + STALL_GRACE_S) {
			describe_stall(s, base, (double)(now - last_change) * 1e-9, msg, len);
			state_now(&sc, hk, "the point ends stuck", msg, len);
			end = EP_EXIT_TIMEOUT;
		}
		struct timespec ts = {0, POLL_NS};
		if (!end)
			nanosleep(&ts, NULL);
	}
	ep_kill_all(kids, n);
	free(w);
	return end ? end : code;
}
