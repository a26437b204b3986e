/*
 * neon.c -- ivf-partition for NEON (AArch64 Advanced SIMD), bit-exact with the oracle.
 *
 * portable.c's plan (centroids transposed into blocks of W = 8 in prepare, blocks outside
 * and queries inside, each query's nprobe best kept sorted behind a threshold) with the
 * block's distances in two 4-lane registers a row: the oracle's 16 lanes become 16
 * vertical sums and its lane-order total 16 vertical adds, the same roundings in the
 * same order. Four queries share each load of the block, and one vminvq against each
 * query's threshold drops a block's 8 distances at once.
 */
#include <arm_neon.h>
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
 * inlined) to the W = 8 centroids of block b (two registers a row), offered to their
 * lists. Two of the 16 lanes run at once per query: independent sums, added to the
 * total in lane order. Separate vmulq and vaddq: an fmla would round once where the
 * oracle rounds twice. */
static inline __attribute__((always_inline)) void ivf__blockn(ivf__state *st, const float *blk,
                                                              const float *qs, uint32_t *out,
                                                              uint32_t i0, int nq, uint32_t b,
                                                              uint32_t lanes)
{
    const uint32_t d = st->d, np = st->nprobe;
    const float *q[4];
    float32x4_t lo[4], hi[4];
    for (int k = 0; k < nq; k++) {
        q[k] = qs + (size_t)(i0 + (uint32_t)k) * d;
        lo[k] = hi[k] = vdupq_n_f32(0.0f);
    }
    for (uint32_t i = 0; i < IVF_LANES; i += 2) {
        float32x4_t a0l[4], a0h[4], a1l[4], a1h[4];
        for (int k = 0; k < nq; k++) a0l[k] = a0h[k] = a1l[k] = a1h[k] = vdupq_n_f32(0.0f);
        for (uint32_t t = i; t < d; t += IVF_LANES) {
            const float *r0 = blk + (size_t)t * W, *r1 = r0 + W;
            const float32x4_t r0l = vld1q_f32(r0), r0h = vld1q_f32(r0 + 4);
            const float32x4_t r1l = vld1q_f32(r1), r1h = vld1q_f32(r1 + 4);
            for (int k = 0; k < nq; k++) {
                const float32x4_t q0 = vdupq_n_f32(q[k][t]), q1 = vdupq_n_f32(q[k][t + 1]);
                const float32x4_t x0l = vsubq_f32(q0, r0l), x0h = vsubq_f32(q0, r0h);
                const float32x4_t x1l = vsubq_f32(q1, r1l), x1h = vsubq_f32(q1, r1h);
                a0l[k] = vaddq_f32(a0l[k], vmulq_f32(x0l, x0l));
                a0h[k] = vaddq_f32(a0h[k], vmulq_f32(x0h, x0h));
                a1l[k] = vaddq_f32(a1l[k], vmulq_f32(x1l, x1l));
                a1h[k] = vaddq_f32(a1h[k], vmulq_f32(x1h, x1h));
            }
        }
        for (int k = 0; k < nq; k++) {
            lo[k] = vaddq_f32(vaddq_f32(lo[k], a0l[k]), a1l[k]);
            hi[k] = vaddq_f32(vaddq_f32(hi[k], a0h[k]), a1h[k]);
        }
    }
    for (int k = 0; k < nq; k++) {
        float *bd = st->bd + (size_t)(i0 + (uint32_t)k) * np;
        uint32_t *id = out + (size_t)(i0 + (uint32_t)k) * np, *n = &st->n[i0 + (uint32_t)k];
        const float thr = *n < np ? INFINITY : bd[np - 1];
        /* padding lanes hold real sums too, so a block whose minimum passes is scanned
         * lane by lane with the lane count */
        if (!(vminvq_f32(vminq_f32(lo[k], hi[k])) < thr)) continue;
        float dist[W];
        vst1q_f32(dist, lo[k]);
        vst1q_f32(dist + 4, hi[k]);
        for (uint32_t w = 0; w < lanes; w++)
            if (dist[w] < thr) ivf__offer(bd, id, n, np, dist[w], b * W + w);
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
    .name = "neon",
    .version = "1",
    .cpu_features = KB_CPU_NEON,
    .prepare = ivf__prepare,
    .run = ivf__run,
    .verify = NULL,
    .release = ivf__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ivf__plugin;
}
