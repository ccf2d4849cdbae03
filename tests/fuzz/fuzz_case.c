/* fuzz_case.c - libFuzzer target: case files (cli/cases.c) with any bytes. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "cli/cases.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	int fd = ep_fuzz_file(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	char *argv[] = {"intranode", "-r", "2", "--case", path, "-q", NULL};
	char **out = NULL, *storage = NULL;
	int n = 0;
	if (ep_cases_expand(6, argv, &n, &out, &storage, err, sizeof(err)) == 0) {
		if (n < 3 || out[n] != NULL)
			abort(); /* argv[0] and the command line's options are always kept */
		for (int i = 0; i < n; i++)
			if (!out[i][0])
				abort(); /* no empty words come out of a file */
		free(out);
		free(storage);
	}
	close(fd);
	return 0;
}
