/*
 * baseline.c -- ivf-partition: the oracle's kernel, unchanged, as a candidate (what an agent
 * starts from). For each query, the 16-lane L2 distance to every centroid (lance-linalg
 * l2_scalar::<f32, f32, 16>), then the nprobe smallest (distance, index) keys by insertion
 * into a sorted list. Timed against the oracle it shows the harness's noise floor.
 */
#include <stdio.h>

#include "kbench.h"

enum { P_C, P_D, P_NPROBE, P_Q, N_PARAMS };
#define IVF_LANES      16
#define IVF_MAX_C      (1 << 20)
#define IVF_MAX_D      4096
#define IVF_MAX_NPROBE 1024
#define IVF_MAX_Q      4096

/* The oracle's shape rule, for prepare. */
static int ivf__shape_ok(const int64_t *p, char *err, size_t err_len)
{
    if (p[P_C] < 1 || p[P_C] > IVF_MAX_C || p[P_D] < IVF_LANES || p[P_D] > IVF_MAX_D ||
        p[P_D] % IVF_LANES != 0 || p[P_NPROBE] < 1 || p[P_NPROBE] > IVF_MAX_NPROBE ||
        p[P_NPROBE] > p[P_C] || p[P_Q] < 1 || p[P_Q] > IVF_MAX_Q) {
        snprintf(err, err_len,
                 "ivf-partition: bad shape (c 1..%d, d a multiple of 16 in 16..%d, "
                 "nprobe 1..min(c, %d), q 1..%d)",
                 IVF_MAX_C, IVF_MAX_D, IVF_MAX_NPROBE, IVF_MAX_Q);
        return -1;
    }
    return 0;
}

typedef struct ivf__state {
    const kb_host *host;
    uint32_t c, d, nprobe, q;
    const float *cent;
    float *dist; /* c: one query's distances */
    float *bd;   /* nprobe: the distances of the best so far */
} ivf__state;

/* lance-linalg l2_scalar::<f32, f32, 16> for d a multiple of 16. */
static float ivf__l2(const float *x, const float *y, uint32_t d)
{
    float sums[IVF_LANES] = {0};
    for (uint32_t k = 0; k < d; k += IVF_LANES)
        for (uint32_t i = 0; i < IVF_LANES; i++) {
            float diff = x[k + i] - y[k + i];
            sums[i] += diff * diff;
        }
    float s = 0.0f;
    for (uint32_t i = 0; i < IVF_LANES; i++) s += sums[i];
    return 0.0f + s; /* the empty remainder's sum, then the lanes' */
}

/* The nprobe smallest (distance, index) keys of dist[0..c), ascending, into id. */
static void ivf__select(const float *dist, uint32_t c, uint32_t np, float *bd, uint32_t *id)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < c; j++) {
        /* j is larger than every index kept, so it goes after equal distances */
        if (n == np && !(dist[j] < bd[n - 1])) continue;
        uint32_t at = n < np ? n++ : n - 1;
        while (at > 0 && dist[j] < bd[at - 1]) {
            bd[at] = bd[at - 1];
            id[at] = id[at - 1];
            at--;
        }
        bd[at] = dist[j];
        id[at] = j;
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
    st->host = host;
    st->c = (uint32_t)cs->params[P_C];
    st->d = (uint32_t)cs->params[P_D];
    st->nprobe = (uint32_t)cs->params[P_NPROBE];
    st->q = (uint32_t)cs->params[P_Q];
    st->cent = statics[0].data;
    st->dist = host->alloc_aligned(host, (size_t)st->c * sizeof(float), 64);
    st->bd = host->alloc_aligned(host, (size_t)st->nprobe * sizeof(float), 64);
    if (!st->dist || !st->bd) {
        if (st->dist) host->free_aligned(host, st->dist);
        if (st->bd) host->free_aligned(host, st->bd);
        host->free_aligned(host, st);
        snprintf(err, err_len, "ivf-partition: out of memory for %u distances", st->c);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int ivf__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                    uint32_t n_outputs, char *err, size_t err_len)
{
    const ivf__state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)st->q * st->d ||
        outputs[0].count != (uint64_t)st->q * st->nprobe) {
        snprintf(err, err_len, "ivf-partition: need queries [q][d] and out_id [q][nprobe]");
        return KB_ERR_INTERNAL;
    }
    const float *qs = inputs[0].data;
    uint32_t *out = outputs[0].data;
    for (uint32_t i = 0; i < st->q; i++) {
        const float *qi = qs + (size_t)i * st->d;
        for (uint32_t j = 0; j < st->c; j++)
            st->dist[j] = ivf__l2(qi, st->cent + (size_t)j * st->d, st->d);
        ivf__select(st->dist, st->c, st->nprobe, st->bd, out + (size_t)i * st->nprobe);
    }
    return KB_OK;
}

static void ivf__release(void *state)
{
    ivf__state *st = state;
    st->host->free_aligned(st->host, st->dist);
    st->host->free_aligned(st->host, st->bd);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin ivf__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "ivf-partition",
    .name = "baseline",
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
