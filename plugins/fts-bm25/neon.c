/*
 * neon.c -- fts-bm25 with NEON (aarch64): four postings a vector, the lengths loaded into
 * lanes (NEON has no gather), the oracle's f32 operations in its order on four lanes
 * (vdivq_f32 is IEEE division, correctly rounded: its bits); two vectors a step.
 */
#include <arm_neon.h>

#define FB_NAME     "neon"
#define FB_FEATURES 0
#include "common.h"

typedef struct fb_consts {
    float32x4_t k1, one_minus_b, b, k1p1, avgdl, idf;
} fb_consts;

static inline float32x4_t fb_score4(const uint32_t *dl, const uint32_t *ids, const uint32_t *tf,
                                    const fb_consts *c)
{
    uint32x4_t len = vdupq_n_u32(0);
    len = vld1q_lane_u32(dl + ids[0], len, 0);
    len = vld1q_lane_u32(dl + ids[1], len, 1);
    len = vld1q_lane_u32(dl + ids[2], len, 2);
    len = vld1q_lane_u32(dl + ids[3], len, 3);
    const float32x4_t dt = vcvtq_f32_u32(len), f = vcvtq_f32_u32(vld1q_u32(tf));
    const float32x4_t norm =
        vmulq_f32(c->k1, vaddq_f32(c->one_minus_b, vdivq_f32(vmulq_f32(c->b, dt), c->avgdl)));
    return vmulq_f32(c->idf, vdivq_f32(vmulq_f32(c->k1p1, f), vaddq_f32(f, norm)));
}

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const uint32_t *dl = st->doc_len;
    const fb_consts c = {vdupq_n_f32(FB_K1),        vdupq_n_f32(1.0f - FB_B), vdupq_n_f32(FB_B),
                         vdupq_n_f32(FB_K1 + 1.0f), vdupq_n_f32(st->avgdl),   vdupq_n_f32(idf)};
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t a = fb_score4(dl, ids + i, tf + i, &c);
        const float32x4_t b = fb_score4(dl, ids + i + 4, tf + i + 4, &c);
        vst1q_f32(scores + i, a);
        vst1q_f32(scores + i + 4, b);
    }
    for (; i < n; i++) scores[i] = fb_score1(tf[i], dl[ids[i]], idf, st->avgdl);
}
