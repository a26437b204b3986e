/*
 * streamvbyte.c -- vbyte-decode candidate "streamvbyte": the target decoded by the
 * streamvbyte library itself (Debian libstreamvbyte-dev), an upstream that knows nothing
 * about kbench, as a side-by-side contender for our own candidates.
 *
 * One call of streamvbyte_decode(stream, out, n), as its users make it; the library picks
 * its own path (a shuffle-table SIMD decoder where it was built with one, its scalar loop
 * otherwise). It returns the bytes it read, which must be the control bytes plus the data
 * bytes and so leave at least the stream's padding unread.
 */
#include <stdint.h>
#include <stdio.h>

#include <streamvbyte.h>

#include "kbench.h"

enum { P_N, N_PARAMS };
#define VB_PADDING 16
#define VB_CAP(n)  (((n) + 3) / 4 + 4 * (n) + VB_PADDING)

static int vb__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)statics;
    if (n_statics != 0 || cs->n_params != N_PARAMS || cs->params[P_N] < 1 ||
        cs->params[P_N] > UINT32_MAX) {
        snprintf(err, err_len, "streamvbyte: expected 0 statics and n in 1..2^32-1");
        return KB_ERR_UNSUPPORTED;
    }
    *state = NULL;
    return KB_OK;
}

static int vb__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    (void)state;
    if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != (uint64_t)VB_CAP(outputs[0].count)) {
        snprintf(err, err_len, "streamvbyte: need a stream of (n+3)/4 + 4n + 16 bytes, n outputs");
        return KB_ERR_INTERNAL;
    }
    size_t used = streamvbyte_decode(inputs[0].data, outputs[0].data, (uint32_t)outputs[0].count);
    if (used > inputs[0].count - VB_PADDING) {
        snprintf(err, err_len, "streamvbyte: decode read %zu bytes of a %llu-byte stream", used,
                 (unsigned long long)inputs[0].count);
        return KB_ERR_INTERNAL;
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
    .name = "streamvbyte",
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
