/*
 * portable.c -- posting-seek candidate "portable": plain C, a shallow-first seek that
 * counts instead of branching, two targets a window.
 *
 * The list is sorted, so the number of documents below a target in the 16 from the cursor
 * is the distance to its answer: a fixed-length count with no branch per document (the
 * compiler turns it into compares and adds, or SIMD). Two consecutive targets are counted
 * on the same window; most of WAND's skips are a few documents (the oracle's comment), so
 * both usually land in it and the cursor moves once for two seeks. Only when the window
 * holds neither answer does it go to the skip table, 8 block firsts a count, and then
 * counts inside the one block. A gallop or a binary search first would win the deep case
 * and lose the common one.
 */
#define PS_NAME "portable"
#define PS_CPU  0
#include "ps_plugin.h"

#define W 16

static inline uint32_t ps__count_below(const uint32_t *p, uint32_t t)
{
    uint32_t c = 0;
    for (int j = 0; j < W; j++) c += p[j] < t;
    return c;
}

static inline uint32_t ps__count_le8(const uint32_t *p, uint32_t t)
{
    uint32_t c = 0;
    for (int j = 0; j < 8; j++) c += p[j] <= t;
    return c;
}

/* The first index >= from whose doc id is >= t; all of doc[.. from) are < t. The block:
 * the skip table 8 block firsts a count, then the block 16 documents a count. */
static uint64_t ps__seek_far(const ps__state *s, uint64_t from, uint32_t t)
{
    const uint64_t n = s->n, nb = s->n_blocks;
    const uint32_t *first = s->block_first, *doc = s->doc_ids;
    uint64_t b = (from - 1) / PS_BLOCK; /* block_first[b] <= doc[from - 1] < t */
    for (;;) { /* block firsts b + 1 .. b + 8: the step does not wait for the count */
        if (b + 1 + 8 > nb) {
            while (b + 1 < nb && first[b + 1] <= t) b++;
            break;
        }
        const uint32_t c = ps__count_le8(first + b + 1, t);
        if (c < 8) {
            b += c;
            break;
        }
        b += 8;
    }
    uint64_t p = b * PS_BLOCK > from ? b * PS_BLOCK : from;
    const uint64_t end = (b + 1) * PS_BLOCK < n ? (b + 1) * PS_BLOCK : n;
    /* The cursor steps by the window, not by the count: the next load's address does not
     * wait for this compare, so the loads of a block run ahead in order, as the hardware
     * prefetcher likes (a binary search here loses on lists larger than the cache). */
    for (; p + W <= end; p += W) {
        const uint32_t c = ps__count_below(doc + p, t);
        if (c < W) return p + c;
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
    uint64_t p = 0, i = 0;
    while (i < m) {
        const uint32_t t = targets[i];
        if (p + W > n) { /* the last 16 documents: one at a time */
            while (p < n && doc[p] < t) p++;
            found[i++] = p < n ? doc[p] : PS_END;
            continue;
        }
        const uint32_t c0 = ps__count_below(doc + p, t);
        if (i + 1 < m) {
            const uint32_t c1 = ps__count_below(doc + p, targets[i + 1]);
            if (c1 < W) { /* both answers in the window */
                found[i] = doc[p + c0];
                p += c1;
                found[i + 1] = doc[p];
                i += 2;
                continue;
            }
        }
        p = c0 < W ? p + c0 : ps__seek_far(s, p + W, t);
        found[i++] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
