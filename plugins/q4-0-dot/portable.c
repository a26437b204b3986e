/*
 * portable.c -- q4-0-dot candidate "portable": plain C on ggml's blocks. The
 * vector's scales are converted once per call (the oracle converts them once
 * per row) and its qs copied to an aligned array; each row's f32 sum keeps
 * the oracle's order ((sumi * dx) * dy, blocks in order), so the result is
 * the oracle's bit for bit.
 */
#define Q4_NAME     "portable"
#define Q4_FEATURES 0
#include "common.h"

static void q4_kernel(const q4_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q4_BLOCK;
    q4_unpack(st, x);
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *w0 = wm + r * rb;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++)
            s0 += q4_sumi(w0 + b * Q4_BLOCK, st->yq + b * 32) * q4_fp16_to_fp32(w0 + b * Q4_BLOCK) *
                  st->dy[b];
        y[r] = s0;
    }
}
