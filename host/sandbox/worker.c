/*
 * worker.c -- the disposable process that loads one plugin and runs it.
 *
 * Started by kb__worker_spawn as `kbench __worker FD` (a fresh exec, so no
 * host memory, no oracle and no oracle outputs are mapped here). It trusts
 * nothing it loads: the host re-checks everything it reports, times every
 * batch with its own clock, and reads outputs from shared memory itself.
 * The harness's only jobs are to call the plugin as asked and to say, if it
 * can, where a fault happened.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h> /* glibc 2.35 on: RSEQ_SIG, __rseq_offset, __rseq_size */
#endif
#endif
#include <unistd.h>

#include "kb.h"
#include "calls.h"
#include "proto.h"
#include "sandbox.h"

/* Descriptor rows: replica r of set s is row r * KB__SETS + s, fresh set
 * KB__SETS + p is row n_reps * KB__SETS + p; with one replica (a warm
 * target) a set's row is its index. */
static size_t ins_bytes(uint32_t n_reps)
{
    return sizeof(kb_buffer) * KB_MAX_BUFFERS * ((size_t)n_reps * KB__SETS + KB__PROBE);
}

typedef struct kb__wcase {
    int ready;
    void *state;
    uint8_t *arena; /* the statics */
    size_t arena_size;
    uint8_t *calls; /* the timed per-call sets, mapped after prepare */
    size_t calls_size;
    uint8_t *outmap; /* reservation incl. guard pages */
    size_t outmap_size;
    uint32_t n_ins, n_outs;
    kb_buffer statics[KB_MAX_BUFFERS];
    /* Per-call input descriptors, in a page made read-only once filled:
     * run() gets a const array, and a plugin that writes through the cast
     * faults instead of steering later calls. */
    kb_buffer (*ins)[KB_MAX_BUFFERS];
    size_t ins_size;
    uint32_t *rows; /* cold cases: a batch's descriptor row per call (do_batch) */
    uint8_t *probe; /* one group of fresh sets, mapped when the host sends it */
    size_t probe_size;
    int probe_group;  /* which group is mapped */
    kb_buffer *lanes; /* [n_lanes][n_outs]: each call's own outputs */
    kb_buffer *work;  /* the batch's copy of lanes, handed to run(); shared
                            * with the host, which reads `produced` from it */
    size_t work_size;
    kb__layout layout;
    char *names[KB_MAX_PARAMS];
    kb_case cs;
} kb__wcase;

static struct {
    int sock;
    uint64_t nonce;
    uint64_t seq; /* of the request being served, for the fault handler */
    kb__lib lib;
    int loaded;
    kb__wcase cases[KB__MAX_CASES];
    long page;
    char sandbox_err[256]; /* why the sandbox could not be set up; "" when it is */
    sigset_t plugin_mask;  /* the plugin's signal mask, while the harness blocks all */
    int blocked;
    uint64_t touched;      /* KB__REQF_TOUCH's sum: keeps its loads */
    int hold_signals;      /* no filter to forbid handlers: block signals between batches */
    int filtered;          /* the seccomp filter is on: harden it after loading */
    int rseq_trap;         /* glibc registers no rseq area: any rseq call is the plugin's */
    uint64_t base_threads; /* before any plugin: 1, plus an emulator's own */
} W;

/* The system call, not the vDSO: a plugin that moves or unmaps the vDSO
 * should break only its own clock. (The host decides nothing by this
 * reading; it is a cross-check and sizes batches.) */
static uint64_t now_ns(void)
{
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A plugin's signal handler would be plugin code running where no clock
 * looks (a timer's, between batches). The seccomp filter forbids installing
 * one; without the filter (under an emulator or valgrind) the harness
 * instead blocks every signal from a reply until the next batch's start
 * message, at the price of two system calls inside every timed interval.
 * Pending signals arrive after the start (or, for other requests, once the
 * request is read). */
static void block_signals(void)
{
    if (W.blocked || !W.hold_signals) return;
    sigset_t all;
    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &W.plugin_mask) == 0) W.blocked = 1;
}

static void unblock_signals(void)
{
    if (W.blocked) sigprocmask(SIG_SETMASK, &W.plugin_mask, NULL);
    W.blocked = 0;
}

