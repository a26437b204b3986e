/*
 * avx512.c -- posting-intersect with AVX-512 (x86-64 only).
 *
 * Shortest list first; each step ANDs the running result (kept in `out`,
 * whose capacity is the shortest list's length) with the next longer list,
 * choosing the method by the length ratio of the step:
 *  - b at least 32x longer than a (pi_use_search): galloping search. For
 *    each group of 16 ids of a, doubling steps over b bracket the group's
 *    largest id, then every id runs its own branch-free binary search inside
 *    the bracket, the 16 searches interleaved so their cache misses overlap.
 *  - otherwise: block merge. Compare 16 ids of a with 16 of b all-pairs
 *    (a against the 16 rotations of b, valignd), OR the match masks into the
 *    a block's account, and advance the block(s) whose largest id is
 *    smaller. An a block's matches are written only when it retires, so the
 *    result can overwrite a in place: w never passes the block being read.
 *    On AMD Zen 4, which splits 512-bit operations in two, the blocks are
 *    8 ids in ymm registers instead (pi_merge_blocks8, AVX-512VL).
 *  - the leftovers of a block merge (< 16 ids on one side) take the scalar
 *    branch-free merge.
 * Compress-to-register plus a masked store is used instead of
 * vpcompressd-to-memory, which is microcoded and slow on AMD Zen 4.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>

#include "kbench.h"

#define PI_MAX_K       8
#define PI_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

typedef struct pi_state {
    const kb_host *host;
    int ymm_blocks; /* merge in 8-id ymm blocks: see pi_prefers_ymm */
} pi_state;

/* AMD family 19h with AVX-512 is Zen 4, which executes a 512-bit operation
 * as two 256-bit halves: there the 16 x 16 block merge, tuned on Zen 5,
 * lost to 8 x 8 blocks (AVX2's avx2.so was 0.83x of this file's time,
 * kbench trial --against, all cases). Zen 5 and Intel CPUs run 512 bits at
 * once and keep the 16 x 16 blocks. */
static int pi_prefers_ymm(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541u) /* "Auth"enticAMD */
        return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned family = (a >> 8 & 0xf) + (a >> 20 & 0xff);
    return family == 0x19;
}

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
    st->ymm_blocks = pi_prefers_ymm();
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

/* Stores the ids of v selected by m at out[w..]; returns how many. */
static inline uint32_t pi_emit(uint32_t *out, uint64_t w, __mmask16 m, __m512i v)
{
    uint32_t pc = (uint32_t)_mm_popcnt_u32(m);
    _mm512_mask_storeu_epi32(out + w, (__mmask16)((1u << pc) - 1),
                             _mm512_maskz_compress_epi32(m, v));
    return pc;
}

static uint64_t pi_merge_blocks(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                                uint32_t *out)
{
    uint64_t i = 0, j = 0, w = 0;
    __mmask16 acc = 0; /* matches of a[i..i+15] found so far */

    while (i + 16 <= na && j + 16 <= nb) {
        uint32_t amax = a[i + 15], bmax = b[j + 15];
        __m512i va = _mm512_loadu_si512(a + i);
        __m512i vb = _mm512_loadu_si512(b + j);
        __mmask16 m0 = _mm512_cmpeq_epi32_mask(va, vb);
        __mmask16 m1 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 1));
        __mmask16 m2 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 2));
        __mmask16 m3 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 3));
        __mmask16 m4 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 4));
        __mmask16 m5 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 5));
        __mmask16 m6 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 6));
        __mmask16 m7 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 7));
        __mmask16 m8 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 8));
        __mmask16 m9 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 9));
        __mmask16 m10 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 10));
        __mmask16 m11 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 11));
        __mmask16 m12 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 12));
        __mmask16 m13 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 13));
        __mmask16 m14 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 14));
        __mmask16 m15 = _mm512_cmpeq_epi32_mask(va, _mm512_alignr_epi32(vb, vb, 15));
        acc |= (__mmask16)(((m0 | m1) | (m2 | m3)) | ((m4 | m5) | (m6 | m7))) |
               (__mmask16)(((m8 | m9) | (m10 | m11)) | ((m12 | m13) | (m14 | m15)));
        if (amax <= bmax) {
            w += pi_emit(out, w, acc, va);
            acc = 0;
            i += 16;
        }
        if (bmax <= amax) j += 16;
    }
    if (acc) {
        /* The a block met earlier b blocks: its ids <= b[j-1] are settled.
         * Emit its matches and step past them before the scalar tail, which
         * starts at b[j] and would never see them. */
        __m512i va = _mm512_loadu_si512(a + i);
        __mmask16 done = _mm512_cmple_epu32_mask(va, _mm512_set1_epi32((int)b[j - 1]));
        w += pi_emit(out, w, acc, va);
        i += (uint64_t)_mm_popcnt_u32(done);
    }
    return pi_merge_tail(a, na, b, nb, out, i, j, w);
}

