/*
 * oracle.c -- the topk-merge target: spec, inputs and reference.
 *
 * After an IVF partition scan, Lance keeps the k nearest rows of the query: each
 * partition's search (lance-index vector/flat/index.rs, FlatIndex::search) yields
 * (_distance f32, _rowid u64) pairs, and Scanner::ann (rust/lance/src/dataset/scanner.rs)
 * puts a DataFusion SortExec on [_distance ASC, _rowid ASC] with fetch = k over all of
 * them: DataFusion's TopK, a bounded heap of k rows keyed on (distance, row id). That is
 * the reference here: every row offered in input order to a max-heap of the k smallest
 * (distance, id) keys, then the heap emptied in ascending order. Ties of distance go to
 * the smaller row id, so the answer is one sequence and is compared bitwise. The output
 * is the k row ids in that order: ids are unique, so they name the k (distance, id)
 * pairs and their order exactly, and the distances follow from them.
 *
 * Two shapes, one parameter p:
 *   p = 1   one partition's scan: n unsorted rows (select the k smallest of n);
 *   p > 1   p partial top-k lists, each already sorted by (distance, id) and at most k
 *           long (some shorter: a small or filtered partition), to merge into one.
 * `offsets` (p + 1 entries, 0 .. n) gives the lists; the reference ignores it, as
 * DataFusion's TopK does, but a candidate may rely on each list being sorted when p > 1.
 * Distances are finite and non-negative (L2 distances), never -0.0 or NaN, so the
 * float `<` used here orders them as DataFusion's total order does. Row ids are unique,
 * Lance-style (fragment id << 32 | row offset).
 *
 * Distributions (the part of the case name after '/'):
 *   pq       distances as an IVF_PQ scan gives them: partition centroid distance plus four
 *            sub-space table lookups with skewed (hot) codes, summed in a fixed order, and
 *            a quarter of the rows duplicates of an earlier row (near-duplicate vectors:
 *            exact distance ties with other row ids); rows in blocks of ascending ids in a
 *            shuffled block order (delta indices merged into a partition);
 *   uniform  distances uniform in [0, 4), ids in random order;
 *   ties     scalar-quantized distances: 256 levels, so nearly every distance is tied.
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, P_K, P_P, N_PARAMS };
enum { B_DIST, B_ID, B_OFFSETS, B_OUT_ID, N_BUFFERS };
#define TK_MAX_P 64
#define TK_MAX_K 4096

/* n rows, k results, p lists: 12 bytes a row read and 8 bytes a result written. */
#define CASE(name, flags, n, k, p)                                                 \
    {                                                                              \
        name, flags, 0, {n, k, p}, {n, n, (p) + 1, k}, 12.0 * (n) + 8.0 * (k), 0.0 \
    }
#define Q KB_CASE_QUICK

static const kb_case_spec tk__cases[] = {
    CASE("n=65536,k=100,p=1/pq", Q, 65536, 100, 1),
    CASE("n=1048576,k=100,p=1/pq", 0, 1048576, 100, 1),
    CASE("n=262144,k=10,p=1/uniform", Q, 262144, 10, 1),
    CASE("n=1200,k=100,p=16/pq", 0, 1200, 100, 16),
    CASE("n=6000,k=1000,p=8/ties", Q, 6000, 1000, 8),
    CASE("n=1024,k=10,p=1/uniform", 0, 1024, 10, 1),
    CASE("n=16384,k=1000,p=1/pq", 0, 16384, 1000, 1),
    CASE("n=65536,k=10,p=1/ties", 0, 65536, 10, 1),
    CASE("n=262144,k=1000,p=1/ties", 0, 262144, 1000, 1),
    CASE("n=480,k=10,p=64/pq", 0, 480, 10, 64),
    CASE("n=3000,k=1000,p=4/uniform", 0, 3000, 1000, 4),
    CASE("n=4800,k=100,p=64/ties", 0, 4800, 100, 64),
    CASE("n=48000,k=1000,p=64/pq", Q, 48000, 1000, 64),
};

static const char *const tk__param_names[N_PARAMS] = {"n", "k", "p"};

