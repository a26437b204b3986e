/*
 * oracle.c -- the fts-bm25 target: spec, inputs and reference.
 *
 * BM25 scores of one query term's postings, as Lance's inverted index scores them
 * (lancedb/lance d2039d75, rust/lance-index/src/scalar/inverted/scorer.rs: IndexBM25Scorer
 * ::new, Scorer::score = query_weight(token) * doc_weight(freq, doc_tokens), doc_weight and
 * idf; K1 = 1.2, B = 0.75, all f32). For posting i (doc id ids[i], term frequency tf[i]):
 *
 *     f = (f32)tf[i];  dt = (f32)doc_len[ids[i]];
 *     doc_norm = K1 * ((1 - B) + (B * dt) / avgdl);
 *     score[i] = idf * (((K1 + 1) * f) / (f + doc_norm));
 *
 * each operation one f32 rounding in that order (Rust evaluates left to right and never
 * contracts to FMA), with avgdl = (f32)total_tokens / (f32)num_docs computed once from the
 * doc-length table as IndexBM25Scorer::new does (total_tokens a u64 sum). K1 + 1 and 1 - B
 * are the f32 constants 2.2f and 0.25f.
 *
 * Buffers: doc_len (u32, one per document of the corpus: KB_ROLE_STATIC, the index's
 * num_tokens column), then per call one term's posting list: ids (u32, ascending, distinct,
 * < docs), tf (u32 >= 1) and query (f32[1]: the term's idf, query_weight); output scores
 * (f32, one per posting). The query weight is an input because Lance computes it once per
 * term (idf(token_docs, num_docs) = ln((N - n + 0.5) / (n + 0.5) + 1) in f32); the
 * generator gives it that value for the case's n and docs, with a private ln (below) so
 * that it is the same bits on every platform.
 *
 * Tolerance: the oracle's own check (ABI 1.2), |got - ref| <= 1e-6 |ref| element by element,
 * relative to the score itself (scores run from about 1e-3 to 40, so the host's
 * max(1, |ref|) rule would be absolute for the small ones). Every operation above is IEEE
 * correctly rounded in SSE, AVX and NEON alike, so a kernel that keeps this order gives the
 * oracle's bits; 1e-6 (about 8 f32 ulps) leaves room for a reassociated doc_norm
 * (dt * (B / avgdl)) or a reciprocal refined by one Newton step (2-3 ulps), and rejects an
 * approximate reciprocal without it (_mm256_rcp_ps: relative error up to 1.5 * 2^-12, about
 * 3.7e-4), bfloat16-like rounding and a length read from the wrong document
 * (tests/fixtures/wrong/fx_wrong_bm25.c).
 *
 * Distributions (after '/'), ids always a uniform random sorted subset of [0, docs):
 *   zipf     the realistic one: term frequencies Zipf's law over 1..64 with exponent 2
 *            (P(1) = 0.62, P(<= 3) = 0.84, a tail to 64), document lengths log-normal-like:
 *            2^(7 + 1.15 Z) tokens (median 128, sigma 0.8 in ln, as web passages), Z the
 *            Irwin-Hall sum of four uniforms, rounded and clamped to [1, 65535];
 *   uniform  term frequencies uniform in [1, 16], document lengths uniform in [1, 512].
 * Shapes: n (postings of the term, 1..2^20, at most docs/2) and docs (corpus size, 2..10^7).
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, P_DOCS, N_PARAMS };
enum { B_DOCLEN, B_IDS, B_TF, B_QUERY, B_SCORES, N_BUFFERS };

#define FB_K1       1.2f
#define FB_B        0.75f
#define FB_TOL      1e-6
#define FB_MAX_DOCS INT64_C(10000000)
#define FB_MAX_N    (INT64_C(1) << 20)
#define FB_TF_MAX   64

/* Bytes a call moves: ids, tf, the gathered length and the score per posting, the idf. */
#define FB_BYTES(n) (16.0 * (n) + 4.0)
#define FB_FLOPS(n) (8.0 * (n))
#define CASE(nm, fl, docs, n)                                              \
    {                                                                      \
        nm, fl, 0, {n, docs}, {docs, n, n, 1, n}, FB_BYTES(n), FB_FLOPS(n) \
    }

