/*
 * avx512.c -- predicate candidate "avx512": 16 rows a compare (8 for i64) straight into
 * mask registers, the validity bits as the compare's write mask, the index list by
 * in-register compress.
 *
 * f32 values become their totalOrder keys in-register (x ^ ((x >> 31 arithmetic) >> 1
 * logical)), so every column is a signed integer compare: vpcmpd/vpcmpq with the
 * predicate (=, <, >= and <= for BETWEEN, an OR of = for IN) and the row's validity bits
 * as the zeroing mask, so a null row never sets a bit. Four (eight for i64) masks make the
 * 64-bit selection word. Index list: vpcompressd of the row numbers under each 16-bit
 * mask into a register, one 16-lane store, the cursor advanced by the mask's popcount
 * (the register form; the memory form of vpcompressd is slow on AMD).
 */
#include <immintrin.h>

#define PD_NAME "avx512"
#define PD_CPU  (KB_CPU_AVX512F | KB_CPU_AVX512BW | KB_CPU_POPCNT)
#include "pd_plugin.h"

static inline __m512i pd__tokey(__m512i x)
{
    return _mm512_xor_si512(x, _mm512_srli_epi32(_mm512_srai_epi32(x, 31), 1));
}

static inline __mmask16 pd__cmp16(__mmask16 live, __m512i x, int op, const __m512i *c, uint64_t k)
{
    if (op == OP_EQ) return _mm512_mask_cmpeq_epi32_mask(live, x, c[0]);
    if (op == OP_LT) return _mm512_mask_cmplt_epi32_mask(live, x, c[0]);
    if (op == OP_BETWEEN)
        return _mm512_mask_cmple_epi32_mask(_mm512_mask_cmpge_epi32_mask(live, x, c[0]), x, c[1]);
    __mmask16 m = 0;
    for (uint64_t q = 0; q < k; q++) m |= _mm512_mask_cmpeq_epi32_mask(live, x, c[q]);
    return m;
}

static inline __mmask8 pd__cmp8(__mmask8 live, __m512i x, int op, const __m512i *c, uint64_t k)
{
    if (op == OP_EQ) return _mm512_mask_cmpeq_epi64_mask(live, x, c[0]);
    if (op == OP_LT) return _mm512_mask_cmplt_epi64_mask(live, x, c[0]);
    if (op == OP_BETWEEN)
        return _mm512_mask_cmple_epi64_mask(_mm512_mask_cmpge_epi64_mask(live, x, c[0]), x, c[1]);
    __mmask8 m = 0;
    for (uint64_t q = 0; q < k; q++) m |= _mm512_mask_cmpeq_epi64_mask(live, x, c[q]);
    return m;
}

/* The validity bits of rows [64 w, 64 w + 64), zero past the end. */
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

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const pd__state *s = state;
    PD_CHECK_CALL(s);
    const uint64_t *cb = inputs[2].data;
    const uint64_t k = cb[0] < 1 ? 1 : cb[0] > 8 ? 8 : cb[0], n = s->n, nb = PD_BYTES(n);
    const int op = s->op, type = s->type;
    __m512i c[8];
    for (uint64_t q = 0; q < 8; q++) {
        if (type == T_I64)
            c[q] = _mm512_set1_epi64((long long)cb[1 + q]);
        else if (type == T_F32)
            c[q] = _mm512_set1_epi32(pd__key((uint32_t)cb[1 + q]));
        else
            c[q] = _mm512_set1_epi32((int)(uint32_t)cb[1 + q]);
    }
    const uint8_t *col = inputs[0].data, *valid = inputs[1].data;
    uint8_t *mask = outputs[0].data;
    uint32_t *idx = outputs[1].data;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint64_t p = 0;
    for (uint64_t w = 0; w * 64 < n; w++) {
        const uint64_t base = w * 64;
        /* valid rows inside the column: no load or bit past n, whatever the padding holds */
        const uint64_t in = n - base >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << (n - base)) - 1;
        const uint64_t live = pd__valid64(valid, w, nb) & in;
        const int full = base + 64 <= n;
        uint64_t bits = 0;
        if (type == T_I64) {
            for (int v = 0; v < 8; v++) {
                const __mmask8 lv = (__mmask8)(live >> (8 * v));
                const __m512i x = full ? _mm512_loadu_si512(col + 8 * (base + 8 * v))
                                       : _mm512_maskz_loadu_epi64(lv, col + 8 * (base + 8 * v));
                bits |= (uint64_t)pd__cmp8(lv, x, op, c, k) << (8 * v);
            }
        } else {
            for (int v = 0; v < 4; v++) {
                const __mmask16 lv = (__mmask16)(live >> (16 * v));
                __m512i x = full ? _mm512_loadu_si512(col + 4 * (base + 16 * v))
                                 : _mm512_maskz_loadu_epi32(lv, col + 4 * (base + 16 * v));
                if (type == T_F32) x = pd__tokey(x);
                bits |= (uint64_t)pd__cmp16(lv, x, op, c, k) << (16 * v);
            }
        }
        if (base / 8 + 8 <= nb)
            memcpy(mask + base / 8, &bits, 8);
        else
            for (uint64_t b = 0; base / 8 + b < nb; b++)
                mask[base / 8 + b] = (uint8_t)(bits >> (8 * b));
        if (full && __builtin_popcountll(bits) > 4) {
            for (int v = 0; v < 4; v++) { /* p + 16 <= base + 16 v + 16 <= n */
                const __mmask16 m = (__mmask16)(bits >> (16 * v));
                const __m512i rows =
                    _mm512_add_epi32(iota, _mm512_set1_epi32((int)(base + 16 * v)));
                _mm512_storeu_si512(idx + p, _mm512_maskz_compress_epi32(m, rows));
                p += (uint64_t)__builtin_popcount(m);
            }
        } else {
            while (bits) {
                idx[p++] = (uint32_t)(base + (uint64_t)__builtin_ctzll(bits));
                bits &= bits - 1;
            }
        }
    }
    outputs[1].produced = p;
    return KB_OK;
}
