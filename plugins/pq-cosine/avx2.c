/*
 * avx2.c -- pq-cosine candidate "avx2": AVX2 and FMA (x86-64-v3), within
 * the oracle's tolerance.
 *
 * The query is normalized first, as the oracle does (d floats, scalar).
 *
 * Table build. prepare() transposes the codebook to [j][t][c], so one ymm
 * holds the t-th coordinate of 8 centroids. Each sub-space's 256 squared
 * distances are built 64 centroids at a time in 8 ymm accumulators that
 * step through t in increasing order: a subtract, then one fused
 * multiply-add of the difference by itself, where the oracle (Lance's
 * 16-lane order) rounds the square and the sum apart; entries differ by a
 * few ulps at most, far inside the oracle's rel_tol. t goes in chunks of
 * PQ_TCHUNK so that the four passes share an L1-sized codebook slice.
 *
 * Code sums: pq-l2's avx2 lookups, bit-exact (plugins/pq-l2/avx2.c says
 * what was tried there). Lanes are vectors: 8 rows of codes share one ymm
 * accumulator, which adds the m terms in increasing j starting from 0.0f,
 * the oracle's order; the 8 table entries of a step are loaded one by one,
 * packed with vinsertps and added with one vaddps.
 *
 * Shapes: any m; the last n % 8 vectors take the scalar loop.
 */
#include <immintrin.h>
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
    float *qn;         /* [d], the normalized query */
} pq_state;

/* The query normalized as the oracle does (lance-linalg kernels.rs
 * normalize): squares added in order, square root, each coordinate divided
 * by the norm: d floats, a small part of the call. */
static void pq_normalize(uint32_t d, const float *query, float *qn)
{
    float sq = 0.0f;
    for (uint32_t t = 0; t < d; t++) sq += query[t] * query[t];
    const float norm = __builtin_sqrtf(sq);
    for (uint32_t t = 0; t < d; t++) qn[t] = query[t] / norm;
}

/* ---- table build ----------------------------------------------------- */

/* One step of t for 8 centroids: acc += (q - x)^2, fused. */
#define PQ_STEP(acc, k)                                               \
    do {                                                              \
        __m256 diff_ = _mm256_sub_ps(q, _mm256_load_ps(x + 8 * (k))); \
        acc = _mm256_fmadd_ps(diff_, diff_, acc);                     \
    } while (0)

/* Rows of t per chunk: a chunk's codebook slice (PQ_TCHUNK x 1 KiB) stays
 * in L1 while the four passes of 64 centroids read it; a whole sub-space's
 * slice (ds KiB, 96 KiB at d = 768, m = 8) would be read four times from L2
 * or L3. Between chunks the running sums wait in the table row, which
 * changes no rounding. */
#define PQ_TCHUNK 16

/* Named accumulators, not an array: at -O2 GCC keeps small arrays of
 * vectors in memory. */
static void pq_build_table(const pq_state *st, const float *query)
{
    for (uint32_t j = 0; j < st->m; j++) {
        const float *qj = query + (size_t)j * st->ds;
        float *row = st->table + (size_t)j * PQ_CENTROIDS;
        const float *xj = st->codebook_t + (size_t)j * st->ds * PQ_CENTROIDS;
        for (uint32_t t0 = 0; t0 < st->ds; t0 += PQ_TCHUNK) {
            const uint32_t te = st->ds - t0 < PQ_TCHUNK ? st->ds : t0 + PQ_TCHUNK;
            for (uint32_t c0 = 0; c0 < PQ_CENTROIDS; c0 += 64) {
                float *o = row + c0;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                __m256 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                if (t0) {
                    a0 = _mm256_load_ps(o + 0);
                    a1 = _mm256_load_ps(o + 8);
                    a2 = _mm256_load_ps(o + 16);
                    a3 = _mm256_load_ps(o + 24);
                    a4 = _mm256_load_ps(o + 32);
                    a5 = _mm256_load_ps(o + 40);
                    a6 = _mm256_load_ps(o + 48);
                    a7 = _mm256_load_ps(o + 56);
                }
                const float *x = xj + (size_t)t0 * PQ_CENTROIDS + c0;
                for (uint32_t t = t0; t < te; t++, x += PQ_CENTROIDS) {
                    const __m256 q = _mm256_set1_ps(qj[t]);
                    PQ_STEP(a0, 0);
                    PQ_STEP(a1, 1);
                    PQ_STEP(a2, 2);
                    PQ_STEP(a3, 3);
                    PQ_STEP(a4, 4);
                    PQ_STEP(a5, 5);
                    PQ_STEP(a6, 6);
                    PQ_STEP(a7, 7);
                }
                _mm256_store_ps(o + 0, a0);
                _mm256_store_ps(o + 8, a1);
                _mm256_store_ps(o + 16, a2);
                _mm256_store_ps(o + 24, a3);
                _mm256_store_ps(o + 32, a4);
                _mm256_store_ps(o + 40, a5);
                _mm256_store_ps(o + 48, a6);
                _mm256_store_ps(o + 56, a7);
            }
        }
    }
}

/* ---- code sums ------------------------------------------------------- */

/* Vectors per block, and sub-spaces per sweep of a block: for m above
 * PQ_SWEEP a sweep's table rows (PQ_SWEEP KiB) stay in L1 while the
 * block's vectors run through them. Up to m = 64 one sweep does all of a
 * row, as pq-l2's avx2.c found best for clustered codes. */
#ifndef PQ_BLOCK
#define PQ_BLOCK 256
#endif
#ifndef PQ_SWEEP
#define PQ_SWEEP 64
#endif

