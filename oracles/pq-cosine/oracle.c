/*
 * oracle.c -- the frozen reference for pq-cosine: product-quantization
 * cosine distances, as Lance's PQ probe computes them. Lance does not keep
 * a cosine table: an index built for DistanceType::Cosine normalizes its
 * vectors and searches them by L2 (lance-index vector/pq.rs
 * ProductQuantizer::from_proto maps Cosine to L2, and compute_distances
 * says "cosine distance should be converted to normalized L2 distance"),
 * and the query is normalized first (lance-linalg kernels.rs normalize:
 * sum of squares in order, square root, each element divided by the norm).
 * This kernel does both: normalize the query, build the L2 table
 * (pq/distance.rs build_distance_table_l2 with lance-linalg distance/l2.rs
 * l2_scalar::<f32, f32, 16>), sum the codes (compute_pq_distance). The
 * result is ||q/|q| - x||^2 for the reconstructed x, which is 2 (1 - cos)
 * when x has unit norm. Ported to C.
 *
 * A d-dimensional query is split into m sub-spaces of ds = d/m floats. Each
 * sub-space has 256 centroids (the codebook, [j][c][t]); codes[i][j] is one
 * byte per (vector, sub-space).
 *
 * Lance's order of operations is the contract: the norm adds q[t]^2 for t
 * increasing from 0.0f, then sqrtf; each coordinate is q[t] / norm (a
 * division, not a multiplication by a reciprocal); l2_scalar adds the
 * ds % 16 trailing squared differences (query - centroid) in order into one
 * sum, the rest in 16 lanes (lane i takes t = i, i + 16, ...) summed lane 0
 * to 15, then trailing sum + lane sum; the code sums add j in increasing
 * order from 0.0f; no fused multiply-add (-ffp-contract=off). A candidate
 * that keeps this order is bit-exact.
 *
 * Tolerance: rel_tol 1e-5 of max(1, |ref|) (host/trial/compare.c), ten
 * times tighter than pq-l2's, because every value here is bounded: the
 * query has unit norm, so table entries are a few units at most and the
 * result is near 2 (at most 4 for unit-norm centroids). A kernel that fuses
 * its multiply-adds, sums the norm or the squares in another order, or
 * multiplies by 1 / norm moves each table entry by a few ulps (about 1e-7
 * of an entry below 1) and the result by a few ulps of 2 (about 5e-7),
 * well inside 1e-5. A table kept in f16 (2^-11 relative per entry) or a
 * skipped or approximate normalization (rsqrt's 2^-12, off by about 2e-4
 * on a result near 2) misses it by far, as
 * tests/fixtures/wrong/fx_wrong_pq_cosine.c checks.
 *
 * Changing anything here that alters the inputs or the outputs of a case
 * invalidates every ledger line recorded against this oracle.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define PQ_CENTROIDS 256

/* Buffer indices, in spec order. */
enum { PQ_CODEBOOK = 0, PQ_QUERY = 1, PQ_CODES = 2, PQ_DIST = 3, PQ_N_BUFFERS = 4 };
/* Parameter indices, in param_names order. */
enum { PQ_N = 0, PQ_D = 1, PQ_M = 2, PQ_N_PARAMS = 3 };

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
 * (sub, mul, add per codebook float; mul, add and divide per query float;
 * one add per code). */
