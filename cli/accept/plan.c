/* plan.c - the steps of an acceptance job and the command line each node runs in each. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/accept/accept.h"

static int has_scope(const struct accept_args *a, const char *s)
{
	size_t n = strlen(s);
	for (const char *p = a->scopes; (p = strstr(p, s)); p += n)
		if ((p == a->scopes || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

static int add(struct ep_step *steps, int n, int max, enum ep_step_kind k, int a, int b, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static int add(struct ep_step *steps, int n, int max, enum ep_step_kind k, int a, int b, const char *fmt, ...)
{
	if (n >= max)
		return n;
	va_list ap;
	va_start(ap, fmt);
	steps[n] = (struct ep_step){.kind = k, .a = a, .b = b};
	vsnprintf(steps[n].name, sizeof(steps[n].name), fmt, ap);
	va_end(ap);
	return n + 1;
}

int ep_accept_plan(const struct accept_args *a, struct ep_step *steps, int max)
{
	int N = a->nodes > 0 ? a->nodes : 1, n = add(steps, 0, max, EP_STEP_PREFLIGHT, -1, -1, "preflight");
	if (has_scope(a, "nodes"))
		for (int i = 0; i < N; i++)
			n = add(steps, n, max, EP_STEP_NODE, i, -1, "node %d", i);
	if (has_scope(a, "pairs"))
		for (int i = 0; i < N; i++)
			for (int j = i + 1; j < N; j++)
				n = add(steps, n, max, EP_STEP_PAIR, i, j, "pair %d-%d", i, j);
	if (has_scope(a, "job") && N >= 2) {
		n = add(steps, n, max, EP_STEP_JOB, -1, -1, "job");
		n = add(steps, n, max, EP_STEP_JOB_LL, -1, -1, "job low-latency");
	}
	return n;
}

int ep_step_has(const struct ep_step *s, int node)
{
	switch (s->kind) {
	case EP_STEP_NODE:
		return node == s->a;
	case EP_STEP_PAIR:
		return node == s->a || node == s->b;
	default:
		return 1;
	}
}

int ep_step_port(int base, int index)
{
	return base + 1 + index;
}

/* argv builder: each argument is copied into buf. */
struct args {
	char **argv, *buf;
	size_t len, used;
	int argc;
};

static void push(struct args *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push(struct args *x, const char *fmt, ...)
{
	va_list ap;
	if (x->argc >= EP_ACCEPT_ARGV_MAX - 1 || x->used >= x->len)
		return;
	va_start(ap, fmt);
	int w = vsnprintf(x->buf + x->used, x->len - x->used, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= x->len - x->used)
		return;
	x->argv[x->argc++] = x->buf + x->used;
	x->argv[x->argc] = NULL;
	x->used += (size_t)w + 1;
}

/* The scope's own options (--X-args or --shapes), word by word, after the plan's: the last wins. */
static void scope_args(const struct accept_args *a, struct args *x, enum ep_run_scope scope)
{
	char buf[1024];
	if (!a->run_args[scope] || strlen(a->run_args[scope]) >= sizeof(buf))
		return;
	strcpy(buf, a->run_args[scope]);
	for (char *save, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		push(x, "%s", w);
}

static void common(const struct accept_args *a, struct args *x, const char *json_path, int ll)
{
	push(x, "-t"), push(x, "%d", ll ? a->ll_tokens : a->tokens);
	push(x, "--hidden"), push(x, "%d", a->hidden);
	push(x, "-e"), push(x, "%d", ll ? a->ll_experts : a->experts);
	push(x, "-k"), push(x, "%d", a->topk);
	if (a->groups && !ll)
		push(x, "--num-groups"), push(x, "%d", a->groups), push(x, "--num-topk-groups"), push(x, "%d", a->topk_groups);
	if (ll)
		push(x, "--dtype"), push(x, "fp8");
	push(x, "-n"), push(x, "%d", a->iters), push(x, "-w"), push(x, "%d", a->warmup);
	push(x, "--timeout"), push(x, "%g", a->timeout_s);
	if (a->fault)
		push(x, "--fault"), push(x, "%s", a->fault);
	push(x, "-q"), push(x, "--json"), push(x, "%s", json_path);
}

int ep_step_argv(const struct accept_args *a, const struct ep_step *s, int node, const char *master, int port,
		 const char *json_path, char **argv, char *buf, size_t len)
{
	struct args x = {.argv = argv, .buf = buf, .len = len};
	if (s->kind == EP_STEP_PREFLIGHT || !ep_step_has(s, node))
		return 0;
	if (s->kind == EP_STEP_NODE) {
		push(&x, "intranode"), push(&x, "-r"), push(&x, "%d", a->ranks_per_node);
		common(a, &x, json_path, 0);
		scope_args(a, &x, EP_RUN_NODE);
		return x.argc;
	}
	int pair = s->kind == EP_STEP_PAIR;
	push(&x, s->kind == EP_STEP_JOB_LL ? "low-latency" : "internode");
	push(&x, "--nodes"), push(&x, "%d", pair ? 2 : a->nodes);
	push(&x, "--node-rank"), push(&x, "%d", pair ? node == s->b : node);
	push(&x, "--master"), push(&x, "%s:%d", master, port);
	push(&x, "--ranks-per-node"), push(&x, "%d", a->ranks_per_node);
	push(&x, "--transport"), push(&x, "%s", a->transport);
	if (a->node_addr)
		push(&x, "--node-addr"), push(&x, "%s", a->node_addr);
	if (a->ib_dev)
		push(&x, "--ib-dev"), push(&x, "%s", a->ib_dev);
	if (a->gid_index >= 0)
		push(&x, "--gid-index"), push(&x, "%d", a->gid_index);
	if (a->baseline && !pair) {
		push(&x, "--baseline"), push(&x, "%s", a->baseline);
		if (a->max_regress >= 0)
			push(&x, "--max-regress"), push(&x, "%g", a->max_regress);
	}
	common(a, &x, json_path, s->kind == EP_STEP_JOB_LL);
	scope_args(a, &x, pair ? EP_RUN_PAIR : s->kind == EP_STEP_JOB ? EP_RUN_JOB : EP_RUN_LL);
	return x.argc;
}
