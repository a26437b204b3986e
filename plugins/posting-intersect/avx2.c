/*
 * avx2.c -- posting-intersect with AVX2 (x86-64-v3 CPUs: Intel Haswell and
 * later, AMD Zen 1 and later).
 *
 * Shortest list first; each step ANDs the running result (kept in `out`,
 * whose capacity is the shortest list's length) with the next longer list,
 * choosing the method by the length ratio of the step, as avx512.c does:
 *  - b at least 32x longer than a (pi_use_search): galloping search. For
 *    each group of 16 ids of a, doubling steps over b bracket the group's
 *    largest id, then every id runs its own branch-free binary search inside
 *    the bracket, the 16 searches interleaved so their cache misses overlap.
 *  - otherwise: block merge of 8 ids of a against 8 of b, all pairs (the
 *    block-compare intersection of Schlegel et al. and Lemire et al., at
 *    ymm width): a is compared with b, with b's three rotations inside each
 *    128-bit half (vpshufd) and with the same four of b's halves swapped
 *    (one vperm2i128), which meets every id of a with every id of b in 8
 *    compares and 7 shuffles. The match lanes are OR-ed into the a block's
 *    account, and the block(s) whose largest id is smaller advance. An a
 *    block's matches are written only when it retires, packed to the front
 *    by vpermd with an index row from a 256-entry table (AVX2 has no
 *    compress), and stored 8 lanes wide: the lanes past the matches land at
 *    out[w + popcount .. w + 7], which w <= i keeps inside a's block just
 *    read (or, on the first step, inside out's capacity, which is at least
 *    na), and the next block's store overwrites them.
 *  - the leftovers of a block merge (< 8 ids on one side) take the scalar
 *    branch-free merge.
 */
#include <immintrin.h>
#include <stdio.h>

#include "kbench.h"

#define PI_MAX_K       8
#define PI_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

typedef struct pi_state {
    const kb_host *host;
    /* Row k: the lanes set in mask k, in order, then zeros: the vpermd
     * indices that pack those lanes to the front. */
    _Alignas(32) uint32_t pack[256][8];
} pi_state;

static int pi_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)cs;
    (void)statics;
    if (n_statics != 0) {
        snprintf(err, err_len, "posting-intersect: expected no static inputs");
        return KB_ERR_INTERNAL;
    }
    pi_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    for (unsigned k = 0; k < 256; k++) {
        unsigned n = 0;
        for (unsigned lane = 0; lane < 8; lane++)
            if (k >> lane & 1) st->pack[k][n++] = lane;
        while (n < 8) st->pack[k][n++] = 0;
    }
    *state = st;
    return KB_OK;
}

/* Scalar branch-free merge from (i, j, w); out may be a. */
static uint64_t pi_merge_tail(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                              uint32_t *out, uint64_t i, uint64_t j, uint64_t w)
{
    while (i < na && j < nb) {
        uint32_t x = a[i], y = b[j];
        out[w] = x;
        w += x == y;
        i += x <= y;
        j += y <= x;
    }
    return w;
}

/* Stores the ids of v in the lanes set in `mask` at out[w..]; returns how
 * many. Writes all 8 lanes: see the comment at the top. */
static inline uint32_t pi_emit(const pi_state *st, uint32_t *out, uint64_t w, unsigned mask,
                               __m256i v)
{
    const __m256i idx = _mm256_load_si256((const __m256i *)st->pack[mask]);
    _mm256_storeu_si256((__m256i *)(out + w), _mm256_permutevar8x32_epi32(v, idx));
    return (uint32_t)_mm_popcnt_u32(mask);
}

