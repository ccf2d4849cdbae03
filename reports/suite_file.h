/* suite_file.h - suite files: a list of epbench cases, one per line, for CI.
 *
 * Format (plain text, UTF-8):
 *   # a comment, to the end of the line (anywhere)
 *   include OTHER.suite          (relative to this file's folder; no loops)
 *   NAME SUBCOMMAND [OPTIONS...] [expect=N] [blame=PLACE] [timeout=S]
 * NAME is unique in the suite ([A-Za-z0-9_.-], up to 63 characters);
 * words are separated by white space (no quoting: paths without spaces);
 * expect=N is the exit status the case must end with (default 0: a
 * fault-injection self-test says expect=1 or expect=4); blame=rankN or
 * blame=rankN:WHAT is where that failure must be found: a line of the
 * case's failure report ("# point ...") must name rank N and, if given,
 * WHAT (a tensor such as recv_x or a phase such as fault.hang) - a fault
 * caught but blamed on the wrong rank fails the case; blame=link: the line
 * must say the likely culprit is a link (link-down, qp-error); timeout=S overrides
 * --case-timeout for this case.
 */
#ifndef EP_SUITE_FILE_H
#define EP_SUITE_FILE_H

#include <stddef.h>

#define EP_SUITE_MAX_CASES 4096
#define EP_SUITE_MAX_WORDS 128

struct ep_suite_case {
	char name[64];
	char file[512];       /* the suite file it came from */
	int line;
	int argc;             /* the subcommand and its options */
	char **argv;          /* NULL-terminated; strings owned by the suite */
	int expect;           /* exit status it must end with */
	char blame[64];       /* "rankN[:WHAT]" as written, or "" */
	int blame_rank;       /* -1: blame=link */
	char blame_what[48];  /* "" or a tensor/phase name */
	double timeout_s;     /* 0: the runner's default */
};

struct ep_suite {
	int n;
	struct ep_suite_case *cases;
	char **texts;         /* every file's text (words point into them) */
	int ntexts;
};

/* Reads path and what it includes. 0, or -EP_EUSAGE with one line in err
 * naming file and line (unknown key, duplicate name, include loop, ...),
 * or -EP_ENOMEM. */
int ep_suite_load(const char *path, struct ep_suite *s, char *err, size_t len);
void ep_suite_free(struct ep_suite *s);

#endif
