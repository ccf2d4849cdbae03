/* eplb_load.h - the per-expert load an EPLB placement is computed from.
 *
 * --eplb-load names it: uniform (every load 1), zipf:S (load_e =
 * 1 / (e + 1)^S, the popularity --routing zipf:S draws from), lognormal:S
 * (load_e = exp(S (z_e - max z)), the very z_e --routing lognormal:S draws
 * from the seed) or a text file (PATH or file:PATH; a bare PATH holds no
 * ':') of one non-negative load per logical expert. Loads are float32, as EPLB takes them.
 */
#ifndef EP_EPLB_LOAD_H
#define EP_EPLB_LOAD_H

#include <stddef.h>
#include <stdint.h>

enum ep_eplb_load_kind { EP_LOAD_UNIFORM, EP_LOAD_ZIPF, EP_LOAD_LOGNORMAL, EP_LOAD_FILE };

struct ep_eplb_load {
	enum ep_eplb_load_kind kind;
	double param;      /* ZIPF: S, LOGNORMAL: sigma */
	char *path;        /* FILE: its path (owned) */
	float *file_loads; /* FILE: [file_n] once read (owned) */
	int file_n;
};

/* Parses an --eplb-load argument into l (a FILE's contents are read later,
 * by ep_eplb_load_read, once E is known). 0 or -EP_EUSAGE with one line
 * quoting the value in err. */
int ep_eplb_load_parse(struct ep_eplb_load *l, const char *arg, char *err, size_t errlen);

/* Reads a load file: one number per logical expert (E of them), each >= 0
 * and finite, separated by blanks, commas or newlines; '#' starts a
 * comment to the end of its line. *loads [E] on success (caller frees);
 * -EP_EUSAGE with one line naming the file and the value in err. */
int ep_eplb_load_file(const char *path, int num_experts, float **loads, char *err, size_t errlen);

/* The loads load[E] of l for seed (FILE: read already, E must match).
 * 0 or -EP_ENOMEM. */
int ep_eplb_load_values(const struct ep_eplb_load *l, int num_experts, uint64_t seed, float *load);

/* "zipf:1.2", "file:PATH", ... */
void ep_eplb_load_text(const struct ep_eplb_load *l, char *buf, size_t len);

/* Frees the path and loads read from a file. */
void ep_eplb_load_free(struct ep_eplb_load *l);

#endif
