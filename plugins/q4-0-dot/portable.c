/*
 * portable.c -- q4-0-dot candidate "portable": plain C on ggml's blocks. The
 * vector's scales are converted once per call (the oracle converts them once
 * per row) and its qs copied to an aligned array with each block's sum of
 * qs; ggml's -8 on every nibble then comes off once per block, as -8 times
 * that sum, so the per-row loop multiplies the bare nibbles (the same int32
 * sum, exactly). Each row's f32 sum keeps the oracle's order ((sumi * dx) *
 * dy, blocks in order), so the result is the oracle's bit for bit.
 */
#define Q4_NAME     "portable"
#define Q4_FEATURES 0
#include "common.h"

static inline int32_t q4_sumu(const uint8_t *restrict x, const int8_t *restrict q)
{
    int32_t s0 = 0, s1 = 0;
    for (int j = 0; j < QK8_0 / 2; j++) {
        s0 += (x[j] & 0x0F) * q[j];
        s1 += (x[j] >> 4) * q[j + QK8_0 / 2];
    }
    return s0 + s1;
}

static void q4_kernel(const q4_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q4_BLOCK;
    q4_unpack(st, x);
    for (uint32_t b = 0; b < nb; b++) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += st->yq[b * 32 + j];
        st->yb[b] = 8 * s;
    }
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *w0 = wm + r * rb;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++)
            s0 += (q4_sumu(w0 + b * Q4_BLOCK + 2, st->yq + b * 32) - st->yb[b]) *
                  q4_fp16_to_fp32(w0 + b * Q4_BLOCK) * st->dy[b];
        y[r] = s0;
    }
}
