/*
 * baseline.c -- q8-0-dot candidate "baseline": the oracle's kernel unchanged
 * (ggml_vec_dot_q8_0_q8_0's scalar loop, per row), the file to start from.
 * Timed against the oracle it shows the harness's noise floor.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

#define QK8_0       32
#define Q8_BLOCK    34
#define Q8_MAX_N    16384
#define Q8_MAX_ROWS 65536
#define Q8_PN       0
#define Q8_PROWS    1
#define Q8_N_PARAMS 2

static float fp32_from_bits(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static uint32_t fp32_to_bits(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

static float q8_fp16_to_fp32(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = UINT32_C(0xE0) << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized_value = fp32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = UINT32_C(126) << 23;
    const float magic_bias = 0.5f;
    const float denormalized_value = fp32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = UINT32_C(1) << 27;
    const uint32_t result = sign | (two_w < denormalized_cutoff ? fp32_to_bits(denormalized_value)
                                                                : fp32_to_bits(normalized_value));
    return fp32_from_bits(result);
}

static uint16_t q8_half(const uint8_t *b)
{
    return (uint16_t)(b[0] | (uint16_t)b[1] << 8);
}

/* ggml_vec_dot_q8_0_q8_0, the scalar loop: x one row, y the vector. */
static float q8_vec_dot(uint32_t n, const uint8_t *x, const uint8_t *y)
{
    const int nb = (int)(n / QK8_0);
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        const uint8_t *xb = x + (uint64_t)ib * Q8_BLOCK, *yb = y + (uint64_t)ib * Q8_BLOCK;
        const int8_t *xq = (const int8_t *)(xb + 2), *yq = (const int8_t *)(yb + 2);
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += xq[j] * yq[j];
        sumf += sumi * (q8_fp16_to_fp32(q8_half(xb)) * q8_fp16_to_fp32(q8_half(yb)));
    }
    return sumf;
}

typedef struct q8_state {
    const kb_host *host;
    uint32_t n, rows;
} q8_state;

static int q8_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != Q8_N_PARAMS || n_statics != 0) {
        snprintf(err, err_len, "q8-0-dot: prepare got the wrong case");
        return KB_ERR_INTERNAL;
    }
    const int64_t n = cs->params[Q8_PN], rows = cs->params[Q8_PROWS];
    (void)statics;
    if (n < 256 || n > Q8_MAX_N || n % QK8_0 != 0 || rows < 1 || rows > Q8_MAX_ROWS) {
        snprintf(err, err_len, "q8-0-dot: unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    q8_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->n = (uint32_t)n;
    st->rows = (uint32_t)rows;
    *state = st;
    return KB_OK;
}

static int q8_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const q8_state *st = state;
    const uint64_t row_bytes = (uint64_t)(st->n / QK8_0) * Q8_BLOCK;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->rows * row_bytes ||
        inputs[1].count != row_bytes || outputs[0].count != st->rows) {
        snprintf(err, err_len, "q8-0-dot: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    float *y = outputs[0].data;
    for (uint32_t i = 0; i < st->rows; i++)
        y[i] = q8_vec_dot(st->n, (const uint8_t *)inputs[0].data + i * row_bytes, inputs[1].data);
    return KB_OK;
}

static void q8_release(void *state)
{
    q8_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin q8_baseline = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "q8-0-dot",
    .name = "baseline",
    .version = "1",
    .prepare = q8_prepare,
    .run = q8_run,
    .release = q8_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &q8_baseline;
}
