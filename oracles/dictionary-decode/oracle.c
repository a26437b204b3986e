/*
 * oracle.c -- the dictionary-decode target: spec, inputs and reference.
 *
 * Lance's dictionary decode (lance-encoding src/data.rs, DictionaryDataBlock::decode and
 * decode_helper, with DataBlockBuilder's FixedWidthDataBlockBuilder::append and
 * VariableWidthDataBlockBuilder::append, lancedb/lance d2039d750a6a): the indices are a
 * fixed-width block of u8, u16 or u32 codes (decode picks the key type from
 * bits_per_value); for each code in order, the builder appends the dictionary's range
 * code..code+1. For fixed-width values that copies the w bytes at code * w; for
 * variable-width values (u32 offsets, the 32-bit case of the builder) it copies the bytes
 * offsets[code]..offsets[code + 1] and pushes the running byte count as the next offset,
 * starting from 0.
 *
 * Parameters: n codes, d dictionary entries, k bytes a code (1, 2 or 4, little endian),
 * w bytes a value (4 or 8), or w = 0 for strings: u32 offsets and bytes, each dictionary
 * string 0..32 bytes long (DD_MAX_LEN), so the output holds at most 32n bytes.
 *
 * Buffers: the dictionary (static: a candidate may reshape it in prepare) is dict_values,
 * d * w bytes or the strings' bytes back to back, and dict_offsets, d + 1 u32 for strings
 * (one 0 for fixed widths); the codes (per call) are n * k bytes; the outputs are
 * out_offsets, n + 1 u32 for strings (one 0 for fixed widths), and out_values, the bytes
 * (variable: n * w for fixed widths, the strings' total for strings).
 *
 * Distributions (after '/'):
 *   zipf     codes Zipf-distributed (s = 1) over the d entries, code 0 the most frequent:
 *            a low-cardinality column (country, status, category) whose dictionary Lance
 *            builds in first-occurrence order, so the common values come early; a few hot
 *            entries take most rows;
 *   uniform  codes uniform in [0, d).
 * Fixed-width values are uniform random bytes. Strings are 1..32 letters, mostly short
 * (1 + two draws of 0..7, and one in eight 0..15 longer), an empty string at entry d / 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, P_D, P_K, P_W, N_PARAMS };
enum { B_DICT_VALUES, B_DICT_OFFSETS, B_CODES, B_OUT_OFFSETS, B_OUT_VALUES, N_BUFFERS };
#define DD_MAX_N   (INT64_C(1) << 24)
#define DD_MAX_D   (INT64_C(1) << 20)
#define DD_MAX_LEN 32
/* Expected string length: 1 + 3.5 + 3.5 + 7.5 / 8. */
#define DD_MEAN_LEN 8.9375

/* Element counts of the five buffers for (n, d, w), and the bytes a call moves: codes
 * read, values read and written (strings: offsets read and written too). */
#define DD_DICT(d, w) ((w) ? (d) * (w) : (d)*DD_MAX_LEN)
#define DD_DOFF(d, w) ((w) ? 1 : (d) + 1)
#define DD_OOFF(n, w) ((w) ? 1 : (n) + 1)
#define DD_OVAL(n, w) ((w) ? (n) * (w) : (n)*DD_MAX_LEN)
#define DD_BYTES(n, k, w) \
    ((double)(n) * (k) + ((w) ? 2.0 * (w) * (n) : (2.0 * DD_MEAN_LEN + 12.0) * (n)))
#define CASE(name, flags, n, d, k, w)                                                \
    {                                                                                \
        name, flags, 0, {n, d, k, w},                                                \
            {DD_DICT(d, w), DD_DOFF(d, w), (n) * (k), DD_OOFF(n, w), DD_OVAL(n, w)}, \
            DD_BYTES(n, k, w), 0.0                                                   \
    }
#define Q KB_CASE_QUICK

