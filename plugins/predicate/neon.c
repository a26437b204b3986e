/*
 * neon.c -- predicate candidate "neon": 4 rows a compare (2 for i64) with Advanced SIMD,
 * 64 rows a mask word.
 *
 * f32 values become their totalOrder keys in-register (x ^ ((x >> 31 arithmetic) >> 1
 * logical)), so every column is a signed integer compare (vceqq/vcltq/vcgeq/vcleq, s32 or
 * s64). A compare's all-ones lanes ANDed with {1, 2, 4, 8} and added across (vaddvq) give
 * its 4 bits; 16 of them and the validity word make the 64-bit selection word. Index
 * list as portable.c: set bits by ctz when sparse, 64 stores with a cursor advanced by
 * each bit when dense.
 */
#include <arm_neon.h>

#define PD_NAME "neon"
#define PD_CPU  KB_CPU_NEON
#include "pd_plugin.h"

static inline uint64_t pd__valid64(const uint8_t *v, uint64_t w, uint64_t n_bytes)
{
    uint64_t x = 0;
    const uint64_t at = w * 8, k = n_bytes - at < 8 ? n_bytes - at : 8;
    for (uint64_t b = 0; b < k; b++) x |= (uint64_t)v[at + b] << (8 * b);
    return x;
}

static inline uint64_t pd__emit(uint64_t bits, uint64_t base, uint32_t *idx, uint64_t p)
{
    if (__builtin_popcountll(bits) <= 12) {
        while (bits) {
            idx[p++] = (uint32_t)(base + (uint64_t)__builtin_ctzll(bits));
            bits &= bits - 1;
        }
        return p;
    }
    for (uint32_t j = 0; j < 64; j++) { /* p <= base + j < n for a set bit */
        idx[p] = (uint32_t)(base + j);
        p += (bits >> j) & 1;
    }
    return p;
}

static inline uint32_t pd__bits4(uint32x4_t m)
{
    static const uint32_t w[4] = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(m, vld1q_u32(w)));
}

static inline uint32_t pd__bits2(uint64x2_t m)
{
    static const uint64_t w[2] = {1, 2};
    return (uint32_t)vaddvq_u64(vandq_u64(m, vld1q_u64(w)));
}

static inline uint32_t pd__cmp4(int32x4_t x, int op, const int32x4_t *c, uint64_t k)
{
    uint32x4_t r;
    if (op == OP_EQ)
        r = vceqq_s32(x, c[0]);
    else if (op == OP_LT)
        r = vcltq_s32(x, c[0]);
    else if (op == OP_BETWEEN)
        r = vandq_u32(vcgeq_s32(x, c[0]), vcleq_s32(x, c[1]));
    else {
        r = vceqq_s32(x, c[0]);
        for (uint64_t q = 1; q < k; q++) r = vorrq_u32(r, vceqq_s32(x, c[q]));
    }
    return pd__bits4(r);
}

static inline uint32_t pd__cmp2(int64x2_t x, int op, const int64x2_t *c, uint64_t k)
{
    uint64x2_t r;
    if (op == OP_EQ)
        r = vceqq_s64(x, c[0]);
    else if (op == OP_LT)
        r = vcltq_s64(x, c[0]);
    else if (op == OP_BETWEEN)
        r = vandq_u64(vcgeq_s64(x, c[0]), vcleq_s64(x, c[1]));
    else {
        r = vceqq_s64(x, c[0]);
        for (uint64_t q = 1; q < k; q++) r = vorrq_u64(r, vceqq_s64(x, c[q]));
    }
    return pd__bits2(r);
}

static inline int32x4_t pd__tokey(int32x4_t x)
{
    const uint32x4_t flip = vshrq_n_u32(vreinterpretq_u32_s32(vshrq_n_s32(x, 31)), 1);
    return veorq_s32(x, vreinterpretq_s32_u32(flip));
}

/* One row as the oracle's rules, for the last partial word. */
static int pd__row(const pd__state *s, const uint8_t *col, uint64_t i, const uint64_t *cb,
                   uint64_t k)
{
    int64_t x, cq[8];
    if (s->type == T_I64) {
        memcpy(&x, col + 8 * i, 8);
        for (int q = 0; q < 8; q++) cq[q] = (int64_t)cb[1 + q];
    } else {
        uint32_t u;
        memcpy(&u, col + 4 * i, 4);
        const int f = s->type == T_F32;
        x = f ? pd__key(u) : (int32_t)u;
        for (int q = 0; q < 8; q++)
            cq[q] = f ? pd__key((uint32_t)cb[1 + q]) : (int32_t)(uint32_t)cb[1 + q];
    }
    if (s->op == OP_EQ) return x == cq[0];
    if (s->op == OP_LT) return x < cq[0];
    if (s->op == OP_BETWEEN) return x >= cq[0] && x <= cq[1];
    int m = 0;
    for (uint64_t q = 0; q < k; q++) m |= x == cq[q];
    return m;
}

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const pd__state *s = state;
    PD_CHECK_CALL(s);
    const uint64_t *cb = inputs[2].data;
    const uint64_t k = cb[0] < 1 ? 1 : cb[0] > 8 ? 8 : cb[0], n = s->n, nb = PD_BYTES(n);
    const int op = s->op;
    int32x4_t c32[8];
    int64x2_t c64[8];
    for (uint64_t q = 0; q < 8; q++) {
        const uint32_t u = (uint32_t)cb[1 + q];
        c32[q] = vdupq_n_s32(s->type == T_F32 ? pd__key(u) : (int32_t)u);
        c64[q] = vdupq_n_s64((int64_t)cb[1 + q]);
    }
    const uint8_t *col = inputs[0].data, *valid = inputs[1].data;
    uint8_t *mask = outputs[0].data;
    uint32_t *idx = outputs[1].data;
    uint64_t p = 0;
    for (uint64_t w = 0; w * 64 < n; w++) {
        const uint64_t base = w * 64;
        uint64_t bits = 0;
        if (base + 64 <= n) {
            if (s->type == T_I64) {
                for (int v = 0; v < 32; v++) {
                    const int64x2_t x = vreinterpretq_s64_u8(vld1q_u8(col + 8 * (base + 2 * v)));
                    bits |= (uint64_t)pd__cmp2(x, op, c64, k) << (2 * v);
                }
            } else {
                for (int v = 0; v < 16; v++) {
                    int32x4_t x = vreinterpretq_s32_u8(vld1q_u8(col + 4 * (base + 4 * v)));
                    if (s->type == T_F32) x = pd__tokey(x);
                    bits |= (uint64_t)pd__cmp4(x, op, c32, k) << (4 * v);
                }
            }
        } else {
            for (uint64_t i = base; i < n; i++)
                bits |= (uint64_t)pd__row(s, col, i, cb, k) << (i - base);
        }
        bits &= pd__valid64(valid, w, nb);
        for (uint64_t b = 0; b < 8 && base / 8 + b < nb; b++)
            mask[base / 8 + b] = (uint8_t)(bits >> (8 * b));
        p = pd__emit(bits, base, idx, p);
    }
    outputs[1].produced = p;
    return KB_OK;
}
