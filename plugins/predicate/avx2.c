/*
 * avx2.c -- predicate candidate "avx2": 8 rows a compare (4 for i64), 64 rows a mask word,
 * the index list written 8 at a time from a table.
 *
 * f32 values become their totalOrder keys in-register (x ^ ((x >> 31 arithmetic) >> 1
 * logical): the magnitude bits of negatives flipped), so every column is a signed integer
 * compare: = is vpcmpeqd / vpcmpeqq (on keys, = on bits), < is vpcmpgt with the operands
 * swapped, BETWEEN is neither below lo nor above hi, IN is an OR of =. vmovmskps packs 8
 * lanes into a byte; 8 bytes and the validity word make the 64-bit selection word. Index
 * list: a sparse word by ctz, a dense one a byte at a time, a 256-entry table giving the
 * byte's set positions, widened to u32 and offset by the row (vpmovzxbd, vpaddd), one
 * 8-lane store, the cursor advanced by the byte's popcount.
 */
#include <immintrin.h>

#define PD_NAME "avx2"
#define PD_CPU  (KB_CPU_AVX2 | KB_CPU_POPCNT)
#include "pd_plugin.h"

static uint64_t pd__lut[256]; /* set positions of a byte, one a byte, low first */

static inline uint64_t pd__valid64(const uint8_t *v, uint64_t w, uint64_t n_bytes)
{
    const uint64_t at = w * 8;
    if (at + 8 <= n_bytes) {
        uint64_t x;
        memcpy(&x, v + at, 8);
        return x;
    }
    uint64_t x = 0;
    for (uint64_t b = 0; at + b < n_bytes; b++) x |= (uint64_t)v[at + b] << (8 * b);
    return x;
}

static inline uint64_t pd__emit(uint64_t bits, uint64_t base, int full, uint32_t *idx, uint64_t p)
{
    if (!full || __builtin_popcountll(bits) <= 6) {
        while (bits) {
            idx[p++] = (uint32_t)(base + (uint64_t)__builtin_ctzll(bits));
            bits &= bits - 1;
        }
        return p;
    }
    for (int b = 0; b < 8; b++) { /* p + 8 <= base + 8 b + 8 <= n */
        const uint32_t byte = (uint32_t)(bits >> (8 * b)) & 0xff;
        const __m256i pos = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)pd__lut[byte]));
        _mm256_storeu_si256((__m256i *)(idx + p),
                            _mm256_add_epi32(pos, _mm256_set1_epi32((int)(base + 8 * b))));
        p += (uint64_t)__builtin_popcount(byte);
    }
    return p;
}

/* 8 rows of i32 keys (or raw i32) against the op: 8 bits. */
static inline uint32_t pd__cmp8(__m256i x, int op, const __m256i *c, uint64_t k)
{
    __m256i r;
    if (op == OP_EQ)
        r = _mm256_cmpeq_epi32(x, c[0]);
    else if (op == OP_LT)
        r = _mm256_cmpgt_epi32(c[0], x);
    else if (op == OP_BETWEEN)
        r = _mm256_andnot_si256(
            _mm256_or_si256(_mm256_cmpgt_epi32(c[0], x), _mm256_cmpgt_epi32(x, c[1])),
            _mm256_set1_epi32(-1));
    else {
        r = _mm256_cmpeq_epi32(x, c[0]);
        for (uint64_t q = 1; q < k; q++) r = _mm256_or_si256(r, _mm256_cmpeq_epi32(x, c[q]));
    }
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(r));
}

static inline uint32_t pd__cmp4(__m256i x, int op, const __m256i *c, uint64_t k)
{
    __m256i r;
    if (op == OP_EQ)
        r = _mm256_cmpeq_epi64(x, c[0]);
    else if (op == OP_LT)
        r = _mm256_cmpgt_epi64(c[0], x);
    else if (op == OP_BETWEEN)
        r = _mm256_andnot_si256(
            _mm256_or_si256(_mm256_cmpgt_epi64(c[0], x), _mm256_cmpgt_epi64(x, c[1])),
            _mm256_set1_epi32(-1));
    else {
        r = _mm256_cmpeq_epi64(x, c[0]);
        for (uint64_t q = 1; q < k; q++) r = _mm256_or_si256(r, _mm256_cmpeq_epi64(x, c[q]));
    }
    return (uint32_t)_mm256_movemask_pd(_mm256_castsi256_pd(r));
}

static inline __m256i pd__tokey(__m256i x)
{
    return _mm256_xor_si256(x, _mm256_srli_epi32(_mm256_srai_epi32(x, 31), 1));
}

