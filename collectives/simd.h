/* simd.h - which vector instruction set the row kernels run.
 *
 * The row kernels (normal combine's reduction, low-latency's FP8 cast and
 * fmaf reduction) are compiled once per level from one C body: the same
 * scalar operations in the same order, only wider, so every level gives the
 * same bytes (the kernels' unit tests check each level this CPU has against the
 * scalar formula). The level is chosen once per process, before any rank
 * starts (ranks inherit it across fork): the widest this CPU runs, or the one
 * --simd names. Reading it is a plain load; nothing here blocks or fails at
 * run time.
 */
#ifndef EP_SIMD_H
#define EP_SIMD_H

enum ep_simd {
	EP_SIMD_BASELINE, /* what the build targets: x86-64 SSE2, or any other CPU's baseline */
	EP_SIMD_AVX2,     /* AVX2 with FMA */
	EP_SIMD_AVX512,   /* AVX-512 F and BW, 512-bit vectors */
	EP_SIMD_LEVELS
};

/* Attributes that compile one kernel body for a level (x86-64 only):
 * GCC is told to use 512-bit vectors, which its generic tuning avoids. */
#if defined(__x86_64__)
#define EP_SIMD_AVX2_FN __attribute__((target("avx2,fma")))
#if defined(__clang__)
#define EP_SIMD_AVX512_FN __attribute__((target("avx512f,avx512bw")))
#else
#define EP_SIMD_AVX512_FN __attribute__((target("avx512f,avx512bw,prefer-vector-width=512")))
#endif
#endif

/* The widest level this CPU runs. */
enum ep_simd ep_simd_best(void);

/* 1 if this CPU runs level l. The environment variable EP_SIMD_CPU=LEVEL
 * makes the CPU look as if LEVEL were the widest it runs (to see, on a new
 * machine, what an older one would choose or refuse). */
int ep_simd_runs(enum ep_simd l);

/* The level the kernels use: ep_simd_best() unless ep_simd_use() chose one. */
enum ep_simd ep_simd_active(void);

/* Makes the kernels use level l; -ENOTSUP (and no change) if this CPU cannot run it. */
int ep_simd_use(enum ep_simd l);

/* "baseline", "avx2", "avx512". */
const char *ep_simd_name(enum ep_simd l);

/* Parses "auto" (*l = ep_simd_best()) or a level's name; -EINVAL otherwise. */
int ep_simd_parse(const char *name, enum ep_simd *l);

#endif
