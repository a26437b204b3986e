/*
 * avx2.c -- ivf-partition for AVX2 (8 centroids a register), bit-exact with the oracle.
 *
 * portable.c's plan (centroids transposed into blocks of W in prepare, blocks outside and
 * queries inside, each query's nprobe best kept sorted behind a threshold) with the
 * block's distances in vector registers: one register is the same dimension of W
 * centroids, so the oracle's 16 lanes become 16 vertical sums per register and its
 * lane-order total is 16 vertical adds, the same roundings in the same order. Four
 * queries share each load of the block, and a register compare against each query's
 * threshold drops a block's W distances at once.
 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_C, P_D, P_NPROBE, P_Q, N_PARAMS };
#define IVF_LANES      16
#define IVF_MAX_C      (1 << 20)
#define IVF_MAX_D      4096
#define IVF_MAX_NPROBE 1024
#define IVF_MAX_Q      4096
#define W              8

typedef struct ivf__state {
    const kb_host *host;
    uint32_t c, d, nprobe, q, nblk;
    float *ct;   /* [nblk][d][W]; lanes past c hold 0 and are never offered */
    float *bd;   /* [q][nprobe]: each query's best distances, ascending */
    uint32_t *n; /* [q]: how many each holds */
} ivf__state;

static int ivf__shape_ok(const int64_t *p, char *err, size_t err_len)
{
    if (p[P_C] < 1 || p[P_C] > IVF_MAX_C || p[P_D] < IVF_LANES || p[P_D] > IVF_MAX_D ||
        p[P_D] % IVF_LANES != 0 || p[P_NPROBE] < 1 || p[P_NPROBE] > IVF_MAX_NPROBE ||
        p[P_NPROBE] > p[P_C] || p[P_Q] < 1 || p[P_Q] > IVF_MAX_Q) {
        snprintf(err, err_len,
                 "ivf-partition: bad shape (c 1..%d, d a multiple of 16 in 16..%d, nprobe "
                 "1..min(c, %d), q 1..%d)",
                 IVF_MAX_C, IVF_MAX_D, IVF_MAX_NPROBE, IVF_MAX_Q);
        return -1;
    }
    return 0;
}

/* Offers centroid j at distance x to a query's sorted best list (bd, id) of *n <= np. */
static void ivf__offer(float *bd, uint32_t *id, uint32_t *n, uint32_t np, float x, uint32_t j)
{
    if (*n == np && !(x < bd[np - 1])) return;
    uint32_t at = *n < np ? (*n)++ : np - 1;
    while (at > 0 && x < bd[at - 1]) {
        bd[at] = bd[at - 1];
        id[at] = id[at - 1];
        at--;
    }
    bd[at] = x;
    id[at] = j;
}

/* The 16-lane L2 distances of queries i0 .. i0 + nq - 1 (nq <= 4, a constant once
 * inlined) to the W centroids of block b, offered to their lists. Two of the 16 lanes
 * run at once per query: independent sums, added to the total in lane order, so 2 * nq
 * add chains overlap their latency. Separate mul and add: an FMA would round once
 * where the oracle rounds twice. */
static inline __attribute__((always_inline)) void ivf__blockn(ivf__state *st, const float *blk,
                                                              const float *qs, uint32_t *out,
                                                              uint32_t i0, int nq, uint32_t b,
                                                              uint32_t lanes)
{
    const uint32_t d = st->d, np = st->nprobe;
    const float *q[4];
    __m256 tot[4];
    for (int k = 0; k < nq; k++) {
        q[k] = qs + (size_t)(i0 + (uint32_t)k) * d;
        tot[k] = _mm256_setzero_ps();
    }
    for (uint32_t i = 0; i < IVF_LANES; i += 2) {
        __m256 a0[4], a1[4];
        for (int k = 0; k < nq; k++) a0[k] = a1[k] = _mm256_setzero_ps();
        for (uint32_t t = i; t < d; t += IVF_LANES) {
            const __m256 r0 = _mm256_load_ps(blk + (size_t)t * W);
            const __m256 r1 = _mm256_load_ps(blk + (size_t)(t + 1) * W);
            for (int k = 0; k < nq; k++) {
                const __m256 x0 = _mm256_sub_ps(_mm256_broadcast_ss(q[k] + t), r0);
                const __m256 x1 = _mm256_sub_ps(_mm256_broadcast_ss(q[k] + t + 1), r1);
                a0[k] = _mm256_add_ps(a0[k], _mm256_mul_ps(x0, x0));
                a1[k] = _mm256_add_ps(a1[k], _mm256_mul_ps(x1, x1));
            }
        }
        for (int k = 0; k < nq; k++) {
            tot[k] = _mm256_add_ps(tot[k], a0[k]);
            tot[k] = _mm256_add_ps(tot[k], a1[k]);
        }
    }
    for (int k = 0; k < nq; k++) {
        float *bd = st->bd + (size_t)(i0 + (uint32_t)k) * np;
        uint32_t *id = out + (size_t)(i0 + (uint32_t)k) * np, *n = &st->n[i0 + (uint32_t)k];
        const float thr = *n < np ? INFINITY : bd[np - 1];
        uint32_t m =
            (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(tot[k], _mm256_set1_ps(thr), _CMP_LT_OQ)) &
            ((1u << lanes) - 1);
        if (!m) continue;
        float dist[W];
        _mm256_storeu_ps(dist, tot[k]);
        for (; m; m &= m - 1) {
            const uint32_t w = (uint32_t)__builtin_ctz(m);
            ivf__offer(bd, id, n, np, dist[w], b * W + w);
        }
    }
}

