/*
 * baseline.c -- topk-merge candidate "baseline": the oracle's kernel, unchanged, as a
 * plugin.
 *
 * DataFusion's TopK as Lance's Scanner::ann uses it: every row offered in input order to
 * a max-heap of the k smallest (distance, row id) keys, then the heap emptied in
 * ascending order. Timed against the oracle it shows the harness's noise floor (its
 * ratio sits at 1 up to code layout, and it must never be kept); it is also the file to
 * copy when starting a candidate.
 */
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

enum { P_N, P_K, P_P, N_PARAMS };
#define TK_MAX_K 4096

/* (a, ai) < (b, bi): distance first, then row id. */
static int tk__less(float a, uint64_t ai, float b, uint64_t bi)
{
    return a < b || (a == b && ai < bi);
}

/* Restores the max-heap below node i of n (keys (d, id)). */
static void tk__sift_down(float *d, uint64_t *id, uint64_t i, uint64_t n)
{
    for (;;) {
        uint64_t l = 2 * i + 1, m = i;
        if (l < n && tk__less(d[m], id[m], d[l], id[l])) m = l;
        if (l + 1 < n && tk__less(d[m], id[m], d[l + 1], id[l + 1])) m = l + 1;
        if (m == i) return;
        float td = d[i];
        uint64_t ti = id[i];
        d[i] = d[m];
        id[i] = id[m];
        d[m] = td;
        id[m] = ti;
        i = m;
    }
}

/* Sorts n (d, id) pairs ascending in place: heap sort, deterministic everywhere. */
static void tk__sort(float *d, uint64_t *id, uint64_t n)
{
    for (uint64_t i = n / 2; i-- > 0;) tk__sift_down(d, id, i, n);
    for (uint64_t e = n; e > 1; e--) {
        float td = d[0];
        uint64_t ti = id[0];
        d[0] = d[e - 1];
        id[0] = id[e - 1];
        d[e - 1] = td;
        id[e - 1] = ti;
        tk__sift_down(d, id, 0, e - 1);
    }
}

typedef struct tk__state {
    const kb_host *host;
    uint64_t k;
    float *hd; /* the heap's distances, k */
} tk__state;

static int tk__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS) {
        snprintf(err, err_len, "topk-merge: expected 0 statics and %d params", N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    if (cs->params[P_K] < 1 || cs->params[P_K] > TK_MAX_K) {
        snprintf(err, err_len, "case %s: k must be 1..%d", cs->name, TK_MAX_K);
        return KB_ERR_UNSUPPORTED;
    }
    tk__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->k = (uint64_t)cs->params[P_K];
    st->hd = host->alloc_aligned(host, st->k * sizeof(float), 64);
    if (!st->hd) {
        host->free_aligned(host, st);
        snprintf(err, err_len, "out of memory for a heap of %llu", (unsigned long long)st->k);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int tk__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const tk__state *st = state;
    if (n_inputs != 3 || n_outputs != 1 || inputs[1].count != inputs[0].count ||
        outputs[0].count != st->k || inputs[0].count < st->k) {
        snprintf(err, err_len, "topk-merge: need dist, id, offsets and a k-long out_id, n >= k");
        return KB_ERR_INTERNAL;
    }
    const float *dist = inputs[0].data;
    const uint64_t *id = inputs[1].data;
    float *hd = st->hd;
    uint64_t *hi = outputs[0].data, size = 0; /* the heap's ids live in the output */

    for (uint64_t i = 0; i < inputs[0].count; i++) {
        if (size < st->k) { /* push: sift up */
            uint64_t c = size++;
            while (c > 0 && tk__less(hd[(c - 1) / 2], hi[(c - 1) / 2], dist[i], id[i])) {
                hd[c] = hd[(c - 1) / 2];
                hi[c] = hi[(c - 1) / 2];
                c = (c - 1) / 2;
            }
            hd[c] = dist[i];
            hi[c] = id[i];
        } else if (tk__less(dist[i], id[i], hd[0], hi[0])) { /* replace the largest */
            hd[0] = dist[i];
            hi[0] = id[i];
            tk__sift_down(hd, hi, 0, size);
        }
    }
    tk__sort(hd, hi, size); /* the heap emptied in ascending order */
    return KB_OK;
}

static void tk__release(void *state)
{
    tk__state *st = state;
    st->host->free_aligned(st->host, st->hd);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin tk__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "topk-merge",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