/* clang-format off */
static const kb_case_spec dd__cases[] = {
    CASE("n=65536,d=256,k=1,w=4/zipf", Q, 65536, 256, 1, 4),
    CASE("n=65536,d=4096,k=2,w=8/zipf", Q, 65536, 4096, 2, 8),
    CASE("n=65536,d=1000,k=2,w=0/zipf", Q, 65536, 1000, 2, 0),
    CASE("n=65536,d=65536,k=4,w=4/uniform", Q, 65536, 65536, 4, 4),
    CASE("n=1000,d=16,k=1,w=8/uniform", 0, 1000, 16, 1, 8),
    CASE("n=4099,d=300,k=2,w=4/zipf", 0, 4099, 300, 2, 4),
    CASE("n=65535,d=65536,k=2,w=8/uniform", 0, 65535, 65536, 2, 8),
    CASE("n=262144,d=16,k=1,w=4/zipf", 0, 262144, 16, 1, 4),
    CASE("n=262144,d=256,k=1,w=8/uniform", 0, 262144, 256, 1, 8),
    CASE("n=100003,d=20000,k=4,w=4/zipf", 0, 100003, 20000, 4, 4),
    CASE("n=1048576,d=65536,k=4,w=8/zipf", 0, 1048576, 65536, 4, 8),
    CASE("n=1000,d=16,k=1,w=0/uniform", 0, 1000, 16, 1, 0),
    CASE("n=131071,d=4096,k=2,w=0/uniform", 0, 131071, 4096, 2, 0),
    CASE("n=262144,d=200,k=1,w=0/zipf", 0, 262144, 200, 1, 0),
};
/* clang-format on */

static const char *const dd__param_names[N_PARAMS] = {"n", "d", "k", "w"};

static const kb_buffer_spec dd__buffers[N_BUFFERS] = {
    {"dict_values", KB_DT_U8, KB_ROLE_STATIC, 0, 0},
    {"dict_offsets", KB_DT_U32, KB_ROLE_STATIC, 0, 0},
    {"codes", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"out_offsets", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
    {"out_values", KB_DT_U8, KB_ROLE_OUTPUT, KB_BUF_VARIABLE, 0},
};

enum { D_ZIPF, D_UNIFORM };
static const char *const dd__distributions[] = {"zipf", "uniform"};

static int dd__dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 2; k++)
        if (strcmp(d + 1, dd__distributions[k]) == 0) return k;
    return -1;
}

/* The one rule tying the parameters together, for shape, generate and prepare alike. */
static const char *dd__bad_params(int64_t n, int64_t d, int64_t k, int64_t w)
{
    if (n < 1 || n > DD_MAX_N) return "n must be in [1, 2^24]";
    if (k != 1 && k != 2 && k != 4) return "k (bytes a code) must be 1, 2 or 4";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    if (d < 1 || d > DD_MAX_D || (k < 4 && d > (INT64_C(1) << (8 * k))))
        return "d must be in [1, 2^20] and fit the code width (k=1: 256, k=2: 65536)";
    return NULL;
}

/* ---- the generator ----------------------------------------------------- */

static void dd__gen_dict(kb_rng *r, int64_t d, int64_t w, uint8_t *values, uint32_t *offsets)
{
    if (w) {
        kb_gen_bytes(r, values, (size_t)(d * w));
        offsets[0] = 0;
        return;
    }
    uint32_t pos = 0;
    offsets[0] = 0;
    for (int64_t e = 0; e < d; e++) {
        uint32_t len = 1 + (uint32_t)kb_rng_below(r, 8) + (uint32_t)kb_rng_below(r, 8);
        if (kb_rng_below(r, 8) == 0) len += (uint32_t)kb_rng_below(r, 16);
        if (e == d / 2) len = 0;
        for (uint32_t b = 0; b < len; b++) values[pos + b] = (uint8_t)('a' + kb_rng_below(r, 26));
        pos += len;
        offsets[e + 1] = pos;
    }
}

/* Zipf's law with exponent 1 over ranks 0..d-1 in integers only (bit-stable everywhere):
 * rank r weighs floor(2^40 / (r + 1)); a draw u uniform below the total picks the first
 * rank whose cumulative weight passes u, found from a guide table of the ranks at each
 * 2^sh step of u (Chen and Asau's method), so a draw costs a few steps at any d. */
typedef struct dd__zipf {
    uint64_t *cum;   /* d cumulative weights */
    uint32_t *guide; /* guide[b]: the first rank whose cum passes b << sh */
    uint64_t total;
    unsigned sh;
} dd__zipf;

