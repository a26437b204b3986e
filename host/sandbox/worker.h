/*
 * worker.h -- what the parts of the worker share (worker_main.c: the
 * request loop; worker.c: replies, fault reports and the lock-down;
 * worker_load.c: loading the plugin; worker_case.c: a case's memory,
 * prepare and verify; worker_batch.c: timed batches). Only the worker
 * process uses them.
 */
#ifndef KB_WORKER_H
#define KB_WORKER_H

#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kb.h"
#include "proto.h"
#include "sandbox.h"

/* Descriptor rows: replica r of set s is row r * KB__SETS + s, fresh set
 * KB__SETS + p is row n_reps * KB__SETS + p; with one replica (a warm
 * target) a set's row is its index. */
static inline size_t ins_bytes(uint32_t n_reps)
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

/* The worker's whole state: one process serves one plugin. */
struct kb__wk {
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
};
extern struct kb__wk kb__wk;
/* Every part of the worker reads and writes the one state as W. */
#define W kb__wk

/* The helpers below run inside or next to timed intervals, so they are
 * defined here, where every part of the worker can inline them. */

/* The system call, not the vDSO: a plugin that moves or unmaps the vDSO
 * should break only its own clock. (The host decides nothing by this
 * reading; it is a cross-check and sizes batches.) */
static inline uint64_t now_ns(void)
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
static inline void block_signals(void)
{
    if (W.blocked || !W.hold_signals) return;
    sigset_t all;
    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &W.plugin_mask) == 0) W.blocked = 1;
}

static inline void unblock_signals(void)
{
    if (W.blocked) sigprocmask(SIG_SETMASK, &W.plugin_mask, NULL);
    W.blocked = 0;
}

static inline void reply(kb__rep *r)
{
    r->magic = KB__PROTO_MAGIC;
    r->nonce = W.nonce;
    r->seq = W.seq;
    block_signals();
    while (send(W.sock, r, sizeof *r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

/* The start message of a batch, on its own channel (see KB__REQF_STARTED). */
static inline void announce_start(void)
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

/* ---- floating-point control state ------------------------------------
 * Rounding mode, flush-to-zero, denormals-are-zero and exception masks,
 * without the sticky exception flags (any arithmetic sets those). */
typedef struct kb__fpctl {
    uint32_t sse; /* MXCSR without flags; FPCR on arm64; fegetround() elsewhere */
    uint32_t x87; /* x87 control word; 0 elsewhere */
} kb__fpctl;

static inline kb__fpctl fp_read(void)
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

/* The host's services handed to the plugin (worker_load.c). */
extern kb_host kb__wk_host;

void kb__wk_reply_code(uint32_t type, int code, const char *msg);
/* Address space in use and the limit on it (0 when unlimited). */
void kb__wk_vm_usage(uint64_t *used, uint64_t *limit);
uint64_t kb__wk_count_threads(void);
int kb__wk_fp_changed(kb__fpctl before, uint32_t req_flags, char *msg, size_t len);
void kb__wk_nomem_note(int rc, char *note, size_t len);

/* Before any request (worker.c): handlers that name a fault, and the
 * lock-down (no privileges, the system-call filter); 0, or W.sandbox_err
 * filled, and LOAD is then refused. */
void kb__wk_install_fault_handler(void);
int kb__wk_lock_down(int sock);

/* The requests (proto.h), one function each; each replies itself. */
void kb__wk_do_load(int fd, const char *shown, const kb__fplan *foreign);
void kb__wk_do_case(const kb__req *q, int arena_fd, int out_fd);
void kb__wk_do_inputs(const kb__req *q, int fd);
void kb__wk_do_release(const kb__req *q);
void kb__wk_do_batch(const kb__req *q, int *fresh_fd);

#endif /* KB_WORKER_H */
