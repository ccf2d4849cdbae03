/* cases.c - expands --case FILE into the options the file holds. */
#include "cli/cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/text_file.h"

#define MAX_CASE_BYTES (64 * 1024)

/* Reads a case file and blanks its comments; returns a malloc'd string. */
static char *read_case(const char *path, char *err, size_t errlen)
{
	char *text;
	size_t len;
	if (ep_text_file_read("case file", path, MAX_CASE_BYTES, &text, &len, err, errlen))
		return NULL;
	for (char *c = text; *c; c++)
		if (*c == '#')
			while (*c && *c != '\n')
				*c++ = ' ';
	return text;
}

int ep_cases_expand(int argc, char **argv, int *out_argc, char ***out, char **storage,
		    char *err, size_t errlen)
{
	size_t total = 0;
	char *buf = NULL;
	/* First pass: read every case file into one buffer of NUL-separated words. */
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;
		if (strcmp(argv[i], "--case") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '--case' needs a value");
				goto bad;
			}
			path = argv[++i];
		} else if (strncmp(argv[i], "--case=", 7) == 0) {
			path = argv[i] + 7;
		}
		if (!path)
			continue;
		char *text = read_case(path, err, errlen);
		if (!text)
			goto bad;
		size_t len = strlen(text);
		if (len && strncmp(text + strspn(text, " \t\r\n"), "--", 2) != 0 &&
		    text[strspn(text, " \t\r\n")] != '-' && text[strspn(text, " \t\r\n")] != 0) {
			char q[256];
			snprintf(err, errlen, "case file '%s' must hold options (starting with '-')",
				 ep_quote(path, q, sizeof(q)));
			free(text);
			goto bad;
		}
		char *nb = realloc(buf, total + len + 2);
		if (!nb) {
			free(text);
			snprintf(err, errlen, "out of memory");
			goto bad;
		}
		buf = nb;
		memcpy(buf + total, text, len);
		buf[total + len] = '\n'; /* files end a word even without a final newline */
		buf[total + len + 1] = 0; /* strtok below stops here */
		total += len + 1;
		free(text);
	}
	size_t words = 0;
	for (size_t k = 0; k < total; k++)
		if ((k == 0 || strchr(" \t\r\n", buf[k - 1])) && !strchr(" \t\r\n", buf[k]))
			words++;
	char **v = calloc((size_t)argc + words + 1, sizeof(char *));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	int n = 0;
	v[n++] = argv[0];
	/* Case options first, in order, so the command line can override them. */
	for (char *tok = buf ? strtok(buf, " \t\r\n") : NULL; tok; tok = strtok(NULL, " \t\r\n"))
		v[n++] = tok;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--case") == 0) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--case=", 7) == 0)
			continue;
		v[n++] = argv[i];
	}
	v[n] = NULL;
	*out_argc = n;
	*out = v;
	*storage = buf;
	return 0;
bad:
	free(buf);
	return -EP_EUSAGE;
}
