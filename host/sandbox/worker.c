/*
 * worker.c -- the disposable process that loads one plugin and runs it.
 *
 * Started by kb__worker_spawn as `kbench __worker FD` (a fresh exec, so no
 * host memory, no oracle and no oracle outputs are mapped here). It trusts
 * nothing it loads: the host re-checks everything it reports, times every
 * batch with its own clock, and reads outputs from shared memory itself.
 * The harness's only jobs are to call the plugin as asked and to say, if it
 * can, where a fault happened.
 *
 * This file: replies, fault reports and the lock-down; worker_main.c reads
 * requests and hands each to its part (worker_load.c, worker_case.c,
 * worker_batch.c).
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

#include "worker.h"

void kb__wk_reply_code(uint32_t type, int code, const char *msg)
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
static void say_raw(const char *msg)
{
    static kb__rep r; /* static: no large frame on the alternate stack */
    memset(&r, 0, sizeof r);
    r.type = KB__REP_FAULT;
    kb__put_str(r.msg, 0, sizeof r.msg, msg);
    reply(&r);
}

static void say_fault(const char *what, const char *name)
{
    static char m[512];
    size_t n = kb__put_str(m, 0, 240, what);
    if (name) {
        n = kb__put_str(m, n, sizeof m, " '");
        n = kb__put_str(m, n, 480, name);
        n = kb__put_str(m, n, sizeof m, "'");
    }
    m[n] = 0;
    say_raw(m);
}

/* Address space in use and its limit, in bytes (0 when unknown). Reads
 * /proc/self/statm with plain system calls: callable from a handler. */
void kb__wk_vm_usage(uint64_t *used, uint64_t *limit)
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
    kb__wk_vm_usage(&used, &limit);
    if (!limit || used + (256u << 20) < limit) return 0;
    static char m[256];
    size_t n = kb__put_str(m, 0, sizeof m, "ran into its memory limit (");
    n = kb__put_u64(m, n, sizeof m, used >> 20);
    n = kb__put_str(m, n, sizeof m, " MiB of address space in use, limit ");
    n = kb__put_u64(m, n, sizeof m, limit >> 20);
    n = kb__put_str(m, n, sizeof m, " MiB) and then faulted: an allocation failed unchecked?");
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
    size_t n = kb__put_str(m, 0, sizeof m, "made a forbidden system call: ");
    n = kb__put_str(m, n, sizeof m, desc);
    m[n] = 0;
    say_raw(m);
    _exit(125);
}

void kb__wk_install_fault_handler(void)
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

int kb__wk_lock_down(int sock)
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
    /* Under an emulator (KB_WORKER_EXEC_PREFIX, see spawn.c) a filter
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
