/*
 * oracle.c -- the take target: spec, inputs and reference.
 *
 * Lance's take of rows from a batch (lance-arrow src/lib.rs, RecordBatchExt::take with a
 * UInt32Array of row positions, lancedb/lance d2039d750a6a) is arrow-rs's take
 * (arrow-select src/take.rs, take_impl -> take_primitive -> take_native, apache/arrow-rs
 * cd7c6b83abd6) for a fixed-width column without nulls: out[i] = values[indices[i]], one
 * value at a time in index order (`indices.values().iter().map(|index|
 * values[index.as_usize()]).collect()`), a value of w bytes (u32/i32/f32 or u64/i64/f64
 * columns: a bit copy); and for a string or binary column (w = 0) take_bytes (same file):
 * a first pass pushes the running byte count of the taken strings as the output offsets
 * (from 0), a second copies each string's bytes in index order.
 *
 * Parameters: n values in the column, m indices (u32), w bytes a value (4 or 8), or w = 0
 * for strings (u32 offsets, each string 0..32 bytes: TK_MAX_LEN).
 * Buffers: values (static: the column, n * w bytes, or the strings back to back in n * 32
 * bytes), value_offsets (static: n + 1 u32 for strings, one 0 for fixed widths), indices
 * (per call, m u32, each < n), out_offsets (m + 1 u32 for strings, one 0 for fixed
 * widths), out (variable: the m * w bytes, or the taken strings' bytes in at most 32m).
 *
 * Distributions (after '/'):
 *   random     indices uniform in [0, n): the rows a vector search returns;
 *   sorted     ascending, gaps uniform in [0, 2n/m) (so repeats where a gap is 0): the row
 *              positions a scalar filter or an index lookup selects;
 *   clustered  ascending runs of 1..64 rows (mean 32.5), within a run each step +1 but one
 *              in 16 a +2 (a deleted or filtered row) and one in 16 a 0 (the same row
 *              twice, as a join takes it), runs apart by gaps that spread the take over the
 *              column: a range scan over clustered data. A shortcut that copies a run
 *              whenever its first and last index are the right distance apart is wrong here.
 * Strings are 1..32 letters, mostly short (1 + two draws of 0..7, and one in eight 0..15
 * longer), an empty one at n / 2: short names, categories, ids as text.
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, P_M, P_W, N_PARAMS };
enum { B_VALUES, B_VALUE_OFFSETS, B_INDICES, B_OUT_OFFSETS, B_OUT, N_BUFFERS };
#define TK_MAX_N   (INT64_C(1) << 24)
#define TK_MAX_M   (INT64_C(1) << 22)
#define TK_MAX_LEN 32
/* Expected string length: 1 + 3.5 + 3.5 + 7.5 / 8. */
#define TK_MEAN_LEN 8.9375

/* Buffer lengths for (n, m, w), and the bytes a call moves: the indices and values read
 * and the values written (strings: two offsets read and one written a value too). */
#define TK_VAL(n, w)   ((w) ? (n) * (w) : (n)*TK_MAX_LEN)
#define TK_VOFF(n, w)  ((w) ? 1 : (n) + 1)
#define TK_OOFF(m, w)  ((w) ? 1 : (m) + 1)
#define TK_BYTES(m, w) (4.0 * (m) + ((w) ? 2.0 * (w) * (m) : (2.0 * TK_MEAN_LEN + 12.0) * (m)))
#define CASE(name, flags, n, m, w)                                                                \
    {                                                                                             \
        name, flags, 0, {n, m, w}, {TK_VAL(n, w), TK_VOFF(n, w), m, TK_OOFF(m, w), TK_VAL(m, w)}, \
            TK_BYTES(m, w), 0.0                                                                   \
    }
#define Q KB_CASE_QUICK