/* Lanes of va equal to some lane of vb: 8 compares, 7 shuffles. */
static inline __m256i pi_match8(__m256i va, __m256i vb)
{
    const __m256i vs = _mm256_permute2x128_si256(vb, vb, 1);
    const __m256i e0 = _mm256_cmpeq_epi32(va, vb);
    const __m256i e1 = _mm256_cmpeq_epi32(va, _mm256_shuffle_epi32(vb, 0x39));
    const __m256i e2 = _mm256_cmpeq_epi32(va, _mm256_shuffle_epi32(vb, 0x4e));
    const __m256i e3 = _mm256_cmpeq_epi32(va, _mm256_shuffle_epi32(vb, 0x93));
    const __m256i e4 = _mm256_cmpeq_epi32(va, vs);
    const __m256i e5 = _mm256_cmpeq_epi32(va, _mm256_shuffle_epi32(vs, 0x39));
    const __m256i e6 = _mm256_cmpeq_epi32(va, _mm256_shuffle_epi32(vs, 0x4e));
    const __m256i e7 = _mm256_cmpeq_epi32(va, _mm256_shuffle_epi32(vs, 0x93));
    return _mm256_or_si256(_mm256_or_si256(_mm256_or_si256(e0, e1), _mm256_or_si256(e2, e3)),
                           _mm256_or_si256(_mm256_or_si256(e4, e5), _mm256_or_si256(e6, e7)));
}

static inline unsigned pi_mask(__m256i v)
{
    return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(v));
}

/* a AND b into out, lengths within 32x of each other. out may be a. */
static uint64_t pi_merge_blocks(const pi_state *st, const uint32_t *a, uint64_t na,
                                const uint32_t *b, uint64_t nb, uint32_t *out)
{
    uint64_t i = 0, j = 0, w = 0;
    __m256i acc = _mm256_setzero_si256(); /* matches of a[i..i+7] found so far */
    while (i + 8 <= na && j + 8 <= nb) {
        const uint32_t amax = a[i + 7], bmax = b[j + 7];
        const __m256i va = _mm256_loadu_si256((const __m256i *)(a + i));
        const __m256i vb = _mm256_loadu_si256((const __m256i *)(b + j));
        acc = _mm256_or_si256(acc, pi_match8(va, vb));
        if (amax <= bmax) {
            w += pi_emit(st, out, w, pi_mask(acc), va);
            acc = _mm256_setzero_si256();
            i += 8;
        }
        if (bmax <= amax) j += 8;
    }
    const unsigned left = pi_mask(acc);
    if (left) {
        /* The a block met earlier b blocks: its ids <= b[j-1] are settled.
         * Write its matches and step past them before the scalar tail,
         * which starts at b[j] and would never see them. One id at a time:
         * an 8-lane store could overwrite ids of this block the tail has
         * yet to read when out is a. The ids are sorted, so the settled
         * ones are a prefix. */
        for (unsigned lane = 0; lane < 8; lane++)
            if (left >> lane & 1) out[w++] = a[i + lane];
        uint64_t done = 0;
        while (done < 8 && a[i + done] <= b[j - 1]) done++;
        i += done;
    }
    return pi_merge_tail(a, na, b, nb, out, i, j, w);
}

/* Probe offsets of the bracket step: 16 * 2^l - 1 past j, l = 0..15. */
static const uint32_t pi_bracket[16] = {15,   31,   63,    127,   255,   511,    1023,   2047,
                                        4095, 8191, 16383, 32767, 65535, 131071, 262143, 524287};
#define PI_LANES 16

/* a AND b into out, b much longer than a. out may be a.
 * PI_LANES ids of a at a time: gallop (doubling steps from j) to bracket the
 * group's largest id, then give every id its own branch-free binary search
 * over the bracket, all lanes advancing one level per pass. The lanes'
 * loads are independent, so on a long b their cache misses overlap instead
 * of queueing one after the other as a per-id gallop's do; the next group's
 * first probes are prefetched while this group searches. */
