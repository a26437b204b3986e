/*
 * neon.c -- q8-0-dot candidate "neon": ggml's NEON kernel without the
 * dotprod extension (its ggml_vdotq_s32 fallback: vmull_s8 to int16,
 * vpadalq_s16 to int32), since kbench declares Advanced SIMD only and not
 * every aarch64 core has SDOT, on ggml's own blocks. Each block leaves four
 * int32 partial sums, converted and scaled into an f32 vector accumulator
 * (vmlaq_n_f32, as ggml), so there is no horizontal sum per block; the
 * vector's qs and scales are unpacked once per call and four rows share each
 * block of it.
 */
#include <arm_neon.h>

#define Q8_NAME     "neon"
#define Q8_FEATURES KB_CPU_NEON
#include "common.h"

static inline int32x4_t q8_dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_s8(vget_high_s8(a), vget_high_s8(b)));
}

static inline __attribute__((always_inline)) void q8_rows(const q8_state *st, const uint8_t *wm,
                                                          uint32_t r, int nr, float *y)
{
    const uint32_t nb = st->nb;
    const uint8_t *w[4];
    float32x4_t f[4];
    for (int k = 0; k < nr; k++)
        w[k] = wm + (uint64_t)(r + k) * nb * Q8_BLOCK, f[k] = vdupq_n_f32(0.0f);
    for (uint32_t b = 0; b < nb; b++) {
        const int8x16_t y0 = vld1q_s8(st->yq + b * 32), y1 = vld1q_s8(st->yq + b * 32 + 16);
        for (int k = 0; k < nr; k++) {
            const uint8_t *blk = w[k] + b * Q8_BLOCK;
            int32x4_t a = q8_dot16(vdupq_n_s32(0), vld1q_s8((const int8_t *)(blk + 2)), y0);
            a = q8_dot16(a, vld1q_s8((const int8_t *)(blk + 18)), y1);
            f[k] = vmlaq_n_f32(f[k], vcvtq_f32_s32(a), q8_fp16_to_fp32(blk) * st->dy[b]);
        }
    }
    for (int k = 0; k < nr; k++) y[r + k] = vaddvq_f32(f[k]);
}

static void q8_kernel(const q8_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    q8_unpack(st, x);
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q8_rows(st, wm, r, 4, y);
    for (; r < st->rows; r++) q8_rows(st, wm, r, 1, y);
}
