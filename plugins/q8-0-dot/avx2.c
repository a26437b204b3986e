/*
 * avx2.c -- q8-0-dot candidate "avx2": ggml's AVX2 idea (mul_sum_i8_pairs:
 * |a| times b with a's sign, _mm256_maddubs_epi16 then _mm256_madd_epi16 to
 * int32) on a layout that needs no horizontal sum per block. prepare
 * interleaves the weights eight blocks to a group (common.h q8_interleave):
 * each 32-bit lane of a 256-bit vector holds 4 bytes of one block, so the 8
 * slices of a group leave each lane the int32 sum of its block, and one
 * convert, one multiply by the eight scale products and one FMA finish eight
 * blocks. run lays out the vector the same way once per call, with |y|, and
 * four rows share each vector slice. Needs AVX2 and FMA.
 */
#include <immintrin.h>

#define Q8_NAME     "avx2"
#define Q8_FEATURES (KB_CPU_AVX2 | KB_CPU_FMA)
#define Q8_GROUP    8
#include "common.h"

static int q8_pack(q8_state *st)
{
    const uint64_t rb = (uint64_t)st->nbp * 32;
    st->wq = q8_alloc(st, st->rows * rb);
    st->dx = q8_alloc(st, sizeof(float) * st->rows * (uint64_t)st->nbp);
    st->yq = q8_alloc(st, rb);
    st->ya = q8_alloc(st, rb);
    st->dy = q8_alloc(st, sizeof(float) * st->nbp);
    if (!st->wq || !st->dx || !st->yq || !st->ya || !st->dy) return -1;
    for (uint32_t r = 0; r < st->rows; r++) {
        const uint8_t *src = st->w + (uint64_t)r * st->nb * Q8_BLOCK;
        q8_interleave(src, st->nb, Q8_GROUP, 0, 0, st->wq + r * rb);
        q8_scales(src, st->nb, st->nbp, st->dx + (uint64_t)r * st->nbp);
    }
    return 0;
}

static inline __attribute__((always_inline)) void q8_rows(const q8_state *st, uint32_t r, int nr,
                                                          float *y)
{
    const uint64_t rb = (uint64_t)st->nbp * 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 f[4];
    for (int k = 0; k < nr; k++) f[k] = _mm256_setzero_ps();
    for (uint32_t g = 0; g < st->nbp / 8; g++) {
        const uint8_t *yq = st->yq + g * 256, *ya = st->ya + g * 256;
        __m256i a[4];
        for (int k = 0; k < nr; k++) a[k] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i yv = _mm256_load_si256((const __m256i *)(yq + 32 * j));
            const __m256i av = _mm256_load_si256((const __m256i *)(ya + 32 * j));
            for (int k = 0; k < nr; k++) {
                const __m256i w = _mm256_load_si256(
                    (const __m256i *)(st->wq + (r + k) * rb + g * 256 + 32 * j));
                const __m256i p = _mm256_maddubs_epi16(av, _mm256_sign_epi8(w, yv));
                a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(p, ones));
            }
        }
        const __m256 dyv = _mm256_load_ps(st->dy + g * 8);
        for (int k = 0; k < nr; k++) {
            const __m256 d = _mm256_mul_ps(_mm256_load_ps(st->dx + (r + k) * (uint64_t)st->nbp + g * 8), dyv);
            f[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[k]), d, f[k]);
        }
    }
    for (int k = 0; k < nr; k++) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(f[k]), _mm256_extractf128_ps(f[k], 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        y[r + k] = _mm_cvtss_f32(s);
    }
}

static void q8_kernel(const q8_state *st, const uint8_t *x, float *y)
{
    q8_interleave(x, st->nb, Q8_GROUP, 0, 0, st->yq);
    q8_scales(x, st->nb, st->nbp, st->dy);
    for (uint32_t i = 0; i < st->nbp * 32; i += 32) {
        const __m256i v = _mm256_load_si256((const __m256i *)(st->yq + i));
        _mm256_store_si256((__m256i *)(st->ya + i), _mm256_abs_epi8(v));
    }
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q8_rows(st, r, 4, y);
    for (; r < st->rows; r++) q8_rows(st, r, 1, y);
}
