/*
 * oracle.c -- the posting-seek target: spec, inputs and reference.
 *
 * One term's posting list in an inverted index, searched the way WAND moves its cursor:
 * a call gets m ascending seek targets and answers each with the first doc id >= target,
 * UINT32_MAX (Lance's TERMINATED_DOC_ID, as a u32) once the list is exhausted.
 *
 * Upstream: lance-index rust/lance-index/src/scalar/inverted/wand.rs, PostingIterator::next,
 * its PostingList::Compressed arm (lancedb/lance d2039d750a6a296585e7fca63428fb2139c7acd0).
 * The list is stored in blocks of BLOCK_SIZE = 128 doc ids (BitPacker4x::BLOCK_LEN,
 * builder.rs); each block's header holds its max score and its first doc id
 * (CompressedPostingList::block_least_doc_id, index.rs), which is the skip table. next()
 * walks that table linearly from the current block while the next block's first doc id is
 * <= the target, moves the index to the start of that block if it is behind, then steps
 * one document at a time while the doc id is < the target. The index only moves forward,
 * so with ascending targets each answer is the list's first doc id >= target. This oracle
 * is that code, statement for statement, on u32 arrays.
 *
 * What is left out, and why: upstream keeps each block bit packed (encoding.rs,
 * compress_sorted_block: BitPacker4x of the deltas) and decompresses a block when the index
 * enters it (CompressedState::decompress). The list here is static (KB_ROLE_STATIC), so a
 * candidate may decode it once in prepare; the target therefore holds the list decoded,
 * as CompressedState holds the current block, and measures the seek, which is where the
 * lance-autoresearch workspace's lesson is. The block max scores are WAND's pruning input,
 * not the seek's, and are not given. The frequencies that share each block are not needed.
 *
 * Buffers: doc_ids (static, n, strictly ascending, < UINT32_MAX), block_first (static,
 * ceil(n / 128): doc_ids[128 b], the skip table), targets (per call, m, ascending, repeats
 * allowed), found (output, m). Bitwise compare.
 *
 * The list: the first doc id below 2^20, then gaps in [1, 2g] where the mean gap g changes
 * every 128 documents (2, 4, 8, 16 or 60 with weights 4:3:2:2:1, 300 one time in 16), as
 * vbyte-decode's postings: a term dense in some parts of the corpus, rare in others.
 *
 * Seek distributions (after '/'), as skips k: the number of documents the cursor moves,
 * the target then drawn uniformly from (doc[pos - 1], doc[pos]] so the answer is doc[pos]
 * (k = 0: a target between the last one and the current doc, a seek that does not move):
 *   wand  what WAND's next() sees. The lance-autoresearch workspace
 *         (../shared/background/lance-autoresearch-readme.txt, the posting-seek row) tuned a
 *         galloping seek on deep skips, won its microbenchmark by 97% on the worst case and
 *         58% geomean, and then regressed 10M-document OR queries by 12.7% (p = 0.03): WAND's
 *         block-max score skip moves whole blocks before next() is called, so the skips
 *         next() sees are mostly shallow, and galloping's setup loses there. The workspace
 *         gives no histogram; the weights below are this target's model of that finding:
 *         of 64, 10 are k = 0, 30 k in 1..4, 14 k in 5..32 (inside the block), 8 k in
 *         33..512 (a few blocks), 2 k in 513..8192 (deep); within the last three ranges
 *         k is log-uniform (a power-of-two bucket, then uniform in it).
 *   deep  the microbenchmark's case: every skip 128..16383 documents, log-uniform.
 *   near  a conjunction of two terms of similar frequency: k in 0..8, uniform.
 * Past the end of the list the targets keep rising above the last doc id: the answers are
 * the sentinel, as when a term runs out mid-query.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, P_M, N_PARAMS };
enum { B_DOCS, B_FIRST, B_TARGETS, B_FOUND, N_BUFFERS };
#define PS_BLOCK   128
#define PS_END     UINT32_MAX
#define PS_MAX_N   (INT64_C(1) << 23)
#define PS_MAX_M   (INT64_C(1) << 20)
#define PS_MAX_DOC UINT64_C(0xF0000000) /* doc ids stay below; the mean gap is about 29 */
#define PS_NB(n)   (((n) + PS_BLOCK - 1) / PS_BLOCK)
/* Bytes a call moves, roughly: the targets and answers, and a cache line a seek. */
#define PS_BYTES(m) (72.0 * (double)(m))
#define CASE(name, flags, n, m)                                       \
    {                                                                 \
        name, flags, 0, {n, m}, {n, PS_NB(n), m, m}, PS_BYTES(m), 0.0 \
    }
#define Q KB_CASE_QUICK

