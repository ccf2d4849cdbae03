/* fuzz_suite.c - libFuzzer target: suite files (reports/suite_file.c) with any bytes.
 * The bytes are fuzz.suite in a private folder that also holds other.suite,
 * so "include other.suite" resolves and "include fuzz.suite" is a loop.
 * Whatever loads must be well formed: names valid and unique, every case a
 * NULL-terminated word list, expectations in range; whatever is refused
 * says why in one line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reports/suite_file.h"

static char dir[64], path[128];

static void remove_dir(void)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/other.suite", dir);
	unlink(p);
	unlink(path);
	rmdir(dir);
}

static int write_file(const char *p, const void *data, size_t size)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = fd >= 0 && (size == 0 || write(fd, data, size) == (ssize_t)size);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

static int setup(void)
{
	static const char other[] = "other_a intranode -r 2\ninclude fuzz.suite\n";
	char p[160];
	snprintf(dir, sizeof(dir), "/tmp/ep_fuzz_suite.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/fuzz.suite", dir);
	snprintf(p, sizeof(p), "%s/other.suite", dir);
	atexit(remove_dir);
	return write_file(p, other, sizeof(other) - 1);
}

static void check(const struct ep_suite *s)
{
	for (int i = 0; i < s->n; i++) {
		const struct ep_suite_case *c = &s->cases[i];
		if (!c->name[0] || c->argc < 1 || c->argv[c->argc] != NULL || c->expect < 0 || c->expect > 5 || c->line < 1)
			abort();
		for (int k = 0; k < c->argc; k++)
			if (!c->argv[k][0])
				abort();
		for (int j = 0; j < i; j++)
			if (!strcmp(s->cases[j].name, c->name))
				abort(); /* names are unique */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready = -1;
	struct ep_suite s;
	char err[512] = "";
	if (ready < 0)
		ready = setup();
	if (ready || write_file(path, data, size))
		return 0;
	if (ep_suite_load(path, &s, err, sizeof(err))) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	check(&s);
	ep_suite_free(&s);
	return 0;
}
