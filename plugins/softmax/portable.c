/*
 * portable.c -- softmax candidate "portable": plain C, three passes a row:
 * t = x * scale + mask into y with the row's max, then y = exp(t - max)
 * with an inlined polynomial exp (ggml_v_expf's algorithm: 2^n by the
 * rounding trick, Cody-Waite ln 2, degree 5) summed in 16 float partial
 * sums, added to a double every SM_BLOCK elements, then y *= 1 / sum.
 * Loops of 16 independent lanes that a vectorizer can map to its registers.
 */
#include <string.h>

#define SM_NAME     "portable"
#define SM_FEATURES 0
#include "common.h"

static inline float sm_exp(float a)
{
    if (!(a >= SM_EXP_LO)) return 0.0f; /* -inf, or below 2^-126 */
    const float z = a * SM_LOG2E + SM_EXP_SHIFT, n = z - SM_EXP_SHIFT;
    const float b = (a - n * SM_LN2_HI) - n * SM_LN2_LO, u = b * b;
    const float j = ((SM_C5 * b + SM_C4) * u + (SM_C3 * b + SM_C2)) * u + SM_C1 * b;
    uint32_t zb, one = 0x3f800000u;
    memcpy(&zb, &z, sizeof zb);
    zb = (zb << 23) + one;
    float k;
    memcpy(&k, &zb, sizeof k);
    return j * k + k;
}

static void sm_kernel(const sm_state *st, const float *x, const float *mask, float *y)
{
    const uint32_t d = st->d;
    for (uint64_t i = 0; i < st->n; i++) {
        const float *xr = x + i * d, *mr = mask + i * d;
        float *yr = y + i * d, mx[16], acc[16];
        for (int l = 0; l < 16; l++) mx[l] = -__builtin_inff();
        for (uint32_t t = 0; t < d; t += 16)
            for (int l = 0; l < 16; l++) {
                const float v = xr[t + l] * SM_SCALE + mr[t + l];
                yr[t + l] = v;
                mx[l] = v > mx[l] ? v : mx[l];
            }
        float max = mx[0];
        for (int l = 1; l < 16; l++) max = mx[l] > max ? mx[l] : max;
        double sum = 0.0;
        for (uint32_t t0 = 0; t0 < d; t0 += SM_BLOCK) {
            const uint32_t t1 = d - t0 < SM_BLOCK ? d : t0 + SM_BLOCK;
            for (int l = 0; l < 16; l++) acc[l] = 0.0f;
            for (uint32_t t = t0; t < t1; t += 16)
                for (int l = 0; l < 16; l++) {
                    const float e = sm_exp(yr[t + l] - max);
                    yr[t + l] = e;
                    acc[l] += e;
                }
            for (int w = 8; w > 0; w /= 2)
                for (int l = 0; l < w; l++) acc[l] += acc[l + w];
            sum += (double)acc[0];
        }
        const float inv = (float)(1.0 / sum);
        for (uint32_t t = 0; t < d; t++) yr[t] *= inv;
    }
}
