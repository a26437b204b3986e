/*
 * baseline.c -- rmsnorm candidate "baseline": the oracle's kernel unchanged
 * (oracles/rmsnorm/oracle.c rn_rows, ggml's rms_norm then mul): the sum of
 * squares one element at a time in double, whose add latency bounds it.
 * Correct by construction and slow: the copy an agent starts from.
 */
#include <math.h>

#define RN_NAME     "baseline"
#define RN_FEATURES 0
#include "common.h"

static void rn_kernel(const rn_state *st, const float *x, float *y)
{
    const uint32_t n = st->n;
    for (uint64_t i = 0; i < st->rows; i++) {
        const float *xr = x + i * n;
        float *yr = y + i * n;
        double sum = 0.0;
        for (uint32_t t = 0; t < n; t++) sum += (double)(xr[t] * xr[t]);
        const float mean = (float)(sum / (double)n);
        const float scale = 1.0f / sqrtf(mean + RN_EPS);
        for (uint32_t t = 0; t < n; t++) yr[t] = xr[t] * scale;
        for (uint32_t t = 0; t < n; t++) yr[t] = yr[t] * st->w[t];
    }
}
