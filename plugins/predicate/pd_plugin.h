/*
 * pd_plugin.h -- what every predicate candidate shares: the case's column type and
 * operator (from the distribution name), the shape check, the constants as typed values,
 * and the plugin descriptor around a candidate's run. A candidate defines PD_NAME and
 * PD_CPU, then pd__run.
 */
#ifndef PD_PLUGIN_H
#define PD_PLUGIN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbench.h"

enum { P_N, N_PARAMS };
enum { T_I32, T_I64, T_F32 };
enum { OP_EQ, OP_LT, OP_BETWEEN, OP_IN };
#define PD_MAX_N    (INT64_C(1) << 22)
#define PD_CONSTS   9
#define PD_BYTES(n) (((n) + 7) / 8)
#define PD_W(t)     ((t) == T_I64 ? 8 : 4)

typedef struct pd__state {
    int type, op;
    uint64_t n;
} pd__state;

static const char *const pd__dists[12] = {
    "i32_eq",      "i32_lt", "i32_between", "i32_in", "i64_eq",      "i64_lt",
    "i64_between", "i64_in", "f32_eq",      "f32_lt", "f32_between", "f32_in",
};

static int pd__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    (void)statics;
    const char *d = cs->name ? strrchr(cs->name, '/') : NULL;
    int k = 0;
    while (d && k < 12 && strcmp(d + 1, pd__dists[k]) != 0) k++;
    if (n_statics != 0 || cs->n_params != N_PARAMS || !d || k == 12 || cs->params[P_N] < 1 ||
        cs->params[P_N] > PD_MAX_N) {
        snprintf(err, err_len,
                 "predicate: expected 0 statics, n in 1..2^22 and a "
                 "<type>_<op> distribution");
        return KB_ERR_UNSUPPORTED;
    }
    pd__state *s = malloc(sizeof *s);
    if (!s) return KB_ERR_NOMEM;
    s->type = k / 4;
    s->op = k % 4;
    s->n = (uint64_t)cs->params[P_N];
    *state = s;
    return KB_OK;
}

static void pd__release(void *state)
{
    free(state);
}

/* The f32 bits as a signed key that orders as f32::total_cmp. */
static inline int32_t pd__key(uint32_t bits)
{
    const int32_t l = (int32_t)bits;
    return l ^ (int32_t)(((uint32_t)(l >> 31)) >> 1);
}

static int pd__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len);

/* The shape check every run starts with. */
#define PD_CHECK_CALL(s)                                                                  \
    do {                                                                                  \
        const uint64_t n_ = (s)->n;                                                       \
        if (n_inputs != 3 || n_outputs != 2 || inputs[0].count != n_ * PD_W((s)->type) || \
            inputs[1].count != PD_BYTES(n_) || inputs[2].count != PD_CONSTS ||            \
            outputs[0].count != PD_BYTES(n_) || outputs[1].count != n_) {                 \
            snprintf(err, err_len, "predicate: buffers do not match the case");           \
            return KB_ERR_INTERNAL;                                                       \
        }                                                                                 \
    } while (0)

static const kb_plugin pd__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "predicate",
    .name = PD_NAME,
    .version = "1",
    .cpu_features = PD_CPU,
    .prepare = pd__prepare,
    .run = pd__run,
    .verify = NULL,
    .release = pd__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pd__plugin;
}

#endif /* PD_PLUGIN_H */