/* A corpus of 10^5 to 10^7 documents (a Lance FTS index partition and a whole table), and
 * terms from rare (n = 100) to common (a third of the documents): query terms span decades
 * of document frequency. The quick four keep a default trial near 2 s. */
static const kb_case_spec fb_cases[] = {
    CASE("n=1000,docs=100000/zipf", KB_CASE_QUICK, 100000, 1000),
    CASE("n=10000,docs=100000/uniform", KB_CASE_QUICK, 100000, 10000),
    CASE("n=30000,docs=100000/zipf", KB_CASE_QUICK, 100000, 30000),
    CASE("n=100,docs=1000000/zipf", 0, 1000000, 100),
    CASE("n=10000,docs=1000000/zipf", KB_CASE_QUICK, 1000000, 10000),
    CASE("n=10000,docs=1000000/uniform", 0, 1000000, 10000),
    CASE("n=100000,docs=1000000/uniform", 0, 1000000, 100000),
    CASE("n=300000,docs=1000000/zipf", 0, 1000000, 300000),
    CASE("n=100000,docs=3000000/zipf", 0, 3000000, 100000),
    CASE("n=1000,docs=10000000/zipf", 0, 10000000, 1000),
    CASE("n=100000,docs=10000000/zipf", 0, 10000000, 100000),
    CASE("n=500000,docs=10000000/zipf", 0, 10000000, 500000),
    CASE("n=100000,docs=10000000/uniform", 0, 10000000, 100000),
};

static const char *const fb_param_names[N_PARAMS] = {"n", "docs"};
static const char *const fb_distributions[] = {"zipf", "uniform"};

