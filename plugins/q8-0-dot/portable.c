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

static void q8_kernel(const q8_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q8_BLOCK;
    q8_unpack(st, x);
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *w0 = wm + r * rb;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++)
            s0 += q8_sumi(w0 + b * Q8_BLOCK, st->yq + b * 32) *
                  (q8_fp16_to_fp32(w0 + b * Q8_BLOCK) * st->dy[b]);
        y[r] = s0;
    }
}
