/*
 * oracle.c -- the frozen reference for q4-0-matvec: the decode-time
 * matrix-vector product of a q4_0 model, as ggml's CPU backend runs
 * GGML_OP_MUL_MAT with a q4_0 weight matrix and one token: the activation
 * row is quantized to q8_0 (the vec_dot_type of q4_0) and every output is
 * ggml_vec_dot_q4_0_q8_0 of one weight row with it.
 *
 * Ported from ggml (github:ggerganov/ggml, commit 9a4acb37):
 *   src/ggml-common.h   block_q4_0 = { ggml_half d; uint8_t qs[16]; }, 18 bytes:
 *                       element j (0..15) is (qs[j] & 0x0F) - 8, element j + 16 is
 *                       (qs[j] >> 4) - 8, each times d; block_q8_0 = { ggml_half d;
 *                       int8_t qs[32]; }, 34 bytes
 *   src/ggml-impl.h     ggml_compute_fp16_to_fp32 / ggml_compute_fp32_to_fp16, the
 *                       portable bit-level versions (every fp16 value is exact in f32,
 *                       so F16C's vcvtph2ps gives the same bits)
 *   src/ggml-quants.c   quantize_row_q4_0_ref and quantize_row_q8_0_ref (the
 *                       generator's quantizers; these and the fp16 conversions are
 *                       generators/ggml.c, shared with the other ggml targets)
 *   src/ggml-cpu/ggml-cpu-quants.c  ggml_vec_dot_q4_0_q8_0, its scalar loop (llama.cpp
 *                       has it as ggml/src/ggml-cpu/quants.c
 *                       ggml_vec_dot_q4_0_q8_0_generic, unchanged):
 *       for each block ib: sumi = sum over j < 16 of ((qs[j] & 15) - 8) * y.qs[j]
 *                                 + ((qs[j] >> 4) - 8) * y.qs[j + 16]   (int);
 *                          sumf += sumi * fp16_to_fp32(x.d) * fp16_to_fp32(y.d);
 *   in f32, left to right ((sumi * dx) * dy, then the add), blocks in order, no
 *   fused multiply-add (-ffp-contract=off).
 *
 * Buffers: `weights` (static) rows * n/32 blocks of 18 bytes, row after row;
 * `vector` (per call) n/32 q8_0 blocks; `y` (output) rows f32, y[r] the dot
 * of row r with the vector.
 *
 * Correctness is the oracle's own check (ABI 1.2), the way llama.cpp's
 * test-backend-ops compares two backends: a SIMD kernel sums the per-block
 * terms in another order (lanes, several rows at once), multiplies the two
 * scales first (ggml's own AVX2 path) or fuses the multiply-add, so its f32
 * result differs from the oracle's in the last bits. The candidate is right
 * when
 *   1. every y[r] is finite (test-backend-ops: NaN, or Inf against a finite
 *      reference, is a mismatch);
 *   2. the normalized mean squared error over the rows,
 *      NMSE = sum (got - exp)^2 / sum exp^2, is at most tol = rel_tol = 1e-9.
 *      test-backend-ops' test_mul_mat allows 5e-4 because there the CPU backend
 *      quantizes src1 to q8_0 and the backend under test may not; here both sides
 *      get the same q8_0 blocks, so only the order and fusion of the f32 sum may
 *      differ and the bound can be far tighter. Measured in process (seeds 7919
 *      and 15838, sets 0 and 1, every case): baseline.so 0, portable.so at most
 *      8e-18, avx2.so and avx512.so 3e-14 to 2e-13, the OpenBLAS contender (f32
 *      sgemv on the dequantized matrix) 7e-14 to 3e-13; lossy kernels are far
 *      above: an f16 running sum (tests/fixtures/wrong/fx_lossy_q4mv.c) 1.0e-6 to
 *      6.5e-6, which 5e-4 would let pass, and one row of 4096 left at zero about
 *      1 / 4096 = 2.4e-4, which 5e-4 would let pass too;
 *   3. each y[r] is within (n + nb + 8) 2^-24 A_r of the oracle's, A_r the sum
 *      over the row's n elements of |(q - 8) dx * q' dy| (nb = n / 32 blocks):
 *      a bound for both sides whatever the order of the f32 sum, whether it sums
 *      exact per-block integers (the oracle: at most (nb + 1) 2^-24 S_r off the
 *      exact value, S_r = sum over blocks of |sumi dx dy| <= A_r) or rounded
 *      per-element products (a dequantize-then-FMA kernel, the f32 sgemv of the
 *      OpenBLAS contender: at most n 2^-24 A_r off), so a kernel that gets one row
 *      badly wrong fails even where the mean over many rows would hide it (a row
 *      left at zero is off by about A_r / sqrt(n), far beyond).
 *
 * Changing anything here that alters the inputs, the outputs or the check
 * invalidates every ledger line recorded against this oracle.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define QK       32
#define Q4_BLOCK 18 /* sizeof(block_q4_0): ggml_half d, uint8_t qs[16] */
#define Q8_BLOCK 34 /* sizeof(block_q8_0): ggml_half d, int8_t qs[32] */
#define MV_TOL   1e-9
#define MV_MIN_N 32
#define MV_MAX_N 16384
#define MV_MAX_R 32768
/* One input set: the matrix (at most 32768 x 16384 q4_0: 288 MiB) is held once, the
 * vector 32 times; 96 MiB keeps an ad hoc shape within what a small machine holds. */
