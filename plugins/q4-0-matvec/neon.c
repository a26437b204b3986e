/*
 * neon.c -- q4-0-matvec candidate "neon" (AArch64 Advanced SIMD, Armv8.0:
 * no dot-product extension), on ggml's own blocks, as ggml's NEON path
 * without __ARM_FEATURE_DOTPROD. Per row and block: the 16 bytes of
 * nibbles become two int8x16 (low nibbles: elements 0-15, high: 16-31,
 * each minus 8); vmull/vmlal_s8 multiply them with the vector's int8s into
 * eight int16 sums of four products (at most 4 * 8 * 128, no overflow),
 * vpaddlq widens them to four int32, the oracle's sumi in parts exactly;
 * converted to f32 they go into four lanes with dx * dy (dx by one
 * fcvtl) by one fmla. Four rows share each vector block's loads.
 */
#include <arm_neon.h>

#define MV_NAME     "neon"
#define MV_FEATURES KB_CPU_NEON
#include "common.h"

static inline float32x4_t mv_block(const uint8_t *p, int8x16_t y0, int8x16_t y1, float dy,
                                   float32x4_t acc)
{
    const uint8x16_t q = vld1q_u8(p + 2);
    const int8x16_t lo =
        vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
    int16x8_t s = vmull_s8(vget_low_s8(lo), vget_low_s8(y0));
    s = vmlal_high_s8(s, lo, y0);
    s = vmlal_s8(s, vget_low_s8(hi), vget_low_s8(y1));
    s = vmlal_high_s8(s, hi, y1);
    uint16_t h;
    memcpy(&h, p, sizeof h);
    const float dx = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
    return vfmaq_n_f32(acc, vcvtq_f32_s32(vpaddlq_s16(s)), dx * dy);
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q4_BLOCK;
    float *dy = st->scratch;
    for (uint32_t b = 0; b < nb; b++) dy[b] = mv_fp16(x + (uint64_t)b * Q8_BLOCK);
    uint32_t i = 0;
    for (; i + 4 <= st->rows; i += 4) {
        const uint8_t *r0 = st->w + i * rb;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        for (uint32_t b = 0; b < nb; b++) {
            const int8_t *yq = (const int8_t *)(x + (uint64_t)b * Q8_BLOCK + 2);
            const int8x16_t y0 = vld1q_s8(yq), y1 = vld1q_s8(yq + 16);
            const uint8_t *p = r0 + (uint64_t)b * Q4_BLOCK;
            a0 = mv_block(p, y0, y1, dy[b], a0);
            a1 = mv_block(p + rb, y0, y1, dy[b], a1);
            a2 = mv_block(p + 2 * rb, y0, y1, dy[b], a2);
            a3 = mv_block(p + 3 * rb, y0, y1, dy[b], a3);
        }
        y[i] = vaddvq_f32(a0), y[i + 1] = vaddvq_f32(a1);
        y[i + 2] = vaddvq_f32(a2), y[i + 3] = vaddvq_f32(a3);
    }
    for (; i < st->rows; i++) {
        const uint8_t *r0 = st->w + i * rb;
        float32x4_t a0 = vdupq_n_f32(0);
        for (uint32_t b = 0; b < nb; b++) {
            const int8_t *yq = (const int8_t *)(x + (uint64_t)b * Q8_BLOCK + 2);
            a0 = mv_block(r0 + (uint64_t)b * Q4_BLOCK, vld1q_s8(yq), vld1q_s8(yq + 16), dy[b], a0);
        }
        y[i] = vaddvq_f32(a0);
    }
}