static void reply(kb__rep *r)
{
    r->magic = KB__PROTO_MAGIC;
    r->nonce = W.nonce;
    r->seq = W.seq;
    block_signals();
    while (send(W.sock, r, sizeof *r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

/* The start message of a batch, on its own channel (see KB__REQF_STARTED). */
static void announce_start(void)
{
    kb__rep r;
    memset(&r, 0, sizeof r);
    r.magic = KB__PROTO_MAGIC;
    r.nonce = W.nonce;
    r.seq = W.seq;
    r.type = KB__REP_STARTED;
    while (send(KB__START_FD, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR) {
    }
}

static void reply_code(uint32_t type, int code, const char *msg)
{
    kb__rep r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.code = code;
    if (msg) snprintf(r.msg, sizeof r.msg, "%s", msg);
    reply(&r);
}

/* ---- fault reporting -------------------------------------------------
 * A write to a read-only input or into a guard page lands here. Only
 * async-signal-safe calls; the message goes out before the default action
 * kills the process, so the host can say "wrote to input" instead of just
 * "SIGSEGV". A plugin may replace this handler; then it is a plain crash. */
static size_t put(char *out, size_t n, size_t cap, const char *s)
{
    while (s && *s && n + 1 < cap) out[n++] = *s++;
    return n;
}

static size_t put_u64(char *out, size_t n, size_t cap, uint64_t v)
{
    char num[24];
    int k = (int)sizeof num - 1;
    num[k] = 0;
    do {
        num[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v && k > 0);
    return put(out, n, cap, num + k);
}

static void say_raw(const char *msg)
{
    static kb__rep r; /* static: no large frame on the alternate stack */
    memset(&r, 0, sizeof r);
    r.type = KB__REP_FAULT;
    put(r.msg, 0, sizeof r.msg, msg);
    reply(&r);
}

static void say_fault(const char *what, const char *name)
{
    static char m[512];
    size_t n = put(m, 0, 240, what);
    if (name) {
        n = put(m, n, sizeof m, " '");
        n = put(m, n, 480, name);
        n = put(m, n, sizeof m, "'");
    }
    m[n] = 0;
    say_raw(m);
}

/* Address space in use and its limit, in bytes (0 when unknown). Reads
 * /proc/self/statm with plain system calls: callable from a handler. */
static void vm_usage(uint64_t *used, uint64_t *limit)
{
    *used = *limit = 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) *limit = rl.rlim_cur;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    uint64_t pages = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        pages = pages * 10 + (uint64_t)(buf[i] - '0');
    *used = pages * (uint64_t)W.page;
}

/* A fault outside inputs and outputs while the address space is nearly
 * full is most likely an allocation that failed and was not checked. */
static int say_if_out_of_memory(void)
{
    uint64_t used, limit;
    vm_usage(&used, &limit);
    if (!limit || used + (256u << 20) < limit) return 0;
    static char m[256];
    size_t n = put(m, 0, sizeof m, "ran into its memory limit (");
    n = put_u64(m, n, sizeof m, used >> 20);
    n = put(m, n, sizeof m, " MiB of address space in use, limit ");
    n = put_u64(m, n, sizeof m, limit >> 20);
    n = put(m, n, sizeof m, " MiB) and then faulted: an allocation failed unchecked?");
    m[n] = 0;
    say_raw(m);
    return 1;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    uint8_t *addr = (uint8_t *)si->si_addr;
    for (int c = 0; c < KB__MAX_CASES; c++) {
        kb__wcase *k = &W.cases[c];
        if (!k->ready) continue;
        if ((addr >= k->arena && addr < k->arena + k->arena_size) ||
            (k->calls && addr >= k->calls && addr < k->calls + k->calls_size) ||
            (k->probe && addr >= k->probe && addr < k->probe + k->probe_size)) {
            say_fault("wrote to input (read-only memory) in case", k->layout.case_name);
            goto die;
        }
        if (addr >= k->outmap && addr < k->outmap + k->outmap_size) {
            /* Guard page: find the output slot it borders. */
            uint8_t *cur = k->outmap + W.page;
            for (uint32_t jj = 0; jj < k->n_outs * k->layout.n_lanes; jj++) {
                const uint32_t j = jj % k->n_outs;
                const uint32_t bi = k->layout.n_statics + k->layout.n_calls + j;
                uint8_t *slot = cur, *end = slot + k->layout.buf[bi].slot_size;
                if (addr >= slot - W.page && addr < slot) {
                    say_fault("wrote before the start of output (guard page) in case",
                              k->layout.case_name);
                    goto die;
                }
                if (addr >= end && addr < end + W.page) {
                    say_fault("wrote past the end of output (guard page) in case",
                              k->layout.case_name);
                    goto die;
                }
                cur = end + W.page;
            }
        }
    }
    (void)say_if_out_of_memory();
die:
    raise(sig); /* SA_RESETHAND: the default action now */
}

/* A system call outside the seccomp allow-list. The call did not happen;
 * say which it was and end the worker (the filter does not let the plugin
 * replace this handler; if it blocks SIGSYS the kernel kills the worker with
 * it, which the host reports the same way). */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    static char m[256], desc[160];
    kb__syscall_describe((long)si->si_syscall, desc, sizeof desc);
    size_t n = put(m, 0, sizeof m, "made a forbidden system call: ");
    n = put(m, n, sizeof m, desc);
    m[n] = 0;
    say_raw(m);
    _exit(125);
}

static void install_fault_handler(void)
{
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSYS, &sa, NULL);
}

/* glibc (2.35 on) registers each thread's restartable-sequence area with
 * the kernel, in thread-local memory a plugin can write: it could point the
 * main thread's critical section at the harness's code and its abort
 * address at its own, and the kernel would jump there when the harness is
 * preempted. The host starts workers with glibc.pthread.rseq=0; should
 * glibc have registered anyway, the main thread's area is unregistered here
 * and marked as glibc marks a failed registration, so sched_getcpu falls
 * back to the system call. Returns 1 when no glibc thread registers (so
 * rseq may trap), 0 when later threads will try (rseq fails with ENOSYS),
 * -1 when the area could not be unregistered. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
static uint8_t *thread_pointer(void)
{
    uint8_t *tp = NULL;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
    return tp;
}

static int rseq_off(void)
{
    if (!&__rseq_size || __rseq_size == 0) return 1;
#if defined(RSEQ_SIG) && defined(SYS_rseq)
    uint8_t *area = thread_pointer() + __rseq_offset;
    if (area == (uint8_t *)__rseq_offset) return -1; /* no thread pointer on this CPU */
    /* glibc registers 32 bytes (the original struct rseq) or __rseq_size */
    const unsigned lens[] = {32, __rseq_size};
    for (int i = 0; i < 2; i++)
        if (syscall(SYS_rseq, area, lens[i], 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG) == 0) {
            const uint32_t failed = (uint32_t)-2;     /* RSEQ_CPU_ID_REGISTRATION_FAILED */
            memcpy(area + 4, &failed, sizeof failed); /* cpu_id */
            return 0;
        }
#endif
    return -1;
}

/* Before any plugin code runs: no way back to more privilege, no
 * capabilities (a root worker could otherwise read the host's memory, which
 * holds the oracle's outputs), not inspectable by the other worker, and the
 * system-call filter. Returns 0, or fills W.sandbox_err. */
static void *noop_thread(void *arg)
{
    return arg;
}

static int lock_down(int sock)
{
    char err[256];
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(W.sandbox_err, sizeof W.sandbox_err, "cannot set no_new_privs: %s",
                 strerror(errno));
        return -1;
    }
    for (int c = 0; c < 64; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno == EINVAL) break;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) != 0) {
        snprintf(W.sandbox_err, sizeof W.sandbox_err, "cannot drop capabilities: %s",
                 strerror(errno));
        return -1;
    }
    /* Under an emulator (KB_WORKER_EXEC_PREFIX, see sandbox.c) a filter
     * would judge the emulator's system calls, not the plugin's, and
     * qemu-user refuses to install one: emulated runs go without. */
    const char *emu = getenv("KB_WORKER_EXEC_PREFIX");
    /* glibc installs its cancellation handler on the first pthread_create;
     * one thread started and joined here, before the filter forbids
     * installing handlers, lets a plugin's threads start later. */
    pthread_t t;
    if (pthread_create(&t, NULL, noop_thread, NULL) == 0) pthread_join(t, NULL);
    W.hold_signals = (emu && *emu) || KB__VALGRIND;
    if (emu && *emu) return 0;
    const int rs = rseq_off();
    if (rs < 0) {
        snprintf(W.sandbox_err, sizeof W.sandbox_err,
                 "cannot unregister glibc's restartable-sequence area: %s", strerror(errno));
        return -1;
    }
    W.rseq_trap = rs;
    if (kb__seccomp_install(sock, KB__START_FD, W.rseq_trap, err, sizeof err) != 0) {
        W.hold_signals = 1;
        snprintf(W.sandbox_err, sizeof W.sandbox_err, "%s", err);
        return -1;
    }
    W.filtered = !KB__VALGRIND;
    return 0;
}