/* clang-format off */
static const kb_case_spec tk__cases[] = {
    CASE("n=1048576,m=65536,w=4/random", Q, 1048576, 65536, 4),
    CASE("n=1048576,m=65536,w=8/sorted", Q, 1048576, 65536, 8),
    CASE("n=1048576,m=65536,w=4/clustered", Q, 1048576, 65536, 4),
    CASE("n=65536,m=16384,w=0/random", Q, 65536, 16384, 0),
    CASE("n=65536,m=16384,w=8/random", 0, 65536, 16384, 8),
    CASE("n=1000,m=1000,w=4/random", 0, 1000, 1000, 4),
    CASE("n=4096,m=4099,w=8/clustered", 0, 4096, 4099, 8),
    CASE("n=65536,m=1000,w=4/sorted", 0, 65536, 1000, 4),
    CASE("n=262144,m=100003,w=4/sorted", 0, 262144, 100003, 4),
    CASE("n=262144,m=65535,w=8/clustered", 0, 262144, 65535, 8),
    CASE("n=4194304,m=262144,w=4/random", 0, 4194304, 262144, 4),
    CASE("n=2097152,m=262144,w=8/sorted", 0, 2097152, 262144, 8),
    CASE("n=1048576,m=262144,w=8/clustered", 0, 1048576, 262144, 8),
    CASE("n=1000,m=1001,w=0/sorted", 0, 1000, 1001, 0),
    CASE("n=262144,m=65535,w=0/clustered", 0, 262144, 65535, 0),
};
/* clang-format on */

static const char *const tk__param_names[N_PARAMS] = {"n", "m", "w"};

static const kb_buffer_spec tk__buffers[N_BUFFERS] = {
    {"values", KB_DT_U8, KB_ROLE_STATIC, 0, 0},
    {"value_offsets", KB_DT_U32, KB_ROLE_STATIC, 0, 0},
    {"indices", KB_DT_U32, KB_ROLE_CALL, 0, 0},
    {"out_offsets", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
    {"out", KB_DT_U8, KB_ROLE_OUTPUT, KB_BUF_VARIABLE, 0},
};

enum { D_RANDOM, D_SORTED, D_CLUSTERED };
static const char *const tk__distributions[] = {"random", "sorted", "clustered"};

static int tk__dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 3; k++)
        if (strcmp(d + 1, tk__distributions[k]) == 0) return k;
    return -1;
}

static const char *tk__bad_params(int64_t n, int64_t m, int64_t w)
{
    if (n < 1 || n > TK_MAX_N) return "n must be in [1, 2^24]";
    if (m < 1 || m > TK_MAX_M) return "m must be in [1, 2^22]";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    return NULL;
}

/* ---- the generator ----------------------------------------------------- */

static void tk__gen_indices(kb_rng *r, int kind, uint64_t n, uint64_t m, uint32_t *idx)
{
    if (kind == D_RANDOM) {
        for (uint64_t i = 0; i < m; i++) idx[i] = (uint32_t)kb_rng_below(r, n);
        return;
    }
    if (kind == D_SORTED) {
        const uint64_t g2 = 2 * n / m > 1 ? 2 * n / m : 1;
        uint64_t p = kb_rng_below(r, g2);
        for (uint64_t i = 0; i < m; i++, p += kb_rng_below(r, g2))
            idx[i] = (uint32_t)(p < n ? p : n - 1);
        return;
    }
    /* clustered: m / 32.5 runs, the rows not taken (about n - 17m/16) spread as gaps */
    const uint64_t runs = m * 2 / 65 + 1, taken = m + m / 16;
    const uint64_t gap2 = n > taken ? 2 * ((n - taken) / runs) + 1 : 1;
    uint64_t p = kb_rng_below(r, gap2), left = 0;
    for (uint64_t i = 0; i < m; i++) {
        if (left == 0) { /* a new run */
            if (i) p += 1 + kb_rng_below(r, gap2);
            left = 1 + kb_rng_below(r, 64);
        } else {
            const uint64_t u = kb_rng_below(r, 16);
            p += u == 0 ? 0 : u == 1 ? 2 : 1;
        }
        left--;
        idx[i] = (uint32_t)(p % n);
    }
}

