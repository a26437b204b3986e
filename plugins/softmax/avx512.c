/*
 * avx512.c -- softmax candidate "avx512": three passes a row, sixteen lanes
 * at a time: t = x * scale + mask into y with the running max (the same t
 * and max as the oracle: a multiply, then an add, no FMA); y = exp(t - max)
 * by a vector exp (ggml_v_expf's algorithm, with FMA: 2^n by the rounding
 * trick, Cody-Waite ln 2, degree-5 polynomial; 0 below ln 2^-126, so -inf
 * masks give 0) summed in four accumulators, each block of SM_BLOCK elements
 * added to a double (a float sum of 32768 terms loses too much: see the
 * oracle); then y *= 1 / sum.
 */
#include <immintrin.h>

#define SM_NAME     "avx512"
#define SM_FEATURES KB_CPU_AVX512F
#include "common.h"

static inline __m512 sm_exp(__m512 a)
{
    const __mmask16 live = _mm512_cmp_ps_mask(a, _mm512_set1_ps(SM_EXP_LO), _CMP_GE_OQ);
    const __m512 sh = _mm512_set1_ps(SM_EXP_SHIFT);
    const __m512 z = _mm512_fmadd_ps(a, _mm512_set1_ps(SM_LOG2E), sh);
    const __m512 n = _mm512_sub_ps(z, sh);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(SM_LN2_LO),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(SM_LN2_HI), a));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(SM_C5), b, _mm512_set1_ps(SM_C4)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(SM_C3), b, _mm512_set1_ps(SM_C2))),
        u, _mm512_mul_ps(_mm512_set1_ps(SM_C1), b));
    const __m512i e = _mm512_slli_epi32(_mm512_castps_si512(z), 23);
    const __m512 k = _mm512_castsi512_ps(_mm512_add_epi32(e, _mm512_set1_epi32(0x3f800000)));
    return _mm512_maskz_mov_ps(live, _mm512_fmadd_ps(j, k, k));
}

static void sm_row(const float *xr, const float *mr, float *yr, uint32_t d)
{
    const __m512 s = _mm512_set1_ps(SM_SCALE);
    __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0;
    uint32_t t = 0;
    for (; t + 32 <= d; t += 32) {
        const __m512 v0 =
            _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + t), s), _mm512_loadu_ps(mr + t));
        const __m512 v1 = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + t + 16), s),
                                        _mm512_loadu_ps(mr + t + 16));
        _mm512_storeu_ps(yr + t, v0);
        _mm512_storeu_ps(yr + t + 16, v1);
        m0 = _mm512_max_ps(m0, v0), m1 = _mm512_max_ps(m1, v1);
    }
    for (; t < d; t += 16) {
        const __m512 v =
            _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + t), s), _mm512_loadu_ps(mr + t));
        _mm512_storeu_ps(yr + t, v);
        m0 = _mm512_max_ps(m0, v);
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));
    double sum = 0.0;
    for (uint32_t t0 = 0; t0 < d; t0 += SM_BLOCK) {
        const uint32_t t1 = d - t0 < SM_BLOCK ? d : t0 + SM_BLOCK;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (t = t0; t + 64 <= t1; t += 64) {
            const __m512 e0 = sm_exp(_mm512_sub_ps(_mm512_loadu_ps(yr + t), mx));
            const __m512 e1 = sm_exp(_mm512_sub_ps(_mm512_loadu_ps(yr + t + 16), mx));
            const __m512 e2 = sm_exp(_mm512_sub_ps(_mm512_loadu_ps(yr + t + 32), mx));
            const __m512 e3 = sm_exp(_mm512_sub_ps(_mm512_loadu_ps(yr + t + 48), mx));
            _mm512_storeu_ps(yr + t, e0), _mm512_storeu_ps(yr + t + 16, e1);
            _mm512_storeu_ps(yr + t + 32, e2), _mm512_storeu_ps(yr + t + 48, e3);
            a0 = _mm512_add_ps(a0, e0), a1 = _mm512_add_ps(a1, e1);
            a2 = _mm512_add_ps(a2, e2), a3 = _mm512_add_ps(a3, e3);
        }
        for (; t < t1; t += 16) {
            const __m512 e = sm_exp(_mm512_sub_ps(_mm512_loadu_ps(yr + t), mx));
            _mm512_storeu_ps(yr + t, e);
            a0 = _mm512_add_ps(a0, e);
        }
        sum += (double)_mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (t = 0; t < d; t += 16)
        _mm512_storeu_ps(yr + t, _mm512_mul_ps(_mm512_loadu_ps(yr + t), inv));
}

static void sm_kernel(const sm_state *st, const float *x, const float *mask, float *y)
{
    for (uint64_t i = 0; i < st->n; i++)
        sm_row(x + i * st->d, mask + i * st->d, y + i * st->d, st->d);
}
