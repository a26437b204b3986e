/*
 * oracle.c -- the ivf-partition target: spec, inputs and reference.
 *
 * Lance's IVF search picks the partitions to scan for a query with
 * kmeans_find_partitions (rust/lance-index/src/vector/kmeans.rs, reached from
 * IvfTransformer::find_partitions in rust/lance-index/src/vector/ivf.rs): the L2
 * distance from the query to every centroid (lance-linalg distance/l2.rs,
 * l2_distance_batch -> <f32 as L2>::l2 = l2_scalar::<f32, f32, 16>), then arrow's
 * sort_to_indices(dists, None, Some(nprobes)), the nprobes smallest in ascending order.
 * lance d2039d750a6a296585e7fca63428fb2139c7acd0, ported to C.
 *
 * The distance is l2_scalar with 16 lanes, and its order of operations is the contract:
 * lane i (0..15) sums (q[t] - c[t])^2 over t = i, i + 16, i + 32, ... with t increasing,
 * each product and sum rounded separately (no FMA: Rust never contracts, and this file
 * is built with -ffp-contract=off), every lane starting at +0.0f; the distance is then
 * lane 0 + lane 1 + ... + lane 15, added one at a time in lane order. d is a multiple of
 * 16 here, so l2_scalar's remainder term is +0.0f and adding it changes nothing. A
 * candidate that keeps this order gets the oracle's distances to the bit.
 *
 * Arrow's sort orders by f32 total order and leaves equal distances in no fixed order
 * (sort_unstable / select_nth_unstable); this target fixes it: ties go to the smaller
 * centroid index, so the answer is one sequence and is compared bitwise. Distances are
 * sums of squares, never -0.0 or NaN, so `<` agrees with arrow's total order.
 *
 * Buffers: centroids [c][d] (static: the index's), queries [q][d] (a batch, per call),
 * out_id [q][nprobe] u32 partition ids, nearest first. Distances are not an output: the
 * ids name them and their order exactly.
 *
 * Distributions (the part of the case name after '/'):
 *   clustered  centroids as k-means leaves them on real embeddings, gathered around 64
 *              topic centres (spread 0.15); each query a random centroid plus normal
 *              noise (sd 0.05), so a few partitions are near and the rest are not;
 *   uniform    centroids and queries uniform in [-1, 1);
 *   ties       coordinates on a grid of quarters in [-1, 1], a quarter of the centroids
 *              exact copies of earlier ones, queries a centroid with a few coordinates
 *              moved one step: every sum is exact, so distances tie exactly, between
 *              copies and between distinct centroids, at and around the nprobe-th place.
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_C, P_D, P_NPROBE, P_Q, N_PARAMS };
enum { B_CENT, B_QUERY, B_OUT, N_BUFFERS }; /* statics, then per-call inputs, then outputs */
#define IVF_LANES      16
#define IVF_MAX_C      (1 << 20)
#define IVF_MAX_D      4096
#define IVF_MAX_NPROBE 1024
#define IVF_MAX_Q      4096

/* Every centroid read once a call (a kernel may block the queries over them), the
 * queries and the ids; sub, mul, add per (query, centroid, dimension). */
#define CASE(name, flags, c, d, np, q)                                                          \
    {                                                                                           \
        name, flags, 0, {c, d, np, q},                                                          \
            {(uint64_t)(c) * (d), (uint64_t)(q) * (d), (uint64_t)(q) * (np)},                   \
            4.0 * (c) * (d) + 4.0 * (q) * (d) + 4.0 * (q) * (np), 3.0 * (c) * (d) * (double)(q) \
    }
#define Q KB_CASE_QUICK