/* Four table entries of one sub-space in one xmm, lane k from code xk. */
static inline __m128 pq_load4(const float *tj, unsigned x0, unsigned x1, unsigned x2, unsigned x3)
{
    __m128 v = _mm_load_ss(tj + x0);
    v = _mm_insert_ps(v, _mm_load_ss(tj + x1), 0x10);
    v = _mm_insert_ps(v, _mm_load_ss(tj + x2), 0x20);
    return _mm_insert_ps(v, _mm_load_ss(tj + x3), 0x30);
}

/* Sub-spaces j0..je-1 of the vectors i0..ie-1 (ie - i0 a multiple of 8),
 * added to dist (which j0 == 0 starts from 0.0f, as the oracle does). Rows
 * 0-3 and 4-7 of each group are addressed from two pointers, so that GCC
 * holds every address in a register instead of spilling row offsets to the
 * stack inside the loop. Always inlined into pq_sweep_m, which calls it with
 * constant m for the common shapes so that the j loop unrolls. */
__attribute__((always_inline)) static inline void pq_sweep(const float *table, const uint8_t *codes,
                                                           size_t m, uint64_t i0, uint64_t ie,
                                                           size_t j0, size_t je, float *dist)
{
    const size_t m2 = 2 * m, m3 = 3 * m;
    const float *const t0 = table + j0 * PQ_CENTROIDS;
    for (uint64_t i = i0; i < ie; i += 8) {
        const uint8_t *p = codes + i * m + j0, *q = p + 4 * m;
        const float *tj = t0;
        __m256 acc = j0 ? _mm256_loadu_ps(dist + i) : _mm256_setzero_ps();
        for (size_t j = j0; j < je; j++, p++, q++, tj += PQ_CENTROIDS) {
            const __m128 lo = pq_load4(tj, p[0], p[m], p[m2], p[m3]);
            const __m128 hi = pq_load4(tj, q[0], q[m], q[m2], q[m3]);
            acc = _mm256_add_ps(acc, _mm256_set_m128(hi, lo));
        }
        _mm256_storeu_ps(dist + i, acc);
    }
}

__attribute__((noinline)) static void pq_sweep_m(const float *table, const uint8_t *codes, size_t m,
                                                 uint64_t i0, uint64_t ie, size_t j0, size_t je,
                                                 float *dist)
{
    if (m == 8) /* the shapes of the cases; PQ_SWEEP >= 64 makes j0 = 0, je = m */
        pq_sweep(table, codes, 8, i0, ie, 0, 8, dist);
    else if (m == 16)
        pq_sweep(table, codes, 16, i0, ie, 0, 16, dist);
    else if (m == 64)
        pq_sweep(table, codes, 64, i0, ie, 0, 64, dist);
    else
        pq_sweep(table, codes, m, i0, ie, j0, je, dist);
}

static void pq_sum_codes(const pq_state *st, const uint8_t *codes, float *dist)
{
    const size_t m = st->m;
    const float *table = st->table;
    const uint64_t n8 = st->n / 8 * 8;
    for (uint64_t i0 = 0; i0 < n8; i0 += PQ_BLOCK) {
        const uint64_t ie = n8 - i0 < PQ_BLOCK ? n8 : i0 + PQ_BLOCK;
        for (size_t j0 = 0; j0 < m; j0 += PQ_SWEEP)
            pq_sweep_m(table, codes, m, i0, ie, j0, m - j0 < PQ_SWEEP ? m : j0 + PQ_SWEEP, dist);
    }
    for (uint64_t i = n8; i < st->n; i++) {
        const uint8_t *row = codes + i * m;
        float acc = 0.0f;
        for (size_t j = 0; j < m; j++) acc += table[j * PQ_CENTROIDS + row[j]];
        dist[i] = acc;
    }
}

/* ---- plugin ------------------------------------------------------------ */

static void pq_release(void *state);

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 3 || n_statics != 1) {
        snprintf(err, err_len, "avx2: expected 3 params and 1 static buffer, got %u and %u",
                 cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].count != (uint64_t)PQ_CENTROIDS * (uint64_t)d) {
        snprintf(err, err_len, "avx2: unsupported shape n=%lld d=%lld m=%lld", (long long)n,
                 (long long)d, (long long)m);
        return KB_ERR_UNSUPPORTED;
    }
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "avx2: out of memory");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->n = (uint64_t)n;
    st->d = (uint32_t)d;
    st->m = (uint32_t)m;
    st->ds = (uint32_t)(d / m);
    st->codebook_t = host->alloc_aligned(host, (size_t)d * PQ_CENTROIDS * sizeof(float), 64);
    st->table = host->alloc_aligned(host, (size_t)m * PQ_CENTROIDS * sizeof(float), 64);
    st->qn = host->alloc_aligned(host, (size_t)d * sizeof(float), 64);
    if (!st->codebook_t || !st->table || !st->qn) {
        pq_release(st);
        snprintf(err, err_len, "avx2: out of memory for the transposed codebook");
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
        snprintf(err, err_len, "avx2: buffers do not match the prepared case");
        return KB_ERR_INTERNAL;
    }
    pq_normalize(st->d, inputs[0].data, st->qn);
    pq_build_table(st, st->qn);
    pq_sum_codes(st, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    if (st->codebook_t) host->free_aligned(host, st->codebook_t);
    if (st->table) host->free_aligned(host, st->table);
    if (st->qn) host->free_aligned(host, st->qn);
    host->free_aligned(host, st);
}

static const kb_plugin pq_avx2 = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "pq-cosine",
    .name = "avx2",
    .version = "1",
    /* Built with -mavx2 -mfma (x86-64-v3's vector part); no BMI. */
    .cpu_features = KB_CPU_AVX | KB_CPU_AVX2 | KB_CPU_FMA,
    .prepare = pq_prepare,
    .run = pq_run,
    .verify = NULL,
    .release = pq_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pq_avx2;
}
