/* error.h - epbench's own error codes, in one X-macro list.
 *
 * Library functions return 0 or a negative code: either -errno from the C
 * library or one of the -EP_E* codes below (all above 1000, so they never
 * collide with errno values). ep_strerror() names both kinds. The list also
 * gives each code the process exit status the CLI maps it to.
 */
#ifndef EP_ERROR_H
#define EP_ERROR_H

#include <stddef.h>

/*      name            value  exit  message */
#define EP_ERROR_LIST(X)                                                       \
	X(EP_EWRONGDATA, 1001, 1, "output differs from the reference")         \
	X(EP_EUSAGE, 1002, 2, "invalid argument")                              \
	X(EP_ENODEV, 1003, 3, "no such device")                                \
	X(EP_ENOMEM, 1004, 3, "not enough memory")                             \
	X(EP_ETIMEDOUT, 1005, 4, "timed out waiting for a peer")               \
	X(EP_EPEERDIED, 1006, 4, "a peer died")                                \
	X(EP_ENOSPC, 1007, 2, "buffer too small for the layout")               \
	X(EP_EMISMATCH, 1008, 2, "configuration differs between peers")        \
	X(EP_ESLOW, 1009, 5, "below the performance threshold")

enum ep_error {
#define EP_ERROR_ENUM(name, value, exit_code, msg) name = value,
	EP_ERROR_LIST(EP_ERROR_ENUM)
#undef EP_ERROR_ENUM
};

/* Process exit statuses (the README's "Exit codes"). */
enum ep_exit {
	EP_EXIT_OK = 0,
	EP_EXIT_WRONG = 1,
	EP_EXIT_USAGE = 2,
	EP_EXIT_ENV = 3,
	EP_EXIT_TIMEOUT = 4,
	EP_EXIT_SLOW = 5,
};

/* When several things go wrong in one run, sweep, suite or acceptance run,
 * the one status reported is the most severe, in this order (defined here
 * once; the sweep footer, the JSON verdict, node jobs and every later runner
 * use ep_exit_worse):
 *   1 wrong data  >  4 timeout / lost rank  >  3 environment  >  2 usage
 *   >  5 below a performance threshold  >  0 pass
 * Wrong data leads: it is the one outcome that proves a defect. A status
 * outside the list (e.g. a killed process's) ranks with 4. */
#define EP_EXIT_SEVERITY {EP_EXIT_WRONG, EP_EXIT_TIMEOUT, EP_EXIT_ENV, EP_EXIT_USAGE, EP_EXIT_SLOW, EP_EXIT_OK}
/* The more severe of two exit statuses. */
int ep_exit_worse(int a, int b);

/* Message for a negative code (ours or -errno); never NULL. */
const char *ep_strerror(int err);
/* Symbolic name ("EP_ETIMEDOUT", "ENOMEM"...) for a negative code. */
const char *ep_errname(int err);
/* Exit status for a negative code: ours from the table, -errno -> 3. */
int ep_error_exit_code(int err);

/* The one line a parser refuses with: formats into err, returns -1. */
int ep_refuse(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