static const kb_buffer_spec tk__buffers[N_BUFFERS] = {
    {"dist", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"id", KB_DT_U64, KB_ROLE_CALL, 0, 0},
    {"offsets", KB_DT_U64, KB_ROLE_CALL, 0, 0},
    {"out_id", KB_DT_U64, KB_ROLE_OUTPUT, 0, 0},
};

enum { D_PQ, D_UNIFORM, D_TIES };

static int tk__dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    if (d && strcmp(d, "/pq") == 0) return D_PQ;
    if (d && strcmp(d, "/uniform") == 0) return D_UNIFORM;
    if (d && strcmp(d, "/ties") == 0) return D_TIES;
    return -1;
}

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

/* ---- the generator ----------------------------------------------------- */

/* n unique Lance row ids, ascending: fragment << 32 | offset, offsets with gaps
 * (deleted rows), a new fragment now and then. */
static void tk__row_ids(kb_rng *r, uint64_t *id, uint64_t n)
{
    uint64_t frag = kb_rng_below(r, 8), off = kb_rng_below(r, 16);
    for (uint64_t i = 0; i < n; i++) {
        if (kb_rng_below(r, 65536) == 0) {
            frag += 1 + kb_rng_below(r, 3);
            off = kb_rng_below(r, 16);
        }
        id[i] = frag << 32 | off;
        off += 1 + kb_rng_below(r, 4);
    }
}

static void tk__shuffle(kb_rng *r, uint64_t *id, uint64_t n)
{
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = kb_rng_below(r, i), t = id[i - 1];
        id[i - 1] = id[j];
        id[j] = t;
    }
}

/* Blocks of 4096 ascending ids in a shuffled block order; n is a multiple of 4096. */
static void tk__shuffle_blocks(kb_rng *r, uint64_t *id, uint64_t n)
{
    const uint64_t B = 4096;
    for (uint64_t b = n / B; b > 1; b--) {
        uint64_t c = kb_rng_below(r, b);
        for (uint64_t i = 0; i < B && c != b - 1; i++) {
            uint64_t t = id[(b - 1) * B + i];
            id[(b - 1) * B + i] = id[c * B + i];
            id[c * B + i] = t;
        }
    }
}

/* One distance of partition j. tab is 4 sub-spaces x 64 codes. */
static float tk__one_dist(kb_rng *r, int kind, float centroid, const float *tab)
{
    if (kind == D_UNIFORM) return (float)kb_rng_unit(r) * 4.0f;
    if (kind == D_TIES) return centroid + (float)kb_rng_below(r, 256) * (1.0f / 64.0f);
    float s = centroid; /* sum in sub-space order, as a PQ scan adds its table entries */
    for (int j = 0; j < 4; j++) {
        uint64_t a = kb_rng_below(r, 64), b = kb_rng_below(r, 64);
        s += tab[j * 64 + (a < b ? a : b)]; /* min of two: low codes are hot */
    }
    return s;
}

/* List lengths for p > 1: each at most k, summing to n. */
static void tk__list_lens(kb_rng *r, uint64_t n, uint64_t k, uint64_t p, uint64_t *off)
{
    uint64_t len[TK_MAX_P], deficit = p * k - n;
    for (uint64_t j = 0; j < p; j++) len[j] = k;
    while (deficit > 0) {
        uint64_t j = kb_rng_below(r, p), t = 1 + kb_rng_below(r, k / 2 + 1);
        if (t > len[j]) t = len[j];
        if (t > deficit) t = deficit;
        len[j] -= t;
        deficit -= t;
    }
    off[0] = 0;
    for (uint64_t j = 0; j < p; j++) off[j + 1] = off[j] + len[j];
}

static void tk__fill(kb_rng *r, int kind, uint64_t p, const uint64_t *off, float *d, uint64_t *id)
{
    float tab[4 * 64];
    for (int i = 0; i < 4 * 64; i++) tab[i] = (float)kb_rng_unit(r) * 0.25f;
    for (uint64_t j = 0; j < p; j++) {
        /* partitions probed nearest first, their distances overlapping */
        float centroid = kind == D_UNIFORM ? 0.0f : 1.0f + (float)j * 0.02f;
        for (uint64_t i = off[j]; i < off[j + 1]; i++) {
            if (kind == D_PQ && i > off[j] && kb_rng_below(r, 4) == 0)
                d[i] = d[off[j] + kb_rng_below(r, i - off[j])]; /* a duplicate vector */
            else
                d[i] = tk__one_dist(r, kind, centroid, tab);
        }
        if (p > 1) tk__sort(d + off[j], id + off[j], off[j + 1] - off[j]);
    }
}

