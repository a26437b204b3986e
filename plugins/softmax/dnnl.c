/*
 * dnnl.c -- softmax contender "dnnl": oneDNN's softmax primitive (Debian's
 * libdnnl-dev, oneDNN 2.6: softmax v2, dnnl_softmax_accurate, forward
 * inference, over axis 1 of an n x d row-major tensor), the way a framework
 * calls it for attention: the masked, scaled scores t = x * scale + mask
 * written into y first (a multiply, then an add, as the oracle), then the
 * primitive in place on y. The engine, stream and primitive are made once
 * in prepare; run points the memory object at this call's y. One thread:
 * oneDNN's OpenMP runtime is limited to one in prepare, as kbench times a
 * single-threaded kernel.
 */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <string.h>

#define SM_CONSTANTS_ONLY
#include "common.h"

void omp_set_num_threads(int n); /* libgomp, which libdnnl loads */

typedef struct sm_dnnl {
    const kb_host *host;
    uint64_t n;
    uint32_t d;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t mem;
} sm_dnnl;

static void sm_dnnl_free(sm_dnnl *s)
{
    if (s->mem) dnnl_memory_destroy(s->mem);
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->stream) dnnl_stream_destroy(s->stream);
    if (s->engine) dnnl_engine_destroy(s->engine);
    s->host->free_aligned(s->host, s);
}

static int sm_dnnl_build(sm_dnnl *s)
{
    dnnl_memory_desc_t md;
    dnnl_softmax_v2_desc_t sd;
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_dims_t dims = {(dnnl_dim_t)s->n, (dnnl_dim_t)s->d};
    if (dnnl_engine_create(&s->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate, &md,
                                          &md, 1) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &sd, NULL, s->engine, NULL) != dnnl_success)
        return -1;
    const int bad = dnnl_primitive_create(&s->prim, pd) != dnnl_success ||
                    dnnl_memory_create(&s->mem, &md, s->engine, DNNL_MEMORY_NONE) != dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    return bad ? -1 : 0;
}

static int sm_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const int64_t *p = cs->params;
    (void)statics;
    if (cs->n_params != 2 || p[0] < 1 || p[1] < 16 || p[1] > 1048576 || p[1] % 16 != 0 ||
        n_statics != 0) {
        snprintf(err, err_len, "softmax dnnl: unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    sm_dnnl *s = host->alloc_aligned(host, sizeof *s, 64);
    if (!s) return KB_ERR_NOMEM;
    memset(s, 0, sizeof *s);
    s->host = host;
    s->n = (uint64_t)p[0];
    s->d = (uint32_t)p[1];
    omp_set_num_threads(1);
    if (sm_dnnl_build(s) != 0) {
        snprintf(err, err_len, "softmax dnnl: oneDNN could not build a softmax for %s", cs->name);
        sm_dnnl_free(s);
        return KB_ERR_UNSUPPORTED;
    }
    *state = s;
    return KB_OK;
}

static int sm_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    const sm_dnnl *s = state;
    const uint64_t len = s->n * s->d;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != len || inputs[1].count != len ||
        outputs[0].count != len) {
        snprintf(err, err_len, "softmax dnnl: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    const float *x = inputs[0].data, *mask = inputs[1].data;
    float *y = outputs[0].data;
    for (uint64_t i = 0; i < len; i++) y[i] = x[i] * SM_SCALE + mask[i];
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, s->mem}, {DNNL_ARG_DST, s->mem}};
    if (dnnl_memory_set_data_handle(s->mem, y) != dnnl_success ||
        dnnl_primitive_execute(s->prim, s->stream, 2, args) != dnnl_success ||
        dnnl_stream_wait(s->stream) != dnnl_success) {
        snprintf(err, err_len, "softmax dnnl: the primitive failed");
        return KB_ERR_INTERNAL;
    }
    return KB_OK;
}

static void sm_release(void *state)
{
    sm_dnnl_free(state);
}

static const kb_plugin sm_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "softmax",
    .name = "dnnl",
    .version = "1",
    .cpu_features = 0,
    .prepare = sm_prepare,
    .run = sm_run,
    .release = sm_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &sm_plugin;
}
