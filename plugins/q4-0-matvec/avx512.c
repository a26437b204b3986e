/*
 * avx512.c -- q4-0-matvec candidate "avx512" (AVX-512 F/BW/VL and VNNI), on
 * ggml's own blocks. Two blocks per 512-bit register: a row's blocks b and
 * b + 1 give [low nibbles of b, low of b + 1, high of b, high of b + 1] (64
 * unsigned bytes, elements 0-15 and 16-31 of each), and once a call the
 * vector's two blocks are laid out to match. One vpdpbusd sums the
 * nibble-times-int8 products four at a time into sixteen i32 lanes that
 * start at -8 * (the four int8s), the oracle's sumi in parts exactly (the
 * nibbles are q + 8); converted to f32 they go into sixteen lanes with
 * dx * dy by one FMA, dx of both blocks converted at once (vcvtph2ps) and
 * spread with one permute. Eight rows share each vector pair's loads (32
 * registers hold their accumulators); an odd last block takes the same
 * path at 256 bits.
 */
#include <immintrin.h>

#define MV_NAME "avx512"
#define MV_FEATURES                                                                  \
    (KB_CPU_AVX2 | KB_CPU_FMA | KB_CPU_AVX512F | KB_CPU_AVX512BW | KB_CPU_AVX512VL | \
     KB_CPU_AVX512VNNI)
#include "common.h"

typedef struct mv_ypair {
    __m512i q;    /* y_b[0:16], y_b+1[0:16], y_b[16:32], y_b+1[16:32] */
    __m512i corr; /* -8 * each four of q, as vpdpbusd sums them */
    __m512 d;     /* dy_b in lanes 0-3 and 8-11, dy_b+1 in 4-7 and 12-15 */
} mv_ypair;

typedef struct mv_ytail {
    __m256i q, corr;
    float d;
} mv_ytail;

static inline uint32_t mv_2halves(const uint8_t *p)
{
    return (uint32_t)(p[0] | p[1] << 8) | (uint32_t)(p[Q4_BLOCK] | p[Q4_BLOCK + 1] << 8) << 16;
}

/* Rows' blocks b, b + 1 at p against the vector pair yp, into acc. */
static inline __m512 mv_pair(const uint8_t *p, const mv_ypair *yp, __m512 acc)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i t =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2))),
                                _mm_loadu_si128((const __m128i *)(p + Q4_BLOCK + 2)), 1);
    const __m512i nib = _mm512_and_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1), m4);
    const __m512i s = _mm512_dpbusd_epi32(yp->corr, nib, yp->q);
    const __m128 dx = _mm_cvtph_ps(_mm_cvtsi32_si128((int)mv_2halves(p)));
    const __m512 d =
        _mm512_mul_ps(_mm512_permutexvar_ps(spread, _mm512_castps128_ps512(dx)), yp->d);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc);
}

static inline __m256 mv_tail(const uint8_t *p, const mv_ytail *yt, __m256 acc)
{
    const __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
    const __m256i nib =
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    const __m256i s = _mm256_dpbusd_epi32(yt->corr, nib, yt->q);
    uint16_t h;
    memcpy(&h, p, sizeof h);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(h) * yt->d);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc);
}

static inline float mv_hsum(__m512 v, __m256 t)
{
    const __m256 s8 = _mm256_add_ps(
        _mm256_add_ps(_mm512_castps512_ps256(v),
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))),
        t);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static void mv_layout(const uint8_t *x, uint32_t nb, mv_ypair *yp, mv_ytail *yt)
{
    const __m512i e8 = _mm512_set1_epi8(8);
    for (uint32_t b = 0; b + 2 <= nb; b += 2) {
        const uint8_t *s0 = x + (uint64_t)b * Q8_BLOCK, *s1 = s0 + Q8_BLOCK;
        mv_ypair *o = yp + b / 2;
        uint8_t q[64];
        memcpy(q, s0 + 2, 16), memcpy(q + 16, s1 + 2, 16);
        memcpy(q + 32, s0 + 18, 16), memcpy(q + 48, s1 + 18, 16);
        o->q = _mm512_loadu_si512(q);
        o->corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                   _mm512_dpbusd_epi32(_mm512_setzero_si512(), e8, o->q));
        uint16_t h0, h1;
        memcpy(&h0, s0, 2), memcpy(&h1, s1, 2);
        const __m512 d0 = _mm512_set1_ps(_cvtsh_ss(h0)), d1 = _mm512_set1_ps(_cvtsh_ss(h1));
        o->d = _mm512_mask_blend_ps(0xF0F0, d0, d1);
    }
    if (nb % 2) {
        const uint8_t *s0 = x + (uint64_t)(nb - 1) * Q8_BLOCK;
        yt->q = _mm256_loadu_si256((const __m256i *)(s0 + 2));
        yt->corr = _mm256_sub_epi32(
            _mm256_setzero_si256(),
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), yt->q));
        uint16_t h;
        memcpy(&h, s0, 2);
        yt->d = _cvtsh_ss(h);
    }
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb, np = nb / 2;
    const uint64_t rb = (uint64_t)nb * Q4_BLOCK;
    mv_ypair *yp = st->scratch;
    mv_ytail *yt = (mv_ytail *)(yp + np);
    mv_layout(x, nb, yp, yt);
    const uint64_t tail = (uint64_t)(nb - 1) * Q4_BLOCK;
    uint32_t i = 0;
    for (; i + 8 <= st->rows; i += 8) {
        const uint8_t *r0 = st->w + i * rb;
        __m512 a[8];
        for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();
        for (uint32_t k = 0; k < np; k++) {
            const uint8_t *p = r0 + (uint64_t)k * 2 * Q4_BLOCK;
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) a[r] = mv_pair(p + r * rb, yp + k, a[r]);
        }
        for (int r = 0; r < 8; r++) {
            __m256 t = _mm256_setzero_ps();
            if (nb % 2) t = mv_tail(r0 + r * rb + tail, yt, t);
            y[i + r] = mv_hsum(a[r], t);
        }
    }
    for (; i < st->rows; i++) {
        const uint8_t *r0 = st->w + i * rb;
        __m512 a0 = _mm512_setzero_ps();
        for (uint32_t k = 0; k < np; k++) a0 = mv_pair(r0 + (uint64_t)k * 2 * Q4_BLOCK, yp + k, a0);
        __m256 t0 = _mm256_setzero_ps();
        if (nb % 2) t0 = mv_tail(r0 + tail, yt, t0);
        y[i] = mv_hsum(a0, t0);
    }
}
