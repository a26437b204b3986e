/*
 * neon.c -- fts-bm25 with NEON (aarch64): no gather instruction, so each posting's
 * doc_norm (common.h) is loaded into a lane, and four scores take one vdivq_f32 (IEEE
 * division, correctly rounded) in the oracle's order of f32 operations (its bits); two
 * vectors a step.
 */
#include <arm_neon.h>

#define FB_NAME     "neon"
#define FB_FEATURES 0
#include "common.h"

static inline float32x4_t fb_score4(const float *dn, const uint32_t *ids, const uint32_t *tf,
                                    float32x4_t k1p1, float32x4_t idf)
{
    float32x4_t norm = vdupq_n_f32(0.0f);
    norm = vld1q_lane_f32(dn + ids[0], norm, 0);
    norm = vld1q_lane_f32(dn + ids[1], norm, 1);
    norm = vld1q_lane_f32(dn + ids[2], norm, 2);
    norm = vld1q_lane_f32(dn + ids[3], norm, 3);
    const float32x4_t f = vcvtq_f32_u32(vld1q_u32(tf));
    return vmulq_f32(idf, vdivq_f32(vmulq_f32(k1p1, f), vaddq_f32(f, norm)));
}

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const float *dn = st->doc_norm;
    const float32x4_t k1p1 = vdupq_n_f32(FB_K1 + 1.0f), vidf = vdupq_n_f32(idf);
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t a = fb_score4(dn, ids + i, tf + i, k1p1, vidf);
        const float32x4_t b = fb_score4(dn, ids + i + 4, tf + i + 4, k1p1, vidf);
        vst1q_f32(scores + i, a);
        vst1q_f32(scores + i + 4, b);
    }
    for (; i < n; i++) {
        const float f = (float)tf[i];
        scores[i] = idf * ((FB_K1 + 1.0f) * f / (f + dn[ids[i]]));
    }
}
