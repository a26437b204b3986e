/*
 * common.h -- what the optimized attn-decode candidates share: the shape,
 * the state and its layout (built once in prepare from the static cache),
 * the three passes of a call, and the descriptor. A candidate defines
 * AD_NAME, AD_FEATURES and the four kernels below before including it.
 *
 * The layout: keys in blocks of AD_BLK, transposed (kt[b][t][j] = K[b *
 * AD_BLK + j][t], the tail block zero-padded), so that the scores of a
 * block are AD_BLK independent sums over t that vectorize without a
 * horizontal reduction; values as floats, row-major. An f16 cache is
 * converted once, exactly (GGML_FP16_TO_FP32), unless the candidate
 * defines AD_KEEP_F16: then an f16 cache stays f16 (kt16, the same blocks
 * in halves, and v16, the static buffer itself) and the kernels widen it
 * as they load, reading half the bytes. A call is the softmax in
 * three passes instead of ggml's one online pass: all scores and their
 * maximum M, then p_i = exp(s_i - M) and their sum S, then o = sum p_i V_i
 * / S. The last pass skips a value row whose p_i < 2^-24 / n: all skipped
 * rows together weigh less than 2^-24 of S (S >= 1, the maximum's own
 * term), below float's resolution of the sum, and on a peaked softmax that
 * skips most of V.
 */
#ifndef AD_COMMON_H
#define AD_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

#define AD_BLK 16

typedef struct ad_state {
    const kb_host *host;
    uint32_t n, d, kv, nb; /* nb blocks of AD_BLK keys */
    float *kt;             /* nb * d * AD_BLK, transposed blocks */
    const float *v;        /* n * d */
    uint16_t *kt16;        /* AD_KEEP_F16 and kv = 16: kt in halves (kt, v unset) */
    const uint16_t *v16;   /* AD_KEEP_F16 and kv = 16: the static V */
    float *vown;           /* v when converted from f16, else NULL */
    float *p;              /* nb * AD_BLK scores, then weights */
    float *qs;             /* d: q (rounded to f16 for kv = 16) times scale */
} ad_state;

/* The kernels a candidate supplies. ad_scores: p[i] = dot(qs, K_i) for
 * every key of every block (the padded ones too); ad_max: the largest of
 * p[0..n); ad_expsum: p[i] = exp(p[i] - m) for i < n, their sum; ad_vacc:
 * o = sum over i < n with p[i] >= thr of p[i] V_i. */
static void ad_scores(const ad_state *st, const float *qs, float *p);
static float ad_max(const float *p, uint32_t n);
static float ad_expsum(float *p, uint32_t n, float m);
static void ad_vacc(const ad_state *st, const float *p, float thr, float *o);

/* GGML_FP16_TO_FP32 and GGML_FP32_TO_FP16 (ggml-impl.h, after
 * Maratyszcza/FP16): exact, and round to nearest even. */
