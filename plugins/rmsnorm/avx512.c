/*
 * avx512.c -- rmsnorm candidate "avx512": the sum of squares with FMA into
 * eight 16-lane accumulators (128 floats an iteration, two loads and two
 * FMAs a cycle without waiting on a chain), then one pass
 * y = (x * scale) * w, sixteen floats at a time.
 */
#include <immintrin.h>
#include <math.h>

#define RN_NAME     "avx512"
#define RN_FEATURES KB_CPU_AVX512F
#include "common.h"

static float rn_sumsq(const float *x, uint32_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    uint32_t t = 0;
    for (; t + 128 <= n; t += 128) {
        __m512 v0 = _mm512_loadu_ps(x + t), v1 = _mm512_loadu_ps(x + t + 16);
        __m512 v2 = _mm512_loadu_ps(x + t + 32), v3 = _mm512_loadu_ps(x + t + 48);
        __m512 v4 = _mm512_loadu_ps(x + t + 64), v5 = _mm512_loadu_ps(x + t + 80);
        __m512 v6 = _mm512_loadu_ps(x + t + 96), v7 = _mm512_loadu_ps(x + t + 112);
        a0 = _mm512_fmadd_ps(v0, v0, a0), a1 = _mm512_fmadd_ps(v1, v1, a1);
        a2 = _mm512_fmadd_ps(v2, v2, a2), a3 = _mm512_fmadd_ps(v3, v3, a3);
        a4 = _mm512_fmadd_ps(v4, v4, a4), a5 = _mm512_fmadd_ps(v5, v5, a5);
        a6 = _mm512_fmadd_ps(v6, v6, a6), a7 = _mm512_fmadd_ps(v7, v7, a7);
    }
    for (; t < n; t += 16) {
        const __m512 v = _mm512_loadu_ps(x + t);
        a0 = _mm512_fmadd_ps(v, v, a0);
    }
    a0 = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    a4 = _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7));
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a4));
}

static void rn_kernel(const rn_state *st, const float *x, float *y)
{
    const uint32_t n = st->n;
    const float *w = st->w;
    for (uint64_t i = 0; i < st->rows; i++) {
        const float *xr = x + i * n;
        float *yr = y + i * n;
        const float mean = (float)((double)rn_sumsq(xr, n) / (double)n);
        const __m512 s = _mm512_set1_ps(1.0f / sqrtf(mean + RN_EPS));
        for (uint32_t t = 0; t < n; t += 16) {
            const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(xr + t), s);
            _mm512_storeu_ps(yr + t, _mm512_mul_ps(v, _mm512_loadu_ps(w + t)));
        }
    }
}
