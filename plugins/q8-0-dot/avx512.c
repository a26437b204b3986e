/*
 * avx512.c -- q8-0-dot candidate "avx512": VNNI's _mm512_dpbusd_epi32 (u8 x
 * s8, four products summed into each int32 lane), as ggml's AVX512-VNNI path
 * uses it, on a layout with one block per 32-bit lane: prepare interleaves
 * the weights sixteen blocks to a group (common.h q8_interleave) and stores
 * them as unsigned, w + 128 (XOR 0x80), so dpbusd takes them as its unsigned
 * side; run lays out the vector the same way once per call and starts each
 * group's accumulator at -128 times each block's sum of the vector's qs,
 * which takes the 128 back out exactly. Eight dpbusd per group of sixteen
 * blocks leave each lane its block's int32 sum; then one convert, one
 * multiply by the scale products and one FMA. Four rows share each vector
 * slice. Needs AVX-512 F and VNNI.
 */
#include <immintrin.h>

#define Q8_NAME     "avx512"
#define Q8_FEATURES (KB_CPU_AVX512F | KB_CPU_AVX512VNNI)
#define Q8_GROUP    16
#include "common.h"

static int q8_pack(q8_state *st)
{
    const uint64_t rb = (uint64_t)st->nbp * 32;
    st->wq = q8_alloc(st, st->rows * rb);
    st->dx = q8_alloc(st, sizeof(float) * st->rows * (uint64_t)st->nbp);
    st->yq = q8_alloc(st, rb);
    st->dy = q8_alloc(st, sizeof(float) * st->nbp);
    st->ys = q8_alloc(st, sizeof(int32_t) * st->nbp);
    if (!st->wq || !st->dx || !st->yq || !st->dy || !st->ys) return -1;
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *src = st->w + (uint64_t)r * st->nb * Q8_BLOCK;
        q8_interleave(src, st->nb, Q8_GROUP, 0x80, 0x80, st->wq + r * rb);
        q8_scales(src, st->nb, st->nbp, st->dx + (uint64_t)r * st->nbp);
    }
    return 0;
}

static inline __attribute__((always_inline)) void q8_rows(const q8_state *st, uint32_t r, int nr,
                                                          float *y)
{
    const uint64_t rb = (uint64_t)st->nbp * 32;
    __m512 f[4];
    for (int k = 0; k < nr; k++) f[k] = _mm512_setzero_ps();
    for (uint32_t g = 0; g < st->nbp / 16; g++) {
        const uint8_t *yq = st->yq + g * 512;
        const __m512i bias = _mm512_load_si512(st->ys + g * 16);
        __m512i a[4], b[4];
        for (int k = 0; k < nr; k++) a[k] = bias, b[k] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j += 2) {
            const __m512i y0 = _mm512_load_si512(yq + 64 * j);
            const __m512i y1 = _mm512_load_si512(yq + 64 * (j + 1));
            for (int k = 0; k < nr; k++) {
                const uint8_t *w = st->wq + (r + k) * rb + g * 512 + 64 * j;
                a[k] = _mm512_dpbusd_epi32(a[k], _mm512_load_si512(w), y0);
                b[k] = _mm512_dpbusd_epi32(b[k], _mm512_load_si512(w + 64), y1);
            }
        }
        const __m512 dyv = _mm512_load_ps(st->dy + g * 16);
        for (int k = 0; k < nr; k++) {
            const __m512 d = _mm512_mul_ps(_mm512_load_ps(st->dx + (r + k) * (uint64_t)st->nbp + g * 16), dyv);
            f[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a[k], b[k])), d, f[k]);
        }
    }
    for (int k = 0; k < nr; k++) y[r + k] = _mm512_reduce_add_ps(f[k]);
}

static void q8_kernel(const q8_state *st, const uint8_t *x, float *y)
{
    q8_interleave(x, st->nb, Q8_GROUP, 0, 0, st->yq);
    q8_scales(x, st->nb, st->nbp, st->dy);
    for (uint32_t b = 0; b < st->nbp; b++) {
        int32_t s = 0;
        if (b < st->nb)
            for (int j = 0; j < 32; j++) s += (int8_t)x[(uint64_t)b * Q8_BLOCK + 2 + j];
        st->ys[b] = -128 * s;
    }
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q8_rows(st, r, 4, y);
    for (; r < st->rows; r++) q8_rows(st, r, 1, y);
}