/* The 64-row word w (rows base.. base + 63, all inside the column). */
static inline uint64_t pd__word(const pd__state *s, const uint8_t *col, uint64_t base, int op,
                                const __m256i *c, uint64_t k)
{
    uint64_t bits = 0;
    if (s->type == T_I64) {
        const __m256i *p = (const __m256i *)(col + 8 * base);
        for (int v = 0; v < 16; v++)
            bits |= (uint64_t)pd__cmp4(_mm256_loadu_si256(p + v), op, c, k) << (4 * v);
    } else {
        const __m256i *p = (const __m256i *)(col + 4 * base);
        for (int v = 0; v < 8; v++) {
            __m256i x = _mm256_loadu_si256(p + v);
            if (s->type == T_F32) x = pd__tokey(x);
            bits |= (uint64_t)pd__cmp8(x, op, c, k) << (8 * v);
        }
    }
    return bits;
}

/* The rows past the last whole word, one at a time (keys as the oracle's rules). */
static uint64_t pd__tail(const pd__state *s, const uint8_t *col, uint64_t base, const uint64_t *cb,
                         uint64_t k)
{
    uint64_t bits = 0;
    for (uint64_t i = base; i < s->n; i++) {
        int64_t x, c0, c1;
        if (s->type == T_I64) {
            memcpy(&x, col + 8 * i, 8);
            c0 = (int64_t)cb[1];
            c1 = (int64_t)cb[2];
        } else {
            uint32_t u;
            memcpy(&u, col + 4 * i, 4);
            const int f = s->type == T_F32;
            x = f ? pd__key(u) : (int32_t)u;
            c0 = f ? pd__key((uint32_t)cb[1]) : (int32_t)(uint32_t)cb[1];
            c1 = f ? pd__key((uint32_t)cb[2]) : (int32_t)(uint32_t)cb[2];
        }
        int m;
        if (s->op == OP_EQ)
            m = x == c0;
        else if (s->op == OP_LT)
            m = x < c0;
        else if (s->op == OP_BETWEEN)
            m = x >= c0 && x <= c1;
        else {
            m = 0;
            for (uint64_t q = 0; q < k; q++) {
                const int64_t cq = s->type == T_I64   ? (int64_t)cb[1 + q]
                                   : s->type == T_F32 ? pd__key((uint32_t)cb[1 + q])
                                                      : (int32_t)(uint32_t)cb[1 + q];
                m |= x == cq;
            }
        }
        bits |= (uint64_t)m << (i - base);
    }
    return bits;
}

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const pd__state *s = state;
    PD_CHECK_CALL(s);
    if (!pd__lut[255])
        for (uint32_t b = 0; b < 256; b++) {
            uint64_t e = 0;
            int j = 0;
            for (int q = 0; q < 8; q++)
                if (b >> q & 1) e |= (uint64_t)q << (8 * j++);
            pd__lut[b] = e;
        }
    const uint64_t *cb = inputs[2].data;
    const uint64_t k = cb[0] < 1 ? 1 : cb[0] > 8 ? 8 : cb[0], n = s->n, nb = PD_BYTES(n);
    __m256i c[8];
    for (uint64_t q = 0; q < 8; q++) {
        if (s->type == T_I64)
            c[q] = _mm256_set1_epi64x((long long)cb[1 + q]);
        else if (s->type == T_F32)
            c[q] = _mm256_set1_epi32(pd__key((uint32_t)cb[1 + q]));
        else
            c[q] = _mm256_set1_epi32((int)(uint32_t)cb[1 + q]);
    }
    const uint8_t *col = inputs[0].data, *valid = inputs[1].data;
    uint8_t *mask = outputs[0].data;
    uint32_t *idx = outputs[1].data;
    uint64_t p = 0;
    for (uint64_t w = 0; w * 64 < n; w++) {
        const uint64_t base = w * 64;
        const int full = base + 64 <= n;
        uint64_t bits = full ? pd__word(s, col, base, s->op, c, k) : pd__tail(s, col, base, cb, k);
        bits &= pd__valid64(valid, w, nb);
        if (base / 8 + 8 <= nb)
            memcpy(mask + base / 8, &bits, 8);
        else
            for (uint64_t b = 0; base / 8 + b < nb; b++)
                mask[base / 8 + b] = (uint8_t)(bits >> (8 * b));
        p = pd__emit(bits, base, full, idx, p);
    }
    outputs[1].produced = p;
    return KB_OK;
}
