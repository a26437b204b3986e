/*
 * sandbox.h -- host side of a worker: spawn it locked down, talk to it
 * under a deadline, and turn its death into a verdict.
 */
#ifndef KB_SANDBOX_H
#define KB_SANDBOX_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "kb.h"
#include "proto.h"

typedef struct kb__limits {
    uint64_t as_bytes;     /* RLIMIT_AS of the worker */
    uint32_t cpu_seconds;  /* RLIMIT_CPU: a backstop behind the host's deadlines */
    int cpu;               /* pin to this CPU; -1: do not pin */
} kb__limits;

/* How a worker failed, as a verdict. */
typedef struct kb__failure {
    kb__status status;     /* crash, timeout or rejected */
    char reason[512];
} kb__failure;

typedef struct kb__worker {
    pid_t pid;
    int sock;
    int out_rd;            /* the worker's stdout+stderr, captured */
    uint64_t nonce, seq;
    const char *label;     /* "candidate", "baseline" */
    char captured[8192];   /* first bytes the plugin printed */
    size_t n_captured;
    uint64_t captured_total;
    int reaped;
    int wstatus;
    struct rusage ru;
    char fault[512];       /* last words of the harness's fault handler */
} kb__worker;

int kb__worker_spawn(kb__worker *w, const char *exe, const char *label, const kb__limits *lim,
                     char *err, size_t err_len);

/* Sends q with up to two fds, waits up to timeout_s for its reply. Returns 0
 * and fills rep (of any type: OK, FAIL, REFUSED) and *host_ns, the host's
 * own measure of the round trip. On death, timeout or a forged or malformed
 * reply: kills the worker's process group, fills fail and returns
 * KB__ECHILD. `what` names the phase for the message ("run of case X"). */
int kb__worker_call(kb__worker *w, kb__req *q, const int *fds, int nfds, kb__rep *rep,
                    double timeout_s, uint64_t *host_ns, kb__failure *fail, const char *what);

/* Asks the worker to exit and reaps it; a worker that does not exit cleanly
 * within timeout_s fails (a plugin that crashes or exits in release). */
int kb__worker_quit(kb__worker *w, double timeout_s, kb__failure *fail);

/* SIGKILL the whole process group and reap. Idempotent. */
void kb__worker_kill(kb__worker *w);

uint64_t kb__now_ns(void);

#endif /* KB_SANDBOX_H */
