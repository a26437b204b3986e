/*
 * neon.c -- posting-intersect with aarch64 Advanced SIMD. Built only for
 * aarch64 (plugins/posting-intersect/CMakeLists.txt).
 *
 * Shortest list first; each step ANDs the running result (kept in `out`,
 * whose capacity is the shortest list's length) with the next longer list,
 * choosing the method by the length ratio of the step, as avx2.c does:
 *  - b at least 32x longer than a (pi_use_search): galloping search, 16
 *    interleaved branch-free binary searches per group of ids of a.
 *  - otherwise: block merge of 4 ids of a against 4 of b, all pairs (the
 *    SSE block-compare intersection of Schlegel et al. and Lemire et al. at
 *    q-register width): a is compared with b and its three rotations (ext),
 *    the match lanes are OR-ed into the a block's account, and the block(s)
 *    whose largest id is smaller advance. An a block's matches are written
 *    when it retires, packed to the front by one tbl with an index row from
 *    a 16-entry table and stored 4 lanes wide: the lanes past the matches
 *    land at out[w + count .. w + 3], which w <= i keeps inside a's block
 *    just read (or, on the first step, inside out's capacity, at least na),
 *    and the next block's store overwrites them.
 *  - the leftovers of a block merge (< 4 ids on one side) take the scalar
 *    branch-free merge.
 *
 * Timed on no aarch64 machine yet: checked for correctness under
 * qemu-aarch64 only (docs/matrix.md), where speed means nothing.
 */
#include <arm_neon.h>
#include <stdio.h>

#include "kbench.h"

#define PI_MAX_K       8
#define PI_PREFETCH(p) __builtin_prefetch(p)

typedef struct pi_state {
    const kb_host *host;
    /* Row k: the bytes of the lanes set in mask k, in order, then 0xff
     * (tbl gives 0): the tbl indices that pack those lanes to the front. */
    _Alignas(16) uint8_t pack[16][16];
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
    for (unsigned k = 0; k < 16; k++) {
        unsigned n = 0;
        for (unsigned lane = 0; lane < 4; lane++)
            if (k >> lane & 1)
                for (unsigned byte = 0; byte < 4; byte++)
                    st->pack[k][n++] = (uint8_t)(4 * lane + byte);
        while (n < 16) st->pack[k][n++] = 0xff;
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

/* Lanes of va equal to some lane of vb: 4 compares, 3 rotations. */
static inline uint32x4_t pi_match4(uint32x4_t va, uint32x4_t vb)
{
    const uint32x4_t e0 = vceqq_u32(va, vb);
    const uint32x4_t e1 = vceqq_u32(va, vextq_u32(vb, vb, 1));
    const uint32x4_t e2 = vceqq_u32(va, vextq_u32(vb, vb, 2));
    const uint32x4_t e3 = vceqq_u32(va, vextq_u32(vb, vb, 3));
    return vorrq_u32(vorrq_u32(e0, e1), vorrq_u32(e2, e3));
}

/* All-ones lanes of v as bits 0..3. */
static inline unsigned pi_mask(uint32x4_t v)
{
    static const uint32_t bit[4] = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(v, vld1q_u32(bit)));
}

/* Stores the ids of v in the lanes set in `mask` at out[w..]; returns how
 * many. Writes all 4 lanes: see the comment at the top. */
static inline uint32_t pi_emit(const pi_state *st, uint32_t *out, uint64_t w, unsigned mask,
                               uint32x4_t v)
{
    const uint8x16_t packed = vqtbl1q_u8(vreinterpretq_u8_u32(v), vld1q_u8(st->pack[mask]));
    vst1q_u32(out + w, vreinterpretq_u32_u8(packed));
    return (uint32_t)__builtin_popcount(mask);
}

/* a AND b into out, lengths within 32x of each other. out may be a. */
static uint64_t pi_merge_blocks(const pi_state *st, const uint32_t *a, uint64_t na,
                                const uint32_t *b, uint64_t nb, uint32_t *out)
{
    uint64_t i = 0, j = 0, w = 0;
    uint32x4_t acc = vdupq_n_u32(0); /* matches of a[i..i+3] found so far */
    while (i + 4 <= na && j + 4 <= nb) {
        const uint32_t amax = a[i + 3], bmax = b[j + 3];
        const uint32x4_t va = vld1q_u32(a + i);
        acc = vorrq_u32(acc, pi_match4(va, vld1q_u32(b + j)));
        if (amax <= bmax) {
            w += pi_emit(st, out, w, pi_mask(acc), va);
            acc = vdupq_n_u32(0);
            i += 4;
        }
        if (bmax <= amax) j += 4;
    }
    const unsigned left = pi_mask(acc);
    if (left) {
        /* The a block met earlier b blocks: its ids <= b[j-1] are settled.
         * Write its matches and step past them before the scalar tail,
         * which starts at b[j] and would never see them. One id at a time:
         * a 4-lane store could overwrite ids of this block the tail has yet
         * to read when out is a. The ids are sorted, so the settled ones are
         * a prefix. */
        for (unsigned lane = 0; lane < 4; lane++)
            if (left >> lane & 1) out[w++] = a[i + lane];
        uint64_t done = 0;
        while (done < 4 && a[i + done] <= b[j - 1]) done++;
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
 * AMD Zen 5 for avx512.c and kept here untuned (no aarch64 timings yet); the
 * limits are heuristics, not laws. */
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
    .name = "neon",
    .version = "1",
    /* Advanced SIMD is part of every armv8-a CPU; declared all the same. */
    .cpu_features = KB_CPU_NEON,
    .prepare = pi_prepare,
    .run = pi_run,
    .verify = NULL,
    .release = pi_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pi_plugin;
}
