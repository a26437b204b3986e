/*
 * avx2.c -- topk-merge candidate "avx2" (x86-64-v3: Haswell, Zen 1 and later).
 *
 * portable.c's algorithms with the p = 1 filter in AVX2: 32 distances a step compared
 * with the broadcast threshold (<=, ordered), the four masks OR'd into one test; only a
 * step with a hit walks its mask bits and offers those rows to the buffer, each against
 * the threshold as it is then (a buffer compaction lowers it mid-step). Once the
 * threshold settles, a step is four compares and one branch.
 * p > 1 merges the sorted lists through a min-heap of their heads, as portable.c does.
 * Comparisons only: the output is the oracle's bit for bit.
 */
#include <math.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

enum { P_N, P_K, P_P, N_PARAMS };
#define TK_MAX_K 4096
#define TK_MAX_P 64

typedef struct tk_state {
    const kb_host *host;
    uint64_t k, cap;
    float *bd; /* the filter buffer: cap (distance, id) pairs */
    uint64_t *bi;
} tk_state;

static inline int tk_less(float a, uint64_t ai, float b, uint64_t bi)
{
    return a < b || (a == b && ai < bi);
}

static inline void tk_swap(float *d, uint64_t *id, int64_t i, int64_t j)
{
    float td = d[i];
    uint64_t ti = id[i];
    d[i] = d[j];
    id[i] = id[j];
    d[j] = td;
    id[j] = ti;
}

static void tk_insertion_sort(float *d, uint64_t *id, int64_t lo, int64_t hi)
{
    for (int64_t i = lo + 1; i < hi; i++) {
        float x = d[i];
        uint64_t xi = id[i];
        int64_t j = i;
        for (; j > lo && tk_less(x, xi, d[j - 1], id[j - 1]); j--) {
            d[j] = d[j - 1];
            id[j] = id[j - 1];
        }
        d[j] = x;
        id[j] = xi;
    }
}

/* Hoare partition of [lo, hi) around its median of three; returns j with
 * [lo, j] <= pivot <= [j + 1, hi) and lo <= j < hi - 1. Keys are unique (ids are). */
static int64_t tk_partition(float *d, uint64_t *id, int64_t lo, int64_t hi)
{
    int64_t mid = lo + (hi - lo - 1) / 2;
    if (tk_less(d[mid], id[mid], d[lo], id[lo])) tk_swap(d, id, mid, lo);
    if (tk_less(d[hi - 1], id[hi - 1], d[mid], id[mid])) {
        tk_swap(d, id, hi - 1, mid);
        if (tk_less(d[mid], id[mid], d[lo], id[lo])) tk_swap(d, id, mid, lo);
    }
    const float pd = d[mid];
    const uint64_t pi = id[mid];
    int64_t i = lo - 1, j = hi;
    for (;;) {
        do i++;
        while (tk_less(d[i], id[i], pd, pi));
        do j--;
        while (tk_less(pd, pi, d[j], id[j]));
        if (i >= j) return j;
        tk_swap(d, id, i, j);
    }
}

/* Moves the k smallest of n pairs to [0, k), the k-th smallest to k - 1. */
static void tk_select(float *d, uint64_t *id, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n;
    while (hi - lo > 16) {
        int64_t j = tk_partition(d, id, lo, hi);
        if (k - 1 <= j)
            hi = j + 1;
        else
            lo = j + 1;
    }
    tk_insertion_sort(d, id, lo, hi);
}

static void tk_sort(float *d, uint64_t *id, int64_t lo, int64_t hi)
{
    while (hi - lo > 16) {
        int64_t j = tk_partition(d, id, lo, hi);
        if (j + 1 - lo < hi - j - 1) {
            tk_sort(d, id, lo, j + 1);
            lo = j + 1;
        } else {
            tk_sort(d, id, j + 1, hi);
            hi = j + 1;
        }
    }
    tk_insertion_sort(d, id, lo, hi);
}

/* Appends row (d, id) if it can still be in the top k; returns the threshold. */
static inline float tk_offer(tk_state *st, uint64_t *cnt, float thr, float d, uint64_t id)
{
    if (!(d <= thr)) return thr;
    st->bd[*cnt] = d;
    st->bi[*cnt] = id;
    if (++*cnt == st->cap) {
        tk_select(st->bd, st->bi, (int64_t)*cnt, (int64_t)st->k);
        *cnt = st->k;
        thr = st->bd[st->k - 1];
    }
    return thr;
}

static void tk_select_rows(tk_state *st, const float *dist, const uint64_t *id, uint64_t n,
                           uint64_t *oi)
{
    uint64_t cnt = 0, i = 0;
    float thr = INFINITY;
    __m256 t = _mm256_set1_ps(thr);
    for (; i + 32 <= n; i += 32) {
        __m256 c0 = _mm256_cmp_ps(_mm256_loadu_ps(dist + i), t, _CMP_LE_OQ);
        __m256 c1 = _mm256_cmp_ps(_mm256_loadu_ps(dist + i + 8), t, _CMP_LE_OQ);
        __m256 c2 = _mm256_cmp_ps(_mm256_loadu_ps(dist + i + 16), t, _CMP_LE_OQ);
        __m256 c3 = _mm256_cmp_ps(_mm256_loadu_ps(dist + i + 24), t, _CMP_LE_OQ);
        __m256 any = _mm256_or_ps(_mm256_or_ps(c0, c1), _mm256_or_ps(c2, c3));
        if (_mm256_testz_ps(any, any)) continue;
        uint32_t m = (uint32_t)_mm256_movemask_ps(c0) | (uint32_t)_mm256_movemask_ps(c1) << 8 |
                     (uint32_t)_mm256_movemask_ps(c2) << 16 |
                     (uint32_t)_mm256_movemask_ps(c3) << 24;
        while (m) {
            uint64_t r = i + (uint64_t)__builtin_ctz(m);
            m &= m - 1;
            thr = tk_offer(st, &cnt, thr, dist[r], id[r]);
        }
        t = _mm256_set1_ps(thr);
    }
    for (; i < n; i++) thr = tk_offer(st, &cnt, thr, dist[i], id[i]);
    if (cnt > st->k) tk_select(st->bd, st->bi, (int64_t)cnt, (int64_t)st->k);
    tk_sort(st->bd, st->bi, 0, (int64_t)st->k);
    for (uint64_t j = 0; j < st->k; j++) oi[j] = st->bi[j];
}

