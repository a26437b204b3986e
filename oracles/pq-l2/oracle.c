/*
 * oracle.c -- the frozen reference for pq-l2: product-quantization L2
 * distances, as in Lance's PQ probe (lance-linalg distance::l2,
 * build_distance_table_l2 + compute_l2_distance), ported to C.
 *
 * A d-dimensional query is split into m sub-spaces of ds = d/m floats. Each
 * sub-space has 256 centroids (the codebook, [j][c][t]). The kernel builds
 * the table table[j][c] = ||query_j - centroid_jc||^2 and then, for each of
 * n encoded vectors (one byte per sub-space, codes[i][j]), sums
 * table[j][codes[i][j]] over j.
 *
 * This file defines the target: its spec, its input generator and the
 * scalar kernel every candidate is checked and timed against. Its numbers
 * are the truth, so the arithmetic order is part of the contract: t and j
 * increase, multiply and add are separate roundings (this file is built
 * with -ffp-contract=off), accumulators start at 0.0f. A candidate that
 * keeps this order per output is bit-exact; one that reassociates must stay
 * within rel_tol.
 *
 * Changing anything here that alters the inputs or the outputs of a case
 * invalidates every ledger line recorded against this oracle.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define PQ_CENTROIDS 256

/* Buffer indices, in spec order. */
enum { PQ_CODEBOOK = 0, PQ_QUERY = 1, PQ_CODES = 2, PQ_DIST = 3, PQ_N_BUFFERS = 4 };
/* Parameter indices, in param_names order. */
enum { PQ_N = 0, PQ_D = 1, PQ_M = 2, PQ_N_PARAMS = 3 };

/* Tag of the stream that picks which centroids are hot in the clustered
 * codes. It stands where the set number stands in the per-call streams, so
 * the hot centroids stay the same from one input set to the next, like the
 * popular cells of a real index. */
#define PQ_STREAM_HOT UINT64_C(0x686f742d63656e74)

static const char *const pq_param_names[PQ_N_PARAMS] = {"n", "d", "m"};

