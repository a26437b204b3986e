/*
 * avx2.c -- q4-0-matvec candidate "avx2" (x86-64-v3: AVX2, FMA, F16C),
 * maddubs-based like ggml's x86 path, on ggml's own blocks. Once a call the
 * vector is laid out per block as its 32 int8s, the correction 8 * y summed
 * in the lanes maddubs + madd produce, and its scale in f32. Per row and
 * block: the 16 bytes of nibbles become 32 unsigned bytes (low nibbles in
 * the low half: elements 0-15, high in the high half: 16-31), maddubs with
 * the int8s and madd with ones give eight i32 partial sums, minus the
 * correction that is the oracle's sumi exactly (the nibbles are q + 8);
 * converted to f32 they go into eight lanes with dx * dy by one FMA. Eight
 * rows share each vector block's loads (their accumulators and the
 * temporaries fit the 16 registers).
 */
#include <immintrin.h>

#define MV_NAME     "avx2"
#define MV_FEATURES (KB_CPU_AVX2 | KB_CPU_FMA)
#include "common.h"

typedef struct mv_yblock {
    __m256i q;    /* the 32 int8s */
    __m256i corr; /* madd(maddubs(8, q), 1): 8 * y summed as the row's lanes are */
} mv_yblock;

static inline float mv_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static inline float mv_half(const uint8_t *b)
{
    uint16_t h;
    memcpy(&h, b, sizeof h);
    return _cvtsh_ss(h);
}

/* The row's block at p, as eight f32 partial sums scaled by dy, into acc. */
static inline __m256 mv_block(const uint8_t *p, const mv_yblock *yb, __m256 dy, __m256 acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
    const __m256i s =
        _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(nib, yb->q), ones), yb->corr);
    const __m256 d = _mm256_mul_ps(_mm256_set1_ps(mv_half(p)), dy);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc);
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    const uint32_t nb = st->nb;
    const uint64_t rb = (uint64_t)nb * Q4_BLOCK;
    mv_yblock *yb = st->scratch;
    float *dy = (float *)(yb + nb);
    const __m256i eights = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    for (uint32_t b = 0; b < nb; b++) {
        const uint8_t *src = x + (uint64_t)b * Q8_BLOCK;
        yb[b].q = _mm256_loadu_si256((const __m256i *)(src + 2));
        yb[b].corr = _mm256_madd_epi16(_mm256_maddubs_epi16(eights, yb[b].q), ones);
        dy[b] = mv_half(src);
    }
    uint32_t i = 0;
    for (; i + 8 <= st->rows; i += 8) {
        const uint8_t *r0 = st->w + i * rb;
        __m256 a[8];
        for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
        for (uint32_t b = 0; b < nb; b++) {
            const uint8_t *p = r0 + (uint64_t)b * Q4_BLOCK;
            const __m256 d = _mm256_set1_ps(dy[b]);
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) a[r] = mv_block(p + r * rb, yb + b, d, a[r]);
        }
        for (int r = 0; r < 8; r++) y[i + r] = mv_hsum(a[r]);
    }
    for (; i < st->rows; i++) {
        const uint8_t *r0 = st->w + i * rb;
        __m256 a0 = _mm256_setzero_ps();
        for (uint32_t b = 0; b < nb; b++)
            a0 = mv_block(r0 + (uint64_t)b * Q4_BLOCK, yb + b, _mm256_set1_ps(dy[b]), a0);
        y[i] = mv_hsum(a0);
    }
}