static const kb_case_spec ivf__cases[] = {
    CASE("c=1024,d=128,nprobe=20,q=32/clustered", Q, 1024, 128, 20, 32),
    CASE("c=4096,d=768,nprobe=32,q=2/clustered", Q, 4096, 768, 32, 2),
    CASE("c=16384,d=128,nprobe=64,q=4/ties", Q, 16384, 128, 64, 4),
    CASE("c=256,d=768,nprobe=8,q=16/uniform", Q, 256, 768, 8, 16),
    CASE("c=256,d=128,nprobe=1,q=64/clustered", 0, 256, 128, 1, 64),
    CASE("c=256,d=128,nprobe=256,q=8/uniform", 0, 256, 128, 256, 8),
    CASE("c=4096,d=128,nprobe=100,q=16/uniform", 0, 4096, 128, 100, 16),
    CASE("c=8192,d=128,nprobe=10,q=64/ties", 0, 8192, 128, 10, 64),
    CASE("c=1024,d=768,nprobe=1024,q=2/ties", 0, 1024, 768, 1024, 2),
    CASE("c=16384,d=768,nprobe=20,q=1/clustered", 0, 16384, 768, 20, 1),
    CASE("c=65536,d=128,nprobe=100,q=2/clustered", 0, 65536, 128, 100, 2),
    CASE("c=65536,d=768,nprobe=50,q=1/clustered", 0, 65536, 768, 50, 1),
};

static const char *const ivf__param_names[N_PARAMS] = {"c", "d", "nprobe", "q"};

static const kb_buffer_spec ivf__buffers[N_BUFFERS] = {
    {"centroids", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
    {"queries", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"out_id", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
};

enum { D_CLUSTERED, D_UNIFORM, D_TIES };

static int ivf__dist_kind(const char *name)
{
    const char *s = name ? strrchr(name, '/') : NULL;
    if (s && strcmp(s, "/clustered") == 0) return D_CLUSTERED;
    if (s && strcmp(s, "/uniform") == 0) return D_UNIFORM;
    if (s && strcmp(s, "/ties") == 0) return D_TIES;
    return -1;
}

/* The rules the ranges cannot say: d in lanes of 16, nprobe at most c. */
static int ivf__shape_ok(const int64_t *p, char *err, size_t err_len)
{
    if (p[P_C] < 1 || p[P_C] > IVF_MAX_C || p[P_D] < IVF_LANES || p[P_D] > IVF_MAX_D ||
        p[P_D] % IVF_LANES != 0 || p[P_NPROBE] < 1 || p[P_NPROBE] > IVF_MAX_NPROBE ||
        p[P_NPROBE] > p[P_C] || p[P_Q] < 1 || p[P_Q] > IVF_MAX_Q) {
        snprintf(err, err_len,
                 "ivf-partition: bad shape c=%lld d=%lld nprobe=%lld q=%lld (need c 1..%d, d a "
                 "multiple of 16 in 16..%d, nprobe 1..min(c, %d), q 1..%d)",
                 (long long)p[P_C], (long long)p[P_D], (long long)p[P_NPROBE], (long long)p[P_Q],
                 IVF_MAX_C, IVF_MAX_D, IVF_MAX_NPROBE, IVF_MAX_Q);
        return -1;
    }
    return 0;
}

/* ---- the generator ----------------------------------------------------- */

/* Grid coordinates k / 4, k in -4..4: sums of their squared differences are exact. */
static float ivf__grid(kb_rng *r)
{
    return (float)((int)kb_rng_below(r, 9) - 4) * 0.25f;
}

static void ivf__gen_centroids(int kind, uint64_t seed, uint64_t c, uint64_t d, float *cent)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0, B_CENT));
    if (kind == D_UNIFORM) {
        kb_gen_uniform_f32(&r, cent, c * d, -1.0f, 1.0f);
    } else if (kind == D_CLUSTERED) {
        kb_gen_clustered_f32(&r, cent, c, d, c < 64 ? c : 64, 0.15f);
    } else {
        for (uint64_t j = 0; j < c; j++) {
            float *cj = cent + j * d;
            if (j > 0 && kb_rng_below(&r, 4) == 0) { /* a copy: an exact tie */
                memcpy(cj, cent + kb_rng_below(&r, j) * d, d * sizeof *cj);
                continue;
            }
            for (uint64_t t = 0; t < d; t++) cj[t] = ivf__grid(&r);
        }
    }
}

