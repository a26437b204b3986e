/*
 * avx2.c -- posting-seek candidate "avx2": a shallow-first seek with 8-lane unsigned
 * compares, a window of 16 documents, two targets a window.
 *
 * The 16 documents from the cursor (two registers) are compared with two consecutive
 * targets (max(doc, t) == doc means doc >= t, unsigned); the list is sorted, so the first
 * set bit of each 16-bit mask is its answer. Most of WAND's skips are a few documents (the
 * oracle's comment), so both answers usually lie in the window and the cursor moves once
 * for two seeks: the chain of load, compare, movemask, tzcnt and add that limits a SIMD
 * seek is paid once a pair. Only when the window holds neither answer does it scan the
 * skip table 8 block firsts a compare, then the one block 8 documents a compare.
 */
#include <immintrin.h>

#define PS_NAME "avx2"
#define PS_CPU  KB_CPU_AVX2
#include "ps_plugin.h"

#define W 8

/* Lanes of d that are >= t, as 8 bits. */
static inline uint32_t ps__ge(__m256i d, __m256i t)
{
    const __m256i ge = _mm256_cmpeq_epi32(_mm256_max_epu32(d, t), d);
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(ge));
}

/* How many of p[0..8) are <= t. */
static inline uint32_t ps__count_le(const uint32_t *p, __m256i t)
{
    const __m256i d = _mm256_loadu_si256((const __m256i *)p);
    const __m256i le = _mm256_cmpeq_epi32(_mm256_max_epu32(d, t), t);
    return (uint32_t)__builtin_popcount((uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(le)));
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
    /* From a multiple of 8 documents (32 bytes from the block's start: no load splits a
     * cache line); documents before `from` are below t and set no lane. */
    uint64_t p = b * PS_BLOCK;
    if (p < from) p = from & ~(uint64_t)(W - 1);
    const uint64_t end = (b + 1) * PS_BLOCK < n ? (b + 1) * PS_BLOCK : n;
    while (p + W <= end) {
        const uint32_t m = ps__ge(_mm256_loadu_si256((const __m256i *)(doc + p)), tv);
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
    uint64_t p = 0, i = 0;
    while (i < m) {
        const uint32_t t = targets[i];
        if (p + 2 * W > n) { /* the last 16 documents: one at a time */
            while (p < n && doc[p] < t) p++;
            found[i++] = p < n ? doc[p] : PS_END;
            continue;
        }
        const __m256i t0 = _mm256_set1_epi32((int)t);
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(doc + p));
        const __m256i hi = _mm256_loadu_si256((const __m256i *)(doc + p + W));
        const uint32_t m0 = ps__ge(lo, t0) | ps__ge(hi, t0) << W;
        if (i + 1 < m) {
            const __m256i t1 = _mm256_set1_epi32((int)targets[i + 1]);
            const uint32_t m1 = ps__ge(lo, t1) | ps__ge(hi, t1) << W;
            if (m1) { /* both answers in the window (m1 set implies m0 set) */
                found[i] = doc[p + (uint32_t)__builtin_ctz(m0)];
                p += (uint32_t)__builtin_ctz(m1);
                found[i + 1] = doc[p];
                i += 2;
                continue;
            }
        }
        p = m0 ? p + (uint32_t)__builtin_ctz(m0) : ps__seek_far(s, p + 2 * W, t, t0);
        found[i++] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
