/*
 * portable.c -- kmeans-assign candidate "portable": plain C, the GEMM form
 * in float. dist = |x|^2 - 2 x.c + |c|^2 with |c|^2 from prepare; each dot
 * product in eight independent lanes (written so that a compiler
 * vectorizes it without reassociating anything), summed pairwise.
 */
#define KM_NAME     "portable"
#define KM_FEATURES 0
#include "common.h"

static float km_sum8(const float *a)
{
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

static void km_kernel(const km_state *st, const float *pts, uint32_t *idx, float *dist)
{
    const uint32_t d = st->d, k = st->k;
    for (uint64_t i = 0; i < st->n; i++) {
        const float *x = pts + i * d;
        float nx8[8] = {0};
        for (uint32_t t = 0; t < d; t += 8)
            for (int l = 0; l < 8; l++) nx8[l] += x[t + l] * x[t + l];
        const float nx = km_sum8(nx8);
        float best = 0;
        uint32_t arg = UINT32_MAX;
        for (uint32_t j = 0; j < k; j++) {
            const float *c = st->cent + (uint64_t)j * d;
            float a[8] = {0};
            for (uint32_t t = 0; t < d; t += 8)
                for (int l = 0; l < 8; l++) a[l] += x[t + l] * c[t + l];
            const float v = st->norms[j] - 2 * km_sum8(a);
            if (arg == UINT32_MAX || v < best) best = v, arg = j;
        }
        idx[i] = arg;
        const float dd = nx + best;
        dist[i] = dd > 0 ? dd : 0;
    }
}