/* ---- floating-point control state ------------------------------------
 * Rounding mode, flush-to-zero, denormals-are-zero and exception masks,
 * without the sticky exception flags (any arithmetic sets those). */
typedef struct kb__fpctl {
    uint32_t sse; /* MXCSR without flags; FPCR on arm64; fegetround() elsewhere */
    uint32_t x87; /* x87 control word; 0 elsewhere */
} kb__fpctl;

static kb__fpctl fp_read(void)
{
    kb__fpctl f = {0, 0};
#if defined(__x86_64__)
    uint32_t m;
    uint16_t c;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    __asm__ volatile("fnstcw %0" : "=m"(c));
    f.sse = m & ~0x3fu;
    f.x87 = c;
#elif defined(__aarch64__)
    uint64_t r;
    __asm__ volatile("mrs %0, fpcr" : "=r"(r));
    f.sse = (uint32_t)r;
#else
    f.sse = (uint32_t)fegetround();
#endif
    return f;
}

/* 0 when unchanged (or the target allows changes); else writes why. */
static int fp_changed(kb__fpctl before, uint32_t req_flags, char *msg, size_t len)
{
    kb__fpctl now = fp_read();
    if ((req_flags & KB__REQF_FPENV_FREE) || (now.sse == before.sse && now.x87 == before.x87))
        return 0;
#if defined(__x86_64__)
    const uint32_t x = now.sse ^ before.sse;
    char what[96] = "";
    static const struct {
        uint32_t bit;
        const char *name;
    } parts[] = {{0x6000, "rounding mode"},
                 {0x8000, "flush-to-zero"},
                 {0x0040, "denormals-are-zero"},
                 {0x1f80, "exception masks"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (x & parts[i].bit)
            snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s", what[0] ? ", " : ": ",
                     parts[i].name);
    if (now.x87 != before.x87)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%sx87 control word",
                 what[0] ? ", " : ": ");
    snprintf(msg, len,
             "changed floating-point control state and left it changed (MXCSR %#06x -> %#06x, x87 "
             "control word %#06x -> %#06x%s); restore it before returning",
             before.sse, now.sse, before.x87, now.x87, what);
#else
    snprintf(msg, len,
             "changed floating-point control state and left it changed (%#x -> %#x); restore it "
             "before returning",
             before.sse, now.sse);
#endif
    return 1;
}