#define MV_MAX_SET_BYTES (UINT64_C(96) << 20)

enum { MV_W = 0, MV_X = 1, MV_Y = 2, MV_N_BUFFERS = 3 };
enum { MV_PN = 0, MV_PROWS = 1, MV_N_PARAMS = 2 };

static const char *const mv_param_names[MV_N_PARAMS] = {"n", "rows"};

static const kb_buffer_spec mv_buffers[MV_N_BUFFERS] = {
    {"weights", KB_DT_U8, KB_ROLE_STATIC, 0, 0},
    {"vector", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"y", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* Lengths in spec order (bytes of blocks, then rows); a call reads the matrix
 * and the vector and writes the rows; 2 integer operations per weight. */
#define MV_WBYTES(n, rows) ((uint64_t)(rows) * ((n) / QK) * Q4_BLOCK)
#define MV_XBYTES(n)       ((uint64_t)((n) / QK) * Q8_BLOCK)
#define MV_CASE(nm, fl, n, rows)                                              \
    {                                                                         \
        nm, fl, 0, {n, rows}, {MV_WBYTES(n, rows), MV_XBYTES(n), rows},       \
            (double)MV_WBYTES(n, rows) + (double)MV_XBYTES(n) + 4.0 * (rows), \
            2.0 * (double)(n) * (rows)                                        \
    }

/* The weight matrices of a decoder layer, n the input width (the row length)
 * and rows the output width, from Llama-3.2-1B (hidden 2048, kv 512, FFN
 * 8192), Llama-3.2-3B (3072, FFN 8192), Llama-2-7B (4096, FFN 11008),
 * Llama-3-8B (4096, kv 1024, FFN 14336) and Llama-2-13B (5120): the q, k, v
 * and o projections, gate/up (rows = FFN) and down (n = FFN).
 * The quick subset is what one thread of ggml's mul_mat computes in one
 * call of a decode step (ggml_compute_forward_mul_mat splits the rows among
 * the threads): 512 rows of a 2048-wide matrix (Llama-3.2-1B's k and v, or a
 * quarter of q), 256 rows of a 4096-wide one (a sixteenth of Llama-3-8B's
 * q), about 1 MB of weights each. Short calls are also what the trial's
 * fresh probe can judge for a kernel that streams its static matrix: a
 * one-call batch pays the matrix's cold TLB and cache, which a timed batch
 * pays once; the host holds short calls (under 50 us) against a control of
 * one-call batches on seen inputs, and longer ones against the timed ratio,
 * which rejected avx512.so on n=4096,rows=512 as a replay (fresh 2x timed).
 * `outlier` is the realistic distribution. */
static const kb_case_spec mv_cases[] = {
    MV_CASE("n=2048,rows=512/outlier", KB_CASE_QUICK, 2048, 512),
    MV_CASE("n=2048,rows=512/uniform", KB_CASE_QUICK, 2048, 512),
    MV_CASE("n=4096,rows=256/outlier", KB_CASE_QUICK, 4096, 256),
    MV_CASE("n=2048,rows=2048/outlier", 0, 2048, 2048),
    MV_CASE("n=4096,rows=1024/outlier", 0, 4096, 1024),
    MV_CASE("n=2048,rows=2048/uniform", 0, 2048, 2048),
    MV_CASE("n=8192,rows=2048/outlier", 0, 8192, 2048),
    MV_CASE("n=2048,rows=8192/outlier", 0, 2048, 8192),
    MV_CASE("n=3072,rows=3072/outlier", 0, 3072, 3072),
    MV_CASE("n=8192,rows=3072/outlier", 0, 8192, 3072),
    MV_CASE("n=4096,rows=4096/outlier", 0, 4096, 4096),
    MV_CASE("n=4096,rows=4096/uniform", 0, 4096, 4096),
    MV_CASE("n=4096,rows=11008/outlier", 0, 4096, 11008),
    MV_CASE("n=4096,rows=14336/outlier", 0, 4096, 14336),
    MV_CASE("n=5120,rows=5120/outlier", 0, 5120, 5120),
};
#define MV_N_CASES (sizeof mv_cases / sizeof mv_cases[0])

static const kb_param_range mv_ranges[MV_N_PARAMS] = {
    {MV_MIN_N, MV_MAX_N, QK, 0, 0},
    {1, MV_MAX_R, 0, 0, 0},
};

static const char *const mv_distributions[] = {"outlier", "uniform"};

static int mv_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[MV_PN], rows = cs->params[MV_PROWS];
    if (n < MV_MIN_N || n > MV_MAX_N || n % QK != 0 || rows < 1 || rows > MV_MAX_R) {
        snprintf(err, err_len,
                 "q4-0-matvec: n must be a multiple of 32 in [32, 16384], rows in [1, 32768]");
        return -1;
    }
    const kb_case_spec c = MV_CASE(cs->name, cs->flags, n, rows);
    memcpy(cs->lengths, c.lengths, sizeof c.lengths);
    cs->bytes_per_call = c.bytes_per_call;
    cs->flops_per_call = c.flops_per_call;
    return 0;
}

/* ---- generator ------------------------------------------------------- */

/* `outlier`, as LLM weights and activations come. Weights: roughly normal
 * (sd 0.02; the sum of four uniform 16-bit draws, so a matrix of 58M values
 * takes a fraction of a second to draw, exactly on every platform), one
 * value in 256 an outlier 10x as large, as trained weights have heavy tails:
 * the block that holds one gets a large scale and its other values quantize
 * to a few levels around zero. Activations: normal (sd 1), and one channel in
 * 128, chosen by the seed, 30x as large (LLM.int8's "emergent features": the
 * same few channels in every token), so the vector blocks that hold one have
 * a large scale too. `uniform`: both uniform in [-1, 1). Each block of 32
 * values is then quantized as ggml does. */
#define MV_W_SD      0.02f
#define MV_W_OUT     10.0f
#define MV_W_OUT_1IN 256
#define MV_X_OUT     30.0f
#define MV_X_OUT_1IN 128

/* sd * (a standard Irwin-Hall(4) draw): four 16-bit uniforms summed, centred
 * and scaled to unit variance (variance of one: (2^32 - 1) / 12). */
static float mv_rough_normal(kb_rng *r, float sd)
{
    const uint64_t u = kb_rng_next(r);
    const int32_t s = (int32_t)(u & 0xFFFF) + (int32_t)(u >> 16 & 0xFFFF) +
                      (int32_t)(u >> 32 & 0xFFFF) + (int32_t)(u >> 48) - 2 * 65535;
    return (float)s * (sd / 37837.2267f); /* sqrt(4 (2^32 - 1) / 12) */
}

static void mv_weight_row(kb_rng *r, int outlier, uint32_t n, uint8_t *dst)
{
    float v[QK];
    for (uint32_t b = 0; b < n / QK; b++) {
        if (outlier)
            for (int j = 0; j < QK; j++) {
                v[j] = mv_rough_normal(r, MV_W_SD);
                if (kb_rng_below(r, MV_W_OUT_1IN) == 0) v[j] *= MV_W_OUT;
            }
        else
            kb_gen_uniform_f32(r, v, QK, -1.0f, 1.0f);
        kb_ggml_quantize_q4_0(v, dst + (uint64_t)b * Q4_BLOCK);
    }
}

static void mv_vector(uint64_t seed, uint32_t set, int outlier, uint32_t n, uint8_t *dst)
{
    kb_rng r, rc;
    kb_rng_seed(&r, kb_rng_derive(seed, 0x7178, set));
    kb_rng_seed(&rc, kb_rng_derive(seed, 0x7138, 0)); /* the outlier channels: per seed */
    float v[QK];
    for (uint32_t b = 0; b < n / QK; b++) {
        if (outlier) {
            kb_gen_normal_f32(&r, v, QK, 0.0f, 1.0f);
            for (int j = 0; j < QK; j++)
                if (kb_rng_below(&rc, MV_X_OUT_1IN) == 0) v[j] *= MV_X_OUT;
        } else {
            kb_gen_uniform_f32(&r, v, QK, -1.0f, 1.0f);
        }
        kb_ggml_quantize_q8_0(v, dst + (uint64_t)b * Q8_BLOCK);
    }
}

static int mv_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    kb_case_spec c = *cs;
    if (mv_shape(&c, err, err_len) != 0) return -1;
    const uint32_t n = (uint32_t)cs->params[MV_PN], rows = (uint32_t)cs->params[MV_PROWS];
    if (n_bufs != MV_N_BUFFERS || bufs[MV_W].count != c.lengths[MV_W] ||
        bufs[MV_X].count != c.lengths[MV_X] || !bufs[MV_W].data || !bufs[MV_X].data) {
        snprintf(err, err_len, "q4-0-matvec: generate got the wrong buffers");
        return -1;
    }
    const char *slash = strrchr(cs->name, '/');
    const int outlier = slash && strcmp(slash + 1, "outlier") == 0;
    const uint64_t row_bytes = (uint64_t)(n / QK) * Q4_BLOCK;
    if (set == 0)
        for (uint32_t i = 0; i < rows; i++) {
            kb_rng r;
            kb_rng_seed(&r, kb_rng_derive(seed, 0x7177, i));
            mv_weight_row(&r, outlier, n, (uint8_t *)bufs[MV_W].data + i * row_bytes);
        }
    mv_vector(seed, set, outlier, n, bufs[MV_X].data);
    return 0;
}