/* clang-format off */
static const kb_case_spec ps__cases[] = {
    CASE("n=1048576,m=4096/wand", Q, 1048576, 4096),
    CASE("n=65536,m=512/wand", Q, 65536, 512),
    CASE("n=1048576,m=256/deep", Q, 1048576, 256),
    CASE("n=262144,m=8192/near", Q, 262144, 8192),
    CASE("n=4096,m=64/wand", 0, 4096, 64),
    CASE("n=100000,m=1000/wand", 0, 100000, 1000),
    CASE("n=4194304,m=16384/wand", 0, 4194304, 16384),
    CASE("n=300001,m=4000/wand", 0, 300001, 4000),
    CASE("n=131072,m=32/deep", 0, 131072, 32),
    CASE("n=4194304,m=1024/deep", 0, 4194304, 1024),
    CASE("n=1000,m=300/near", 0, 1000, 300),
    CASE("n=65537,m=4096/near", 0, 65537, 4096),
};
/* clang-format on */

static const char *const ps__param_names[N_PARAMS] = {"n", "m"};

static const kb_buffer_spec ps__buffers[N_BUFFERS] = {
    {"doc_ids", KB_DT_U32, KB_ROLE_STATIC, 0, 0},
    {"block_first", KB_DT_U32, KB_ROLE_STATIC, 0, 0},
    {"targets", KB_DT_U32, KB_ROLE_CALL, 0, 0},
    {"found", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
};

enum { D_WAND, D_DEEP, D_NEAR };
static const char *const ps__distributions[] = {"wand", "deep", "near"};

static int ps__dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 3; k++)
        if (strcmp(d + 1, ps__distributions[k]) == 0) return k;
    return -1;
}

/* ---- the generator ----------------------------------------------------- */

static void ps__gen_list(uint64_t seed, uint32_t *doc, uint32_t *first, uint64_t n)
{
    static const uint64_t means[12] = {2, 2, 2, 2, 4, 4, 4, 8, 8, 16, 16, 60};
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0, 1));
    uint64_t gap = 2, d = kb_rng_below(&r, UINT64_C(1) << 20);
    for (uint64_t i = 0; i < n; i++) {
        if (i % PS_BLOCK == 1) gap = kb_rng_below(&r, 16) == 0 ? 300 : means[kb_rng_below(&r, 12)];
        if (i > 0) d += 1 + kb_rng_below(&r, 2 * gap);
        if (d > PS_MAX_DOC - (n - i)) d = doc[i - 1] + 1; /* never at n <= 2^23 in practice */
        doc[i] = (uint32_t)d;
        if (i % PS_BLOCK == 0) first[i / PS_BLOCK] = (uint32_t)d;
    }
}

/* A value in [lo, 2 lo) for lo a power of two, the bucket drawn uniformly from `buckets`
 * starting at lo: log-uniform in [lo, lo << buckets). */
static uint64_t ps__log_uniform(kb_rng *r, uint64_t lo, uint64_t buckets)
{
    const uint64_t b = lo << kb_rng_below(r, buckets);
    return b + kb_rng_below(r, b);
}

static uint64_t ps__skip(kb_rng *r, int kind)
{
    if (kind == D_DEEP) return ps__log_uniform(r, 128, 7); /* 128..16383 */
    if (kind == D_NEAR) return kb_rng_below(r, 9);
    const uint64_t u = kb_rng_below(r, 64);
    if (u < 10) return 0;
    if (u < 40) return 1 + kb_rng_below(r, 4);
    if (u < 54) return 5 + kb_rng_below(r, 28);
    if (u < 62) return ps__log_uniform(r, 32, 4) + 1; /* 33..512 */
    return ps__log_uniform(r, 512, 4) + 1;            /* 513..8192 */
}

static void ps__gen_targets(uint64_t seed, uint32_t set, int kind, const uint32_t *doc, uint64_t n,
                            uint32_t *t, uint64_t m)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, 2));
    uint64_t pos = 0, prev = 0;
    for (uint64_t i = 0; i < m; i++) {
        pos += ps__skip(&r, kind);
        uint64_t v;
        if (pos >= n) { /* past the end: still ascending, still below the sentinel */
            v = (prev > doc[n - 1] ? prev : (uint64_t)doc[n - 1] + 1) + kb_rng_below(&r, 64);
            pos = n;
        } else {
            uint64_t lo = pos > 0 ? (uint64_t)doc[pos - 1] + 1 : 0;
            if (lo < prev) lo = prev;
            v = lo + kb_rng_below(&r, (uint64_t)doc[pos] - lo + 1);
        }
        t[i] = (uint32_t)v;
        prev = v;
    }
}

