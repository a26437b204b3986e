/*
 * avx2.c -- dictionary-decode candidate "avx2": AVX2 gathers (x86-64-v3).
 *
 * Fixed widths: eight codes widened to 32-bit lanes (vpmovzxbd / vpmovzxwd, or a plain
 * load for u32 codes), then one vpgatherdd of eight 4-byte values or two vpgatherdq of
 * four 8-byte values each, and full-width stores; two such groups a step so two gathers
 * are in flight. The tail (n % 16) goes one by one.
 * Strings: as portable.c, prepare reshapes the dictionary into 32-byte slots (every string
 * is at most 32 bytes) and a table of lengths; per eight codes one vpgatherdd of the
 * lengths, an in-register prefix sum gives the eight output offsets (one store), and
 * each string is one 32-byte load and store at its start (the output holds 32n bytes and
 * the start of value i is at most 32i, so no store passes the end).
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

static inline void dd__put8_w4(const int *dict, __m256i idx, uint8_t *out)
{
    _mm256_storeu_si256((__m256i *)(void *)out, _mm256_i32gather_epi32(dict, idx, 4));
}

static inline void dd__put8_w8(const long long *dict, __m256i idx, uint8_t *out)
{
    const __m256i lo = _mm256_i32gather_epi64(dict, _mm256_castsi256_si128(idx), 8);
    const __m256i hi = _mm256_i32gather_epi64(dict, _mm256_extracti128_si256(idx, 1), 8);
    _mm256_storeu_si256((__m256i *)(void *)out, lo);
    _mm256_storeu_si256((__m256i *)(void *)(out + 32), hi);
}

/* One loop per (k, w); K and W are constants after inlining. */
#define DD_FIXED(fname, K, W)                                                              \
    static void fname(const uint8_t *codes, const uint8_t *dict, uint8_t *out, uint64_t n) \
    {                                                                                      \
        uint64_t i = 0;                                                                    \
        for (; i + 16 <= n; i += 16) {                                                     \
            const __m256i a = dd__idx8(codes + i * K, K);                                  \
            const __m256i b = dd__idx8(codes + (i + 8) * K, K);                            \
            if (W == 4) {                                                                  \
                dd__put8_w4((const int *)(const void *)dict, a, out + i * W);              \
                dd__put8_w4((const int *)(const void *)dict, b, out + (i + 8) * W);        \
            } else {                                                                       \
                dd__put8_w8((const long long *)(const void *)dict, a, out + i * W);        \
                dd__put8_w8((const long long *)(const void *)dict, b, out + (i + 8) * W);  \
            }                                                                              \
        }                                                                                  \
        for (; i < n; i++) {                                                               \
            const uint32_t c = dd__code(codes, i, K);                                      \
            memcpy(out + i * W, dict + (size_t)c * W, W);                                  \
        }                                                                                  \
    }

DD_FIXED(dd__u8_w4, 1, 4)
DD_FIXED(dd__u16_w4, 2, 4)
DD_FIXED(dd__u32_w4, 4, 4)
DD_FIXED(dd__u8_w8, 1, 8)
DD_FIXED(dd__u16_w8, 2, 8)
DD_FIXED(dd__u32_w8, 4, 8)

/* Inclusive prefix sum of eight 32-bit lanes. */
static inline __m256i dd__prefix8(__m256i x)
{
    x = _mm256_add_epi32(x, _mm256_slli_si256(x, 4));
    x = _mm256_add_epi32(x, _mm256_slli_si256(x, 8));
    const __m256i low_total = _mm256_shuffle_epi32(x, 0xff); /* lane 3 of each half */
    return _mm256_add_epi32(x, _mm256_permute2x128_si256(low_total, low_total, 0x08));
}

static uint64_t dd__strings(const dd__state *s, const uint8_t *codes, uint64_t n,
                            uint32_t *out_offsets, uint8_t *out)
{
    const int *lens = (const int *)(const void *)s->lens;
    uint32_t len = 0;
    uint64_t i = 0;
    out_offsets[0] = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i idx = dd__idx8(codes + i * (uint64_t)s->k, s->k);
        const __m256i incl = dd__prefix8(_mm256_i32gather_epi32(lens, idx, 4));
        const __m256i ends = _mm256_add_epi32(incl, _mm256_set1_epi32((int)len));
        _mm256_storeu_si256((__m256i *)(void *)(out_offsets + i + 1), ends);
        uint32_t c[8], e[8];
        _mm256_storeu_si256((__m256i *)(void *)c, idx);
        _mm256_storeu_si256((__m256i *)(void *)e, ends);
        uint32_t start = len;
        for (int j = 0; j < 8; j++) {
            const __m256i v =
                _mm256_load_si256((const __m256i *)(const void *)(s->slots + (size_t)c[j] * 32));
            _mm256_storeu_si256((__m256i *)(void *)(out + start), v);
            start = e[j];
        }
        len = e[7];
    }
    for (; i < n; i++) {
        const uint32_t c = dd__code(codes, i, s->k);
        memcpy(out + len, s->slots + (size_t)c * DD_MAX_LEN, DD_MAX_LEN);
        len += s->lens[c];
        out_offsets[i + 1] = len;
    }
    return len;
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
    const int sel = (s->k == 1 ? 0 : s->k == 2 ? 1 : 2) + (s->w == 8 ? 3 : 0);
    static void (*const loops[6])(const uint8_t *, const uint8_t *, uint8_t *, uint64_t) = {
        dd__u8_w4, dd__u16_w4, dd__u32_w4, dd__u8_w8, dd__u16_w8, dd__u32_w8};
    loops[sel](codes, s->values, out, n);
    outputs[1].produced = n * (uint64_t)s->w;
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
