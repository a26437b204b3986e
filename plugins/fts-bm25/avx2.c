/*
 * avx2.c -- fts-bm25 with AVX2: eight postings a vector, the oracle's f32 operations in its
 * order on eight lanes (two vdivps for eight scores where the oracle does sixteen scalar
 * divisions), so the scores are its bits. The eight lengths come from eight scalar loads,
 * not vpgatherdd: on the AMD EPYC (Zen 5) this was written on, the hardware gather made
 * the 10%-dense case 1.4-1.6 times the oracle's time, the scalar loads 0.8.
 */
#include <immintrin.h>

#define FB_NAME     "avx2"
#define FB_FEATURES (KB_CPU_AVX | KB_CPU_AVX2)
#include "common.h"

typedef struct fb_consts {
    __m256 k1, one_minus_b, b, k1p1, avgdl, idf;
} fb_consts;

static inline __m256 fb_score8(const uint32_t *dl, const uint32_t *ids, const uint32_t *tf,
                               const fb_consts *c)
{
    const __m256i len =
        _mm256_setr_epi32((int)dl[ids[0]], (int)dl[ids[1]], (int)dl[ids[2]], (int)dl[ids[3]],
                          (int)dl[ids[4]], (int)dl[ids[5]], (int)dl[ids[6]], (int)dl[ids[7]]);
    const __m256 dt = _mm256_cvtepi32_ps(len); /* lengths < 2^31: the signed convert */
    const __m256 f = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)tf));
    const __m256 norm = _mm256_mul_ps(
        c->k1, _mm256_add_ps(c->one_minus_b, _mm256_div_ps(_mm256_mul_ps(c->b, dt), c->avgdl)));
    return _mm256_mul_ps(c->idf, _mm256_div_ps(_mm256_mul_ps(c->k1p1, f), _mm256_add_ps(f, norm)));
}

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const uint32_t *dl = st->doc_len;
    const fb_consts c = {_mm256_set1_ps(FB_K1),     _mm256_set1_ps(1.0f - FB_B),
                         _mm256_set1_ps(FB_B),      _mm256_set1_ps(FB_K1 + 1.0f),
                         _mm256_set1_ps(st->avgdl), _mm256_set1_ps(idf)};
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = fb_score8(dl, ids + i, tf + i, &c);
        const __m256 b = fb_score8(dl, ids + i + 8, tf + i + 8, &c);
        _mm256_storeu_ps(scores + i, a);
        _mm256_storeu_ps(scores + i + 8, b);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(scores + i, fb_score8(dl, ids + i, tf + i, &c));
    for (; i < n; i++) scores[i] = fb_score1(tf[i], dl[ids[i]], idf, st->avgdl);
}