static const kb_buffer_spec pq_buffers[PQ_N_BUFFERS] = {
    {"codebook", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
    {"query", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"codes", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"dist", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* Everything a case needs follows from (n, d, m): lengths in spec order,
 * the bytes a call must move (query, codes, dist and the whole codebook,
 * since every centroid enters the table) and the floating-point work
 * (sub, mul, add per codebook float; one add per code). */
#define PQ_CASE(nm, fl, n, d, m)                                                             \
    {                                                                                        \
        nm, fl, 0, {n, d, m}, {(uint64_t)PQ_CENTROIDS * (d), (d), (uint64_t)(n) * (m), (n)}, \
            4.0 * (d) + (double)(n) * (m) + 4.0 * (n) + 4.0 * PQ_CENTROIDS *(d),             \
            3.0 * (d)*PQ_CENTROIDS + (double)(n) * (m)                                       \
    }

/* The quick subset (KB_CASE_QUICK) covers both dimensions, three sub-space
 * widths and both distributions while fitting a default trial in about two
 * seconds. The rest stretch n to a million vectors (16 MiB of codes per
 * call, so four input sets outgrow a 32 MiB L3) and add the odd shapes
 * (ds = 2, ds = 96). */
static const kb_case_spec pq_cases[] = {
    PQ_CASE("n=1024,d=128,m=8/uniform", 0, 1024, 128, 8),
    PQ_CASE("n=4096,d=128,m=16/uniform", KB_CASE_QUICK, 4096, 128, 16),
    PQ_CASE("n=16384,d=128,m=64/clustered", 0, 16384, 128, 64),
    PQ_CASE("n=65536,d=128,m=16/uniform", 0, 65536, 128, 16),
    PQ_CASE("n=65536,d=128,m=16/clustered", KB_CASE_QUICK, 65536, 128, 16),
    PQ_CASE("n=262144,d=128,m=8/uniform", KB_CASE_QUICK, 262144, 128, 8),
    PQ_CASE("n=1048576,d=128,m=16/clustered", 0, 1048576, 128, 16),
    PQ_CASE("n=1024,d=768,m=64/uniform", 0, 1024, 768, 64),
    PQ_CASE("n=16384,d=768,m=64/clustered", KB_CASE_QUICK, 16384, 768, 64),
    PQ_CASE("n=65536,d=768,m=8/clustered", 0, 65536, 768, 8),
    PQ_CASE("n=262144,d=768,m=64/uniform", 0, 262144, 768, 64),
    PQ_CASE("n=1048576,d=768,m=16/uniform", 0, 1048576, 768, 16),
};
#define PQ_N_CASES (sizeof pq_cases / sizeof pq_cases[0])

/* ---- shape checks shared by generate and prepare --------------------- */

typedef struct pq_shape {
    uint64_t n;
    uint32_t d, m, ds;
} pq_shape;

static int pq_shape_from(const int64_t *p, pq_shape *s, char *err, size_t err_len)
{
    if (p[PQ_N] < 1 || p[PQ_N] > INT64_C(1) << 32 || p[PQ_D] < 1 || p[PQ_D] > 1 << 16 ||
        p[PQ_M] < 1 || p[PQ_M] > p[PQ_D] || p[PQ_D] % p[PQ_M] != 0) {
        snprintf(err, err_len,
                 "pq-l2: bad shape n=%lld d=%lld m=%lld (need n >= 1, 1 <= m <= d <= 65536, "
                 "m dividing d)",
                 (long long)p[PQ_N], (long long)p[PQ_D], (long long)p[PQ_M]);
        return -1;
    }
    s->n = (uint64_t)p[PQ_N];
    s->d = (uint32_t)p[PQ_D];
    s->m = (uint32_t)p[PQ_M];
    s->ds = s->d / s->m;
    return 0;
}

static int pq_check_buf(const kb_buffer *b, const char *name, uint32_t dtype, uint64_t count,
                        char *err, size_t err_len)
{
    if (b->dtype != dtype || b->count != count) {
        snprintf(err, err_len,
                 "pq-l2: buffer %s has dtype %u and %llu elements, expected dtype %u and %llu",
                 name, b->dtype, (unsigned long long)b->count, dtype, (unsigned long long)count);
        return -1;
    }
    return 0;
}

/* ---- generator ------------------------------------------------------- */

static int pq_is_clustered(const kb_case_spec *cs)
{
    const char *slash = strrchr(cs->name, '/');
    return slash && strcmp(slash + 1, "clustered") == 0;
}

/* Clustered codebook: each sub-space's 256 centroids gather around 16
 * centres, as k-means centroids of real embeddings do. */
static void pq_gen_codebook(const pq_shape *s, int clustered, uint64_t seed, float *cb)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0, PQ_CODEBOOK));
    if (!clustered) {
        kb_gen_uniform_f32(&r, cb, (size_t)PQ_CENTROIDS * s->d, -1.0f, 1.0f);
        return;
    }
    for (uint32_t j = 0; j < s->m; j++)
        kb_gen_clustered_f32(&r, cb + (size_t)j * PQ_CENTROIDS * s->ds, PQ_CENTROIDS, s->ds, 16,
                             0.1f);
}

/* Clustered query: in each sub-space, close to one centroid picked at
 * random, so a few table entries are small and the rest are not. */
static void pq_gen_query(const pq_shape *s, int clustered, uint64_t seed, uint32_t set,
                         const float *cb, float *q)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, PQ_QUERY));
    if (!clustered) {
        kb_gen_uniform_f32(&r, q, s->d, -1.0f, 1.0f);
        return;
    }
    for (uint32_t j = 0; j < s->m; j++) {
        const float *c = cb + ((size_t)j * PQ_CENTROIDS + kb_rng_below(&r, PQ_CENTROIDS)) * s->ds;
        float *qj = q + (size_t)j * s->ds;
        kb_gen_normal_f32(&r, qj, s->ds, 0.0f, 0.05f);
        for (uint32_t t = 0; t < s->ds; t++) qj[t] = c[t] + qj[t];
    }
}

/* Clustered codes: per sub-space, Zipf (s = 1.1) over 256 ranks mapped
 * through a random permutation, so a handful of centroids hold most of the
 * vectors and which ones differs between sub-spaces.
 *
 * A Zipf draw costs about 70 ns (portable exp and log), too slow for the
 * millions of codes of one input set, so each set draws a pool of
 * PQ_ZIPF_POOL ranks and every code takes a uniformly chosen pool entry:
 * each code's law is still exactly Zipf, at a few ns per code. */
