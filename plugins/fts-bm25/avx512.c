/*
 * avx512.c -- fts-bm25 with AVX-512F: sixteen postings a vector, two vectors a step, the
 * oracle's f32 operations in its order on sixteen lanes (its bits); the tail is one masked
 * vector. The lengths come from scalar loads in two eight-lane insert chains, not
 * vpgatherdd: on the AMD EPYC (Zen 5) this was written on, the hardware gather took 1.3-2.5
 * times as long as these loads (and more than the oracle's scalar loop on dense postings).
 */
#include <immintrin.h>

#define FB_NAME     "avx512"
#define FB_FEATURES (KB_CPU_AVX | KB_CPU_AVX2 | KB_CPU_AVX512F)
#include "common.h"

typedef struct fb_consts {
    __m512 k1, one_minus_b, b, k1p1, avgdl, idf;
} fb_consts;

static inline __m512 fb_weight(__m512 dt, __m512 f, const fb_consts *c)
{
    const __m512 norm = _mm512_mul_ps(
        c->k1, _mm512_add_ps(c->one_minus_b, _mm512_div_ps(_mm512_mul_ps(c->b, dt), c->avgdl)));
    return _mm512_mul_ps(c->idf, _mm512_div_ps(_mm512_mul_ps(c->k1p1, f), _mm512_add_ps(f, norm)));
}

/* Sixteen lengths as two eight-lane halves (independent insert chains), then one zmm. */
static inline __m256i fb_len8(const uint32_t *dl, const uint32_t *id)
{
    return _mm256_setr_epi32((int)dl[id[0]], (int)dl[id[1]], (int)dl[id[2]], (int)dl[id[3]],
                             (int)dl[id[4]], (int)dl[id[5]], (int)dl[id[6]], (int)dl[id[7]]);
}

static inline __m512 fb_len16(const uint32_t *dl, const uint32_t *id)
{
    const __m512i len =
        _mm512_inserti64x4(_mm512_castsi256_si512(fb_len8(dl, id)), fb_len8(dl, id + 8), 1);
    return _mm512_cvtepi32_ps(len); /* lengths < 2^31: the signed convert */
}

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const uint32_t *dl = st->doc_len;
    const fb_consts c = {_mm512_set1_ps(FB_K1),     _mm512_set1_ps(1.0f - FB_B),
                         _mm512_set1_ps(FB_B),      _mm512_set1_ps(FB_K1 + 1.0f),
                         _mm512_set1_ps(st->avgdl), _mm512_set1_ps(idf)};
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 fa = _mm512_cvtepi32_ps(_mm512_loadu_si512(tf + i));
        const __m512 fb = _mm512_cvtepi32_ps(_mm512_loadu_si512(tf + i + 16));
        const __m512 a = fb_weight(fb_len16(dl, ids + i), fa, &c);
        const __m512 b = fb_weight(fb_len16(dl, ids + i + 16), fb, &c);
        _mm512_storeu_ps(scores + i, a);
        _mm512_storeu_ps(scores + i + 16, b);
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 f = _mm512_cvtepi32_ps(_mm512_loadu_si512(tf + i));
        _mm512_storeu_ps(scores + i, fb_weight(fb_len16(dl, ids + i), f, &c));
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512i id = _mm512_maskz_loadu_epi32(m, ids + i);
        const __m512 f = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, tf + i));
        const __m512i len = _mm512_mask_i32gather_epi32(_mm512_set1_epi32(1), m, id, dl, 4);
        _mm512_mask_storeu_ps(scores + i, m, fb_weight(_mm512_cvtepi32_ps(len), f, &c));
    }
}
