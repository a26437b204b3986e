/*
 * neon.c -- softmax candidate "neon" (aarch64): three passes a row, four
 * lanes at a time: t = x * scale + mask into y with the running max (the
 * same t and max as the oracle: a multiply, then an add, no FMA);
 * y = exp(t - max) by a vector exp (ggml_v_expf's algorithm: 2^n by the
 * rounding trick, Cody-Waite ln 2, degree-5 polynomial by fmla; 0 below
 * ln 2^-126, so -inf masks give 0) summed in four accumulators, each
 * block of SM_BLOCK elements added to a double; then y *= 1 / sum.
 */
#include <arm_neon.h>

#define SM_NAME     "neon"
#define SM_FEATURES KB_CPU_NEON
#include "common.h"

static inline float32x4_t sm_exp(float32x4_t a)
{
    const uint32x4_t live = vcgeq_f32(a, vdupq_n_f32(SM_EXP_LO));
    const float32x4_t sh = vdupq_n_f32(SM_EXP_SHIFT);
    const float32x4_t z = vfmaq_f32(sh, a, vdupq_n_f32(SM_LOG2E));
    const float32x4_t n = vsubq_f32(z, sh);
    const float32x4_t b =
        vfmsq_f32(vfmsq_f32(a, n, vdupq_n_f32(SM_LN2_HI)), n, vdupq_n_f32(SM_LN2_LO));
    const float32x4_t u = vmulq_f32(b, b);
    const float32x4_t p45 = vfmaq_f32(vdupq_n_f32(SM_C4), vdupq_n_f32(SM_C5), b);
    const float32x4_t p23 = vfmaq_f32(vdupq_n_f32(SM_C2), vdupq_n_f32(SM_C3), b);
    const float32x4_t j = vfmaq_f32(vmulq_f32(vdupq_n_f32(SM_C1), b), vfmaq_f32(p23, p45, u), u);
    const uint32x4_t e = vshlq_n_u32(vreinterpretq_u32_f32(z), 23);
    const float32x4_t k = vreinterpretq_f32_u32(vaddq_u32(e, vdupq_n_u32(0x3f800000u)));
    const float32x4_t r = vfmaq_f32(k, j, k);
    return vreinterpretq_f32_u32(vandq_u32(live, vreinterpretq_u32_f32(r)));
}

static void sm_row(const float *xr, const float *mr, float *yr, uint32_t d)
{
    const float32x4_t s = vdupq_n_f32(SM_SCALE);
    float32x4_t m0 = vdupq_n_f32(-__builtin_inff()), m1 = m0;
    for (uint32_t t = 0; t < d; t += 8) {
        const float32x4_t v0 = vaddq_f32(vmulq_f32(vld1q_f32(xr + t), s), vld1q_f32(mr + t));
        const float32x4_t v1 =
            vaddq_f32(vmulq_f32(vld1q_f32(xr + t + 4), s), vld1q_f32(mr + t + 4));
        vst1q_f32(yr + t, v0);
        vst1q_f32(yr + t + 4, v1);
        m0 = vmaxq_f32(m0, v0), m1 = vmaxq_f32(m1, v1);
    }
    const float32x4_t mx = vdupq_n_f32(vmaxvq_f32(vmaxq_f32(m0, m1)));
    double sum = 0.0;
    for (uint32_t t0 = 0; t0 < d; t0 += SM_BLOCK) {
        const uint32_t t1 = d - t0 < SM_BLOCK ? d : t0 + SM_BLOCK;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (uint32_t t = t0; t < t1; t += 16) {
            const float32x4_t e0 = sm_exp(vsubq_f32(vld1q_f32(yr + t), mx));
            const float32x4_t e1 = sm_exp(vsubq_f32(vld1q_f32(yr + t + 4), mx));
            const float32x4_t e2 = sm_exp(vsubq_f32(vld1q_f32(yr + t + 8), mx));
            const float32x4_t e3 = sm_exp(vsubq_f32(vld1q_f32(yr + t + 12), mx));
            vst1q_f32(yr + t, e0), vst1q_f32(yr + t + 4, e1);
            vst1q_f32(yr + t + 8, e2), vst1q_f32(yr + t + 12, e3);
            a0 = vaddq_f32(a0, e0), a1 = vaddq_f32(a1, e1);
            a2 = vaddq_f32(a2, e2), a3 = vaddq_f32(a3, e3);
        }
        sum += (double)vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    }
    const float32x4_t inv = vdupq_n_f32((float)(1.0 / sum));
    for (uint32_t t = 0; t < d; t += 4) vst1q_f32(yr + t, vmulq_f32(vld1q_f32(yr + t), inv));
}

static void sm_kernel(const sm_state *st, const float *x, const float *mask, float *y)
{
    for (uint64_t i = 0; i < st->n; i++)
        sm_row(x + i * st->d, mask + i * st->d, y + i * st->d, st->d);
}