/* Merges p sorted lists through a min-heap of their heads; writes the first k. */
static void tk_merge_lists(uint64_t k, const float *dist, const uint64_t *id, const uint64_t *off,
                           uint64_t p, uint64_t *oi)
{
    uint64_t pos[TK_MAX_P], end[TK_MAX_P];
    uint32_t heap[TK_MAX_P];
    uint64_t h = 0;
    for (uint64_t j = 0; j < p; j++) {
        pos[j] = off[j];
        end[j] = off[j + 1];
        if (pos[j] < end[j]) heap[h++] = (uint32_t)j;
    }
#define KEYLESS(a, b) tk_less(dist[pos[a]], id[pos[a]], dist[pos[b]], id[pos[b]])
    for (uint64_t i = h / 2; i-- > 0;) { /* heapify */
        uint64_t c = i;
        for (;;) {
            uint64_t l = 2 * c + 1, m = c;
            if (l < h && KEYLESS(heap[l], heap[m])) m = l;
            if (l + 1 < h && KEYLESS(heap[l + 1], heap[m])) m = l + 1;
            if (m == c) break;
            uint32_t t = heap[c];
            heap[c] = heap[m];
            heap[m] = t;
            c = m;
        }
    }
    for (uint64_t o = 0; o < k; o++) {
        uint32_t j = heap[0];
        oi[o] = id[pos[j]];
        if (++pos[j] == end[j]) heap[0] = heap[--h];
        uint64_t c = 0;
        for (;;) {
            uint64_t l = 2 * c + 1, m = c;
            if (l < h && KEYLESS(heap[l], heap[m])) m = l;
            if (l + 1 < h && KEYLESS(heap[l + 1], heap[m])) m = l + 1;
            if (m == c) break;
            uint32_t t = heap[c];
            heap[c] = heap[m];
            heap[m] = t;
            c = m;
        }
    }
#undef KEYLESS
}

static int tk_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS || cs->params[P_K] < 1 ||
        cs->params[P_K] > TK_MAX_K || cs->params[P_P] < 1 || cs->params[P_P] > TK_MAX_P) {
        snprintf(err, err_len, "topk-merge: need 0 statics, k 1..%d, p 1..%d", TK_MAX_K, TK_MAX_P);
        return KB_ERR_UNSUPPORTED;
    }
    tk_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->k = (uint64_t)cs->params[P_K];
    st->cap = 2 * st->k + 256;
    st->bd = host->alloc_aligned(host, st->cap * sizeof(float), 64);
    st->bi = host->alloc_aligned(host, st->cap * sizeof(uint64_t), 64);
    if (!st->bd || !st->bi) {
        if (st->bd) host->free_aligned(host, st->bd);
        if (st->bi) host->free_aligned(host, st->bi);
        host->free_aligned(host, st);
        snprintf(err, err_len, "out of memory for a buffer of %llu rows",
                 (unsigned long long)st->cap);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int tk_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    tk_state *st = state;
    if (n_inputs != 3 || n_outputs != 1 || inputs[1].count != inputs[0].count ||
        outputs[0].count != st->k || inputs[0].count < st->k || inputs[2].count < 2 ||
        inputs[2].count > TK_MAX_P + 1) {
        snprintf(err, err_len, "topk-merge: need dist, id, offsets and a k-long out_id, n >= k");
        return KB_ERR_INTERNAL;
    }
    const uint64_t n = inputs[0].count, p = inputs[2].count - 1, *off = inputs[2].data;
    if (off[0] != 0 || off[p] != n) {
        snprintf(err, err_len, "topk-merge: offsets must run from 0 to %llu",
                 (unsigned long long)n);
        return KB_ERR_INTERNAL;
    }
    for (uint64_t j = 0; j < p; j++)
        if (off[j + 1] < off[j]) {
            snprintf(err, err_len, "topk-merge: offsets decrease at list %llu",
                     (unsigned long long)j);
            return KB_ERR_INTERNAL;
        }
    if (p == 1)
        tk_select_rows(st, inputs[0].data, inputs[1].data, n, outputs[0].data);
    else
        tk_merge_lists(st->k, inputs[0].data, inputs[1].data, off, p, outputs[0].data);
    return KB_OK;
}

static void tk_release(void *state)
{
    tk_state *st = state;
    const kb_host *host = st->host;
    host->free_aligned(host, st->bd);
    host->free_aligned(host, st->bi);
    host->free_aligned(host, st);
}

static const kb_plugin tk_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "topk-merge",
    .name = "avx2",
    .version = "1",
    .cpu_features = KB_CPU_AVX2 | KB_CPU_AVX,
    .prepare = tk_prepare,
    .run = tk_run,
    .verify = NULL,
    .release = tk_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk_plugin;
}
