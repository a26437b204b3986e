/*
 * neon.c -- pq-dot candidate "neon": aarch64 Advanced SIMD, within the
 * oracle's tolerance. Built only for aarch64 (plugins/pq-dot/CMakeLists.txt).
 *
 * Table build. prepare() transposes the codebook to [j][t][c], so one
 * q register holds the t-th coordinate of 4 centroids. Each sub-space's 256
 * dot products are built 64 centroids at a time in 16 accumulators (of the
 * 32 vector registers) that step through t in increasing order with one
 * fmla each (an ulp or two of 1 - dot from the oracle's Lance order; its
 * rel_tol says why that is far inside the rule). t goes in chunks of
 * PQ_TCHUNK so that the four passes share an L1-sized codebook slice; the
 * last chunk stores 1 - dot.
 *
 * Code sums. Lanes are vectors: 8 rows of codes share two q accumulators,
 * which add the m terms in increasing j starting from 0.0f, the oracle's
 * order, then subtract m - 1 as Lance does. A 256-float table does not fit the
 * 64-byte reach of tbl, so the 8 entries of a step are loaded lane by lane
 * (ld1 {v.s}[k]) and summed with two fadd instead of eight. For m above
 * PQ_SWEEP, sub-spaces go in sweeps over blocks of PQ_BLOCK vectors, each
 * output's running sum waiting in dist between sweeps, which changes no
 * rounding; up to m = 64 one sweep does a whole row, as in pq-l2's avx2.c
 * (whose comment says why).
 *
 * Timed on no aarch64 machine yet: checked for correctness under
 * qemu-aarch64 only (docs/matrix.md), where speed means nothing.
 *
 * Shapes: any m; the last n % 8 vectors take the scalar loop.
 */
#include <arm_neon.h>
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

#define PQ_CENTROIDS 256

typedef struct pq_state {
    const kb_host *host;
    uint64_t n;
    uint32_t d, m, ds;
    float *codebook_t; /* [m][ds][256]: the codebook with c innermost */
    float *table;      /* [m][256], rebuilt by every run */
} pq_state;

/* ---- table build ----------------------------------------------------- */

/* One step of t for 4 centroids: acc += x * q, fused. */
#define PQ_STEP(acc, k) acc = vfmaq_f32(acc, vld1q_f32(x + 4 * (k)), q)
/* After the last chunk of t: the table entry 1 - dot. */
#define PQ_FINISH4(a, b, c, d) \
    do {                       \
        a = vsubq_f32(one, a); \
        b = vsubq_f32(one, b); \
        c = vsubq_f32(one, c); \
        d = vsubq_f32(one, d); \
    } while (0)

/* Rows of t per chunk: a chunk's codebook slice (PQ_TCHUNK x 1 KiB) stays
 * in L1 while the four passes of 64 centroids read it; a whole sub-space's
 * slice (ds KiB, 96 KiB at d = 768, m = 8) would be read four times from L2.
 * Between chunks the running sums wait in the table row, which changes no
 * rounding. */
#define PQ_TCHUNK 16

#define PQ_LOAD4(o, a, b, c, d)  \
    do {                         \
        a = vld1q_f32((o) + 0);  \
        b = vld1q_f32((o) + 4);  \
        c = vld1q_f32((o) + 8);  \
        d = vld1q_f32((o) + 12); \
    } while (0)

/* Named accumulators, not an array: at -O2 GCC keeps small arrays of
 * vectors in memory. */
