/* iperf.c - one iperf3 test between the two nodes of a pair. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/accept/iperf.h"
#include "collectives/sync.h"

/* The client's JSON: received rates one way and the other, in GB/s. */
static json_t *rates(const char *path)
{
	json_error_t je;
	json_t *r = json_load_file(path, 0, &je), *end = json_object_get(r, "end");
	double fwd = json_number_value(json_object_get(json_object_get(end, "sum_received"), "bits_per_second"));
	double rev = json_number_value(
		json_object_get(json_object_get(end, "sum_received_bidir_reverse"), "bits_per_second"));
	const char *e = json_string_value(json_object_get(r, "error"));
	json_t *out = fwd > 0 && rev > 0 ? json_pack("{s:f, s:f, s:f}", "gbps_fwd", fwd / 8e9, "gbps_rev", rev / 8e9,
						      "gbps", (fwd + rev) / 16e9)
					 : json_pack("{s:s}", "error", e ? e : "iperf3 gave no bidirectional rates");
	json_decref(r);
	return out;
}

/* Did the client find no server listening? */
static int refused(const char *path)
{
	json_error_t je;
	json_t *r = json_load_file(path, 0, &je);
	const char *e = json_string_value(json_object_get(r, "error"));
	int no = e && strstr(e, "refused");
	json_decref(r);
	return no;
}

json_t *ep_accept_iperf(int server, const char *server_addr, int port, double seconds, const char *dir, int step,
			ep_pump_fn pump, void *ctx, int *pump_rc)
{
	char log[128], p[16], t[32], msg[256];
	snprintf(log, sizeof(log), "%s/iperf%d.%s", dir, step, server ? "server" : "json");
	snprintf(p, sizeof(p), "%d", port);
	snprintf(t, sizeof(t), "%g", seconds);
	if (server) {
		char *argv[] = {"iperf3", "-s", "-1", "-p", p, NULL};
		int rc = ep_accept_spawn("iperf3", argv, log, seconds + 30, pump, ctx, pump_rc, msg, sizeof(msg));
		return rc == 0 ? json_pack("{s:b}", "served", 1)
			       : json_pack("{s:s}", "error", msg[0] ? msg : "iperf3 server failed");
	}
	char *argv[] = {"iperf3", "-c", (char *)server_addr, "-p", p, "-t", t, "--bidir", "-J", NULL};
	int64_t end = ep_now_ns() + 20 * (int64_t)1000000000;
	for (;;) { /* the server may not listen yet: retry while it is refused (iperf3 -J exits 0 then) */
		int rc = ep_accept_spawn("iperf3", argv, log, seconds + 30, pump, ctx, pump_rc, msg, sizeof(msg));
		if (rc == 0 && refused(log) && ep_now_ns() < end)
			rc = 1;
		if (rc == 0 || *pump_rc || rc == 127 || rc < 0 || ep_now_ns() > end)
			return rc == 0 ? rates(log)
				       : json_pack("{s:s}", "error", rc == 127 ? "iperf3 is not installed here"
									  : msg[0] ? msg : "iperf3 client failed");
		if ((*pump_rc = pump(ctx, 200, msg, sizeof(msg))))
			return json_pack("{s:s}", "error", msg);
	}
}
