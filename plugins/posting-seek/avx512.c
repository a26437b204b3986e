/*
 * avx512.c -- posting-seek candidate "avx512": a shallow-first seek with 16-lane unsigned
 * compares into mask registers, two targets a window.
 *
 * The 16 documents from the cursor are compared with two consecutive targets at once
 * (vpcmpud into two k masks): the list is sorted, so the first set lane of each mask is its
 * answer. Most of WAND's skips are a few documents (the oracle's comment), so both answers
 * usually lie in the window and the cursor moves once for two seeks: the chain of
 * load, compare, tzcnt and add that limits a SIMD seek is paid once a pair. Only when the
 * window holds neither answer does it scan the skip table 16 block firsts a compare, then
 * the one block 16 documents a compare. Loads near the end of an array are masked.
 */
#include <immintrin.h>

#define PS_NAME "avx512"
#define PS_CPU  KB_CPU_AVX512F
#include "ps_plugin.h"

#define W 16

static inline __mmask16 ps__live(uint64_t k)
{
    return k >= W ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1);
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
        const __mmask16 live = ps__live(left);
        const __m512i f = _mm512_maskz_loadu_epi32(live, first + b + 1);
        const uint32_t c = (uint32_t)__builtin_popcount(_mm512_mask_cmple_epu32_mask(live, f, tv));
        b += c;
        if (c < W) break;
    }
    /* From a multiple of 16 documents (of 64 bytes from the block's start): each load one
     * cache line; documents before `from` are below t and set no lane. */
    uint64_t p = b * PS_BLOCK;
    if (p < from) p = from & ~(uint64_t)(W - 1);
    const uint64_t end = (b + 1) * PS_BLOCK < n ? (b + 1) * PS_BLOCK : n;
    for (; p + W <= end; p += W) {
        const uint32_t mk = _mm512_cmpge_epu32_mask(_mm512_loadu_si512(doc + p), tv);
        if (mk) return p + (uint32_t)__builtin_ctz(mk);
    }
    if (p < end) {
        const __mmask16 live = ps__live(end - p);
        const __m512i d = _mm512_maskz_loadu_epi32(live, doc + p);
        const uint32_t mk = _mm512_mask_cmpge_epu32_mask(live, d, tv);
        if (mk) return p + (uint32_t)__builtin_ctz(mk);
    }
    return end;
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
        const __m512i t0 = _mm512_set1_epi32((int)targets[i]);
        if (p >= n) {
            found[i++] = PS_END;
            continue;
        }
        const __mmask16 live = p + W <= n ? (__mmask16)0xffff : ps__live(n - p);
        const __m512i d =
            p + W <= n ? _mm512_loadu_si512(doc + p) : _mm512_maskz_loadu_epi32(live, doc + p);
        const uint32_t m0 = _mm512_mask_cmpge_epu32_mask(live, d, t0);
        if (i + 1 < m) {
            const __m512i t1 = _mm512_set1_epi32((int)targets[i + 1]);
            const uint32_t m1 = _mm512_mask_cmpge_epu32_mask(live, d, t1);
            if (m1) { /* both answers in the window (m1 set implies m0 set) */
                found[i] = doc[p + (uint32_t)__builtin_ctz(m0)];
                p += (uint32_t)__builtin_ctz(m1);
                found[i + 1] = doc[p];
                i += 2;
                continue;
            }
        }
        if (m0)
            p += (uint32_t)__builtin_ctz(m0);
        else
            p = p + W >= n ? n : ps__seek_far(s, p + W, t0);
        found[i++] = p < n ? doc[p] : PS_END;
    }
    return KB_OK;
}
