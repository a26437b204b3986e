/*
 * baseline.c -- take candidate "baseline": the oracle's kernel, unchanged, as a plugin.
 *
 * arrow-rs's take_native, as Lance's take calls it: out[i] = values[indices[i]], one value
 * at a time, with Rust's bounds check; for strings take_bytes' two passes (offsets, then
 * bytes). Timed against the oracle it shows the harness's noise floor (its ratio sits at 1
 * up to code layout, and it must never be kept); it is also the file to copy when starting
 * a candidate.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_N, P_M, P_W, N_PARAMS };
enum { B_VALUES, B_VALUE_OFFSETS, B_INDICES, B_OUT_OFFSETS, B_OUT, N_BUFFERS };
#define TK_MAX_N   (INT64_C(1) << 24)
#define TK_MAX_M   (INT64_C(1) << 22)
#define TK_MAX_LEN 32

static const char *tk__bad_params(int64_t n, int64_t m, int64_t w)
{
    if (n < 1 || n > TK_MAX_N) return "n must be in [1, 2^24]";
    if (m < 1 || m > TK_MAX_M) return "m must be in [1, 2^22]";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    return NULL;
}

/* ---- the reference kernel ------------------------------------------- */

typedef struct tk__state {
    const kb_host *host;
    const uint8_t *values;
    const uint32_t *offsets;
    uint64_t n;
    int64_t w;
} tk__state;

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
    s->host = host;
    s->values = statics[0].data;
    s->offsets = statics[1].data;
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

/* take_bytes, no nulls: the offsets pass (Rust's bounds-checked offset reads), then the
 * copies in index order. Returns the bytes written, or -1 for an index out of bounds. */
static int64_t tk__bytes(const uint8_t *values, const uint32_t *input_offsets, uint64_t n,
                         const uint32_t *indices, uint64_t m, uint32_t *offsets, uint8_t *dst)
{
    uint64_t capacity = 0;
    offsets[0] = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint64_t index = indices[i];
        if (index >= n) return -1;
        const uint64_t start = input_offsets[index], end = input_offsets[index + 1];
        capacity += end - start;
        offsets[i + 1] = (uint32_t)capacity;
    }
    uint64_t offset = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint64_t index = indices[i];
        const uint64_t start = input_offsets[index], len = input_offsets[index + 1] - start;
        memcpy(dst + offset, values + start, len);
        offset += len;
    }
    return (int64_t)offset;
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
    const uint64_t m = inputs[0].count;
    uint32_t *out_offsets = outputs[0].data;
    int64_t bytes;
    if (s->w == 0) {
        bytes =
            tk__bytes(s->values, s->offsets, s->n, inputs[0].data, m, out_offsets, outputs[1].data);
    } else {
        out_offsets[0] = 0;
        bytes = (s->w == 4 ? tk__native_u32 : tk__native_u64)(s->values, s->n, inputs[0].data, m,
                                                              outputs[1].data) != 0
                    ? -1
                    : (int64_t)m * s->w;
    }
    if (bytes < 0) {
        snprintf(err, err_len, "take: an index is out of bounds (n = %llu)",
                 (unsigned long long)s->n);
        return KB_ERR_INTERNAL;
    }
    outputs[1].produced = (uint64_t)bytes;
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
