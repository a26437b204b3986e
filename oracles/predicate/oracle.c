/*
 * oracle.c -- the predicate target: spec, inputs and reference.
 *
 * A filter on one column, as Lance evaluates a scan's `WHERE` (lance-datafusion plans it,
 * DataFusion's BinaryExpr / InListExpr call arrow-rs's comparison kernels, FilterExec
 * keeps the rows whose result is true): `x = c`, `x < c`, `x BETWEEN lo AND hi` (which
 * DataFusion rewrites to `x >= lo AND x <= hi`) or `x IN (c1, .., ck)`, k <= 8, on an i32,
 * i64 or f32 column with an Arrow validity bitmap. Out: the selection twice, as an Arrow
 * boolean bitmap (bit i of byte i / 8, LSB first; bits past n zero) and as the ascending
 * list of selected row indices (what `filter` / a RowIdMask iterates).
 *
 * Upstream: arrow-rs arrow-ord/src/cmp.rs (compare_op, apply_op: eq is is_eq, lt is
 * is_lt, gt_eq is !is_lt(x, c), lt_eq is !is_lt(c, x)) and arrow-array/src/arithmetic.rs
 * (ArrowNativeTypeOp for floats: compare is f32::total_cmp, is_eq is to_bits() ==),
 * apache/arrow-rs cd7c6b83abd6605a83014b3d043930a592542510. The rules that follow, and that
 * a candidate must keep:
 *   - Floats compare by IEEE 754 totalOrder, not by IEEE comparison: -NaN < -inf < ... <
 *     -0.0 < +0.0 < ... < +inf < +NaN, NaNs ordered by payload. So `x = c` holds exactly
 *     when the bits are equal: NaN = NaN (same bits) is true, -0.0 = +0.0 is false; `x < c`
 *     is true for x = -NaN and any c but a smaller NaN; a positive NaN lies above every
 *     BETWEEN range with non-NaN bounds. (A SIMD `cmpps` gives IEEE answers: NaN false,
 *     -0.0 = +0.0; it is wrong here, and tests/fixtures/wrong/fx_wrong_pred.c is that
 *     mistake.) In C: key(bits) = bits ^ ((bits >> 31) >> 1) as a signed i32 orders as
 *     total_cmp (Rust's own implementation).
 *   - Nulls: a comparison with a null row is null (compare_op's NullBuffer), and a filter
 *     keeps only true, so a null row is never selected, whatever its value slot holds
 *     (the generator puts matching values under nulls). The constants are never null.
 *
 * Buffers, all per call (a query brings its column batch and its constants): `col` (u8,
 * n * width: i32 or f32 4 bytes, i64 8, little endian), `validity` (u8, ceil(n / 8), 1 =
 * valid), `consts` (u64, 9: consts[0] = k, the number of constants, consts[1..k] their bits:
 * i64 as two's complement, i32 and f32 in the low 32 bits; eq and lt k = 1, between k = 2
 * (lo, hi), in k = 2..8; the rest zero). Outputs: `mask` (u8, ceil(n / 8)), `idx` (u32,
 * capacity n, variable: produced = selected rows). Both compare bitwise.
 *
 * Distributions (after '/'): `<type>_<op>`, type i32, i64 or f32, op eq, lt, between, in.
 * The column's values by type, each as real columns are:
 *   i32  categorical codes (a status, a category id), Zipf-like: the bit length of the code
 *        uniform in 1..10 (density 1/x on [1, 1024)), minus 100, so some are negative;
 *   i64  event timestamps in ms: rising about 1 s a row with +-5 s of jitter from a random
 *        start in 2023, so a `<` or BETWEEN selects long runs;
 *   f32  prices: cents 1..50000 / 100 (one correctly rounded division), a tenth negated; 1% NaN
 *        (+qNaN, -qNaN and payload NaNs), 0.6% -0.0, 0.6% +0.0, 0.2% +-inf.
 * Each call draws its constants from the same law (so `=` finds the popular codes), and
 * for f32 now and then a NaN, -0.0 or +0.0 constant; about 3% of rows are null, most in
 * runs of 8 to 64, the rest alone, half of them with value slots that would match.
 * Selectivity varies per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, N_PARAMS };
enum { B_COL, B_VALID, B_CONSTS, B_MASK, B_IDX, N_BUFFERS };
enum { T_I32, T_I64, T_F32 };
enum { OP_EQ, OP_LT, OP_BETWEEN, OP_IN };
#define PD_MAX_N    (INT64_C(1) << 22)
#define PD_CONSTS   9
#define PD_BYTES(n) ((n) + 7) / 8
#define PD_W(t)     ((t) == T_I64 ? 8 : 4)

/* Bytes a call moves: the column, validity and mask; the index list when half is kept. */
#define CASE(name, flags, n, t)                                                     \
    {                                                                               \
        name, flags, 0, {n}, {(n)*PD_W(t), PD_BYTES(n), PD_CONSTS, PD_BYTES(n), n}, \
            (double)(n)*PD_W(t) + 2.0 * PD_BYTES(n) + 2.0 * (double)(n), 0.0        \
    }
