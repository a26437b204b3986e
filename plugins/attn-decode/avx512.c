/*
 * avx512.c -- attn-decode with AVX-512F (common.h: transposed key blocks of
 * 16, a three-pass softmax, value rows of negligible weight skipped). A
 * block of 16 keys is one zmm of scores; four blocks and two halves of the
 * head dimension give eight independent FMA chains. exp is Cephes' expf
 * polynomial (about 1 ulp) with vscalefps for the power of two, 16 lanes at
 * a time; the value pass keeps the output in d / 16 zmm accumulators. An
 * f16 cache stays f16 (AD_KEEP_F16) and is widened by vcvtph2ps as it is
 * loaded (AVX-512F has the zmm form): half the bytes of K and V.
 */
#include <immintrin.h>

#define AD_NAME     "avx512"
#define AD_FEATURES KB_CPU_AVX512F
#define AD_KEEP_F16
#include "common.h"

/* 16 keys from the f32 or the f16 layout, widened to floats. */
#define AD_LD32(k, off) _mm512_load_ps((k) + (off))
#define AD_LD16(k, off) _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)((k) + (off))))

/* The score pass over blocks of type T loaded by LD: four blocks at a time,
 * each with two chains (even and odd t), then the tail blocks. */
#define AD_SCORES(NAME, T, KT, LD)                                                             \
    static void NAME(const ad_state *st, const float *qs, float *p)                            \
    {                                                                                          \
        const uint32_t d = st->d, stride = d * AD_BLK;                                         \
        uint32_t b = 0;                                                                        \
        for (; b + 4 <= st->nb; b += 4) {                                                      \
            const T *k0 = st->KT + (uint64_t)b * stride;                                       \
            const T *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;                   \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                        \
            __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                         \
            for (uint32_t t = 0; t < d; t += 2) {                                              \
                const __m512 q0 = _mm512_set1_ps(qs[t]), q1 = _mm512_set1_ps(qs[t + 1]);       \
                const uint32_t o0 = t * AD_BLK, o1 = o0 + AD_BLK;                              \
                a0 = _mm512_fmadd_ps(q0, LD(k0, o0), a0);                                      \
                a1 = _mm512_fmadd_ps(q0, LD(k1, o0), a1);                                      \
                a2 = _mm512_fmadd_ps(q0, LD(k2, o0), a2);                                      \
                a3 = _mm512_fmadd_ps(q0, LD(k3, o0), a3);                                      \
                b0 = _mm512_fmadd_ps(q1, LD(k0, o1), b0);                                      \
                b1 = _mm512_fmadd_ps(q1, LD(k1, o1), b1);                                      \
                b2 = _mm512_fmadd_ps(q1, LD(k2, o1), b2);                                      \
                b3 = _mm512_fmadd_ps(q1, LD(k3, o1), b3);                                      \
            }                                                                                  \
            float *pb = p + (uint64_t)b * AD_BLK;                                              \
            _mm512_store_ps(pb, _mm512_add_ps(a0, b0));                                        \
            _mm512_store_ps(pb + 16, _mm512_add_ps(a1, b1));                                   \
            _mm512_store_ps(pb + 32, _mm512_add_ps(a2, b2));                                   \
            _mm512_store_ps(pb + 48, _mm512_add_ps(a3, b3));                                   \
        }                                                                                      \
        for (; b < st->nb; b++) {                                                              \
            const T *k0 = st->KT + (uint64_t)b * stride;                                       \
            __m512 a0 = _mm512_setzero_ps(), b0 = a0;                                          \
            for (uint32_t t = 0; t < d; t += 2) {                                              \
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(qs[t]), LD(k0, t * AD_BLK), a0);           \
                b0 = _mm512_fmadd_ps(_mm512_set1_ps(qs[t + 1]), LD(k0, (t + 1) * AD_BLK), b0); \
            }                                                                                  \
            _mm512_store_ps(p + (uint64_t)b * AD_BLK, _mm512_add_ps(a0, b0));                  \
        }                                                                                      \
    }

AD_SCORES(ad_scores32, float, kt, AD_LD32)
AD_SCORES(ad_scores16, uint16_t, kt16, AD_LD16)

static void ad_scores(const ad_state *st, const float *qs, float *p)
{
    if (st->kt16)
        ad_scores16(st, qs, p);
    else
        ad_scores32(st, qs, p);
}

static float ad_max(const float *p, uint32_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_load_ps(p + i));
    if (i < n)
        m = _mm512_mask_max_ps(m, (__mmask16)((1u << (n - i)) - 1), m, _mm512_load_ps(p + i));
    return _mm512_reduce_max_ps(m);
}

/* Cephes expf for x <= 0: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
 * polynomial for e^r, times 2^n by vscalefps. */
static inline __m512 ad_exp(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

static float ad_expsum(float *p, uint32_t n, float m)
{
    const __m512 vm = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    uint32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 e0 = ad_exp(_mm512_sub_ps(_mm512_load_ps(p + i), vm));
        const __m512 e1 = ad_exp(_mm512_sub_ps(_mm512_load_ps(p + i + 16), vm));
        _mm512_store_ps(p + i, e0);
        _mm512_store_ps(p + i + 16, e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = ad_exp(_mm512_sub_ps(_mm512_load_ps(p + i), vm));
        _mm512_store_ps(p + i, e);
        s0 = _mm512_mask_add_ps(s0, k, s0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* o[c0 .. c0 + 16 nc) over every row of weight >= thr; nc and f16 are
 * constants where it is inlined. */
static inline __attribute__((always_inline)) void ad_vacc_nc(const ad_state *st, const float *p,
                                                             float thr, float *o, uint32_t c0,
                                                             const uint32_t nc, const int f16)
{
    __m512 acc[8];
    for (uint32_t j = 0; j < nc; j++) acc[j] = _mm512_setzero_ps();
    const uint32_t d = st->d;
    for (uint32_t i = 0; i < st->n; i++) {
        if (p[i] < thr) continue;
        const __m512 w = _mm512_set1_ps(p[i]);
        const uint64_t at = (uint64_t)i * d + c0;
        for (uint32_t j = 0; j < nc; j++) {
            const __m512 v =
                f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(st->v16 + at + 16 * j)))
                    : _mm512_loadu_ps(st->v + at + 16 * j);
            acc[j] = _mm512_fmadd_ps(w, v, acc[j]);
        }
    }
    for (uint32_t j = 0; j < nc; j++) _mm512_storeu_ps(o + c0 + 16 * j, acc[j]);
}

static void ad_vacc(const ad_state *st, const float *p, float thr, float *o)
{
    const int f16 = st->v16 != NULL;
    for (uint32_t c0 = 0; c0 < st->d; c0 += 128) {
        const uint32_t nc = (st->d - c0) / 16 < 8 ? (st->d - c0) / 16 : 8;
        if (nc == 8 && f16)
            ad_vacc_nc(st, p, thr, o, c0, 8, 1);
        else if (nc == 8)
            ad_vacc_nc(st, p, thr, o, c0, 8, 0);
        else if (nc == 4 && f16)
            ad_vacc_nc(st, p, thr, o, c0, 4, 1);
        else if (nc == 4)
            ad_vacc_nc(st, p, thr, o, c0, 4, 0);
        else
            for (uint32_t j = 0; j < nc; j++) ad_vacc_nc(st, p, thr, o, c0 + 16 * j, 1, f16);
    }
}
