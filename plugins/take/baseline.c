/*
 * baseline.c -- take candidate "baseline": the oracle's kernel, unchanged, as a plugin.
 *
 * arrow-rs's take_native, as Lance's take calls it: out[i] = values[indices[i]], one value
 * at a time, with Rust's bounds check. Timed against the oracle it shows the harness's
 * noise floor (its ratio sits at 1 up to code layout, and it must never be kept); it is
 * also the file to copy when starting a candidate.
 */
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

enum { P_N, P_M, P_W, N_PARAMS };
enum { B_VALUES, B_INDICES, B_OUT, N_BUFFERS };
#define TK_MAX_N (INT64_C(1) << 24)
#define TK_MAX_M (INT64_C(1) << 22)

static const char *tk__bad_params(int64_t n, int64_t m, int64_t w)
{
    if (n < 1 || n > TK_MAX_N) return "n must be in [1, 2^24]";
    if (m < 1 || m > TK_MAX_M) return "m must be in [1, 2^22]";
    if (w != 4 && w != 8) return "w (bytes a value) must be 4 or 8";
    return NULL;
}

/* ---- the reference kernel ------------------------------------------- */

typedef struct tk__state {
    const kb_host *host;
    const uint8_t *values;
    uint64_t n;
    int64_t w;
} tk__state;

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

/* take_native::<T>: values[index] for each index, in order. */
#define TK_NATIVE(fname, T)                                                                    \
    static int fname(const uint8_t *values_b, uint64_t n, const uint32_t *indices, uint64_t m, \
                     uint8_t *out_b)                                                           \
    {                                                                                          \
        const T *values = (const T *)(const void *)values_b;                                   \
        T *out = (T *)(void *)out_b;                                                           \
        for (uint64_t i = 0; i < m; i++) {                                                     \
            const uint64_t index = indices[i];                                                 \
            if (index >= n) return -1; /* Rust's bounds check */                               \
            out[i] = values[index];                                                            \
        }                                                                                      \
        return 0;                                                                              \
    }
TK_NATIVE(tk__native_u32, uint32_t)
TK_NATIVE(tk__native_u64, uint64_t)

static int tk__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const tk__state *s = state;
    if (n_inputs != 1 || n_outputs != 1 || outputs[0].count != inputs[0].count * (uint64_t)s->w) {
        snprintf(err, err_len, "take: need m indices and m * w output bytes");
        return KB_ERR_INTERNAL;
    }
    const uint64_t m = inputs[0].count;
    if ((s->w == 4 ? tk__native_u32 : tk__native_u64)(s->values, s->n, inputs[0].data, m,
                                                      outputs[0].data) != 0) {
        snprintf(err, err_len, "take: an index is out of bounds (n = %llu)",
                 (unsigned long long)s->n);
        return KB_ERR_INTERNAL;
    }
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
    .name = "baseline",
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
