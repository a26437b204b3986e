/*
 * oracle.c -- the posting-intersect target: spec, inputs and reference.
 *
 * A search engine answers "a AND b AND c" by intersecting the sorted document
 * id lists of the query terms. The reference is the plain scalar k-way merge:
 * list 0 with list 1, then that result with each next list, in the order the
 * lists arrive. Candidates may reorder the work (shortest list first,
 * galloping, SIMD); the answer is a set, so only its sorted contents count.
 *
 * Input shapes. Per-list lengths follow from the case params and the
 * distribution part of the name:
 *   "sparse", "dense": ratio = 2^R and list i of k is n << (R * i / (k - 1)),
 *                      lengths spread geometrically from n to n * ratio, as
 *                      term frequencies of a query spread over decades;
 *   "zipf":            ratio = k and the list of rank r (1..k) has
 *                      round(n * k / r) ids, Zipf's law with s = 1.
 * The generator shuffles the order of the lists on every input set, because
 * a query's terms arrive in the user's order, not by frequency: an
 * implementation that counts on list 0 being the shortest loses.
 * Dense cases (overlap >= 25%) draw ids from a universe 4x the total list
 * length, sparse ones from 256x, so chance collisions outside the common
 * core stay rare where the overlap is meant to be small.
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { PI_P_K, PI_P_N, PI_P_RATIO, PI_P_OVERLAP_PPM, PI_N_PARAMS };
enum { PI_B_LISTS, PI_B_OFFSETS, PI_B_OUT, PI_N_BUFFERS };
#define PI_MAX_K 8

/* Compile-time twins of pi__list_lens(), for the case table's lengths[];
 * generate() recomputes the sum at run time and refuses a mismatch. */
#define PI_GEO_LEN(k, n, R, i) ((i) < (k) ? (uint64_t)(n) << ((R) * (i) / ((k)-1)) : UINT64_C(0))
#define PI_GEO_SUM(k, n, R)                                                     \
    (PI_GEO_LEN(k, n, R, 0) + PI_GEO_LEN(k, n, R, 1) + PI_GEO_LEN(k, n, R, 2) + \
     PI_GEO_LEN(k, n, R, 3) + PI_GEO_LEN(k, n, R, 4) + PI_GEO_LEN(k, n, R, 5) + \
     PI_GEO_LEN(k, n, R, 6) + PI_GEO_LEN(k, n, R, 7))
#define PI_ZIPF_LEN(k, n, r) \
    ((r) <= (k) ? (2 * (uint64_t)(n) * (k) + (r)) / (2 * (uint64_t)(r)) : UINT64_C(0))
#define PI_ZIPF_SUM(k, n)                                                                        \
    (PI_ZIPF_LEN(k, n, 1) + PI_ZIPF_LEN(k, n, 2) + PI_ZIPF_LEN(k, n, 3) + PI_ZIPF_LEN(k, n, 4) + \
     PI_ZIPF_LEN(k, n, 5) + PI_ZIPF_LEN(k, n, 6) + PI_ZIPF_LEN(k, n, 7) + PI_ZIPF_LEN(k, n, 8))

#define PI_CASE_SUM(name, flags, k, n, sum, ratio, ppm)        \
    {                                                          \
        name, flags, 0, {k, n, ratio, ppm}, {sum, (k) + 1, n}, \
            4.0 * (double)((sum) + (uint64_t)(n)), 0.0         \
    }
#define PI_GEO(name, flags, k, n, R, ppm) \
    PI_CASE_SUM(name, flags, k, n, PI_GEO_SUM(k, n, R), INT64_C(1) << (R), ppm)
#define PI_ZIPF(name, flags, k, n, ppm) PI_CASE_SUM(name, flags, k, n, PI_ZIPF_SUM(k, n), k, ppm)

#define PI_SPARSE       10000  /* ~1% of the shortest list is in every list */
#define PI_DENSE        500000 /* ~50% */
#define PI_Q            KB_CASE_QUICK
#define PI_ZIPF_OVERLAP 100000 /* ~10% */

