/*
 * overhead.c -- what kbench's harness costs per call, and how fine its clock
 * is, measured outside kbench (docs/measurement.md, "Overhead").
 *
 *   cc -O2 -I abi -I host scripts/overhead.c -o overhead -ldl
 *   overhead EMPTY.so ONE_US.so
 *
 * EMPTY.so and ONE_US.so are tests/fixtures/power/fx_kernel_{empty,1us}.c.
 * They compute nothing, so kbench calls them `incorrect` and never times
 * them; this program calls them the way the worker does instead: through
 * host/sandbox/calls.h, the worker's own timed loop (included, not copied), with
 * fresh output descriptors per call copied in before the clock starts. A
 * batch is at most KB__MAX_LANES (4096) calls there, so here too.
 *
 * Printed:
 *   - CLOCK_MONOTONIC: clock_getres, the smallest non-zero step between two
 *     readings, and the cost of one reading;
 *   - per call, inside a batch: the empty kernel's time (the loop's whole
 *     cost), and the 1 us kernel through the loop against the same
 *     multiply-add chain inlined in a plain loop (its marginal cost);
 *   - per batch: the host's view, as kbench takes it: the worker (a process
 *     pinned to the workers' CPU) sends a start message, runs the loop and
 *     replies; the kernel stamps both messages as they are sent
 *     (SO_TIMESTAMPNS) and the host, polling, reads the stamps. The stamped
 *     interval minus the worker's own reading is the fixed cost a batch
 *     carries, shown per call of a 3 ms batch of the 1 us kernel; the host's
 *     send-to-read reading (what kbench used before) is shown beside it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "kbench.h"

#define SETS 4
#define MAX_ORDER 16
#define CHAIN 800 /* FX_WORK of fx_kernel_1us.c */
#define MSG 1024   /* about kbench's request and reply sizes */
#define LANES 4096 /* KB__MAX_LANES in host/sandbox/proto.h */
#define REPS 201

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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

/* What the worker holds for one case: the plugin, its state, per-set input
 * descriptors and the output descriptor template. */
typedef struct {
    const kb_plugin *p;
    void *state;
    kb_buffer ins[SETS][KB_MAX_BUFFERS];
    uint32_t n_ins;
    kb_buffer outs[1];
    uint32_t n_outs;
    kb_buffer lanes[LANES];  /* [lane][n_outs], n_outs == 1 */
    kb_buffer work[LANES];   /* the batch's fresh copy, as the worker makes it */
} wcase;

static const kb_plugin *load(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "overhead: %s\n", dlerror());
        exit(2);
    }
    kb_plugin_entry_fn f = (kb_plugin_entry_fn)dlsym(h, "kb_plugin_entry_v1");
    if (!f) {
        fprintf(stderr, "overhead: %s has no kb_plugin_entry_v1\n", path);
        exit(2);
    }
    return f();
}

static void wcase_init(wcase *k, const kb_plugin *p) {
    static float query[SETS][128], dist[4096];
    static uint8_t codes[SETS][4096 * 16];
    static const int64_t params[3] = {4096, 128, 16};
    static const char *const names[3] = {"n", "d", "m"};
    memset(k, 0, sizeof *k);
    k->p = p;
    for (int s = 0; s < SETS; s++) {
        k->ins[s][0] = (kb_buffer){query[s], 128, 0, KB_DT_F32, 0};
        k->ins[s][1] = (kb_buffer){codes[s], sizeof codes[s], 0, KB_DT_U8, 0};
    }
    k->n_ins = 2;
    k->outs[0] = (kb_buffer){dist, 4096, 0, KB_DT_F32, 0};
    k->n_outs = 1;
    /* The stub kernels write nothing, so every lane may name one buffer. */
    for (int l = 0; l < LANES; l++) k->lanes[l] = k->outs[0];
    kb_case cs = {"n=4096,d=128,m=16/uniform", 3, 0, params, names};
    char err[256];
    if (p->prepare(&HOST, &cs, NULL, 0, &k->state, err, sizeof err)) {
        fprintf(stderr, "overhead: prepare: %s\n", err);
        exit(2);
    }
}

/* host/sandbox/worker_batch.c's kb__wk_do_batch around host/sandbox/calls.h: fresh descriptors, then
 * the timed loop. Returns ns. */
static void fresh(wcase *k, uint64_t calls) {
    memcpy(k->work, k->lanes, sizeof(kb_buffer) * k->n_outs * calls);
}

static uint64_t timed(wcase *k, const uint32_t *order, uint32_t n_order, uint64_t calls) {
    char err[512] = "";
    uint64_t done;
    uint64_t t0 = now_ns();
    kb__run_calls(k->p, k->state, (const kb_buffer(*)[KB_MAX_BUFFERS])k->ins, k->n_ins, k->work,
                  k->n_outs, order, n_order, calls, &done, err, sizeof err);
    return now_ns() - t0;
}

