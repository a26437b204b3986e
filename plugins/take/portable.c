/*
 * portable.c -- take candidate "portable": plain C, every CPU.
 *
 * The oracle loads one index, checks it against n, loads the value and stores it. Here:
 *  - eight independent loads and stores a step, no bounds check;
 *  - the values for every other index TK_AHEAD positions ahead are prefetched (GCC/Clang
 *    builtin), so that random rows of a column larger than the caches arrive in time.
 * A scalar run check (eight indices first, first + 1, ...: one 8-value copy) was slower
 * on clustered runs: the branch goes either way about half the time.
 * The bounds check is dropped: the indices are the generator's, each below n.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* One loop per value type T: eight independent loads and stores a step. */
#define TK_TAKE(fname, T)                                                                          \
    static void fname(const uint8_t *restrict values_b, const uint32_t *restrict idx, uint64_t m,  \
                      uint8_t *restrict out_b)                                                     \
    {                                                                                              \
        const T *values = (const T *)(const void *)values_b;                                       \
        T *out = (T *)(void *)out_b;                                                               \
        uint64_t i = 0;                                                                            \
        for (; i + 8 <= m; i += 8) {                                                               \
            if (i + TK_AHEAD + 8 <= m)                                                             \
                for (int j = 0; j < 8; j += 2) __builtin_prefetch(&values[idx[i + TK_AHEAD + j]]); \
            for (int j = 0; j < 8; j++) out[i + j] = values[idx[i + j]];                           \
        }                                                                                          \
        for (; i < m; i++) out[i] = values[idx[i]];                                                \
    }
TK_TAKE(tk__take_u32, uint32_t)
TK_TAKE(tk__take_u64, uint64_t)

static int tk__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const tk__state *s = state;
    if (n_inputs != 1 || n_outputs != 1 || outputs[0].count != inputs[0].count * (uint64_t)s->w) {
        snprintf(err, err_len, "take: need m indices and m * w output bytes");
        return KB_ERR_INTERNAL;
    }
    (s->w == 4 ? tk__take_u32 : tk__take_u64)(s->values, inputs[0].data, inputs[0].count,
                                              outputs[0].data);
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
    .name = "portable",
    .version = "1",
    .cpu_features = 0,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
