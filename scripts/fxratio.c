/*
 * fxratio.c -- how much slower is plugin B than plugin A, measured without
 * kbench: one process, one pinned CPU, the same inputs, batches of about
 * 3 ms alternating ABBA / BAAB. Used to calibrate the slowN fixtures of
 * tests/fixtures/power (docs/measurement.md); independent of host/ on
 * purpose, so a bug in kbench's sampling cannot hide in the calibration.
 *
 *   cc -O2 -I abi scripts/fxratio.c -o fxratio -ldl -lm
 *   fxratio [-t SECONDS_PER_CASE] [-a] ORACLE.so A.so B.so [B2.so ...]
 *
 * -a: all cases (default: the quick ones). With several B, every round
 * times A against each B in turn, so all see the same machine. Prints per
 * case and B the median of log(B/A) over pairs, exponentiated, with a 90%
 * percentile-bootstrap CI, then per B the geometric mean over cases.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbench.h"

#define SETS 4
#define BATCH_NS 3e6
#define MAX_PAIRS 200000

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void host_log(const kb_host *h, const char *m) {
    (void)h;
    fprintf(stderr, "[plugin] %s\n", m);
}
static void *host_alloc(const kb_host *h, size_t size, size_t align) {
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void host_free(const kb_host *h, void *p) {
    (void)h;
    free(p);
}
static const kb_host HOST = {sizeof(kb_host), 0, 0, host_log, host_alloc, host_free};

static size_t dt_size(uint32_t dt) {
    switch (dt) {
    case KB_DT_U8: return 1;
    case KB_DT_U16: return 2;
    case KB_DT_U32: case KB_DT_I32: case KB_DT_F32: return 4;
    default: return 8;
    }
}

static void *must_sym(const char *path, const char *sym) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "fxratio: %s\n", dlerror()); exit(2); }
    void *f = dlsym(h, sym);
    if (!f) { fprintf(stderr, "fxratio: %s has no %s\n", path, sym); exit(2); }
    return f;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng = 0x1234567;
static uint64_t next(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

typedef struct {
    const kb_plugin *p;
    void *state;
} side;

/* kb_buffer arrays for one input set: per-call inputs, then outputs. */
typedef struct {
    kb_buffer ins[KB_MAX_BUFFERS], outs[KB_MAX_BUFFERS];
    uint32_t n_ins, n_outs;
} callset;

static double batch(side *s, callset *cs, uint64_t calls) {
    char err[256];
    kb_buffer outs[KB_MAX_BUFFERS];
    double t0 = now_ns();
    for (uint64_t c = 0; c < calls; c++) {
        callset *x = &cs[c % SETS];
        memcpy(outs, x->outs, sizeof(kb_buffer) * x->n_outs);
        if (s->p->run(s->state, x->ins, x->n_ins, outs, x->n_outs, err, sizeof err)) {
            fprintf(stderr, "fxratio: run failed: %s\n", err);
            exit(2);
        }
    }
    return now_ns() - t0;
}

#define MAX_B 8