static void pq_build_table(const pq_state *st, const float *query)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (uint32_t j = 0; j < st->m; j++) {
        const float *qj = query + (size_t)j * st->ds;
        float *row = st->table + (size_t)j * PQ_CENTROIDS;
        const float *xj = st->codebook_t + (size_t)j * st->ds * PQ_CENTROIDS;
        for (uint32_t t0 = 0; t0 < st->ds; t0 += PQ_TCHUNK) {
            const uint32_t te = st->ds - t0 < PQ_TCHUNK ? st->ds : t0 + PQ_TCHUNK;
            for (uint32_t c0 = 0; c0 < PQ_CENTROIDS; c0 += 64) {
                float *o = row + c0;
                float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
                float32x4_t a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0;
                float32x4_t a13 = a0, a14 = a0, a15 = a0;
                if (t0) {
                    PQ_LOAD4(o, a0, a1, a2, a3);
                    PQ_LOAD4(o + 16, a4, a5, a6, a7);
                    PQ_LOAD4(o + 32, a8, a9, a10, a11);
                    PQ_LOAD4(o + 48, a12, a13, a14, a15);
                }
                const float *x = xj + (size_t)t0 * PQ_CENTROIDS + c0;
                for (uint32_t t = t0; t < te; t++, x += PQ_CENTROIDS) {
                    const float32x4_t q = vdupq_n_f32(qj[t]);
                    PQ_STEP(a0, 0);
                    PQ_STEP(a1, 1);
                    PQ_STEP(a2, 2);
                    PQ_STEP(a3, 3);
                    PQ_STEP(a4, 4);
                    PQ_STEP(a5, 5);
                    PQ_STEP(a6, 6);
                    PQ_STEP(a7, 7);
                    PQ_STEP(a8, 8);
                    PQ_STEP(a9, 9);
                    PQ_STEP(a10, 10);
                    PQ_STEP(a11, 11);
                    PQ_STEP(a12, 12);
                    PQ_STEP(a13, 13);
                    PQ_STEP(a14, 14);
                    PQ_STEP(a15, 15);
                }
                if (te == st->ds) {
                    PQ_FINISH4(a0, a1, a2, a3);
                    PQ_FINISH4(a4, a5, a6, a7);
                    PQ_FINISH4(a8, a9, a10, a11);
                    PQ_FINISH4(a12, a13, a14, a15);
                }
                vst1q_f32(o + 0, a0);
                vst1q_f32(o + 4, a1);
                vst1q_f32(o + 8, a2);
                vst1q_f32(o + 12, a3);
                vst1q_f32(o + 16, a4);
                vst1q_f32(o + 20, a5);
                vst1q_f32(o + 24, a6);
                vst1q_f32(o + 28, a7);
                vst1q_f32(o + 32, a8);
                vst1q_f32(o + 36, a9);
                vst1q_f32(o + 40, a10);
                vst1q_f32(o + 44, a11);
                vst1q_f32(o + 48, a12);
                vst1q_f32(o + 52, a13);
                vst1q_f32(o + 56, a14);
                vst1q_f32(o + 60, a15);
            }
        }
    }
}

/* ---- code sums ------------------------------------------------------- */

/* Vectors per block, and sub-spaces per sweep of a block: for m above
 * PQ_SWEEP a sweep's table rows (PQ_SWEEP KiB) stay in L1 while the block's
 * vectors run through them. */
#define PQ_BLOCK 256
#define PQ_SWEEP 64

/* Four table entries of one sub-space in one q register, lane k from
 * code xk. */
static inline float32x4_t pq_load4(const float *tj, unsigned x0, unsigned x1, unsigned x2,
                                   unsigned x3)
{
    float32x4_t v = vld1q_dup_f32(tj + x0);
    v = vld1q_lane_f32(tj + x1, v, 1);
    v = vld1q_lane_f32(tj + x2, v, 2);
    return vld1q_lane_f32(tj + x3, v, 3);
}

/* Sub-spaces j0..je-1 of the vectors i0..ie-1 (ie - i0 a multiple of 8),
 * added to dist (which j0 == 0 starts from 0.0f, as the oracle does), less
 * m - 1 after the last sub-space. */