/* "prepare returned 2 (out of memory: the worker's memory limit is 2.1
 * GiB)" rather than a bare code, when the plugin says it ran out. */
static void nomem_note(int rc, char *note, size_t len)
{
    note[0] = 0;
    if (rc != KB_ERR_NOMEM) return;
    uint64_t used, limit;
    vm_usage(&used, &limit);
    if (limit)
        snprintf(note, len,
                 " (out of memory: the worker's memory limit is %.2f GiB, %.2f GiB in use)",
                 (double)limit / (1u << 30), (double)used / (1u << 30));
    else
        snprintf(note, len, " (out of memory)");
}

/* ---- host services given to the plugin -------------------------------- */
static void host_log(const kb_host *h, const char *msg)
{
    (void)h;
    if (msg) fprintf(stderr, "[plugin] %.*s\n", 400, msg);
}
static void *host_alloc(const kb_host *h, size_t size, size_t align)
{
    (void)h;
    void *p = NULL;
    if (align < sizeof(void *) || (align & (align - 1))) return NULL;
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}
static void host_free(const kb_host *h, void *p)
{
    (void)h;
    free(p);
}
static kb_host HOST = {sizeof(kb_host), 0, 0, host_log, host_alloc, host_free};

static uint64_t count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    uint64_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    /* Not the emulator's: qemu-user runs a thread of its own in every process. */
    return W.base_threads > 1 && n >= W.base_threads ? n - (W.base_threads - 1) : n;
}

/* ---- requests ---------------------------------------------------------- */
static void do_load(int fd, const char *shown, const kb__fplan *foreign)
{
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (W.loaded) {
        reply_code(KB__REP_REFUSED, -1, "worker already has a plugin loaded");
        return;
    }
    if (W.sandbox_err[0]) { /* never run a plugin outside the sandbox */
        kb__errf(err, sizeof err, "%s: the worker cannot sandbox it: %s", shown, W.sandbox_err);
        reply_code(KB__REP_REFUSED, -1, err);
        return;
    }
    /* A foreign function (foreign.c) loads as a synthetic plugin around it. */
    int rc = foreign->active ? kb__foreign_open(path, shown, foreign, &W.lib, err, sizeof err)
                             : kb__lib_open(path, shown, 0, &W.lib, err, sizeof err);
    if (rc != 0) {
        kb__rep r;
        memset(&r, 0, sizeof r);
        r.type = KB__REP_REFUSED;
        r.code = rc;
        r.desc = W.lib.desc;
        snprintf(r.msg, sizeof r.msg, "%s", err);
        reply(&r);
        return;
    }
    /* What is executable is now final (a sanitizer runtime maps with
     * MAP_FIXED as it goes, so a sanitizer build keeps the first filter
     * only). */
    if (W.filtered && !KB__ASAN && kb__seccomp_harden(err, sizeof err) != 0) {
        reply_code(KB__REP_REFUSED, -1, err);
        return;
    }
    W.loaded = 1;
    HOST.cpu_features = kb__cpu_features();
    kb__rep r;
    memset(&r, 0, sizeof r);
    r.type = KB__REP_OK;
    r.desc = W.lib.desc;
    r.threads = count_threads();
    reply(&r);
}

