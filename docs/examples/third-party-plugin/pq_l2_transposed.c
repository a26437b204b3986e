/*
 * pq_l2_transposed.c -- a third-party pq-l2 candidate, built outside the
 * kbench tree against an installed kbench (see README.md next to it).
 *
 * The target (oracles/pq-l2 in kbench): a d-dimensional query is split into
 * m sub-spaces of ds = d / m floats; each sub-space has 256 centroids. A call
 * builds table[j][c] = ||query_j - centroid_jc||^2, then for each of n
 * encoded vectors (one byte per sub-space) sums table[j][code_j] over j.
 *
 * What this candidate does differently from the oracle, in plain C:
 *   - prepare() transposes the codebook from [j][c][t] to [j][t][c]. The
 *     codebook is a static input, so anything derived from it may be
 *     computed once here. The table itself may not: it depends on the query,
 *     which changes on every call.
 *   - run() builds the table with the centroid index innermost, 256
 *     independent accumulators that the compiler vectorizes, instead of one
 *     dot-product-like reduction per centroid;
 *   - the lookups go four vectors at a time, four independent sums in
 *     flight instead of one long dependency chain.
 * Every output is still summed in the oracle's order (t, then j, from 0.0f,
 * separate multiply and add), so it is bit-exact, well inside the target's
 * rel_tol of 1e-4.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <kbench/kbench.h>

#define CENTROIDS 256

typedef struct tp_state {
    const kb_host *host; /* valid until release() returns */
    uint64_t n;
    uint32_t d, m, ds;
    float *codebook_t; /* [m][ds][256]: owned, from host->alloc_aligned */
    float *table;      /* [m][256]: scratch, rebuilt by every run */
} tp_state;

static void tp_release(void *state);

/* Called once per case, untimed. statics[0] is the codebook, read-only and
 * valid until release(); the transposed copy is ours. */
static int tp_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 3 || n_statics != 1) {
        snprintf(err, err_len, "transposed: expected 3 params and 1 static buffer, got %u and %u",
                 cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    /* params are in the order of the target's param_names: n, d, m. */
    int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].dtype != KB_DT_F32 || statics[0].count != (uint64_t)CENTROIDS * (uint64_t)d) {
        snprintf(err, err_len, "transposed: unsupported shape n=%lld d=%lld m=%lld",
                 (long long)n, (long long)d, (long long)m);
        return KB_ERR_UNSUPPORTED;
    }
    tp_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "transposed: out of memory");
        return KB_ERR_NOMEM;
    }
    memset(st, 0, sizeof *st);
    st->host = host;
    st->n = (uint64_t)n;
    st->d = (uint32_t)d;
    st->m = (uint32_t)m;
    st->ds = (uint32_t)(d / m);
    st->codebook_t = host->alloc_aligned(host, (size_t)d * CENTROIDS * sizeof(float), 64);
    st->table = host->alloc_aligned(host, (size_t)m * CENTROIDS * sizeof(float), 64);
    if (!st->codebook_t || !st->table) {
        tp_release(st);
        snprintf(err, err_len, "transposed: out of memory for a %lld x 256 codebook",
                 (long long)d);
        return KB_ERR_NOMEM;
    }
    const float *cb = statics[0].data;
    for (uint32_t j = 0; j < st->m; j++)
        for (uint32_t c = 0; c < CENTROIDS; c++)
            for (uint32_t t = 0; t < st->ds; t++)
                st->codebook_t[((size_t)j * st->ds + t) * CENTROIDS + c] =
                    cb[((size_t)j * CENTROIDS + c) * st->ds + t];
    *state = st;
    return KB_OK;
}

static void tp_build_table(const tp_state *st, const float *query)
{
    for (uint32_t j = 0; j < st->m; j++) {
        float acc[CENTROIDS] = {0};
        const float *q = query + (size_t)j * st->ds;
        for (uint32_t t = 0; t < st->ds; t++) {
            const float *x = st->codebook_t + ((size_t)j * st->ds + t) * CENTROIDS;
            const float qt = q[t];
            for (uint32_t c = 0; c < CENTROIDS; c++) {
                float diff = qt - x[c];
                acc[c] += diff * diff;
            }
        }
        memcpy(st->table + (size_t)j * CENTROIDS, acc, sizeof acc);
    }
}

static void tp_sum_codes(const tp_state *st, const uint8_t *codes, float *dist)
{
    const size_t m = st->m;
    const float *tab = st->table;
    uint64_t i = 0;
    for (; i + 4 <= st->n; i += 4) {
        const uint8_t *r0 = codes + i * m, *r1 = r0 + m, *r2 = r1 + m, *r3 = r2 + m;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (size_t j = 0; j < m; j++) {
            const float *tj = tab + j * CENTROIDS;
            a0 += tj[r0[j]];
            a1 += tj[r1[j]];
            a2 += tj[r2[j]];
            a3 += tj[r3[j]];
        }
        dist[i] = a0;
        dist[i + 1] = a1;
        dist[i + 2] = a2;
        dist[i + 3] = a3;
    }
    for (; i < st->n; i++) {
        float acc = 0.0f;
        for (size_t j = 0; j < m; j++)
            acc += tab[j * CENTROIDS + codes[i * m + j]];
        dist[i] = acc;
    }
}

/* The timed call: inputs are query (f32, d) and codes (u8, n * m), the
 * output is dist (f32, n), all valid for this call only. */
static int tp_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    tp_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->d ||
        inputs[1].count != st->n * st->m || outputs[0].count != st->n) {
        snprintf(err, err_len, "transposed: buffers do not match the prepared case");
        return KB_ERR_INTERNAL;
    }
    tp_build_table(st, inputs[0].data);
    tp_sum_codes(st, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void tp_release(void *state)
{
    tp_state *st = state;
    const kb_host *host = st->host;
    if (st->codebook_t)
        host->free_aligned(host, st->codebook_t);
    if (st->table)
        host->free_aligned(host, st->table);
    host->free_aligned(host, st);
}

static const kb_plugin tp_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "pq-l2",
    .name = "transposed",
    .version = "1.0",
    .cpu_features = 0, /* plain C: runs on any machine the host runs on */
    .prepare = tp_prepare,
    .run = tp_run,
    .verify = NULL,
    .release = tp_release,
};

/* The one exported symbol. */
KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tp_plugin;
}
