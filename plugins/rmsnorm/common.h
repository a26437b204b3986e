/*
 * common.h -- what every rmsnorm candidate shares: the shape from the case,
 * the state (the weight row, fixed for the trial), the descriptor and the
 * buffer checks. A candidate defines RN_NAME, RN_FEATURES and rn_kernel()
 * before including it; rn_kernel() normalizes st->rows rows of st->n floats
 * (n a multiple of 16) of x into y, y = x * (1 / sqrt(mean(x^2) + RN_EPS)) * w.
 */
#ifndef RN_COMMON_H
#define RN_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

#define RN_EPS 1e-5f /* oracles/rmsnorm/oracle.c: LLaMA's rms_norm_eps */

typedef struct rn_state {
    const kb_host *host;
    uint64_t rows;
    uint32_t n;
    const float *w; /* n floats, the norm's weight row */
} rn_state;

static void rn_kernel(const rn_state *st, const float *x, float *y);

static int rn_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const int64_t *p = cs->params;
    if (cs->n_params != 2 || p[0] < 1 || p[1] < 16 || p[1] > 65536 || p[1] % 16 != 0) {
        snprintf(err, err_len, "rmsnorm " RN_NAME ": unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    if (n_statics != 1 || statics[0].count != (uint64_t)p[1]) {
        snprintf(err, err_len, "rmsnorm " RN_NAME ": prepare got the wrong weight row");
        return KB_ERR_INTERNAL;
    }
    rn_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->rows = (uint64_t)p[0];
    st->n = (uint32_t)p[1];
    st->w = statics[0].data;
    *state = st;
    return KB_OK;
}

static int rn_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const rn_state *st = state;
    const uint64_t len = st->rows * st->n;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != len || outputs[0].count != len) {
        snprintf(err, err_len, "rmsnorm " RN_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    rn_kernel(st, inputs[0].data, outputs[0].data);
    return KB_OK;
}

static void rn_release(void *state)
{
    rn_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin rn_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "rmsnorm",
    .name = RN_NAME,
    .version = "1",
    .cpu_features = RN_FEATURES,
    .prepare = rn_prepare,
    .run = rn_run,
    .release = rn_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &rn_plugin;
}

#endif /* RN_COMMON_H */
