/* routing_step.c - which routing step an iteration uses (see routing_step.h). */
#include "reference/routing_step.h"

#include "reference/trace.h"

int ep_routing_varies(const struct ep_routing *r)
{
	return r->kind == EP_ROUTE_ROTATING || r->kind == EP_ROUTE_TRACE;
}

static long gcd(long a, long b)
{
	while (b) {
		long t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int ep_rotating_unit(const struct ep_shape *s, const struct ep_routing *r)
{
	long E = s->num_experts, u = s->num_ranks > 0 && E % s->num_ranks == 0 ? E / s->num_ranks : E;
	int G, M;
	if (ep_routing_groups(s, r, &G, &M))
		u = u / gcd(u, E / G) * (E / G); /* lcm of two divisors of E: one too */
	return u > 0 && u <= E ? (int)u : 1;
}

long ep_routing_step_period(const struct ep_routing *r)
{
	return r->kind == EP_ROUTE_ROTATING && r->rotate_period > 0 ? r->rotate_period : 1;
}

long ep_routing_cycle(const struct ep_shape *s, const struct ep_routing *r)
{
	if (r->kind == EP_ROUTE_TRACE && r->trace)
		return r->trace->num_steps;
	if (r->kind == EP_ROUTE_ROTATING)
		return ep_routing_step_period(r) * (s->num_experts / ep_rotating_unit(s, r));
	return 1;
}

long ep_routing_step(const struct ep_shape *s, const struct ep_routing *r, long j)
{
	if (r->kind == EP_ROUTE_TRACE && r->trace)
		return (r->trace_first + j) % r->trace->num_steps;
	if (r->kind == EP_ROUTE_ROTATING)
		return j % ep_routing_cycle(s, r) / ep_routing_step_period(r);
	return 0;
}

long ep_routing_distinct_steps(const struct ep_shape *s, const struct ep_routing *r, long n)
{
	long c = ep_routing_cycle(s, r), p = ep_routing_step_period(r);
	n = n < c ? n : c;
	return n <= 0 ? 1 : (n + p - 1) / p;
}
