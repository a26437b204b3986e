/*
 * avx2.c -- dictionary-decode candidate "avx2" (x86-64-v3).
 *
 * - 4-byte values from a dictionary of at most 32 entries: the dictionary lives in four
 *   ymm registers; eight codes widened to 32-bit lanes (vpmovzxbd / vpmovzxwd, or a plain
 *   load for u32 codes), one vpermd a block of eight entries and a blend by the code's
 *   block, one 32-byte store;
 * - strings: prepare reshapes the dictionary into 32-byte slots (every string is at most
 *   32 bytes) and a table of lengths; each value is one 32-byte ymm load and store at its
 *   start (the output holds 32n bytes and the start of value i is at most 32i, so no
 *   store passes the end), the offset a running sum;
 * - every other fixed width: scalar loads, four in flight. vpgatherdd / vpgatherdq were
 *   tried here and were no faster than scalar loads on Zen 5 (see program.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <immintrin.h>

#include "kbench.h"

enum { P_N, P_D, P_K, P_W, N_PARAMS };
#define DD_MAX_N   (INT64_C(1) << 24)
#define DD_MAX_D   (INT64_C(1) << 20)
#define DD_MAX_LEN 32

typedef struct dd__state {
    const kb_host *host;
    const uint8_t *values;
    const uint32_t *offsets;
    uint8_t *slots; /* strings: d slots of 32 bytes, each string zero-padded */
    uint32_t *lens; /* strings: d lengths */
    uint8_t *tbl;   /* w = 4, d <= 32: the values, zero-padded to 128 bytes */
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
    if (s->tbl) s->host->free_aligned(s->host, s->tbl);
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
    if (s->w == 4 && s->d <= 32) {
        s->tbl = host->alloc_aligned(host, 128, 64);
        if (!s->tbl) {
            dd__release(s);
            return KB_ERR_NOMEM;
        }
        memset(s->tbl, 0, 128);
        memcpy(s->tbl, s->values, (size_t)(s->d * s->w));
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

static inline uint32_t dd__code(const uint8_t *codes, uint64_t i, int64_t k)
{
    if (k == 1) return codes[i];
    if (k == 2) {
        uint16_t c;
        memcpy(&c, codes + 2 * i, 2);
        return c;
    }
    uint32_t c;
    memcpy(&c, codes + 4 * i, 4);
    return c;
}

/* Eight codes at c as 32-bit lanes. */
static inline __m256i dd__idx8(const uint8_t *c, int64_t k)
{
    if (k == 1) return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)c));
    if (k == 2) return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)c));
    return _mm256_loadu_si256((const __m256i *)(const void *)c);
}

/* Small dictionaries in registers: blocks of eight 4-byte values a ymm, vpermd picks the entry within each block by the code's low bits and a
 * blend keeps the block the code's high bits name (blocks in rising order, each taking the
 * lanes whose code reaches it). The tail goes one by one. */
static void dd__tbl_w4(const dd__state *s, const uint8_t *codes, uint8_t *out, uint64_t n)
{
    __m256i t[4];
    for (int j = 0; j < 4; j++)
        t[j] = _mm256_load_si256((const __m256i *)(const void *)(s->tbl + 32 * j));
    const int nb = (int)((s->d + 7) / 8);
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i idx = dd__idx8(codes + i * (uint64_t)s->k, s->k);
        __m256i r = _mm256_permutevar8x32_epi32(t[0], idx);
        for (int b = 1; b < nb; b++) {
            const __m256i hit = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(8 * b - 1));
            r = _mm256_blendv_epi8(r, _mm256_permutevar8x32_epi32(t[b], idx), hit);
        }
        _mm256_storeu_si256((__m256i *)(void *)(out + 4 * i), r);
    }
    for (; i < n; i++) memcpy(out + 4 * i, s->tbl + 4 * (size_t)dd__code(codes, i, s->k), 4);
}

/* Larger dictionaries: scalar loads, four in flight (vpgatherdd is no faster on Zen 5). */
#define DD_SCALAR(fname, C, V)                                                                   \
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

DD_SCALAR(dd__s_u8_w4, uint8_t, uint32_t)
DD_SCALAR(dd__s_u16_w4, uint16_t, uint32_t)
DD_SCALAR(dd__s_u32_w4, uint32_t, uint32_t)
DD_SCALAR(dd__s_u8_w8, uint8_t, uint64_t)
DD_SCALAR(dd__s_u16_w8, uint16_t, uint64_t)
DD_SCALAR(dd__s_u32_w8, uint32_t, uint64_t)

/* Strings: one 32-byte ymm load and store of the slot a value, the offset a running sum. One
 * loop per code type, the state's pointers in restrict locals, so that no store into the
 * output forces a reload of the tables. */
#define DD_STRINGS(fname, C)                                                                 \
    static uint64_t fname(const uint8_t *restrict slots, const uint32_t *restrict lens,      \
                          const uint8_t *restrict codes_b, uint64_t n,                       \
                          uint32_t *restrict out_offsets, uint8_t *restrict out)             \
    {                                                                                        \
        const C *codes = (const C *)(const void *)codes_b;                                   \
        uint32_t len = 0;                                                                    \
        out_offsets[0] = 0;                                                                  \
        for (uint64_t i = 0; i < n; i++) {                                                   \
            const uint32_t c = codes[i];                                                     \
            _mm256_storeu_si256(                                                             \
                (__m256i *)(void *)(out + len),                                              \
                _mm256_load_si256((const __m256i *)(const void *)(slots + (size_t)c * 32))); \
            len += lens[c];                                                                  \
            out_offsets[i + 1] = len;                                                        \
        }                                                                                    \
        return len;                                                                          \
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
    if (s->tbl) {
        dd__tbl_w4(s, codes, out, n);
        return KB_OK;
    }
    const int sel = (s->k == 1 ? 0 : s->k == 2 ? 1 : 2) + (s->w == 8 ? 3 : 0);
    static void (*const loops[6])(const uint8_t *, const uint8_t *, uint8_t *, uint64_t) = {
        dd__s_u8_w4, dd__s_u16_w4, dd__s_u32_w4, dd__s_u8_w8, dd__s_u16_w8, dd__s_u32_w8};
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
    .name = "avx2",
    .version = "1",
    .cpu_features = KB_CPU_AVX2,
    .prepare = dd__prepare,
    .run = dd__run,
    .verify = NULL,
    .release = dd__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &dd__plugin;
}
