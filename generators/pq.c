/*
 * pq.c -- inputs of the product-quantization targets (pq-dot, pq-cosine):
 * a 256-centroid codebook per sub-space, a query, one byte code per
 * (vector, sub-space). The distributions and streams are pq-l2's (whose
 * oracle draws the same bytes with its own copy at scale 1), so the PQ
 * targets are judged on one family of inputs.
 */
#include <stdlib.h>

#include "kb_gen.h"

#define PQ_CENTROIDS 256
/* Stream tags: the buffer indices of the PQ targets' specs (codebook 0,
 * query 1, codes 2), as pq-l2 derives them. */
enum { PQ_STREAM_CODEBOOK = 0, PQ_STREAM_QUERY = 1, PQ_STREAM_CODES = 2 };
/* Which centroids are hot in the clustered codes: the same for every input
 * set, like the popular cells of a real index. */
#define PQ_STREAM_HOT UINT64_C(0x686f742d63656e74)
/* Zipf ranks drawn per set; each code takes a uniformly chosen entry, so
 * its law is exactly Zipf at a few ns per code (a draw costs ~70 ns). */
#define PQ_ZIPF_POOL 16384

static void pq_scale(float *x, size_t n, float scale)
{
    if (scale == 1.0f) return;
    for (size_t i = 0; i < n; i++) x[i] *= scale;
}

void kb_gen_pq_codebook(uint64_t seed, uint32_t m, uint32_t ds, int clustered, float scale,
                        float *cb)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0, PQ_STREAM_CODEBOOK));
    const size_t len = (size_t)PQ_CENTROIDS * m * ds;
    if (!clustered) {
        kb_gen_uniform_f32(&r, cb, len, -1.0f, 1.0f);
    } else {
        for (uint32_t j = 0; j < m; j++)
            kb_gen_clustered_f32(&r, cb + (size_t)j * PQ_CENTROIDS * ds, PQ_CENTROIDS, ds, 16,
                                 0.1f);
    }
    pq_scale(cb, len, scale);
}

void kb_gen_pq_query(uint64_t seed, uint32_t set, uint32_t m, uint32_t ds, int clustered,
                     float scale, const float *cb, float *q)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, PQ_STREAM_QUERY));
    if (!clustered) {
        kb_gen_uniform_f32(&r, q, (size_t)m * ds, -1.0f, 1.0f);
        pq_scale(q, (size_t)m * ds, scale);
        return;
    }
    for (uint32_t j = 0; j < m; j++) {
        const float *c = cb + ((size_t)j * PQ_CENTROIDS + kb_rng_below(&r, PQ_CENTROIDS)) * ds;
        float *qj = q + (size_t)j * ds;
        kb_gen_normal_f32(&r, qj, ds, 0.0f, 0.05f);
        pq_scale(qj, ds, scale);
        for (uint32_t t = 0; t < ds; t++) qj[t] = c[t] + qj[t];
    }
}

int kb_gen_pq_codes(uint64_t seed, uint32_t set, uint64_t n, uint32_t m, int clustered,
                    uint8_t *codes)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, PQ_STREAM_CODES));
    if (!clustered) {
        kb_gen_bytes(&r, codes, (size_t)(n * m));
        return 0;
    }
    uint32_t *pool = malloc(PQ_ZIPF_POOL * sizeof *pool);
    if (!pool) return -1;
    kb_gen_zipf_u32(&r, pool, PQ_ZIPF_POOL, PQ_CENTROIDS, 1.1);
    for (uint32_t j = 0; j < m; j++) {
        uint8_t perm[PQ_CENTROIDS];
        kb_rng hot;
        kb_rng_seed(&hot, kb_rng_derive(seed, PQ_STREAM_HOT, j));
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) perm[c] = (uint8_t)c;
        for (uint32_t c = PQ_CENTROIDS - 1; c > 0; c--) {
            uint32_t k = (uint32_t)kb_rng_below(&hot, c + 1);
            uint8_t tmp = perm[c];
            perm[c] = perm[k];
            perm[k] = tmp;
        }
        for (uint64_t i = 0; i < n; i++)
            codes[i * m + j] = perm[pool[kb_rng_below(&r, PQ_ZIPF_POOL)]];
    }
    free(pool);
    return 0;
}