#define Q KB_CASE_QUICK

/* clang-format off */
static const kb_case_spec pd__cases[] = {
    CASE("n=262144/i32_eq", Q, 262144, T_I32),
    CASE("n=262144/f32_between", Q, 262144, T_F32),
    CASE("n=131072/i64_lt", Q, 131072, T_I64),
    CASE("n=131072/i32_in", Q, 131072, T_I32),
    CASE("n=65536/f32_eq", 0, 65536, T_F32),
    CASE("n=100000/f32_lt", 0, 100000, T_F32),
    CASE("n=65537/f32_in", 0, 65537, T_F32),
    CASE("n=1000003/i64_between", 0, 1000003, T_I64),
    CASE("n=4096/i32_lt", 0, 4096, T_I32),
    CASE("n=1048576/i32_between", 0, 1048576, T_I32),
    CASE("n=262144/i64_in", 0, 262144, T_I64),
    CASE("n=77777/i64_eq", 0, 77777, T_I64),
    CASE("n=1000/f32_between", 0, 1000, T_F32),
};
/* clang-format on */

static const char *const pd__param_names[N_PARAMS] = {"n"};

static const kb_buffer_spec pd__buffers[N_BUFFERS] = {
    {"col", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"validity", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"consts", KB_DT_U64, KB_ROLE_CALL, 0, 0},
    {"mask", KB_DT_U8, KB_ROLE_OUTPUT, 0, 0},
    {"idx", KB_DT_U32, KB_ROLE_OUTPUT, KB_BUF_VARIABLE, 0},
};

static const char *const pd__distributions[] = {
    "i32_eq",      "i32_lt", "i32_between", "i32_in", "i64_eq",      "i64_lt",
    "i64_between", "i64_in", "f32_eq",      "f32_lt", "f32_between", "f32_in",
};
#define PD_N_DIST 12

/* The distribution's index (type * 4 + op), or -1. */
static int pd__dist(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < PD_N_DIST; k++)
        if (strcmp(d + 1, pd__distributions[k]) == 0) return k;
    return -1;
}

/* ---- the generator ----------------------------------------------------- */

static uint32_t pd__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* One value of the column's law, as its bits (i64 whole, i32/f32 in the low 32 bits).
 * `row` places a timestamp; a constant passes a random row. */
static uint64_t pd__value(kb_rng *r, int type, uint64_t row, int64_t t0)
{
    if (type == T_I32) {
        const uint32_t bits = 1 + (uint32_t)kb_rng_below(r, 10), top = UINT32_C(1) << (bits - 1);
        return (uint32_t)((int32_t)(top | (uint32_t)kb_rng_below(r, top)) - 100);
    }
    if (type == T_I64)
        return (uint64_t)(t0 + (int64_t)row * 1000 + (int64_t)kb_rng_below(r, 10001) - 5000);
    const uint64_t u = kb_rng_below(r, 1000);
    if (u < 10) { /* NaNs: +qNaN, -qNaN, payloads of either sign */
        static const uint32_t nan[4] = {0x7fc00000u, 0xffc00000u, 0x7fc00001u, 0xff800001u};
        return nan[kb_rng_below(r, 4)];
    }
    if (u < 16) return 0x80000000u; /* -0.0 */
    if (u < 22) return 0u;          /* +0.0 */
    if (u < 24) return u < 23 ? 0x7f800000u : 0xff800000u;
    float f = (float)(1 + kb_rng_below(r, 50000)) / 100.0f;
    if (kb_rng_below(r, 10) == 0) f = -f;
    return pd__f32_bits(f);
}

static void pd__put(uint8_t *col, int type, uint64_t i, uint64_t v)
{
    const int w = PD_W(type);
    for (int b = 0; b < w; b++) col[i * w + b] = (uint8_t)(v >> (8 * b));
}

