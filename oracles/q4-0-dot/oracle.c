/*
 * oracle.c -- the frozen reference for q4-0-dot: ggml's q4_0 x q8_0 dot
 * product, a matrix of q4_0 weight rows against one q8_0 activation vector,
 * row by row, as the decode-time mat-vec of a q4_0 model calls it (the CPU
 * backend quantizes the activations to q8_0, q4_0's vec_dot_type).
 *
 * Ported from ggml (github:ggerganov/ggml, commit 9a4acb37):
 *   src/ggml-common.h        block_q4_0 = { ggml_half d; uint8_t qs[16]; }, 18 bytes:
 *                            element j (0..15) is (qs[j] & 0xF) - 8, element j + 16 is
 *                            (qs[j] >> 4) - 8; block_q8_0 = { ggml_half d; int8_t qs[32]; }
 *   src/ggml-impl.h          ggml_compute_fp16_to_fp32 / ggml_compute_fp32_to_fp16
 *                            (the portable bit-level versions; every fp16 value is exact
 *                            in f32, so F16C's vcvtph2ps gives the same bits)
 *   src/ggml-quants.c        quantize_row_q4_0_ref, quantize_row_q8_0_ref (the generator)
 *                            (these two and the fp16 conversions are generators/ggml.c,
 *                            shared with the other ggml targets)
 *   src/ggml-cpu/ggml-cpu-quants.c  ggml_vec_dot_q4_0_q8_0, its scalar loop (llama.cpp
 *                            moved it to ggml/src/ggml-cpu/quants.c as
 *                            ggml_vec_dot_q4_0_q8_0_generic, unchanged):
 *       for each block ib: sumi0 = sum over j < 16 of ((x.qs[j] & 0xF) - 8) * y.qs[j],
 *                          sumi1 = sum over j < 16 of ((x.qs[j] >> 4) - 8) * y.qs[j + 16],
 *                          sumf += (sumi0 + sumi1) * fp16_to_fp32(x.d) * fp16_to_fp32(y.d);
 *   in f32, left to right ((sumi * dx) * dy), blocks in order, unfused
 *   (-ffp-contract=off).
 *
 * Buffers: `weights` rows * n/32 q4_0 blocks of 18 bytes, row after row, and
 * `vector` n/32 q8_0 blocks of 34 bytes, both per call; `y` (output) rows f32, y[r] the dot of
 * row r with the vector. The weights are a per-call input, not a static one:
 * a token's mat-vec streams its weights from memory (a model is far larger
 * than any cache), and ggml_vec_dot has no preparation step. As a static
 * input they stayed in cache across the timed calls and came cold to the
 * host's fresh-input probe, which then took every fast candidate for a replay.
 *
 * Correctness is the oracle's own check (ABI 1.2), as llama.cpp's
 * test-backend-ops compares two backends: a SIMD kernel sums the per-block
 * terms in another order (lanes, several rows at once), so its f32 result
 * differs from the oracle's in the last bits. The candidate is right when
 *   1. every y[r] is finite (test-backend-ops: NaN, or Inf against a finite
 *      reference, is a mismatch);
 *   2. the normalized mean squared error over the rows,
 *      NMSE = sum (got - exp)^2 / sum exp^2, is at most tol = rel_tol = 1e-9.
 *      test-backend-ops' default max_nmse_err is 1e-7 and its test_mul_mat's 5e-4,
 *      where the CPU backend quantizes src1 to q8 and the other backend may not; here
 *      both sides get the same q8_0 blocks and only the order of the f32 sum may
 *      differ, so the bound is tighter. Measured (3 seeds x 4 input sets, every
 *      case): the f32 sum in 8 lanes, as the SIMD candidates do, stays below 1e-12;
 *      lossy kernels are far above: an f16 running sum 1.8e-7 to 1.7e-5, the vector
 *      quantized again to 4 bits 1.5e-3 to 1e-2 (5e-4 would let the f16 sum pass). The requantized
 *      vector is tests/fixtures/wrong/fx_lossy_q4dot.c;
 *   3. each y[r] is within (2 nb + 8) 2^-24 S_r of the oracle's, S_r the sum over
 *      blocks of |sumi * dx * dy| (nb blocks): the bound of any order of f32
 *      summation of the same terms, for both sides, so a kernel that gets one row
 *      badly wrong fails even where the mean over many rows would hide it.
 *
 * Changing anything here that alters the inputs, the outputs or the check
 * invalidates every ledger line recorded against this oracle.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define QK8_0       32
#define Q4_BLOCK    18 /* sizeof(block_q4_0): ggml_half d, uint8_t qs[16] */
#define Q8_BLOCK    34 /* sizeof(block_q8_0): ggml_half d, int8_t qs[32] */
#define Q4_TOL      1e-9
#define Q4_MAX_N    16384
#define Q4_MAX_ROWS 65536