static void tk__gen_strings(kb_rng *r, uint64_t n, uint8_t *values, uint32_t *offsets)
{
    uint32_t pos = 0;
    offsets[0] = 0;
    for (uint64_t e = 0; e < n; e++) {
        uint32_t len = 1 + (uint32_t)kb_rng_below(r, 8) + (uint32_t)kb_rng_below(r, 8);
        if (kb_rng_below(r, 8) == 0) len += (uint32_t)kb_rng_below(r, 16);
        if (e == n / 2) len = 0;
        for (uint32_t b = 0; b < len; b++) values[pos + b] = (uint8_t)('a' + kb_rng_below(r, 26));
        pos += len;
        offsets[e + 1] = pos;
    }
}

static int tk__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], m = cs->params[P_M], w = cs->params[P_W];
    const int kind = tk__dist_kind(cs->name);
    const char *bad = tk__bad_params(n, m, w);
    if (n_bufs != N_BUFFERS || kind < 0 || bad || bufs[B_VALUES].count != (uint64_t)TK_VAL(n, w) ||
        bufs[B_VALUE_OFFSETS].count != (uint64_t)TK_VOFF(n, w) ||
        bufs[B_INDICES].count != (uint64_t)m) {
        snprintf(err, err_len, "take generate: case %s: %s", cs->name,
                 bad ? bad
                     : "needs /random, /sorted or /clustered and the buffers its shape gives");
        return -1;
    }
    kb_rng r;
    if (set == 0) {
        kb_rng_seed(&r, kb_rng_derive(seed, 0, 1));
        uint32_t *voff = bufs[B_VALUE_OFFSETS].data;
        if (w) {
            kb_gen_bytes(&r, bufs[B_VALUES].data, bufs[B_VALUES].count);
            voff[0] = 0;
        } else {
            memset(bufs[B_VALUES].data, 0, bufs[B_VALUES].count);
            tk__gen_strings(&r, (uint64_t)n, bufs[B_VALUES].data, voff);
        }
    }
    kb_rng_seed(&r, kb_rng_derive(seed, set, 2));
    tk__gen_indices(&r, kind, (uint64_t)n, (uint64_t)m, bufs[B_INDICES].data);
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

static const kb_param_range tk__ranges[N_PARAMS] = {
    {1, TK_MAX_N, 1, 0, 0},
    {1, TK_MAX_M, 1, 0, 0},
    {0, 8, 4, 0, 0},
};

static int tk__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], m = cs->params[P_M], w = cs->params[P_W];
    const char *bad = tk__bad_params(n, m, w);
    if (tk__dist_kind(cs->name) < 0) bad = "distribution must be random, sorted or clustered";
    if (bad) {
        snprintf(err, err_len, "take: %s", bad);
        return -1;
    }
    cs->lengths[B_VALUES] = (uint64_t)TK_VAL(n, w);
    cs->lengths[B_VALUE_OFFSETS] = (uint64_t)TK_VOFF(n, w);
    cs->lengths[B_INDICES] = (uint64_t)m;
    cs->lengths[B_OUT_OFFSETS] = (uint64_t)TK_OOFF(m, w);
    cs->lengths[B_OUT] = (uint64_t)TK_VAL(m, w);
    cs->bytes_per_call = TK_BYTES(m, w);
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target tk__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "take",
    .description = "gather m values (4 or 8 bytes, or strings as u32 offsets + bytes) from a "
                   "column of n by u32 row positions (random, sorted, clustered runs), Lance's "
                   "take (arrow take_native, take_bytes)",
    .upstream = "lance rust/lance-arrow/src/lib.rs RecordBatchExt::take (lancedb/lance "
                "d2039d750a6a) -> arrow-rs arrow-select/src/take.rs take_native, take_bytes "
                "(apache/arrow-rs "
                "cd7c6b83abd6), ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = tk__param_names,
    .buffers = tk__buffers,
    .n_cases = sizeof(tk__cases) / sizeof(tk__cases[0]),
    .cases = tk__cases,
    /* Bitwise: values copied; one from the wrong row is wrong. */
    .rel_tol = 0.0,
    .generate = tk__generate,
    .param_ranges = tk__ranges,
    .distributions = tk__distributions,
    .n_distributions = 3,
    .max_case_bytes = UINT64_C(32) << 20,
    .shape = tk__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct tk__state {
    const kb_host *host;
    const uint8_t *values;
    const uint32_t *offsets;
    uint64_t n;
    int64_t w;
} tk__state;

