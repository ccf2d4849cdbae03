/* fuzz_result.c - libFuzzer target: result JSON (reports/result_json.c) with any bytes.
 * Whatever it accepts must be a well-formed document: shapes in range, ops
 * named, samples counted; whatever it refuses must say why in one line. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "reports/compare.h"
#include "reports/result_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ep_doc d;
	char err[512] = "";
	if (ep_doc_parse((const char *)data, size, "fuzz.json", &d, err, sizeof(err))) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	for (int i = 0; i < d.npoints; i++) {
		const struct ep_doc_point *p = &d.points[i];
		if (p->ranks < 1 || p->hidden < 1 || p->nops > EP_MAX_OPS)
			abort();
		for (int k = 0; k < p->nops; k++)
			if (!p->ops[k].name[0] || p->ops[k].nsamples < 0 || (p->ops[k].nsamples && !p->ops[k].samples_us))
				abort();
	}
	char why[600];
	ep_compare_comparable(&d, &d, why, sizeof(why)); /* a document is comparable with itself */
	if (d.npoints && ep_compare_comparable(&d, &d, why, sizeof(why)))
		abort();
	ep_doc_free(&d);
	return 0;
}
