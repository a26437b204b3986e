/*
 * baseline.c -- bitpack-decode candidate "baseline": the oracle's kernel, unchanged, as a
 * plugin.
 *
 * Lance's InlineBitpacking::unchunk over FastLanes' unpack! for u32: each chunk of 1024
 * values unpacked lane by lane, row by row, into a scratch chunk, then copied out (the
 * last one truncated). Timed against the oracle it shows the harness's noise floor (its
 * ratio sits at 1 up to code layout, and it must never be kept); it is also the file to
 * copy when starting a candidate.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_N, P_B, N_PARAMS };

static const uint32_t FL_ORDER[8] = {0, 4, 2, 6, 1, 5, 3, 7};

/* unpack!'s index(row, lane) for T = u32. */
static uint32_t bp__index(uint32_t row, uint32_t lane)
{
    return FL_ORDER[row / 8] * 16 + (row % 8) * 128 + lane;
}

static uint32_t bp__mask(uint32_t width)
{
    return width == 32 ? UINT32_MAX : (UINT32_C(1) << (width % 32)) - 1;
}

/* ---- the reference kernel ------------------------------------------- */

typedef struct bp__state {
    const kb_host *host;
    uint32_t chunk[1024]; /* unchunk's `decompressed` */
} bp__state;

static int bp__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS) {
        snprintf(err, err_len, "bitpack-decode: expected 0 statics and %d params", N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    bp__state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    *state = st;
    return KB_OK;
}

/* unpack! for T = u32 and width w: 32 * w words to 1024 values. */
static void bp__unpack(uint32_t w, const uint32_t *packed, uint32_t *output)
{
    for (uint32_t lane = 0; lane < 32; lane++) {
        if (w == 0) {
            for (uint32_t row = 0; row < 32; row++) output[bp__index(row, lane)] = 0;
        } else if (w == 32) {
            for (uint32_t row = 0; row < 32; row++)
                output[bp__index(row, lane)] = packed[32 * row + lane];
        } else {
            uint32_t src = packed[lane], tmp;
            for (uint32_t row = 0; row < 32; row++) {
                uint32_t curr = (row * w) / 32, next = ((row + 1) * w) / 32;
                uint32_t shift = (row * w) % 32;
                if (next > curr) {
                    uint32_t remaining = ((row + 1) * w) % 32, current_bits = w - remaining;
                    tmp = (src >> shift) & bp__mask(current_bits);
                    if (next < w) {
                        src = packed[32 * next + lane];
                        tmp |= (src & bp__mask(remaining)) << current_bits;
                    }
                } else {
                    tmp = (src >> shift) & bp__mask(w);
                }
                output[bp__index(row, lane)] = tmp;
            }
        }
    }
}

static int bp__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    bp__state *st = state;
    if (n_inputs != 1 || n_outputs != 1) {
        snprintf(err, err_len, "bitpack-decode: need packed words and an output");
        return KB_ERR_INTERNAL;
    }
    const uint32_t *p = inputs[0].data, *end = p + inputs[0].count;
    uint32_t *out = outputs[0].data;
    for (uint64_t done = 0, n = outputs[0].count; done < n; done += 1024) {
        uint32_t w = p < end ? *p++ : UINT32_MAX;
        if (w > 32 || (uint64_t)(end - p) < 32 * (uint64_t)w) {
            snprintf(err, err_len, "bitpack-decode: bad chunk at value %llu",
                     (unsigned long long)done);
            return KB_ERR_INTERNAL;
        }
        bp__unpack(w, p, st->chunk);
        p += 32 * w;
        uint64_t keep = n - done < 1024 ? n - done : 1024; /* the last chunk truncated */
        memcpy(out + done, st->chunk, keep * sizeof *out);
    }
    return KB_OK;
}

static void bp__release(void *state)
{
    bp__state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin bp__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "bitpack-decode",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = bp__prepare,
    .run = bp__run,
    .verify = NULL,
    .release = bp__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &bp__plugin;
}
