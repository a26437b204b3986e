/*
 * oracle.c -- the frozen reference for attn-decode: one decode step of
 * attention for one head, as ggml's CPU flash attention computes one query
 * row (llama.cpp 0049e3cb ggml/src/ggml-cpu/ops.cpp
 * ggml_compute_forward_flash_attn_ext_f16_one_chunk, no mask, no ALiBi, no
 * softcap, no sinks; read with the search tool's read_file, and the same
 * loop in ggml 9a4acb37 src/ggml-cpu/ggml-cpu.c).
 *
 * A query q of d floats (KB_ROLE_CALL: a new token every step) against a KV
 * cache of n keys and n values of d elements (KB_ROLE_STATIC: the cache of
 * the tokens so far), kv = 32 (f32) or kv = 16 (IEEE half, GGML_FP16_TO_FP32
 * exactly). The cache travels as 16-bit words: n * d halves for kv = 16,
 * the bytes of n * d floats (2 * n * d words) for kv = 32. Output: o, d floats,
 *     s_i = scale * dot(q, K_i),   scale = 1/sqrt(d) rounded to float,
 *     o   = sum_i softmax(s)_i V_i.
 * The oracle is ggml's online softmax, in ggml's arithmetic (its scalar
 * paths, -ffp-contract=off): q rounded to the K type's vec_dot_type first
 * (f16 for kv = 16: q_to_vec_dot, round to nearest even); each dot a double
 * sum of float products (ggml_vec_dot_f32 / ggml_vec_dot_f16, ggml_float
 * accumulator), rounded to float, times scale; a running maximum M and sum S
 * in float: on a new maximum VKQ *= expf(Mold - M) and S = S * ms + 1, else
 * vs = expf(s - M) and S += vs; VKQ += vs * V_i in float; o = VKQ / S.
 * The one place it departs from one_chunk: with f16 V, one_chunk keeps VKQ
 * in f16 (ggml_vec_mad_f16). The oracle keeps it in float, as the op's
 * GGML_PREC_DEFAULT promises ("uses F32 accumulators") and as ggml's tiled
 * CPU path (ggml_compute_forward_flash_attn_ext_tiled, V converted to f32)
 * and the split-KV reduction do: an f16 accumulator loses the sum on long
 * contexts (tests/fixtures/wrong/fx_wrong_attn.c, FX_F16_ACC).
 *
 * Correctness is the oracle's own check (ABI 1.2), the way llama.cpp's
 * test-backend-ops judges FLASH_ATTN_EXT: the normalized mean squared error
 * over the output vector, sum (o - o_ref)^2 / sum o_ref^2, against a bound
 * (test-backend-ops allows 5e-4), and any NaN or Inf output is wrong. A
 * float kernel that sums in another order (SIMD lanes, FMA, blocks of keys,
 * a three-pass softmax instead of the online one) lands at 3e-10 or below
 * on every case (plugins/attn-decode/portable.c, 16 sets a case). The
 * rounding of q to f16 against f16 keys is part of the contract: the
 * peaked sets' large logits (up to 128) turn its 2^-11 into score shifts
 * that move the output by an NMSE of up to 1.4e-4, so a kernel that keeps
 * q in float there fails, as it would differ from ggml. AD_TOL = 1e-5 is
 * four decades above the reassociation error and rejects both lossy
 * shortcuts of tests/fixtures/wrong/fx_wrong_attn.c on the quick cases:
 * exp(s) without the maximum subtracted overflows to Inf on the peaked sets
 * (scores past 88) and ends in NaN; an f16 VKQ accumulator (ggml's own
 * one_chunk f16 path) is off by an NMSE of 1.1e-4 on n=4096 uniform (a flat
 * softmax: thousands of terms of the same size) and 1e-3 at n=32768, where
 * even test-backend-ops' 5e-4 would reject it.
 *
 * Changing anything here that alters the inputs, the outputs or the check
 * invalidates every ledger line recorded against this oracle.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define AD_TOL     1e-5
#define AD_MAX_N   65536
#define AD_TARGETS 4 /* at most this many keys a peaked query aligns with */

enum { AD_K = 0, AD_V = 1, AD_Q = 2, AD_O = 3, AD_N_BUFFERS = 4 };
enum { AD_PN = 0, AD_PD = 1, AD_PKV = 2, AD_N_PARAMS = 3 };