static int tk__check(const kb_case_spec *cs, const kb_buffer *bufs, uint32_t n_bufs, char *err,
                     size_t err_len)
{
    int64_t n = cs->params[P_N], k = cs->params[P_K], p = cs->params[P_P];
    if (n_bufs != N_BUFFERS) {
        snprintf(err, err_len, "topk-merge generate: %u buffers given, %d expected", n_bufs,
                 N_BUFFERS);
        return -1;
    }
    if (tk__dist_kind(cs->name) < 0 || k < 1 || k > TK_MAX_K || p < 1 || p > TK_MAX_P || n < k ||
        n > (INT64_C(1) << 24) || (p > 1 && n > p * k)) {
        snprintf(err, err_len,
                 "case %s: need /pq, /uniform or /ties, k 1..%d, p 1..%d, n k..2^24 (<= p*k "
                 "when p > 1)",
                 cs->name, TK_MAX_K, TK_MAX_P);
        return -1;
    }
    if (bufs[B_DIST].count != (uint64_t)n || bufs[B_ID].count != (uint64_t)n ||
        bufs[B_OFFSETS].count != (uint64_t)p + 1) {
        snprintf(err, err_len, "case %s: buffers of %llu, %llu, %llu elements; need n, n, p + 1",
                 cs->name, (unsigned long long)bufs[B_DIST].count,
                 (unsigned long long)bufs[B_ID].count, (unsigned long long)bufs[B_OFFSETS].count);
        return -1;
    }
    return 0;
}

static int tk__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    if (tk__check(cs, bufs, n_bufs, err, err_len) != 0) return -1;
    const uint64_t n = (uint64_t)cs->params[P_N], k = (uint64_t)cs->params[P_K],
                   p = (uint64_t)cs->params[P_P];
    const int kind = tk__dist_kind(cs->name);
    float *d = bufs[B_DIST].data;
    uint64_t *id = bufs[B_ID].data, *off = bufs[B_OFFSETS].data;
    kb_rng r;

    kb_rng_seed(&r, kb_rng_derive(seed, set, 0));
    tk__row_ids(&r, id, n);
    /* the row order of a partition: ascending blocks (delta indices) for pq */
    if (kind == D_PQ && p == 1 && n % 4096 == 0) {
        tk__shuffle_blocks(&r, id, n);
    } else {
        tk__shuffle(&r, id, n);
    }
    if (p == 1) {
        off[0] = 0;
        off[1] = n;
    } else {
        tk__list_lens(&r, n, k, p, off);
    }
    tk__fill(&r, kind, p, off, d, id);
    return 0;
}

static const kb_target tk__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "topk-merge",
    .description = "the k smallest (distance, row id) pairs of n rows, or of p sorted partial "
                   "top-k lists merged, ties by row id, as after Lance's partition scan",
    .upstream = "lance rust/lance/src/dataset/scanner.rs Scanner::ann (SortExec on [_distance "
                "ASC, _rowid ASC] with fetch=k: DataFusion TopK heap) over lance-index "
                "vector/flat/index.rs FlatIndex::search partial results, lance d2039d75, "
                "ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = tk__param_names,
    .buffers = tk__buffers,
    .n_cases = sizeof(tk__cases) / sizeof(tk__cases[0]),
    .cases = tk__cases,
    /* Bitwise: the answer is a selection of input values in one order fixed by the
     * (distance, id) key, with no arithmetic, so any correct kernel reproduces it exactly.
     * A near miss (a tie broken the wrong way, the (k+1)-th row) changes an id. */
    .rel_tol = 0.0,
    .generate = tk__generate,
};

/* ---- the reference kernel ------------------------------------------- */

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
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &tk__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
