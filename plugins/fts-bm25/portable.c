/*
 * portable.c -- fts-bm25 in plain C: the doc_norm table built once in prepare (common.h)
 * turns each posting into one load and (K1 + 1) f / (f + doc_norm), in the oracle's order;
 * four postings a step so the loads and divisions of neighbours overlap.
 */
#define FB_NAME     "portable"
#define FB_FEATURES 0
#define FB_DOC_NORM_TABLE
#include "common.h"

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const float *dn = st->doc_norm, k1p1 = FB_K1 + 1.0f;
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) {
            const float f = (float)tf[i + l];
            scores[i + l] = idf * (k1p1 * f / (f + dn[ids[i + l]]));
        }
    for (; i < n; i++) {
        const float f = (float)tf[i];
        scores[i] = idf * (k1p1 * f / (f + dn[ids[i]]));
    }
}