static void pd__gen_consts(kb_rng *r, int type, int op, uint64_t n, int64_t t0, uint64_t *c)
{
    memset(c, 0, PD_CONSTS * sizeof *c);
    const uint64_t k = op == OP_IN ? 2 + kb_rng_below(r, 7) : op == OP_BETWEEN ? 2 : 1;
    c[0] = k;
    for (uint64_t j = 1; j <= k; j++) {
        c[j] = pd__value(r, type, kb_rng_below(r, n), t0);
        if (type == T_F32 && kb_rng_below(r, 8) == 0) { /* a special constant */
            static const uint32_t sp[4] = {0x7fc00000u, 0x80000000u, 0u, 0xffc00000u};
            c[j] = sp[kb_rng_below(r, 4)];
        }
    }
    if (op == OP_BETWEEN && kb_rng_below(r, 8) != 0) { /* mostly lo <= hi, as queries write */
        int swap;
        if (type == T_I64)
            swap = (int64_t)c[1] > (int64_t)c[2];
        else if (type == T_I32)
            swap = (int32_t)(uint32_t)c[1] > (int32_t)(uint32_t)c[2];
        else { /* totalOrder keys */
            const int32_t a = (int32_t)((uint32_t)c[1] ^ (((uint32_t)c[1] >> 31) >> 1));
            const int32_t b = (int32_t)((uint32_t)c[2] ^ (((uint32_t)c[2] >> 31) >> 1));
            swap = a > b;
        }
        if (swap) {
            const uint64_t x = c[1];
            c[1] = c[2];
            c[2] = x;
        }
    }
}

static int pd__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N];
    const int d = pd__dist(cs->name), type = d / 4, op = d % 4;
    if (n_bufs != N_BUFFERS || d < 0 || n < 1 || n > PD_MAX_N ||
        bufs[B_COL].count != (uint64_t)n * PD_W(type) ||
        bufs[B_VALID].count != (uint64_t)PD_BYTES(n) || bufs[B_CONSTS].count != PD_CONSTS ||
        bufs[B_MASK].count != (uint64_t)PD_BYTES(n) || bufs[B_IDX].count != (uint64_t)n) {
        snprintf(err, err_len,
                 "predicate generate: case %s needs a /<i32|i64|f32>_<eq|lt|between|in> "
                 "distribution, n 1..2^22, a column of n values, ceil(n/8) validity bytes, 9 "
                 "constants, a ceil(n/8) mask and n indices",
                 cs->name);
        return -1;
    }
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, 0));
    /* a start in 2023 (ms since 1970) */
    const int64_t t0 = INT64_C(1672531200000) + (int64_t)kb_rng_below(&r, UINT64_C(31536000000));
    uint64_t *c = bufs[B_CONSTS].data;
    uint8_t *col = bufs[B_COL].data, *valid = bufs[B_VALID].data;
    pd__gen_consts(&r, type, op, (uint64_t)n, t0, c);
    memset(valid, 0, (size_t)PD_BYTES(n));
    uint64_t null_run = 0;
    for (uint64_t i = 0; i < (uint64_t)n; i++) {
        if (null_run == 0 && kb_rng_below(&r, 10000) < 31) /* 9.75 rows a start: 3% */
            null_run = kb_rng_below(&r, 4) == 0 ? 8 + kb_rng_below(&r, 57) : 1;
        const int is_null = null_run > 0;
        if (null_run) null_run--;
        uint64_t v = pd__value(&r, type, i, t0);
        if (is_null && kb_rng_below(&r, 2) == 0) v = c[1]; /* a value that would match */
        pd__put(col, type, i, v);
        if (!is_null) valid[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

static const kb_param_range pd__ranges[N_PARAMS] = {{1, PD_MAX_N, 1, 0, 0}};

static int pd__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N];
    const int d = pd__dist(cs->name);
    if (d < 0) {
        snprintf(err, err_len, "predicate: distribution must be <i32|i64|f32>_<eq|lt|between|in>");
        return -1;
    }
    const int w = PD_W(d / 4);
    cs->lengths[B_COL] = (uint64_t)n * w;
    cs->lengths[B_VALID] = (uint64_t)PD_BYTES(n);
    cs->lengths[B_CONSTS] = PD_CONSTS;
    cs->lengths[B_MASK] = (uint64_t)PD_BYTES(n);
    cs->lengths[B_IDX] = (uint64_t)n;
    cs->bytes_per_call = (double)n * w + 2.0 * PD_BYTES(n) + 2.0 * (double)n;
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target pd__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "predicate",
    .description = "filter an i32/i64/f32 column with a validity bitmap by =, <, BETWEEN or IN "
                   "into a selection bitmap and index list (arrow-rs totalOrder, nulls dropped)",
    .upstream = "arrow-rs arrow-ord/src/cmp.rs compare_op/apply_op (eq, lt, gt_eq, lt_eq) and "
                "arrow-array/src/arithmetic.rs float is_eq/compare (total_cmp), apache/arrow-rs "
                "cd7c6b83, as DataFusion/Lance filters call them; ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = pd__param_names,
    .buffers = pd__buffers,
    .n_cases = sizeof(pd__cases) / sizeof(pd__cases[0]),
    .cases = pd__cases,
    /* Bitwise: a selection is bits and row numbers. */
    .rel_tol = 0.0,
    .generate = pd__generate,
    .param_ranges = pd__ranges,
    .distributions = pd__distributions,
    .n_distributions = PD_N_DIST,
    .max_case_bytes = UINT64_C(64) << 20,
    .shape = pd__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct pd__state {
    int type, op;
    uint64_t n;
} pd__state;

static int pd__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)statics;
    const int d = pd__dist(cs->name);
    if (n_statics != 0 || cs->n_params != N_PARAMS || d < 0 || cs->params[P_N] < 1 ||
        cs->params[P_N] > PD_MAX_N) {
        snprintf(err, err_len,
                 "predicate: expected 0 statics, n in 1..2^22 and a "
                 "<type>_<op> distribution");
        return KB_ERR_UNSUPPORTED;
    }
    pd__state *s = malloc(sizeof *s);
    if (!s) return KB_ERR_NOMEM;
    s->type = d / 4;
    s->op = d % 4;
    s->n = (uint64_t)cs->params[P_N];
    *state = s;
    return KB_OK;
}

