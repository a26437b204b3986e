/*
 * avx512.c -- fts-bm25 with AVX-512F: sixteen postings a vector, doc_norm (common.h)
 * gathered by doc id, one vdivps for sixteen scores in the oracle's order of f32
 * operations (its bits); the tail is one masked vector, no scalar loop.
 */
#include <immintrin.h>

#define FB_NAME     "avx512"
#define FB_FEATURES (KB_CPU_AVX | KB_CPU_AVX2 | KB_CPU_AVX512F)
#include "common.h"

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const float *dn = st->doc_norm;
    const __m512 k1p1 = _mm512_set1_ps(FB_K1 + 1.0f), vidf = _mm512_set1_ps(idf);
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i ia = _mm512_loadu_si512(ids + i), ib = _mm512_loadu_si512(ids + i + 16);
        const __m512 fa = _mm512_cvtepi32_ps(_mm512_loadu_si512(tf + i));
        const __m512 fb = _mm512_cvtepi32_ps(_mm512_loadu_si512(tf + i + 16));
        const __m512 na = _mm512_i32gather_ps(ia, dn, 4), nb = _mm512_i32gather_ps(ib, dn, 4);
        const __m512 wa = _mm512_div_ps(_mm512_mul_ps(k1p1, fa), _mm512_add_ps(fa, na));
        const __m512 wb = _mm512_div_ps(_mm512_mul_ps(k1p1, fb), _mm512_add_ps(fb, nb));
        _mm512_storeu_ps(scores + i, _mm512_mul_ps(vidf, wa));
        _mm512_storeu_ps(scores + i + 16, _mm512_mul_ps(vidf, wb));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512i id = _mm512_maskz_loadu_epi32(m, ids + i);
        const __m512 f = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, tf + i));
        const __m512 norm = _mm512_mask_i32gather_ps(_mm512_set1_ps(1.0f), m, id, dn, 4);
        const __m512 w = _mm512_div_ps(_mm512_mul_ps(k1p1, f), _mm512_add_ps(f, norm));
        _mm512_mask_storeu_ps(scores + i, m, _mm512_mul_ps(vidf, w));
    }
}
