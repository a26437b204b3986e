/*
 * neon.c -- dictionary-decode candidate "neon": Advanced SIMD (every aarch64 CPU).
 *
 * NEON has no gather, so it helps where a table fits in registers, and in the copies:
 *  - u8 codes into a dictionary of at most 64 4-byte values: prepare splits the values into
 *    four byte planes of 64 bytes; per 16 codes, four vqtbl4q_u8 lookups (one a plane, the
 *    tables held in 16 registers across the loop) and one vst4q_u8, which interleaves the
 *    planes back into sixteen 4-byte values;
 *  - strings: each 32-byte slot (below) is copied with two 16-byte loads and stores;
 *  - other fixed widths: the portable loops (scalar loads, unrolled by 4).
 * What follows is portable.c's description of the rest.
 *
 * The oracle copies one entry at a time with a memcpy whose length it learns at run time
 * and reads each code byte by byte. Here:
 *  - fixed widths: one loop per (k, w) pair, the code a native load and the value a
 *    4- or 8-byte load and store, unrolled by 4 so the loads of four entries are in flight;
 *  - strings: prepare reshapes the dictionary into 32-byte slots (every string is at most
 *    32 bytes) and a table of lengths, so each value is one fixed 32-byte copy (the part
 *    after the string is overwritten by the next one) and the offset a running sum. The
 *    output holds 32n bytes, so a 32-byte copy at the running position (at most 32i) never
 *    passes its end; the bytes past the produced count are not compared.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arm_neon.h>

#include "kbench.h"

enum { P_N, P_D, P_K, P_W, N_PARAMS };
#define DD_MAX_N   (INT64_C(1) << 24)
#define DD_MAX_D   (INT64_C(1) << 20)
#define DD_MAX_LEN 32

typedef struct dd__state {
    const kb_host *host;
    const uint8_t *values;
    const uint32_t *offsets;
    uint8_t *slots;  /* strings: d slots of 32 bytes, each string zero-padded */
    uint32_t *lens;  /* strings: d lengths */
    uint8_t *planes; /* u8 codes, w = 4, d <= 64: 4 planes of 64 bytes */
    int64_t d, k, w;
} dd__state;

static const char *dd__bad_params(int64_t n, int64_t d, int64_t k, int64_t w)
{
    if (n < 1 || n > DD_MAX_N) return "n must be in [1, 2^24]";
    if (k != 1 && k != 2 && k != 4) return "k (bytes a code) must be 1, 2 or 4";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    if (d < 1 || d > DD_MAX_D || (k < 4 && d > (INT64_C(1) << (8 * k))))
        return "d must be in [1, 2^20] and fit the code width (k=1: 256, k=2: 65536)";
    return NULL;
}

static void dd__release(void *state)
{
    dd__state *s = state;
    if (s->slots) s->host->free_aligned(s->host, s->slots);
    if (s->lens) s->host->free_aligned(s->host, s->lens);
    if (s->planes) s->host->free_aligned(s->host, s->planes);
    s->host->free_aligned(s->host, s);
}

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
    memset(s, 0, sizeof *s);
    s->host = host;
    s->values = statics[0].data;
    s->offsets = statics[1].data;
    s->d = cs->params[P_D];
    s->k = cs->params[P_K];
    s->w = cs->params[P_W];
    if (s->k == 1 && s->w == 4 && s->d <= 64) {
        s->planes = host->alloc_aligned(host, 4 * 64, 64);
        if (!s->planes) {
            dd__release(s);
            return KB_ERR_NOMEM;
        }
        memset(s->planes, 0, 4 * 64);
        for (int64_t e = 0; e < s->d; e++)
            for (int p = 0; p < 4; p++) s->planes[64 * p + e] = s->values[4 * e + p];
    }
    if (s->w == 0) {
        s->slots = host->alloc_aligned(host, (size_t)s->d * DD_MAX_LEN, 64);
        s->lens = host->alloc_aligned(host, (size_t)s->d * sizeof(uint32_t), 64);
        if (!s->slots || !s->lens) {
            dd__release(s);
            return KB_ERR_NOMEM;
        }
        memset(s->slots, 0, (size_t)s->d * DD_MAX_LEN);
        for (int64_t e = 0; e < s->d; e++) {
            const uint32_t a = s->offsets[e], b = s->offsets[e + 1];
            if (b < a || b - a > DD_MAX_LEN) {
                snprintf(err, err_len, "dictionary-decode: entry %lld is not 0..32 bytes",
                         (long long)e);
                dd__release(s);
                return KB_ERR_UNSUPPORTED;
            }
            s->lens[e] = b - a;
            memcpy(s->slots + e * DD_MAX_LEN, s->values + a, b - a);
        }
    }
    *state = s;
    return KB_OK;
}