static const char *const ad_param_names[AD_N_PARAMS] = {"n", "d", "kv"};
static const char *const ad_distributions[] = {"peaked", "uniform"};

static const kb_buffer_spec ad_buffers[AD_N_BUFFERS] = {
    {"k", KB_DT_U16, KB_ROLE_STATIC, 0, 0},
    {"v", KB_DT_U16, KB_ROLE_STATIC, 0, 0},
    {"q", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"o", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* Lengths in spec order (K and V in 16-bit words); a call reads the cache
 * and q and writes o; 4 flops (two mul-adds) per key and dimension. */
#define AD_WORDS(n, d, kv) ((uint64_t)(n) * (d) * ((kv) / 16))
#define AD_CASE(nm, fl, n, d, kv)                                                     \
    {                                                                                 \
        nm, fl, 0, {n, d, kv}, {AD_WORDS(n, d, kv), AD_WORDS(n, d, kv), (d), (d)},    \
            2.0 * (double)(n) * (d) * ((kv) / 8) + 8.0 * (d), 4.0 * (double)(n) * (d) \
    }

/* n is the context so far (a chat turn to a long document), d the head
 * sizes of llama-family models (64: small models, 128: 7B and up), kv the
 * cache type llama.cpp defaults to (f16) and the f32 one. The quick subset
 * holds a peaked and a uniform case of each cache type, short enough that
 * the scalar oracle on 32 input sets keeps a default trial near two
 * seconds; the uniform f16 one is long enough (4096) that an f16
 * accumulator fails on it. */
static const kb_case_spec ad_cases[] = {
    AD_CASE("n=1024,d=128,kv=32/peaked", KB_CASE_QUICK, 1024, 128, 32),
    AD_CASE("n=2048,d=64,kv=16/peaked", KB_CASE_QUICK, 2048, 64, 16),
    AD_CASE("n=4096,d=128,kv=16/uniform", KB_CASE_QUICK, 4096, 128, 16),
    AD_CASE("n=256,d=64,kv=32/uniform", 0, 256, 64, 32),
    AD_CASE("n=512,d=128,kv=16/peaked", 0, 512, 128, 16),
    AD_CASE("n=2048,d=128,kv=32/uniform", 0, 2048, 128, 32),
    AD_CASE("n=4096,d=128,kv=16/peaked", 0, 4096, 128, 16),
    AD_CASE("n=8192,d=64,kv=32/peaked", 0, 8192, 64, 32),
    AD_CASE("n=8192,d=128,kv=16/peaked", 0, 8192, 128, 16),
    AD_CASE("n=16384,d=128,kv=32/peaked", 0, 16384, 128, 32),
    AD_CASE("n=16384,d=64,kv=16/uniform", 0, 16384, 64, 16),
    AD_CASE("n=32768,d=128,kv=16/peaked", 0, 32768, 128, 16),
    AD_CASE("n=32768,d=128,kv=16/uniform", 0, 32768, 128, 16),
};
#define AD_N_CASES (sizeof ad_cases / sizeof ad_cases[0])

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

static int ad_peaked(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash && strcmp(slash + 1, "peaked") == 0;
}

/* scale = 1/sqrt(d) in float, as llama.cpp's graph passes kq_scale. */
static float ad_scale(uint32_t d)
{
    return (float)(1.0 / sqrt((double)d));
}

/* ---- generator ------------------------------------------------------- */

/* Peaked, as attention meets it in a trained model: keys and values
 * normal(0, 1), the keys with two outlier channels of sd 6 (the massive
 * channels of K in llama-family models), and each query aligned with 1-4
 * keys of the cache: q = sum_j (l_j / scale) K_j / |K_j|^2 plus
 * normal(0, 0.1) noise, so that those keys score near l_j and the rest
 * spread around 0 with an sd of about l / sqrt(d). The top logit l_1 is
 * uniform in [32, 128), the others up to 6 below it: the softmax puts
 * nearly all its mass on the few aligned keys, and scores past 88 (where
 * expf overflows) come in most input sets. Uniform: keys, values and query
 * uniform in [-1, 1): scores within a few units of 0 and a flat softmax,
 * every key counting. For kv = 16 the cache is the generated floats rounded
 * to half; the query is built from the rounded keys. */
static void ad_cache(uint64_t seed, int peaked, const ad_shape *s, void *kbuf, void *vbuf)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0x6164, 0));
    const uint32_t o1 = (uint32_t)kb_rng_below(&r, s->d), o2 = (uint32_t)kb_rng_below(&r, s->d);
    float row[256];
    for (int which = 0; which < 2; which++) {
        void *buf = which == 0 ? kbuf : vbuf;
        for (uint32_t i = 0; i < s->n; i++) {
            if (peaked)
                kb_gen_normal_f32(&r, row, s->d, 0.0f, 1.0f);
            else
                kb_gen_uniform_f32(&r, row, s->d, -1.0f, 1.0f);
            if (peaked && which == 0) row[o1] *= 6.0f, row[o2] *= 6.0f;
            const uint64_t at = (uint64_t)i * s->d;
            if (s->kv == 16)
                for (uint32_t t = 0; t < s->d; t++)
                    ((uint16_t *)buf)[at + t] = kb_ggml_fp32_to_fp16(row[t]);
            else
                memcpy((float *)buf + at, row, s->d * sizeof(float));
        }
    }
}