static void unmap_case(kb__wcase *k)
{
    if (k->arena) munmap(k->arena, k->arena_size);
    if (k->calls) munmap(k->calls, k->calls_size);
    if (k->outmap) munmap(k->outmap, k->outmap_size);
    if (k->work) munmap(k->work, k->work_size);
    if (k->probe) munmap(k->probe, k->probe_size);
    if (k->ins) munmap(k->ins, k->ins_size);
    free(k->lanes);
    free(k->rows);
    memset(k, 0, sizeof *k);
}

static void do_case(const kb__req *q, int arena_fd, int out_fd)
{
    char err[512] = "";
    if (!W.loaded || q->layout.slot >= KB__MAX_CASES || arena_fd < 0 || out_fd < 0) {
        reply_code(KB__REP_REFUSED, -1, "bad case request");
        goto out;
    }
    kb__wcase *k = &W.cases[q->layout.slot];
    if (k->ready) unmap_case(k);
    k->layout = q->layout;
    const kb__layout *L = &k->layout;
    k->arena_size = L->arena_size;
    k->arena = mmap(NULL, L->arena_size, PROT_READ, MAP_SHARED, arena_fd, 0);
    if (k->arena == MAP_FAILED) {
        k->arena = NULL;
        snprintf(err, sizeof err, "cannot map inputs: %s", strerror(errno));
        reply_code(KB__REP_REFUSED, -1, err);
        goto out;
    }
    /* Outputs: one lane per call of a batch, each slot mapped between
     * PROT_NONE guard pages. */
    if (L->n_lanes == 0 || L->n_lanes > KB__MAX_LANES || L->n_outs == 0 ||
        L->n_outs > KB_MAX_BUFFERS || L->n_reps == 0 || L->n_reps > KB__MAX_REPLICAS) {
        reply_code(KB__REP_REFUSED, -1, "bad case layout");
        goto out;
    }
    size_t total = (size_t)W.page;
    for (uint32_t j = 0; j < L->n_outs; j++)
        total += L->buf[L->n_statics + L->n_calls + j].slot_size + (size_t)W.page;
    total = (total - (size_t)W.page) * L->n_lanes + (size_t)W.page;
    k->outmap_size = total;
    k->lanes = calloc((size_t)L->n_lanes * L->n_outs, sizeof *k->lanes);
    if (L->n_reps > 1 && !(k->rows = calloc(L->n_lanes, sizeof *k->rows))) {
        reply_code(KB__REP_REFUSED, -1, "cannot allocate input rows");
        goto out;
    }
    k->work_size = (size_t)(L->out_size - L->prod_off);
    k->work = L->out_size <= L->prod_off ||
                      k->work_size < (size_t)L->n_lanes * L->n_outs * sizeof(kb_buffer)
                  ? MAP_FAILED
                  : mmap(NULL, k->work_size, PROT_READ | PROT_WRITE, MAP_SHARED, out_fd,
                         (off_t)L->prod_off);
    if (!k->lanes || k->work == MAP_FAILED) {
        k->work = NULL;
        reply_code(KB__REP_REFUSED, -1, "cannot map output memory");
        goto out;
    }
    k->outmap = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k->outmap == MAP_FAILED) {
        k->outmap = NULL;
        reply_code(KB__REP_REFUSED, -1, "cannot reserve output memory");
        goto out;
    }
    /* Each slot goes into a hole cut in the reservation, by address hint:
     * after loading, MAP_FIXED is the plugin's no more than the harness's. */
    uint8_t *cur = k->outmap + W.page;
    for (uint32_t l = 0; l < L->n_lanes; l++)
        for (uint32_t j = 0; j < L->n_outs; j++) {
            const uint32_t bi = L->n_statics + L->n_calls + j;
            munmap(cur, L->buf[bi].slot_size);
            void *m = mmap(cur, L->buf[bi].slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, out_fd,
                           (off_t)(l * L->lane_size + L->buf[bi].slot_off));
            if (m != (void *)cur) {
                if (m != MAP_FAILED) munmap(m, L->buf[bi].slot_size);
                reply_code(KB__REP_REFUSED, -1, "cannot map outputs");
                goto out;
            }
            k->lanes[(size_t)l * L->n_outs + j] =
                (kb_buffer){cur + L->buf[bi].data_off, L->buf[bi].count, 0, L->buf[bi].dtype, 0};
            cur += L->buf[bi].slot_size + W.page;
        }
    k->n_outs = L->n_outs;
    k->n_ins = L->n_calls;
    for (uint32_t i = 0; i < L->n_statics; i++)
        k->statics[i] =
            (kb_buffer){k->arena + L->buf[i].off[0], L->buf[i].count, 0, L->buf[i].dtype, 0};
    const size_t insz = ins_bytes(L->n_reps);
    void *insm = mmap(NULL, insz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (insm == MAP_FAILED) {
        reply_code(KB__REP_REFUSED, -1, "cannot map input descriptors");
        goto out;
    }
    k->ins = insm;
    k->ins_size = insz;
    mprotect(k->ins, insz, PROT_READ);
    for (uint32_t p = 0; p < L->n_params && p < KB_MAX_PARAMS; p++)
        k->names[p] = k->layout.param_names[p];
    k->layout.case_name[sizeof k->layout.case_name - 1] = 0;
    k->cs = (kb_case){k->layout.case_name, L->n_params, 0, k->layout.params,
                      (const char *const *)k->names};
    k->ready = 1;

    const kb__fpctl fp0 = fp_read();
    uint64_t t0 = now_ns();
    void *state = NULL;
    int rc =
        W.lib.plugin->prepare(&HOST, &k->cs, k->statics, L->n_statics, &state, err, sizeof err);
    uint64_t t1 = now_ns();
    err[sizeof err - 1] = 0;
    if (rc != 0) {
        kb__rep r;
        char note[160];
        memset(&r, 0, sizeof r);
        r.type = KB__REP_FAIL;
        r.code = rc;
        r.ns = t1 - t0;
        nomem_note(rc, note, sizeof note);
        snprintf(r.msg, sizeof r.msg, "prepare returned %d%s: %s", rc, note, err);
        reply(&r);
        k->ready = 0;
        unmap_case(k);
        goto out;
    }
    k->state = state;
    if (W.lib.plugin->verify) {
        err[0] = 0;
        rc = W.lib.plugin->verify(state, err, sizeof err);
        err[sizeof err - 1] = 0;
        if (rc != 0) fprintf(stderr, "[kbench] plugin self-check returned %d: %s\n", rc, err);
    }
    kb__rep r;
    memset(&r, 0, sizeof r);
    if (fp_changed(fp0, q->flags, r.msg, sizeof r.msg)) {
        /* the trial ends here: the host rejects the plugin */
        r.type = KB__REP_FAIL;
        r.code = -1;
        reply(&r);
        goto out;
    }
    r.type = KB__REP_OK;
    r.ns = t1 - t0;
    r.threads = count_threads();
    reply(&r);
out:
    if (arena_fd >= 0) close(arena_fd);
    if (out_fd >= 0) close(out_fd);
}

