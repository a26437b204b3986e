/*
 * oracle.c -- the frozen reference for rmsnorm: RMS normalization of a
 * batch of activation rows followed by the elementwise product with the
 * norm's weight row, as llama.cpp builds every LLaMA-style layer's
 * attn_norm and ffn_norm: ggml_mul(ggml_rms_norm(x, eps), w).
 *
 * Ported from ggml (github:ggerganov/ggml 9a4acb37, src/ggml-cpu/ggml-cpu.c
 * ggml_compute_forward_rms_norm_f32, ggml_vec_scale_f32 and ggml_vec_mul_f32;
 * the same code is ggml/src/ggml-cpu/ops.cpp in llama.cpp today, whose fused
 * RMS_NORM+MUL path computes y = x * scale * w in the same order). Per row:
 *     ggml_float sum = 0.0;                      (ggml_float is double)
 *     for i: sum += (ggml_float)(x[i] * x[i]);   (square in float, add in double)
 *     const float mean  = sum / ne00;            (divided in double, then float)
 *     const float scale = 1.0f / sqrtf(mean + eps);
 *     y[i] = x[i] * scale;                       (ggml_vec_scale_f32)
 *     y[i] = y[i] * w[i];                        (ggml_vec_mul_f32, the ggml_mul)
 * eps = 1e-5f, LLaMA-2/3's rms_norm_eps. x: n rows of d floats (KB_ROLE_CALL);
 * w: d floats (KB_ROLE_STATIC: a model weight); y: n rows of d floats.
 *
 * Correctness is the oracle's own check (ABI 1.2, kb_target.check), the
 * measure llama.cpp's test-backend-ops applies to every backend against the
 * CPU reference: the normalized mean squared error of each row,
 *     NMSE = sum_i (got_i - exp_i)^2 / sum_i exp_i^2   (in double),
 * must be at most rel_tol = 1e-9; an infinity (or NaN) anywhere is wrong.
 * Why 1e-9 and not test-backend-ops' 1e-7: a correct kernel's error is the
 * float rounding of x * scale * w (NMSE ~ 1e-15) plus what its sum of squares
 * loses, which moves the scale of the whole row. Over 8 seeds x 4 sets of
 * every case, the worst row of a float sum in 16 or 128 lanes (the SIMD
 * kernels) has an NMSE below 5e-13, of a plain sequential float sum below
 * 1.5e-11: 1e-9 leaves the latter a factor of 70. The lossy shortcuts move
 * the scale by more: the 12-bit reciprocal square root estimate (rsqrtss,
 * frsqrte) without a Newton step is off by up to 3.7e-4, an NMSE up to
 * 1.3e-7, so it passes 1e-7 on most rows, while at 1e-9 each quick case has
 * a row above 7e-9 in every input set tried (its rows = 1 cases can be lucky);
 * a sum of squares kept in f16 fails every case (NMSE 5e-7 to 1: it
 * saturates or stops growing), a weight or activation rounded to bf16 gives
 * ~1e-6 (tests/fixtures/wrong/fx_lossy_rmsnorm.c is the rsqrt one).
 * A single element wrong by its own magnitude in a row of 8192 gives an NMSE
 * of ~1e-4 and fails too.
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

#define RN_TOL    1e-9
#define RN_EPS    1e-5f
#define RN_MAX_N  65536
#define RN_MAX_R  65536
#define RN_N_OUTL 6 /* outlier channels of the outliers distribution */

enum { P_ROWS, P_D, N_PARAMS };    /* n (rows) and d (the row length) */
enum { B_W, B_X, B_Y, N_BUFFERS }; /* statics, then per-call inputs, then outputs */

static const char *const rn_param_names[N_PARAMS] = {"n", "d"};

