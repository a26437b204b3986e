/*
 * baseline.c -- q4-0-matvec candidate "baseline": the oracle's kernel
 * unchanged (oracles/q4-0-matvec/oracle.c mv_vec_dot, ggml's scalar
 * ggml_vec_dot_q4_0_q8_0 row by row): per block the integer dot of the
 * nibbles minus 8 with the int8s, then sumf += sumi * dx * dy in f32, left
 * to right, unfused. Timed against the oracle it shows the harness's noise
 * floor (it must never be kept); it is also the file to copy.
 */
#define MV_NAME     "baseline"
#define MV_FEATURES 0
#include "common.h"

static float mv_vec_dot(uint32_t n, const uint8_t *x, const uint8_t *y)
{
    const int nb = (int)(n / QK);
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        const uint8_t *xb = x + (uint64_t)ib * Q4_BLOCK, *yb = y + (uint64_t)ib * Q8_BLOCK;
        const uint8_t *xq = xb + 2;
        const int8_t *yq = (const int8_t *)(yb + 2);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK / 2; ++j) {
            const int v0 = (xq[j] & 0x0F) - 8;
            const int v1 = (xq[j] >> 4) - 8;
            sumi0 += v0 * yq[j];
            sumi1 += v1 * yq[j + QK / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf += sumi * mv_fp16(xb) * mv_fp16(yb);
    }
    return sumf;
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    const uint64_t row_bytes = (uint64_t)st->nb * Q4_BLOCK;
    for (uint32_t i = 0; i < st->rows; i++) y[i] = mv_vec_dot(st->n, st->w + i * row_bytes, x);
}