/* One group of fresh sets, and only it, for one batch (a BATCH that
 * carries the fresh arena's descriptor): the descriptor is closed before
 * any plugin code runs and the pages go after the batch (do_batch), so a
 * plugin meets each fresh set first at the call that runs it. Returns
 * NULL, or a reason. */
static const char *map_group(kb__wcase *k, uint32_t group, int *fd)
{
    const kb__layout *L = &k->layout;
    if (group >= KB__PROBE_GROUPS) return "bad probe request";
    const uint64_t from = L->group_off[group], to = L->group_off[group + 1];
    if (from % (uint64_t)W.page || to <= from || to > L->probe_size) return "bad probe layout";
    if (k->probe) munmap(k->probe, k->probe_size);
    k->probe = NULL;
    /* Populated: page faults on first touch would be timed otherwise. */
    void *m = mmap(NULL, to - from, PROT_READ, MAP_SHARED | MAP_POPULATE, *fd, (off_t)from);
    close(*fd);
    *fd = -1;
    if (m == MAP_FAILED) return "cannot map fresh inputs";
    k->probe = m;
    k->probe_size = to - from;
    k->probe_group = (int)group;
    mprotect(k->ins, k->ins_size, PROT_READ | PROT_WRITE);
    for (int p = 0; p < KB__PROBE; p++)
        for (uint32_t i = 0; i < L->n_calls; i++) {
            const uint32_t bi = L->n_statics + i;
            const int mine = p / KB__PROBE_GROUP == (int)group;
            k->ins[L->n_reps * KB__SETS + p][i] =
                (kb_buffer){mine ? k->probe + (L->buf[bi].poff[p] - from) : NULL,
                            mine ? L->buf[bi].count : 0, 0, L->buf[bi].dtype, 0};
        }
    mprotect(k->ins, k->ins_size, PROT_READ);
    return NULL;
}

