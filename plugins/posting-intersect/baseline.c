/*
 * baseline.c -- posting-intersect, the oracle's algorithm as a candidate.
 *
 * The same scalar k-way merge as oracles/posting-intersect/oracle.c: list 0
 * AND list 1 by a linear merge, then the result AND each next list, in the
 * order given. It is the starting point to copy when writing a new
 * candidate; timed against the oracle its ratio sits near 1, up to code
 * layout (measurement.md "Code layout").
 */
#include <stdio.h>

#include "kbench.h"

enum { PI_P_K, PI_P_N, PI_P_RATIO, PI_P_OVERLAP_PPM, PI_N_PARAMS };
#define PI_MAX_K 8

typedef struct pi_state {
    const kb_host *host;
    uint32_t *scratch; /* intermediate results; bounded by the longest list */
    uint64_t cap;
} pi_state;

static int pi_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (n_statics != 0 || cs->n_params != PI_N_PARAMS) {
        snprintf(err, err_len, "posting-intersect: expected 0 statics and %d params", PI_N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    int64_t n = cs->params[PI_P_N], ratio = cs->params[PI_P_RATIO];
    if (n < 1 || ratio < 1 || n > (INT64_C(1) << 24) || ratio > (INT64_C(1) << 24)) {
        snprintf(err, err_len, "case %s: n and ratio must be 1..2^24", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    pi_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->cap = (uint64_t)n * (uint64_t)ratio;
    st->scratch = host->alloc_aligned(host, st->cap * sizeof(uint32_t), 64);
    if (!st->scratch) {
        host->free_aligned(host, st);
        snprintf(err, err_len, "out of memory for %llu scratch ids", (unsigned long long)st->cap);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

/* Writes a AND b into out; out may be a itself (it never gets ahead of a). */
static uint64_t pi_merge(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                         uint32_t *out)
{
    uint64_t i = 0, j = 0, w = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j]) {
            i++;
        } else if (a[i] > b[j]) {
            j++;
        } else {
            out[w++] = a[i];
            i++;
            j++;
        }
    }
    return w;
}

static int pi_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    pi_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[1].count < 3 || inputs[1].count > PI_MAX_K + 1) {
        snprintf(err, err_len, "posting-intersect: need lists, offsets (3..%d) and out",
                 PI_MAX_K + 1);
        return KB_ERR_INTERNAL;
    }
    const uint32_t *lists = inputs[0].data;
    const uint64_t *off = inputs[1].data;
    uint32_t k = (uint32_t)inputs[1].count - 1;
    uint64_t shortest = UINT64_MAX;

    if (off[0] != 0 || off[k] != inputs[0].count) {
        snprintf(err, err_len, "offsets must run from 0 to %llu",
                 (unsigned long long)inputs[0].count);
        return KB_ERR_INTERNAL;
    }
    for (uint32_t i = 0; i < k; i++) {
        if (off[i + 1] < off[i]) {
            snprintf(err, err_len, "offsets decrease at list %u", i);
            return KB_ERR_INTERNAL;
        }
        if (off[i + 1] - off[i] < shortest) shortest = off[i + 1] - off[i];
    }
    uint64_t first_two = off[1] < off[2] - off[1] ? off[1] : off[2] - off[1];
    if (shortest > outputs[0].count || (k > 2 && first_two > st->cap)) {
        snprintf(err, err_len, "out holds %llu ids and scratch %llu; lists need %llu and %llu",
                 (unsigned long long)outputs[0].count, (unsigned long long)st->cap,
                 (unsigned long long)shortest, (unsigned long long)first_two);
        return KB_ERR_INTERNAL;
    }

    uint32_t *out = outputs[0].data;
    const uint32_t *src = lists;
    uint64_t m = off[1];
    for (uint32_t i = 1; i < k; i++) {
        uint32_t *dst = i == k - 1 ? out : st->scratch;
        m = pi_merge(src, m, lists + off[i], off[i + 1] - off[i], dst);
        src = dst;
    }
    outputs[0].produced = m;
    return KB_OK;
}

static void pi_release(void *state)
{
    pi_state *st = state;
    const kb_host *host = st->host;
    host->free_aligned(host, st->scratch);
    host->free_aligned(host, st);
}

static const kb_plugin pi_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "posting-intersect",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = pi_prepare,
    .run = pi_run,
    .verify = NULL,
    .release = pi_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pi_plugin;
}