static void pq_sweep(const float *table, const uint8_t *codes, size_t m, uint64_t i0, uint64_t ie,
                     size_t j0, size_t je, float *dist)
{
    const size_t m2 = 2 * m, m3 = 3 * m;
    const float *const t0 = table + j0 * PQ_CENTROIDS;
    for (uint64_t i = i0; i < ie; i += 8) {
        const uint8_t *p = codes + i * m + j0, *q = p + 4 * m;
        const uint8_t *const end = p + (je - j0);
        const float *tj = t0;
        float32x4_t lo = j0 ? vld1q_f32(dist + i) : vdupq_n_f32(0.0f);
        float32x4_t hi = j0 ? vld1q_f32(dist + i + 4) : vdupq_n_f32(0.0f);
        for (; p < end; p++, q++, tj += PQ_CENTROIDS) {
            lo = vaddq_f32(lo, pq_load4(tj, p[0], p[m], p[m2], p[m3]));
            hi = vaddq_f32(hi, pq_load4(tj, q[0], q[m], q[m2], q[m3]));
        }
        if (je == m) {
            lo = vsubq_f32(lo, vdupq_n_f32((float)m - 1.0f));
            hi = vsubq_f32(hi, vdupq_n_f32((float)m - 1.0f));
        }
        vst1q_f32(dist + i, lo);
        vst1q_f32(dist + i + 4, hi);
    }
}

static void pq_sum_codes(const pq_state *st, const uint8_t *codes, float *dist)
{
    const size_t m = st->m;
    const float *table = st->table;
    const uint64_t n8 = st->n / 8 * 8;
    for (uint64_t i0 = 0; i0 < n8; i0 += PQ_BLOCK) {
        const uint64_t ie = n8 - i0 < PQ_BLOCK ? n8 : i0 + PQ_BLOCK;
        for (size_t j0 = 0; j0 < m; j0 += PQ_SWEEP)
            pq_sweep(table, codes, m, i0, ie, j0, m - j0 < PQ_SWEEP ? m : j0 + PQ_SWEEP, dist);
    }
    for (uint64_t i = n8; i < st->n; i++) {
        const uint8_t *row = codes + i * m;
        float acc = 0.0f;
        for (size_t j = 0; j < m; j++) acc += table[j * PQ_CENTROIDS + row[j]];
        dist[i] = acc - ((float)m - 1.0f);
    }
}

/* ---- plugin ------------------------------------------------------------ */

static void pq_release(void *state);

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 3 || n_statics != 1) {
        snprintf(err, err_len, "neon: expected 3 params and 1 static buffer, got %u and %u",
                 cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].count != (uint64_t)PQ_CENTROIDS * (uint64_t)d) {
        snprintf(err, err_len, "neon: unsupported shape n=%lld d=%lld m=%lld", (long long)n,
                 (long long)d, (long long)m);
        return KB_ERR_UNSUPPORTED;
    }
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "neon: out of memory");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->n = (uint64_t)n;
    st->d = (uint32_t)d;
    st->m = (uint32_t)m;
    st->ds = (uint32_t)(d / m);
    st->codebook_t = host->alloc_aligned(host, (size_t)d * PQ_CENTROIDS * sizeof(float), 64);
    st->table = host->alloc_aligned(host, (size_t)m * PQ_CENTROIDS * sizeof(float), 64);
    if (!st->codebook_t || !st->table) {
        pq_release(st);
        snprintf(err, err_len, "neon: out of memory for the transposed codebook");
        return KB_ERR_NOMEM;
    }
    const float *cb = statics[0].data;
    for (uint32_t j = 0; j < st->m; j++)
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++)
            for (uint32_t t = 0; t < st->ds; t++)
                st->codebook_t[((size_t)j * st->ds + t) * PQ_CENTROIDS + c] =
                    cb[((size_t)j * PQ_CENTROIDS + c) * st->ds + t];
    *state = st;
    return KB_OK;
}

static int pq_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    pq_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->d ||
        inputs[1].count != st->n * st->m || outputs[0].count != st->n) {
        snprintf(err, err_len, "neon: buffers do not match the prepared case");
        return KB_ERR_INTERNAL;
    }
    pq_build_table(st, inputs[0].data);
    pq_sum_codes(st, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    if (st->codebook_t) host->free_aligned(host, st->codebook_t);
    if (st->table) host->free_aligned(host, st->table);
    host->free_aligned(host, st);
}

static const kb_plugin pq_neon = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "pq-dot",
    .name = "neon",
    .version = "1",
    /* Advanced SIMD is part of every armv8-a CPU; declared all the same. */
    .cpu_features = KB_CPU_NEON,
    .prepare = pq_prepare,
    .run = pq_run,
    .verify = NULL,
    .release = pq_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pq_neon;
}
