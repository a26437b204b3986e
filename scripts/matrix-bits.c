/*
 * matrix-bits.c -- the exact output bits of one plugin, for scripts/matrix.sh.
 *
 *   matrix-bits ORACLE.so PLUGIN.so SEED
 *
 * `kbench verify` says whether a candidate matches the oracle of its own
 * build, within the target's tolerance. The matrix also wants to know
 * whether the bits are the same across builds: an x86-64-v4 or an aarch64
 * build may round differently and still be within tolerance, and a target
 * whose oracle gives other bits on another ISA has a portability bug in its
 * reference. So this runs the plugin (the oracle itself too: it is a
 * plugin) on the inputs of every quick case for a fixed seed and prints one
 * FNV-1a digest of all its outputs, to be compared between columns.
 *
 * Plain dlopen in one process, no sandbox: it is for the project's own
 * plugins, after `kbench verify` has judged them. Single process, so it
 * runs under qemu-user as is. Built by matrix.sh, not by CMake: it belongs
 * to the matrix, not to the product.
 *
 * Prints "digest <16 hex>" and exits 0; "unsupported <features>" and exits
 * 3 when the plugin needs CPU features this machine lacks; exits 1 with a
 * message on stderr for anything else.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

static size_t dtype_size(uint32_t dt) {
    switch (dt) {
    case KB_DT_U8: return 1;
    case KB_DT_U16: return 2;
    case KB_DT_U32: case KB_DT_I32: case KB_DT_F32: return 4;
    case KB_DT_U64: case KB_DT_I64: case KB_DT_F64: return 8;
    default: return 0;
    }
}

static void host_log(const kb_host *h, const char *m) { (void)h; (void)m; }
static void *host_alloc(const kb_host *h, size_t size, size_t align) {
    (void)h;
    void *p = NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}
static void host_free(const kb_host *h, void *p) { (void)h; free(p); }

static void *open_so(const char *path, const char *sym, void **fn) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "matrix-bits: %s\n", dlerror());
        return NULL;
    }
    *fn = dlsym(h, sym);
    if (!*fn) fprintf(stderr, "matrix-bits: %s: no %s\n", path, sym);
    return *fn ? h : NULL;
}

/* One case: every input set, outputs hashed in order. 0 or 1 (message). */
static int run_case(const kb_target *t, const kb_case_spec *cs, const kb_plugin *p,
                    const kb_host *host, uint64_t seed, uint64_t *h) {
    kb_buffer bufs[KB_MAX_BUFFERS], statics[KB_MAX_BUFFERS], ins[KB_MAX_BUFFERS],
        outs[KB_MAX_BUFFERS];
    uint32_t ns = 0, ni = 0, no = 0;
    char err[512] = "";
    int rc = 1;
    void *state = NULL;
    memset(bufs, 0, sizeof bufs);
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const size_t es = dtype_size(t->buffers[b].dtype);
        bufs[b].count = cs->lengths[b];
        bufs[b].dtype = t->buffers[b].dtype;
        if (t->buffers[b].role == KB_ROLE_OUTPUT) continue; /* generate sees NULL */
        bufs[b].data = host_alloc(host, es * cs->lengths[b], 64);
        if (!bufs[b].data) goto out;
    }
    for (uint32_t set = 0; set < 4; set++) {
        if (t->generate(cs, seed, set, bufs, t->n_buffers, err, sizeof err) != 0) {
            fprintf(stderr, "matrix-bits: generate %s set %u: %s\n", cs->name, set, err);
            goto out;
        }
        if (set == 0) {
            ns = 0;
            for (uint32_t b = 0; b < t->n_buffers; b++)
                if (t->buffers[b].role == KB_ROLE_STATIC) statics[ns++] = bufs[b];
            kb_case kc = {cs->name, t->n_params, 0, cs->params, t->param_names};
            if (p->prepare(host, &kc, statics, ns, &state, err, sizeof err) != KB_OK) {
                fprintf(stderr, "matrix-bits: prepare %s: %s\n", cs->name, err);
                state = NULL;
                goto out;
            }
        }
        ni = no = 0;
        for (uint32_t b = 0; b < t->n_buffers; b++) {
            if (t->buffers[b].role == KB_ROLE_CALL) ins[ni++] = bufs[b];
            if (t->buffers[b].role != KB_ROLE_OUTPUT) continue;
            const size_t bytes = dtype_size(bufs[b].dtype) * bufs[b].count;
            kb_buffer o = bufs[b];
            o.data = host_alloc(host, bytes, 64);
            if (!o.data) goto out;
            memset(o.data, 0xa5, bytes); /* an output left unwritten shows */
            o.produced = 0;
            outs[no++] = o;
        }
        int r = p->run(state, ins, ni, outs, no, err, sizeof err);
        for (uint32_t k = 0; k < no && r == KB_OK; k++) {
            uint32_t b = 0; /* the spec entry of output k */
            for (uint32_t seen = 0; b < t->n_buffers; b++)
                if (t->buffers[b].role == KB_ROLE_OUTPUT && seen++ == k) break;
            uint64_t n = (t->buffers[b].flags & KB_BUF_VARIABLE) ? outs[k].produced : outs[k].count;
            if (n > outs[k].count) n = outs[k].count;
            *h = fnv(*h, &n, sizeof n);
            *h = fnv(*h, outs[k].data, n * dtype_size(outs[k].dtype));
        }
        for (uint32_t k = 0; k < no; k++) free(outs[k].data);
        if (r != KB_OK) {
            fprintf(stderr, "matrix-bits: run %s set %u: %s\n", cs->name, set, err);
            goto out;
        }
    }
    rc = 0;
out:
    if (state) p->release(state);
    for (uint32_t b = 0; b < t->n_buffers; b++) free(bufs[b].data);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: matrix-bits ORACLE.so PLUGIN.so SEED\n");
        return 1;
    }
    const uint64_t seed = strtoull(argv[3], NULL, 0);
    void *fo, *fp;
    if (!open_so(argv[1], "kb_target_entry_v1", &fo)) return 1;
    if (!open_so(argv[2], "kb_plugin_entry_v1", &fp)) return 1;
    const kb_target *t = ((kb_target_entry_fn)fo)();
    const kb_plugin *p = ((kb_plugin_entry_fn)fp)();
    if (!t || !p || !t->generate || !p->prepare || !p->run || !p->release ||
        t->n_buffers > KB_MAX_BUFFERS) {
        fprintf(stderr, "matrix-bits: unusable oracle or plugin descriptor\n");
        return 1;
    }
    if (strcmp(t->name, p->target) != 0) {
        fprintf(stderr, "matrix-bits: plugin is for %s, oracle for %s\n", p->target, t->name);
        return 1;
    }
    const kb_host host = {sizeof(kb_host), 0, kb__cpu_features(), host_log, host_alloc,
                          host_free};
    const uint64_t missing = p->cpu_features & ~host.cpu_features;
    if (missing) {
        char names[256];
        kb__cpu_feature_names(missing, names, sizeof names);
        printf("unsupported %s\n", names);
        return 3;
    }
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    uint32_t cases = 0;
    for (uint32_t c = 0; c < t->n_cases; c++) {
        if (!(t->cases[c].flags & KB_CASE_QUICK)) continue;
        if (run_case(t, &t->cases[c], p, &host, seed, &h) != 0) return 1;
        cases++;
    }
    printf("digest %016" PRIx64 " cases %u\n", h, cases);
    return 0;
}