/* KB__REQF_TOUCH: a load of every cache line of the sets' inputs. */
static void touch_sets(const kb__wcase *k, const uint32_t *rows, uint32_t n_order)
{
    uint64_t sum = 0;
    for (uint32_t o = 0; o < n_order; o++)
        for (uint32_t i = 0; i < k->n_ins; i++) {
            const kb_buffer *b = &k->ins[rows[o]][i];
            const volatile uint8_t *p = b->data;
            const size_t n = (size_t)b->count * kb__dtype_size(b->dtype);
            for (size_t x = 0; x < n; x += 64) sum += p[x];
        }
    W.touched += sum;
}

static void do_batch(const kb__req *q, int *fresh_fd)
{
    if (*fresh_fd >= 0 && q->slot < KB__MAX_CASES && W.cases[q->slot].ready) {
        const char *why = map_group(&W.cases[q->slot], q->group, fresh_fd);
        if (why) {
            reply_code(KB__REP_REFUSED, -1, why);
            return;
        }
    }
    if (*fresh_fd >= 0 || q->slot >= KB__MAX_CASES || !W.cases[q->slot].ready ||
        !W.cases[q->slot].calls || q->n_order == 0 || q->n_order > KB__MAX_ORDER || q->calls == 0 ||
        q->calls > W.cases[q->slot].layout.n_lanes) {
        reply_code(KB__REP_REFUSED, -1, "bad batch request");
        return;
    }
    kb__wcase *k = &W.cases[q->slot];
    for (uint32_t i = 0; i < q->n_order; i++) {
        const uint32_t o = q->order[i];
        const int fresh_ok = k->probe && o >= KB__SETS && o < KB__ALLSETS &&
                             (int)((o - KB__SETS) / KB__PROBE_GROUP) == k->probe_group;
        if (o >= KB__SETS && !fresh_ok) {
            reply_code(KB__REP_REFUSED, -1, "bad batch request");
            return;
        }
    }
    if (q->rep0 >= k->layout.n_reps) {
        reply_code(KB__REP_REFUSED, -1, "bad batch request");
        return;
    }
    const uint64_t calls = q->calls;
    /* The descriptor rows the calls cycle through. Warm: the host's order,
     * set indices. Cold: group g of KB__SETS calls reads replica
     * (rep0 + g) mod n_reps and the host's order has each set once per
     * group (measure.c), so no call reads bytes a recent call read; the
     * rows are spelled out per call before the clock starts, so the timed
     * loop is the warm one. The set alone decides a call's expected
     * output, whichever replica it read. */
    const uint32_t *rows = q->order;
    uint32_t n_order = q->n_order;
    if (k->rows) {
        const uint32_t n_reps = k->layout.n_reps;
        for (uint64_t c = 0; c < calls; c++) {
            const uint32_t s = q->order[c % n_order];
            const uint32_t r = (uint32_t)((q->rep0 + c / KB__SETS) % n_reps);
            k->rows[c] = s < KB__SETS ? r * KB__SETS + s : (n_reps - 1) * KB__SETS + s;
        }
        rows = k->rows;
        n_order = (uint32_t)calls;
    }
    const uint32_t n_outs = k->n_outs;
    /* Fresh descriptors for every call, and the reply, set up before the
     * clock starts: between the start message and the reply only the calls
     * run, and the reply's send. */
    memcpy(k->work, k->lanes, sizeof(kb_buffer) * n_outs * calls);
    char err[512] = "";
    uint64_t done = 0;
    kb__rep r;
    memset(&r, 0, sizeof r);
    if (q->flags & KB__REQF_TOUCH) touch_sets(k, rows, n_order);
    const kb__fpctl fp0 = fp_read();
    if (q->flags & KB__REQF_STARTED) announce_start();
    unblock_signals();
    const uint64_t t0 = now_ns();
    const int rc =
        kb__run_calls(W.lib.plugin, k->state, (const kb_buffer(*)[KB_MAX_BUFFERS])k->ins, k->n_ins,
                      k->work, n_outs, rows, n_order, calls, &done, err, sizeof err);
    const uint64_t t1 = now_ns();
    r.ns = t1 - t0;
    for (uint32_t j = 0; j < n_outs; j++) r.produced[j] = k->work[(done - 1) * n_outs + j].produced;
    /* A host that times by the channel counts the threads itself, after
     * the reply: reading /proc here would be tens of microseconds inside
     * its reading. Under an emulator (base_threads > 1) only this count
     * is meaningful. */
    if (!(q->flags & KB__REQF_STARTED) || W.base_threads > 1) r.threads = count_threads();
    if (rc != 0) {
        char note[160];
        err[sizeof err - 1] = 0;
        r.type = KB__REP_FAIL;
        r.code = rc;
        nomem_note(rc, note, sizeof note);
        snprintf(r.msg, sizeof r.msg, "run returned %d%s: %s", rc, note, err);
    } else if (fp_changed(fp0, q->flags, r.msg, sizeof r.msg)) {
        r.type = KB__REP_FAIL;
        r.code = -1;
    } else {
        r.type = KB__REP_OK;
    }
    reply(&r);
    /* A fresh group serves one batch; after it, none is in reach. */
    if (k->probe) {
        munmap(k->probe, k->probe_size);
        k->probe = NULL;
        k->probe_group = -1;
    }
}

