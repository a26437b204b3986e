/*
 * oracle.c -- the frozen reference for softmax: the masked, scaled softmax of
 * attention scores, row by row, as llama.cpp's attention (without flash
 * attention) runs it on the CPU: kq = ggml_soft_max_ext(kq, kq_mask,
 * kq_scale, max_bias = 0).
 *
 * Ported from ggml (github:ggerganov/ggml 9a4acb37, src/ggml-cpu/ggml-cpu.c
 * ggml_compute_forward_soft_max_f32 with its scalar helpers ggml_vec_scale_f32,
 * ggml_vec_max_f32 and the tail loop of ggml_vec_soft_max_f32; the same code
 * is ggml/src/ggml-cpu/ops.cpp in llama.cpp today). Per row, with an f32 mask
 * row and slope = 1.0f (max_bias = 0: no ALiBi):
 *     wp[i]  = x[i] * scale;                     (ggml_vec_scale_f32)
 *     wp[i] += slope * mask[i];                  (-INFINITY where masked)
 *     max    = MAX over wp (starting at -INFINITY);
 *     y[i]   = expf(wp[i] - max); sum += (ggml_float)y[i];  (sum in double)
 *     sum    = 1.0 / sum;  y[i] *= (float)sum;   (ggml_vec_scale_f32)
 * scale = 0x1.6a09e6p-4f = (float)(1 / sqrt(128)), llama's kq_scale for a head
 * dimension of 128. x: n rows of d scores (KB_ROLE_CALL); mask: n rows of d
 * (KB_ROLE_CALL: llama.cpp builds it for every batch; 0 or -INFINITY, every
 * row with at least one 0); y: n rows of d probabilities. expf is the C
 * library's (ggml's scalar path); its last bit may differ between libms,
 * which the check below cannot see.
 *
 * Correctness is the oracle's own check (ABI 1.2, kb_target.check), the
 * measure llama.cpp's test-backend-ops applies to every backend against the
 * CPU reference: the normalized mean squared error of each row,
 *     NMSE = sum_i (got_i - exp_i)^2 / sum_i exp_i^2   (in double),
 * must be at most rel_tol = 1e-9; an infinity (or NaN) anywhere is wrong.
 * A correct SIMD kernel computes the same wp and max exactly; its vector exp
 * (ggml_v_expf: 1.5 ulp) moves each element by a few 1e-7 relative, and its
 * sum must not lose more. Over 4 seeds x 4 sets of every case, the worst row
 * of the shipped kernels (float lanes added into a double every 1024
 * elements) has an NMSE below 4e-13; a plain float sum in 64 lanes below
 * 6e-11. The lossy shortcuts, worst row of a case: a 12-bit reciprocal
 * estimate of 1/sum 3e-9 to 8e-8 (so it passes 1e-7: hence 1e-9, not
 * test-backend-ops' 1e-7), an exp with a degree-3 polynomial 1e-8 to 8e-8
 * on all but the /peaked rows with one dominant key, the Schraudolph bit
 * trick exp ~1e-4, one sequential float sum of a row of 32768 (the reason
 * ggml sums in double) 2e-7; and skipping the max subtraction overflows
 * expf on the /peaked and /causal rows whose logits exceed 88.7
 * (tests/fixtures/wrong/fx_lossy_softmax.c: every quick case fails).
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

#define SM_TOL    1e-9
#define SM_SCALE  0x1.6a09e6p-4f /* (float)(1 / sqrt(128)) */
#define SM_MAX_N  65536
#define SM_MAX_D  1048576
#define SM_SPIKES 4 /* peaked logits a row: the sink (key 0) and three others */

enum { P_N, P_D, N_PARAMS }; /* n rows of d scores */
enum { B_X, B_MASK, B_Y, N_BUFFERS };

static const char *const sm_param_names[N_PARAMS] = {"n", "d"};