/* Stores the ids of v selected by m at out[w..]; returns how many. */
static inline uint32_t pi_emit8(uint32_t *out, uint64_t w, __mmask8 m, __m256i v)
{
    uint32_t pc = (uint32_t)_mm_popcnt_u32(m);
    _mm256_mask_storeu_epi32(out + w, (__mmask8)((1u << pc) - 1),
                             _mm256_maskz_compress_epi32(m, v));
    return pc;
}

/* Lanes of va equal to some lane of vb, as a mask: b's three rotations in
 * each 128-bit half (vpshufd) and the same with its halves swapped cover
 * all 64 pairs; vpternlogd folds the OR tree three inputs at a time. */
static inline __mmask8 pi_match8(__m256i va, __m256i vb)
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
    const __m256i o0 = _mm256_ternarylogic_epi32(e0, e1, e2, 0xfe);
    const __m256i o1 = _mm256_ternarylogic_epi32(e3, e4, e5, 0xfe);
    const __m256i o2 = _mm256_ternarylogic_epi32(o0, e6, e7, 0xfe);
    return _mm256_test_epi32_mask(_mm256_or_si256(o1, o2), _mm256_or_si256(o1, o2));
}

/* pi_merge_blocks with 8-id blocks in ymm registers (AVX-512VL): for CPUs
 * that split 512-bit operations in two (pi_prefers_ymm), where the 16 x 16
 * block does four times the compares of an 8 x 8 one for twice the ids. */
static uint64_t pi_merge_blocks8(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                                 uint32_t *out)
{
    uint64_t i = 0, j = 0, w = 0;
    __mmask8 acc = 0; /* matches of a[i..i+7] found so far */
    while (i + 8 <= na && j + 8 <= nb) {
        const uint32_t amax = a[i + 7], bmax = b[j + 7];
        const __m256i va = _mm256_loadu_si256((const __m256i *)(a + i));
        acc |= pi_match8(va, _mm256_loadu_si256((const __m256i *)(b + j)));
        if (amax <= bmax) {
            w += pi_emit8(out, w, acc, va);
            acc = 0;
            i += 8;
        }
        if (bmax <= amax) j += 8;
    }
    if (acc) {
        /* As in pi_merge_blocks: emit the settled matches, skip the ids
         * <= b[j-1], leave the rest to the scalar tail. */
        const __m256i va = _mm256_loadu_si256((const __m256i *)(a + i));
        __mmask8 done = _mm256_cmple_epu32_mask(va, _mm256_set1_epi32((int)b[j - 1]));
        w += pi_emit8(out, w, acc, va);
        i += (uint64_t)_mm_popcnt_u32(done);
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
 * AMD Zen 5; the limits are heuristics, not laws. */
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
        if (pi_use_search(na, nb))
            na = pi_search_groups(a, na, b, nb, out);
        else if (st->ymm_blocks)
            na = pi_merge_blocks8(a, na, b, nb, out);
        else
            na = pi_merge_blocks(a, na, b, nb, out);
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
    .name = "avx512",
    .version = "1",
    .cpu_features = KB_CPU_AVX512F | KB_CPU_AVX512VL | KB_CPU_POPCNT,
    .prepare = pi_prepare,
    .run = pi_run,
    .verify = NULL,
    .release = pi_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pi_plugin;
}