#define PQ_CASE(nm, fl, n, d, m)                                                             \
    {                                                                                        \
        nm, fl, 0, {n, d, m}, {(uint64_t)PQ_CENTROIDS * (d), (d), (uint64_t)(n) * (m), (n)}, \
            4.0 * (d) + (double)(n) * (m) + 4.0 * (n) + 4.0 * PQ_CENTROIDS *(d),             \
            3.0 * (d)*PQ_CENTROIDS + 3.0 * (d) + (double)(n) * (m)                           \
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
                 "pq-cosine: bad shape n=%lld d=%lld m=%lld (need n >= 1, 1 <= m <= d <= 65536, "
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
                 "pq-cosine: buffer %s has dtype %u and %llu elements, expected dtype %u and %llu",
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

/* Codebook, query and codes as pq-l2 draws them (generators/pq.c), with
 * the codebook and the query's direction scaled to about unit norm
 * (coordinates uniform in [-sqrt(3/d), sqrt(3/d)) have E||x||^2 = 1): a
 * cosine index holds normalized vectors, so its centroids are of that
 * size. The query's length is then multiplied by a factor drawn per input
 * set in [1/4, 16), since queries arrive as a model wrote them, not
 * normalized: a kernel that skips or approximates the normalization is
 * visibly wrong. The square root is IEEE (correctly rounded; inlined,
 * -fno-math-errno), so the scale is the same bits everywhere. */
#define PQ_STREAM_LENGTH UINT64_C(0x71756572792d6c6e)

static float pq_scale_of(const pq_shape *s)
{
    return __builtin_sqrtf(3.0f / (float)s->d);
}

static void pq_gen_length(uint64_t seed, uint32_t set, const pq_shape *s, float *q)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, PQ_STREAM_LENGTH));
    float len;
    kb_gen_uniform_f32(&r, &len, 1, 0.25f, 16.0f);
    for (uint32_t t = 0; t < s->d; t++) q[t] *= len;
}

static int pq_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    pq_shape s;
    if (pq_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    if (n_bufs != PQ_N_BUFFERS) {
        snprintf(err, err_len, "pq-cosine: generate got %u buffers, expected %d", n_bufs,
                 PQ_N_BUFFERS);
        return -1;
    }
    for (uint32_t b = 0; b < PQ_N_BUFFERS; b++) {
        if (pq_check_buf(&bufs[b], pq_buffers[b].name, pq_buffers[b].dtype, cs->lengths[b], err,
                         err_len) != 0)
            return -1;
        if (b != PQ_DIST && !bufs[b].data) {
            snprintf(err, err_len, "pq-cosine: generate got no memory for buffer %s",
                     pq_buffers[b].name);
            return -1;
        }
    }
    int clustered = pq_is_clustered(cs);
    float *cb = bufs[PQ_CODEBOOK].data;
    const float scale = pq_scale_of(&s);
    if (set == 0) kb_gen_pq_codebook(seed, s.m, s.ds, clustered, scale, cb);
    kb_gen_pq_query(seed, set, s.m, s.ds, clustered, scale, cb, bufs[PQ_QUERY].data);
    pq_gen_length(seed, set, &s, bufs[PQ_QUERY].data);
    if (kb_gen_pq_codes(seed, set, s.n, s.m, clustered, bufs[PQ_CODES].data) != 0) {
        snprintf(err, err_len, "pq-cosine: out of memory for the Zipf pool");
        return -1;
    }
    return 0;
}

/* ---- the reference kernel -------------------------------------------- */

typedef struct pq_state {
    const kb_host *host;
    pq_shape s;
    const float *codebook;
    float *table; /* [m][256], rebuilt by every run: the query is per call */
    float *qn;    /* [d], the normalized query */
} pq_state;

/* lance-linalg kernels.rs normalize: the norm is the square root of the
 * squares added in order; each coordinate is divided by it. */
static void pq_normalize(const pq_shape *s, const float *query, float *qn)
{
    float sq = 0.0f;
    for (uint32_t t = 0; t < s->d; t++) sq += query[t] * query[t];
    const float norm = __builtin_sqrtf(sq);
    for (uint32_t t = 0; t < s->d; t++) qn[t] = query[t] / norm;
}

/* lance-linalg l2_scalar::<f32, f32, 16>(from = q, to = x): the ds % 16
 * trailing squared differences summed in order, the rest in 16 lanes, then
 * the trailing sum plus the lanes summed in order. */
#define PQ_LANES 16