static inline float ad_f32_from_bits(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static inline uint32_t ad_f32_bits(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

static inline float ad_fp16_to_fp32(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const float normalized = ad_f32_from_bits((two_w >> 4) + (UINT32_C(0xE0) << 23)) * 0x1.0p-112f;
    const float denormalized = ad_f32_from_bits((two_w >> 17) | (UINT32_C(126) << 23)) - 0.5f;
    return ad_f32_from_bits(
        sign | (two_w < (UINT32_C(1) << 27) ? ad_f32_bits(denormalized) : ad_f32_bits(normalized)));
}

static inline uint16_t ad_fp32_to_fp16(float f)
{
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = ad_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & UINT32_C(0x80000000);
    uint32_t bias = shl1_w & UINT32_C(0xFF000000);
    if (bias < UINT32_C(0x71000000)) bias = UINT32_C(0x71000000);
    base = ad_f32_from_bits((bias >> 1) + UINT32_C(0x07800000)) + base;
    const uint32_t bits = ad_f32_bits(base);
    const uint32_t nonsign = ((bits >> 13) & UINT32_C(0x7C00)) + (bits & UINT32_C(0x0FFF));
    return (uint16_t)((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign));
}

static inline float ad_elem(const void *buf, uint32_t kv, uint64_t i)
{
    return kv == 16 ? ad_fp16_to_fp32(((const uint16_t *)buf)[i]) : ((const float *)buf)[i];
}

static void ad_free(ad_state *st)
{
    const kb_host *h = st->host;
    if (st->kt) h->free_aligned(h, st->kt);
    if (st->kt16) h->free_aligned(h, st->kt16);
    if (st->vown) h->free_aligned(h, st->vown);
    if (st->p) h->free_aligned(h, st->p);
    if (st->qs) h->free_aligned(h, st->qs);
    h->free_aligned(h, st);
}

#ifdef AD_KEEP_F16
#define AD_F16_KEPT(st) ((st)->kv == 16)
#else
#define AD_F16_KEPT(st) 0
#endif

static int ad_layout(ad_state *st, const void *k, const void *v)
{
    const kb_host *h = st->host;
    const uint64_t nd = (uint64_t)st->n * st->d, padded = (uint64_t)st->nb * AD_BLK;
    const int keep = AD_F16_KEPT(st);
    st->p = h->alloc_aligned(h, padded * sizeof(float), 64);
    st->qs = h->alloc_aligned(h, st->d * sizeof(float), 64);
    if (keep)
        st->kt16 = h->alloc_aligned(h, padded * st->d * sizeof(uint16_t), 64);
    else
        st->kt = h->alloc_aligned(h, padded * st->d * sizeof(float), 64);
    if (st->kv == 16 && !keep) st->vown = h->alloc_aligned(h, nd * sizeof(float), 64);
    if (!st->p || !st->qs || (keep ? !st->kt16 : !st->kt) || (st->kv == 16 && !keep && !st->vown))
        return -1;
    for (uint64_t i = 0; i < padded; i++)
        for (uint32_t t = 0; t < st->d; t++) {
            const uint64_t at = (i / AD_BLK * st->d + t) * AD_BLK + i % AD_BLK;
            if (keep)
                st->kt16[at] = i < st->n ? ((const uint16_t *)k)[i * st->d + t] : 0;
            else
                st->kt[at] = i < st->n ? ad_elem(k, st->kv, i * st->d + t) : 0.0f;
        }
    if (st->vown)
        for (uint64_t i = 0; i < nd; i++) st->vown[i] = ad_fp16_to_fp32(((const uint16_t *)v)[i]);
    if (keep)
        st->v16 = v;
    else
        st->v = st->kv == 16 ? st->vown : v;
    return 0;
}

static int ad_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const int64_t *p = cs->params;
    if (cs->n_params != 3 || p[0] < 1 || p[0] > 65536 || p[1] < 16 || p[1] > 256 ||
        p[1] % 16 != 0 || (p[2] != 16 && p[2] != 32)) {
        snprintf(err, err_len, "attn-decode " AD_NAME ": unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    const uint64_t words = (uint64_t)p[0] * (uint64_t)p[1] * (uint64_t)(p[2] / 16);
    if (n_statics != 2 || statics[0].count != words || statics[1].count != words) {
        snprintf(err, err_len, "attn-decode " AD_NAME ": prepare got the wrong cache");
        return KB_ERR_INTERNAL;
    }
    ad_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    memset(st, 0, sizeof *st);
    st->host = host;
    st->n = (uint32_t)p[0];
    st->d = (uint32_t)p[1];
    st->kv = (uint32_t)p[2];
    st->nb = (st->n + AD_BLK - 1) / AD_BLK;
    if (ad_layout(st, statics[0].data, statics[1].data) != 0) {
        ad_free(st);
        snprintf(err, err_len, "attn-decode " AD_NAME ": out of memory for the cache layout");
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int ad_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    ad_state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != st->d || outputs[0].count != st->d) {
        snprintf(err, err_len, "attn-decode " AD_NAME ": run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    const float *q = inputs[0].data;
    float *o = outputs[0].data;
    const float scale = (float)(1.0 / sqrt((double)st->d));
    for (uint32_t t = 0; t < st->d; t++) /* ggml's q_to_vec_dot, then the scale */
        st->qs[t] = (st->kv == 16 ? ad_fp16_to_fp32(ad_fp32_to_fp16(q[t])) : q[t]) * scale;
    ad_scores(st, st->qs, st->p);
    const float m = ad_max(st->p, st->n);
    const float s = ad_expsum(st->p, st->n, m);
    ad_vacc(st, st->p, 0x1.0p-24f / (float)st->n, o);
    const float inv = 1.0f / s;
    for (uint32_t t = 0; t < st->d; t++) o[t] *= inv;
    return KB_OK;
}

static void ad_release(void *state)
{
    ad_free(state);
}

static const kb_plugin ad_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "attn-decode",
    .name = AD_NAME,
    .version = "1",
    .cpu_features = AD_FEATURES,
    .prepare = ad_prepare,
    .run = ad_run,
    .verify = NULL,
    .release = ad_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ad_plugin;
}

#endif
