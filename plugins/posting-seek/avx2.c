/*
 * avx2.c -- posting-seek candidate "avx2": portable.c's shallow-first seek with 8-lane
 * compares.
 *
 * A seek compares the 8 documents from the cursor with the target in one instruction
 * (unsigned: max(doc, t) == doc means doc >= t) and takes the first lane at or above it
 * (tzcnt of the mask; the list is sorted, so it is also the count below). Only when all 8
 * are below does it scan the skip table 8 block firsts a compare, then the one block 8
 * documents a compare. Shallow seeks, most of WAND's, cost one load, one compare and one
 * tzcnt.
 */
#include <immintrin.h>

#define PS_NAME "avx2"
#define PS_CPU  KB_CPU_AVX2
#include "ps_plugin.h"

#define W 8

/* Lanes of p[0..8) that are >= t, as 8 bits. */
static inline uint32_t ps__ge_mask(const uint32_t *p, __m256i t)
{
    const __m256i d = _mm256_loadu_si256((const __m256i *)p);
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_max_epu32(d, t), d)));
}

/* How many of p[0..8) are <= t. */
static inline uint32_t ps__count_le(const uint32_t *p, __m256i t)
{
    const __m256i d = _mm256_loadu_si256((const __m256i *)p);
    const uint32_t m =
        (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_max_epu32(d, t), t)));
    return (uint32_t)__builtin_popcount(m);
}

/* The first index >= from whose doc id is >= t; all of doc[.. from) are < t. */
static uint64_t ps__seek_far(const ps__state *s, uint64_t from, uint32_t t, __m256i tv)
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
        const uint32_t m = ps__ge_mask(doc + p, tv);
        if (m) return p + (uint32_t)__builtin_ctz(m);
        p += W;
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
        const __m256i tv = _mm256_set1_epi32((int)t);
        if (p + W <= n) {
            const uint32_t mk = ps__ge_mask(doc + p, tv);
            p = mk ? p + (uint32_t)__builtin_ctz(mk) : ps__seek_far(s, p + W, t, tv);
        } else {
            while (p < n && doc[p] < t) p++;
        }
        found[i] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
