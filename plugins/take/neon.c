/*
 * neon.c -- take candidate "neon" (Advanced SIMD, every aarch64 CPU).
 *
 * portable.c's scalar loop with prefetch, sixteen indices a step, plus a whole-run test:
 * four vector compares of the step's indices against first + 0..15 (vminvq of the
 * combined mask), and a run is copied with 16-byte loads and stores (see TK_TAKE). The
 * bounds check is dropped: the indices are the generator's, each below n.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arm_neon.h>

#include "kbench.h"

enum { P_N, P_M, P_W, N_PARAMS };
#define TK_MAX_N (INT64_C(1) << 24)
#define TK_MAX_M (INT64_C(1) << 22)
#define TK_AHEAD 32

typedef struct tk__state {
    const kb_host *host;
    const uint8_t *values;
    uint64_t n;
    int64_t w;
} tk__state;

static const char *tk__bad_params(int64_t n, int64_t m, int64_t w)
{
    if (n < 1 || n > TK_MAX_N) return "n must be in [1, 2^24]";
    if (m < 1 || m > TK_MAX_M) return "m must be in [1, 2^22]";
    if (w != 4 && w != 8) return "w (bytes a value) must be 4 or 8";
    return NULL;
}

static int tk__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const char *bad = cs->n_params != N_PARAMS
                          ? "3 parameters expected"
                          : tk__bad_params(cs->params[P_N], cs->params[P_M], cs->params[P_W]);
    if (!bad && n_statics != 1) bad = "1 static expected";
    if (bad) {
        snprintf(err, err_len, "take: %s", bad);
        return KB_ERR_UNSUPPORTED;
    }
    tk__state *s = host->alloc_aligned(host, sizeof *s, 64);
    if (!s) return KB_ERR_NOMEM;
    s->host = host;
    s->values = statics[0].data;
    s->n = (uint64_t)cs->params[P_N];
    s->w = cs->params[P_W];
    *state = s;
    return KB_OK;
}

/* Sixteen indices a step. Compares against first + 0..15 find a step that is a whole
 * run of a range scan (sixteen consecutive rows): it is one or two 64-byte loads and
 * stores. Any other step is sixteen scalar loads and stores, the values TK_AHEAD indices
 * ahead prefetched. A whole-run step is rare enough on clustered runs (about one in ten:
 * a run breaks on one step in eight) that the branch is predicted; partial runs from
 * masked loads and a masked gather for the rest were tried and were slower than the
 * scalar step on Zen 5 (avx512.c). */
#define TK_TAKE(fname, T)                                                                         \
    static void fname(const tk__state *s, const uint32_t *restrict idx, uint64_t m,               \
                      uint8_t *restrict out_b)                                                    \
    {                                                                                             \
        const T *values = (const T *)(const void *)s->values;                                     \
        T *out = (T *)(void *)out_b;                                                              \
        static const uint32_t iota_[4] = {0, 1, 2, 3};                                            \
        const uint32x4_t iota = vld1q_u32(iota_);                                                 \
        uint64_t i = 0;                                                                           \
        for (; i + 16 <= m; i += 16) {                                                            \
            const uint32_t f = idx[i];                                                            \
            const uint32x4_t fv = vaddq_u32(vdupq_n_u32(f), iota), four = vdupq_n_u32(4);         \
            uint32x4_t e = vceqq_u32(vld1q_u32(idx + i), fv);                                     \
            e = vandq_u32(e, vceqq_u32(vld1q_u32(idx + i + 4), vaddq_u32(fv, four)));             \
            e = vandq_u32(                                                                        \
                e, vceqq_u32(vld1q_u32(idx + i + 8), vaddq_u32(fv, vaddq_u32(four, four))));      \
            e = vandq_u32(e, vceqq_u32(vld1q_u32(idx + i + 12), vaddq_u32(fv, vdupq_n_u32(12)))); \
            if (vminvq_u32(e) == UINT32_MAX) {                                                    \
                for (unsigned b = 0; b < 16 * sizeof(T); b += 16)                                 \
                    vst1q_u8((uint8_t *)(void *)(out + i) + b,                                    \
                             vld1q_u8((const uint8_t *)(values + f) + b));                        \
                continue;                                                                         \
            }                                                                                     \
            if (i + TK_AHEAD + 16 <= m)                                                           \
                for (int j = 0; j < 16; j += 2)                                                   \
                    __builtin_prefetch(&values[idx[i + TK_AHEAD + j]]);                           \
            for (int j = 0; j < 16; j++) out[i + j] = values[idx[i + j]];                         \
        }                                                                                         \
        for (; i < m; i++) out[i] = values[idx[i]];                                               \
    }
TK_TAKE(tk__take_w4, uint32_t)
TK_TAKE(tk__take_w8, uint64_t)

static int tk__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const tk__state *s = state;
    if (n_inputs != 1 || n_outputs != 1 || outputs[0].count != inputs[0].count * (uint64_t)s->w) {
        snprintf(err, err_len, "take: need m indices and m * w output bytes");
        return KB_ERR_INTERNAL;
    }
    (s->w == 4 ? tk__take_w4 : tk__take_w8)(s, inputs[0].data, inputs[0].count, outputs[0].data);
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
    .name = "neon",
    .version = "1",
    .cpu_features = KB_CPU_NEON,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
