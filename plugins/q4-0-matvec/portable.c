/*
 * portable.c -- q4-0-matvec candidate "portable": plain C for every CPU.
 * Once a call, the vector's scales are converted to f32 and each block's
 * sum of int8s is kept, so that a row's block needs only the unsigned
 * nibbles: sumi = sum (q & 15) y[j] + (q >> 4) y[j + 16] - 8 sum y, the
 * oracle's integer exactly. Rows go four at a time, so each vector block
 * is read once for four rows; per row the blocks are summed in f32 as
 * sumi * (dx * dy) in block order, as ggml's SIMD paths do; dx, a normal
 * half in practice, by moving its bits.
 */
#define MV_NAME     "portable"
#define MV_FEATURES 0
#include "common.h"

typedef struct mv_yblock {
    int8_t q[QK];
    float d;
    int32_t sum8; /* 8 * sum of q */
} mv_yblock;

/* fp16 to f32: a normal half (every scale a model holds, in practice) by
 * moving its bits; zero, subnormals, infinities and NaN by ggml's
 * conversion. Exact either way. */
static inline float mv_half(const uint8_t *b)
{
    const uint32_t h = (uint32_t)(b[0] | b[1] << 8), e = h & 0x7C00;
    if (e == 0 || e == 0x7C00) return mv_fp16(b);
    return mv_bits_f32((h & 0x8000) << 16 | (((h & 0x7FFF) << 13) + UINT32_C(0x38000000)));
}

static inline int32_t mv_dot_nibbles(const uint8_t *xq, const int8_t *yq)
{
    int32_t s = 0;
    for (int j = 0; j < QK / 2; j++) s += (xq[j] & 0x0F) * yq[j] + (xq[j] >> 4) * yq[j + QK / 2];
    return s;
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t row_bytes = (uint64_t)nb * Q4_BLOCK;
    mv_yblock *yb = st->scratch;
    for (uint32_t b = 0; b < nb; b++) {
        const uint8_t *src = x + (uint64_t)b * Q8_BLOCK;
        int32_t s = 0;
        memcpy(yb[b].q, src + 2, QK);
        for (int j = 0; j < QK; j++) s += yb[b].q[j];
        yb[b].d = mv_fp16(src);
        yb[b].sum8 = 8 * s;
    }
    uint32_t i = 0;
    for (; i + 4 <= st->rows; i += 4) {
        const uint8_t *r0 = st->w + i * row_bytes, *r1 = r0 + row_bytes;
        const uint8_t *r2 = r1 + row_bytes, *r3 = r2 + row_bytes;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (uint32_t b = 0; b < nb; b++) {
            const uint64_t o = (uint64_t)b * Q4_BLOCK;
            const int8_t *q = yb[b].q;
            const float d = yb[b].d;
            const int32_t c = yb[b].sum8;
            s0 += (float)(mv_dot_nibbles(r0 + o + 2, q) - c) * (mv_half(r0 + o) * d);
            s1 += (float)(mv_dot_nibbles(r1 + o + 2, q) - c) * (mv_half(r1 + o) * d);
            s2 += (float)(mv_dot_nibbles(r2 + o + 2, q) - c) * (mv_half(r2 + o) * d);
            s3 += (float)(mv_dot_nibbles(r3 + o + 2, q) - c) * (mv_half(r3 + o) * d);
        }
        y[i] = s0, y[i + 1] = s1, y[i + 2] = s2, y[i + 3] = s3;
    }
    for (; i < st->rows; i++) {
        const uint8_t *r0 = st->w + i * row_bytes;
        float s0 = 0;
        for (uint32_t b = 0; b < nb; b++) {
            const uint64_t o = (uint64_t)b * Q4_BLOCK;
            s0 += (float)(mv_dot_nibbles(r0 + o + 2, yb[b].q) - yb[b].sum8) *
                  (mv_half(r0 + o) * yb[b].d);
        }
        y[i] = s0;
    }
}
