/*
 * oracle.c -- the vbyte-decode target: spec, inputs and reference.
 *
 * Stream VByte (Lemire, Kurz, Rupp 2017) in the streamvbyte library's "1234" layout, the
 * format of streamvbyte_encode/streamvbyte_decode: for n u32 values, (n + 3) / 4 control
 * bytes, then the data bytes. Value i has the 2-bit code (key[i / 4] >> 2 * (i % 4)) & 3,
 * its length in bytes minus one, and its bytes follow the previous value's, little endian.
 * The reference is a port of streamvbyte's scalar path (src/streamvbyte_decode.c,
 * svb_decode_scalar and svb_decode_data, lemire/streamvbyte 383c00d4ad7c): one value at a
 * time, a branch on the code. The generator encodes with a port of svb_encode_scalar and
 * svb_encode_data (src/streamvbyte_encode.c, same commit): the shortest code of each value.
 * The stream buffer holds streamvbyte_max_compressedbytes(n) bytes: the control bytes,
 * at most 4n data bytes and STREAMVBYTE_PADDING (16) zero bytes, so a kernel may load 16
 * bytes at any data position, as the library's SIMD decoders do.
 *
 * Distributions (after '/'):
 *   postings  d-gaps of posting lists, what an inverted index stores: the first value a
 *             document id up to 2^22, then gaps in [1, 2g] where the mean gap g changes every
 *             128 documents (a term dense in some parts of the corpus, rare in others): 2,
 *             4, 8, 16 or 60 with weights 4:3:2:2:1, and 300 now and then; mostly 1-byte
 *             codes, some 2-byte;
 *   uniform   uniform 32-bit values (hashes, ids): three quarters 4-byte codes;
 *   zipf      Zipf's law with exponent 1 (density 1/x on [1, 2^32)): the bit length uniform
 *             in 1..32, so the four codes come near-evenly mixed, the worst case for a
 *             decoder that branches on the code.
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, N_PARAMS };
enum { B_STREAM, B_OUT, N_BUFFERS };
#define VB_PADDING 16
#define VB_MAX_N   (INT64_C(1) << 24)

/* Stream capacity: control bytes + 4 bytes a value + padding (streamvbyte_max_compressedbytes). */
#define VB_CAP(n) (((n) + 3) / 4 + 4 * (n) + VB_PADDING)
/* Data bytes a value, expected, per distribution: the stream read plus 4n written. */
#define CASE(name, flags, n, per)                                                             \
    {                                                                                         \
        name, flags, 0, {n}, {VB_CAP(n), n}, (n) / 4.0 + (per) * (double)(n) + 4.0 * (n), 0.0 \
    }
#define Q    KB_CASE_QUICK
#define POST 1.1
#define UNIF 3.73
#define ZIPF 2.5

/* clang-format off */
static const kb_case_spec vb__cases[] = {
    CASE("n=262144/postings", Q, 262144, POST),
    CASE("n=65536/postings", Q, 65536, POST),
    CASE("n=65536/uniform", Q, 65536, UNIF),
    CASE("n=262144/zipf", Q, 262144, ZIPF),
    CASE("n=1024/postings", 0, 1024, POST),
    CASE("n=4096/postings", 0, 4096, POST),
    CASE("n=1023/zipf", 0, 1023, ZIPF),
    CASE("n=16383/uniform", 0, 16383, UNIF),
    CASE("n=65539/postings", 0, 65539, POST),
    CASE("n=262147/uniform", 0, 262147, UNIF),
    CASE("n=1048576/postings", 0, 1048576, POST),
    CASE("n=1048576/zipf", 0, 1048576, ZIPF),
    CASE("n=1000001/uniform", 0, 1000001, UNIF),
};
/* clang-format on */

static const char *const vb__param_names[N_PARAMS] = {"n"};

static const kb_buffer_spec vb__buffers[N_BUFFERS] = {
    {"stream", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"out", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
};

enum { D_POSTINGS, D_UNIFORM, D_ZIPF };
static const char *const vb__distributions[] = {"postings", "uniform", "zipf"};

static int vb__dist_kind(const char *name)
{
    const char *d = name ? strrchr(name, '/') : NULL;
    for (int k = 0; d && k < 3; k++)
        if (strcmp(d + 1, vb__distributions[k]) == 0) return k;
    return -1;
}

/* ---- the generator ----------------------------------------------------- */

static uint32_t vb__value(kb_rng *r, int kind, uint64_t i, uint64_t *gap)
{
    if (kind == D_UNIFORM) return (uint32_t)kb_rng_next(r);
    if (kind == D_ZIPF) {
        uint32_t bits = 1 + (uint32_t)kb_rng_below(r, 32);
        uint32_t top = UINT32_C(1) << (bits - 1);
        return top | (uint32_t)kb_rng_below(r, top);
    }
    if (i == 0) return (uint32_t)kb_rng_below(r, UINT64_C(1) << 22);
    if (i % 128 == 1) { /* a new stretch of the corpus: a new mean gap */
        static const uint64_t means[12] = {2, 2, 2, 2, 4, 4, 4, 8, 8, 16, 16, 60};
        *gap = kb_rng_below(r, 16) == 0 ? 300 : means[kb_rng_below(r, 12)];
    }
    return (uint32_t)(1 + kb_rng_below(r, 2 * *gap));
}

/* svb_encode_data: the shortest code, the value's low bytes little endian. */
static uint8_t vb__encode_one(uint32_t v, uint8_t **data)
{
    uint8_t code = v < (1u << 8) ? 0 : v < (1u << 16) ? 1 : v < (1u << 24) ? 2 : 3;
    for (int b = 0; b <= code; b++) *(*data)++ = (uint8_t)(v >> (8 * b));
    return code;
}

static int vb__generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                        uint32_t n_bufs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N];
    const int kind = vb__dist_kind(cs->name);
    if (n_bufs != N_BUFFERS || kind < 0 || n < 1 || n > VB_MAX_N ||
        bufs[B_STREAM].count != (uint64_t)VB_CAP(n) || bufs[B_OUT].count != (uint64_t)n) {
        snprintf(err, err_len,
                 "vbyte-decode generate: case %s needs /postings, /uniform or /zipf, n 1..2^24, "
                 "a stream of (n+3)/4 + 4n + 16 bytes and n outputs",
                 cs->name);
        return -1;
    }
    uint8_t *key = bufs[B_STREAM].data, *data = key + (n + 3) / 4;
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, set, 0));
    memset(key, 0, bufs[B_STREAM].count);
    uint64_t gap = 2;
    for (int64_t i = 0; i < n; i++) {
        uint8_t code = vb__encode_one(vb__value(&r, kind, (uint64_t)i, &gap), &data);
        key[i / 4] |= (uint8_t)(code << (2 * (i % 4)));
    }
    return 0;
}