/* One (code type, value type) loop: codes C, values V, unrolled by 4. */
#define DD_FIXED(fname, C, V)                                                                    \
    static void fname(const uint8_t *codes_b, const uint8_t *dict_b, uint8_t *out_b, uint64_t n) \
    {                                                                                            \
        const C *codes = (const C *)(const void *)codes_b;                                       \
        const V *dict = (const V *)(const void *)dict_b;                                         \
        V *out = (V *)(void *)out_b;                                                             \
        uint64_t i = 0;                                                                          \
        for (; i + 4 <= n; i += 4) {                                                             \
            const V a = dict[codes[i]], b = dict[codes[i + 1]], c = dict[codes[i + 2]],          \
                    d = dict[codes[i + 3]];                                                      \
            out[i] = a;                                                                          \
            out[i + 1] = b;                                                                      \
            out[i + 2] = c;                                                                      \
            out[i + 3] = d;                                                                      \
        }                                                                                        \
        for (; i < n; i++) out[i] = dict[codes[i]];                                              \
    }

DD_FIXED(dd__u8_w4, uint8_t, uint32_t)
DD_FIXED(dd__u16_w4, uint16_t, uint32_t)
DD_FIXED(dd__u32_w4, uint32_t, uint32_t)
DD_FIXED(dd__u8_w8, uint8_t, uint64_t)
DD_FIXED(dd__u16_w8, uint16_t, uint64_t)
DD_FIXED(dd__u32_w8, uint32_t, uint64_t)

/* u8 codes, 4-byte values, d <= 64: byte-plane lookups, interleaved by vst4q_u8. */
static void dd__u8_w4_tbl(const uint8_t *planes, const uint8_t *codes, const uint8_t *dict,
                          uint8_t *out, uint64_t n)
{
    const uint8x16x4_t t0 = vld1q_u8_x4(planes), t1 = vld1q_u8_x4(planes + 64),
                       t2 = vld1q_u8_x4(planes + 128), t3 = vld1q_u8_x4(planes + 192);
    uint64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const uint8x16_t idx = vld1q_u8(codes + i);
        uint8x16x4_t v;
        v.val[0] = vqtbl4q_u8(t0, idx);
        v.val[1] = vqtbl4q_u8(t1, idx);
        v.val[2] = vqtbl4q_u8(t2, idx);
        v.val[3] = vqtbl4q_u8(t3, idx);
        vst4q_u8(out + 4 * i, v);
    }
    for (; i < n; i++) memcpy(out + 4 * i, dict + 4 * (size_t)codes[i], 4);
}

static inline void dd__copy32(uint8_t *dst, const uint8_t *src)
{
    vst1q_u8(dst, vld1q_u8(src));
    vst1q_u8(dst + 16, vld1q_u8(src + 16));
}

/* Strings: two 16-byte loads and stores of the slot a value, the offset a running sum. One
 * loop per code type, the state's pointers in restrict locals, so that no store into the
 * output forces a reload of the tables. */
#define DD_STRINGS(fname, C)                                                            \
    static uint64_t fname(const uint8_t *restrict slots, const uint32_t *restrict lens, \
                          const uint8_t *restrict codes_b, uint64_t n,                  \
                          uint32_t *restrict out_offsets, uint8_t *restrict out)        \
    {                                                                                   \
        const C *codes = (const C *)(const void *)codes_b;                              \
        uint32_t len = 0;                                                               \
        out_offsets[0] = 0;                                                             \
        for (uint64_t i = 0; i < n; i++) {                                              \
            const uint32_t c = codes[i];                                                \
            dd__copy32(out + len, slots + (size_t)c * DD_MAX_LEN);                      \
            len += lens[c];                                                             \
            out_offsets[i + 1] = len;                                                   \
        }                                                                               \
        return len;                                                                     \
    }
DD_STRINGS(dd__str_u8, uint8_t)
DD_STRINGS(dd__str_u16, uint16_t)
DD_STRINGS(dd__str_u32, uint32_t)

static uint64_t dd__strings(const dd__state *s, const uint8_t *codes, uint64_t n,
                            uint32_t *out_offsets, uint8_t *out)
{
    return (s->k == 1   ? dd__str_u8
            : s->k == 2 ? dd__str_u16
                        : dd__str_u32)(s->slots, s->lens, codes, n, out_offsets, out);
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
    if (s->w == 0) {
        outputs[1].produced = dd__strings(s, codes, n, out_offsets, out);
        return KB_OK;
    }
    out_offsets[0] = 0;
    outputs[1].produced = n * (uint64_t)s->w;
    if (s->planes) {
        dd__u8_w4_tbl(s->planes, codes, s->values, out, n);
        return KB_OK;
    }
    const int sel = (s->k == 1 ? 0 : s->k == 2 ? 1 : 2) + (s->w == 8 ? 3 : 0);
    static void (*const loops[6])(const uint8_t *, const uint8_t *, uint8_t *, uint64_t) = {
        dd__u8_w4, dd__u16_w4, dd__u32_w4, dd__u8_w8, dd__u16_w8, dd__u32_w8};
    loops[sel](codes, s->values, out, n);
    return KB_OK;
}

static const kb_plugin dd__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "dictionary-decode",
    .name = "neon",
    .version = "1",
    .cpu_features = KB_CPU_NEON,
    .prepare = dd__prepare,
    .run = dd__run,
    .verify = NULL,
    .release = dd__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &dd__plugin;
}