/* ArrowNativeTypeOp, per type: is_eq and is_lt on the values' bits. */
static int pd__is_eq(int type, uint64_t a, uint64_t b)
{
    if (type == T_I64) return a == b;
    return (uint32_t)a == (uint32_t)b; /* i32 ==; f32 to_bits() == */
}

static int pd__is_lt(int type, uint64_t a, uint64_t b)
{
    if (type == T_I64) return (int64_t)a < (int64_t)b;
    if (type == T_I32) return (int32_t)(uint32_t)a < (int32_t)(uint32_t)b;
    /* f32::total_cmp: flip the magnitude bits of negatives, compare as i32 */
    int32_t l = (int32_t)(uint32_t)a, r = (int32_t)(uint32_t)b;
    l ^= (int32_t)(((uint32_t)(l >> 31)) >> 1);
    r ^= (int32_t)(((uint32_t)(r >> 31)) >> 1);
    return l < r;
}

static uint64_t pd__load(const uint8_t *col, int type, uint64_t i)
{
    const int w = PD_W(type);
    uint64_t v = 0;
    for (int b = 0; b < w; b++) v |= (uint64_t)col[i * w + b] << (8 * b);
    return v;
}

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const pd__state *s = state;
    const uint64_t n = s->n;
    if (n_inputs != 3 || n_outputs != 2 || inputs[0].count != n * PD_W(s->type) ||
        inputs[1].count != PD_BYTES(n) || inputs[2].count != PD_CONSTS ||
        outputs[0].count != PD_BYTES(n) || outputs[1].count != n) {
        snprintf(err, err_len, "predicate: buffers do not match the case");
        return KB_ERR_INTERNAL;
    }
    const uint8_t *col = inputs[0].data, *valid = inputs[1].data;
    const uint64_t *c = inputs[2].data;
    const uint64_t k = c[0] < 1 ? 1 : c[0] > 8 ? 8 : c[0];
    uint8_t *mask = outputs[0].data;
    uint32_t *idx = outputs[1].data;
    uint64_t produced = 0;
    memset(mask, 0, (size_t)PD_BYTES(n));
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t x = pd__load(col, s->type, i);
        int v;
        switch (s->op) {
        case OP_EQ: v = pd__is_eq(s->type, x, c[1]); break;
        case OP_LT: v = pd__is_lt(s->type, x, c[1]); break;
        case OP_BETWEEN: /* gt_eq(x, lo) AND lt_eq(x, hi) */
            v = !pd__is_lt(s->type, x, c[1]) && !pd__is_lt(s->type, c[2], x);
            break;
        default: /* IN: any is_eq */
            v = 0;
            for (uint64_t j = 1; j <= k; j++) v |= pd__is_eq(s->type, x, c[j]);
            break;
        }
        /* a null comparison is null, and a filter keeps true only */
        if (v && ((valid[i / 8] >> (i % 8)) & 1)) {
            mask[i / 8] |= (uint8_t)(1u << (i % 8));
            idx[produced++] = (uint32_t)i;
        }
    }
    outputs[1].produced = produced;
    return KB_OK;
}

static void pd__release(void *state)
{
    free(state);
}

static const kb_plugin pd__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "predicate",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = pd__prepare,
    .run = pd__run,
    .verify = NULL,
    .release = pd__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &pd__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pd__plugin;
}
