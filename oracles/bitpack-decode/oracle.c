/*
 * oracle.c -- the bitpack-decode target: spec, inputs and reference.
 *
 * Lance's inline bitpacking of u32 (lance-encoding src/encodings/physical/bitpacking.rs,
 * InlineBitpacking::bitpack_chunked and unchunk, lance d2039d750a6a): the values in chunks
 * of 1024, each chunk one u32 holding its bit width w (0..32, the bit width of the chunk's
 * largest value) followed by 32 * w u32 words of the chunk packed with FastLanes'
 * transposed layout (rust/compression/bitpacking/src/lib.rs, the pack!/unpack! macros
 * and unpack_32_W, same commit, from spiraldb/fastlanes 8e0ff374). The last chunk is
 * padded with zeros to 1024 values and packed whole; the decoder unpacks it whole and
 * keeps the first n % 1024.
 *
 * The FastLanes layout for u32: 32 lanes; lane l of row r (r, l in 0..31) is the value at
 * FL_ORDER[r / 8] * 16 + (r % 8) * 128 + l, FL_ORDER = {0, 4, 2, 6, 1, 5, 3, 7}; the rows
 * of a lane are packed LSB first into words 32 * j + l (j in 0..w-1), a value split over
 * two words when it crosses one. The reference is unpack! for T = u32: lane by lane, row
 * by row, the same shifts and masks.
 *
 * Distributions (after '/'):
 *   fixed  every chunk at width b, values uniform in [0, 2^b) with one at 2^b - 1;
 *   real   widths as Lance's per-chunk statistic gives them for a real column (dictionary
 *          codes, small counts, offsets): most chunks at width b, one in four narrower
 *          (b - 1 .. b - 4, a stretch of smaller values), one in 64 all zeros (width 0),
 *          and values in a chunk skewed low (the larger of two uniform draws' minimum, so
 *          most sit well under the chunk's maximum, which is present once).
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, P_B, N_PARAMS };
enum { B_PACKED, B_OUT, N_BUFFERS };
#define BP_MAX_N (INT64_C(1) << 24)

/* One chunk: its width word and at most 32 * b packed words. */
#define BP_CHUNKS(n) (((n) + 1023) / 1024)
#define BP_CAP(n, b) (BP_CHUNKS(n) * (1 + 32 * (b)))
#define CASE(name, flags, n, b)                                                        \
    {                                                                                  \
        name, flags, 0, {n, b}, {BP_CAP(n, b), n}, 4.0 * BP_CAP(n, b) + 4.0 * (n), 0.0 \
    }
#define Q KB_CASE_QUICK

/* clang-format off */
static const kb_case_spec bp__cases[] = {
    CASE("n=65536,b=3/fixed", Q, 65536, 3),
    CASE("n=65536,b=11/real", Q, 65536, 11),
    CASE("n=262144,b=17/real", Q, 262144, 17),
    CASE("n=100000,b=7/real", Q, 100000, 7),
    CASE("n=1000,b=1/fixed", 0, 1000, 1),
    CASE("n=4097,b=32/fixed", 0, 4097, 32),
    CASE("n=262144,b=8/real", 0, 262144, 8),
    CASE("n=1048576,b=16/real", 0, 1048576, 16),
    CASE("n=100000,b=24/fixed", 0, 100000, 24),
    CASE("n=65535,b=31/real", 0, 65535, 31),
    CASE("n=1048576,b=5/fixed", 0, 1048576, 5),
    CASE("n=30000,b=13/real", 0, 30000, 13),
};
/* clang-format on */

static const char *const bp__param_names[N_PARAMS] = {"n", "b"};

static const kb_buffer_spec bp__buffers[N_BUFFERS] = {
    {"packed", KB_DT_U32, KB_ROLE_CALL, 0, 0},
    {"out", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
};

enum { D_FIXED, D_REAL };
static const char *const bp__distributions[] = {"fixed", "real"};

static int bp__dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 2; k++)
        if (strcmp(d + 1, bp__distributions[k]) == 0) return k;
    return -1;
}

static const uint32_t FL_ORDER[8] = {0, 4, 2, 6, 1, 5, 3, 7};

