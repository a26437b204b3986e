/*
 * common.h -- what the optimized fts-bm25 candidates share: the state, built once in prepare
 * from the static doc-length table, the scalar score, and the descriptor and buffer checks. A candidate
 * defines FB_NAME, FB_FEATURES and fb_kernel() before including it.
 *
 * The state holds avgdl, computed as the oracle does, and the static doc_len table. A
 * candidate that defines FB_DOC_NORM_TABLE also gets doc_norm[d] = K1 * ((1 - B) +
 * (B * dl[d]) / avgdl) for every document, with the oracle's f32 operations in its order
 * (its doc_norm bit for bit), so that a call is one load and
 *     score = idf * (((K1 + 1) * f) / (f + doc_norm[id]))
 * per posting: the oracle's bits with one division a posting instead of two. Build with
 * -ffp-contract=off: an FMA would round once where the oracle rounds twice.
 */
#ifndef FB_COMMON_H
#define FB_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

#define FB_K1 1.2f
#define FB_B  0.75f

typedef struct fb_state {
    const kb_host *host;
    uint64_t docs, n;
    float *doc_norm;         /* docs entries, 64-byte aligned; NULL without the table */
    const uint32_t *doc_len; /* the static table, valid until release */
    float avgdl;
} fb_state;

/* One posting from its length, the oracle's operations in its order. */
static inline float fb_score1(uint32_t tf, uint32_t len, float idf, float avgdl)
{
    const float freq = (float)tf, doc_tokens = (float)len;
    const float doc_norm = FB_K1 * (1.0f - FB_B + FB_B * doc_tokens / avgdl);
    return idf * ((FB_K1 + 1.0f) * freq / (freq + doc_norm));
}

static void fb_kernel(const fb_state *st, const uint32_t *ids, const uint32_t *tf, float idf,
                      float *scores);

static int fb_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 2 || n_statics != 1 || statics[0].count != (uint64_t)cs->params[1] ||
        cs->params[1] < 1 || cs->params[1] > INT32_MAX) {
        snprintf(err, err_len, "fts-bm25 " FB_NAME ": expected the doc_len table and 2 params");
        return KB_ERR_INTERNAL;
    }
    fb_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->docs = statics[0].count;
    st->n = (uint64_t)cs->params[0];
    st->doc_norm = NULL;
    const uint32_t *dl = statics[0].data;
    uint64_t total = 0;
    for (uint64_t d = 0; d < st->docs; d++) total += dl[d];
    const float avgdl = (float)total / (float)st->docs;
    st->doc_len = dl;
    st->avgdl = avgdl;
#ifdef FB_DOC_NORM_TABLE
    st->doc_norm = host->alloc_aligned(host, sizeof(float) * st->docs, 64);
    if (!st->doc_norm) {
        host->free_aligned(host, st);
        return KB_ERR_NOMEM;
    }
    for (uint64_t d = 0; d < st->docs; d++)
        st->doc_norm[d] = FB_K1 * (1.0f - FB_B + FB_B * (float)dl[d] / avgdl);
#endif
    *state = st;
    return KB_OK;
}

static int fb_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const fb_state *st = state;
    if (n_inputs != 3 || n_outputs != 1 || inputs[0].count != st->n || inputs[1].count != st->n ||
        inputs[2].count != 1 || outputs[0].count != st->n) {
        snprintf(err, err_len, "fts-bm25 " FB_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    fb_kernel(st, inputs[0].data, inputs[1].data, ((const float *)inputs[2].data)[0],
              outputs[0].data);
    return KB_OK;
}

static void fb_release(void *state)
{
    fb_state *st = state;
    if (st->doc_norm) st->host->free_aligned(st->host, st->doc_norm);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin fb_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "fts-bm25",
    .name = FB_NAME,
    .version = "1",
    .cpu_features = FB_FEATURES,
    .prepare = fb_prepare,
    .run = fb_run,
    .release = fb_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &fb_plugin;
}

#endif /* FB_COMMON_H */
