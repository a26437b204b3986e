/*
 * baseline.c -- dictionary-decode candidate "baseline": the oracle's kernel, unchanged, as a
 * plugin.
 *
 * Lance's DictionaryDataBlock::decode: one code at a time, the dictionary's range
 * code..code+1 appended (memcpy of w bytes, or of the string with its running offset).
 * Timed against the oracle it shows the harness's noise floor (its ratio sits at 1 up to
 * code layout, and it must never be kept); it is also the file to copy when starting a
 * candidate.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_N, P_D, P_K, P_W, N_PARAMS };
enum { B_DICT_VALUES, B_DICT_OFFSETS, B_CODES, B_OUT_OFFSETS, B_OUT_VALUES, N_BUFFERS };
#define DD_MAX_N   (INT64_C(1) << 24)
#define DD_MAX_D   (INT64_C(1) << 20)
#define DD_MAX_LEN 32

/* The one rule tying the parameters together, for shape, generate and prepare alike. */
static const char *dd__bad_params(int64_t n, int64_t d, int64_t k, int64_t w)
{
    if (n < 1 || n > DD_MAX_N) return "n must be in [1, 2^24]";
    if (k != 1 && k != 2 && k != 4) return "k (bytes a code) must be 1, 2 or 4";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    if (d < 1 || d > DD_MAX_D || (k < 4 && d > (INT64_C(1) << (8 * k))))
        return "d must be in [1, 2^20] and fit the code width (k=1: 256, k=2: 65536)";
    return NULL;
}

/* ---- the reference kernel ------------------------------------------- */

typedef struct dd__state {
    const kb_host *host;
    const uint8_t *values;   /* dict_values */
    const uint32_t *offsets; /* dict_offsets */
    int64_t d, k, w;
} dd__state;

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
    s->host = host;
    s->values = statics[0].data;
    s->offsets = statics[1].data;
    s->d = cs->params[P_D];
    s->k = cs->params[P_K];
    s->w = cs->params[P_W];
    *state = s;
    return KB_OK;
}

/* decode_helper's idx.to_usize() of a K::Native code, little endian. */
static uint64_t dd__code(const uint8_t *codes, uint64_t i, int64_t k)
{
    const uint8_t *p = codes + i * (uint64_t)k;
    uint64_t c = 0;
    for (int64_t b = 0; b < k; b++) c |= (uint64_t)p[b] << (8 * b);
    return c;
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
    uint64_t len = 0; /* the builder's bytes.len() */
    out_offsets[0] = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t idx = dd__code(codes, i, s->k);
        if (idx >= (uint64_t)s->d) {
            snprintf(err, err_len, "dictionary-decode: code %llu at %llu is past the dictionary",
                     (unsigned long long)idx, (unsigned long long)i);
            return KB_ERR_INTERNAL;
        }
        if (s->w) { /* FixedWidthDataBlockBuilder::append(dict, idx..idx + 1) */
            const uint64_t start = idx * (uint64_t)s->w, end = (idx + 1) * (uint64_t)s->w;
            memcpy(out + len, s->values + start, end - start);
            len += end - start;
        } else { /* VariableWidthDataBlockBuilder::append(dict, idx..idx + 1) */
            const uint32_t start_offset = s->offsets[idx], end_offset = s->offsets[idx + 1];
            memcpy(out + len, s->values + start_offset, end_offset - start_offset);
            len += end_offset - start_offset;
            out_offsets[i + 1] = (uint32_t)len;
        }
    }
    outputs[1].produced = len;
    return KB_OK;
}

static void dd__release(void *state)
{
    dd__state *s = state;
    s->host->free_aligned(s->host, s);
}

static const kb_plugin dd__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "dictionary-decode",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = dd__prepare,
    .run = dd__run,
    .verify = NULL,
    .release = dd__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &dd__plugin;
}