static const kb_buffer_spec sm_buffers[N_BUFFERS] = {
    {"x", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"mask", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"y", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* A call reads x and the mask and writes y; per element a multiply, an add,
 * a compare, a subtract, an exp (counted as 10) and two more multiplies/adds. */
#define SM_BYTES(n, d) (12.0 * (double)(n) * (d))
#define SM_FLOPS(n, d) (15.0 * (double)(n) * (d))
#define CASE(nm, fl, n, d)                                                                  \
    {                                                                                       \
        nm, fl, 0, {n, d}, {(uint64_t)(n) * (d), (uint64_t)(n) * (d), (uint64_t)(n) * (d)}, \
            SM_BYTES(n, d), SM_FLOPS(n, d)                                                  \
    }

/* d: the KV length (context) a query attends to, 256 to 32768; n: rows of
 * the KQ matrix: the heads of one token at decode (32 for Llama-7B/8B, 40
 * for 13B, 64 for 70B), or tokens x heads of a prefill chunk. /peaked is
 * decode (one token's heads over the whole cache); /causal a prefill chunk
 * (row r sees one more key than row r - 1). The quick cases: a few heads of
 * a decode step at contexts 4096 and 16384, and a prefill chunk: small,
 * because the oracle's libm expf runs on every input set of a trial. */
/* clang-format off */
static const kb_case_spec sm_cases[] = {
    CASE("n=8,d=4096/peaked",   KB_CASE_QUICK, 8, 4096),
    CASE("n=4,d=16384/peaked",  KB_CASE_QUICK, 4, 16384),
    CASE("n=16,d=1024/causal",  KB_CASE_QUICK, 16, 1024),
    CASE("n=1,d=256/peaked",    0, 1, 256),
    CASE("n=32,d=512/causal",   0, 32, 512),
    CASE("n=32,d=4096/peaked",  0, 32, 4096),
    CASE("n=40,d=4096/peaked",  0, 40, 4096),
    CASE("n=64,d=2048/causal",  0, 64, 2048),
    CASE("n=64,d=8192/peaked",  0, 64, 8192),
    CASE("n=32,d=32768/peaked", 0, 32, 32768),
    CASE("n=4,d=32768/causal",  0, 4, 32768),
    CASE("n=8,d=8192/uniform",  0, 8, 8192),
};
/* clang-format on */
#define SM_N_CASES (sizeof sm_cases / sizeof sm_cases[0])

enum { D_PEAKED, D_CAUSAL, D_UNIFORM };
static const char *const sm_distributions[] = {"peaked", "causal", "uniform"};

static int sm_dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 3; k++)
        if (strcmp(d + 1, sm_distributions[k]) == 0) return k;
    return -1;
}

typedef struct sm_shape {
    uint64_t n;
    uint32_t d;
} sm_shape;

static int sm_shape_from(const int64_t *p, sm_shape *s, char *err, size_t err_len)
{
    if (p[P_N] < 1 || p[P_N] > SM_MAX_N || p[P_D] < 16 || p[P_D] > SM_MAX_D || p[P_D] % 16 != 0) {
        snprintf(err, err_len,
                 "softmax: bad shape n=%lld d=%lld (need 1 <= n <= %d rows, d a multiple of 16 "
                 "in [16, %d])",
                 (long long)p[P_N], (long long)p[P_D], SM_MAX_N, SM_MAX_D);
        return -1;
    }
    s->n = (uint64_t)p[P_N];
    s->d = (uint32_t)p[P_D];
    return 0;
}

/* ---- generator ------------------------------------------------------- */

