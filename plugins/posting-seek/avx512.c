/*
 * avx512.c -- posting-seek candidate "avx512": portable.c's shallow-first seek with
 * 16-lane unsigned compares into a mask register.
 *
 * A seek compares the 16 documents from the cursor with the target (vpcmpud into a k
 * mask) and takes the first lane at or above it (tzcnt). 16 lanes cover nearly every
 * in-block skip of WAND's distribution in one step; only when all 16 are below does it scan
 * the skip table 16 block firsts a compare, then the one block 16 documents a compare.
 * Loads near the end of an array are masked, so no scalar tail is needed.
 */
#include <immintrin.h>

#define PS_NAME "avx512"
#define PS_CPU  KB_CPU_AVX512F
#include "ps_plugin.h"

#define W 16

/* Lanes of p[0..k) that are >= t (lanes past k are clear). */
static inline uint32_t ps__ge_mask(const uint32_t *p, uint64_t k, __m512i t)
{
    const __mmask16 live = k >= W ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1);
    const __m512i d = _mm512_maskz_loadu_epi32(live, p);
    return (uint32_t)_mm512_mask_cmpge_epu32_mask(live, d, t);
}

/* The first index >= from whose doc id is >= t; all of doc[.. from) are < t. */
static uint64_t ps__seek_far(const ps__state *s, uint64_t from, __m512i tv)
{
    const uint64_t n = s->n, nb = s->n_blocks;
    const uint32_t *first = s->block_first, *doc = s->doc_ids;
    uint64_t b = (from - 1) / PS_BLOCK;
    for (;;) { /* block firsts b + 1 .. b + 16 that are <= t */
        const uint64_t left = nb - 1 - b;
        if (left == 0) break;
        const __mmask16 live = left >= W ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        const __m512i f = _mm512_maskz_loadu_epi32(live, first + b + 1);
        const uint32_t c = (uint32_t)__builtin_popcount(_mm512_mask_cmple_epu32_mask(live, f, tv));
        b += c;
        if (c < W) break;
    }
    uint64_t p = b * PS_BLOCK;
    if (p < from) p = from;
    const uint64_t end = (b + 1) * PS_BLOCK < n ? (b + 1) * PS_BLOCK : n;
    for (; p < end; p += W) {
        const uint32_t mk = ps__ge_mask(doc + p, end - p, tv);
        if (mk) return p + (uint32_t)__builtin_ctz(mk);
    }
    return end;
}

/* Lookahead: the block of the target PS_AHEAD seeks on, found on the skip table (small,
 * cache resident), and a prefetch of the doc ids line where the target should fall in it,
 * interpolated between the block's first doc id and the next block's. The seek that
 * reaches it later finds the line in cache: deep and medium skips stop waiting on memory
 * one at a time. */
#define PS_AHEAD 16
static inline uint64_t ps__look(const ps__state *s, uint64_t b, uint32_t t)
{
    const uint32_t *first = s->block_first;
    const uint64_t nb = s->n_blocks;
    while (b + 1 < nb && first[b + 1] <= t) b++;
    const uint64_t lo = first[b], hi = b + 1 < nb ? first[b + 1] : (uint64_t)t + 1;
    const uint64_t span = hi > lo ? hi - lo : 1, into = t > lo ? t - lo : 0;
    uint64_t at = b * PS_BLOCK + (into * PS_BLOCK) / span;
    if (at >= s->n) at = s->n - 1;
    __builtin_prefetch(s->doc_ids + at);
    return b;
}

static int ps__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const ps__state *s = state;
    PS_CHECK_CALL();
    const uint32_t *targets = inputs[0].data, *doc = s->doc_ids;
    uint32_t *found = outputs[0].data;
    const uint64_t n = s->n, m = inputs[0].count;
    uint64_t p = 0, look = 0;
    for (uint64_t i = 0; i < m; i++) {
        if (i + PS_AHEAD < m) look = ps__look(s, look, targets[i + PS_AHEAD]);
        const __m512i tv = _mm512_set1_epi32((int)targets[i]);
        if (p + W <= n) {
            const uint32_t mk = ps__ge_mask(doc + p, W, tv);
            p = mk ? p + (uint32_t)__builtin_ctz(mk) : ps__seek_far(s, p + W, tv);
        } else if (p < n) {
            const uint32_t mk = ps__ge_mask(doc + p, n - p, tv);
            p = mk ? p + (uint32_t)__builtin_ctz(mk) : n;
        }
        found[i] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