/* ---- the reference kernel -------------------------------------------- */

/* ggml_vec_dot_q4_0_q8_0, the scalar loop: x one row, y the vector. */
static float mv_vec_dot(uint32_t n, const uint8_t *x, const uint8_t *y)
{
    const int nb = (int)(n / QK);
    float sumf = 0;
    for (int ib = 0; ib < nb; ++ib) {
        const uint8_t *xb = x + (uint64_t)ib * Q4_BLOCK, *yb = y + (uint64_t)ib * Q8_BLOCK;
        const uint8_t *xq = xb + 2;
        const int8_t *yq = (const int8_t *)(yb + 2);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < QK / 2; ++j) {
            const int v0 = (xq[j] & 0x0F) - 8;
            const int v1 = (xq[j] >> 4) - 8;
            sumi0 += v0 * yq[j];
            sumi1 += v1 * yq[j + QK / 2];
        }
        const int sumi = sumi0 + sumi1;
        sumf +=
            sumi * kb_ggml_fp16_to_fp32(kb_ggml_half(xb)) * kb_ggml_fp16_to_fp32(kb_ggml_half(yb));
    }
    return sumf;
}

/* ---- the check ------------------------------------------------------- */

/* A_r: the sum over the row's elements of |(q - 8) dx * q' dy|, in double. */
static double mv_abs_terms(uint32_t n, const uint8_t *x, const uint8_t *y)
{
    double s = 0;
    for (uint32_t ib = 0; ib < n / QK; ib++) {
        const uint8_t *xb = x + (uint64_t)ib * Q4_BLOCK, *yb = y + (uint64_t)ib * Q8_BLOCK;
        const int8_t *yq = (const int8_t *)(yb + 2);
        int abs = 0;
        for (int j = 0; j < QK / 2; j++) {
            const int p0 = ((xb[2 + j] & 0x0F) - 8) * yq[j];
            const int p1 = ((xb[2 + j] >> 4) - 8) * yq[j + QK / 2];
            abs += (p0 < 0 ? -p0 : p0) + (p1 < 0 ? -p1 : p1);
        }
        const double d =
            (double)kb_ggml_fp16_to_fp32(kb_ggml_half(xb)) * kb_ggml_fp16_to_fp32(kb_ggml_half(yb));
        s += abs * (d < 0 ? -d : d);
    }
    return s;
}