/* ---- any shape (ABI 1.1) --------------------------------------------- */

/* Up to 2^24 values: a stream of at most 85 MB, 32 sets of it about 2.6 GB at the top;
 * max_case_bytes keeps an ad hoc case to 32 MiB a set. */
static const kb_param_range vb__ranges[N_PARAMS] = {{1, VB_MAX_N, 1, 0, 0}};

static int vb__shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[P_N];
    const int kind = vb__dist_kind(cs->name);
    if (kind < 0) {
        snprintf(err, err_len, "vbyte-decode: distribution must be postings, uniform or zipf");
        return -1;
    }
    static const double per[3] = {POST, UNIF, ZIPF};
    cs->lengths[B_STREAM] = (uint64_t)VB_CAP(n);
    cs->lengths[B_OUT] = (uint64_t)n;
    cs->bytes_per_call = n / 4.0 + per[kind] * (double)n + 4.0 * n;
    cs->flops_per_call = 0.0;
    return 0;
}

static const kb_target vb__target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "vbyte-decode",
    .description = "decode n u32 from a Stream VByte stream (control bytes, then 1-4 data "
                   "bytes a value), streamvbyte's 1234 layout",
    .upstream = "streamvbyte src/streamvbyte_decode.c streamvbyte_decode (svb_decode_scalar, "
                "svb_decode_data), lemire/streamvbyte 383c00d4, ported to C",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = vb__param_names,
    .buffers = vb__buffers,
    .n_cases = sizeof(vb__cases) / sizeof(vb__cases[0]),
    .cases = vb__cases,
    /* Bitwise: integers decoded from bytes; a value one byte or one bit off is wrong. */
    .rel_tol = 0.0,
    .generate = vb__generate,
    .param_ranges = vb__ranges,
    .distributions = vb__distributions,
    .n_distributions = 3,
    .max_case_bytes = UINT64_C(32) << 20,
    .shape = vb__shape,
};

/* ---- the reference kernel ------------------------------------------- */

static int vb__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS || cs->params[P_N] < 1 ||
        cs->params[P_N] > VB_MAX_N) {
        snprintf(err, err_len, "vbyte-decode: expected 0 statics and n in 1..2^24");
        return KB_ERR_UNSUPPORTED;
    }
    *state = NULL;
    return KB_OK;
}

/* svb_decode_data: code + 1 bytes, little endian. */
static uint32_t vb__decode_data(const uint8_t **dataPtrPtr, uint8_t code)
{
    const uint8_t *dataPtr = *dataPtrPtr;
    uint32_t val;
    if (code == 0) {
        val = (uint32_t)*dataPtr;
        dataPtr += 1;
    } else if (code == 1) {
        val = (uint32_t)dataPtr[0] | (uint32_t)dataPtr[1] << 8;
        dataPtr += 2;
    } else if (code == 2) {
        val = (uint32_t)dataPtr[0] | (uint32_t)dataPtr[1] << 8 | (uint32_t)dataPtr[2] << 16;
        dataPtr += 3;
    } else {
        val = (uint32_t)dataPtr[0] | (uint32_t)dataPtr[1] << 8 | (uint32_t)dataPtr[2] << 16 |
              (uint32_t)dataPtr[3] << 24;
        dataPtr += 4;
    }
    *dataPtrPtr = dataPtr;
    return val;
}

static int vb__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    (void)state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)VB_CAP(outputs[0].count)) {
        snprintf(err, err_len, "vbyte-decode: need a stream of (n+3)/4 + 4n + 16 bytes, n outputs");
        return KB_ERR_INTERNAL;
    }
    const uint64_t count = outputs[0].count;
    const uint8_t *keyPtr = inputs[0].data;
    const uint8_t *dataPtr = keyPtr + (count + 3) / 4; /* data starts at end of keys */
    uint32_t *outPtr = outputs[0].data;
    uint8_t shift = 0;
    uint32_t key = *keyPtr++;
    for (uint64_t c = 0; c < count; c++) {
        if (shift == 8) {
            shift = 0;
            key = *keyPtr++;
        }
        *outPtr++ = vb__decode_data(&dataPtr, (key >> shift) & 0x3);
        shift += 2;
    }
    return KB_OK;
}

static void vb__release(void *state)
{
    (void)state;
}

static const kb_plugin vb__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "vbyte-decode",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = vb__prepare,
    .run = vb__run,
    .verify = NULL,
    .release = vb__release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &vb__target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &vb__plugin;
}
