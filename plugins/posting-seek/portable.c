/*
 * portable.c -- posting-seek candidate "portable": plain C, tuned for shallow skips first.
 *
 * Each seek looks at the 8 documents from the cursor and counts those below the target:
 * the list is sorted, so the count is the distance to the answer, with no branch per
 * document (the count loop vectorizes at -O2). Only when all 8 are below does it go to
 * the skip table, 8 block firsts at a time, and then counts inside the one block. The
 * order matters: most of WAND's seeks end within a few documents (the oracle's comment),
 * so the first window must be the cheap path; a gallop or a binary search first would win
 * the deep case and lose the common one.
 */
#define PS_NAME "portable"
#define PS_CPU  0
#include "ps_plugin.h"

#define W 8

static inline uint32_t ps__count_below(const uint32_t *p, uint32_t t)
{
    uint32_t c = 0;
    for (int j = 0; j < W; j++) c += p[j] < t;
    return c;
}

static inline uint32_t ps__count_le(const uint32_t *p, uint32_t t)
{
    uint32_t c = 0;
    for (int j = 0; j < W; j++) c += p[j] <= t;
    return c;
}

/* The first index >= from whose doc id is >= t; all of doc[.. from) are < t. */
static uint64_t ps__seek_far(const ps__state *s, uint64_t from, uint32_t t)
{
    const uint64_t n = s->n, nb = s->n_blocks;
    const uint32_t *first = s->block_first, *doc = s->doc_ids;
    uint64_t b = (from - 1) / PS_BLOCK; /* block_first[b] <= doc[from - 1] < t */
    for (;;) {                          /* b + 1 .. b + W */
        if (b + 1 + W > nb) {
            while (b + 1 < nb && first[b + 1] <= t) b++;
            break;
        }
        const uint32_t c = ps__count_le(first + b + 1, t);
        b += c;
        if (c < W) break;
    }
    uint64_t p = b * PS_BLOCK;
    if (p < from) p = from;
    const uint64_t end = (b + 1) * PS_BLOCK < n ? (b + 1) * PS_BLOCK : n;
    while (p + W <= end) {
        const uint32_t c = ps__count_below(doc + p, t);
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
        if (p + W <= n) {
            const uint32_t c = ps__count_below(doc + p, t);
            p = c < W ? p + c : ps__seek_far(s, p + W, t);
        } else {
            while (p < n && doc[p] < t) p++;
        }
        found[i] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
