/*
 * baseline.c -- predicate candidate "baseline": the oracle's kernel, unchanged, as a plugin.
 *
 * arrow-rs's comparison semantics one row at a time: is_eq / is_lt per type (floats by
 * totalOrder), BETWEEN as >= AND <=, IN as any =, a null row never selected. Timed
 * against the oracle it shows the harness's noise floor (never kept); it is also the file
 * to copy when starting a candidate.
 */
#define PD_NAME "baseline"
#define PD_CPU  0
#include "pd_plugin.h"

/* ArrowNativeTypeOp, per type: is_eq and is_lt on the values' bits. */
static int pd__is_eq(int type, uint64_t a, uint64_t b)
{
    if (type == T_I64) return a == b;
    return (uint32_t)a == (uint32_t)b; /* i32 ==; f32 to_bits() == */
}

static int pd__is_lt(int type, uint64_t a, uint64_t b)
{
    if (type == T_I64) return (int64_t)a < (int64_t)b;
    if (type == T_I32) return (int32_t)(uint32_t)a < (int32_t)(uint32_t)b;
    /* f32::total_cmp: flip the magnitude bits of negatives, compare as i32 */
    int32_t l = (int32_t)(uint32_t)a, r = (int32_t)(uint32_t)b;
    l ^= (int32_t)(((uint32_t)(l >> 31)) >> 1);
    r ^= (int32_t)(((uint32_t)(r >> 31)) >> 1);
    return l < r;
}

static uint64_t pd__load(const uint8_t *col, int type, uint64_t i)
{
    const int w = PD_W(type);
    uint64_t v = 0;
    for (int b = 0; b < w; b++) v |= (uint64_t)col[i * w + b] << (8 * b);
    return v;
}

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const pd__state *s = state;
    const uint64_t n = s->n;
    PD_CHECK_CALL(s);
    const uint8_t *col = inputs[0].data, *valid = inputs[1].data;
    const uint64_t *c = inputs[2].data;
    const uint64_t k = c[0] < 1 ? 1 : c[0] > 8 ? 8 : c[0];
    uint8_t *mask = outputs[0].data;
    uint32_t *idx = outputs[1].data;
    uint64_t produced = 0;
    memset(mask, 0, (size_t)PD_BYTES(n));
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t x = pd__load(col, s->type, i);
        int v;
        switch (s->op) {
        case OP_EQ: v = pd__is_eq(s->type, x, c[1]); break;
        case OP_LT: v = pd__is_lt(s->type, x, c[1]); break;
        case OP_BETWEEN: /* gt_eq(x, lo) AND lt_eq(x, hi) */
            v = !pd__is_lt(s->type, x, c[1]) && !pd__is_lt(s->type, c[2], x);
            break;
        default: /* IN: any is_eq */
            v = 0;
            for (uint64_t j = 1; j <= k; j++) v |= pd__is_eq(s->type, x, c[j]);
            break;
        }
        /* a null comparison is null, and a filter keeps true only */
        if (v && ((valid[i / 8] >> (i % 8)) & 1)) {
            mask[i / 8] |= (uint8_t)(1u << (i % 8));
            idx[produced++] = (uint32_t)i;
        }
    }
    outputs[1].produced = produced;
    return KB_OK;
}
