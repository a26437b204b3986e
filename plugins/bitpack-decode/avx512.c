/*
 * avx512.c -- bitpack-decode candidate "avx512": FastLanes' row-at-a-time unpack in
 * 512-bit registers.
 *
 * FastLanes' layout puts the 32 lanes of a row next to each other both in the packed
 * words and in the output, so a row is two 16-lane vectors: shift right, or in the next
 * word's bits shifted left where the row crosses a word, mask, store. The width is a
 * constant in each of the 32 specialized copies (a switch), so every shift count is
 * known. Full chunks go straight to the output; only the last, partial one goes through a
 * scratch chunk.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"
#include <immintrin.h>

enum { P_N, P_B, N_PARAMS };

typedef struct bp__state {
    const kb_host *host;
    uint32_t chunk[1024] __attribute__((aligned(64))); /* the last, partial chunk */
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

/* Where row r of the FastLanes u32 layout starts in the chunk: lane l of it is value
 * bp__row_base(r) + l, so a row's 32 lanes are 32 consecutive values. */
static inline uint32_t bp__row_base(uint32_t row)
{
    static const uint32_t FL_ORDER[8] = {0, 4, 2, 6, 1, 5, 3, 7};
    return FL_ORDER[row / 8] * 16 + (row % 8) * 128;
}

/* Row r at width W sits at bit r * W of each lane: in word r * W / 32 from bit
 * r * W % 32, and in the next word too when it crosses one. */
static inline __attribute__((always_inline)) void bp__unpack_w(const uint32_t *in, uint32_t *out,
                                                               const uint32_t W)
{
    const uint32_t mask = W == 32 ? UINT32_MAX : (UINT32_C(1) << W) - 1;
#pragma GCC unroll 32
    for (uint32_t row = 0; row < 32; row++) {
        const uint32_t bit = row * W, shift = bit % 32;
        const uint32_t *lo = in + 32 * (bit / 32), *hi = lo + 32;
        uint32_t *o = out + bp__row_base(row);
        const __m512i m = _mm512_set1_epi32((int)mask);
        for (uint32_t l = 0; l < 32; l += 16) {
            __m512i v = _mm512_srli_epi32(_mm512_loadu_si512(lo + l), shift);
            if (shift + W > 32)
                v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_loadu_si512(hi + l), 32 - shift));
            _mm512_storeu_si512(o + l, _mm512_and_si512(v, m));
        }
    }
}

/* One chunk of width w (1..32); the switch makes each width's rows constant. */
static void bp__unpack(uint32_t w, const uint32_t *in, uint32_t *out)
{
    switch (w) {
#define BP_W(x) \
    case x: bp__unpack_w(in, out, x); break
        BP_W(1);
        BP_W(2);
        BP_W(3);
        BP_W(4);
        BP_W(5);
        BP_W(6);
        BP_W(7);
        BP_W(8);
        BP_W(9);
        BP_W(10);
        BP_W(11);
        BP_W(12);
        BP_W(13);
        BP_W(14);
        BP_W(15);
        BP_W(16);
        BP_W(17);
        BP_W(18);
        BP_W(19);
        BP_W(20);
        BP_W(21);
        BP_W(22);
        BP_W(23);
        BP_W(24);
        BP_W(25);
        BP_W(26);
        BP_W(27);
        BP_W(28);
        BP_W(29);
        BP_W(30);
        BP_W(31);
        BP_W(32);
#undef BP_W
    default: memset(out, 0, 1024 * sizeof *out); /* width 0: all zeros */
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
        if (n - done >= 1024) {
            bp__unpack(w, p, out + done);
        } else { /* the last chunk: unpacked whole, its first n % 1024 kept */
            bp__unpack(w, p, st->chunk);
            memcpy(out + done, st->chunk, (n - done) * sizeof *out);
        }
        p += 32 * w;
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
    .name = "avx512",
    .version = "1",
    .cpu_features = KB_CPU_AVX512F,
    .prepare = bp__prepare,
    .run = bp__run,
    .verify = NULL,
    .release = bp__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &bp__plugin;
}
