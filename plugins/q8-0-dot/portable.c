/*
 * portable.c -- q8-0-dot candidate "portable": plain C on ggml's blocks. The
 * vector's scales are converted once per call (the oracle converts them once
 * per row) and its qs copied to an aligned array; the rows go four at a
 * time, so each block of the vector is read once for four rows and four
 * independent sums hide the f32 add latency. The int8 block sums are loops
 * the compiler vectorizes; each row's f32 sum keeps the oracle's order, so
 * the result is the oracle's bit for bit.
 */
#define Q8_NAME     "portable"
#define Q8_FEATURES 0
#include "common.h"

static void q8_kernel(const q8_state *st, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q8_BLOCK;
    q8_unpack(st, x);
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) {
        const uint8_t *w0 = st->w + r * rb, *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (uint32_t b = 0; b < nb; b++) {
            const int8_t *q = st->yq + b * 32;
            const float d = st->dy[b];
            const uint32_t o = b * Q8_BLOCK;
            s0 += q8_sumi(w0 + o, q) * (q8_fp16_to_fp32(w0 + o) * d);
            s1 += q8_sumi(w1 + o, q) * (q8_fp16_to_fp32(w1 + o) * d);
            s2 += q8_sumi(w2 + o, q) * (q8_fp16_to_fp32(w2 + o) * d);
            s3 += q8_sumi(w3 + o, q) * (q8_fp16_to_fp32(w3 + o) * d);
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < st->rows; r++) {
        const uint8_t *w0 = st->w + r * rb;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++)
            s0 += q8_sumi(w0 + b * Q8_BLOCK, st->yq + b * 32) *
                  (q8_fp16_to_fp32(w0 + b * Q8_BLOCK) * st->dy[b]);
        y[r] = s0;
    }
}
