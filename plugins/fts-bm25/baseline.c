/*
 * baseline.c -- the fts-bm25 oracle's kernel, unchanged, as a candidate: Lance's
 * IndexBM25Scorer score = idf * doc_weight(freq, doc_len[id]) one posting at a time, each
 * f32 operation in Lance's order (oracles/fts-bm25/oracle.c). Timed against the oracle it
 * shows the harness's noise floor; copy it to start a new candidate.
 */
#include <stdio.h>

#include "kbench.h"

#define FB_K1 1.2f
#define FB_B  0.75f

typedef struct fb_state {
    const kb_host *host;
    uint64_t docs, n;
    const uint32_t *doc_len;
    float avgdl;
} fb_state;

static int fb_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 2 || n_statics != 1 || statics[0].count != (uint64_t)cs->params[1]) {
        snprintf(err, err_len, "fts-bm25 baseline: expected the doc_len table and 2 params");
        return KB_ERR_INTERNAL;
    }
    fb_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->docs = statics[0].count;
    st->n = (uint64_t)cs->params[0];
    st->doc_len = statics[0].data;
    /* IndexBM25Scorer::new: total_tokens as f32 / num_docs as f32. */
    uint64_t total = 0;
    for (uint64_t d = 0; d < st->docs; d++) total += st->doc_len[d];
    st->avgdl = (float)total / (float)st->docs;
    *state = st;
    return KB_OK;
}

static int fb_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const fb_state *st = state;
    if (n_inputs != 3 || n_outputs != 1 || inputs[0].count != st->n || inputs[1].count != st->n ||
        inputs[2].count != 1 || outputs[0].count != st->n) {
        snprintf(err, err_len, "fts-bm25 baseline: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    const uint32_t *ids = inputs[0].data, *tf = inputs[1].data;
    const float idf = ((const float *)inputs[2].data)[0], avgdl = st->avgdl;
    float *scores = outputs[0].data;
    for (uint64_t i = 0; i < st->n; i++) {
        /* doc_weight(freq, doc_tokens), then query_weight * doc_weight */
        const float freq = (float)tf[i];
        const float doc_tokens = (float)st->doc_len[ids[i]];
        const float doc_norm = FB_K1 * (1.0f - FB_B + FB_B * doc_tokens / avgdl);
        scores[i] = idf * ((FB_K1 + 1.0f) * freq / (freq + doc_norm));
    }
    return KB_OK;
}

static void fb_release(void *state)
{
    fb_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin fb_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "fts-bm25",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = fb_prepare,
    .run = fb_run,
    .release = fb_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &fb_plugin;
}