/* Scores (before the scale), as q.k of a trained model looks:
 * /peaked and /causal: each row's keys N(0, 12^2) around a row offset
 * uniform in [-200, 1400) (after the scale, -18 to 124: q's component along
 * the mean key shifts a whole row, and models without QK-norm or logit
 * soft-capping reach logits in the hundreds, which is why Gemma-2 caps them
 * at 50), plus SM_SPIKES peaked keys 40-200 above the offset (after the
 * scale 3.5-18: the attention sink at key 0 and a few keys the query
 * matches, which take most of the probability). The mask: /peaked masks the
 * KV cache's unused tail (0-31 cells, the same in every row: llama.cpp pads
 * n_kv to a multiple of 256); /causal is a prefill chunk of n rows ending at
 * key d - pad: row r sees keys [0, d - pad - (n - 1 - r)), at least one.
 * /uniform: scores uniform in [-64, 64), no mask (all zeros).
 * Every step is exact float arithmetic on kb_rng draws. */
static void sm_row(kb_rng *r, int kind, uint32_t d, uint32_t visible, float *x, float *m)
{
    if (kind == D_UNIFORM) {
        kb_gen_uniform_f32(r, x, d, -64.0f, 64.0f);
        memset(m, 0, sizeof(float) * d);
        return;
    }
    const float off = (float)kb_rng_below(r, 1600) - 200.0f;
    kb_gen_normal_f32(r, x, d, off, 12.0f);
    for (int k = 0; k < SM_SPIKES; k++) {
        const uint32_t at = k == 0 ? 0 : (uint32_t)kb_rng_below(r, visible);
        x[at] = off + (float)(40 + kb_rng_below(r, 161));
    }
    for (uint32_t t = 0; t < d; t++) m[t] = t < visible ? 0.0f : -INFINITY;
}

static int sm_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    sm_shape s;
    if (sm_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    const int kind = sm_dist_kind(cs->name);
    const uint64_t len = s.n * s.d;
    if (n_bufs != N_BUFFERS || kind < 0 || bufs[B_X].count != len || bufs[B_MASK].count != len ||
        !bufs[B_X].data || !bufs[B_MASK].data) {
        snprintf(err, err_len, "softmax: generate got the wrong buffers for %s", cs->name);
        return -1;
    }
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 1 + (uint64_t)set, B_X));
    const uint32_t pad = (uint32_t)kb_rng_below(&r, s.d / 8 < 32 ? s.d / 8 : 32);
    float *x = bufs[B_X].data, *m = bufs[B_MASK].data;
    for (uint64_t i = 0; i < s.n; i++) {
        uint64_t vis = s.d - pad;
        if (kind == D_CAUSAL) {
            const uint64_t back = (s.n - 1 - i) % vis;
            vis -= back;
        }
        sm_row(&r, kind, s.d, (uint32_t)vis, x + i * s.d, m + i * s.d);
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

static const kb_param_range sm_ranges[N_PARAMS] = {
    {1, SM_MAX_N, 1, 0, 0},
    {16, SM_MAX_D, 16, 0, 0},
};

static int sm_custom_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    if (sm_dist_kind(cs->name) < 0) {
        snprintf(err, err_len, "softmax: distribution must be peaked, causal or uniform");
        return -1;
    }
    const int64_t n = cs->params[P_N], d = cs->params[P_D];
    for (int b = 0; b < N_BUFFERS; b++) cs->lengths[b] = (uint64_t)(n * d);
    cs->bytes_per_call = SM_BYTES(n, d);
    cs->flops_per_call = SM_FLOPS(n, d);
    return 0;
}

/* ---- the reference kernel -------------------------------------------- */

#define SM_MAXF(a, b) ((a) > (b) ? (a) : (b)) /* ggml's MAX */

static void sm_rows(const sm_shape *s, const float *x, const float *mask, float *y, float *wp)
{
    const float slope = 1.0f;
    for (uint64_t i = 0; i < s->n; i++) {
        const float *sp = x + i * s->d, *mp = mask + i * s->d;
        float *dp = y + i * s->d;
        for (uint32_t t = 0; t < s->d; t++) wp[t] = sp[t];
        for (uint32_t t = 0; t < s->d; t++) wp[t] *= SM_SCALE;
        for (uint32_t t = 0; t < s->d; t++) wp[t] += slope * mp[t];
        float max = -INFINITY;
        for (uint32_t t = 0; t < s->d; t++) max = SM_MAXF(max, wp[t]);
        double sum = 0;
        for (uint32_t t = 0; t < s->d; t++) {
            const float val = expf(wp[t] - max);
            sum += (double)val;
            dp[t] = val;
        }
        sum = 1.0 / sum;
        const float v = (float)sum;
        for (uint32_t t = 0; t < s->d; t++) dp[t] *= v;
    }
}

