/*
 * ps_plugin.h -- what every posting-seek candidate shares: the spec's constants, the state
 * prepare builds from the two statics, and the plugin descriptor around a candidate's run.
 * A candidate defines PS_NAME and PS_CPU, then ps__run (and may extend prepare through
 * PS_PREPARE_EXTRA, a function called with the filled state).
 */
#ifndef PS_PLUGIN_H
#define PS_PLUGIN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kbench.h"

enum { P_N, P_M, N_PARAMS };
#define PS_BLOCK 128
#define PS_END   UINT32_MAX
#define PS_MAX_N (INT64_C(1) << 23)
#define PS_NB(n) (((n) + PS_BLOCK - 1) / PS_BLOCK)

typedef struct ps__state {
    const uint32_t *doc_ids;     /* n, strictly ascending */
    const uint32_t *block_first; /* n_blocks: doc_ids[128 b] */
    uint64_t n, n_blocks;
} ps__state;

static int ps__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    if (n_statics != 2 || cs->n_params != N_PARAMS || cs->params[P_N] < 1 ||
        cs->params[P_N] > PS_MAX_N || statics[0].count != (uint64_t)cs->params[P_N] ||
        statics[1].count != (uint64_t)PS_NB(cs->params[P_N])) {
        snprintf(err, err_len, "posting-seek: expected n doc ids and ceil(n/128) block firsts");
        return KB_ERR_UNSUPPORTED;
    }
    ps__state *s = malloc(sizeof *s);
    if (!s) return KB_ERR_NOMEM;
    s->doc_ids = statics[0].data;
    s->block_first = statics[1].data;
    s->n = statics[0].count;
    s->n_blocks = statics[1].count;
    *state = s;
    return KB_OK;
}

static void ps__release(void *state)
{
    free(state);
}

static int ps__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len);

/* The shape check every run starts with. */
#define PS_CHECK_CALL()                                                               \
    do {                                                                              \
        if (n_inputs != 1 || n_outputs != 1 || inputs[0].count != outputs[0].count) { \
            snprintf(err, err_len, "posting-seek: need m targets and m outputs");     \
            return KB_ERR_INTERNAL;                                                   \
        }                                                                             \
    } while (0)

static const kb_plugin ps__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "posting-seek",
    .name = PS_NAME,
    .version = "1",
    .cpu_features = PS_CPU,
    .prepare = ps__prepare,
    .run = ps__run,
    .verify = NULL,
    .release = ps__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &ps__plugin;
}

#endif /* PS_PLUGIN_H */
