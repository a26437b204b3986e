/*
 * portable.c -- vbyte-decode candidate "portable": plain C, no branch on the codes.
 *
 * Each control byte gives four codes; each value is one unaligned 4-byte load masked to
 * code + 1 bytes, and the data pointer advances by code + 1. The stream's 16 bytes of
 * padding make the load past the last value's bytes safe. The last n % 4 values go one
 * at a time like the oracle.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_N, N_PARAMS };
#define VB_PADDING 16
#define VB_MAX_N   (INT64_C(1) << 24)
#define VB_CAP(n)  (((n) + 3) / 4 + 4 * (n) + VB_PADDING)

static int vb__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS || cs->params[P_N] < 1 ||
        cs->params[P_N] > VB_MAX_N) {
        snprintf(err, err_len, "vbyte-decode: expected 0 statics and n in 1..2^24");
        return KB_ERR_UNSUPPORTED;
    }
    *state = NULL;
    return KB_OK;
}

/* The 4 bytes at p as a little-endian u32, on any byte order. */
static inline uint32_t vb__load32(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
}

static const uint32_t vb__mask[4] = {0xffu, 0xffffu, 0xffffffu, 0xffffffffu};

static int vb__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    (void)state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)VB_CAP(outputs[0].count)) {
        snprintf(err, err_len, "vbyte-decode: need a stream of (n+3)/4 + 4n + 16 bytes, n outputs");
        return KB_ERR_INTERNAL;
    }
    const uint64_t n = outputs[0].count, groups = n / 4;
    const uint8_t *key = inputs[0].data, *p = key + (n + 3) / 4;
    uint32_t *out = outputs[0].data;
    for (uint64_t g = 0; g < groups; g++, out += 4) {
        const uint32_t k = key[g], c0 = k & 3, c1 = (k >> 2) & 3, c2 = (k >> 4) & 3, c3 = k >> 6;
        out[0] = vb__load32(p) & vb__mask[c0];
        p += c0 + 1;
        out[1] = vb__load32(p) & vb__mask[c1];
        p += c1 + 1;
        out[2] = vb__load32(p) & vb__mask[c2];
        p += c2 + 1;
        out[3] = vb__load32(p) & vb__mask[c3];
        p += c3 + 1;
    }
    for (uint64_t i = groups * 4; i < n; i++) {
        const uint32_t c = (key[i / 4] >> (2 * (i % 4))) & 3;
        *out++ = vb__load32(p) & vb__mask[c];
        p += c + 1;
    }
    return KB_OK;
}

static void vb__release(void *state)
{
    (void)state;
}

static const kb_plugin vb__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "vbyte-decode",
    .name = "portable",
    .version = "1",
    .cpu_features = 0,
    .prepare = vb__prepare,
    .run = vb__run,
    .verify = NULL,
    .release = vb__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &vb__plugin;
}