/* Key i of the cache as floats. */
static void ad_key(const void *kbuf, const ad_shape *s, uint32_t i, float *out)
{
    const uint64_t at = (uint64_t)i * s->d;
    for (uint32_t t = 0; t < s->d; t++)
        out[t] = s->kv == 16 ? kb_ggml_fp16_to_fp32(((const uint16_t *)kbuf)[at + t])
                             : ((const float *)kbuf)[at + t];
}

static void ad_query(uint64_t seed, uint32_t set, int peaked, const ad_shape *s, const void *kbuf,
                     float *q)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0x6171, set));
    if (!peaked) {
        kb_gen_uniform_f32(&r, q, s->d, -1.0f, 1.0f);
        return;
    }
    kb_gen_normal_f32(&r, q, s->d, 0.0f, 0.1f);
    const uint32_t targets = 1 + (uint32_t)kb_rng_below(&r, AD_TARGETS);
    const float top = 32.0f + (float)kb_rng_below(&r, 96 * 1024) / 1024.0f;
    const float scale = ad_scale(s->d);
    float ki[256];
    for (uint32_t j = 0; j < targets; j++) {
        const uint32_t i = (uint32_t)kb_rng_below(&r, s->n);
        const float l = j == 0 ? top : top - (float)kb_rng_below(&r, 6 * 1024) / 1024.0f;
        ad_key(kbuf, s, i, ki);
        float norm = 0.0f;
        for (uint32_t t = 0; t < s->d; t++) norm += ki[t] * ki[t];
        const float c = l / scale / norm;
        for (uint32_t t = 0; t < s->d; t++) q[t] += c * ki[t];
    }
}

/* The cache at set 0; every set's query reads it (the host passes the
 * statics written at set 0 to the later sets). */
static int ad_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    ad_shape s;
    if (ad_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    const uint64_t words = AD_WORDS(s.n, s.d, s.kv);
    if (n_bufs != AD_N_BUFFERS || bufs[AD_K].count != words || bufs[AD_V].count != words ||
        bufs[AD_Q].count != s.d || !bufs[AD_K].data || !bufs[AD_V].data || !bufs[AD_Q].data) {
        snprintf(err, err_len, "attn-decode: generate got the wrong buffers");
        return -1;
    }
    const int peaked = ad_peaked(cs->name);
    if (set == 0) ad_cache(seed, peaked, &s, bufs[AD_K].data, bufs[AD_V].data);
    ad_query(seed, set, peaked, &s, bufs[AD_K].data, bufs[AD_Q].data);
    return 0;
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
        for (uint32_t t = 0; t < s->d; t++) sum += (double)(kb_ggml_fp16_to_fp32(k[t]) * qk[t]);
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
        qk[t] = s->kv == 16 ? kb_ggml_fp16_to_fp32(kb_ggml_fp32_to_fp16(q[t])) : q[t];
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
                v32[t] = kb_ggml_fp16_to_fp32(((const uint16_t *)vbuf)[at + t]);
            v = v32;
        }
        for (uint32_t t = 0; t < d; t++) o[t] += v[t] * vs; /* ggml_vec_mad_f32 */
        S = S * ms + vs;
    }
    const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (uint32_t t = 0; t < d; t++) o[t] *= S_inv;
}

