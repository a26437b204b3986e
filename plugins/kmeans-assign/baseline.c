/*
 * baseline.c -- kmeans-assign candidate "baseline": the oracle's kernel
 * unchanged (oracles/kmeans-assign/oracle.c km_assign): every distance
 * exactly, in double, the first smallest wins. Correct by construction,
 * and slow: the copy an agent starts from.
 */
#define KM_NAME     "baseline"
#define KM_FEATURES 0
#include "common.h"

static double km_l2(const float *x, const float *c, uint32_t d)
{
    double s = 0;
    for (uint32_t t = 0; t < d; t++) {
        const double v = (double)x[t] - (double)c[t];
        s += v * v;
    }
    return s;
}

static void km_l2x4(const float *x, const float *c, uint32_t d, double *out)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (uint32_t t = 0; t < d; t++) {
        const double xt = x[t];
        const double v0 = xt - (double)c[t], v1 = xt - (double)c[d + t];
        const double v2 = xt - (double)c[2 * d + t], v3 = xt - (double)c[3 * d + t];
        s0 += v0 * v0, s1 += v1 * v1, s2 += v2 * v2, s3 += v3 * v3;
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static void km_kernel(const km_state *st, const float *pts, uint32_t *idx, float *dist)
{
    const float *cent = st->cent;
    for (uint64_t i = 0; i < st->n; i++) {
        const float *x = pts + i * st->d;
        double best = 0, v[4];
        uint32_t arg = UINT32_MAX, j = 0;
        for (; j + 4 <= st->k; j += 4) {
            km_l2x4(x, cent + (uint64_t)j * st->d, st->d, v);
            for (uint32_t q = 0; q < 4; q++)
                if (arg == UINT32_MAX || v[q] < best) best = v[q], arg = j + q;
        }
        for (; j < st->k; j++) {
            const double w = km_l2(x, cent + (uint64_t)j * st->d, st->d);
            if (arg == UINT32_MAX || w < best) best = w, arg = j;
        }
        idx[i] = arg;
        dist[i] = (float)best;
    }
}
