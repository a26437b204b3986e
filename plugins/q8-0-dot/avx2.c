/*
 * avx2.c -- q8-0-dot candidate "avx2": ggml's AVX2 kernel (mul_sum_i8_pairs:
 * _mm256_maddubs_epi16 of |y| and x with y's sign, _mm256_madd_epi16 to
 * int32, converted and scaled into an f32 vector with one FMA per block, one
 * horizontal sum per row) on ggml's own blocks, with three changes: |y|, y's
 * qs and scales are unpacked once per call (common.h), not once per row;
 * four rows share each block of the vector; and the weights' fp16 scales are
 * converted eight at a time in integer AVX2 (ggml_compute_fp16_to_fp32's bit
 * recipe, exact; F16C is not among the features kbench declares). Blocks
 * past the last whole eight go through the scalar loop. Needs AVX2 and FMA.
 */
#include <immintrin.h>

#define Q8_NAME     "avx2"
#define Q8_FEATURES (KB_CPU_AVX2 | KB_CPU_FMA)
#include "common.h"

/* The scales of eight blocks from p (34 bytes apart) in f32, exactly. */
static inline __m256 q8_half8(const uint8_t *p)
{
    uint16_t h[8];
    for (int k = 0; k < 8; k++) h[k] = (uint16_t)(p[k * Q8_BLOCK] | p[k * Q8_BLOCK + 1] << 8);
    const __m256i w =
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)h)), 16);
    const __m256i sign = _mm256_and_si256(w, _mm256_set1_epi32((int)0x80000000u));
    const __m256i two_w = _mm256_add_epi32(w, w);
    const __m256 norm =
        _mm256_mul_ps(_mm256_castsi256_ps(_mm256_add_epi32(_mm256_srli_epi32(two_w, 4),
                                                           _mm256_set1_epi32(0x70000000))),
                      _mm256_set1_ps(0x1.0p-112f));
    const __m256 den =
        _mm256_sub_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(two_w, 17),
                                                          _mm256_set1_epi32(126 << 23))),
                      _mm256_set1_ps(0.5f));
    const __m256 is_den = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(1 << 26), _mm256_srli_epi32(two_w, 1)));
    return _mm256_or_ps(_mm256_castsi256_ps(sign), _mm256_blendv_ps(norm, den, is_den));
}

static inline __attribute__((always_inline)) void q8_rows(const q8_state *st, const uint8_t *wm,
                                                          uint32_t r, int nr, float *y)
{
    const uint32_t nb = st->nb;
    const uint8_t *w[4];
    __m256 f[4];
    float tail[4];
    for (int k = 0; k < nr; k++)
        w[k] = wm + (uint64_t)(r + k) * nb * Q8_BLOCK, f[k] = _mm256_setzero_ps(), tail[k] = 0;
    const __m256i ones = _mm256_set1_epi16(1);
    uint32_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const __m256 dy8 = _mm256_load_ps(st->dy + b);
        __m256 s[4];
        for (int k = 0; k < nr; k++) s[k] = _mm256_mul_ps(q8_half8(w[k] + b * Q8_BLOCK), dy8);
        for (int j = 0; j < 8; j++) {
            const __m256i yv = _mm256_load_si256((const __m256i *)(st->yq + (b + j) * 32));
            const __m256i av = _mm256_load_si256((const __m256i *)(st->ya + (b + j) * 32));
            const __m256i idx = _mm256_set1_epi32(j);
            for (int k = 0; k < nr; k++) {
                const __m256i xv =
                    _mm256_loadu_si256((const __m256i *)(w[k] + (b + j) * Q8_BLOCK + 2));
                const __m256i p =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(xv, yv)), ones);
                f[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_permutevar8x32_ps(s[k], idx),
                                       f[k]);
            }
        }
    }
    for (; b < nb; b++)
        for (int k = 0; k < nr; k++)
            tail[k] += q8_sumi(w[k] + b * Q8_BLOCK, st->yq + b * 32) *
                       (q8_fp16_to_fp32(w[k] + b * Q8_BLOCK) * st->dy[b]);
    for (int k = 0; k < nr; k++) {
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(f[k]), _mm256_extractf128_ps(f[k], 1));
        v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        v = _mm_add_ss(v, _mm_movehdup_ps(v));
        y[r + k] = _mm_cvtss_f32(v) + tail[k];
    }
}

static void q8_kernel(const q8_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    q8_unpack(st, x);
    for (uint32_t i = 0; i < st->nbp * 32; i += 32)
        _mm256_store_si256((__m256i *)(st->ya + i),
                           _mm256_abs_epi8(_mm256_load_si256((const __m256i *)(st->yq + i))));
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q8_rows(st, wm, r, 4, y);
    for (; r < st->rows; r++) q8_rows(st, wm, r, 1, y);
}