static int tk__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const char *bad = cs->n_params != N_PARAMS
                          ? "3 parameters expected"
                          : tk__bad_params(cs->params[P_N], cs->params[P_M], cs->params[P_W]);
    if (!bad && n_statics != 2) bad = "2 statics expected";
    if (bad) {
        snprintf(err, err_len, "take: %s", bad);
        return KB_ERR_UNSUPPORTED;
    }
    tk__state *s = host->alloc_aligned(host, sizeof *s, 64);
    if (!s) return KB_ERR_NOMEM;
    s->host = host;
    s->values = statics[0].data;
    s->offsets = statics[1].data;
    s->n = (uint64_t)cs->params[P_N];
    s->w = cs->params[P_W];
    *state = s;
    return KB_OK;
}

/* take_native::<T>: values[index] for each index, in order. */
#define TK_NATIVE(fname, T)                                                                    \
    static int fname(const uint8_t *values_b, uint64_t n, const uint32_t *indices, uint64_t m, \
                     uint8_t *out_b)                                                           \
    {                                                                                          \
        const T *values = (const T *)(const void *)values_b;                                   \
        T *out = (T *)(void *)out_b;                                                           \
        for (uint64_t i = 0; i < m; i++) {                                                     \
            const uint64_t index = indices[i];                                                 \
            if (index >= n) return -1; /* Rust's bounds check */                               \
            out[i] = values[index];                                                            \
        }                                                                                      \
        return 0;                                                                              \
    }
TK_NATIVE(tk__native_u32, uint32_t)
TK_NATIVE(tk__native_u64, uint64_t)

/* take_bytes, no nulls: the offsets pass (Rust's bounds-checked offset reads), then the
 * copies in index order. Returns the bytes written, or -1 for an index out of bounds. */
static int64_t tk__bytes(const uint8_t *values, const uint32_t *input_offsets, uint64_t n,
                         const uint32_t *indices, uint64_t m, uint32_t *offsets, uint8_t *dst)
{
    uint64_t capacity = 0;
    offsets[0] = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint64_t index = indices[i];
        if (index >= n) return -1;
        const uint64_t start = input_offsets[index], end = input_offsets[index + 1];
        capacity += end - start;
        offsets[i + 1] = (uint32_t)capacity;
    }
    uint64_t offset = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint64_t index = indices[i];
        const uint64_t start = input_offsets[index], len = input_offsets[index + 1] - start;
        memcpy(dst + offset, values + start, len);
        offset += len;
    }
    return (int64_t)offset;
}

static int tk__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const tk__state *s = state;
    if (n_inputs != 1 || n_outputs != 2 ||
        outputs[1].count != inputs[0].count * (uint64_t)(s->w ? s->w : TK_MAX_LEN)) {
        snprintf(err, err_len, "take: need m indices, the offsets and m * w output bytes");
        return KB_ERR_INTERNAL;
    }
    const uint64_t m = inputs[0].count;
    uint32_t *out_offsets = outputs[0].data;
    int64_t bytes;
    if (s->w == 0) {
        bytes =
            tk__bytes(s->values, s->offsets, s->n, inputs[0].data, m, out_offsets, outputs[1].data);
    } else {
        out_offsets[0] = 0;
        bytes = (s->w == 4 ? tk__native_u32 : tk__native_u64)(s->values, s->n, inputs[0].data, m,
                                                              outputs[1].data) != 0
                    ? -1
                    : (int64_t)m * s->w;
    }
    if (bytes < 0) {
        snprintf(err, err_len, "take: an index is out of bounds (n = %llu)",
                 (unsigned long long)s->n);
        return KB_ERR_INTERNAL;
    }
    outputs[1].produced = (uint64_t)bytes;
    return KB_OK;
}

static void tk__release(void *state)
{
    tk__state *s = state;
    s->host->free_aligned(s->host, s);
}

static const kb_plugin tk__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "take",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &tk__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
