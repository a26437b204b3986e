/*
 * portable.c -- posting-intersect in plain C, for every architecture.
 *
 * Three changes against the oracle's merge, none of them ISA-specific:
 *  - the lists are intersected shortest first, so every step's left side is
 *    the smallest set seen so far and the result can live in `out` itself
 *    (its capacity is the shortest list's length);
 *  - when the other list is much longer, each id of the short side gallops
 *    (doubling steps, then a branch-free binary search) instead of walking
 *    every id of the long side;
 *  - otherwise the merge is branch-free: a dense AND mispredicts the
 *    three-way compare about every other step, the select costs nothing.
 */
#include <stdio.h>

#include "kbench.h"

#define PI_MAX_K 8
/* Above this length ratio a gallop per short-side id beats a linear walk:
 * the walk costs ~1 step per long-side id, a gallop ~2 log2(ratio) probes. */
#define PI_GALLOP_RATIO 32

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

/* a AND b into out, b much longer than a. out may be a. */
static uint64_t pi_gallop(const uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb,
                          uint32_t *out)
{
    uint64_t j = 0, w = 0;
    if (nb == 0)
        return 0;
    for (uint64_t i = 0; i < na; i++) {
        uint32_t x = a[i];
        if (b[j] < x) {
            /* Find p, the first index with b[p] >= x, in (lo, hi]. */
            uint64_t lo = j, step = 1, hi = j + 1;
            while (hi < nb && b[hi] < x) {
                lo = hi;
                step <<= 1;
                hi = lo + step;
            }
            if (hi > nb)
                hi = nb;
            uint64_t n = hi - lo;
            while (n > 1) {
                uint64_t half = n / 2;
                lo = b[lo + half] < x ? lo + half : lo;
                n -= half;
            }
            j = lo + 1;
            if (j == nb)
                break;
        }
        out[w] = x;
        w += b[j] == x;
    }
    return w;
}

static int pi_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    (void)state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[1].count < 2 ||
        inputs[1].count > PI_MAX_K + 1) {
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
        for (uint64_t i = 0; i < na; i++)
            out[i] = a[i];
    }
    for (uint32_t s = 1; s < k && na > 0; s++) {
        const uint32_t *b = lists + off[ord[s]];
        uint64_t nb = off[ord[s] + 1] - off[ord[s]];
        na = nb / PI_GALLOP_RATIO > na ? pi_gallop(a, na, b, nb, out)
                                       : pi_merge(a, na, b, nb, out);
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
