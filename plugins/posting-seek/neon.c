/*
 * neon.c -- posting-seek candidate "neon": portable.c's shallow-first seek with 128-bit
 * Advanced SIMD compares, two registers (8 documents) a step.
 *
 * A seek compares the 8 documents from the cursor with the target (vcgeq_u32, unsigned)
 * and adds up the lanes below it (each compare lane is 0 or all ones, so the horizontal
 * add of the two negated masks is the count): the list is sorted, so the count is the
 * distance to the answer, with no branch per document. Only when all 8 are below does it
 * scan the skip table 8 block firsts a step, then the one block 8 documents a step.
 */
#include <arm_neon.h>

#define PS_NAME "neon"
#define PS_CPU  KB_CPU_NEON
#include "ps_plugin.h"

#define W 8

/* How many of p[0..8) are < t. */
static inline uint32_t ps__count_below(const uint32_t *p, uint32x4_t t)
{
    const uint32x4_t a = vcltq_u32(vld1q_u32(p), t), b = vcltq_u32(vld1q_u32(p + 4), t);
    return vaddvq_u32(vaddq_u32(vshrq_n_u32(a, 31), vshrq_n_u32(b, 31)));
}

/* How many of p[0..8) are <= t. */
static inline uint32_t ps__count_le(const uint32_t *p, uint32x4_t t)
{
    const uint32x4_t a = vcleq_u32(vld1q_u32(p), t), b = vcleq_u32(vld1q_u32(p + 4), t);
    return vaddvq_u32(vaddq_u32(vshrq_n_u32(a, 31), vshrq_n_u32(b, 31)));
}

/* The first index >= from whose doc id is >= t; all of doc[.. from) are < t. */
static uint64_t ps__seek_far(const ps__state *s, uint64_t from, uint32_t t, uint32x4_t tv)
{
    const uint64_t n = s->n, nb = s->n_blocks;
    const uint32_t *first = s->block_first, *doc = s->doc_ids;
    uint64_t b = (from - 1) / PS_BLOCK;
    for (;;) {
        if (b + 1 + W > nb) {
            while (b + 1 < nb && first[b + 1] <= t) b++;
            break;
        }
        const uint32_t c = ps__count_le(first + b + 1, tv);
        b += c;
        if (c < W) break;
    }
    uint64_t p = b * PS_BLOCK;
    if (p < from) p = from;
    const uint64_t end = (b + 1) * PS_BLOCK < n ? (b + 1) * PS_BLOCK : n;
    while (p + W <= end) {
        const uint32_t c = ps__count_below(doc + p, tv);
        p += c;
        if (c < W) return p;
    }
    while (p < end && doc[p] < t) p++;
    return p;
}

static int ps__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const ps__state *s = state;
    PS_CHECK_CALL();
    const uint32_t *targets = inputs[0].data, *doc = s->doc_ids;
    uint32_t *found = outputs[0].data;
    const uint64_t n = s->n, m = inputs[0].count;
    uint64_t p = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint32_t t = targets[i];
        const uint32x4_t tv = vdupq_n_u32(t);
        if (p + W <= n) {
            const uint32_t c = ps__count_below(doc + p, tv);
            p = c < W ? p + c : ps__seek_far(s, p + W, t, tv);
        } else {
            while (p < n && doc[p] < t) p++;
        }
        found[i] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