/* The timed sets, after prepare: prepare has returned and no plugin code
 * runs between requests, so the plugin meets them first in a timed call. */
static void do_inputs(const kb__req *q, int fd)
{
    if (q->slot >= KB__MAX_CASES || !W.cases[q->slot].ready || fd < 0 || W.cases[q->slot].calls) {
        reply_code(KB__REP_REFUSED, -1, "bad inputs request");
        return;
    }
    kb__wcase *k = &W.cases[q->slot];
    const kb__layout *L = &k->layout;
    void *m = mmap(NULL, L->calls_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        char err[160];
        snprintf(err, sizeof err, "cannot map inputs: %s", strerror(errno));
        reply_code(KB__REP_REFUSED, -1, err);
        return;
    }
    k->calls = m;
    k->calls_size = L->calls_size;
    mprotect(k->ins, k->ins_size, PROT_READ | PROT_WRITE);
    for (uint32_t r = 0; r < L->n_reps; r++)
        for (int s = 0; s < KB__SETS; s++)
            for (uint32_t i = 0; i < L->n_calls; i++) {
                const uint32_t bi = L->n_statics + i;
                k->ins[r * KB__SETS + s][i] =
                    (kb_buffer){k->calls + L->buf[bi].off[s] + r * L->rep_stride, L->buf[bi].count,
                                0, L->buf[bi].dtype, 0};
            }
    mprotect(k->ins, k->ins_size, PROT_READ);
    reply_code(KB__REP_OK, 0, NULL);
}

static void do_release(const kb__req *q)
{
    if (q->slot >= KB__MAX_CASES || !W.cases[q->slot].ready) {
        reply_code(KB__REP_REFUSED, -1, "bad release request");
        return;
    }
    kb__wcase *k = &W.cases[q->slot];
    W.lib.plugin->release(k->state);
    unmap_case(k);
    reply_code(KB__REP_OK, 0, NULL);
}

int kb__worker_main(int sock)
{
    W.sock = sock;
    W.page = sysconf(_SC_PAGESIZE);
    W.base_threads = count_threads();
    install_fault_handler();
    (void)lock_down(sock);
    static kb__req q; /* large: keep it off the stack */
    for (;;) {
        int fds[2] = {-1, -1};
        char cbuf[CMSG_SPACE(sizeof(int) * 2)];
        struct iovec iov = {&q, sizeof q};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t n;
        block_signals();
        do n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n > 0 && q.type != KB__REQ_BATCH) unblock_signals();
        if (n <= 0) return n == 0 ? 0 : 1; /* host gone: nothing to report to */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                memcpy(fds, CMSG_DATA(c), (nfd > 2 ? 2 : nfd) * sizeof(int));
            }
        if ((size_t)n != sizeof q || q.magic != KB__PROTO_MAGIC) return 2;
        if (W.seq == 0) W.nonce = q.nonce; /* the first request sets it */
        if (q.nonce != W.nonce) return 2;
        W.seq = q.seq;
        switch (q.type) {
        case KB__REQ_LOAD:
            q.path[sizeof q.path - 1] = 0;
            do_load(fds[0], q.path, &q.foreign);
            break;
        case KB__REQ_CASE:
            do_case(&q, fds[0], fds[1]);
            fds[0] = fds[1] = -1;
            break;
        case KB__REQ_BATCH: do_batch(&q, &fds[0]); break;
        case KB__REQ_RELEASE: do_release(&q); break;
        case KB__REQ_INPUTS: do_inputs(&q, fds[0]); break;
        case KB__REQ_QUIT:
            reply_code(KB__REP_OK, 0, NULL);
            if (KB__ASAN) {
                fflush(NULL);
                _exit(0);
            }
            return 0; /* exit handlers and the plugin's destructors run, confined */
        default: reply_code(KB__REP_REFUSED, -1, "unknown request"); break;
        }
        /* fds[0] of LOAD stays open: dlopen keeps using the path. */
        if (q.type != KB__REQ_LOAD && q.type != KB__REQ_CASE)
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0) close(fds[i]);
    }
}
