/*
 * baseline.c -- attn-decode, the oracle's kernel as a candidate: the same
 * code as oracles/attn-decode/oracle.c (ggml's one_chunk loop for one query
 * row, in ggml's scalar arithmetic). Timed against the oracle it shows the
 * harness's noise floor (its ratio sits at 1, and it must never be kept);
 * it is also the file to copy when starting a candidate from scratch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

#define AD_MAX_N           65536
#define AD_WORDS(n, d, kv) ((uint64_t)(n) * (d) * ((kv) / 16))
enum { AD_PN = 0, AD_PD = 1, AD_PKV = 2 };

typedef struct ad_shape {
    uint32_t n, d, kv;
} ad_shape;

static int ad_shape_from(const int64_t *p, ad_shape *s, char *err, size_t err_len)
{
    if (p[AD_PN] < 1 || p[AD_PN] > AD_MAX_N || p[AD_PD] < 16 || p[AD_PD] > 256 ||
        p[AD_PD] % 16 != 0 || (p[AD_PKV] != 16 && p[AD_PKV] != 32)) {
        snprintf(err, err_len,
                 "attn-decode: bad shape n=%lld d=%lld kv=%lld (need 1 <= n <= %d, d a multiple "
                 "of 16 in [16, 256], kv 16 or 32)",
                 (long long)p[AD_PN], (long long)p[AD_PD], (long long)p[AD_PKV], AD_MAX_N);
        return -1;
    }
    s->n = (uint32_t)p[AD_PN];
    s->d = (uint32_t)p[AD_PD];
    s->kv = (uint32_t)p[AD_PKV];
    return 0;
}

/* ---- f16, as ggml converts it (ggml-impl.h, after Maratyszcza/FP16) --- */

static float ad_f32_from_bits(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static uint32_t ad_f32_bits(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

/* GGML_FP16_TO_FP32: exact. */
static float ad_fp16_to_fp32(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const float normalized = ad_f32_from_bits((two_w >> 4) + (UINT32_C(0xE0) << 23)) * 0x1.0p-112f;
    const float denormalized = ad_f32_from_bits((two_w >> 17) | (UINT32_C(126) << 23)) - 0.5f;
    const uint32_t r =
        sign | (two_w < (UINT32_C(1) << 27) ? ad_f32_bits(denormalized) : ad_f32_bits(normalized));
    return ad_f32_from_bits(r);
}

/* GGML_FP32_TO_FP16: round to nearest even, NaN kept a NaN. */
static uint16_t ad_fp32_to_fp16(float f)
{
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = ad_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & UINT32_C(0x80000000);
    uint32_t bias = shl1_w & UINT32_C(0xFF000000);
    if (bias < UINT32_C(0x71000000)) bias = UINT32_C(0x71000000);
    base = ad_f32_from_bits((bias >> 1) + UINT32_C(0x07800000)) + base;
    const uint32_t bits = ad_f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
    const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign));
}

/* scale = 1/sqrt(d) in float, as llama.cpp's graph passes kq_scale. */
static float ad_scale(uint32_t d)
{
    return (float)(1.0 / sqrt((double)d));
}

/* ---- the reference kernel -------------------------------------------- */

/* ggml_vec_dot_f32 / ggml_vec_dot_f16, scalar: float products summed in
 * double (ggml_float), the sum rounded to float. qk is q already converted
 * to the K type's vec_dot_type and back to float. */
static float ad_dot(const void *kbuf, const ad_shape *s, uint32_t i, const float *qk)
{
    const uint64_t at = (uint64_t)i * s->d;
    double sum = 0.0;
    if (s->kv == 16) {
        const uint16_t *k = (const uint16_t *)kbuf + at;
        for (uint32_t t = 0; t < s->d; t++) sum += (double)(ad_fp16_to_fp32(k[t]) * qk[t]);
    } else {
        const float *k = (const float *)kbuf + at;
        for (uint32_t t = 0; t < s->d; t++) sum += (double)(k[t] * qk[t]);
    }
    return (float)sum;
}

/* One query row of ggml_compute_forward_flash_attn_ext_f16_one_chunk, with
 * VKQ in float (see the top of this file). vkq is d floats of scratch. */
static void ad_attend(const ad_shape *s, const void *kbuf, const void *vbuf, const float *q,
                      float *o, float *qk, float *v32)
{
    const uint32_t d = s->d;
    const float scale = ad_scale(d);
    for (uint32_t t = 0; t < d; t++) /* q_to_vec_dot */
        qk[t] = s->kv == 16 ? ad_fp16_to_fp32(ad_fp32_to_fp16(q[t])) : q[t];
    float S = 0.0f, M = -INFINITY;
    for (uint32_t t = 0; t < d; t++) o[t] = 0.0f;
    for (uint32_t ic = 0; ic < s->n; ic++) {
        const float sc = ad_dot(kbuf, s, ic, qk) * scale;
        const float Mold = M;
        float ms = 1.0f, vs = 1.0f;
        if (sc > M) {
            M = sc;
            ms = expf(Mold - M);
            for (uint32_t t = 0; t < d; t++) o[t] *= ms; /* ggml_vec_scale_f32 */
        } else {
            vs = expf(sc - M);
        }
        const uint64_t at = (uint64_t)ic * d;
        const float *v = (const float *)vbuf + at;
        if (s->kv == 16) { /* v_to_float */
            for (uint32_t t = 0; t < d; t++)
                v32[t] = ad_fp16_to_fp32(((const uint16_t *)vbuf)[at + t]);
            v = v32;
        }
        for (uint32_t t = 0; t < d; t++) o[t] += v[t] * vs; /* ggml_vec_mad_f32 */
        S = S * ms + vs;
    }
    const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (uint32_t t = 0; t < d; t++) o[t] *= S_inv;
}

/* ---- plugin ---------------------------------------------------------- */

typedef struct ad_state {
    const kb_host *host;
    ad_shape s;
    const void *k, *v;
    float *qk, *v32;
} ad_state;

static int ad_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    ad_shape s;
    if (ad_shape_from(cs->params, &s, err, err_len) != 0) return KB_ERR_UNSUPPORTED;
    const uint64_t words = AD_WORDS(s.n, s.d, s.kv);
    if (n_statics != 2 || statics[0].count != words || statics[1].count != words) {
        snprintf(err, err_len, "attn-decode: prepare got the wrong cache");
        return KB_ERR_INTERNAL;
    }
    ad_state *st = host->alloc_aligned(host, sizeof *st + 2 * 256 * sizeof(float), 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->s = s;
    st->k = statics[0].data;
    st->v = statics[1].data;
    st->qk = (float *)(st + 1);
    st->v32 = st->qk + 256;
    *state = st;
    return KB_OK;
}

static int ad_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    ad_state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != st->s.d ||
        outputs[0].count != st->s.d) {
        snprintf(err, err_len, "attn-decode: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    ad_attend(&st->s, st->k, st->v, inputs[0].data, outputs[0].data, st->qk, st->v32);
    return KB_OK;
}

static void ad_release(void *state)
{
    ad_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin ad_baseline = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "attn-decode",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = ad_prepare,
    .run = ad_run,
    .verify = NULL,
    .release = ad_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ad_baseline;
}
