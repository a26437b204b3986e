/*
 * portable.c -- fts-bm25 in plain C, in two passes over chunks of FB_CHUNK postings: the
 * lengths gathered by doc id into a small buffer (loads only, many in flight), then the
 * oracle's f32 operations in its order over that buffer, a loop with no indirection that
 * the compiler vectorizes (SSE2's divps on plain x86-64, NEON's fdiv on aarch64): the
 * oracle's bits. Lengths and tf are < 2^31, so converting them as int32 gives the same
 * floats as Lance's u32 as f32, and it is the conversion SIMD units have.
 */
#define FB_NAME     "portable"
#define FB_FEATURES 0
#include "common.h"

#define FB_CHUNK 512

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores)
{
    const uint32_t *dl = st->doc_len;
    const float avgdl = st->avgdl;
    int32_t len[FB_CHUNK];
    for (uint64_t i = 0; i < st->n; i += FB_CHUNK) {
        const uint64_t m = st->n - i < FB_CHUNK ? st->n - i : FB_CHUNK;
        for (uint64_t j = 0; j < m; j++) len[j] = (int32_t)dl[ids[i + j]];
        const int32_t *f32 = (const int32_t *)(tf + i);
        float *out = scores + i;
        for (uint64_t j = 0; j < m; j++) {
            const float freq = (float)f32[j], doc_tokens = (float)len[j];
            const float doc_norm = FB_K1 * (1.0f - FB_B + FB_B * doc_tokens / avgdl);
            out[j] = idf * ((FB_K1 + 1.0f) * freq / (freq + doc_norm));
        }
    }
}
