/*
 * neon.c -- attn-decode with AArch64 Advanced SIMD (common.h: transposed
 * key blocks of 16, a three-pass softmax, value rows of negligible weight
 * skipped). A block of 16 keys is four float32x4 of scores; two halves of
 * the head dimension give eight independent FMA chains. exp is Cephes'
 * expf polynomial (about 1 ulp), the power of two built in the exponent
 * bits, 4 lanes at a time. The value pass keeps 64 outputs in 16
 * accumulators over row groups of 64, as avx2.c does.
 */
#include <arm_neon.h>

#define AD_NAME     "neon"
#define AD_FEATURES KB_CPU_NEON
#include "common.h"

#define AD_ROWS 64

static void ad_scores(const ad_state *st, const float *qs, float *p)
{
    const uint32_t d = st->d, stride = d * AD_BLK;
    for (uint32_t b = 0; b < st->nb; b++) {
        const float *k = st->kt + (uint64_t)b * stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (uint32_t t = 0; t < d; t += 2) {
            const float *k0 = k + t * AD_BLK, *k1 = k0 + AD_BLK;
            const float q0 = qs[t], q1 = qs[t + 1];
            a0 = vfmaq_n_f32(a0, vld1q_f32(k0), q0);
            a1 = vfmaq_n_f32(a1, vld1q_f32(k0 + 4), q0);
            a2 = vfmaq_n_f32(a2, vld1q_f32(k0 + 8), q0);
            a3 = vfmaq_n_f32(a3, vld1q_f32(k0 + 12), q0);
            b0 = vfmaq_n_f32(b0, vld1q_f32(k1), q1);
            b1 = vfmaq_n_f32(b1, vld1q_f32(k1 + 4), q1);
            b2 = vfmaq_n_f32(b2, vld1q_f32(k1 + 8), q1);
            b3 = vfmaq_n_f32(b3, vld1q_f32(k1 + 12), q1);
        }
        float *pb = p + (uint64_t)b * AD_BLK;
        vst1q_f32(pb, vaddq_f32(a0, b0));
        vst1q_f32(pb + 4, vaddq_f32(a1, b1));
        vst1q_f32(pb + 8, vaddq_f32(a2, b2));
        vst1q_f32(pb + 12, vaddq_f32(a3, b3));
    }
}

static float ad_max(const float *p, uint32_t n)
{
    float32x4_t m = vdupq_n_f32(-INFINITY);
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(p + i));
    float r = vmaxvq_f32(m);
    for (; i < n; i++) r = p[i] > r ? p[i] : r;
    return r;
}

/* Cephes expf for x <= 0: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
 * polynomial for e^r, times 2^n (n >= -126 after the clamp: a normal). */
static inline float32x4_t ad_exp(float32x4_t x)
{
    x = vmaxq_f32(x, vdupq_n_f32(-87.33654f));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(e));
}

static float ad_expsum(float *p, uint32_t n, float m)
{
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t e0 = ad_exp(vsubq_f32(vld1q_f32(p + i), vm));
        const float32x4_t e1 = ad_exp(vsubq_f32(vld1q_f32(p + i + 4), vm));
        vst1q_f32(p + i, e0);
        vst1q_f32(p + i + 4, e1);
        s0 = vaddq_f32(s0, e0);
        s1 = vaddq_f32(s1, e1);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) {
        p[i] = expf(p[i] - m);
        s += p[i];
    }
    return s;
}

/* Rows [i0, i1) of weight >= thr into o[c0 .. c0 + 16 nc) (acc: 4 nc). */
static inline void ad_vacc_nc(const ad_state *st, const float *p, float thr, uint32_t i0,
                              uint32_t i1, uint32_t c0, uint32_t nc, float32x4_t *acc)
{
    for (uint32_t i = i0; i < i1; i++) {
        if (p[i] < thr) continue;
        const float w = p[i];
        const float *v = st->v + (uint64_t)i * st->d + c0;
        for (uint32_t j = 0; j < 4 * nc; j++) acc[j] = vfmaq_n_f32(acc[j], vld1q_f32(v + 4 * j), w);
    }
}

static void ad_vacc(const ad_state *st, const float *p, float thr, float *o)
{
    float32x4_t acc[64]; /* d <= 256 */
    for (uint32_t j = 0; j < st->d / 4; j++) acc[j] = vdupq_n_f32(0.0f);
    for (uint32_t i0 = 0; i0 < st->n; i0 += AD_ROWS) {
        const uint32_t i1 = i0 + AD_ROWS < st->n ? i0 + AD_ROWS : st->n;
        uint32_t c0 = 0;
        for (; c0 + 64 <= st->d; c0 += 64) ad_vacc_nc(st, p, thr, i0, i1, c0, 4, acc + c0 / 4);
        for (; c0 < st->d; c0 += 16) ad_vacc_nc(st, p, thr, i0, i1, c0, 1, acc + c0 / 4);
    }
    for (uint32_t j = 0; j < st->d / 4; j++) vst1q_f32(o + 4 * j, acc[j]);
}
