/* fuzz_npy.c - libFuzzer target: .npy files (reports/npy.c) with any bytes.
 * Whatever parses must hold exactly its shape's elements; whatever is
 * refused says why in one line. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reports/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ep_npy a;
	char err[512] = "";
	if (ep_npy_parse(data, size, "fuzz.npy", &a, err, sizeof(err))) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	size_t count = 1;
	for (int i = 0; i < a.ndim; i++)
		count *= a.shape[i];
	if (!a.data || a.ndim > EP_NPY_MAX_NDIM || count != a.count || a.count * ep_npy_itemsize(a.dtype) > size)
		abort();
	unsigned char sink = 0;
	for (size_t i = 0; i < a.count * ep_npy_itemsize(a.dtype); i++)
		sink ^= ((unsigned char *)a.data)[i]; /* every byte readable */
	if (sink == 0 && a.count == (size_t)-1)
		abort();
	ep_npy_free(&a);
	return 0;
}