static const kb_case_spec pi__cases[] = {
    PI_GEO("k=2,n=65536,ratio=1/dense", PI_Q, 2, 65536, 0, PI_DENSE),
    PI_GEO("k=2,n=65536,ratio=1/sparse", 0, 2, 65536, 0, PI_SPARSE),
    PI_GEO("k=2,n=4096,ratio=16/dense", 0, 2, 4096, 4, PI_DENSE),
    PI_GEO("k=2,n=4096,ratio=16/sparse", PI_Q, 2, 4096, 4, PI_SPARSE),
    PI_GEO("k=2,n=256,ratio=1024/sparse", PI_Q, 2, 256, 10, PI_SPARSE),
    PI_GEO("k=2,n=1024,ratio=1024/dense", 0, 2, 1024, 10, PI_DENSE),
    PI_GEO("k=3,n=65536,ratio=1/dense", 0, 3, 65536, 0, PI_DENSE),
    PI_GEO("k=3,n=16384,ratio=16/sparse", 0, 3, 16384, 4, PI_SPARSE),
    PI_GEO("k=4,n=4096,ratio=16/dense", PI_Q, 4, 4096, 4, PI_DENSE),
    PI_GEO("k=4,n=16384,ratio=1/sparse", 0, 4, 16384, 0, PI_SPARSE),
    PI_GEO("k=8,n=4096,ratio=1/dense", 0, 8, 4096, 0, PI_DENSE),
    PI_GEO("k=8,n=1024,ratio=1024/sparse", 0, 8, 1024, 10, PI_SPARSE),
    PI_ZIPF("k=8,n=8192,ratio=8/zipf", 0, 8, 8192, PI_ZIPF_OVERLAP),
};

static const char *const pi__param_names[PI_N_PARAMS] = {"k", "n", "ratio", "overlap_ppm"};

static const kb_buffer_spec pi__buffers[PI_N_BUFFERS] = {
    {"lists", KB_DT_U32, KB_ROLE_CALL, 0, 0},
    {"offsets", KB_DT_U64, KB_ROLE_CALL, 0, 0},
    {"out", KB_DT_U32, KB_ROLE_OUTPUT, KB_BUF_VARIABLE, 0},
};

static int pi__is_zipf(const char *name)
{
    const char *dist = name ? strrchr(name, '/') : NULL;
    return dist && strcmp(dist, "/zipf") == 0;
}

/* Per-list lengths of a case, in rank order (shortest first for geometric
 * cases, longest first for Zipf). Returns 0, or -1 with words in err. */
static int pi__list_lens(const kb_case_spec *cs, uint64_t *lens, char *err, size_t err_len)
{
    int64_t k = cs->params[PI_P_K], n = cs->params[PI_P_N], ratio = cs->params[PI_P_RATIO];

    if (k < 2 || k > PI_MAX_K || n < 1 || n > (INT64_C(1) << 24) || ratio < 1) {
        snprintf(err, err_len, "case %s: k must be 2..%d, n 1..2^24, ratio >= 1", cs->name,
                 PI_MAX_K);
        return -1;
    }
    if (pi__is_zipf(cs->name)) {
        if (ratio != k) {
            snprintf(err, err_len, "case %s: a zipf case needs ratio == k", cs->name);
            return -1;
        }
        for (int64_t r = 1; r <= k; r++) lens[r - 1] = PI_ZIPF_LEN(k, n, r);
        return 0;
    }
    int R = 0;
    while (R < 24 && (INT64_C(1) << R) < ratio) R++;
    if ((INT64_C(1) << R) != ratio) {
        snprintf(err, err_len, "case %s: ratio must be a power of two up to 2^24", cs->name);
        return -1;
    }
    for (int64_t i = 0; i < k; i++) lens[i] = PI_GEO_LEN(k, n, R, i);
    return 0;
}

