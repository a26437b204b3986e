/*
 * ffi-overhead.c -- what calling a foreign kernel through libffi costs per
 * call, against a native plugin's run(), both driven by the worker's batch
 * loop on the same machine (scripts/ffi-overhead.sh runs it).
 *
 *   ffi-overhead ORACLE.so NATIVE_EMPTY.so LIB.so SYMBOL 'SIG'
 *
 * ORACLE.so is the pq-l2 oracle (only its spec is used, for the binding);
 * NATIVE_EMPTY.so is tests/fixtures/power/fx_kernel_empty.so, a pq-l2
 * plugin whose run() returns at once; SYMBOL in LIB.so
 * (tests/fixtures/foreign/libfx_foreign.so) is an empty C function of the
 * pq-l2 shape. The foreign side is the host's own code, not a copy: the
 * signature is bound by kb__foreign_bind and called through the synthetic
 * plugin of kb__foreign_open (host/core/foreign.c), whose run() marshals the
 * arguments and makes one ffi_call. Both kernels do nothing, so the
 * difference per call is the foreign path's whole cost.
 *
 * The loop is host/sandbox/worker_batch.c's kb__wk_do_batch: fresh output descriptors every
 * call, the produced counts stored, the input set cycling through 4.
 * Printed: ns per call over REPS batches of CALLS calls each way,
 * alternating, in this thread's CPU time: the median and the range.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "foreign.h"
#include "kb.h"

#define SETS 4
#ifndef REPS /* -DREPS=3 -DCALLS=10000 for a run under valgrind */
#define REPS 101
#endif
#ifndef CALLS
#define CALLS 200000
#endif

/* This thread's CPU time, not the wall clock: on a shared machine a batch
 * that is preempted would otherwise count the other process's time. */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *alloc_aligned(const kb_host *h, size_t size, size_t align) {
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void free_aligned(const kb_host *h, void *p) {
    (void)h;
    free(p);
}
static void host_log(const kb_host *h, const char *m) {
    (void)h;
    fprintf(stderr, "[plugin] %s\n", m);
}
static const kb_host HOST = {sizeof(kb_host), 0, 0, host_log, alloc_aligned, free_aligned};

/* The case n=4096,d=128,m=16: codebook static, query and codes per call. */
static float codebook[256 * 128], query[SETS][128], dist[4096];
static uint8_t codes[SETS][4096 * 16];
static kb_buffer statics[1], ins[SETS][2], outs_tmpl[1];
static uint64_t prod[1];

static void *prepare(const kb_plugin *p) {
    static const int64_t params[3] = {4096, 128, 16};
    static const char *const names[3] = {"n", "d", "m"};
    statics[0] = (kb_buffer){codebook, 256 * 128, 0, KB_DT_F32, 0};
    for (int s = 0; s < SETS; s++) {
        ins[s][0] = (kb_buffer){query[s], 128, 0, KB_DT_F32, 0};
        ins[s][1] = (kb_buffer){codes[s], sizeof codes[s], 0, KB_DT_U8, 0};
    }
    outs_tmpl[0] = (kb_buffer){dist, 4096, 0, KB_DT_F32, 0};
    kb_case cs = {"n=4096,d=128,m=16/uniform", 3, 0, params, names};
    char err[256];
    void *state = NULL;
    if (p->prepare(&HOST, &cs, statics, 1, &state, err, sizeof err)) {
        fprintf(stderr, "ffi-overhead: prepare: %s\n", err);
        exit(2);
    }
    return state;
}

/* host/sandbox/worker_batch.c kb__wk_do_batch's loop. Returns ns per call. */
static double batch(const kb_plugin *p, void *state) {
    kb_buffer outs[KB_MAX_BUFFERS];
    char err[512] = "";
    uint32_t o = 0;
    const uint64_t t0 = now_ns();
    for (uint64_t c = 0; c < CALLS; c++) {
        memcpy(outs, outs_tmpl, sizeof(kb_buffer));
        if (p->run(state, ins[o], 2, outs, 1, err, sizeof err) != 0) {
            fprintf(stderr, "ffi-overhead: run: %s\n", err);
            exit(2);
        }
        prod[0] = outs[0].produced;
        __asm__ volatile("" ::: "memory"); /* keep the store, as the worker's shared page */
        if (++o == SETS) o = 0;
    }
    return (double)(now_ns() - t0) / CALLS;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ffi-overhead ORACLE.so NATIVE_EMPTY.so LIB.so SYMBOL 'SIG'\n");
        return 64;
    }
    char err[1024];
    kb__lib oracle, native, foreign;
    if (kb__lib_open(argv[1], argv[1], 1, &oracle, err, sizeof err) ||
        kb__lib_open(argv[2], argv[2], 0, &native, err, sizeof err)) {
        fprintf(stderr, "ffi-overhead: %s\n", err);
        return 2;
    }
    kb__fplan plan;
    if (kb__foreign_bind(oracle.target, argv[5], argv[4], &plan, err, sizeof err) ||
        kb__foreign_open(argv[3], argv[3], &plan, &foreign, err, sizeof err)) {
        fprintf(stderr, "ffi-overhead: %s\n", err);
        return 2;
    }
    /* One CPU, the last, as kbench pins its workers. */
    cpu_set_t set;
    int cpu = -1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = CPU_SETSIZE - 1; c >= 0 && cpu < 0; c--)
            if (CPU_ISSET(c, &set)) cpu = c;
    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    void *ns = prepare(native.plugin), *fs = prepare(foreign.plugin);
    double n[REPS], f[REPS], d[REPS];
    batch(native.plugin, ns), batch(foreign.plugin, fs); /* warm up */
    for (int r = 0; r < REPS; r++) { /* alternate, so drift hits both alike */
        n[r] = batch(native.plugin, ns);
        f[r] = batch(foreign.plugin, fs);
        d[r] = f[r] - n[r];
    }
    qsort(n, REPS, sizeof *n, cmp_d);
    qsort(f, REPS, sizeof *f, cmp_d);
    qsort(d, REPS, sizeof *d, cmp_d);
    printf("cpu: %d; %d alternating batches of %d calls each way; medians [min, max]\n", cpu,
           REPS, CALLS);
    printf("native_ns_per_call: %.2f [%.2f, %.2f]  (%s run(), worker loop)\n", n[REPS / 2], n[0],
           n[REPS - 1], native.desc.name);
    printf("foreign_ns_per_call: %.2f [%.2f, %.2f]  (%s via libffi, %u args: %s)\n", f[REPS / 2],
           f[0], f[REPS - 1], argv[4], plan.n_args, argv[5]);
    printf("ffi_overhead_ns_per_call: %.2f [%.2f, %.2f]  (foreign minus native, per pair)\n",
           d[REPS / 2], d[0], d[REPS - 1]);
    foreign.plugin->release(fs);
    native.plugin->release(ns);
    return 0;
}