static int dd__zipf_init(dd__zipf *z, int64_t d)
{
    z->cum = malloc((size_t)d * sizeof *z->cum);
    uint64_t acc = 0;
    for (int64_t r = 0; z->cum && r < d; r++)
        z->cum[r] = acc += (UINT64_C(1) << 40) / (uint64_t)(r + 1);
    z->total = acc;
    z->sh = 0;
    while ((z->total - 1) >> z->sh >= (uint64_t)d) z->sh++;
    const uint64_t nb = ((z->total - 1) >> z->sh) + 1;
    z->guide = malloc((size_t)nb * sizeof *z->guide);
    if (!z->cum || !z->guide) return -1;
    uint32_t r = 0;
    for (uint64_t b = 0; b < nb; b++) {
        while (z->cum[r] <= b << z->sh) r++;
        z->guide[b] = r;
    }
    return 0;
}

static uint32_t dd__zipf_draw(const dd__zipf *z, kb_rng *r)
{
    const uint64_t u = kb_rng_below(r, z->total);
    uint32_t k = z->guide[u >> z->sh];
    while (z->cum[k] <= u) k++;
    return k;
}

static int dd__gen_codes(kb_rng *r, int kind, int64_t n, int64_t d, int64_t k, uint8_t *codes)
{
    dd__zipf z = {NULL, NULL, 0, 0};
    if (kind == D_ZIPF && dd__zipf_init(&z, d) != 0) {
        free(z.cum);
        free(z.guide);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const uint32_t c =
            kind == D_ZIPF ? dd__zipf_draw(&z, r) : (uint32_t)kb_rng_below(r, (uint64_t)d);
        for (int64_t b = 0; b < k; b++) codes[i * k + b] = (uint8_t)(c >> (8 * b));
    }
    free(z.cum);
    free(z.guide);
    return 0;
}

static int dd__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], d = cs->params[P_D], k = cs->params[P_K],
                  w = cs->params[P_W];
    const int kind = dd__dist_kind(cs->name);
    const char *bad = dd__bad_params(n, d, k, w);
    if (n_bufs != N_BUFFERS || kind < 0 || bad ||
        bufs[B_DICT_VALUES].count != (uint64_t)DD_DICT(d, w) ||
        bufs[B_DICT_OFFSETS].count != (uint64_t)DD_DOFF(d, w) ||
        bufs[B_CODES].count != (uint64_t)(n * k)) {
        snprintf(err, err_len, "dictionary-decode generate: case %s: %s", cs->name,
                 bad ? bad : "needs /zipf or /uniform and the buffers its shape gives");
        return -1;
    }
    kb_rng r;
    if (set == 0) {
        kb_rng_seed(&r, kb_rng_derive(seed, 0, 1));
        memset(bufs[B_DICT_VALUES].data, 0, bufs[B_DICT_VALUES].count);
        dd__gen_dict(&r, d, w, bufs[B_DICT_VALUES].data, bufs[B_DICT_OFFSETS].data);
    }
    kb_rng_seed(&r, kb_rng_derive(seed, set, 2));
    if (dd__gen_codes(&r, kind, n, d, k, bufs[B_CODES].data) != 0) {
        snprintf(err, err_len, "dictionary-decode generate: out of memory for the Zipf table");
        return -1;
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

static const kb_param_range dd__ranges[N_PARAMS] = {
    {1, DD_MAX_N, 1, 0, 0},
    {1, DD_MAX_D, 1, 0, 0},
    {1, 4, 1, 0, 0},
    {0, 8, 4, 0, 0},
};

static int dd__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], d = cs->params[P_D], k = cs->params[P_K],
                  w = cs->params[P_W];
    const char *bad = dd__bad_params(n, d, k, w);
    if (dd__dist_kind(cs->name) < 0) bad = "distribution must be zipf or uniform";
    if (bad) {
        snprintf(err, err_len, "dictionary-decode: %s", bad);
        return -1;
    }
    cs->lengths[B_DICT_VALUES] = (uint64_t)DD_DICT(d, w);
    cs->lengths[B_DICT_OFFSETS] = (uint64_t)DD_DOFF(d, w);
    cs->lengths[B_CODES] = (uint64_t)(n * k);
    cs->lengths[B_OUT_OFFSETS] = (uint64_t)DD_OOFF(n, w);
    cs->lengths[B_OUT_VALUES] = (uint64_t)DD_OVAL(n, w);
    cs->bytes_per_call = DD_BYTES(n, k, w);
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target dd__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "dictionary-decode",
    .description = "map n u8/u16/u32 codes through a dictionary of d values (4 or 8 bytes, "
                   "or strings as u32 offsets + bytes), Lance's dictionary decode",
    .upstream = "lance rust/lance-encoding/src/data.rs DictionaryDataBlock::decode "
                "(decode_helper; FixedWidthDataBlockBuilder::append, "
                "VariableWidthDataBlockBuilder::append), lancedb/lance d2039d750a6a, ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = dd__param_names,
    .buffers = dd__buffers,
    .n_cases = sizeof(dd__cases) / sizeof(dd__cases[0]),
    .cases = dd__cases,
    /* Bitwise: bytes copied; one byte from the wrong entry or one offset off is wrong. */
    .rel_tol = 0.0,
    .generate = dd__generate,
    .param_ranges = dd__ranges,
    .distributions = dd__distributions,
    .n_distributions = 2,
    .max_case_bytes = UINT64_C(32) << 20,
    .shape = dd__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct dd__state {
    const kb_host *host;
    const uint8_t *values;   /* dict_values */
    const uint32_t *offsets; /* dict_offsets */
    int64_t d, k, w;
} dd__state;

