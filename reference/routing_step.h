/* routing_step.h - routing that changes between iterations: rotating:PERIOD and trace:FILE.
 *
 * An op's iterations are numbered j = 0, 1, ... from its first warm-up
 * iteration (timed iteration i is j = warmup + i), and every op starts over
 * at j = 0, so dispatch and combine replay the same steps. Iteration j
 * routes with step ep_routing_step(j), which ep_gen_routing reads from
 * ep_routing.step:
 *   rotating:P[:S]  step (j / P) mod C. Step 0 is zipf:S exactly; step k
 *                   moves every id of step 0 by k u (mod E), -1 entries
 *                   stay -1. u is one rank's experts, E / R, or under
 *                   group-limited routing lcm(E / R, E / G), so ranks map
 *                   onto ranks and groups onto groups (the group limit
 *                   holds at every step); C = E / u distinct steps.
 *   trace:F[:S0]    step (S0 + j) mod S: the trace's steps in order from
 *                   S0, wrapping after its last. Rank r sends tokens
 *                   [r T, r T + T) of the step, T = --num-tokens (its first
 *                   T_r with --uneven-tokens), so a step needs N >= R T.
 * Steps repeat every ep_routing_cycle iterations and change at most every
 * ep_routing_step_period, so the distinct steps of the first n iterations
 * are those of j = 0, p, 2p, ... below min(n, cycle): the engine checks
 * each of them once before timing (cli/bench.c). Other kinds have one step.
 */
#ifndef EP_ROUTING_STEP_H
#define EP_ROUTING_STEP_H

#include "collectives/ep.h"
#include "reference/inputs.h"

/* Does r change between iterations (rotating, trace)? */
int ep_routing_varies(const struct ep_routing *r);

/* The step iteration j (>= 0) routes with. */
long ep_routing_step(const struct ep_shape *s, const struct ep_routing *r, long j);

/* Iterations per step (P for rotating, 1 otherwise). */
long ep_routing_step_period(const struct ep_routing *r);

/* Iterations after which the steps repeat (1 for a routing that never changes). */
long ep_routing_cycle(const struct ep_shape *s, const struct ep_routing *r);

/* How many distinct steps the first n iterations use; the d-th of them is
 * that of iteration d * ep_routing_step_period(r). */
long ep_routing_distinct_steps(const struct ep_shape *s, const struct ep_routing *r, long n);

/* rotating: the experts one step moves the ids by (u above). */
int ep_rotating_unit(const struct ep_shape *s, const struct ep_routing *r);

#endif