/* unpack!'s index(row, lane) for T = u32. */
static uint32_t bp__index(uint32_t row, uint32_t lane)
{
    return FL_ORDER[row / 8] * 16 + (row % 8) * 128 + lane;
}

static uint32_t bp__mask(uint32_t width)
{
    return width == 32 ? UINT32_MAX : (UINT32_C(1) << (width % 32)) - 1;
}

/* ---- the generator ----------------------------------------------------- */

/* pack! for T = u32 and width w: 1024 values to 32 * w words. */
static void bp__pack(uint32_t w, const uint32_t *values, uint32_t *packed)
{
    for (uint32_t lane = 0; lane < 32 && w > 0; lane++) {
        uint32_t tmp = 0;
        for (uint32_t row = 0; row < 32; row++) {
            uint32_t src = values[bp__index(row, lane)];
            if (w == 32) {
                packed[32 * row + lane] = src;
                continue;
            }
            src &= bp__mask(w);
            tmp = row == 0 ? src : tmp | src << ((row * w) % 32);
            uint32_t curr = (row * w) / 32, next = ((row + 1) * w) / 32;
            if (next > curr) {
                packed[32 * curr + lane] = tmp;
                tmp = src >> (w - ((row + 1) * w) % 32);
            }
        }
    }
}

/* One chunk's width: b, or for real data sometimes narrower or zero. */
static uint32_t bp__width(kb_rng *r, int kind, uint32_t b)
{
    if (kind == D_FIXED) return b;
    if (kb_rng_below(r, 64) == 0) return 0;
    if (kb_rng_below(r, 4) != 0 || b == 1) return b;
    uint32_t less = 1 + (uint32_t)kb_rng_below(r, 4);
    return less < b ? b - less : 1;
}

/* A chunk of `keep` values (the rest zero), its maximum 2^w - 1 among them. */
static void bp__chunk_values(kb_rng *r, int kind, uint32_t w, uint32_t keep, uint32_t *v)
{
    const uint64_t range = UINT64_C(1) << w;
    for (uint32_t i = 0; i < 1024; i++) {
        uint64_t x = kb_rng_below(r, range);
        if (kind == D_REAL) { /* skewed low: the min of two draws */
            uint64_t y = kb_rng_below(r, range);
            x = x < y ? x : y;
        }
        v[i] = (uint32_t)x;
    }
    memset(v + keep, 0, (1024 - keep) * sizeof *v); /* a last chunk is zero-padded */
    if (w > 0) v[kb_rng_below(r, keep)] = (uint32_t)(range - 1);
}

static int bp__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], b = cs->params[P_B];
    const int kind = bp__dist_kind(cs->name);
    if (n_bufs != N_BUFFERS || kind < 0 || n < 1 || n > BP_MAX_N || b < 1 || b > 32 ||
        bufs[B_PACKED].count != (uint64_t)BP_CAP(n, b) || bufs[B_OUT].count != (uint64_t)n) {
        snprintf(err, err_len,
                 "bitpack-decode generate: case %s needs /fixed or /real, n 1..2^24, b 1..32, "
                 "ceil(n/1024) * (1 + 32b) packed words and n outputs",
                 cs->name);
        return -1;
    }
    uint32_t *p = bufs[B_PACKED].data, v[1024];
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, 0));
    memset(p, 0, bufs[B_PACKED].count * sizeof *p);
    for (int64_t c = 0; c < BP_CHUNKS(n); c++) {
        uint32_t w = bp__width(&r, kind, (uint32_t)b);
        uint32_t keep = c == BP_CHUNKS(n) - 1 && n % 1024 != 0 ? (uint32_t)(n % 1024) : 1024;
        bp__chunk_values(&r, kind, w, keep, v);
        *p++ = w;
        bp__pack(w, v, p);
        p += 32 * w;
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

static const kb_param_range bp__ranges[N_PARAMS] = {{1, BP_MAX_N, 1, 0, 0}, {1, 32, 1, 0, 0}};

static int bp__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N], b = cs->params[P_B];
    if (bp__dist_kind(cs->name) < 0) {
        snprintf(err, err_len, "bitpack-decode: distribution must be fixed or real");
        return -1;
    }
    cs->lengths[B_PACKED] = (uint64_t)BP_CAP(n, b);
    cs->lengths[B_OUT] = (uint64_t)n;
    cs->bytes_per_call = 4.0 * BP_CAP(n, b) + 4.0 * n;
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target bp__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "bitpack-decode",
    .description = "unpack n u32 from Lance's inline bitpacking: chunks of 1024 values, a "
                   "width word each, FastLanes' transposed layout",
    .upstream = "lance rust/lance-encoding/src/encodings/physical/bitpacking.rs "
                "InlineBitpacking::unchunk over rust/compression/bitpacking/src/lib.rs "
                "unpack_32_W (FastLanes unpack!), lance d2039d75, ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = bp__param_names,
    .buffers = bp__buffers,
    .n_cases = sizeof(bp__cases) / sizeof(bp__cases[0]),
    .cases = bp__cases,
    /* Bitwise: integers taken from bits; one bit off is wrong. */
    .rel_tol = 0.0,
    .generate = bp__generate,
    .param_ranges = bp__ranges,
    .distributions = bp__distributions,
    .n_distributions = 2,
    .max_case_bytes = UINT64_C(32) << 20,
    .shape = bp__shape,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct bp__state {
    const kb_host *host;
    uint32_t chunk[1024]; /* unchunk's `decompressed` */
} bp__state;

