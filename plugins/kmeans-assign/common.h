/*
 * common.h -- what every kmeans-assign candidate shares: the shape from
 * the case, the state (the centroids and their squared norms, computed once
 * in prepare from the static input), the descriptor and the buffer checks.
 * A candidate defines KM_NAME, KM_FEATURES and km_kernel() before
 * including it.
 */
#ifndef KM_COMMON_H
#define KM_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

typedef struct km_state {
    const kb_host *host;
    uint64_t n;
    uint32_t k, d;
    const float *cent; /* k rows of d floats */
    float *norms;      /* |c_j|^2, k of them */
} km_state;

static void km_kernel(const km_state *st, const float *pts, uint32_t *idx, float *dist);

static int km_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const int64_t *p = cs->params;
    if (cs->n_params != 3 || p[0] < 1 || p[1] < 1 || p[1] > 1 << 20 || p[2] < 16 || p[2] > 4096 ||
        p[2] % 16 != 0) {
        snprintf(err, err_len, "kmeans-assign " KM_NAME ": unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    if (n_statics != 1 || statics[0].count != (uint64_t)p[1] * (uint64_t)p[2]) {
        snprintf(err, err_len, "kmeans-assign " KM_NAME ": prepare got the wrong centroids");
        return KB_ERR_INTERNAL;
    }
    km_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->n = (uint64_t)p[0];
    st->k = (uint32_t)p[1];
    st->d = (uint32_t)p[2];
    st->cent = statics[0].data;
    st->norms = host->alloc_aligned(host, sizeof(float) * st->k, 64);
    if (!st->norms) {
        host->free_aligned(host, st);
        return KB_ERR_NOMEM;
    }
    for (uint32_t j = 0; j < st->k; j++) {
        const float *c = st->cent + (uint64_t)j * st->d;
        float acc[8] = {0};
        for (uint32_t t = 0; t < st->d; t += 8)
            for (int l = 0; l < 8; l++) acc[l] += c[t + l] * c[t + l];
        st->norms[j] =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
    *state = st;
    return KB_OK;
}

static int km_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const km_state *st = state;
    if (n_inputs != 1 || n_outputs != 2 || inputs[0].count != st->n * st->d ||
        outputs[0].count != st->n || outputs[1].count != st->n) {
        snprintf(err, err_len, "kmeans-assign " KM_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    km_kernel(st, inputs[0].data, outputs[0].data, outputs[1].data);
    return KB_OK;
}

static void km_release(void *state)
{
    km_state *st = state;
    st->host->free_aligned(st->host, st->norms);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin km_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "kmeans-assign",
    .name = KM_NAME,
    .version = "1",
    .cpu_features = KM_FEATURES,
    .prepare = km_prepare,
    .run = km_run,
    .release = km_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &km_plugin;
}

#endif /* KM_COMMON_H */