int main(int argc, char **argv) {
    double secs = 3.0;
    int all = 0, ai = 1;
    for (; ai < argc && argv[ai][0] == '-'; ai++) {
        if (strcmp(argv[ai], "-a") == 0) all = 1;
        else if (strcmp(argv[ai], "-t") == 0 && ai + 1 < argc) secs = atof(argv[++ai]);
        else break;
    }
    const int nb = argc - ai - 2;
    if (nb < 1 || nb > MAX_B) {
        fprintf(stderr,
                "usage: fxratio [-t SECONDS_PER_CASE] [-a] ORACLE.so A.so B.so [B2.so ...]\n");
        return 64;
    }
    char **av = argv + ai;
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) {
        int last = -1;
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &cpus)) last = i;
        CPU_ZERO(&cpus);
        CPU_SET(last, &cpus);
        sched_setaffinity(0, sizeof cpus, &cpus);
    }
    const kb_target *t = ((kb_target_entry_fn)must_sym(av[0], "kb_target_entry_v1"))();
    side sd[1 + MAX_B];
    for (int i = 0; i <= nb; i++)
        sd[i] = (side){((kb_plugin_entry_fn)must_sym(av[1 + i], "kb_plugin_entry_v1"))(), NULL};
    double *logr[MAX_B], *boot = malloc(2000 * sizeof *boot);
    for (int b = 0; b < nb; b++) logr[b] = malloc(MAX_PAIRS * sizeof(double));
    double *tmp = malloc(MAX_PAIRS * sizeof *tmp);
    double sum_med[MAX_B] = {0};
    int n_cases = 0;
    for (uint32_t ci = 0; ci < t->n_cases; ci++) {
        const kb_case_spec *cs = &t->cases[ci];
        if (!all && !(cs->flags & KB_CASE_QUICK)) continue;
        kb_buffer bufs[SETS][KB_MAX_BUFFERS];
        char err[256];
        memset(bufs, 0, sizeof bufs);
        for (uint32_t s = 0; s < SETS; s++)
            for (uint32_t b = 0; b < t->n_buffers; b++) {
                const kb_buffer_spec *bs = &t->buffers[b];
                bufs[s][b].count = cs->lengths[b];
                bufs[s][b].dtype = bs->dtype;
                if (bs->role == KB_ROLE_STATIC && s > 0) {
                    bufs[s][b].data = bufs[0][b].data;
                } else if (bs->role != KB_ROLE_OUTPUT || s == 0) {
                    bufs[s][b].data = host_alloc(NULL, cs->lengths[b] * dt_size(bs->dtype), 64);
                }
            }
        for (uint32_t s = 0; s < SETS; s++) {
            kb_buffer g[KB_MAX_BUFFERS];
            memcpy(g, bufs[s], sizeof g);
            for (uint32_t b = 0; b < t->n_buffers; b++)
                if (t->buffers[b].role == KB_ROLE_OUTPUT) g[b].data = NULL;
            if (t->generate(cs, 42, s, g, t->n_buffers, err, sizeof err)) {
                fprintf(stderr, "fxratio: generate: %s\n", err);
                return 2;
            }
        }
        callset sets[SETS];
        kb_buffer statics[KB_MAX_BUFFERS];
        uint32_t n_st = 0;
        for (uint32_t s = 0; s < SETS; s++) {
            sets[s].n_ins = sets[s].n_outs = 0;
            for (uint32_t b = 0; b < t->n_buffers; b++) {
                kb_buffer x = bufs[s][b];
                if (t->buffers[b].role == KB_ROLE_CALL) sets[s].ins[sets[s].n_ins++] = x;
                if (t->buffers[b].role == KB_ROLE_OUTPUT) {
                    x.data = bufs[0][b].data;
                    sets[s].outs[sets[s].n_outs++] = x;
                }
                if (s == 0 && t->buffers[b].role == KB_ROLE_STATIC) statics[n_st++] = x;
            }
        }
        kb_case kc = {cs->name, t->n_params, 0, cs->params, t->param_names};
        for (int i = 0; i <= nb; i++)
            if (sd[i].p->prepare(&HOST, &kc, statics, n_st, &sd[i].state, err, sizeof err)) {
                fprintf(stderr, "fxratio: prepare: %s\n", err);
                return 2;
            }
        for (int i = 0; i <= nb; i++) batch(&sd[i], sets, SETS);
        /* The fastest of a few: a neighbour's burst must not size the batch. */
        double one = 1e18;
        for (int i = 0; i < 9; i++) {
            double x = batch(&sd[0], sets, SETS) / SETS;
            if (x < one) one = x;
        }
        uint64_t k = (uint64_t)(BATCH_NS / (one > 20 ? one : 20));
        if (k < 1) k = 1;
        for (int i = 0; i <= nb; i++) batch(&sd[i], sets, k);
        size_t n = 0;
        const double t_end = now_ns() + secs * 1e9;
        while (now_ns() < t_end && n + 2 <= MAX_PAIRS) {
            for (int b = 0; b < nb; b++) {
                const int phase = (int)(next() & 1);
                for (int half = 0; half < 2; half++) {
                    const int a_first = (half ^ phase) == 0;
                    double x = batch(&sd[a_first ? 0 : 1 + b], sets, k);
                    double y = batch(&sd[a_first ? 1 + b : 0], sets, k);
                    logr[b][n + half] = a_first ? log(y / x) : log(x / y);
                }
            }
            n += 2;
        }
        for (int i = 0; i <= nb; i++) sd[i].p->release(sd[i].state);
        for (int b = 0; b < nb; b++) {
            memcpy(tmp, logr[b], n * sizeof *tmp);
            const double med = median(tmp, n);
            for (int r = 0; r < 2000; r++) {
                for (size_t i = 0; i < n; i++) tmp[i] = logr[b][next() % n];
                boot[r] = median(tmp, n);
            }
            qsort(boot, 2000, sizeof *boot, cmp_d);
            printf("%-36s B%d/A %.4f [%.4f, %.4f]  pairs %zu  calls/batch %llu  A %.0f ns/call\n",
                   cs->name, b + 1, exp(med), exp(boot[100]), exp(boot[1899]), n,
                   (unsigned long long)k, one);
            sum_med[b] += med;
        }
        fflush(stdout);
        n_cases++;
        for (uint32_t b = 0; b < t->n_buffers; b++) {
            free(bufs[0][b].data);
            if (t->buffers[b].role == KB_ROLE_CALL)
                for (uint32_t s = 1; s < SETS; s++) free(bufs[s][b].data);
        }
    }
    for (int b = 0; b < nb; b++)
        printf("geomean B%d/A %.4f over %d cases  (B%d = %s)\n", b + 1, exp(sum_med[b] / n_cases),
               n_cases, b + 1, av[2 + b]);
    return 0;
}