static int pi__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    uint64_t lens[PI_MAX_K], sum = 0;

    if (n_bufs != PI_N_BUFFERS) {
        snprintf(err, err_len, "posting-intersect generate: %u buffers given, %d expected", n_bufs,
                 PI_N_BUFFERS);
        return -1;
    }
    if (pi__list_lens(cs, lens, err, err_len) != 0) return -1;
    uint32_t k = (uint32_t)cs->params[PI_P_K];
    for (uint32_t i = 0; i < k; i++) sum += lens[i];
    if (sum != cs->lengths[PI_B_LISTS] || bufs[PI_B_LISTS].count != sum ||
        bufs[PI_B_OFFSETS].count != (uint64_t)k + 1) {
        snprintf(err, err_len,
                 "case %s: lists hold %llu ids by the length law, spec says %llu, buffer %llu; "
                 "offsets %llu (need %u)",
                 cs->name, (unsigned long long)sum, (unsigned long long)cs->lengths[PI_B_LISTS],
                 (unsigned long long)bufs[PI_B_LISTS].count,
                 (unsigned long long)bufs[PI_B_OFFSETS].count, k + 1);
        return -1;
    }
    int64_t ppm = cs->params[PI_P_OVERLAP_PPM];
    if (ppm < 0 || ppm > 1000000) {
        snprintf(err, err_len, "case %s: overlap_ppm must be 0..1000000", cs->name);
        return -1;
    }
    uint64_t universe = sum * (ppm >= 250000 ? 4 : 256);
    if (universe > UINT32_MAX) universe = UINT32_MAX;

    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, 0));
    for (uint32_t i = k - 1; i > 0; i--) {
        uint32_t j = (uint32_t)kb_rng_below(&r, (uint64_t)i + 1);
        uint64_t t = lens[i];
        lens[i] = lens[j];
        lens[j] = t;
    }
    if (kb_gen_postings(&r, k, lens, (double)ppm / 1e6, (uint32_t)universe,
                        (uint32_t *)bufs[PI_B_LISTS].data,
                        (uint64_t *)bufs[PI_B_OFFSETS].data) != 0) {
        snprintf(err, err_len, "case %s: kb_gen_postings refused %llu ids in a universe of %llu",
                 cs->name, (unsigned long long)sum, (unsigned long long)universe);
        return -1;
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

/* What `--case 'k=...,n=...,ratio=...[,overlap_ppm=...]/DIST'` may ask
 * for: the lengths pi__list_lens accepts (ratio a power of two, or == k
 * for zipf), with one input set within PI_MAX_SET_BYTES so the 32 sets a
 * trial holds stay near a gigabyte. Left out, overlap_ppm is the listed
 * cases' value for the distribution, so a listed name asks for its case. */
#define PI_MAX_SET_BYTES (UINT64_C(32) << 20)

static const kb_param_range pi__ranges[PI_N_PARAMS] = {
    {2, PI_MAX_K, 1, 0, 0},               /* k */
    {1, INT64_C(1) << 24, 1, 0, 0},       /* n */
    {1, INT64_C(1) << 24, 1, 0, 0},       /* ratio: pi__list_lens checks the law */
    {0, 1000000, 1, KB_PARAM_DEFAULT, 0}, /* overlap_ppm: by distribution if left out */
};

static const char *const pi__distributions[] = {"sparse", "dense", "zipf"};

/* The lengths and per-call figures PI_CASE_SUM writes for a listed case. */
static int pi__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    uint64_t lens[PI_MAX_K], sum = 0;
    if (cs->params[PI_P_OVERLAP_PPM] == KB_PARAM_UNSET) {
        const char *dist = strrchr(cs->name, '/');
        cs->params[PI_P_OVERLAP_PPM] = pi__is_zipf(cs->name)             ? PI_ZIPF_OVERLAP
                                       : dist && !strcmp(dist, "/dense") ? PI_DENSE
                                                                         : PI_SPARSE;
    }
    if (pi__list_lens(cs, lens, err, err_len) != 0) return -1;
    for (int64_t i = 0; i < cs->params[PI_P_K]; i++) sum += lens[i];
    cs->lengths[PI_B_LISTS] = sum;
    cs->lengths[PI_B_OFFSETS] = (uint64_t)cs->params[PI_P_K] + 1;
    cs->lengths[PI_B_OUT] = (uint64_t)cs->params[PI_P_N];
    cs->bytes_per_call = 4.0 * (double)(sum + (uint64_t)cs->params[PI_P_N]);
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target pi__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "posting-intersect",
    .description = "AND of k sorted u32 posting lists, as in a search engine's inverted index",
    .upstream = "lance-index scalar::inverted posting list AND (scalar k-way merge), ported to C",
    .n_params = PI_N_PARAMS,
    .n_buffers = PI_N_BUFFERS,
    .param_names = pi__param_names,
    .buffers = pi__buffers,
    .n_cases = sizeof(pi__cases) / sizeof(pi__cases[0]),
    .cases = pi__cases,
    .rel_tol = 0.0,
    .generate = pi__generate,
    .param_ranges = pi__ranges,
    .distributions = pi__distributions,
    .n_distributions = sizeof pi__distributions / sizeof pi__distributions[0],
    .max_case_bytes = PI_MAX_SET_BYTES,
    .shape = pi__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct pi__state {
    const kb_host *host;
    uint32_t *scratch; /* intermediate results; bounded by the longest list */
    uint64_t cap;
} pi__state;

static int pi__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
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
    pi__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    /* An intermediate result is at most as long as the shorter of the first
     * two lists, and no list is longer than n * ratio. */
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
static uint64_t pi__merge(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
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

static int pi__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    pi__state *st = state;
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
        m = pi__merge(src, m, lists + off[i], off[i + 1] - off[i], dst);
        src = dst;
    }
    outputs[0].produced = m;
    return KB_OK;
}

static void pi__release(void *state)
{
    pi__state *st = state;
    const kb_host *host = st->host;
    host->free_aligned(host, st->scratch);
    host->free_aligned(host, st);
}

static const kb_plugin pi__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "posting-intersect",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = pi__prepare,
    .run = pi__run,
    .verify = NULL,
    .release = pi__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &pi__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pi__plugin;
}