static int bp__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS) {
        snprintf(err, err_len, "bitpack-decode: expected 0 statics and %d params", N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    bp__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    *state = st;
    return KB_OK;
}

/* unpack! for T = u32 and width w: 32 * w words to 1024 values. */
static void bp__unpack(uint32_t w, const uint32_t *packed, uint32_t *output)
{
    for (uint32_t lane = 0; lane < 32; lane++) {
        if (w == 0) {
            for (uint32_t row = 0; row < 32; row++) output[bp__index(row, lane)] = 0;
        } else if (w == 32) {
            for (uint32_t row = 0; row < 32; row++)
                output[bp__index(row, lane)] = packed[32 * row + lane];
        } else {
            uint32_t src = packed[lane], tmp;
            for (uint32_t row = 0; row < 32; row++) {
                uint32_t curr = (row * w) / 32, next = ((row + 1) * w) / 32;
                uint32_t shift = (row * w) % 32;
                if (next > curr) {
                    uint32_t remaining = ((row + 1) * w) % 32, current_bits = w - remaining;
                    tmp = (src >> shift) & bp__mask(current_bits);
                    if (next < w) {
                        src = packed[32 * next + lane];
                        tmp |= (src & bp__mask(remaining)) << current_bits;
                    }
                } else {
                    tmp = (src >> shift) & bp__mask(w);
                }
                output[bp__index(row, lane)] = tmp;
            }
        }
    }
}

static int bp__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    bp__state *st = state;
    if (n_inputs != 1 || n_outputs != 1) {
        snprintf(err, err_len, "bitpack-decode: need packed words and an output");
        return KB_ERR_INTERNAL;
    }
    const uint32_t *p = inputs[0].data, *end = p + inputs[0].count;
    uint32_t *out = outputs[0].data;
    for (uint64_t done = 0, n = outputs[0].count; done < n; done += 1024) {
        uint32_t w = p < end ? *p++ : UINT32_MAX;
        if (w > 32 || (uint64_t)(end - p) < 32 * (uint64_t)w) {
            snprintf(err, err_len, "bitpack-decode: bad chunk at value %llu",
                     (unsigned long long)done);
            return KB_ERR_INTERNAL;
        }
        bp__unpack(w, p, st->chunk);
        p += 32 * w;
        uint64_t keep = n - done < 1024 ? n - done : 1024; /* the last chunk truncated */
        memcpy(out + done, st->chunk, keep * sizeof *out);
    }
    return KB_OK;
}

static void bp__release(void *state)
{
    bp__state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin bp__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "bitpack-decode",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = bp__prepare,
    .run = bp__run,
    .verify = NULL,
    .release = bp__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &bp__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &bp__plugin;
}
