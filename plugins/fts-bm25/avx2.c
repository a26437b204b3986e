/*
 * avx2.c -- fts-bm25 with AVX2: eight postings a vector, doc_norm (common.h) gathered by
 * doc id (vgatherdps), tf converted in-register, one vdivps for eight scores, in the
 * oracle's order of f32 operations, so the scores are its bits. Two vectors a step keep
 * two gathers in flight.
 */
#include <immintrin.h>

#define FB_NAME     "avx2"
#define FB_FEATURES (KB_CPU_AVX | KB_CPU_AVX2)
#include "common.h"

static inline __m256 fb_score8(const float *dn, const uint32_t *ids, const uint32_t *tf,
                               __m256 k1p1, __m256 idf)
{
    const __m256i id = _mm256_loadu_si256((const __m256i *)ids);
    const __m256 f = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)tf));
    const __m256 norm = _mm256_i32gather_ps(dn, id, 4);
    return _mm256_mul_ps(idf, _mm256_div_ps(_mm256_mul_ps(k1p1, f), _mm256_add_ps(f, norm)));
}

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const float *dn = st->doc_norm;
    const __m256 k1p1 = _mm256_set1_ps(FB_K1 + 1.0f), vidf = _mm256_set1_ps(idf);
    const uint64_t n = st->n;
    uint64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = fb_score8(dn, ids + i, tf + i, k1p1, vidf);
        const __m256 b = fb_score8(dn, ids + i + 8, tf + i + 8, k1p1, vidf);
        _mm256_storeu_ps(scores + i, a);
        _mm256_storeu_ps(scores + i + 8, b);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(scores + i, fb_score8(dn, ids + i, tf + i, k1p1, vidf));
    for (; i < n; i++) {
        const float f = (float)tf[i];
        scores[i] = idf * ((FB_K1 + 1.0f) * f / (f + dn[ids[i]]));
    }
}