#define PQ_ZIPF_POOL 16384

static int pq_gen_codes(const pq_shape *s, int clustered, uint64_t seed, uint32_t set,
                        uint8_t *codes, char *err, size_t err_len)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, PQ_CODES));
    if (!clustered) {
        kb_gen_bytes(&r, codes, (size_t)(s->n * s->m));
        return 0;
    }
    uint32_t *pool = malloc(PQ_ZIPF_POOL * sizeof *pool);
    if (!pool) {
        snprintf(err, err_len, "pq-l2: out of memory for the Zipf pool");
        return -1;
    }
    kb_gen_zipf_u32(&r, pool, PQ_ZIPF_POOL, PQ_CENTROIDS, 1.1);
    for (uint32_t j = 0; j < s->m; j++) {
        uint8_t perm[PQ_CENTROIDS];
        kb_rng hot;
        kb_rng_seed(&hot, kb_rng_derive(seed, PQ_STREAM_HOT, j));
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) perm[c] = (uint8_t)c;
        for (uint32_t c = PQ_CENTROIDS - 1; c > 0; c--) {
            uint32_t k = (uint32_t)kb_rng_below(&hot, c + 1);
            uint8_t tmp = perm[c];
            perm[c] = perm[k];
            perm[k] = tmp;
        }
        for (uint64_t i = 0; i < s->n; i++)
            codes[i * s->m + j] = perm[pool[kb_rng_below(&r, PQ_ZIPF_POOL)]];
    }
    free(pool);
    return 0;
}

static int pq_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    pq_shape s;
    if (pq_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    if (n_bufs != PQ_N_BUFFERS) {
        snprintf(err, err_len, "pq-l2: generate got %u buffers, expected %d", n_bufs, PQ_N_BUFFERS);
        return -1;
    }
    for (uint32_t b = 0; b < PQ_N_BUFFERS; b++) {
        if (pq_check_buf(&bufs[b], pq_buffers[b].name, pq_buffers[b].dtype, cs->lengths[b], err,
                         err_len) != 0)
            return -1;
        if (b != PQ_DIST && !bufs[b].data) {
            snprintf(err, err_len, "pq-l2: generate got no memory for buffer %s",
                     pq_buffers[b].name);
            return -1;
        }
    }
    int clustered = pq_is_clustered(cs);
    float *cb = bufs[PQ_CODEBOOK].data;
    if (set == 0) pq_gen_codebook(&s, clustered, seed, cb);
    pq_gen_query(&s, clustered, seed, set, cb, bufs[PQ_QUERY].data);
    return pq_gen_codes(&s, clustered, seed, set, bufs[PQ_CODES].data, err, err_len);
}

/* ---- the reference kernel -------------------------------------------- */

typedef struct pq_state {
    const kb_host *host;
    pq_shape s;
    const float *codebook;
    float *table; /* [m][256], rebuilt by every run: the query is per call */
} pq_state;

static void pq_build_table(const pq_shape *s, const float *cb, const float *query, float *table)
{
    for (uint32_t j = 0; j < s->m; j++) {
        const float *q = query + (size_t)j * s->ds;
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) {
            const float *x = cb + ((size_t)j * PQ_CENTROIDS + c) * s->ds;
            float acc = 0.0f;
            for (uint32_t t = 0; t < s->ds; t++) {
                float diff = q[t] - x[t];
                acc += diff * diff;
            }
            table[(size_t)j * PQ_CENTROIDS + c] = acc;
        }
    }
}