static const kb_buffer_spec rn_buffers[N_BUFFERS] = {
    {"w", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
    {"x", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"y", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* A call reads x and w and writes y; per element a square, an add, two
 * multiplies (the sqrt and the divide per row are left out). */
#define RN_BYTES(r, n) (4.0 * ((double)(r) * (n)*2.0 + (double)(n)))
#define RN_FLOPS(r, n) (4.0 * (double)(r) * (n))
#define CASE(nm, fl, r, n)                                                                  \
    {                                                                                       \
        nm, fl, 0, {r, n}, {(n), (uint64_t)(r) * (n), (uint64_t)(r) * (n)}, RN_BYTES(r, n), \
            RN_FLOPS(r, n)                                                                  \
    }

/* n rows of d floats. d: the hidden sizes of the models llama.cpp runs most
 * (2048 Llama-3.2-1B, 3072 Llama-3.2-3B, 4096 Llama-2/3-7B/8B, 5120 13B,
 * 8192 70B); n: one
 * token (decode), a few (batched decode, speculative drafts) or a prompt
 * chunk (prefill, llama.cpp's n_ubatch is 512 by default). The quick cases
 * are the decode-batch sizes of the 7B and 70B shapes. */
/* clang-format off */
static const kb_case_spec rn_cases[] = {
    CASE("n=16,d=4096/outliers", KB_CASE_QUICK, 16, 4096),
    CASE("n=8,d=8192/outliers",  KB_CASE_QUICK, 8, 8192),
    CASE("n=32,d=2048/normal",   KB_CASE_QUICK, 32, 2048),
    CASE("n=1,d=4096/outliers",  0, 1, 4096),
    CASE("n=1,d=8192/outliers",  0, 1, 8192),
    CASE("n=4,d=2048/uniform",   0, 4, 2048),
    CASE("n=64,d=3072/outliers", 0, 64, 3072),
    CASE("n=32,d=5120/outliers", 0, 32, 5120),
    CASE("n=128,d=2048/outliers", 0, 128, 2048),
    CASE("n=16,d=8192/normal",   0, 16, 8192),
    CASE("n=64,d=8192/outliers", 0, 64, 8192),
    CASE("n=128,d=4096/uniform", 0, 128, 4096),
};
/* clang-format on */
#define RN_N_CASES (sizeof rn_cases / sizeof rn_cases[0])

enum { D_OUTLIERS, D_NORMAL, D_UNIFORM };
static const char *const rn_distributions[] = {"outliers", "normal", "uniform"};

static int rn_dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 3; k++)
        if (strcmp(d + 1, rn_distributions[k]) == 0) return k;
    return -1;
}

typedef struct rn_shape {
    uint64_t rows;
    uint32_t d;
} rn_shape;

static int rn_shape_from(const int64_t *p, rn_shape *s, char *err, size_t err_len)
{
    if (p[P_ROWS] < 1 || p[P_ROWS] > RN_MAX_R || p[P_D] < 16 || p[P_D] > RN_MAX_N ||
        p[P_D] % 16 != 0) {
        snprintf(err, err_len,
                 "rmsnorm: bad shape n=%lld d=%lld (need 1 <= n <= %d rows, d a multiple of "
                 "16 in [16, %d])",
                 (long long)p[P_ROWS], (long long)p[P_D], RN_MAX_R, RN_MAX_N);
        return -1;
    }
    s->rows = (uint64_t)p[P_ROWS];
    s->d = (uint32_t)p[P_D];
    return 0;
}

/* ---- generator ------------------------------------------------------- */

/* outliers, as the residual stream of a trained LLM looks at a norm's
 * input: most channels N(0, 1), RN_N_OUTL fixed channels (from the seed
 * alone, the same in every row and set) 20-100 times larger with a fixed
 * sign, and each row (token) scaled by a power of two from 1/4 to 8 (token
 * norms vary). The weight row: N(1, 0.25), as trained norm gains sit around
 * one, with the outlier channels' gains small (0.05-0.2): models learn to
 * damp them. normal: x N(0, 1), w N(0, 1). uniform: x and w in [-1, 1).
 * Every step is exact float arithmetic on kb_rng draws. */
typedef struct rn_outl {
    uint32_t ch[RN_N_OUTL];
    float mag[RN_N_OUTL];
} rn_outl;

static void rn_outliers(uint64_t seed, uint32_t n, rn_outl *o)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0x726e6f, 0));
    for (int k = 0; k < RN_N_OUTL; k++) {
        o->ch[k] = (uint32_t)kb_rng_below(&r, n);
        const float m = (float)(20 + kb_rng_below(&r, 81));
        o->mag[k] = kb_rng_below(&r, 2) ? m : -m;
    }
}

