/*
 * common.h -- what every q4-0-matvec candidate shares: the shape from the
 * case, the state (the matrix as the host gives it: ggml's blocks, no
 * private copy, and a per-call scratch for the vector), ggml's fp16
 * conversion, the descriptor and the buffer checks. A candidate defines
 * MV_NAME, MV_FEATURES and mv_kernel() before including it.
 *
 * block_q4_0 (18 bytes): ggml_half d, uint8_t qs[16]; element j < 16 is
 * (qs[j] & 15) - 8, element j + 16 is (qs[j] >> 4) - 8, times d.
 * block_q8_0 (34 bytes): ggml_half d, int8_t qs[32].
 */
#ifndef MV_COMMON_H
#define MV_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

#define QK       32
#define Q4_BLOCK 18
#define Q8_BLOCK 34

typedef struct mv_state {
    const kb_host *host;
    uint32_t n, rows, nb; /* nb = n / 32 blocks a row */
    const uint8_t *w;     /* rows * nb q4_0 blocks */
    void *scratch;        /* per-call work on the vector, 128 bytes a block */
    void *priv;           /* a candidate's own copy of the matrix (MV_PRIVATE), or NULL */
} mv_state;

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y);
#ifdef MV_PRIVATE
/* Fills st->priv from st->w in prepare; 0, or non-zero out of memory. */
static int mv_private(mv_state *st);
#endif

static inline float mv_bits_f32(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

/* ggml_compute_fp16_to_fp32 (src/ggml-impl.h, the portable path): exact, so
 * any correct conversion (F16C, NEON's vcvt) gives the same bits. */
static inline float mv_fp16(const uint8_t *b)
{
    const uint32_t w = (uint32_t)(b[0] | (uint32_t)b[1] << 8) << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const float normalized = mv_bits_f32((two_w >> 4) + (UINT32_C(0xE0) << 23)) * 0x1.0p-112f;
    const float denormalized = mv_bits_f32((two_w >> 17) | (UINT32_C(126) << 23)) - 0.5f;
    const float v = two_w < (UINT32_C(1) << 27) ? denormalized : normalized;
    uint32_t r;
    memcpy(&r, &v, sizeof r);
    return mv_bits_f32(sign | r);
}

static int mv_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const int64_t *p = cs->params;
    if (cs->n_params != 2 || p[0] < QK || p[0] > 16384 || p[0] % QK != 0 || p[1] < 1 ||
        p[1] > 32768) {
        snprintf(err, err_len, "q4-0-matvec " MV_NAME ": unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    const uint32_t nb = (uint32_t)(p[0] / QK);
    if (n_statics != 1 || statics[0].count != (uint64_t)p[1] * nb * Q4_BLOCK) {
        snprintf(err, err_len, "q4-0-matvec " MV_NAME ": prepare got the wrong matrix");
        return KB_ERR_INTERNAL;
    }
    mv_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->n = (uint32_t)p[0];
    st->rows = (uint32_t)p[1];
    st->nb = nb;
    st->w = statics[0].data;
    st->scratch = host->alloc_aligned(host, (size_t)nb * 128 + 64, 64);
    if (!st->scratch) {
        host->free_aligned(host, st);
        return KB_ERR_NOMEM;
    }
    st->priv = NULL;
#ifdef MV_PRIVATE
    if (mv_private(st) != 0) {
        host->free_aligned(host, st->scratch);
        host->free_aligned(host, st);
        return KB_ERR_NOMEM;
    }
#endif
    *state = st;
    return KB_OK;
}

static int mv_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const mv_state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)st->nb * Q8_BLOCK ||
        outputs[0].count != st->rows) {
        snprintf(err, err_len, "q4-0-matvec " MV_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    mv_kernel(st, inputs[0].data, outputs[0].data);
    return KB_OK;
}

static void mv_release(void *state)
{
    mv_state *st = state;
    if (st->priv) st->host->free_aligned(st->host, st->priv);
    st->host->free_aligned(st->host, st->scratch);
    st->host->free_aligned(st->host, st);
}

static const kb_plugin mv_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "q4-0-matvec",
    .name = MV_NAME,
    .version = "1",
    .cpu_features = MV_FEATURES,
    .prepare = mv_prepare,
    .run = mv_run,
    .release = mv_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &mv_plugin;
}

#endif /* MV_COMMON_H */