enum { Q4_W = 0, Q4_X = 1, Q4_Y = 2, Q4_N_BUFFERS = 3 };
enum { Q4_PN = 0, Q4_PROWS = 1, Q4_N_PARAMS = 2 };

static const char *const q4_param_names[Q4_N_PARAMS] = {"n", "rows"};

static const kb_buffer_spec q4_buffers[Q4_N_BUFFERS] = {
    {"weights", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"vector", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"y", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* Lengths in spec order (bytes of blocks, then rows); a call reads the matrix
 * and the vector and writes the rows; 2 integer operations per weight. */
#define Q4_WBYTES(n, rows) ((uint64_t)(rows) * ((n) / QK8_0) * Q4_BLOCK)
#define Q4_CASE(nm, fl, n, rows)                                                              \
    {                                                                                         \
        nm, fl, 0, {n, rows}, {Q4_WBYTES(n, rows), (uint64_t)((n) / QK8_0) * Q8_BLOCK, rows}, \
            (double)Q4_WBYTES(n, rows) + (double)((n) / QK8_0) * Q8_BLOCK + 4.0 * (rows),     \
            2.0 * (double)(n) * (rows)                                                        \
    }

/* n: the row lengths of llama-style models (hidden 2048-5120, FFN 11008 and
 * 14336, 256 at the short end); rows: a slice of a mat-vec, 140 KB to 1.1 MB
 * of weights (16 input sets of each case are
 * generated and held per trial). `outlier` is the realistic one. */
static const kb_case_spec q4_cases[] = {
    Q4_CASE("n=4096,rows=128/outlier", KB_CASE_QUICK, 4096, 128),
    Q4_CASE("n=256,rows=1024/uniform", KB_CASE_QUICK, 256, 1024),
    Q4_CASE("n=14336,rows=32/outlier", KB_CASE_QUICK, 14336, 32),
    Q4_CASE("n=2048,rows=256/outlier", 0, 2048, 256),
    Q4_CASE("n=4096,rows=128/uniform", 0, 4096, 128),
    Q4_CASE("n=5120,rows=128/outlier", 0, 5120, 128),
    Q4_CASE("n=11008,rows=64/outlier", 0, 11008, 64),
    Q4_CASE("n=16384,rows=32/uniform", 0, 16384, 32),
    Q4_CASE("n=16384,rows=128/outlier", 0, 16384, 128),
    Q4_CASE("n=1024,rows=512/outlier", 0, 1024, 512),
    Q4_CASE("n=512,rows=1024/outlier", 0, 512, 1024),
    Q4_CASE("n=8192,rows=256/uniform", 0, 8192, 256),
};
#define Q4_N_CASES (sizeof q4_cases / sizeof q4_cases[0])

static const kb_param_range q4_ranges[Q4_N_PARAMS] = {
    {256, Q4_MAX_N, QK8_0, 0, 0},
    {1, Q4_MAX_ROWS, 0, 0, 0},
};

static const char *const q4_distributions[] = {"outlier", "uniform"};

static int q4_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[Q4_PN], rows = cs->params[Q4_PROWS];
    if (n < 256 || n > Q4_MAX_N || n % QK8_0 != 0 || rows < 1 || rows > Q4_MAX_ROWS) {
        snprintf(err, err_len,
                 "q4-0-dot: n must be a multiple of 32 in [256, 16384], rows in [1, 65536]");
        return -1;
    }
    const kb_case_spec c = Q4_CASE(cs->name, cs->flags, n, rows);
    memcpy(cs->lengths, c.lengths, sizeof c.lengths);
    cs->bytes_per_call = c.bytes_per_call;
    cs->flops_per_call = c.flops_per_call;
    return 0;
}

/* ---- generator ------------------------------------------------------- */

/* `outlier`, as LLM weights and activations come: weights roughly normal
 * (sd 0.02), activations roughly normal (sd 1); one channel in 64, chosen by
 * the seed, is an outlier channel (LLM.int8's "emergent features"), its
 * weights 4x and its
 * activations 20x as large, so the blocks that hold one have a large scale
 * and the rest of their values quantize coarsely. `uniform`: both uniform in
 * [-1, 1). Each block of 32 values is then quantized as ggml does. */
#define Q4_OUT_EVERY 64
#define Q4_W_SD      0.02f
#define Q4_W_OUT     4.0f
#define Q4_X_OUT     20.0f

static void q4_outlier_channels(uint64_t seed, uint32_t n, uint8_t *mask)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0x7138, 0));
    for (uint32_t c = 0; c < n; c++) mask[c] = kb_rng_below(&r, Q4_OUT_EVERY) == 0;
}