static uint64_t batch(wcase *k, const uint32_t *order, uint32_t n_order, uint64_t calls) {
    fresh(k, calls);
    return timed(k, order, n_order, calls);
}

/* The least a host can do: the plugin's run called directly in a loop, one
 * descriptor set, no bookkeeping. What kb__run_calls costs beyond this is
 * the harness's share of a call. */
static uint64_t direct(wcase *k, uint64_t calls) {
    char err[512] = "";
    int (*const run)(void *, const kb_buffer *, uint32_t, kb_buffer *, uint32_t, char *,
                     size_t) = k->p->run;
    uint64_t t0 = now_ns();
    for (uint64_t c = 0; c < calls; c++)
        if (run(k->state, k->ins[0], k->n_ins, k->work, k->n_outs, err, sizeof err)) break;
    return now_ns() - t0;
}

/* fx_kernel_1us.c's chain, inlined: what the 1 us kernel costs with no
 * call around it. */
static uint64_t chain_state = 1;
static uint64_t inline_chain(uint64_t calls) {
    uint64_t t0 = now_ns();
    for (uint64_t c = 0; c < calls; c++) {
        uint64_t x = chain_state | 1;
        for (uint32_t i = 0; i < CHAIN; i++) {
            x = x * UINT64_C(0x9e3779b97f4a7c15) + i;
            __asm__ volatile("" : "+r"(x));
        }
        chain_state = x;
    }
    return now_ns() - t0;
}

/* One message: its first 8 bytes into *w (the worker's reading, in the
 * reply) and the kernel's send stamp into *stamp. */
static int recv_stamped(int sock, uint64_t *w, uint64_t *stamp) {
    char buf[MSG];
    union {
        char b[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } cb;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
                        .msg_controllen = sizeof cb.b};
    if (recvmsg(sock, &mh, 0) != (ssize_t)sizeof buf) return -1;
    memcpy(w, buf, sizeof *w);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *stamp = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            return 0;
        }
    return -1;
}