/* ---- the check ------------------------------------------------------- */

static int sm_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    sm_shape s;
    if (sm_shape_from(cs->params, &s, reason, reason_len) != 0) return 1;
    if (n_inputs != 2 || n_outputs != 1 || got[0].count != s.n * s.d ||
        expected[0].count != s.n * s.d) {
        snprintf(reason, reason_len, "softmax: the check got the wrong buffers");
        return 1;
    }
    const float *e = expected[0].data, *g = got[0].data;
    for (uint64_t i = 0; i < s.n; i++) {
        const float *er = e + i * s.d, *gr = g + i * s.d;
        double num = 0.0, den = 0.0;
        for (uint32_t t = 0; t < s.d; t++) {
            if (!isfinite(gr[t])) {
                snprintf(reason, reason_len, "y[%llu][%u]: expected %.9g, got %g (not finite)",
                         (unsigned long long)i, t, er[t], gr[t]);
                return 1;
            }
            const double dd = (double)gr[t] - (double)er[t];
            num += dd * dd;
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

typedef struct sm_state {
    const kb_host *host;
    sm_shape s;
    float *wp; /* one row of work space, as ggml's params->wdata */
} sm_state;

static int sm_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    sm_shape s;
    if (cs->n_params != N_PARAMS || sm_shape_from(cs->params, &s, err, err_len) != 0)
        return KB_ERR_UNSUPPORTED;
    (void)statics;
    if (n_statics != 0) {
        snprintf(err, err_len, "softmax: prepare got statics it has none of");
        return KB_ERR_INTERNAL;
    }
    sm_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->s = s;
    st->wp = host->alloc_aligned(host, sizeof(float) * s.d, 64);
    if (!st->wp) {
        host->free_aligned(host, st);
        return KB_ERR_NOMEM;
    }
    *state = st;
    return KB_OK;
}

static int sm_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const sm_state *st = state;
    const uint64_t len = st->s.n * st->s.d;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != len || inputs[1].count != len ||
        outputs[0].count != len) {
        snprintf(err, err_len, "softmax: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    sm_rows(&st->s, inputs[0].data, inputs[1].data, outputs[0].data, st->wp);
    return KB_OK;
}

static void sm_release(void *state)
{
    sm_state *st = state;
    st->host->free_aligned(st->host, st->wp);
    st->host->free_aligned(st->host, st);
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target sm_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "softmax",
    .description = "softmax of each row of attention scores, scaled by 1/sqrt(128) and masked "
                   "(0 or -inf), as ggml_soft_max_ext",
    .upstream = "ggml 9a4acb37 src/ggml-cpu/ggml-cpu.c ggml_compute_forward_soft_max_f32 "
                "(scale, + slope * mask, max, expf with the sum in ggml_float = double, scale "
                "by 1/sum; max_bias 0); llama.cpp ggml/src/ggml-cpu/ops.cpp today",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = sm_param_names,
    .buffers = sm_buffers,
    .n_cases = SM_N_CASES,
    .cases = sm_cases,
    .rel_tol = SM_TOL,
    .generate = sm_generate,
    .param_ranges = sm_ranges,
    .distributions = sm_distributions,
    .n_distributions = 3,
    .max_case_bytes = UINT64_C(32) << 20,
    .shape = sm_custom_shape,
    .check = sm_check,
};

static const kb_plugin sm_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "softmax",
    .name = "oracle",
    .version = "1",
    .prepare = sm_prepare,
    .run = sm_run,
    .release = sm_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &sm_oracle;
}

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &sm_target;
}
