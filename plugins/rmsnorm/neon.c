/*
 * neon.c -- rmsnorm candidate "neon" (aarch64): the sum of squares with
 * fused multiply-add into eight 4-lane accumulators (32 floats an
 * iteration: the FMA latency of the wide cores times their two to four
 * vector pipes), then one pass y = (x * scale) * w, eight floats at a time.
 */
#include <arm_neon.h>
#include <math.h>

#define RN_NAME     "neon"
#define RN_FEATURES KB_CPU_NEON
#include "common.h"

static float rn_sumsq(const float *x, uint32_t n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
                a7 = a0;
    uint32_t t = 0;
    for (; t + 32 <= n; t += 32) {
        const float32x4_t v0 = vld1q_f32(x + t), v1 = vld1q_f32(x + t + 4);
        const float32x4_t v2 = vld1q_f32(x + t + 8), v3 = vld1q_f32(x + t + 12);
        const float32x4_t v4 = vld1q_f32(x + t + 16), v5 = vld1q_f32(x + t + 20);
        const float32x4_t v6 = vld1q_f32(x + t + 24), v7 = vld1q_f32(x + t + 28);
        a0 = vfmaq_f32(a0, v0, v0), a1 = vfmaq_f32(a1, v1, v1);
        a2 = vfmaq_f32(a2, v2, v2), a3 = vfmaq_f32(a3, v3, v3);
        a4 = vfmaq_f32(a4, v4, v4), a5 = vfmaq_f32(a5, v5, v5);
        a6 = vfmaq_f32(a6, v6, v6), a7 = vfmaq_f32(a7, v7, v7);
    }
    for (; t < n; t += 4) {
        const float32x4_t v = vld1q_f32(x + t);
        a0 = vfmaq_f32(a0, v, v);
    }
    a0 = vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3));
    a4 = vaddq_f32(vaddq_f32(a4, a5), vaddq_f32(a6, a7));
    return vaddvq_f32(vaddq_f32(a0, a4));
}

static void rn_kernel(const rn_state *st, const float *x, float *y)
{
    const uint32_t n = st->n;
    const float *w = st->w;
    for (uint64_t i = 0; i < st->rows; i++) {
        const float *xr = x + i * n;
        float *yr = y + i * n;
        const float mean = (float)((double)rn_sumsq(xr, n) / (double)n);
        const float32x4_t s = vdupq_n_f32(1.0f / sqrtf(mean + RN_EPS));
        for (uint32_t t = 0; t < n; t += 8) {
            const float32x4_t y0 = vmulq_f32(vld1q_f32(xr + t), s);
            const float32x4_t y1 = vmulq_f32(vld1q_f32(xr + t + 4), s);
            vst1q_f32(yr + t, vmulq_f32(y0, vld1q_f32(w + t)));
            vst1q_f32(yr + t + 4, vmulq_f32(y1, vld1q_f32(w + t + 4)));
        }
    }
}
