/*
 * avx512.c -- q8-0-dot candidate "avx512": VNNI's _mm512_dpbusd_epi32 (u8 x
 * s8, four products summed into each int32 lane), as ggml's AVX512-VNNI
 * build uses it, on ggml's own blocks, two blocks to a 512-bit vector. dpbusd
 * wants one side unsigned: the weights' qs are flipped to x + 128 (XOR 0x80)
 * and each pair's accumulator starts at -128 times the vector's qs summed
 * four to a lane (once per call, by dpbusd against ones), which takes the
 * 128 back out exactly. Each pair's sixteen lanes are converted and scaled by their
 * block's dx * dy in one FMA; the weights' fp16 scales are converted eight at
 * a time (_mm512_cvtph_ps), and four rows share each block of the vector.
 * Blocks past the last whole eight go through the scalar loop. Needs
 * AVX-512 F and VNNI.
 */
#include <immintrin.h>

#define Q8_NAME     "avx512"
#define Q8_FEATURES (KB_CPU_AVX512F | KB_CPU_AVX512VNNI)
#include "common.h"

/* The scales of eight blocks from p (34 bytes apart) in f32, in lanes 0-7. */
static inline __m512 q8_half8(const uint8_t *p)
{
    uint16_t h[16] = {0};
    for (int k = 0; k < 8; k++) h[k] = (uint16_t)(p[k * Q8_BLOCK] | p[k * Q8_BLOCK + 1] << 8);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
}

static inline __attribute__((always_inline)) void q8_rows(const q8_state *st, const uint8_t *wm,
                                                          uint32_t r, int nr, float *y)
{
    const uint32_t nb = st->nb;
    const uint8_t *w[4];
    __m512 f[4];
    float tail[4];
    for (int k = 0; k < nr; k++)
        w[k] = wm + (uint64_t)(r + k) * nb * Q8_BLOCK, f[k] = _mm512_setzero_ps(), tail[k] = 0;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    uint32_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const __m512 dy8 = _mm512_castps256_ps512(_mm256_load_ps(st->dy + b));
        __m512 s[4];
        for (int k = 0; k < nr; k++) s[k] = _mm512_mul_ps(q8_half8(w[k] + b * Q8_BLOCK), dy8);
        for (int p = 0; p < 4; p++) {
            const uint32_t bb = b + 2 * p;
            const __m512i yv = _mm512_load_si512(st->yq + bb * 32);
            const __m512i bias = _mm512_load_si512(st->yb + bb * 8);
            const __m512i idx =
                _mm512_inserti64x4(_mm512_set1_epi32(2 * p), _mm256_set1_epi32(2 * p + 1), 1);
            for (int k = 0; k < nr; k++) {
                const uint8_t *q = w[k] + bb * Q8_BLOCK + 2;
                const __m512i xv = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)q)),
                    _mm256_loadu_si256((const __m256i *)(q + Q8_BLOCK)), 1);
                const __m512i a = _mm512_dpbusd_epi32(bias, _mm512_xor_si512(xv, flip), yv);
                f[k] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_permutexvar_ps(idx, s[k]), f[k]);
            }
        }
    }
    for (; b < nb; b++)
        for (int k = 0; k < nr; k++)
            tail[k] += q8_sumi(w[k] + b * Q8_BLOCK, st->yq + b * 32) *
                       (q8_fp16_to_fp32(w[k] + b * Q8_BLOCK) * st->dy[b]);
    for (int k = 0; k < nr; k++) y[r + k] = _mm512_reduce_add_ps(f[k]) + tail[k];
}

static void q8_kernel(const q8_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    q8_unpack(st, x);
    /* yb: -128 times each lane's four qs, so that dpbusd on x + 128 sums x * y */
    const __m512i one = _mm512_set1_epi8(1);
    for (uint32_t i = 0; i < st->nbp * 32; i += 64) {
        const __m512i s =
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), one, _mm512_load_si512(st->yq + i));
        _mm512_store_si512(st->yb + i / 4,
                           _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 7)));
    }
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q8_rows(st, wm, r, 4, y);
    for (; r < st->rows; r++) q8_rows(st, wm, r, 1, y);
}
