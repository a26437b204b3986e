/*
 * avx2.c -- softmax candidate "avx2": three passes a row, eight lanes at a
 * time: t = x * scale + mask into y with the running max (the same t and
 * max as the oracle: a multiply, then an add, no FMA); y = exp(t - max) by a
 * vector exp (ggml_v_expf's algorithm, with FMA: 2^n by the rounding trick,
 * Cody-Waite ln 2, degree-5 polynomial; 0 below ln 2^-126, so -inf masks
 * give 0) summed in four accumulators, each block of SM_BLOCK elements
 * added to a double (a float sum of 32768 terms loses too much: see the
 * oracle); then y *= 1 / sum.
 */
#include <immintrin.h>

#define SM_NAME     "avx2"
#define SM_FEATURES (KB_CPU_AVX2 | KB_CPU_FMA)
#include "common.h"

static inline __m256 sm_exp(__m256 a)
{
    const __m256 live = _mm256_cmp_ps(a, _mm256_set1_ps(SM_EXP_LO), _CMP_GE_OQ);
    const __m256 sh = _mm256_set1_ps(SM_EXP_SHIFT);
    const __m256 z = _mm256_fmadd_ps(a, _mm256_set1_ps(SM_LOG2E), sh);
    const __m256 n = _mm256_sub_ps(z, sh);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(SM_LN2_LO),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(SM_LN2_HI), a));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(SM_C5), b, _mm256_set1_ps(SM_C4)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(SM_C3), b, _mm256_set1_ps(SM_C2))),
        u, _mm256_mul_ps(_mm256_set1_ps(SM_C1), b));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_set1_epi32(0x3f800000)));
    return _mm256_and_ps(live, _mm256_fmadd_ps(j, k, k));
}

static float sm_hmax(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static float sm_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void sm_row(const float *xr, const float *mr, float *yr, uint32_t d)
{
    const __m256 s = _mm256_set1_ps(SM_SCALE);
    __m256 m0 = _mm256_set1_ps(-__builtin_inff()), m1 = m0;
    for (uint32_t t = 0; t < d; t += 16) {
        const __m256 v0 =
            _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + t), s), _mm256_loadu_ps(mr + t));
        const __m256 v1 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + t + 8), s),
                                        _mm256_loadu_ps(mr + t + 8));
        _mm256_storeu_ps(yr + t, v0);
        _mm256_storeu_ps(yr + t + 8, v1);
        m0 = _mm256_max_ps(m0, v0), m1 = _mm256_max_ps(m1, v1);
    }
    const __m256 mx = _mm256_set1_ps(sm_hmax(_mm256_max_ps(m0, m1)));
    double sum = 0.0;
    uint32_t t;
    for (uint32_t t0 = 0; t0 < d; t0 += SM_BLOCK) {
        const uint32_t t1 = d - t0 < SM_BLOCK ? d : t0 + SM_BLOCK;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (t = t0; t + 32 <= t1; t += 32) {
            const __m256 e0 = sm_exp(_mm256_sub_ps(_mm256_loadu_ps(yr + t), mx));
            const __m256 e1 = sm_exp(_mm256_sub_ps(_mm256_loadu_ps(yr + t + 8), mx));
            const __m256 e2 = sm_exp(_mm256_sub_ps(_mm256_loadu_ps(yr + t + 16), mx));
            const __m256 e3 = sm_exp(_mm256_sub_ps(_mm256_loadu_ps(yr + t + 24), mx));
            _mm256_storeu_ps(yr + t, e0), _mm256_storeu_ps(yr + t + 8, e1);
            _mm256_storeu_ps(yr + t + 16, e2), _mm256_storeu_ps(yr + t + 24, e3);
            a0 = _mm256_add_ps(a0, e0), a1 = _mm256_add_ps(a1, e1);
            a2 = _mm256_add_ps(a2, e2), a3 = _mm256_add_ps(a3, e3);
        }
        for (; t < t1; t += 8) {
            const __m256 e = sm_exp(_mm256_sub_ps(_mm256_loadu_ps(yr + t), mx));
            _mm256_storeu_ps(yr + t, e);
            a0 = _mm256_add_ps(a0, e);
        }
        sum += (double)sm_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (t = 0; t < d; t += 8)
        _mm256_storeu_ps(yr + t, _mm256_mul_ps(_mm256_loadu_ps(yr + t), inv));
}

static void sm_kernel(const sm_state *st, const float *x, const float *mask, float *y)
{
    for (uint64_t i = 0; i < st->n; i++)
        sm_row(x + i * st->d, mask + i * st->d, y + i * st->d, st->d);
}