static int ps__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], m = cs->params[P_M];
    const int kind = ps__dist_kind(cs->name);
    if (n_bufs != N_BUFFERS || kind < 0 || n < 1 || n > PS_MAX_N || m < 1 || m > PS_MAX_M ||
        bufs[B_DOCS].count != (uint64_t)n || bufs[B_FIRST].count != (uint64_t)PS_NB(n) ||
        bufs[B_TARGETS].count != (uint64_t)m || bufs[B_FOUND].count != (uint64_t)m) {
        snprintf(err, err_len,
                 "posting-seek generate: case %s needs /wand, /deep or /near, n 1..2^23, "
                 "m 1..2^20, n doc ids, ceil(n/128) block firsts, m targets and m outputs",
                 cs->name);
        return -1;
    }
    uint32_t *doc = bufs[B_DOCS].data;
    if (set == 0) ps__gen_list(seed, doc, bufs[B_FIRST].data, (uint64_t)n);
    ps__gen_targets(seed, set, kind, doc, (uint64_t)n, bufs[B_TARGETS].data, (uint64_t)m);
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

/* n <= 2^23: the doc ids then end near 2^23 * 29, far below PS_MAX_DOC. */
static const kb_param_range ps__ranges[N_PARAMS] = {{1, PS_MAX_N, 1, 0, 0}, {1, PS_MAX_M, 1, 0, 0}};

static int ps__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], m = cs->params[P_M];
    if (ps__dist_kind(cs->name) < 0) {
        snprintf(err, err_len, "posting-seek: distribution must be wand, deep or near");
        return -1;
    }
    cs->lengths[B_DOCS] = (uint64_t)n;
    cs->lengths[B_FIRST] = (uint64_t)PS_NB(n);
    cs->lengths[B_TARGETS] = (uint64_t)m;
    cs->lengths[B_FOUND] = (uint64_t)m;
    cs->bytes_per_call = PS_BYTES(m);
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target ps__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "posting-seek",
    .description = "m ascending seeks in a posting list of n doc ids in blocks of 128 with a "
                   "first-doc skip table: the first doc id >= each target (WAND's next)",
    .upstream = "lance-index rust/lance-index/src/scalar/inverted/wand.rs PostingIterator::next "
                "(Compressed arm, block_least_doc_id skip), lancedb/lance d2039d75, ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = ps__param_names,
    .buffers = ps__buffers,
    .n_cases = sizeof(ps__cases) / sizeof(ps__cases[0]),
    .cases = ps__cases,
    /* Bitwise: each answer is a doc id of the list or the sentinel. */
    .rel_tol = 0.0,
    .generate = ps__generate,
    .param_ranges = ps__ranges,
    .distributions = ps__distributions,
    .n_distributions = 3,
    .max_case_bytes = UINT64_C(64) << 20,
    .shape = ps__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct ps__state {
    const uint32_t *doc_ids;
    const uint32_t *block_first;
    uint64_t n, n_blocks;
} ps__state;

static int ps__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    if (n_statics != 2 || cs->n_params != N_PARAMS || cs->params[P_N] < 1 ||
        cs->params[P_N] > PS_MAX_N || statics[0].count != (uint64_t)cs->params[P_N] ||
        statics[1].count != (uint64_t)PS_NB(cs->params[P_N])) {
        snprintf(err, err_len, "posting-seek: expected n doc ids and ceil(n/128) block firsts");
        return KB_ERR_UNSUPPORTED;
    }
    ps__state *s = malloc(sizeof *s);
    if (!s) return KB_ERR_NOMEM;
    s->doc_ids = statics[0].data;
    s->block_first = statics[1].data;
    s->n = statics[0].count;
    s->n_blocks = statics[1].count;
    *state = s;
    return KB_OK;
}

static int ps__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const ps__state *s = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != outputs[0].count) {
        snprintf(err, err_len, "posting-seek: need m targets and m outputs");
        return KB_ERR_INTERNAL;
    }
    const uint32_t *targets = inputs[0].data;
    uint32_t *found = outputs[0].data;
    const uint64_t length = s->n;
    uint64_t index = 0; /* a fresh PostingIterator a call */
    for (uint64_t i = 0; i < inputs[0].count; i++) {
        const uint32_t least_id = targets[i];
        /* next(least_id), PostingList::Compressed */
        uint64_t block_idx = index / PS_BLOCK;
        while (block_idx + 1 < s->n_blocks && s->block_first[block_idx + 1] <= least_id)
            block_idx += 1;
        if (index < block_idx * PS_BLOCK) index = block_idx * PS_BLOCK;
        while (index < length && s->doc_ids[index] < least_id) index += 1;
        /* doc(): None past the end */
        found[i] = index < length ? s->doc_ids[index] : PS_END;
    }
    return KB_OK;
}

static void ps__release(void *state)
{
    free(state);
}

static const kb_plugin ps__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "posting-seek",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = ps__prepare,
    .run = ps__run,
    .verify = NULL,
    .release = ps__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &ps__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ps__plugin;
}