static void ivf__gen_queries(int kind, uint64_t seed, uint32_t set, uint64_t c, uint64_t d,
                             uint64_t q, const float *cent, float *qs)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, B_QUERY));
    if (kind == D_UNIFORM) {
        kb_gen_uniform_f32(&r, qs, q * d, -1.0f, 1.0f);
        return;
    }
    for (uint64_t i = 0; i < q; i++) {
        const float *near = cent + kb_rng_below(&r, c) * d;
        float *qi = qs + i * d;
        if (kind == D_CLUSTERED) {
            kb_gen_normal_f32(&r, qi, d, 0.0f, 0.05f);
            for (uint64_t t = 0; t < d; t++) qi[t] = near[t] + qi[t];
            continue;
        }
        memcpy(qi, near, d * sizeof *qi);
        for (int m = 0; m < 4; m++) {
            uint64_t t = kb_rng_below(&r, d);
            qi[t] += kb_rng_below(&r, 2) ? 0.25f : -0.25f;
        }
    }
}

static int ivf__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                         uint32_t n_bufs, char *err, size_t err_len)
{
    const int kind = ivf__dist_kind(cs->name);
    if (n_bufs != N_BUFFERS || kind < 0) {
        snprintf(err, err_len,
                 "ivf-partition generate: %u buffers for case %s; need %d and "
                 "/clustered, /uniform or /ties",
                 n_bufs, cs->name, N_BUFFERS);
        return -1;
    }
    if (ivf__shape_ok(cs->params, err, err_len) != 0) return -1;
    const uint64_t c = (uint64_t)cs->params[P_C], d = (uint64_t)cs->params[P_D],
                   q = (uint64_t)cs->params[P_Q];
    if (bufs[B_CENT].count != c * d || bufs[B_QUERY].count != q * d || !bufs[B_CENT].data ||
        !bufs[B_QUERY].data) {
        snprintf(err, err_len, "case %s: centroids and queries need c*d and q*d elements",
                 cs->name);
        return -1;
    }
    if (set == 0) ivf__gen_centroids(kind, seed, c, d, bufs[B_CENT].data);
    ivf__gen_queries(kind, seed, set, c, d, q, bufs[B_CENT].data, bufs[B_QUERY].data);
    return 0;
}

/* ---- any shape (ABI 1.1) ------------------------------------------------ */

/* One input set within 256 MiB: the centroids, which dominate, are static and held
 * once; the 32 sets a trial holds differ only in their queries. */
#define IVF_MAX_SET_BYTES (UINT64_C(256) << 20)

static const kb_param_range ivf__ranges[N_PARAMS] = {
    {1, IVF_MAX_C, 1, 0, 0},                 /* c */
    {IVF_LANES, IVF_MAX_D, IVF_LANES, 0, 0}, /* d */
    {1, IVF_MAX_NPROBE, 1, 0, 0},            /* nprobe */
    {1, IVF_MAX_Q, 1, 0, 0},                 /* q */
};

static const char *const ivf__distributions[] = {"clustered", "uniform", "ties"};

static int ivf__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    if (ivf__shape_ok(cs->params, err, err_len) != 0) return -1;
    const double c = (double)cs->params[P_C], d = (double)cs->params[P_D],
                 np = (double)cs->params[P_NPROBE], q = (double)cs->params[P_Q];
    cs->lengths[B_CENT] = (uint64_t)cs->params[P_C] * (uint64_t)cs->params[P_D];
    cs->lengths[B_QUERY] = (uint64_t)cs->params[P_Q] * (uint64_t)cs->params[P_D];
    cs->lengths[B_OUT] = (uint64_t)cs->params[P_Q] * (uint64_t)cs->params[P_NPROBE];
    cs->bytes_per_call = 4.0 * c * d + 4.0 * q * d + 4.0 * q * np;
    cs->flops_per_call = 3.0 * c * d * q;
    return 0;
}

static const kb_target ivf__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "ivf-partition",
    .description = "IVF partition selection: for each query of a batch, the nprobe nearest of c "
                   "centroids by L2, nearest first, ties by centroid index",
    .upstream = "lance rust/lance-index/src/vector/kmeans.rs kmeans_find_partitions "
                "(l2_distance_batch = lance-linalg distance/l2.rs l2_scalar::<f32, f32, 16>, "
                "then arrow sort_to_indices with limit nprobes), lance d2039d75, ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = ivf__param_names,
    .buffers = ivf__buffers,
    .n_cases = sizeof(ivf__cases) / sizeof(ivf__cases[0]),
    .cases = ivf__cases,
    /* Bitwise: the output is ids, in an order fixed by the (distance, index) key. The
     * distances are bit-exact for a kernel that keeps the 16-lane order above; one that
     * rounds differently (FMA, the |q|^2 - 2 q.c + |c|^2 expansion) can swap near ties,
     * and a lossy one (f16 centroids) swaps more. */
    .rel_tol = 0.0,
    .generate = ivf__generate,
    .param_ranges = ivf__ranges,
    .distributions = ivf__distributions,
    .n_distributions = sizeof ivf__distributions / sizeof ivf__distributions[0],
    .max_case_bytes = IVF_MAX_SET_BYTES,
    .shape = ivf__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct ivf__state {
    const kb_host *host;
    uint32_t c, d, nprobe, q;
    const float *cent;
    float *dist; /* c: one query's distances */
    float *bd;   /* nprobe: the distances of the best so far */
} ivf__state;

