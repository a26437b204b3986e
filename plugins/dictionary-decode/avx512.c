/*
 * avx512.c -- dictionary-decode candidate "avx512": AVX-512 gathers.
 *
 * Fixed widths: sixteen codes widened to 32-bit lanes (vpmovzxbd / vpmovzxwd, or a plain
 * load for u32 codes), then one vpgatherdd of sixteen 4-byte values or two vpgatherdq of
 * eight 8-byte values each, and 64-byte stores; two such groups a step so two gathers are
 * in flight. The tail (n % 32) is one masked group of each kind.
 * Strings: as portable.c, prepare reshapes the dictionary into 32-byte slots (every string
 * is at most 32 bytes) and a table of lengths; per sixteen codes one vpgatherdd of the
 * lengths, an in-register prefix sum gives the sixteen output offsets (one store), and
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

/* Sixteen codes at c as 32-bit lanes; m (the lanes wanted) masks the loads. */
static inline __m512i dd__idx16(const uint8_t *c, int64_t k, __mmask16 m)
{
    if (k == 1) return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c));
    if (k == 2) return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, c));
    return _mm512_maskz_loadu_epi32(m, c);
}

static inline void dd__put16_w4(const void *dict, __m512i idx, uint8_t *out, __mmask16 m)
{
    const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, dict, 4);
    _mm512_mask_storeu_epi32(out, m, v);
}

static inline void dd__put16_w8(const void *dict, __m512i idx, uint8_t *out, __mmask16 m)
{
    const __mmask8 ml = (__mmask8)m, mh = (__mmask8)(m >> 8);
    const __m512i lo = _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), ml,
                                                   _mm512_castsi512_si256(idx), dict, 8);
    const __m512i hi = _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), mh,
                                                   _mm512_extracti64x4_epi64(idx, 1), dict, 8);
    _mm512_mask_storeu_epi64(out, ml, lo);
    _mm512_mask_storeu_epi64(out + 64, mh, hi);
}

/* One loop per (k, w); K and W are constants after inlining. */
#define DD_FIXED(fname, K, W)                                                              \
    static void fname(const uint8_t *codes, const uint8_t *dict, uint8_t *out, uint64_t n) \
    {                                                                                      \
        void (*const put)(const void *, __m512i, uint8_t *, __mmask16) =                   \
            W == 4 ? dd__put16_w4 : dd__put16_w8;                                          \
        uint64_t i = 0;                                                                    \
        for (; i + 32 <= n; i += 32) {                                                     \
            const __m512i a = dd__idx16(codes + i * K, K, 0xffff);                         \
            const __m512i b = dd__idx16(codes + (i + 16) * K, K, 0xffff);                  \
            put(dict, a, out + i * W, 0xffff);                                             \
            put(dict, b, out + (i + 16) * W, 0xffff);                                      \
        }                                                                                  \
        for (; i < n; i += 16) {                                                           \
            const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);   \
            put(dict, dd__idx16(codes + i * K, K, m), out + i * W, m);                     \
        }                                                                                  \
    }

DD_FIXED(dd__u8_w4, 1, 4)
DD_FIXED(dd__u16_w4, 2, 4)
DD_FIXED(dd__u32_w4, 4, 4)
DD_FIXED(dd__u8_w8, 1, 8)
DD_FIXED(dd__u16_w8, 2, 8)
DD_FIXED(dd__u32_w8, 4, 8)

/* Inclusive prefix sum of sixteen 32-bit lanes (log-step shifts across the register). */
static inline __m512i dd__prefix16(__m512i x)
{
    const __m512i z = _mm512_setzero_si512();
    x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 15));
    x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 14));
    x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 12));
    return _mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 8));
}

static uint64_t dd__strings(const dd__state *s, const uint8_t *codes, uint64_t n,
                            uint32_t *out_offsets, uint8_t *out)
{
    uint32_t len = 0;
    out_offsets[0] = 0;
    for (uint64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512i idx = dd__idx16(codes + i * (uint64_t)s->k, s->k, m);
        const __m512i lens =
            _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, s->lens, 4);
        const __m512i ends = _mm512_add_epi32(dd__prefix16(lens), _mm512_set1_epi32((int)len));
        _mm512_mask_storeu_epi32(out_offsets + i + 1, m, ends);
        uint32_t c[16], e[16];
        _mm512_storeu_si512(c, idx);
        _mm512_storeu_si512(e, ends);
        const int cnt = n - i >= 16 ? 16 : (int)(n - i);
        uint32_t start = len;
        for (int j = 0; j < cnt; j++) {
            const __m256i v =
                _mm256_load_si256((const __m256i *)(const void *)(s->slots + (size_t)c[j] * 32));
            _mm256_storeu_si256((__m256i *)(void *)(out + start), v);
            start = e[j];
        }
        len = e[cnt - 1];
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
    .name = "avx512",
    .version = "1",
    .cpu_features = KB_CPU_AVX512F | KB_CPU_AVX512BW | KB_CPU_AVX512VL,
    .prepare = dd__prepare,
    .run = dd__run,
    .verify = NULL,
    .release = dd__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &dd__plugin;
}