static int mv_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    const uint32_t n = (uint32_t)cs->params[MV_PN], rows = (uint32_t)cs->params[MV_PROWS];
    const uint64_t row_bytes = (uint64_t)(n / QK) * Q4_BLOCK;
    if (n_inputs != 2 || n_outputs != 1 || got[0].count != rows || expected[0].count != rows ||
        inputs[0].count != rows * row_bytes || inputs[1].count != MV_XBYTES(n)) {
        snprintf(reason, reason_len, "q4-0-matvec: the check got the wrong buffers");
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
    /* A_r >= |exact| >= |e_r| / 2 (the oracle is within (nb + 1) 2^-24 A_r of
     * the exact sum), so a row within half the bound taken on |e_r| passes
     * without the pass over its elements. */
    const double unit = ((double)n + n / QK + 8) * 0x1.0p-24;
    for (uint32_t i = 0; i < rows; i++) {
        const double d = (double)g[i] - (double)e[i], ad = d < 0 ? -d : d;
        const double ae = e[i] < 0 ? -(double)e[i] : (double)e[i];
        if (ad <= 0.5 * unit * ae) continue;
        const double bound =
            unit * mv_abs_terms(n, (const uint8_t *)inputs[0].data + i * row_bytes, inputs[1].data);
        if (ad > bound) {
            snprintf(reason, reason_len,
                     "y[%u]: expected %.9g, got %.9g, off by %.3g (any order of the f32 sum, "
                     "per block or per element, stays within %.3g)",
                     i, (double)e[i], (double)g[i], ad, bound);
            return 1;
        }
    }
    return 0;
}

