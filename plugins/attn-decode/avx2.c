/*
 * avx2.c -- attn-decode with AVX2 and FMA (common.h: transposed key blocks
 * of 16, a three-pass softmax, value rows of negligible weight skipped). A
 * block of 16 keys is two ymm of scores; two blocks and two halves of the
 * head dimension give eight independent FMA chains. exp is Cephes' expf
 * polynomial (about 1 ulp), the power of two built in the exponent bits,
 * 8 lanes at a time. The value pass keeps 64 outputs in 8 ymm accumulators
 * and walks the rows in groups of 64 (32 KiB of f32 values at d = 128), so
 * the second half of a wider head rereads them from L1. The f16 cache is
 * widened in prepare, so no F16C (which kbench cannot declare) is needed.
 */
#include <immintrin.h>

#define AD_NAME     "avx2"
#define AD_FEATURES (KB_CPU_AVX2 | KB_CPU_FMA)
#include "common.h"

#define AD_ROWS 64

static void ad_scores(const ad_state *st, const float *qs, float *p)
{
    const uint32_t d = st->d, stride = d * AD_BLK;
    uint32_t b = 0;
    for (; b + 2 <= st->nb; b += 2) {
        const float *k0 = st->kt + (uint64_t)b * stride, *k1 = k0 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (uint32_t t = 0; t < d; t += 2) {
            const __m256 q0 = _mm256_broadcast_ss(qs + t), q1 = _mm256_broadcast_ss(qs + t + 1);
            const uint32_t o0 = t * AD_BLK, o1 = o0 + AD_BLK;
            a0 = _mm256_fmadd_ps(q0, _mm256_load_ps(k0 + o0), a0);
            a1 = _mm256_fmadd_ps(q0, _mm256_load_ps(k0 + o0 + 8), a1);
            a2 = _mm256_fmadd_ps(q0, _mm256_load_ps(k1 + o0), a2);
            a3 = _mm256_fmadd_ps(q0, _mm256_load_ps(k1 + o0 + 8), a3);
            b0 = _mm256_fmadd_ps(q1, _mm256_load_ps(k0 + o1), b0);
            b1 = _mm256_fmadd_ps(q1, _mm256_load_ps(k0 + o1 + 8), b1);
            b2 = _mm256_fmadd_ps(q1, _mm256_load_ps(k1 + o1), b2);
            b3 = _mm256_fmadd_ps(q1, _mm256_load_ps(k1 + o1 + 8), b3);
        }
        float *pb = p + (uint64_t)b * AD_BLK;
        _mm256_store_ps(pb, _mm256_add_ps(a0, b0));
        _mm256_store_ps(pb + 8, _mm256_add_ps(a1, b1));
        _mm256_store_ps(pb + 16, _mm256_add_ps(a2, b2));
        _mm256_store_ps(pb + 24, _mm256_add_ps(a3, b3));
    }
    for (; b < st->nb; b++) {
        const float *k0 = st->kt + (uint64_t)b * stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (uint32_t t = 0; t < d; t++) {
            const __m256 q0 = _mm256_broadcast_ss(qs + t);
            a0 = _mm256_fmadd_ps(q0, _mm256_load_ps(k0 + t * AD_BLK), a0);
            a1 = _mm256_fmadd_ps(q0, _mm256_load_ps(k0 + t * AD_BLK + 8), a1);
        }
        _mm256_store_ps(p + (uint64_t)b * AD_BLK, a0);
        _mm256_store_ps(p + (uint64_t)b * AD_BLK + 8, a1);
    }
}

static inline float ad_hmax(__m256 m)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

static inline float ad_hsum(__m256 s)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

static float ad_max(const float *p, uint32_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_load_ps(p + i));
    float r = ad_hmax(m);
    for (; i < n; i++) r = p[i] > r ? p[i] : r;
    return r;
}

/* Cephes expf for x <= 0: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
 * polynomial for e^r, times 2^n (n >= -126 after the clamp: a normal). */
static inline __m256 ad_exp(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static float ad_expsum(float *p, uint32_t n, float m)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 e0 = ad_exp(_mm256_sub_ps(_mm256_load_ps(p + i), vm));
        const __m256 e1 = ad_exp(_mm256_sub_ps(_mm256_load_ps(p + i + 8), vm));
        _mm256_store_ps(p + i, e0);
        _mm256_store_ps(p + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    float s = ad_hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        p[i] = expf(p[i] - m);
        s += p[i];
    }
    return s;
}

/* Rows [i0, i1) of weight >= thr into o[c0 .. c0 + 64) (acc: 8 ymm). */
static inline void ad_vacc64(const ad_state *st, const float *p, float thr, uint32_t i0,
                             uint32_t i1, uint32_t c0, __m256 *acc)
{
    __m256 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    __m256 a4 = acc[4], a5 = acc[5], a6 = acc[6], a7 = acc[7];
    for (uint32_t i = i0; i < i1; i++) {
        if (p[i] < thr) continue;
        const __m256 w = _mm256_broadcast_ss(p + i);
        const float *v = st->v + (uint64_t)i * st->d + c0;
        a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), a0);
        a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), a1);
        a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), a2);
        a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), a3);
        a4 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 32), a4);
        a5 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 40), a5);
        a6 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 48), a6);
        a7 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 56), a7);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
    acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
}

/* Rows [i0, i1) into o[c0 .. c0 + 16) for a head that is not a multiple of 64. */
static inline void ad_vacc16(const ad_state *st, const float *p, float thr, uint32_t i0,
                             uint32_t i1, uint32_t c0, __m256 *acc)
{
    for (uint32_t i = i0; i < i1; i++) {
        if (p[i] < thr) continue;
        const __m256 w = _mm256_broadcast_ss(p + i);
        const float *v = st->v + (uint64_t)i * st->d + c0;
        acc[0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), acc[0]);
        acc[1] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), acc[1]);
    }
}

static void ad_vacc(const ad_state *st, const float *p, float thr, float *o)
{
    __m256 acc[32]; /* d <= 256: 32 ymm of outputs, kept in memory between row groups */
    for (uint32_t j = 0; j < st->d / 8; j++) acc[j] = _mm256_setzero_ps();
    for (uint32_t i0 = 0; i0 < st->n; i0 += AD_ROWS) {
        const uint32_t i1 = i0 + AD_ROWS < st->n ? i0 + AD_ROWS : st->n;
        uint32_t c0 = 0;
        for (; c0 + 64 <= st->d; c0 += 64) ad_vacc64(st, p, thr, i0, i1, c0, acc + c0 / 8);
        for (; c0 < st->d; c0 += 16) ad_vacc16(st, p, thr, i0, i1, c0, acc + c0 / 8);
    }
    for (uint32_t j = 0; j < st->d / 8; j++) _mm256_storeu_ps(o + 8 * j, acc[j]);
}