/* lance-linalg l2_scalar::<f32, f32, 16> for d a multiple of 16. */
static float ivf__l2(const float *x, const float *y, uint32_t d)
{
    float sums[IVF_LANES] = {0};
    for (uint32_t k = 0; k < d; k += IVF_LANES)
        for (uint32_t i = 0; i < IVF_LANES; i++) {
            float diff = x[k + i] - y[k + i];
            sums[i] += diff * diff;
        }
    float s = 0.0f;
    for (uint32_t i = 0; i < IVF_LANES; i++) s += sums[i];
    return 0.0f + s; /* the empty remainder's sum, then the lanes' */
}

/* The nprobe smallest (distance, index) keys of dist[0..c), ascending, into id. */
static void ivf__select(const float *dist, uint32_t c, uint32_t np, float *bd, uint32_t *id)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < c; j++) {
        /* j is larger than every index kept, so it goes after equal distances */
        if (n == np && !(dist[j] < bd[n - 1])) continue;
        uint32_t at = n < np ? n++ : n - 1;
        while (at > 0 && dist[j] < bd[at - 1]) {
            bd[at] = bd[at - 1];
            id[at] = id[at - 1];
            at--;
        }
        bd[at] = dist[j];
        id[at] = j;
    }
}

static int ivf__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                        uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (n_statics != 1 || cs->n_params != N_PARAMS) {
        snprintf(err, err_len, "ivf-partition: expected 1 static and %d params", N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    if (ivf__shape_ok(cs->params, err, err_len) != 0) return KB_ERR_UNSUPPORTED;
    ivf__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "ivf-partition: out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->c = (uint32_t)cs->params[P_C];
    st->d = (uint32_t)cs->params[P_D];
    st->nprobe = (uint32_t)cs->params[P_NPROBE];
    st->q = (uint32_t)cs->params[P_Q];
    st->cent = statics[0].data;
    st->dist = host->alloc_aligned(host, (size_t)st->c * sizeof(float), 64);
    st->bd = host->alloc_aligned(host, (size_t)st->nprobe * sizeof(float), 64);
    if (!st->dist || !st->bd) {
        if (st->dist) host->free_aligned(host, st->dist);
        if (st->bd) host->free_aligned(host, st->bd);
        host->free_aligned(host, st);
        snprintf(err, err_len, "ivf-partition: out of memory for %u distances", st->c);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int ivf__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                    uint32_t n_outputs, char *err, size_t err_len)
{
    const ivf__state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)st->q * st->d ||
        outputs[0].count != (uint64_t)st->q * st->nprobe) {
        snprintf(err, err_len, "ivf-partition: need queries [q][d] and out_id [q][nprobe]");
        return KB_ERR_INTERNAL;
    }
    const float *qs = inputs[0].data;
    uint32_t *out = outputs[0].data;
    for (uint32_t i = 0; i < st->q; i++) {
        const float *qi = qs + (size_t)i * st->d;
        for (uint32_t j = 0; j < st->c; j++)
            st->dist[j] = ivf__l2(qi, st->cent + (size_t)j * st->d, st->d);
        ivf__select(st->dist, st->c, st->nprobe, st->bd, out + (size_t)i * st->nprobe);
    }
    return KB_OK;
}

static void ivf__release(void *state)
{
    ivf__state *st = state;
    st->host->free_aligned(st->host, st->dist);
    st->host->free_aligned(st->host, st->bd);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin ivf__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "ivf-partition",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = ivf__prepare,
    .run = ivf__run,
    .verify = NULL,
    .release = ivf__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &ivf__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ivf__plugin;
}
