/*
 * portable.c -- predicate candidate "portable": plain C, 64 rows a step, no branch per row.
 *
 * f32 values are turned into their totalOrder keys (pd__key: the magnitude bits of
 * negatives flipped, then a signed compare), which makes f32 the i32 kernel: = on keys is
 * = on bits, < on keys is total_cmp's Less. Per step of 64 rows the predicate's bits are
 * packed into one u64 without branches, ANDed with the validity word, stored as the 8
 * mask bytes; the index list is then written either from the set bits (ctz, for sparse
 * words) or as 64 unconditional stores with a cursor that advances by each bit (for dense
 * words), whichever the word's popcount says is cheaper.
 */
#define PD_NAME "portable"
#define PD_CPU  0
#include "pd_plugin.h"

/* The 8 validity bytes of rows [64 w, 64 w + 64), fewer at the end, little endian. */
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
    for (uint32_t j = 0; j < 64; j++) { /* idx has room: p <= base + j < n for a set bit */
        idx[p] = (uint32_t)(base + j);
        p += (bits >> j) & 1;
    }
    return p;
}

/* One kernel per element type T, values turned into keys by KEY. */
#define PD_KERNEL(NAME, T, LOAD)                                                                   \
    static uint64_t NAME(int op, const uint8_t *col, const uint8_t *valid, uint64_t n, const T *c, \
                         uint64_t k, uint8_t *mask, uint32_t *idx)                                 \
    {                                                                                              \
        uint64_t p = 0;                                                                            \
        const uint64_t nb = PD_BYTES(n);                                                           \
        for (uint64_t w = 0; w * 64 < n; w++) {                                                    \
            const uint64_t base = w * 64, len = n - base < 64 ? n - base : 64;                     \
            uint64_t bits = 0;                                                                     \
            if (op == OP_EQ)                                                                       \
                for (uint64_t j = 0; j < len; j++)                                                 \
                    bits |= (uint64_t)(LOAD(col, base + j) == c[0]) << j;                          \
            else if (op == OP_LT)                                                                  \
                for (uint64_t j = 0; j < len; j++)                                                 \
                    bits |= (uint64_t)(LOAD(col, base + j) < c[0]) << j;                           \
            else if (op == OP_BETWEEN)                                                             \
                for (uint64_t j = 0; j < len; j++) {                                               \
                    const T x = LOAD(col, base + j);                                               \
                    bits |= (uint64_t)((x >= c[0]) & (x <= c[1])) << j;                            \
                }                                                                                  \
            else                                                                                   \
                for (uint64_t j = 0; j < len; j++) {                                               \
                    const T x = LOAD(col, base + j);                                               \
                    int m = 0;                                                                     \
                    for (uint64_t q = 0; q < k; q++) m |= x == c[q];                               \
                    bits |= (uint64_t)m << j;                                                      \
                }                                                                                  \
            bits &= pd__valid64(valid, w, nb);                                                     \
            for (uint64_t b = 0; b < 8 && w * 8 + b < nb; b++)                                     \
                mask[w * 8 + b] = (uint8_t)(bits >> (8 * b));                                      \
            p = pd__emit(bits, base, idx, p);                                                      \
        }                                                                                          \
        return p;                                                                                  \
    }

static inline int32_t pd__ld32(const uint8_t *col, uint64_t i)
{
    int32_t v;
    memcpy(&v, col + 4 * i, 4);
    return v;
}

static inline int64_t pd__ld64(const uint8_t *col, uint64_t i)
{
    int64_t v;
    memcpy(&v, col + 8 * i, 8);
    return v;
}

static inline int32_t pd__ldkey(const uint8_t *col, uint64_t i)
{
    uint32_t v;
    memcpy(&v, col + 4 * i, 4);
    return pd__key(v);
}

PD_KERNEL(pd__k32, int32_t, pd__ld32)
PD_KERNEL(pd__k64, int64_t, pd__ld64)
PD_KERNEL(pd__kf32, int32_t, pd__ldkey)

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const pd__state *s = state;
    PD_CHECK_CALL(s);
    const uint64_t *cb = inputs[2].data;
    const uint64_t k = cb[0] < 1 ? 1 : cb[0] > 8 ? 8 : cb[0];
    const uint8_t *col = inputs[0].data, *valid = inputs[1].data;
    uint8_t *mask = outputs[0].data;
    uint32_t *idx = outputs[1].data;
    uint64_t p;
    if (s->type == T_I64) {
        int64_t c[8];
        for (uint64_t q = 0; q < 8; q++) c[q] = (int64_t)cb[1 + q];
        p = pd__k64(s->op, col, valid, s->n, c, k, mask, idx);
    } else {
        int32_t c[8];
        for (uint64_t q = 0; q < 8; q++)
            c[q] = s->type == T_F32 ? pd__key((uint32_t)cb[1 + q]) : (int32_t)(uint32_t)cb[1 + q];
        p = s->type == T_F32 ? pd__kf32(s->op, col, valid, s->n, c, k, mask, idx)
                             : pd__k32(s->op, col, valid, s->n, c, k, mask, idx);
    }
    outputs[1].produced = p;
    return KB_OK;
}
