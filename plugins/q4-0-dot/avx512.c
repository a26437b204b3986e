/*
 * avx512.c -- q4-0-dot candidate "avx512": VNNI's _mm512_dpbusd_epi32 (u8 x
 * s8, four products summed into each int32 lane), as ggml's AVX512-VNNI
 * build uses it, on ggml's own blocks, four blocks to a 512-bit register:
 * their 4 x 16 bytes of nibbles are loaded side by side, the low nibbles
 * (elements 0..15) and the high ones (16..31) masked apart, and two dpbusd
 * take them, unsigned 0..15, against the vector's qs laid out to match (made
 * once per call: each block's first 16 qs in one register, its last 16 in
 * another). Each accumulator starts at -8 times the vector's bytes summed four
 * to a lane, which restores ggml's -8 exactly; then one convert and one FMA
 * with each block's dx * dy (scales converted eight at a time with
 * _mm512_cvtph_ps) per four blocks. Four rows share the vector. Blocks past
 * the last whole eight go through the scalar loop. Needs AVX-512 F and VNNI.
 */
#include <immintrin.h>

#define Q4_NAME     "avx512"
#define Q4_FEATURES (KB_CPU_AVX512F | KB_CPU_AVX512VNNI)
#include "common.h"

/* The scales of eight blocks from p (18 bytes apart) in f32, in lanes 0-7. */
static inline __m512 q4_half8(const uint8_t *p)
{
    uint16_t h[16] = {0};
    for (int k = 0; k < 8; k++) h[k] = (uint16_t)(p[k * Q4_BLOCK] | p[k * Q4_BLOCK + 1] << 8);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
}

static inline __attribute__((always_inline)) void q4_rows(const q4_state *st, const uint8_t *wm,
                                                          uint32_t r, int nr, float *y)
{
    const uint32_t nb = st->nb;
    const uint8_t *w[4];
    __m512 f[4];
    float tail[4];
    for (int k = 0; k < nr; k++)
        w[k] = wm + (uint64_t)(r + k) * nb * Q4_BLOCK, f[k] = _mm512_setzero_ps(), tail[k] = 0;
    const __m512i low = _mm512_set1_epi8(0x0F);
    uint32_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const __m512 dy8 = _mm512_castps256_ps512(_mm256_load_ps(st->dy + b));
        __m512 s[4];
        for (int k = 0; k < nr; k++) s[k] = _mm512_mul_ps(q4_half8(w[k] + b * Q4_BLOCK), dy8);
        for (int q = 0; q < 2; q++) {
            const uint32_t bq = b + 4 * q;
            const __m512i ylo = _mm512_load_si512(st->ya + bq * 32);
            const __m512i yhi = _mm512_load_si512(st->ya + bq * 32 + 64);
            const __m512i bias = _mm512_load_si512(st->yb + bq * 4);
            const __m512i idx = _mm512_set_epi32(
                4 * q + 3, 4 * q + 3, 4 * q + 3, 4 * q + 3, 4 * q + 2, 4 * q + 2, 4 * q + 2,
                4 * q + 2, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q, 4 * q, 4 * q, 4 * q);
            for (int k = 0; k < nr; k++) {
                const uint8_t *p = w[k] + bq * Q4_BLOCK + 2;
                __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
                z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + Q4_BLOCK)), 1);
                z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 2 * Q4_BLOCK)), 2);
                z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 3 * Q4_BLOCK)), 3);
                __m512i a = _mm512_dpbusd_epi32(bias, _mm512_and_si512(z, low), ylo);
                a = _mm512_dpbusd_epi32(a, _mm512_and_si512(_mm512_srli_epi32(z, 4), low), yhi);
                f[k] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_permutexvar_ps(idx, s[k]), f[k]);
            }
        }
    }
    for (; b < nb; b++)
        for (int k = 0; k < nr; k++)
            tail[k] += q4_sumi(w[k] + b * Q4_BLOCK, st->yq + b * 32) *
                       q4_fp16_to_fp32(w[k] + b * Q4_BLOCK) * st->dy[b];
    for (int k = 0; k < nr; k++) y[r + k] = _mm512_reduce_add_ps(f[k]) + tail[k];
}

static void q4_kernel(const q4_state *st, const uint8_t *wm, const uint8_t *x, float *y)
{
    q4_unpack(st, x);
    /* ya: per four blocks, their qs 0..15 (64 bytes), then their qs 16..31;
     * yb: per four blocks, -8 times each lane's four bytes of both */
    for (uint32_t b = 0; b < st->nbp; b++) {
        uint8_t *o = st->ya + (uint64_t)(b / 4) * 128 + (b % 4) * 16;
        memcpy(o, st->yq + (uint64_t)b * 32, 16);
        memcpy(o + 64, st->yq + (uint64_t)b * 32 + 16, 16);
    }
    const __m512i one = _mm512_set1_epi8(1);
    for (uint32_t b = 0; b < st->nbp; b += 4) {
        __m512i s =
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), one, _mm512_load_si512(st->ya + b * 32));
        s = _mm512_dpbusd_epi32(s, one, _mm512_load_si512(st->ya + b * 32 + 64));
        _mm512_store_si512(st->yb + b * 4,
                           _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 3)));
    }
    uint32_t r = 0;
    for (; r + 4 <= st->rows; r += 4) q4_rows(st, wm, r, 4, y);
    for (; r < st->rows; r++) q4_rows(st, wm, r, 1, y);
}
