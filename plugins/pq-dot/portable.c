/*
 * portable.c -- pq-dot candidate "portable": plain C, no intrinsics, faster
 * than the oracle on any 64-bit CPU and bit-exact with it.
 *
 * Two changes, both keeping the oracle's rounding order for every output:
 *
 * - prepare() stores the codebook transposed to [j][t][c], so the table is
 *   built for 256 centroids at once, each centroid's dot product in Lance's
 *   order (the ds % 16 trailing products in order, then 16 lane sums over
 *   t = i, i + 16, ..., added lane 0 to 15): the inner loop over c has no
 *   reduction and contiguous loads, which every vectorising compiler turns
 *   into SIMD (SSE/AVX on x86-64, NEON on aarch64) without reassociating.
 * - the code sums run over PQ_LANES vectors at a time, each with its own
 *   accumulator adding j in increasing order. The oracle's single chain of
 *   m dependent adds per vector becomes PQ_LANES independent chains, so the
 *   lookups overlap instead of waiting on the add latency.
 *
 * Built with -ffp-contract=off: a fused multiply-add would round once where
 * the oracle rounds twice.
 */
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

#define PQ_CENTROIDS 256
#define PQ_LANES     8

typedef struct pq_state {
    const kb_host *host;
    uint64_t n;
    uint32_t d, m, ds;
    float *codebook_t; /* [m][ds][256]: the codebook with c innermost */
    float *table;      /* [m][256], rebuilt by every run */
} pq_state;

#define PQ_DOT_LANES 16

static void pq_build_table(const pq_state *st, const float *query)
{
    const uint32_t ds = st->ds, full = ds / PQ_DOT_LANES * PQ_DOT_LANES;
    for (uint32_t j = 0; j < st->m; j++) {
        const float *qj = query + (size_t)j * ds;
        const float *xj = st->codebook_t + (size_t)j * ds * PQ_CENTROIDS;
        float tail[PQ_CENTROIDS], total[PQ_CENTROIDS], lane[PQ_CENTROIDS];
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) tail[c] = total[c] = 0.0f;
        for (uint32_t t = full; t < ds; t++) {
            const float q = qj[t];
            const float *x = xj + (size_t)t * PQ_CENTROIDS;
            for (uint32_t c = 0; c < PQ_CENTROIDS; c++) tail[c] += x[c] * q;
        }
        for (uint32_t i = 0; i < PQ_DOT_LANES && full; i++) {
            for (uint32_t c = 0; c < PQ_CENTROIDS; c++) lane[c] = 0.0f;
            for (uint32_t k = i; k < full; k += PQ_DOT_LANES) {
                const float q = qj[k];
                const float *x = xj + (size_t)k * PQ_CENTROIDS;
                for (uint32_t c = 0; c < PQ_CENTROIDS; c++) lane[c] += x[c] * q;
            }
            for (uint32_t c = 0; c < PQ_CENTROIDS; c++) total[c] += lane[c];
        }
        float *row = st->table + (size_t)j * PQ_CENTROIDS;
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) row[c] = 1.0f - (tail[c] + total[c]);
    }
}

static void pq_sum_codes(const pq_state *st, const uint8_t *codes, float *dist)
{
    const size_t m = st->m;
    const float *table = st->table;
    const float diff = (float)st->m - 1.0f; /* Lance's final d - (m - 1) */
    uint64_t i = 0;
    /* Written out by hand rather than as an acc[PQ_LANES] loop: at -O2 a
     * compiler may keep such an array in memory, putting a store-to-load
     * forward on every add. */
    for (; i + PQ_LANES <= st->n; i += PQ_LANES) {
        const uint8_t *r = codes + i * m;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        float a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
        for (size_t j = 0; j < m; j++, r++) {
            const float *tj = table + j * PQ_CENTROIDS;
            a0 += tj[r[0]];
            a1 += tj[r[m]];
            a2 += tj[r[2 * m]];
            a3 += tj[r[3 * m]];
            a4 += tj[r[4 * m]];
            a5 += tj[r[5 * m]];
            a6 += tj[r[6 * m]];
            a7 += tj[r[7 * m]];
        }
        dist[i + 0] = a0 - diff;
        dist[i + 1] = a1 - diff;
        dist[i + 2] = a2 - diff;
        dist[i + 3] = a3 - diff;
        dist[i + 4] = a4 - diff;
        dist[i + 5] = a5 - diff;
        dist[i + 6] = a6 - diff;
        dist[i + 7] = a7 - diff;
    }
    for (; i < st->n; i++) {
        const uint8_t *row = codes + i * m;
        float acc = 0.0f;
        for (size_t j = 0; j < m; j++) acc += table[j * PQ_CENTROIDS + row[j]];
        dist[i] = acc - diff;
    }
}

static void pq_release(void *state);

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 3 || n_statics != 1) {
        snprintf(err, err_len, "portable: expected 3 params and 1 static buffer, got %u and %u",
                 cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].count != (uint64_t)PQ_CENTROIDS * (uint64_t)d) {
        snprintf(err, err_len, "portable: unsupported shape n=%lld d=%lld m=%lld", (long long)n,
                 (long long)d, (long long)m);
        return KB_ERR_UNSUPPORTED;
    }
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "portable: out of memory");
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
        snprintf(err, err_len, "portable: out of memory for the transposed codebook");
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
        snprintf(err, err_len, "portable: buffers do not match the prepared case");
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

static const kb_plugin pq_portable = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "pq-dot",
    .name = "portable",
    .version = "1",
    .cpu_features = 0,
    .prepare = pq_prepare,
    .run = pq_run,
    .verify = NULL,
    .release = pq_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pq_portable;
}
