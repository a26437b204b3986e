/*
 * portable.c -- q8-0-dot candidate "portable": plain C on ggml's blocks. The
 * vector is unpacked once per call: its scales to f32 (the oracle converts
 * them once per row) and its qs widened to int16, so that the per-row block
 * sum widens only the weights before the compiler's vectorized multiply-add.
 * Each row's f32 sum keeps the oracle's order, so the result is the oracle's
 * bit for bit.
 */
#define Q8_NAME     "portable"
#define Q8_FEATURES 0
#include "common.h"

static inline int32_t q8_sumi16(const uint8_t *restrict x, const int16_t *restrict q)
{
    const int8_t *a = (const int8_t *)(x + 2);
    int32_t s = 0;
    for (int j = 0; j < QK8_0; j++) s += (int16_t)a[j] * q[j];
    return s;
}

static void q8_kernel(const q8_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q8_BLOCK;
    q8_unpack(st, x);
    int16_t *q16 = (int16_t *)st->yb; /* nbp * 32 int16 */
    for (uint32_t i = 0; i < nb * 32; i++) q16[i] = st->yq[i];
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *w0 = wm + r * rb;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++)
            s0 += q8_sumi16(w0 + b * Q8_BLOCK, q16 + b * 32) *
                  (q8_fp16_to_fp32(w0 + b * Q8_BLOCK) * st->dy[b]);
        y[r] = s0;
    }
}
