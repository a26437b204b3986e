/*
 * common.h -- what every softmax candidate shares: the shape from the case,
 * the state, the descriptor and the buffer checks. A candidate defines
 * SM_NAME, SM_FEATURES and sm_kernel() before including it; sm_kernel()
 * writes st->n rows of st->d floats (d a multiple of 16) of
 * y = softmax(x * SM_SCALE + mask), row by row.
 */
#ifndef SM_COMMON_H
#define SM_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

#define SM_SCALE 0x1.6a09e6p-4f /* oracles/softmax/oracle.c: (float)(1 / sqrt(128)) */

/* The vector exp's constants (ggml_v_expf, from Arm's optimized-routines
 * expf): 2^n by the 1.5 * 2^23 rounding trick, ln 2 in two parts
 * (Cody-Waite), a degree-5 polynomial of exp(b) - 1 on |b| <= ln2 / 2.
 * Below SM_EXP_LO the result is 0 (the true one is below 2^-126). */
#define SM_EXP_SHIFT 0x1.8p23f
#define SM_LOG2E     0x1.715476p+0f
#define SM_LN2_HI    0x1.62e4p-1f
#define SM_LN2_LO    0x1.7f7d1cp-20f
#define SM_C1        0x1.ffffecp-1f
#define SM_C2        0x1.fffdb6p-2f
#define SM_C3        0x1.555e66p-3f
#define SM_C4        0x1.573e2ep-5f
#define SM_C5        0x1.0e4020p-7f
#define SM_EXP_LO    -87.33654f /* ln(2^-126) */

/* Float partial sums of exp are added into a double every SM_BLOCK
 * elements: each lane then sums a few dozen terms at most. */
#define SM_BLOCK 1024

#ifndef SM_CONSTANTS_ONLY /* a contender with its own plugin (dnnl.c) takes the constants only */

typedef struct sm_state {
    const kb_host *host;
    uint64_t n;
    uint32_t d;
} sm_state;

static void sm_kernel(const sm_state *st, const float *x, const float *mask, float *y);

static int sm_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const int64_t *p = cs->params;
    (void)statics;
    if (cs->n_params != 2 || p[0] < 1 || p[1] < 16 || p[1] > 1048576 || p[1] % 16 != 0 ||
        n_statics != 0) {
        snprintf(err, err_len, "softmax " SM_NAME ": unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    sm_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->n = (uint64_t)p[0];
    st->d = (uint32_t)p[1];
    *state = st;
    return KB_OK;
}

static int sm_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const sm_state *st = state;
    const uint64_t len = st->n * st->d;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != len || inputs[1].count != len ||
        outputs[0].count != len) {
        snprintf(err, err_len, "softmax " SM_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    sm_kernel(st, inputs[0].data, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void sm_release(void *state)
{
    sm_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin sm_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "softmax",
    .name = SM_NAME,
    .version = "1",
    .cpu_features = SM_FEATURES,
    .prepare = sm_prepare,
    .run = sm_run,
    .release = sm_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &sm_plugin;
}

#endif /* SM_CONSTANTS_ONLY */
#endif /* SM_COMMON_H */
