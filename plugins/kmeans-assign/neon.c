/*
 * neon.c -- kmeans-assign candidate "neon": the GEMM form, register-tiled.
 * dist = |x|^2 + (|c|^2 - 2 x.c), |c|^2 from prepare. Two points against
 * four centroids at a time in eight 4-lane FMA accumulators (six loads
 * per eight FMAs), over tiles of centroids that stay in L2 while every
 * point passes them; each point's running best (|c|^2 - 2 x.c and its
 * index) lives in the output buffers until the last tile, and the first
 * smallest wins, as in the oracle.
 */
#include <arm_neon.h>

#define KM_NAME     "neon"
#define KM_FEATURES KB_CPU_NEON
#include "common.h"

#define KM_TILE_BYTES (256 * 1024)

static float km_hsum(float32x4_t v)
{
    return vaddvq_f32(v);
}

static void km_take(float v, uint32_t j, float *best, uint32_t *arg)
{
    if (v < *best) *best = v, *arg = j;
}

/* Points x0, x1 against centroids j..j+3. */
static void km_block24(const km_state *st, const float *x0, const float *x1, uint32_t j, float *b,
                       uint32_t *a)
{
    const uint32_t d = st->d;
    const float *c = st->cent + (uint64_t)j * d;
    float32x4_t s00 = vdupq_n_f32(0), s01 = s00, s02 = s00, s03 = s00;
    float32x4_t s10 = s00, s11 = s00, s12 = s00, s13 = s00;
    for (uint32_t t = 0; t < d; t += 4) {
        const float32x4_t p0 = vld1q_f32(x0 + t), p1 = vld1q_f32(x1 + t);
        float32x4_t q = vld1q_f32(c + t);
        s00 = vfmaq_f32(s00, p0, q), s10 = vfmaq_f32(s10, p1, q);
        q = vld1q_f32(c + d + t);
        s01 = vfmaq_f32(s01, p0, q), s11 = vfmaq_f32(s11, p1, q);
        q = vld1q_f32(c + 2 * d + t);
        s02 = vfmaq_f32(s02, p0, q), s12 = vfmaq_f32(s12, p1, q);
        q = vld1q_f32(c + 3 * d + t);
        s03 = vfmaq_f32(s03, p0, q), s13 = vfmaq_f32(s13, p1, q);
    }
    const float *nc = st->norms + j;
    km_take(nc[0] - 2 * km_hsum(s00), j, &b[0], &a[0]);
    km_take(nc[1] - 2 * km_hsum(s01), j + 1, &b[0], &a[0]);
    km_take(nc[2] - 2 * km_hsum(s02), j + 2, &b[0], &a[0]);
    km_take(nc[3] - 2 * km_hsum(s03), j + 3, &b[0], &a[0]);
    km_take(nc[0] - 2 * km_hsum(s10), j, &b[1], &a[1]);
    km_take(nc[1] - 2 * km_hsum(s11), j + 1, &b[1], &a[1]);
    km_take(nc[2] - 2 * km_hsum(s12), j + 2, &b[1], &a[1]);
    km_take(nc[3] - 2 * km_hsum(s13), j + 3, &b[1], &a[1]);
}

static float km_dot(const float *x, const float *c, uint32_t d)
{
    float32x4_t s = vdupq_n_f32(0);
    for (uint32_t t = 0; t < d; t += 4) s = vfmaq_f32(s, vld1q_f32(x + t), vld1q_f32(c + t));
    return km_hsum(s);
}

/* Point x against centroids [j0, j1), one at a time. */
static void km_single(const km_state *st, const float *x, uint32_t j0, uint32_t j1, float *b,
                      uint32_t *a)
{
    for (uint32_t j = j0; j < j1; j++)
        km_take(st->norms[j] - 2 * km_dot(x, st->cent + (uint64_t)j * st->d, st->d), j, b, a);
}

static void km_kernel(const km_state *st, const float *pts, uint32_t *idx, float *dist)
{
    const uint32_t d = st->d, k = st->k;
    uint32_t tile = (uint32_t)(KM_TILE_BYTES / (sizeof(float) * d)) & ~3u;
    if (tile < 4) tile = 4;
    for (uint64_t i = 0; i < st->n; i++) dist[i] = __builtin_inff(), idx[i] = 0;
    for (uint32_t j0 = 0; j0 < k; j0 += tile) {
        const uint32_t j1 = k - j0 < tile ? k : j0 + tile;
        const uint32_t j4 = j0 + (j1 - j0) / 4 * 4;
        uint64_t i = 0;
        for (; i + 2 <= st->n; i += 2) {
            const float *x0 = pts + i * d, *x1 = x0 + d;
            for (uint32_t j = j0; j < j4; j += 4) km_block24(st, x0, x1, j, dist + i, idx + i);
            km_single(st, x0, j4, j1, dist + i, idx + i);
            km_single(st, x1, j4, j1, dist + i + 1, idx + i + 1);
        }
        for (; i < st->n; i++) km_single(st, pts + i * d, j0, j1, dist + i, idx + i);
    }
    for (uint64_t i = 0; i < st->n; i++) {
        const float v = km_dot(pts + i * d, pts + i * d, d) + dist[i];
        dist[i] = v > 0 ? v : 0;
    }
}