static const kb_buffer_spec fb_buffers[N_BUFFERS] = {
    {"doc_len", KB_DT_U32, KB_ROLE_STATIC, 0, 0}, {"ids", KB_DT_U32, KB_ROLE_CALL, 0, 0},
    {"tf", KB_DT_U32, KB_ROLE_CALL, 0, 0},        {"query", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"scores", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

static int fb_zipf(const char *name)
{
    const char *slash = strrchr(name, '/');
    if (!slash) return -1;
    if (strcmp(slash + 1, "zipf") == 0) return 1;
    if (strcmp(slash + 1, "uniform") == 0) return 0;
    return -1;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

/* The doc-length table of 10^7 documents is 40 MB and held once; the per-call buffers
 * (12 bytes a posting, 32 sets of them) stay under 400 MB at n = 2^20. */
static const kb_param_range fb_ranges[N_PARAMS] = {{1, FB_MAX_N, 1, 0, 0},
                                                   {2, FB_MAX_DOCS, 1, 0, 0}};

static int fb_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t docs = cs->params[P_DOCS], n = cs->params[P_N];
    if (fb_zipf(cs->name) < 0) {
        snprintf(err, err_len, "fts-bm25: distribution must be zipf or uniform");
        return -1;
    }
    if (n > docs / 2) {
        snprintf(err, err_len, "fts-bm25: n = %lld postings need docs >= 2n (docs = %lld)",
                 (long long)n, (long long)docs);
        return -1;
    }
    cs->lengths[B_DOCLEN] = (uint64_t)docs;
    cs->lengths[B_IDS] = cs->lengths[B_TF] = cs->lengths[B_SCORES] = (uint64_t)n;
    cs->lengths[B_QUERY] = 1;
    cs->bytes_per_call = FB_BYTES(n);
    cs->flops_per_call = FB_FLOPS(n);
    return 0;
}

/* ---- generator ------------------------------------------------------- */

/* Deterministic elementary functions: + - * / in double only (this file is built with
 * -ffp-contract=off), so every platform gets the same bits; libm's log and exp differ. */
static double fb_ldexp2(double x, int e)
{
    for (; e > 0; e--) x *= 2.0;
    for (; e < 0; e++) x *= 0.5;
    return x;
}

/* 2^y for |y| < 64: 2^floor(y) times 2^f, f in [0, 1), by Horner's rule on the Taylor
 * series of exp(f ln 2) to degree 14 (coefficients (ln 2)^i / i!, built once). */
static double fb_exp2(const double *coef, double y)
{
    int k = (int)y;
    if ((double)k > y) k--;
    const double f = y - (double)k;
    double p = coef[14];
    for (int i = 13; i >= 0; i--) p = p * f + coef[i];
    return fb_ldexp2(p, k);
}

static void fb_exp2_coef(double *coef)
{
    coef[0] = 1.0;
    for (int i = 1; i <= 14; i++) coef[i] = coef[i - 1] * 0.6931471805599453 / (double)i;
}

/* ln x for x >= 1: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh((m-1)/(m+1)). */
static double fb_ln(double x)
{
    int e = 0;
    while (x >= 1.4142135623730951) x *= 0.5, e++;
    const double t = (x - 1.0) / (x + 1.0), t2 = t * t;
    double p = t, sum = 0.0;
    for (int i = 1; i <= 41; i += 2) {
        sum += p / (double)i;
        p *= t2;
    }
    return 2.0 * sum + (double)e * 0.6931471805599453;
}

/* Lance's idf(token_docs, num_docs), f32 arithmetic, then ln rounded to f32. */
static float fb_idf(int64_t n, int64_t docs)
{
    const float nd = (float)docs, td = (float)n;
    const float arg = (nd - td + 0.5f) / (td + 0.5f) + 1.0f;
    return (float)fb_ln((double)arg);
}

/* P(tf = k) proportional to 1/k^2, k in 1..FB_TF_MAX, as 32-bit cumulative thresholds. */
static void fb_tf_table(uint64_t *cum)
{
    double h = 0.0, c = 0.0;
    for (int k = 1; k <= FB_TF_MAX; k++) h += 1.0 / ((double)k * (double)k);
    for (int k = 1; k <= FB_TF_MAX; k++) {
        c += 1.0 / ((double)k * (double)k);
        cum[k - 1] = (uint64_t)(c / h * 4294967296.0);
    }
    cum[FB_TF_MAX - 1] = UINT64_C(1) << 32;
}

static void fb_gen_tf(kb_rng *r, int zipf, uint32_t *tf, uint64_t n)
{
    uint64_t cum[FB_TF_MAX];
    fb_tf_table(cum);
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t u = kb_rng_next(r) >> 32;
        if (!zipf) {
            tf[i] = 1 + (uint32_t)(u & 15);
            continue;
        }
        uint32_t k = 0;
        while (u >= cum[k]) k++;
        tf[i] = k + 1;
    }
}

/* Log-normal-like lengths: Z from four 16-bit uniforms (Irwin-Hall, variance 1/3 each). */
static void fb_gen_doclen(kb_rng *r, int zipf, uint32_t *len, uint64_t docs)
{
    double coef[15];
    fb_exp2_coef(coef);
    for (uint64_t i = 0; i < docs; i++) {
        const uint64_t u = kb_rng_next(r);
        if (!zipf) {
            len[i] = 1 + (uint32_t)((u >> 32) & 511);
            continue;
        }
        double s = 0.0;
        for (int q = 0; q < 4; q++) s += (double)((u >> (16 * q)) & 0xffff) / 65536.0;
        const double z = (s - 2.0) * 1.7320508075688772;
        const double v = fb_exp2(coef, 7.0 + 1.15 * z) + 0.5;
        len[i] = v < 1.0 ? 1 : v > 65535.0 ? 65535 : (uint32_t)v;
    }
}

static int fb_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t docs = cs->params[P_DOCS], n = cs->params[P_N];
    const int zipf = fb_zipf(cs->name);
    if (n_bufs != N_BUFFERS || zipf < 0 || n < 1 || n > docs / 2 || docs > FB_MAX_DOCS ||
        bufs[B_IDS].count != (uint64_t)n || bufs[B_TF].count != (uint64_t)n ||
        bufs[B_QUERY].count != 1) {
        snprintf(err, err_len, "fts-bm25 generate: case %s: bad shape or buffers", cs->name);
        return -1;
    }
    kb_rng r;
    if (set == 0) {
        if (bufs[B_DOCLEN].count != (uint64_t)docs) {
            snprintf(err, err_len, "fts-bm25 generate: doc_len must hold docs entries");
            return -1;
        }
        kb_rng_seed(&r, kb_rng_derive(seed, 0, B_DOCLEN));
        fb_gen_doclen(&r, zipf, bufs[B_DOCLEN].data, (uint64_t)docs);
    }
    kb_rng_seed(&r, kb_rng_derive(seed, 1 + (uint64_t)set, B_IDS));
    const uint64_t len = (uint64_t)n;
    uint64_t off[2];
    if (kb_gen_postings(&r, 1, &len, 0.0, (uint32_t)docs, bufs[B_IDS].data, off) != 0) {
        snprintf(err, err_len, "fts-bm25 generate: could not draw %lld ids", (long long)n);
        return -1;
    }
    kb_rng_seed(&r, kb_rng_derive(seed, 1 + (uint64_t)set, B_TF));
    fb_gen_tf(&r, zipf, bufs[B_TF].data, len);
    ((float *)bufs[B_QUERY].data)[0] = fb_idf(n, docs);
    return 0;
}