/* Roughly normal values, mean 0 and standard deviation sd: the centred sum
 * of four 16-bit uniforms of one 64-bit draw (Irwin-Hall, variance 1/3,
 * scaled by sqrt(3)), bounded at 3.46 sd. An integer and one f32 multiply
 * each, so the same bits everywhere, and ten times cheaper than a Gaussian
 * draw: the host generates 32 input sets of every case in a trial. */
static void q4_normal(kb_rng *r, float *v, int n, float sd)
{
    const float scale = sd * 0x1.bb67aep-16f; /* sqrt(3) / 65536 */
    for (int j = 0; j < n; j++) {
        const uint64_t u = kb_rng_next(r);
        const int32_t s =
            (int32_t)((u & 0xFFFF) + (u >> 16 & 0xFFFF) + (u >> 32 & 0xFFFF) + (u >> 48));
        v[j] = (float)(s - 131070) * scale;
    }
}

/* One row of n values (outlier: sd, times `out` in outlier channels), quantized
 * to q4_0 (q4) or q8_0. */
static void q4_row(kb_rng *r, int outlier, const uint8_t *mask, float sd, float out, uint32_t n,
                   int q4, uint8_t *dst)
{
    float v[QK8_0];
    for (uint32_t b = 0; b < n / QK8_0; b++) {
        if (outlier) {
            q4_normal(r, v, QK8_0, sd);
            for (int j = 0; j < QK8_0; j++)
                if (mask[b * QK8_0 + j]) v[j] *= out;
        } else {
            kb_gen_uniform_f32(r, v, QK8_0, -1.0f, 1.0f);
        }
        if (q4)
            kb_ggml_quantize_q4_0(v, dst + (uint64_t)b * Q4_BLOCK);
        else
            kb_ggml_quantize_q8_0(v, dst + (uint64_t)b * Q8_BLOCK);
    }
}

