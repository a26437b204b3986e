/*
 * common.h -- what every q8-0-dot candidate shares: the shape from the case,
 * ggml's fp16 -> f32 conversion, the per-call unpacking of the vector (its
 * qs contiguous and 64-byte aligned, f32 scales; room for what a candidate
 * derives from them), a scalar block dot for the tails, and
 * the descriptor. The weights are read where the host put them, in ggml's
 * 34-byte blocks: a private repacked copy made in prepare would be read cold
 * by the host's fresh-input probe while the oracle's reads share the host's
 * pages (program.md). A candidate defines Q8_NAME and Q8_FEATURES, then
 * q8_kernel() after including it.
 */
#ifndef Q8_COMMON_H
#define Q8_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

#define QK8_0       32
#define Q8_BLOCK    34 /* block_q8_0: ggml_half d, int8_t qs[32] */
#define Q8_MAX_N    16384
#define Q8_MAX_ROWS 65536

typedef struct q8_state {
    const kb_host *host;
    uint32_t n, rows, nb, nbp; /* nbp: nb rounded up to a multiple of 16 */
    int8_t *yq;                /* per call: the vector's qs, contiguous, nbp * 32 (0 past nb) */
    uint8_t *ya;               /* per call, for a candidate that wants it: |qs|, nbp * 32 */
    float *dy;                 /* per call: the vector's scales in f32, nbp (0 past nb) */
    int32_t *yb;               /* per call, for a candidate that wants it: 64 bytes per block */
} q8_state;

static void q8_kernel(const q8_state *st, const uint8_t *w, const uint8_t *x, float *y);

/* ggml_compute_fp16_to_fp32 (ggml-impl.h): exact, so any correct conversion
 * gives these bits. */
static inline float q8_fp16_to_fp32(const uint8_t *p)
{
    const uint32_t w = (uint32_t)(p[0] | (uint32_t)p[1] << 8) << 16;
    const uint32_t sign = w & UINT32_C(0x80000000), two_w = w + w;
    uint32_t nb = (two_w >> 4) + (UINT32_C(0xE0) << 23), db = (two_w >> 17) | (UINT32_C(126) << 23);
    float nv, dv;
    memcpy(&nv, &nb, 4);
    memcpy(&dv, &db, 4);
    nv *= 0x1.0p-112f;
    dv -= 0.5f;
    uint32_t r;
    memcpy(&r, two_w < (UINT32_C(1) << 27) ? &dv : &nv, 4);
    r |= sign;
    float f;
    memcpy(&f, &r, 4);
    return f;
}

/* The int32 sum of one block's products: x a weight block, q the vector's qs. */
static inline int32_t q8_sumi(const uint8_t *x, const int8_t *q)
{
    const int8_t *a = (const int8_t *)(x + 2);
    int32_t s = 0;
    for (int j = 0; j < QK8_0; j++) s += a[j] * q[j];
    return s;
}

/* The vector of this call: its qs contiguous and its scales in f32, both
 * padded with zeros to nbp blocks. */
static inline void q8_unpack(const q8_state *st, const uint8_t *x)
{
    for (uint32_t b = 0; b < st->nb; b++) {
        memcpy(st->yq + (uint64_t)b * 32, x + (uint64_t)b * Q8_BLOCK + 2, 32);
        st->dy[b] = q8_fp16_to_fp32(x + (uint64_t)b * Q8_BLOCK);
    }
    memset(st->yq + (uint64_t)st->nb * 32, 0, (size_t)(st->nbp - st->nb) * 32);
    for (uint32_t b = st->nb; b < st->nbp; b++) st->dy[b] = 0.0f;
}

static void q8_release(void *state)
{
    q8_state *st = state;
    void *p[4] = {st->yq, st->ya, st->dy, st->yb};
    for (int i = 0; i < 4; i++)
        if (p[i]) st->host->free_aligned(st->host, p[i]);
    st->host->free_aligned(st->host, st);
}

static int q8_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (cs->n_params != 2 || n_statics != 0) {
        snprintf(err, err_len, "q8-0-dot " Q8_NAME ": prepare got the wrong case");
        return KB_ERR_INTERNAL;
    }
    const int64_t n = cs->params[0], rows = cs->params[1];
    if (n < 256 || n > Q8_MAX_N || n % QK8_0 != 0 || rows < 1 || rows > Q8_MAX_ROWS) {
        snprintf(err, err_len, "q8-0-dot " Q8_NAME ": unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    q8_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    memset(st, 0, sizeof *st);
    st->host = host;
    st->n = (uint32_t)n;
    st->rows = (uint32_t)rows;
    st->nb = st->n / QK8_0;
    st->nbp = (st->nb + 15) / 16 * 16;
    st->yq = host->alloc_aligned(host, (size_t)st->nbp * 32, 64);
    st->ya = host->alloc_aligned(host, (size_t)st->nbp * 32, 64);
    st->dy = host->alloc_aligned(host, (size_t)st->nbp * 4, 64);
    st->yb = host->alloc_aligned(host, (size_t)st->nbp * 64, 64);
    if (!st->yq || !st->ya || !st->dy || !st->yb) {
        q8_release(st);
        snprintf(err, err_len, "q8-0-dot " Q8_NAME ": out of memory");
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int q8_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const q8_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 ||
        inputs[0].count != (uint64_t)st->rows * st->nb * Q8_BLOCK ||
        inputs[1].count != (uint64_t)st->nb * Q8_BLOCK || outputs[0].count != st->rows) {
        snprintf(err, err_len, "q8-0-dot " Q8_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    q8_kernel(st, inputs[0].data, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static const kb_plugin q8_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "q8-0-dot",
    .name = Q8_NAME,
    .version = "1",
    .cpu_features = Q8_FEATURES,
    .prepare = q8_prepare,
    .run = q8_run,
    .release = q8_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &q8_plugin;
}

#endif /* Q8_COMMON_H */
