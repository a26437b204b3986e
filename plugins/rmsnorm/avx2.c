/*
 * avx2.c -- rmsnorm candidate "avx2": the sum of squares with FMA into eight
 * 8-lane accumulators (64 floats an iteration: enough independent chains to
 * cover the FMA latency at two FMAs a cycle), then one pass
 * y = (x * scale) * w, eight floats at a time.
 */
#include <immintrin.h>
#include <math.h>

#define RN_NAME     "avx2"
#define RN_FEATURES (KB_CPU_AVX2 | KB_CPU_FMA)
#include "common.h"

static float rn_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float rn_sumsq(const float *x, uint32_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    uint32_t t = 0;
    for (; t + 64 <= n; t += 64) {
        __m256 v0 = _mm256_loadu_ps(x + t), v1 = _mm256_loadu_ps(x + t + 8);
        __m256 v2 = _mm256_loadu_ps(x + t + 16), v3 = _mm256_loadu_ps(x + t + 24);
        __m256 v4 = _mm256_loadu_ps(x + t + 32), v5 = _mm256_loadu_ps(x + t + 40);
        __m256 v6 = _mm256_loadu_ps(x + t + 48), v7 = _mm256_loadu_ps(x + t + 56);
        a0 = _mm256_fmadd_ps(v0, v0, a0), a1 = _mm256_fmadd_ps(v1, v1, a1);
        a2 = _mm256_fmadd_ps(v2, v2, a2), a3 = _mm256_fmadd_ps(v3, v3, a3);
        a4 = _mm256_fmadd_ps(v4, v4, a4), a5 = _mm256_fmadd_ps(v5, v5, a5);
        a6 = _mm256_fmadd_ps(v6, v6, a6), a7 = _mm256_fmadd_ps(v7, v7, a7);
    }
    for (; t < n; t += 8) {
        const __m256 v = _mm256_loadu_ps(x + t);
        a0 = _mm256_fmadd_ps(v, v, a0);
    }
    a0 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    a4 = _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7));
    return rn_hsum(_mm256_add_ps(a0, a4));
}

static void rn_kernel(const rn_state *st, const float *x, float *y)
{
    const uint32_t n = st->n;
    const float *w = st->w;
    for (uint64_t i = 0; i < st->rows; i++) {
        const float *xr = x + i * n;
        float *yr = y + i * n;
        const float mean = (float)((double)rn_sumsq(xr, n) / (double)n);
        const __m256 s = _mm256_set1_ps(1.0f / sqrtf(mean + RN_EPS));
        for (uint32_t t = 0; t < n; t += 16) {
            const __m256 y0 = _mm256_mul_ps(_mm256_loadu_ps(xr + t), s);
            const __m256 y1 = _mm256_mul_ps(_mm256_loadu_ps(xr + t + 8), s);
            _mm256_storeu_ps(yr + t, _mm256_mul_ps(y0, _mm256_loadu_ps(w + t)));
            _mm256_storeu_ps(yr + t + 8, _mm256_mul_ps(y1, _mm256_loadu_ps(w + t + 8)));
        }
    }
}