static int dd__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const char *bad = cs->n_params != N_PARAMS ? "4 parameters expected"
                                               : dd__bad_params(cs->params[P_N], cs->params[P_D],
                                                                cs->params[P_K], cs->params[P_W]);
    if (!bad && n_statics != 2) bad = "2 statics expected";
    if (bad) {
        snprintf(err, err_len, "dictionary-decode: %s", bad);
        return KB_ERR_UNSUPPORTED;
    }
    dd__state *s = host->alloc_aligned(host, sizeof *s, 64);
    if (!s) return KB_ERR_NOMEM;
    s->host = host;
    s->values = statics[0].data;
    s->offsets = statics[1].data;
    s->d = cs->params[P_D];
    s->k = cs->params[P_K];
    s->w = cs->params[P_W];
    *state = s;
    return KB_OK;
}

/* decode_helper's idx.to_usize() of a K::Native code, little endian. */
static uint64_t dd__code(const uint8_t *codes, uint64_t i, int64_t k)
{
    const uint8_t *p = codes + i * (uint64_t)k;
    uint64_t c = 0;
    for (int64_t b = 0; b < k; b++) c |= (uint64_t)p[b] << (8 * b);
    return c;
}

static int dd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const dd__state *s = state;
    if (n_inputs != 1 || n_outputs != 2 || inputs[0].count % (uint64_t)s->k != 0) {
        snprintf(err, err_len, "dictionary-decode: need 1 input (codes) and 2 outputs");
        return KB_ERR_INTERNAL;
    }
    const uint8_t *codes = inputs[0].data;
    const uint64_t n = inputs[0].count / (uint64_t)s->k;
    uint32_t *out_offsets = outputs[0].data;
    uint8_t *out = outputs[1].data;
    uint64_t len = 0; /* the builder's bytes.len() */
    out_offsets[0] = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t idx = dd__code(codes, i, s->k);
        if (idx >= (uint64_t)s->d) {
            snprintf(err, err_len, "dictionary-decode: code %llu at %llu is past the dictionary",
                     (unsigned long long)idx, (unsigned long long)i);
            return KB_ERR_INTERNAL;
        }
        if (s->w) { /* FixedWidthDataBlockBuilder::append(dict, idx..idx + 1) */
            const uint64_t start = idx * (uint64_t)s->w, end = (idx + 1) * (uint64_t)s->w;
            memcpy(out + len, s->values + start, end - start);
            len += end - start;
        } else { /* VariableWidthDataBlockBuilder::append(dict, idx..idx + 1) */
            const uint32_t start_offset = s->offsets[idx], end_offset = s->offsets[idx + 1];
            memcpy(out + len, s->values + start_offset, end_offset - start_offset);
            len += end_offset - start_offset;
            out_offsets[i + 1] = (uint32_t)len;
        }
    }
    outputs[1].produced = len;
    return KB_OK;
}

static void dd__release(void *state)
{
    dd__state *s = state;
    s->host->free_aligned(s->host, s);
}

static const kb_plugin dd__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "dictionary-decode",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = dd__prepare,
    .run = dd__run,
    .verify = NULL,
    .release = dd__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &dd__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &dd__plugin;
}
