/*
 * common.h -- what every q8-0-dot candidate shares: the shape from the case,
 * ggml's fp16 -> f32 conversion, the repacking of q8_0 blocks that prepare
 * does once for the static matrix and run does for the per-call vector, and
 * the descriptor. A candidate defines Q8_NAME, Q8_FEATURES and Q8_GROUP (the
 * blocks per group of its layout, see q8_interleave), then q8_pack() and
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
#define Q8_MAX_MEM  8

typedef struct q8_state {
    const kb_host *host;
    uint32_t n, rows, nb, nbp; /* nbp: nb rounded up to a whole group */
    const uint8_t *w;          /* the static matrix, rows * nb blocks */
    uint8_t *wq;               /* the candidate's layout of the weights' qs */
    float *dx;                 /* the weights' scales in f32, rows * nbp (0 in padding) */
    uint8_t *yq, *ya;          /* per call: the vector's qs in the same layout, and |qs| */
    float *dy;                 /* per call: the vector's scales, nbp */
    int32_t *ys;               /* per call: per block, the sum of the vector's qs */
    void *mem[Q8_MAX_MEM];
    uint32_t n_mem;
} q8_state;

static int q8_pack(q8_state *st);
static void q8_kernel(const q8_state *st, const uint8_t *x, float *y);

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

static inline void *q8_alloc(q8_state *st, size_t bytes)
{
    if (st->n_mem == Q8_MAX_MEM) return NULL;
    void *p = st->host->alloc_aligned(st->host, bytes ? bytes : 64, 64);
    if (p) st->mem[st->n_mem++] = p;
    return p;
}

/* The qs of nb blocks (34-byte q8_0, from src) in groups of g blocks: group
 * k holds 8 slices of 4 * g bytes; slice j is bytes 4j..4j+3 of each of its g
 * blocks in turn, so a vector of 4 * g bytes gives each 32-bit lane one
 * block, and 8 dot-product steps leave each lane the sum of its block. Each
 * byte is XORed with `flip`; lanes past nb hold `pad`. */
static inline void q8_interleave(const uint8_t *src, uint32_t nb, uint32_t g, uint8_t flip, uint8_t pad,
                          uint8_t *dst)
{
    const uint32_t nbp = (nb + g - 1) / g * g;
    for (uint32_t b = 0; b < nbp; b++) {
        uint8_t *o = dst + (uint64_t)(b / g) * 32 * g + (b % g) * 4;
        for (uint32_t j = 0; j < 8; j++)
            for (uint32_t t = 0; t < 4; t++)
                o[j * 4 * g + t] = b < nb ? (uint8_t)(src[(uint64_t)b * Q8_BLOCK + 2 + 4 * j + t] ^ flip)
                                          : pad;
    }
}

/* The scales of nb blocks in f32, padded with 0 to nbp. */
static inline void q8_scales(const uint8_t *src, uint32_t nb, uint32_t nbp, float *dst)
{
    for (uint32_t b = 0; b < nbp; b++) dst[b] = b < nb ? q8_fp16_to_fp32(src + (uint64_t)b * Q8_BLOCK) : 0.0f;
}

static int q8_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != 2 || n_statics != 1) {
        snprintf(err, err_len, "q8-0-dot " Q8_NAME ": prepare got the wrong case");
        return KB_ERR_INTERNAL;
    }
    const int64_t n = cs->params[0], rows = cs->params[1];
    if (n < 256 || n > Q8_MAX_N || n % QK8_0 != 0 || rows < 1 || rows > Q8_MAX_ROWS ||
        statics[0].count != (uint64_t)rows * (uint64_t)(n / QK8_0) * Q8_BLOCK) {
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
    st->nbp = (st->nb + Q8_GROUP - 1) / Q8_GROUP * Q8_GROUP;
    st->w = statics[0].data;
    if (q8_pack(st) != 0) {
        for (uint32_t i = 0; i < st->n_mem; i++) host->free_aligned(host, st->mem[i]);
        host->free_aligned(host, st);
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
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)st->nb * Q8_BLOCK ||
        outputs[0].count != st->rows) {
        snprintf(err, err_len, "q8-0-dot " Q8_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    q8_kernel(st, inputs[0].data, outputs[0].data);
    return KB_OK;
}

static void q8_release(void *state)
{
    q8_state *st = state;
    for (uint32_t i = 0; i < st->n_mem; i++) st->host->free_aligned(st->host, st->mem[i]);
    st->host->free_aligned(st->host, st);
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