static int q4_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    kb_case_spec c = *cs;
    if (q4_shape(&c, err, err_len) != 0) return -1;
    const uint32_t n = (uint32_t)cs->params[Q4_PN], rows = (uint32_t)cs->params[Q4_PROWS];
    if (n_bufs != Q4_N_BUFFERS || bufs[Q4_W].count != c.lengths[Q4_W] ||
        bufs[Q4_X].count != c.lengths[Q4_X] || !bufs[Q4_W].data || !bufs[Q4_X].data) {
        snprintf(err, err_len, "q4-0-dot: generate got the wrong buffers");
        return -1;
    }
    const char *slash = strrchr(cs->name, '/');
    const int outlier = slash && strcmp(slash + 1, "outlier") == 0;
    uint8_t mask[Q4_MAX_N];
    q4_outlier_channels(seed, n, mask);
    kb_rng r;
    const uint64_t row_bytes = (uint64_t)(n / QK8_0) * Q4_BLOCK;
    for (uint32_t i = 0; i < rows; i++) {
        kb_rng_seed(&r, kb_rng_derive(seed, 0x7177 + ((uint64_t)set << 32), i));
        q4_row(&r, outlier, mask, Q4_W_SD, Q4_W_OUT, n, 1,
               (uint8_t *)bufs[Q4_W].data + i * row_bytes);
    }
    kb_rng_seed(&r, kb_rng_derive(seed, 0x7178, set));
    q4_row(&r, outlier, mask, 1.0f, Q4_X_OUT, n, 0, bufs[Q4_X].data);
    return 0;
}

/* ---- the reference kernel -------------------------------------------- */

/* The int sum of one block's products, as ggml's scalar loop forms it. */
static int q4_sumi(const uint8_t *xb, const uint8_t *yb)
{
    const uint8_t *xq = xb + 2;
    const int8_t *yq = (const int8_t *)(yb + 2);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < QK8_0 / 2; ++j) {
        const int v0 = (xq[j] & 0x0F) - 8;
        const int v1 = (xq[j] >> 4) - 8;
        sumi0 += (v0 * yq[j]);
        sumi1 += (v1 * yq[j + QK8_0 / 2]);
    }
    return sumi0 + sumi1;
}

/* ggml_vec_dot_q4_0_q8_0, the scalar loop: x one row, y the vector. */
static float q4_vec_dot(uint32_t n, const uint8_t *x, const uint8_t *y)
{
    const int nb = (int)(n / QK8_0);
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        const uint8_t *xb = x + (uint64_t)ib * Q4_BLOCK, *yb = y + (uint64_t)ib * Q8_BLOCK;
        const int sumi = q4_sumi(xb, yb);
        sumf +=
            sumi * kb_ggml_fp16_to_fp32(kb_ggml_half(xb)) * kb_ggml_fp16_to_fp32(kb_ggml_half(yb));
    }
    return sumf;
}

/* ---- the check ------------------------------------------------------- */

/* S_r: the sum over blocks of |sumi * dx * dy|, in double. */
static double q4_abs_terms(uint32_t n, const uint8_t *x, const uint8_t *y)
{
    double s = 0;
    for (uint32_t ib = 0; ib < n / QK8_0; ib++) {
        const uint8_t *xb = x + (uint64_t)ib * Q4_BLOCK, *yb = y + (uint64_t)ib * Q8_BLOCK;
        const double t = (double)q4_sumi(xb, yb) * kb_ggml_fp16_to_fp32(kb_ggml_half(xb)) *
                         kb_ggml_fp16_to_fp32(kb_ggml_half(yb));
        s += t < 0 ? -t : t;
    }
    return s;
}

