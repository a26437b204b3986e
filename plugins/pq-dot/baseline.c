/*
 * baseline.c -- pq-dot candidate "baseline": the oracle's scalar kernel,
 * unchanged, as a plugin.
 *
 * It is the starting point an agent copies. Timed against the oracle it
 * shows what a rebuild alone does: same source, other bytes, so its ratio
 * is 1 only up to code layout (docs/measurement.md "Code layout").
 * Built with -ffp-contract=off like the oracle, so its output is bit-exact.
 */
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

#define PQ_CENTROIDS 256

typedef struct pq_state {
    const kb_host *host;
    uint64_t n;
    uint32_t d, m, ds;
    const float *codebook; /* [m][256][ds] */
    float *table;          /* [m][256], rebuilt by every run */
} pq_state;

/* lance-linalg dot_scalar::<f32, f32, 16>(from = q, to = x): the ds % 16
 * trailing products summed in order, the rest in 16 lanes, then the
 * trailing sum plus the lanes summed in order. */
#define PQ_LANES 16

static float pq_dot(const float *q, const float *x, uint32_t ds)
{
    const uint32_t full = ds / PQ_LANES * PQ_LANES;
    float sum = 0.0f;
    for (uint32_t t = full; t < ds; t++) sum += x[t] * q[t];
    float lanes[PQ_LANES] = {0};
    for (uint32_t k = 0; k < full; k += PQ_LANES)
        for (uint32_t i = 0; i < PQ_LANES; i++) lanes[i] += x[k + i] * q[k + i];
    float total = 0.0f;
    for (uint32_t i = 0; i < PQ_LANES; i++) total += lanes[i];
    return sum + total;
}

/* build_distance_table_dot: table[j][c] = dot_distance = 1 - dot. */
static void pq_build_table(const pq_state *st, const float *query)
{
    for (uint32_t j = 0; j < st->m; j++) {
        const float *q = query + (size_t)j * st->ds;
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) {
            const float *x = st->codebook + ((size_t)j * PQ_CENTROIDS + c) * st->ds;
            st->table[(size_t)j * PQ_CENTROIDS + c] = 1.0f - pq_dot(q, x, st->ds);
        }
    }
}

/* compute_pq_distance, then dot_distances_impl's d - (m - 1). */
static void pq_sum_codes(const pq_state *st, const uint8_t *codes, float *dist)
{
    const float diff = (float)st->m - 1.0f;
    for (uint64_t i = 0; i < st->n; i++) {
        const uint8_t *row = codes + i * st->m;
        float acc = 0.0f;
        for (uint32_t j = 0; j < st->m; j++) acc += st->table[(size_t)j * PQ_CENTROIDS + row[j]];
        dist[i] = acc - diff;
    }
}

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 3 || n_statics != 1) {
        snprintf(err, err_len, "baseline: expected 3 params and 1 static buffer, got %u and %u",
                 cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].count != (uint64_t)PQ_CENTROIDS * (uint64_t)d) {
        snprintf(err, err_len, "baseline: unsupported shape n=%lld d=%lld m=%lld", (long long)n,
                 (long long)d, (long long)m);
        return KB_ERR_UNSUPPORTED;
    }
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "baseline: out of memory");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->n = (uint64_t)n;
    st->d = (uint32_t)d;
    st->m = (uint32_t)m;
    st->ds = (uint32_t)(d / m);
    st->codebook = statics[0].data;
    st->table = host->alloc_aligned(host, (size_t)m * PQ_CENTROIDS * sizeof(float), 64);
    if (!st->table) {
        host->free_aligned(host, st);
        snprintf(err, err_len, "baseline: out of memory for the distance table");
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int pq_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    pq_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->d ||
        inputs[1].count != st->n * st->m || outputs[0].count != st->n) {
        snprintf(err, err_len, "baseline: buffers do not match the prepared case");
        return KB_ERR_INTERNAL;
    }
    pq_build_table(st, inputs[0].data);
    pq_sum_codes(st, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    host->free_aligned(host, st->table);
    host->free_aligned(host, st);
}

static const kb_plugin pq_baseline = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "pq-dot",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = pq_prepare,
    .run = pq_run,
    .verify = NULL,
    .release = pq_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pq_baseline;
}