static int ivf__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                        uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (n_statics != 1 || cs->n_params != N_PARAMS) {
        snprintf(err, err_len, "ivf-partition: expected 1 static and %d params", N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    if (ivf__shape_ok(cs->params, err, err_len) != 0) return KB_ERR_UNSUPPORTED;
    ivf__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "ivf-partition: out of memory for the state");
        return KB_ERR_NOMEM;
    }
    memset(st, 0, sizeof *st);
    st->host = host;
    st->c = (uint32_t)cs->params[P_C];
    st->d = (uint32_t)cs->params[P_D];
    st->nprobe = (uint32_t)cs->params[P_NPROBE];
    st->q = (uint32_t)cs->params[P_Q];
    st->nblk = (st->c + W - 1) / W;
    st->ct = host->alloc_aligned(host, (size_t)st->nblk * st->d * W * sizeof(float), 64);
    st->bd = host->alloc_aligned(host, (size_t)st->q * st->nprobe * sizeof(float), 64);
    st->n = host->alloc_aligned(host, (size_t)st->q * sizeof(uint32_t), 64);
    if (!st->ct || !st->bd || !st->n) {
        if (st->ct) host->free_aligned(host, st->ct);
        if (st->bd) host->free_aligned(host, st->bd);
        if (st->n) host->free_aligned(host, st->n);
        host->free_aligned(host, st);
        snprintf(err, err_len, "ivf-partition: out of memory for %u transposed centroids",
                 cs->params[P_C] > 0 ? (uint32_t)cs->params[P_C] : 0);
        return KB_ERR_NOMEM;
    }
    const float *cent = statics[0].data;
    /* centroid rows read in order, each scattered down its lane of the block */
    for (uint32_t b = 0; b < st->nblk; b++)
        for (uint32_t w = 0; w < W; w++) {
            const uint32_t j = b * W + w;
            float *lane = st->ct + (size_t)b * st->d * W + w;
            for (uint32_t t = 0; t < st->d; t++)
                lane[(size_t)t * W] = j < st->c ? cent[(size_t)j * st->d + t] : 0.0f;
        }
    *state = st;
    return KB_OK;
}

static int ivf__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                    uint32_t n_outputs, char *err, size_t err_len)
{
    ivf__state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)st->q * st->d ||
        outputs[0].count != (uint64_t)st->q * st->nprobe) {
        snprintf(err, err_len, "ivf-partition: need queries [q][d] and out_id [q][nprobe]");
        return KB_ERR_INTERNAL;
    }
    const float *qs = inputs[0].data;
    uint32_t *out = outputs[0].data;
    const uint32_t d = st->d;
    memset(st->n, 0, (size_t)st->q * sizeof(uint32_t));
    for (uint32_t b = 0; b < st->nblk; b++) {
        const float *blk = st->ct + (size_t)b * d * W;
        const uint32_t lanes = st->c - b * W < W ? st->c - b * W : W;
        uint32_t i = 0;
        for (; i + 4 <= st->q; i += 4) ivf__blockn(st, blk, qs, out, i, 4, b, lanes);
        for (; i < st->q; i++) ivf__blockn(st, blk, qs, out, i, 1, b, lanes);
    }
    return KB_OK;
}

static void ivf__release(void *state)
{
    ivf__state *st = state;
    st->host->free_aligned(st->host, st->ct);
    st->host->free_aligned(st->host, st->bd);
    st->host->free_aligned(st->host, st->n);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin ivf__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "ivf-partition",
    .name = "avx2",
    .version = "1",
    .cpu_features = KB_CPU_AVX2 | KB_CPU_AVX,
    .prepare = ivf__prepare,
    .run = ivf__run,
    .verify = NULL,
    .release = ivf__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ivf__plugin;
}
