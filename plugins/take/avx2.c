/*
 * avx2.c -- take candidate "avx2" (x86-64-v3).
 *
 * portable.c's scalar loop with prefetch, sixteen indices a step, plus a whole-run test:
 * two vector compares of the step's indices against first + 0..15, and a run is copied
 * with 32-byte loads and stores (see TK_TAKE). The bounds check is dropped: the indices
 * are the generator's, each below n.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <immintrin.h>

#include "kbench.h"

enum { P_N, P_M, P_W, N_PARAMS };
#define TK_MAX_N   (INT64_C(1) << 24)
#define TK_MAX_M   (INT64_C(1) << 22)
#define TK_MAX_LEN 32
#define TK_AHEAD   32

typedef struct tk__state {
    const kb_host *host;
    const uint8_t *values;
    uint8_t *slots; /* strings: n slots of 32 bytes, each string zero-padded */
    uint32_t *lens; /* strings: n lengths */
    uint64_t n;
    int64_t w;
} tk__state;

static const char *tk__bad_params(int64_t n, int64_t m, int64_t w)
{
    if (n < 1 || n > TK_MAX_N) return "n must be in [1, 2^24]";
    if (m < 1 || m > TK_MAX_M) return "m must be in [1, 2^22]";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    return NULL;
}

static void tk__release(void *state)
{
    tk__state *s = state;
    if (s->slots) s->host->free_aligned(s->host, s->slots);
    if (s->lens) s->host->free_aligned(s->host, s->lens);
    s->host->free_aligned(s->host, s);
}

/* Strings: each into a zero-padded 32-byte slot, its length into a table. */
static int tk__slots(tk__state *s, const uint32_t *offsets, char *err, size_t err_len)
{
    s->slots = s->host->alloc_aligned(s->host, (size_t)s->n * TK_MAX_LEN, 64);
    s->lens = s->host->alloc_aligned(s->host, (size_t)s->n * sizeof(uint32_t), 64);
    if (!s->slots || !s->lens) return KB_ERR_NOMEM;
    memset(s->slots, 0, (size_t)s->n * TK_MAX_LEN);
    for (uint64_t e = 0; e < s->n; e++) {
        const uint32_t a = offsets[e], b = offsets[e + 1];
        if (b < a || b - a > TK_MAX_LEN) {
            snprintf(err, err_len, "take: string %llu is not 0..32 bytes", (unsigned long long)e);
            return KB_ERR_UNSUPPORTED;
        }
        s->lens[e] = b - a;
        memcpy(s->slots + e * TK_MAX_LEN, s->values + a, b - a);
    }
    return KB_OK;
}

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
    memset(s, 0, sizeof *s);
    s->host = host;
    s->values = statics[0].data;
    s->n = (uint64_t)cs->params[P_N];
    s->w = cs->params[P_W];
    if (s->w == 0) {
        const int rc = tk__slots(s, statics[1].data, err, err_len);
        if (rc != KB_OK) {
            tk__release(s);
            return rc;
        }
    }
    *state = s;
    return KB_OK;
}

/* Sixteen indices a step. Compares against first + 0..15 find a step that is a whole
 * run of a range scan (sixteen consecutive rows): it is one or two 64-byte loads and
 * stores. Any other step is sixteen scalar loads and stores, the values TK_AHEAD indices
 * ahead prefetched. A whole-run step is rare enough on clustered runs (about one in ten:
 * a run breaks on one step in eight) that the branch is predicted; partial runs from
 * masked loads and a masked gather for the rest were tried and were slower than the
 * scalar step on Zen 5. */
#define TK_TAKE(fname, T)                                                                         \
    static void fname(const tk__state *s, const uint32_t *restrict idx, uint64_t m,               \
                      uint8_t *restrict out_b)                                                    \
    {                                                                                             \
        const T *values = (const T *)(const void *)s->values;                                     \
        T *out = (T *)(void *)out_b;                                                              \
        const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                           \
        uint64_t i = 0;                                                                           \
        for (; i + 16 <= m; i += 16) {                                                            \
            const uint32_t f = idx[i];                                                            \
            const __m256i fv = _mm256_add_epi32(_mm256_set1_epi32((int)f), iota);                 \
            const __m256i e0 = _mm256_cmpeq_epi32(                                                \
                _mm256_loadu_si256((const __m256i *)(const void *)(idx + i)), fv);                \
            const __m256i e1 = _mm256_cmpeq_epi32(                                                \
                _mm256_loadu_si256((const __m256i *)(const void *)(idx + i + 8)),                 \
                _mm256_add_epi32(fv, _mm256_set1_epi32(8)));                                      \
            if (_mm256_movemask_epi8(_mm256_and_si256(e0, e1)) == -1) {                           \
                for (unsigned b = 0; b < 16 * sizeof(T); b += 32)                                 \
                    _mm256_storeu_si256(                                                          \
                        (__m256i *)(void *)((uint8_t *)(void *)(out + i) + b),                    \
                        _mm256_loadu_si256(                                                       \
                            (const __m256i *)(const void *)((const uint8_t *)(values + f) + b))); \
                continue;                                                                         \
            }                                                                                     \
            if (i + TK_AHEAD + 16 <= m)                                                           \
                for (int j = 0; j < 16; j += 2)                                                   \
                    _mm_prefetch((const char *)&values[idx[i + TK_AHEAD + j]], _MM_HINT_T0);      \
            for (int j = 0; j < 16; j++) out[i + j] = values[idx[i + j]];                         \
        }                                                                                         \
        for (; i < m; i++) out[i] = values[idx[i]];                                               \
    }
TK_TAKE(tk__take_w4, uint32_t)
TK_TAKE(tk__take_w8, uint64_t)

/* Strings: one 32-byte copy of the slot a value (the output holds 32m bytes and the
 * start of value i is at most 32i, so it never passes the end; the next value overwrites
 * the padding), the offset a running sum, in one pass. */
static uint64_t tk__strings(const uint8_t *restrict slots, const uint32_t *restrict lens,
                            const uint32_t *restrict idx, uint64_t m,
                            uint32_t *restrict out_offsets, uint8_t *restrict out)
{
    uint32_t len = 0;
    out_offsets[0] = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint32_t c = idx[i];
        _mm256_storeu_si256(
            (__m256i *)(void *)(out + len),
            _mm256_load_si256((const __m256i *)(const void *)(slots + (size_t)c * TK_MAX_LEN)));
        len += lens[c];
        out_offsets[i + 1] = len;
    }
    return len;
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
    uint32_t *out_offsets = outputs[0].data;
    if (s->w == 0) {
        outputs[1].produced = tk__strings(s->slots, s->lens, inputs[0].data, inputs[0].count,
                                          out_offsets, outputs[1].data);
        return KB_OK;
    }
    out_offsets[0] = 0;
    outputs[1].produced = inputs[0].count * (uint64_t)s->w;
    (s->w == 4 ? tk__take_w4 : tk__take_w8)(s, inputs[0].data, inputs[0].count, outputs[1].data);
    return KB_OK;
}

static const kb_plugin tk__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "take",
    .name = "avx2",
    .version = "1",
    .cpu_features = KB_CPU_AVX2,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
