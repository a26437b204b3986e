/*
 * baseline.c -- vbyte-decode candidate "baseline": the oracle's kernel, unchanged, as a
 * plugin.
 *
 * streamvbyte's scalar decoder (svb_decode_scalar): one value at a time, a branch on its
 * 2-bit code. Timed against the oracle it shows the harness's noise floor (its ratio sits
 * at 1 up to code layout, and it must never be kept); it is also the file to copy when
 * starting a candidate.
 */
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

enum { P_N, N_PARAMS };
#define VB_PADDING 16
#define VB_MAX_N   (INT64_C(1) << 24)
#define VB_CAP(n)  (((n) + 3) / 4 + 4 * (n) + VB_PADDING)

/* ---- the reference kernel ------------------------------------------- */

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

/* svb_decode_data: code + 1 bytes, little endian. */
static uint32_t vb__decode_data(const uint8_t **dataPtrPtr, uint8_t code)
{
    const uint8_t *dataPtr = *dataPtrPtr;
    uint32_t val;
    if (code == 0) {
        val = (uint32_t)*dataPtr;
        dataPtr += 1;
    } else if (code == 1) {
        val = (uint32_t)dataPtr[0] | (uint32_t)dataPtr[1] << 8;
        dataPtr += 2;
    } else if (code == 2) {
        val = (uint32_t)dataPtr[0] | (uint32_t)dataPtr[1] << 8 | (uint32_t)dataPtr[2] << 16;
        dataPtr += 3;
    } else {
        val = (uint32_t)dataPtr[0] | (uint32_t)dataPtr[1] << 8 | (uint32_t)dataPtr[2] << 16 |
              (uint32_t)dataPtr[3] << 24;
        dataPtr += 4;
    }
    *dataPtrPtr = dataPtr;
    return val;
}

static int vb__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    (void)state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)VB_CAP(outputs[0].count)) {
        snprintf(err, err_len, "vbyte-decode: need a stream of (n+3)/4 + 4n + 16 bytes, n outputs");
        return KB_ERR_INTERNAL;
    }
    const uint64_t count = outputs[0].count;
    const uint8_t *keyPtr = inputs[0].data;
    const uint8_t *dataPtr = keyPtr + (count + 3) / 4; /* data starts at end of keys */
    uint32_t *outPtr = outputs[0].data;
    uint8_t shift = 0;
    uint32_t key = *keyPtr++;
    for (uint64_t c = 0; c < count; c++) {
        if (shift == 8) {
            shift = 0;
            key = *keyPtr++;
        }
        *outPtr++ = vb__decode_data(&dataPtr, (key >> shift) & 0x3);
        shift += 2;
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
    .name = "baseline",
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