static void rn_weights(uint64_t seed, int kind, uint32_t n, float *w)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0, B_W));
    if (kind == D_UNIFORM) {
        kb_gen_uniform_f32(&r, w, n, -1.0f, 1.0f);
        return;
    }
    kb_gen_normal_f32(&r, w, n, kind == D_OUTLIERS ? 1.0f : 0.0f,
                      kind == D_OUTLIERS ? 0.25f : 1.0f);
    if (kind != D_OUTLIERS) return;
    rn_outl o;
    rn_outliers(seed, n, &o);
    for (int k = 0; k < RN_N_OUTL; k++) w[o.ch[k]] = (float)(5 + kb_rng_below(&r, 16)) / 100.0f;
}

static void rn_activations(uint64_t seed, uint32_t set, int kind, const rn_shape *s, float *x)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 1 + (uint64_t)set, B_X));
    const uint64_t len = s->rows * s->d;
    if (kind == D_UNIFORM) {
        kb_gen_uniform_f32(&r, x, len, -1.0f, 1.0f);
        return;
    }
    kb_gen_normal_f32(&r, x, len, 0.0f, 1.0f);
    if (kind != D_OUTLIERS) return;
    static const float gains[6] = {0.25f, 0.5f, 1.0f, 1.0f, 2.0f, 8.0f};
    rn_outl o;
    rn_outliers(seed, s->d, &o);
    for (uint64_t i = 0; i < s->rows; i++) {
        float *row = x + i * s->d;
        for (int k = 0; k < RN_N_OUTL; k++) row[o.ch[k]] = o.mag[k] + row[o.ch[k]];
        const float g = gains[kb_rng_below(&r, 6)];
        for (uint32_t t = 0; t < s->d; t++) row[t] *= g;
    }
}

static int rn_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    rn_shape s;
    if (rn_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    const int kind = rn_dist_kind(cs->name);
    if (n_bufs != N_BUFFERS || kind < 0 || bufs[B_W].count != s.d ||
        bufs[B_X].count != s.rows * s.d || !bufs[B_W].data || !bufs[B_X].data) {
        snprintf(err, err_len, "rmsnorm: generate got the wrong buffers for %s", cs->name);
        return -1;
    }
    if (set == 0) rn_weights(seed, kind, s.d, bufs[B_W].data);
    rn_activations(seed, set, kind, &s, bufs[B_X].data);
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

static const kb_param_range rn_ranges[N_PARAMS] = {
    {1, RN_MAX_R, 1, 0, 0},
    {16, RN_MAX_N, 16, 0, 0},
};

static int rn_custom_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    if (rn_dist_kind(cs->name) < 0) {
        snprintf(err, err_len, "rmsnorm: distribution must be outliers, normal or uniform");
        return -1;
    }
    const int64_t r = cs->params[P_ROWS], n = cs->params[P_D];
    cs->lengths[B_W] = (uint64_t)n;
    cs->lengths[B_X] = (uint64_t)(r * n);
    cs->lengths[B_Y] = (uint64_t)(r * n);
    cs->bytes_per_call = RN_BYTES(r, n);
    cs->flops_per_call = RN_FLOPS(r, n);
    return 0;
}

/* ---- the reference kernel -------------------------------------------- */

static void rn_rows(const rn_shape *s, const float *w, const float *x, float *y)
{
    for (uint64_t i = 0; i < s->rows; i++) {
        const float *xr = x + i * s->d;
        float *yr = y + i * s->d;
        double sum = 0.0;
        for (uint32_t t = 0; t < s->d; t++) sum += (double)(xr[t] * xr[t]);
        const float mean = (float)(sum / (double)s->d);
        const float scale = 1.0f / sqrtf(mean + RN_EPS);
        for (uint32_t t = 0; t < s->d; t++) yr[t] = xr[t] * scale;
        for (uint32_t t = 0; t < s->d; t++) yr[t] = yr[t] * w[t];
    }
}

/* ---- the check ------------------------------------------------------- */