/* ---- plugin ---------------------------------------------------------- */

typedef struct mv_state {
    const kb_host *host;
    uint32_t n, rows;
    const uint8_t *w;
} mv_state;

static int mv_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (cs->n_params != MV_N_PARAMS || n_statics != 1) {
        snprintf(err, err_len, "q4-0-matvec: prepare got the wrong case");
        return KB_ERR_INTERNAL;
    }
    const int64_t n = cs->params[MV_PN], rows = cs->params[MV_PROWS];
    if (n < MV_MIN_N || n > MV_MAX_N || n % QK != 0 || rows < 1 || rows > MV_MAX_R ||
        statics[0].count != MV_WBYTES(n, rows)) {
        snprintf(err, err_len, "q4-0-matvec: unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    mv_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->n = (uint32_t)n;
    st->rows = (uint32_t)rows;
    st->w = statics[0].data;
    *state = st;
    return KB_OK;
}

static int mv_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const mv_state *st = state;
    const uint64_t row_bytes = (uint64_t)(st->n / QK) * Q4_BLOCK;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != MV_XBYTES(st->n) ||
        outputs[0].count != st->rows) {
        snprintf(err, err_len, "q4-0-matvec: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    float *y = outputs[0].data;
    for (uint32_t i = 0; i < st->rows; i++)
        y[i] = mv_vec_dot(st->n, st->w + i * row_bytes, inputs[0].data);
    return KB_OK;
}

static void mv_release(void *state)
{
    mv_state *st = state;
    st->host->free_aligned(st->host, st);
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target mv_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "q4-0-matvec",
    .description = "q4_0 matrix times q8_0 vector (ggml block layouts): each row's "
                   "ggml_vec_dot_q4_0_q8_0, the decode-time matmul of a q4_0 model",
    .upstream = "ggml 9a4acb37 src/ggml-cpu/ggml-cpu-quants.c ggml_vec_dot_q4_0_q8_0 (scalar "
                "loop; llama.cpp ggml/src/ggml-cpu/quants.c ggml_vec_dot_q4_0_q8_0_generic), "
                "src/ggml-quants.c quantize_row_q4_0_ref/quantize_row_q8_0_ref, "
                "src/ggml-common.h block_q4_0/block_q8_0",
    .n_params = MV_N_PARAMS,
    .n_buffers = MV_N_BUFFERS,
    .param_names = mv_param_names,
    .buffers = mv_buffers,
    .n_cases = MV_N_CASES,
    .cases = mv_cases,
    .rel_tol = MV_TOL,
    .generate = mv_generate,
    .param_ranges = mv_ranges,
    .distributions = mv_distributions,
    .n_distributions = 2,
    .max_case_bytes = MV_MAX_SET_BYTES,
    .shape = mv_shape,
    .check = mv_check,
};

static const kb_plugin mv_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "q4-0-matvec",
    .name = "oracle",
    .version = "1",
    .prepare = mv_prepare,
    .run = mv_run,
    .release = mv_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &mv_oracle;
}

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &mv_target;
}