static void pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: overhead EMPTY.so ONE_US.so\n");
        return 64;
    }
    /* kbench's layout: workers on the last CPU of the mask, the host on the
     * others when there are others. */
    cpu_set_t all;
    int last = 0, first = -1;
    if (sched_getaffinity(0, sizeof all, &all) == 0)
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &all)) {
                if (first < 0) first = i;
                last = i;
            }
    pin(last);

    /* ---- the clock ---- */
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC, &res);
    uint64_t min_step = UINT64_MAX;
    for (int i = 0; i < 1000000; i++) {
        uint64_t a = now_ns(), b = now_ns();
        if (b > a && b - a < min_step) min_step = b - a;
    }
    double cost[REPS];
    for (int r = 0; r < REPS; r++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < 10000; i++) (void)now_ns();
        cost[r] = (double)(now_ns() - t0) / 10000;
    }
    printf("clock_getres_ns: %ld\n", res.tv_nsec + res.tv_sec * 1000000000L);
    printf("clock_min_step_ns: %llu\n", (unsigned long long)min_step);
    printf("clock_read_ns: %.1f\n", median(cost, REPS));

    /* ---- per call, inside a batch ---- */
    static wcase empty, one; /* large: off the stack */
    wcase_init(&empty, load(argv[1]));
    wcase_init(&one, load(argv[2]));
    uint32_t order[MAX_ORDER];
    for (int i = 0; i < MAX_ORDER; i++) order[i] = (uint32_t)((i * 7 + 3) % SETS);
    double e[REPS], u[REPS], c[REPS], de[REPS], du[REPS];
    const uint64_t n_empty = LANES, n_one = 3000;
    batch(&empty, order, MAX_ORDER, n_empty);
    batch(&one, order, MAX_ORDER, n_one);
    inline_chain(n_one);
    for (int r = 0; r < REPS; r++) {
        e[r] = (double)batch(&empty, order, MAX_ORDER, n_empty) / n_empty;
        de[r] = (double)direct(&empty, n_empty) / n_empty;
        u[r] = (double)batch(&one, order, MAX_ORDER, n_one) / n_one;
        du[r] = (double)direct(&one, n_one) / n_one;
        c[r] = (double)inline_chain(n_one) / n_one;
    }
    /* Paired differences, so a neighbour's burst hits both terms. */
    double d[REPS], h[REPS];
    for (int r = 0; r < REPS; r++) {
        d[r] = u[r] - c[r];
        h[r] = u[r] - du[r];
    }
    const double me = median(e, REPS), mu = median(u, REPS), mc = median(c, REPS);
    const double md = median(d, REPS), mh = median(h, REPS);
    /* Sorted by median(): [0] is the fastest batch, the least disturbed. */
    printf("empty_kernel_ns_per_call: %.2f (fastest batch %.2f; called directly %.2f)\n", me, e[0],
           median(de, REPS));
    printf("one_us_kernel_ns_per_call: %.1f (fastest batch %.1f; called directly %.1f)\n", mu, u[0],
           median(du, REPS));
    printf("one_us_chain_inlined_ns: %.1f\n", mc);
    printf("one_us_vs_inlined_ns: %.2f (the call itself and codegen differences)\n", md);
    printf("one_us_harness_loop_ns: %.3f (kbench's loop minus a direct call loop, median of "
           "paired; fastest batches: %.3f)\n",
           mh, u[0] - du[0]); /* median() sorted both: [0] is the fastest */
    printf("loop_overhead_pct_of_1us: %.3f (empty kernel / 1 us kernel)\n", 100 * me / mu);
    /* What the loop adds to a call: measurable only on the empty kernel
     * (a 1 us kernel's out-of-order shadow hides it, and the paired figure
     * above is noise of +-2 ns around 0), so that bound is what counts. */
    const double loop = me - median(de, REPS) > 0 ? me - median(de, REPS) : 0;
    printf("loop_ns_per_call: %.3f (empty kernel through kbench's loop minus called directly)\n",
           loop);

    /* ---- per batch, the host's reading ---- */
    int sv[2], sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) != 0) {
        perror("overhead: socketpair");
        return 1;
    }
    const int on = 1;
    if (setsockopt(sv[0], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0 ||
        setsockopt(sp[0], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
        perror("overhead: SO_TIMESTAMPNS");
        return 1;
    }
    uint64_t calls = (uint64_t)(3e6 / mu); /* a 3 ms batch of the 1 us kernel... */
    if (calls > LANES) calls = LANES;       /* ...within kbench's cap */
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        pin(last);
        char req[MSG], rep[MSG];
        while (recv(sv[1], req, sizeof req, 0) == (ssize_t)sizeof req) {
            memset(rep, 0, sizeof rep);
            fresh(&one, calls);
            if (send(sp[1], rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep) _exit(1);
            uint64_t ns = timed(&one, order, MAX_ORDER, calls);
            memcpy(rep, &ns, sizeof ns);
            if (send(sv[1], rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep) _exit(1);
        }
        _exit(0);
    }
    close(sv[1]);
    if (first != last) {
        CPU_CLR(last, &all);
        sched_setaffinity(0, sizeof all, &all);
    }
    char req[MSG];
    memset(req, 0, sizeof req);
    double gap[REPS], rel[REPS], old_gap[REPS];
    for (int r = -5; r < REPS; r++) {
        uint64_t t0 = now_ns(), st[2] = {0, 0}, w = 0;
        if (send(sv[0], req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req) return 1;
        struct pollfd pf = {sv[0], POLLIN, 0};
        while (poll(&pf, 1, 10000) <= 0) {}
        if (recv_stamped(sv[0], &w, &st[1]) != 0) return 1;
        uint64_t w0;
        if (recv_stamped(sp[0], &w0, &st[0]) != 0) return 1;
        uint64_t t1 = now_ns();
        if (r >= 0) {
            gap[r] = (double)(st[1] - st[0]) - (double)w;
            rel[r] = gap[r] / (double)(st[1] - st[0]);
            old_gap[r] = (double)(t1 - t0) - (double)w;
        }
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    const double mg = median(gap, REPS);
    /* median() sorted gap: its quantiles can be read off directly. */
    printf("batch_stamp_overhead_us_p10_p90_max: %.1f %.1f %.1f\n", gap[REPS / 10] / 1e3,
           gap[REPS * 9 / 10] / 1e3, gap[REPS - 1] / 1e3);
    printf("batch_calls: %llu (3 ms of the 1 us kernel, at most %d)\n", (unsigned long long)calls,
           LANES);
    printf("batch_stamp_overhead_us: %.2f (stamped interval minus worker reading, median of %d)\n",
           mg / 1e3, REPS);
    printf("batch_stamp_overhead_pct: %.4f\n", 100 * median(rel, REPS));
    printf("stamp_overhead_ns_per_call: %.3f (%.4f%% of the 1 us kernel)\n", mg / (double)calls,
           100 * mg / (double)calls / mu);
    printf("host_send_to_read_us: %.1f (host's own reading minus worker reading, median; not used)\n",
           median(old_gap, REPS) / 1e3);
    printf("replay_overhead_pct_of_1us: %.4f (loop + this replay's whole stamp overhead per call)\n",
           100 * (loop + mg / (double)calls) / mu);
    printf("host_cpus: %s\n", first != last ? "host and worker on different CPUs"
                                            : "one CPU: host and worker share it");
    return 0;
}