static int rn_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    rn_shape s;
    if (rn_shape_from(cs->params, &s, reason, reason_len) != 0) return 1;
    if (n_inputs != 2 || n_outputs != 1 || got[0].count != s.rows * s.d ||
        expected[0].count != s.rows * s.d) {
        snprintf(reason, reason_len, "rmsnorm: the check got the wrong buffers");
        return 1;
    }
    const float *e = expected[0].data, *g = got[0].data;
    for (uint64_t i = 0; i < s.rows; i++) {
        const float *er = e + i * s.d, *gr = g + i * s.d;
        double num = 0.0, den = 0.0;
        for (uint32_t t = 0; t < s.d; t++) {
            if (!isfinite(gr[t])) {
                snprintf(reason, reason_len, "y[%llu][%u]: expected %.9g, got %g (not finite)",
                         (unsigned long long)i, t, er[t], gr[t]);
                return 1;
            }
            const double d = (double)gr[t] - (double)er[t];
            num += d * d;
            den += (double)er[t] * (double)er[t];
        }
        const double nmse = den > 0.0 ? num / den : num;
        if (!(nmse <= tol)) {
            uint32_t worst = 0;
            for (uint32_t t = 1; t < s.d; t++)
                if (fabs((double)gr[t] - er[t]) > fabs((double)gr[worst] - er[worst])) worst = t;
            snprintf(reason, reason_len,
                     "row %llu: normalized mean squared error %.3g above %.3g (worst y[%llu][%u]: "
                     "expected %.9g, got %.9g)",
                     (unsigned long long)i, nmse, tol, (unsigned long long)i, worst, er[worst],
                     gr[worst]);
            return 1;
        }
    }
    (void)inputs;
    return 0;
}

/* ---- plugin ---------------------------------------------------------- */

typedef struct rn_state {
    const kb_host *host;
    rn_shape s;
    const float *w;
} rn_state;

static int rn_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    rn_shape s;
    if (cs->n_params != N_PARAMS || rn_shape_from(cs->params, &s, err, err_len) != 0)
        return KB_ERR_UNSUPPORTED;
    if (n_statics != 1 || statics[0].count != s.d) {
        snprintf(err, err_len, "rmsnorm: prepare got the wrong weight row");
        return KB_ERR_INTERNAL;
    }
    rn_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->s = s;
    st->w = statics[0].data; /* valid until release */
    *state = st;
    return KB_OK;
}

static int rn_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const rn_state *st = state;
    const uint64_t len = st->s.rows * st->s.d;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != len || outputs[0].count != len) {
        snprintf(err, err_len, "rmsnorm: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    rn_rows(&st->s, st->w, inputs[0].data, outputs[0].data);
    return KB_OK;
}

static void rn_release(void *state)
{
    rn_state *st = state;
    st->host->free_aligned(st->host, st);
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target rn_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "rmsnorm",
    .description =
        "RMS norm of each row times a weight row: y = x * (1/sqrt(mean(x^2) + 1e-5)) * w, "
        "as ggml_mul(ggml_rms_norm(x), w)",
    .upstream = "ggml 9a4acb37 src/ggml-cpu/ggml-cpu.c ggml_compute_forward_rms_norm_f32 "
                "(sum of squares in ggml_float = double, scale = 1.0f/sqrtf(mean + eps), "
                "ggml_vec_scale_f32) then ggml_vec_mul_f32 (ggml_mul); llama.cpp "
                "ggml/src/ggml-cpu/ops.cpp today",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = rn_param_names,
    .buffers = rn_buffers,
    .n_cases = RN_N_CASES,
    .cases = rn_cases,
    .rel_tol = RN_TOL,
    .generate = rn_generate,
    .param_ranges = rn_ranges,
    .distributions = rn_distributions,
    .n_distributions = 3,
    .max_case_bytes = UINT64_C(32) << 20,
    .shape = rn_custom_shape,
    .check = rn_check,
};

static const kb_plugin rn_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "rmsnorm",
    .name = "oracle",
    .version = "1",
    .prepare = rn_prepare,
    .run = rn_run,
    .release = rn_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &rn_oracle;
}

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &rn_target;
}