/* ---- the check ------------------------------------------------------- */

static int fb_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    const uint64_t n = (uint64_t)cs->params[P_N];
    if (n_inputs != 4 || n_outputs != 1 || got[0].count != n || expected[0].count != n) {
        snprintf(reason, reason_len, "fts-bm25: the check got the wrong buffers");
        return 1;
    }
    const uint32_t *ids = inputs[1].data, *tf = inputs[2].data, *len = inputs[0].data;
    const float *ref = expected[0].data, *g = got[0].data;
    for (uint64_t i = 0; i < n; i++) {
        const double d = (double)g[i] - (double)ref[i], bound = tol * (double)ref[i];
        if (!(d <= bound && -d <= bound)) {
            snprintf(reason, reason_len,
                     "scores[%llu]: expected %.9g, got %.9g, relative error %.3g over %g (doc "
                     "%u, tf %u, doc_len %u)",
                     (unsigned long long)i, (double)ref[i], (double)g[i],
                     ref[i] != 0 ? d / (double)ref[i] : d, tol, ids[i], tf[i], len[ids[i]]);
            return 1;
        }
    }
    return 0;
}

/* ---- the reference kernel ------------------------------------------- */

typedef struct fb_state {
    const kb_host *host;
    uint64_t docs, n;
    const uint32_t *doc_len;
    float avgdl;
} fb_state;

static int fb_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != N_PARAMS || n_statics != 1 ||
        statics[0].count != (uint64_t)cs->params[P_DOCS]) {
        snprintf(err, err_len, "fts-bm25: expected the doc_len table and 2 params");
        return KB_ERR_INTERNAL;
    }
    fb_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->docs = statics[0].count;
    st->n = (uint64_t)cs->params[P_N];
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
        snprintf(err, err_len, "fts-bm25: run got the wrong buffers");
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

/* ---- descriptors ----------------------------------------------------- */

static const kb_target fb_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "fts-bm25",
    .description = "BM25 scores of one term's postings: each posting's document length "
                   "gathered by doc id, Lance's doc_weight (K1 1.2, B 0.75, f32) times idf",
    .upstream = "lance d2039d75 rust/lance-index/src/scalar/inverted/scorer.rs "
                "IndexBM25Scorer::doc_weight, idf, Scorer::score (K1 = 1.2, B = 0.75, f32)",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = fb_param_names,
    .buffers = fb_buffers,
    .n_cases = sizeof(fb_cases) / sizeof(fb_cases[0]),
    .cases = fb_cases,
    .rel_tol = FB_TOL,
    .generate = fb_generate,
    .param_ranges = fb_ranges,
    .distributions = fb_distributions,
    .n_distributions = 2,
    .max_case_bytes = UINT64_C(64) << 20,
    .shape = fb_shape,
    .check = fb_check,
};

static const kb_plugin fb_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "fts-bm25",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = fb_prepare,
    .run = fb_run,
    .verify = NULL,
    .release = fb_release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &fb_target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &fb_plugin;
}
