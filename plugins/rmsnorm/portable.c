/*
 * portable.c -- rmsnorm candidate "portable": plain C. The sum of squares in
 * 16 independent float partial sums (16 lanes any vectorizer maps onto its
 * registers, and no add waits on the one before), summed pairwise; then one
 * pass y = (x * scale) * w instead of the reference's two.
 */
#include <math.h>

#define RN_NAME     "portable"
#define RN_FEATURES 0
#include "common.h"

static float rn_sumsq(const float *x, uint32_t n)
{
    float acc[16] = {0};
    for (uint32_t t = 0; t < n; t += 16)
        for (int l = 0; l < 16; l++) acc[l] += x[t + l] * x[t + l];
    for (int w = 8; w > 0; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

static void rn_kernel(const rn_state *st, const float *x, float *y)
{
    const uint32_t n = st->n;
    const float *w = st->w;
    for (uint64_t i = 0; i < st->rows; i++) {
        const float *xr = x + i * n;
        float *yr = y + i * n;
        const float mean = (float)((double)rn_sumsq(xr, n) / (double)n);
        const float scale = 1.0f / sqrtf(mean + RN_EPS);
        for (uint32_t t = 0; t < n; t++) yr[t] = xr[t] * scale * w[t];
    }
}
