/*
 * avx512.c -- vbyte-decode candidate "avx512": streamvbyte's shuffle-table decode, four
 * control bytes (sixteen values) a step in one 512-bit register.
 *
 * For a control byte k, shuf[k] is the vpshufb pattern that moves each value's 1..4 data
 * bytes into its own u32 lane and zeroes the rest, len[k] how far the data pointer moves.
 * The four 128-bit lanes load 16 bytes each at their own data position (the stream's 16
 * bytes of padding make that safe at the end), their patterns are put side by side, one
 * AVX-512BW vpshufb spreads all four and one store writes sixteen u32. The last n % 16
 * values go four at a time and then one at a time.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_N, N_PARAMS };
#define VB_PADDING 16
#define VB_MAX_N   (INT64_C(1) << 24)
#define VB_CAP(n)  (((n) + 3) / 4 + 4 * (n) + VB_PADDING)

/* Per control byte: the byte shuffle that spreads its four values' 4..16 data bytes into
 * four u32 lanes (index 0x80: a zero byte) and the number of data bytes it covers. */
typedef struct vb__state {
    const kb_host *host;
    uint8_t shuf[256][16];
    uint8_t len[256];
} vb__state;

static void vb__tables(vb__state *st)
{
    for (uint32_t k = 0; k < 256; k++) {
        uint32_t off = 0;
        for (uint32_t j = 0; j < 4; j++) {
            const uint32_t c = (k >> (2 * j)) & 3;
            for (uint32_t b = 0; b < 4; b++)
                st->shuf[k][4 * j + b] = b <= c ? (uint8_t)(off + b) : 0x80;
            off += c + 1;
        }
        st->len[k] = (uint8_t)off;
    }
}

static int vb__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS || cs->params[P_N] < 1 ||
        cs->params[P_N] > VB_MAX_N) {
        snprintf(err, err_len, "vbyte-decode: expected 0 statics and n in 1..2^24");
        return KB_ERR_UNSUPPORTED;
    }
    vb__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the shuffle tables");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    vb__tables(st);
    *state = st;
    return KB_OK;
}

/* The last n % 4 values, one at a time (p has 16 bytes of padding behind the data). */
static void vb__tail(const uint8_t *key, const uint8_t *p, uint32_t *out, uint64_t from, uint64_t n)
{
    static const uint32_t mask[4] = {0xffu, 0xffffu, 0xffffffu, 0xffffffffu};
    for (uint64_t i = from; i < n; i++) {
        const uint32_t c = (key[i / 4] >> (2 * (i % 4))) & 3;
        uint32_t v;
        memcpy(&v, p, 4);
        out[i] = v & mask[c];
        p += c + 1;
    }
}

static int vb__check(const kb_buffer *inputs, uint32_t n_inputs, const kb_buffer *outputs,
                     uint32_t n_outputs, char *err, size_t err_len)
{
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)VB_CAP(outputs[0].count)) {
        snprintf(err, err_len, "vbyte-decode: need a stream of (n+3)/4 + 4n + 16 bytes, n outputs");
        return KB_ERR_INTERNAL;
    }
    return KB_OK;
}

static inline __m512i vb__four(const __m128i *a, const __m128i *b, const __m128i *c,
                               const __m128i *d)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(a));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(b), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(c), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128(d), 3);
}

static int vb__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const vb__state *st = state;
    int rc = vb__check(inputs, n_inputs, outputs, n_outputs, err, err_len);
    if (rc != KB_OK) return rc;
    const uint64_t n = outputs[0].count, groups = n / 4;
    const uint8_t *key = inputs[0].data, *p = key + (n + 3) / 4;
    uint32_t *out = outputs[0].data;
    uint64_t g = 0;
    for (; g + 4 <= groups; g += 4, out += 16) {
        uint32_t k;
        memcpy(&k, key + g, 4);
        const uint32_t k0 = k & 0xff, k1 = (k >> 8) & 0xff, k2 = (k >> 16) & 0xff, k3 = k >> 24;
        const uint8_t *p1 = p + st->len[k0], *p2 = p1 + st->len[k1], *p3 = p2 + st->len[k2];
        __m512i d = vb__four((const __m128i *)p, (const __m128i *)p1, (const __m128i *)p2,
                             (const __m128i *)p3);
        __m512i s = vb__four((const __m128i *)st->shuf[k0], (const __m128i *)st->shuf[k1],
                             (const __m128i *)st->shuf[k2], (const __m128i *)st->shuf[k3]);
        p = p3 + st->len[k3];
        _mm512_storeu_si512(out, _mm512_shuffle_epi8(d, s));
    }
    for (; g < groups; g++, out += 4) {
        const uint32_t k = key[g];
        __m128i d = _mm_loadu_si128((const __m128i *)p);
        _mm_storeu_si128((__m128i *)out,
                         _mm_shuffle_epi8(d, _mm_load_si128((const __m128i *)st->shuf[k])));
        p += st->len[k];
    }
    vb__tail(key, p, outputs[0].data, groups * 4, n);
    return KB_OK;
}

static void vb__release(void *state)
{
    vb__state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin vb__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "vbyte-decode",
    .name = "avx512",
    .version = "1",
    .cpu_features = KB_CPU_AVX512F | KB_CPU_AVX512BW,
    .prepare = vb__prepare,
    .run = vb__run,
    .verify = NULL,
    .release = vb__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &vb__plugin;
}