static float pq_l2(const float *q, const float *x, uint32_t ds)
{
    const uint32_t full = ds / PQ_LANES * PQ_LANES;
    float sum = 0.0f;
    for (uint32_t t = full; t < ds; t++) {
        const float diff = q[t] - x[t];
        sum += diff * diff;
    }
    float lanes[PQ_LANES] = {0};
    for (uint32_t k = 0; k < full; k += PQ_LANES)
        for (uint32_t i = 0; i < PQ_LANES; i++) {
            const float diff = q[k + i] - x[k + i];
            lanes[i] += diff * diff;
        }
    float total = 0.0f;
    for (uint32_t i = 0; i < PQ_LANES; i++) total += lanes[i];
    return sum + total;
}

/* build_distance_table_l2 on the normalized query. */
static void pq_build_table(const pq_shape *s, const float *cb, const float *qn, float *table)
{
    for (uint32_t j = 0; j < s->m; j++) {
        const float *q = qn + (size_t)j * s->ds;
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++) {
            const float *x = cb + ((size_t)j * PQ_CENTROIDS + c) * s->ds;
            table[(size_t)j * PQ_CENTROIDS + c] = pq_l2(q, x, s->ds);
        }
    }
}

/* compute_pq_distance. */
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
        snprintf(err, err_len, "pq-cosine: case has %u params, expected %d", cs->n_params,
                 PQ_N_PARAMS);
        return KB_ERR_UNSUPPORTED;
    }
    if (pq_shape_from(cs->params, &s, err, err_len) != 0) return KB_ERR_UNSUPPORTED;
    if (n_statics != 1) {
        snprintf(err, err_len, "pq-cosine: prepare got %u static buffers, expected 1", n_statics);
        return KB_ERR_INTERNAL;
    }
    if (pq_check_buf(&statics[0], "codebook", KB_DT_F32, (uint64_t)PQ_CENTROIDS * s.d, err,
                     err_len) != 0)
        return KB_ERR_INTERNAL;
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "pq-cosine: out of memory for the plugin state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->s = s;
    st->codebook = statics[0].data;
    st->table = host->alloc_aligned(host, (size_t)s.m * PQ_CENTROIDS * sizeof(float), 64);
    st->qn = host->alloc_aligned(host, (size_t)s.d * sizeof(float), 64);
    if (!st->table || !st->qn) {
        if (st->table) host->free_aligned(host, st->table);
        if (st->qn) host->free_aligned(host, st->qn);
        host->free_aligned(host, st);
        snprintf(err, err_len, "pq-cosine: out of memory for a %u x 256 distance table", s.m);
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
        snprintf(err, err_len, "pq-cosine: run got %u inputs and %u outputs, expected 2 and 1",
                 n_inputs, n_outputs);
        return KB_ERR_INTERNAL;
    }
    if (pq_check_buf(&inputs[0], "query", KB_DT_F32, s->d, err, err_len) != 0 ||
        pq_check_buf(&inputs[1], "codes", KB_DT_U8, s->n * s->m, err, err_len) != 0 ||
        pq_check_buf(&outputs[0], "dist", KB_DT_F32, s->n, err, err_len) != 0)
        return KB_ERR_INTERNAL;
    pq_normalize(s, inputs[0].data, st->qn);
    pq_build_table(s, st->codebook, st->qn, st->table);
    pq_sum_codes(s, st->table, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    host->free_aligned(host, st->table);
    host->free_aligned(host, st->qn);
    host->free_aligned(host, st);
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target pq_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "pq-cosine",
    .description = "product-quantization cosine distances: normalize the query, 256-centroid "
                   "L2 table per sub-space, then one table lookup per code",
    .upstream = "lance d2039d75 rust/lance-index/src/vector/pq.rs (Cosine as L2 on "
                "normalized vectors): lance-linalg kernels.rs normalize, pq/distance.rs "
                "build_distance_table_l2, compute_pq_distance, distance/l2.rs "
                "l2_scalar<f32,16>, ported to C",
    .n_params = PQ_N_PARAMS,
    .n_buffers = PQ_N_BUFFERS,
    .param_names = pq_param_names,
    .buffers = pq_buffers,
    .n_cases = PQ_N_CASES,
    .cases = pq_cases,
    .rel_tol = 1e-5,
    .generate = pq_generate,
};

static const kb_plugin pq_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "pq-cosine",
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
