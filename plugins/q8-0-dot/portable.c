/*
 * portable.c -- q8-0-dot candidate "portable": plain C. prepare unpacks the
 * weights once into contiguous 32-byte qs and f32 scales, run converts the
 * vector's scales once per call (not once per row, as the oracle does), and
 * the rows go four at a time so that each block of the vector is loaded once
 * for four rows. The int8 block sums are loops the compiler vectorizes; the
 * f32 sum keeps the oracle's order, so the result is the oracle's bit for bit.
 */
#define Q8_NAME     "portable"
#define Q8_FEATURES 0
#define Q8_GROUP    1
#include "common.h"

static int q8_pack(q8_state *st)
{
    const uint64_t rb = (uint64_t)st->nb * 32;
    st->wq = q8_alloc(st, st->rows * rb);
    st->dx = q8_alloc(st, sizeof(float) * st->rows * (uint64_t)st->nb);
    st->yq = q8_alloc(st, rb);
    st->dy = q8_alloc(st, sizeof(float) * st->nb);
    if (!st->wq || !st->dx || !st->yq || !st->dy) return -1;
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *src = st->w + (uint64_t)r * st->nb * Q8_BLOCK;
        q8_interleave(src, st->nb, 1, 0, 0, st->wq + r * rb);
        q8_scales(src, st->nb, st->nb, st->dx + (uint64_t)r * st->nb);
    }
    return 0;
}

static inline int32_t q8_dot32(const int8_t *restrict a, const int8_t *restrict b)
{
    int32_t s = 0;
    for (int j = 0; j < 32; j++) s += a[j] * b[j];
    return s;
}

static void q8_kernel(const q8_state *st, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    q8_interleave(x, nb, 1, 0, 0, st->yq);
    q8_scales(x, nb, nb, st->dy);
    const int8_t *yq = (const int8_t *)st->yq;
    const float *dy = st->dy;
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) {
        const int8_t *w0 = (const int8_t *)st->wq + (uint64_t)r * nb * 32;
        const int8_t *w1 = w0 + nb * 32, *w2 = w1 + nb * 32, *w3 = w2 + nb * 32;
        const float *d0 = st->dx + (uint64_t)r * nb, *d1 = d0 + nb, *d2 = d1 + nb, *d3 = d2 + nb;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (uint32_t b = 0; b < nb; b++) {
            const int8_t *q = yq + b * 32;
            s0 += q8_dot32(w0 + b * 32, q) * (d0[b] * dy[b]);
            s1 += q8_dot32(w1 + b * 32, q) * (d1[b] * dy[b]);
            s2 += q8_dot32(w2 + b * 32, q) * (d2[b] * dy[b]);
            s3 += q8_dot32(w3 + b * 32, q) * (d3[b] * dy[b]);
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < st->rows; r++) {
        const int8_t *w0 = (const int8_t *)st->wq + (uint64_t)r * nb * 32;
        const float *d0 = st->dx + (uint64_t)r * nb;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++) s0 += q8_dot32(w0 + b * 32, yq + b * 32) * (d0[b] * dy[b]);
        y[r] = s0;
    }
}
