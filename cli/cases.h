/* cases.h - case files: options kept in a file, e.g. a model preset.
 *
 * A case file holds command-line options, separated by white space over any
 * number of lines, with '#' starting a comment. `--case FILE` on the command
 * line is replaced by the file's options, so later options override them.
 */
#ifndef EP_CASES_H
#define EP_CASES_H

#include <stddef.h>

/* Expands every `--case FILE` (or --case=FILE) of argv into a new argv
 * (argv[0] kept). On success *out is a malloc'd NULL-terminated array whose
 * strings live in *storage; free both. -EP_EUSAGE with one line in err for a
 * missing or malformed file. */
int ep_cases_expand(int argc, char **argv, int *out_argc, char ***out, char **storage,
		    char *err, size_t errlen);

#endif
