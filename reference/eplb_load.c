/* eplb_load.c - per-expert loads for EPLB (see eplb_load.h). */
#include "reference/eplb_load.h"

#include <errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reference/inputs.h"
#include "reports/text_file.h"

#define LOAD_FILE_MAX ((size_t)64 << 20) /* bytes of text */
/* The salt of --routing lognormal's popularities (reference/inputs.c):
 * the same z_e here, so a placement computed for lognormal:S fits that routing. */
#define LOGNORMAL_SALT 0x4c4f474e4f524dULL

int ep_eplb_load_parse(struct ep_eplb_load *l, const char *arg, char *err, size_t errlen)
{
	char q[256], *end;
	double v = 0;
	free(l->path);
	free(l->file_loads);
	*l = (struct ep_eplb_load){.kind = EP_LOAD_UNIFORM};
	if (strcmp(arg, "uniform") == 0)
		return 0;
	int zipf = strncmp(arg, "zipf:", 5) == 0, logn = strncmp(arg, "lognormal:", 10) == 0;
	if (zipf || logn) {
		const char *num = arg + (zipf ? 5 : 10);
		errno = 0;
		v = strtod(num, &end);
		if (errno || end == num || *end || !(v > 0) || v > (zipf ? 100 : 20)) {
			snprintf(err, errlen, "invalid --eplb-load '%s': %s must be in (0, %d]", ep_quote(arg, q, sizeof(q)),
				 zipf ? "the zipf exponent" : "the lognormal sigma", zipf ? 100 : 20);
			return -EP_EUSAGE;
		}
		*l = (struct ep_eplb_load){.kind = zipf ? EP_LOAD_ZIPF : EP_LOAD_LOGNORMAL, .param = v};
		return 0;
	}
	const char *path = strncmp(arg, "file:", 5) == 0 ? arg + 5 /* as --routing file:PATH spells it */
			 : strchr(arg, ':') ? "" : arg;
	if (!*path) {
		snprintf(err, errlen, "invalid --eplb-load '%s': want uniform, zipf:S, lognormal:SIGMA or a file of loads",
			 ep_quote(arg, q, sizeof(q)));
		return -EP_EUSAGE;
	}
	*l = (struct ep_eplb_load){.kind = EP_LOAD_FILE, .path = strdup(path)};
	if (!l->path) {
		snprintf(err, errlen, "out of memory");
		return -EP_ENOMEM;
	}
	return 0;
}

/* One load token: a finite number >= 0. */
static int parse_load(const char *path, int lineno, const char *tok, float *out, char *err, size_t errlen)
{
	char q[128], qp[256], *end;
	errno = 0;
	double v = strtod(tok, &end);
	if (errno || end == tok || *end || !isfinite(v) || v < 0 || v > 3.4e38) {
		snprintf(err, errlen, "%s:%d: bad load '%s' (want a finite number >= 0)", ep_quote(path, qp, sizeof(qp)),
			 lineno, ep_quote(tok, q, sizeof(q)));
		return -EP_EUSAGE;
	}
	*out = (float)v;
	return 0;
}

int ep_eplb_load_file(const char *path, int num_experts, float **loads, char *err, size_t errlen)
{
	char *text, qp[256];
	size_t len;
	int rc = ep_text_file_read("load file", path, LOAD_FILE_MAX, &text, &len, err, errlen), n = 0, lineno = 0;
	if (rc)
		return rc;
	float *v = malloc(sizeof(float) * (size_t)(num_experts > 0 ? num_experts : 1));
	char *next = len && v ? text : NULL;
	while (!rc && next) {
		char *line = next, *save;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		lineno++;
		line[strcspn(line, "#")] = 0;
		for (char *tok = strtok_r(line, " \t,\r", &save); !rc && tok; tok = strtok_r(NULL, " \t,\r", &save)) {
			float x;
			if ((rc = parse_load(path, lineno, tok, &x, err, errlen)))
				break;
			if (n >= num_experts) {
				snprintf(err, errlen, "load file '%s' has more than %d loads (one per logical expert, --num-experts %d)",
					 ep_quote(path, qp, sizeof(qp)), num_experts, num_experts);
				rc = -EP_EUSAGE;
				break;
			}
			v[n++] = x;
		}
	}
	if (!rc && !v) {
		snprintf(err, errlen, "out of memory reading '%s'", ep_quote(path, qp, sizeof(qp)));
		rc = -EP_ENOMEM;
	} else if (!rc && n != num_experts) {
		snprintf(err, errlen, "load file '%s' has %d loads, want %d (one per logical expert, --num-experts)",
			 ep_quote(path, qp, sizeof(qp)), n, num_experts);
		rc = -EP_EUSAGE;
	}
	free(text);
	if (rc) {
		free(v);
		return rc;
	}
	*loads = v;
	return 0;
}

/* lognormal:S as --routing lognormal:S weighs experts. 0 or -EP_ENOMEM. */
static int lognormal_loads(int E, double sigma, uint64_t seed, float *load)
{
	gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
	double *z = malloc(sizeof(double) * (size_t)(E > 0 ? E : 1)), zmax = -HUGE_VAL;
	int rc = g && z ? 0 : -EP_ENOMEM;
	if (!rc)
		gsl_rng_set(g, (unsigned long)ep_mix64(seed ^ LOGNORMAL_SALT));
	for (int e = 0; !rc && e < E; e++) {
		z[e] = gsl_ran_gaussian(g, 1.0);
		zmax = z[e] > zmax ? z[e] : zmax;
	}
	for (int e = 0; !rc && e < E; e++)
		load[e] = (float)exp(sigma * (z[e] - zmax));
	free(z);
	if (g)
		gsl_rng_free(g);
	return rc;
}

int ep_eplb_load_values(const struct ep_eplb_load *l, int num_experts, uint64_t seed, float *load)
{
	for (int e = 0; e < num_experts; e++) {
		switch (l->kind) {
		case EP_LOAD_UNIFORM: load[e] = 1.0f; break;
		case EP_LOAD_ZIPF: load[e] = (float)pow(e + 1.0, -l->param); break;
		case EP_LOAD_FILE: load[e] = l->file_loads && e < l->file_n ? l->file_loads[e] : 0.0f; break;
		case EP_LOAD_LOGNORMAL: break;
		}
	}
	return l->kind == EP_LOAD_LOGNORMAL ? lognormal_loads(num_experts, l->param, seed, load) : 0;
}

void ep_eplb_load_text(const struct ep_eplb_load *l, char *buf, size_t len)
{
	switch (l->kind) {
	case EP_LOAD_UNIFORM: snprintf(buf, len, "uniform"); break;
	case EP_LOAD_ZIPF: snprintf(buf, len, "zipf:%g", l->param); break;
	case EP_LOAD_LOGNORMAL: snprintf(buf, len, "lognormal:%g", l->param); break;
	case EP_LOAD_FILE: snprintf(buf, len, "file:%s", l->path ? l->path : ""); break;
	}
}

void ep_eplb_load_free(struct ep_eplb_load *l)
{
	free(l->path);
	free(l->file_loads);
	*l = (struct ep_eplb_load){.kind = EP_LOAD_UNIFORM};
}