static int q4_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    const uint32_t n = (uint32_t)cs->params[Q4_PN], rows = (uint32_t)cs->params[Q4_PROWS];
    const uint64_t row_bytes = (uint64_t)(n / QK8_0) * Q4_BLOCK;
    if (n_inputs != 2 || n_outputs != 1 || got[0].count != rows || expected[0].count != rows ||
        inputs[0].count != rows * row_bytes ||
        inputs[1].count != (uint64_t)(n / QK8_0) * Q8_BLOCK) {
        snprintf(reason, reason_len, "q4-0-dot: the check got the wrong buffers");
        return 1;
    }
    const float *e = expected[0].data, *g = got[0].data;
    double num = 0, den = 0;
    for (uint32_t i = 0; i < rows; i++) {
        const double gi = g[i], ei = e[i], d = gi - ei;
        if (!(gi - gi == 0)) {
            snprintf(reason, reason_len, "y[%u] = %g is not finite (expected %.9g)", i, gi, ei);
            return 1;
        }
        num += d * d, den += ei * ei;
    }
    if (num > tol * den) {
        snprintf(reason, reason_len,
                 "normalized mean squared error %.3g over %u rows is above %g (test-backend-ops' "
                 "NMSE, sum (got - exp)^2 / sum exp^2)",
                 den > 0 ? num / den : num, rows, tol);
        return 1;
    }
    const double nb = (double)(n / QK8_0);
    for (uint32_t i = 0; i < rows; i++) {
        const double d = (double)g[i] - (double)e[i];
        const double bound =
            (2 * nb + 8) * 0x1.0p-24 *
            q4_abs_terms(n, (const uint8_t *)inputs[0].data + i * row_bytes, inputs[1].data);
        if (d > bound || -d > bound) {
            snprintf(reason, reason_len,
                     "y[%u]: expected %.9g, got %.9g, off by %.3g (any order of the f32 sum "
                     "stays within %.3g)",
                     i, (double)e[i], (double)g[i], d < 0 ? -d : d, bound);
            return 1;
        }
    }
    return 0;
}

/* ---- plugin ---------------------------------------------------------- */

typedef struct q4_state {
    const kb_host *host;
    uint32_t n, rows;
} q4_state;

static int q4_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != Q4_N_PARAMS || n_statics != 0) {
        snprintf(err, err_len, "q4-0-dot: prepare got the wrong case");
        return KB_ERR_INTERNAL;
    }
    const int64_t n = cs->params[Q4_PN], rows = cs->params[Q4_PROWS];
    (void)statics;
    if (n < 256 || n > Q4_MAX_N || n % QK8_0 != 0 || rows < 1 || rows > Q4_MAX_ROWS) {
        snprintf(err, err_len, "q4-0-dot: unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    q4_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->n = (uint32_t)n;
    st->rows = (uint32_t)rows;
    *state = st;
    return KB_OK;
}

static int q4_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const q4_state *st = state;
    const uint64_t row_bytes = (uint64_t)(st->n / QK8_0) * Q4_BLOCK;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->rows * row_bytes ||
        inputs[1].count != (uint64_t)(st->n / QK8_0) * Q8_BLOCK || outputs[0].count != st->rows) {
        snprintf(err, err_len, "q4-0-dot: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    float *y = outputs[0].data;
    for (uint32_t i = 0; i < st->rows; i++)
        y[i] = q4_vec_dot(st->n, (const uint8_t *)inputs[0].data + i * row_bytes, inputs[1].data);
    return KB_OK;
}

static void q4_release(void *state)
{
    q4_state *st = state;
    st->host->free_aligned(st->host, st);
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target q4_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "q4-0-dot",
    .description = "ggml q4_0 x q8_0 dot: each q4_0 row of a matrix with a q8_0 vector",
    .upstream = "ggml 9a4acb37 src/ggml-cpu/ggml-cpu-quants.c ggml_vec_dot_q4_0_q8_0 (scalar "
                "loop; llama.cpp: ggml_vec_dot_q4_0_q8_0_generic), src/ggml-common.h block_q4_0, "
                "block_q8_0, src/ggml-quants.c quantize_row_q4_0_ref, quantize_row_q8_0_ref",
    .n_params = Q4_N_PARAMS,
    .n_buffers = Q4_N_BUFFERS,
    .param_names = q4_param_names,
    .buffers = q4_buffers,
    .n_cases = Q4_N_CASES,
    .cases = q4_cases,
    .rel_tol = Q4_TOL,
    .generate = q4_generate,
    .param_ranges = q4_ranges,
    .distributions = q4_distributions,
    .n_distributions = 2,
    .max_case_bytes = 32u << 20,
    .shape = q4_shape,
    .check = q4_check,
};

static const kb_plugin q4_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "q4-0-dot",
    .name = "oracle",
    .version = "1",
    .prepare = q4_prepare,
    .run = q4_run,
    .release = q4_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &q4_oracle;
}

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &q4_target;
}