static void pq_sum_codes(const pq_shape *s, const float *table, const uint8_t *codes, float *dist)
{
    for (uint64_t i = 0; i < s->n; i++) {
        const uint8_t *row = codes + i * s->m;
        float acc = 0.0f;
        for (uint32_t j = 0; j < s->m; j++) acc += table[(size_t)j * PQ_CENTROIDS + row[j]];
        dist[i] = acc;
    }
}

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    pq_shape s;
    if (cs->n_params != PQ_N_PARAMS) {
        snprintf(err, err_len, "pq-l2: case has %u params, expected %d", cs->n_params, PQ_N_PARAMS);
        return KB_ERR_UNSUPPORTED;
    }
    if (pq_shape_from(cs->params, &s, err, err_len) != 0) return KB_ERR_UNSUPPORTED;
    if (n_statics != 1) {
        snprintf(err, err_len, "pq-l2: prepare got %u static buffers, expected 1", n_statics);
        return KB_ERR_INTERNAL;
    }
    if (pq_check_buf(&statics[0], "codebook", KB_DT_F32, (uint64_t)PQ_CENTROIDS * s.d, err,
                     err_len) != 0)
        return KB_ERR_INTERNAL;
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "pq-l2: out of memory for the plugin state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->s = s;
    st->codebook = statics[0].data;
    st->table = host->alloc_aligned(host, (size_t)s.m * PQ_CENTROIDS * sizeof(float), 64);
    if (!st->table) {
        host->free_aligned(host, st);
        snprintf(err, err_len, "pq-l2: out of memory for a %u x 256 distance table", s.m);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int pq_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    pq_state *st = state;
    const pq_shape *s = &st->s;
    if (n_inputs != 2 || n_outputs != 1) {
        snprintf(err, err_len, "pq-l2: run got %u inputs and %u outputs, expected 2 and 1",
                 n_inputs, n_outputs);
        return KB_ERR_INTERNAL;
    }
    if (pq_check_buf(&inputs[0], "query", KB_DT_F32, s->d, err, err_len) != 0 ||
        pq_check_buf(&inputs[1], "codes", KB_DT_U8, s->n * s->m, err, err_len) != 0 ||
        pq_check_buf(&outputs[0], "dist", KB_DT_F32, s->n, err, err_len) != 0)
        return KB_ERR_INTERNAL;
    pq_build_table(s, st->codebook, inputs[0].data, st->table);
    pq_sum_codes(s, st->table, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    host->free_aligned(host, st->table);
    host->free_aligned(host, st);
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

/* What `--case 'n=...,d=...,m=.../DIST'` may ask for: up to ten million
 * vectors, d up to 4096 floats, and one input set within PQ_MAX_SET_BYTES,
 * so the 32 sets a trial holds stay near a gigabyte. m must divide d
 * (pq_shape_from). */
#define PQ_MAX_SET_BYTES (UINT64_C(32) << 20)

static const kb_param_range pq_ranges[PQ_N_PARAMS] = {
    {1, 10000000, 1, 0, 0}, /* n */
    {1, 4096, 1, 0, 0},     /* d */
    {1, 4096, 1, 0, 0},     /* m */
};

static const char *const pq_distributions[] = {"uniform", "clustered"};

/* The lengths and per-call figures PQ_CASE writes for a listed case. */
static int pq_case_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    pq_shape s;
    if (pq_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    const double n = (double)s.n, d = s.d, m = s.m;
    cs->lengths[PQ_CODEBOOK] = (uint64_t)PQ_CENTROIDS * s.d;
    cs->lengths[PQ_QUERY] = s.d;
    cs->lengths[PQ_CODES] = s.n * s.m;
    cs->lengths[PQ_DIST] = s.n;
    cs->bytes_per_call = 4.0 * d + n * m + 4.0 * n + 4.0 * PQ_CENTROIDS * d;
    cs->flops_per_call = 3.0 * d * PQ_CENTROIDS + n * m;
    return 0;
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target pq_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "pq-l2",
    .description = "product-quantization L2 distances: 256-centroid table per sub-space, "
                   "then one table lookup per code",
    .upstream = "lance-linalg distance::l2 PQ probe (build_distance_table_l2 + "
                "compute_l2_distance), ported to C",
    .n_params = PQ_N_PARAMS,
    .n_buffers = PQ_N_BUFFERS,
    .param_names = pq_param_names,
    .buffers = pq_buffers,
    .n_cases = PQ_N_CASES,
    .cases = pq_cases,
    .rel_tol = 1e-4,
    .generate = pq_generate,
    .param_ranges = pq_ranges,
    .distributions = pq_distributions,
    .n_distributions = sizeof pq_distributions / sizeof pq_distributions[0],
    .max_case_bytes = PQ_MAX_SET_BYTES,
    .shape = pq_case_shape,
};

static const kb_plugin pq_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "pq-l2",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = pq_prepare,
    .run = pq_run,
    .verify = NULL,
    .release = pq_release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &pq_target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pq_oracle;
}
