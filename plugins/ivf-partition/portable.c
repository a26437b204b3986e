/*
 * portable.c -- ivf-partition in plain C, bit-exact with the oracle.
 *
 * Three changes to the oracle's kernel, none to its arithmetic:
 *  - prepare transposes the centroids into blocks of W = 8, [block][t][W], so one step
 *    of the inner loop is the same dimension of 8 centroids: 8 independent 16-lane
 *    sums, which the compiler keeps in vector registers. Lane i of the oracle's
 *    l2_scalar (t = i, i + 16, ...) is summed on its own and the 16 lanes are added to
 *    the total in lane order, exactly the oracle's rounding sequence;
 *  - the loop runs centroid blocks outside and queries inside, so a block is read from
 *    memory once per call rather than once per query (65536 x 768 centroids are 192 MiB);
 *  - selection keeps each query's nprobe best sorted with the worst as a threshold: a
 *    distance that is not below it is dropped at one compare. Centroids arrive in index
 *    order, so a newcomer goes after equal distances: the tie rule holds by construction.
 */
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

/* The 16-lane L2 distances of one query to the W centroids of a block. */
static void ivf__block(const float *blk, const float *q, uint32_t d, float *out)
{
    float tot[W] = {0};
    for (uint32_t i = 0; i < IVF_LANES; i++) {
        float acc[W] = {0};
        for (uint32_t t = i; t < d; t += IVF_LANES) {
            const float *row = blk + (size_t)t * W;
            const float qt = q[t];
            for (uint32_t w = 0; w < W; w++) {
                float diff = qt - row[w];
                acc[w] += diff * diff;
            }
        }
        for (uint32_t w = 0; w < W; w++) tot[w] += acc[w];
    }
    memcpy(out, tot, sizeof tot);
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
    const uint32_t np = st->nprobe, d = st->d;
    memset(st->n, 0, (size_t)st->q * sizeof(uint32_t));
    for (uint32_t b = 0; b < st->nblk; b++) {
        const float *blk = st->ct + (size_t)b * d * W;
        const uint32_t lanes = st->c - b * W < W ? st->c - b * W : W;
        for (uint32_t i = 0; i < st->q; i++) {
            float dist[W];
            float *bd = st->bd + (size_t)i * np;
            uint32_t *id = out + (size_t)i * np, *n = &st->n[i];
            ivf__block(blk, qs + (size_t)i * d, d, dist);
            const float thr = *n < np ? INFINITY : bd[np - 1];
            for (uint32_t w = 0; w < lanes; w++)
                if (dist[w] < thr) ivf__offer(bd, id, n, np, dist[w], b * W + w);
        }
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
    .name = "portable",
    .version = "1",
    .cpu_features = 0,
    .prepare = ivf__prepare,
    .run = ivf__run,
    .verify = NULL,
    .release = ivf__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ivf__plugin;
}