/* ---- the check ------------------------------------------------------- */

/* test-backend-ops' nmse(): sum (a - b)^2 / sum a^2 over the output, a the
 * oracle's; a non-finite output is wrong whatever the sum says. */
static int ad_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    (void)inputs, (void)n_inputs;
    ad_shape s;
    if (ad_shape_from(cs->params, &s, reason, reason_len) != 0) return 1;
    if (n_outputs != 1 || got[0].count != s.d || expected[0].count != s.d) {
        snprintf(reason, reason_len, "attn-decode: the check got the wrong buffers");
        return 1;
    }
    const float *a = expected[0].data, *b = got[0].data;
    double err = 0.0, ref = 0.0, worst = -1.0;
    uint32_t at = 0;
    for (uint32_t t = 0; t < s.d; t++) {
        if (!isfinite(b[t])) {
            snprintf(reason, reason_len, "o[%u]: expected %.9g, got %g (not finite)", t, a[t],
                     b[t]);
            return 1;
        }
        const double e = (double)a[t] - (double)b[t];
        err += e * e;
        ref += (double)a[t] * a[t];
        if (e * e > worst) worst = e * e, at = t;
    }
    const double nmse = ref > 0.0 ? err / ref : err;
    if (!(nmse <= tol)) {
        snprintf(reason, reason_len,
                 "o: normalized mean squared error %.3g over %u outputs, over the bound %.3g "
                 "(worst o[%u]: expected %.9g, got %.9g)",
                 nmse, s.d, tol, at, a[at], b[at]);
        return 1;
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

/* n up to 65536, d up to 256: one f32 cache of 64 MiB at the top;
 * max_case_bytes keeps an ad hoc trial to 40 MiB (n = 32768, d = 128, f32). */
static const kb_param_range ad_ranges[AD_N_PARAMS] = {
    {1, AD_MAX_N, 1, 0, 0}, {16, 256, 16, 0, 0}, {16, 32, 16, 0, 0}};

static int ad_shape_fn(kb_case_spec *cs, char *err, size_t err_len)
{
    ad_shape s;
    if (ad_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    const char *slash = strrchr(cs->name, '/');
    if (!slash || (strcmp(slash + 1, "peaked") != 0 && strcmp(slash + 1, "uniform") != 0)) {
        snprintf(err, err_len, "attn-decode: distribution must be peaked or uniform");
        return -1;
    }
    const kb_case_spec c = AD_CASE("", 0, s.n, s.d, s.kv);
    memcpy(cs->lengths, c.lengths, sizeof c.lengths[0] * AD_N_BUFFERS);
    cs->bytes_per_call = c.bytes_per_call;
    cs->flops_per_call = c.flops_per_call;
    return 0;
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

/* ---- descriptors ----------------------------------------------------- */

static const kb_target ad_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "attn-decode",
    .description = "one decode step of attention for one head: softmax(scale q.K) V over an "
                   "f32 or f16 KV cache of n tokens",
    .upstream = "llama.cpp 0049e3cb ggml/src/ggml-cpu/ops.cpp "
                "ggml_compute_forward_flash_attn_ext_f16_one_chunk (one query row, online "
                "softmax, VKQ in f32 as the tiled path); check: tests/test-backend-ops.cpp nmse",
    .n_params = AD_N_PARAMS,
    .n_buffers = AD_N_BUFFERS,
    .param_names = ad_param_names,
    .buffers = ad_buffers,
    .n_cases = AD_N_CASES,
    .cases = ad_cases,
    .rel_tol = AD_TOL,
    .generate = ad_generate,
    .param_ranges = ad_ranges,
    .distributions = ad_distributions,
    .n_distributions = 2,
    .max_case_bytes = UINT64_C(40) << 20,
    .shape = ad_shape_fn,
    .check = ad_check,
};

static const kb_plugin ad_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "attn-decode",
    .name = "oracle",
    .version = "1",
    .prepare = ad_prepare,
    .run = ad_run,
    .release = ad_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ad_oracle;
}

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &ad_target;
}
