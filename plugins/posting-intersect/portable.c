/*
 * portable.c -- posting-intersect in plain C, for every architecture.
 *
 * Three changes against the oracle's merge, none of them ISA-specific:
 *  - the lists are intersected shortest first, so every step's left side is
 *    the smallest set seen so far and the result can live in `out` itself
 *    (its capacity is the shortest list's length);
 *  - when the other list is much longer, ids of the short side gallop over
 *    it in groups of 16: doubling steps bracket the group, then each id gets
 *    a branch-free binary search, the 16 interleaved so that their cache
 *    misses overlap instead of queueing;
 *  - for lists of similar length the merge is branch-free: a dense AND
 *    mispredicts the three-way compare about every other step, the select
 *    costs nothing. In between (4x..128x on a list past L2) the oracle's
 *    branchy merge stays, because there it predicts well and streams.
 */
#include <stdio.h>

#include "kbench.h"

#define PI_MAX_K 8
#if defined(__GNUC__) || defined(__clang__)
#define PI_PREFETCH(p) __builtin_prefetch(p)
#else
#define PI_PREFETCH(p) ((void)(p))
#endif

typedef struct pi_state {
    const kb_host *host;
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
    *state = st;
    return KB_OK;
}

/* a AND b into out, similar lengths. out may be a: w never passes i. */
static uint64_t pi_merge(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                         uint32_t *out)
{
    uint64_t i = 0, j = 0, w = 0;
    while (i < na && j < nb) {
        uint32_t x = a[i], y = b[j];
        out[w] = x;
        w += x == y;
        i += x <= y;
        j += y <= x;
    }
    return w;
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

/* a AND b into out, b several times longer than a: the three-way compare
 * mostly takes the same arm here, so prediction beats a branch-free select,
 * whose loop carries a load-compare-add chain per step. out may be a. */
static uint64_t pi_merge_skewed(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
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

static int pi_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    (void)state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[1].count < 2 || inputs[1].count > PI_MAX_K + 1) {
        snprintf(err, err_len, "posting-intersect: need lists, offsets (2..%d) and out",
                 PI_MAX_K + 1);
        return KB_ERR_INTERNAL;
    }
    const uint32_t *lists = inputs[0].data;
    const uint64_t *off = inputs[1].data;
    uint32_t k = (uint32_t)inputs[1].count - 1;

    /* Order by length, shortest first (insertion sort, k <= 8). */
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
        if (nb < 4 * na)
            na = pi_merge(a, na, b, nb, out);
        else if (nb <= (UINT64_C(1) << 19) || nb >= 128 * na)
            na = pi_search_groups(a, na, b, nb, out);
        else
            na = pi_merge_skewed(a, na, b, nb, out);
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
    .name = "portable",
    .version = "1",
    .cpu_features = 0,
    .prepare = pi_prepare,
    .run = pi_run,
    .verify = NULL,
    .release = pi_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pi_plugin;
}
