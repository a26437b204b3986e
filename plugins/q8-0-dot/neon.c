/*
 * neon.c -- q8-0-dot candidate "neon": ggml's NEON path without the dotprod
 * extension (its ggml_vdotq_s32 fallback: vmull_s8 to int16, vpadalq_s16 to
 * int32), since kbench declares Advanced SIMD only and not every aarch64 core
 * has SDOT. prepare unpacks the weights into contiguous 32-byte qs and f32
 * scales; each block leaves four int32 partial sums, converted and scaled
 * into an f32 vector accumulator (vmlaq_n_f32, as ggml), so there is no
 * horizontal sum per block. Four rows share each block of the vector.
 */
#include <arm_neon.h>

#define Q8_NAME     "neon"
#define Q8_FEATURES KB_CPU_NEON
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

static inline int32x4_t q8_dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_s8(vget_high_s8(a), vget_high_s8(b)));
}

static inline __attribute__((always_inline)) void q8_rows(const q8_state *st, uint32_t r, int nr,
                                                          float *y)
{
    const uint32_t nb = st->nb;
    float32x4_t f[4];
    for (int k = 0; k < nr; k++) f[k] = vdupq_n_f32(0.0f);
    for (uint32_t b = 0; b < nb; b++) {
        const int8x16_t y0 = vld1q_s8((const int8_t *)st->yq + b * 32);
        const int8x16_t y1 = vld1q_s8((const int8_t *)st->yq + b * 32 + 16);
        for (int k = 0; k < nr; k++) {
            const int8_t *w = (const int8_t *)st->wq + ((uint64_t)(r + k) * nb + b) * 32;
            int32x4_t a = q8_dot16(vdupq_n_s32(0), vld1q_s8(w), y0);
            a = q8_dot16(a, vld1q_s8(w + 16), y1);
            const float d = st->dx[(uint64_t)(r + k) * nb + b] * st->dy[b];
            f[k] = vmlaq_n_f32(f[k], vcvtq_f32_s32(a), d);
        }
    }
    for (int k = 0; k < nr; k++) y[r + k] = vaddvq_f32(f[k]);
}

static void q8_kernel(const q8_state *st, const uint8_t *x, float *y)
{
    q8_interleave(x, st->nb, 1, 0, 0, st->yq);
    q8_scales(x, st->nb, st->nb, st->dy);
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q8_rows(st, r, 4, y);
    for (; r < st->rows; r++) q8_rows(st, r, 1, y);
}