static uint64_t pi_search_groups(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                                 uint32_t *out)
{
    uint64_t j = 0, w = 0;
    for (uint64_t i = 0; i < na && j < nb; i += PI_LANES) {
        uint64_t cnt = na - i < PI_LANES ? na - i : PI_LANES;
        uint32_t kmax = a[i + cnt - 1], key[PI_LANES];
        uint64_t base[PI_LANES];
        for (uint64_t l = 0; l < PI_LANES; l++) {
            key[l] = a[i + (l < cnt ? l : cnt - 1)];
            base[l] = j;
        }
        /* Every id of the group has its last b <= id in [j, hi); ids of
         * later groups exceed kmax, so they may start at jn. */
        uint64_t hi = nb, jn = j;
        for (int l = 0; l < 16; l++) {
            uint64_t p = j + pi_bracket[l];
            if (p >= nb) break;
            if (b[p] > kmax) {
                hi = p;
                break;
            }
            jn = p + 1;
        }
        for (int l = 0; l < 12 && jn + pi_bracket[l] < nb; l++) PI_PREFETCH(b + jn + pi_bracket[l]);
        for (uint64_t n = hi - j; n > 1;) {
            uint64_t half = n / 2;
            for (uint64_t l = 0; l < PI_LANES; l++)
                base[l] = b[base[l] + half] <= key[l] ? base[l] + half : base[l];
            n -= half;
        }
        if (hi > j) {
            for (uint64_t l = 0; l < cnt; l++) {
                out[w] = key[l];
                w += b[base[l]] == key[l];
            }
        }
        j = jn;
    }
    return w;
}

/* Searching wins once b is 32x longer than a, except on a long b (past
 * ~2 MB, out of L2) with skips short enough that streaming all of b through
 * the block merge costs less than the searches' cache misses. Measured on
 * AMD Zen 5 for avx512.c and kept here untuned; the limits are heuristics,
 * not laws. */
static int pi_use_search(uint64_t na, uint64_t nb)
{
    return nb >= 32 * na && (nb <= (UINT64_C(1) << 19) || nb >= 128 * na);
}

static int pi_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const pi_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[1].count < 2 || inputs[1].count > PI_MAX_K + 1) {
        snprintf(err, err_len, "posting-intersect: need lists, offsets (2..%d) and out",
                 PI_MAX_K + 1);
        return KB_ERR_INTERNAL;
    }
    const uint32_t *lists = inputs[0].data;
    const uint64_t *off = inputs[1].data;
    uint32_t k = (uint32_t)inputs[1].count - 1;

    uint32_t ord[PI_MAX_K];
    for (uint32_t i = 0; i < k; i++) {
        uint64_t len = off[i + 1] - off[i];
        uint32_t p = i;
        while (p > 0 && off[ord[p - 1] + 1] - off[ord[p - 1]] > len) {
            ord[p] = ord[p - 1];
            p--;
        }
        ord[p] = i;
    }
    if (off[ord[0] + 1] - off[ord[0]] > outputs[0].count) {
        snprintf(err, err_len, "out holds %llu ids, the shortest list has %llu",
                 (unsigned long long)outputs[0].count,
                 (unsigned long long)(off[ord[0] + 1] - off[ord[0]]));
        return KB_ERR_INTERNAL;
    }

    uint32_t *out = outputs[0].data;
    const uint32_t *a = lists + off[ord[0]];
    uint64_t na = off[ord[0] + 1] - off[ord[0]];
    if (k == 1) {
        for (uint64_t i = 0; i < na; i++) out[i] = a[i];
    }
    for (uint32_t s = 1; s < k && na > 0; s++) {
        const uint32_t *b = lists + off[ord[s]];
        uint64_t nb = off[ord[s] + 1] - off[ord[s]];
        na = pi_use_search(na, nb) ? pi_search_groups(a, na, b, nb, out)
                                   : pi_merge_blocks(st, a, na, b, nb, out);
        a = out;
    }
    outputs[0].produced = na;
    return KB_OK;
}

static void pi_release(void *state)
{
    pi_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin pi_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "posting-intersect",
    .name = "avx2",
    .version = "1",
    /* Built with -mavx2 -mpopcnt (-mavx2 implies AVX). */
    .cpu_features = KB_CPU_AVX | KB_CPU_AVX2 | KB_CPU_POPCNT,
    .prepare = pi_prepare,
    .run = pi_run,
    .verify = NULL,
    .release = pi_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pi_plugin;
}
