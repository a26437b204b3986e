/*
 * channel.c -- talk to a worker under a deadline and classify its end: one
 * request, one reply on the private channel (proto.h), the batch's time from
 * the kernel's stamps, and a death turned into a verdict.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t kb__worker_cpu_ns(const kb__worker *w)
{
    struct timespec ts;
    if (!w->have_cpu_clock || clock_gettime(w->cpu_clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Threads of the worker as the host sees them: a plugin can fool the
 * harness's own count, not the kernel's. */
static uint64_t worker_threads(const kb__worker *w)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)w->pid);
    DIR *d = opendir(path);
    uint64_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Bytes of address space the worker has mapped now (0 if unknown). */
static uint64_t worker_vm_bytes(const kb__worker *w)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)w->pid);
    FILE *f = fopen(path, "r");
    unsigned long long pages = 0;
    if (!f) return 0;
    if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%llu", &pages) != 1) pages = 0;
    fclose(f);
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Before a case is prepared: the worker may map what it has, this case's
 * inputs and outputs, and KB__MEM_HEADROOM more. Only the soft limit moves
 * (the hard one, set at spawn, caps it), and the worker's filter forbids
 * setting limits, so the plugin cannot raise it. */
static void set_memory_limit(kb__worker *w, const kb__layout *L)
{
    if (KB__ASAN) return;
    struct rlimit cur;
    if (prlimit(w->pid, RLIMIT_AS, NULL, &cur) != 0) return;
    const uint64_t vm = worker_vm_bytes(w);
    if (!vm) return;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t want = vm + L->arena_size + L->calls_size + L->out_size +
                    (uint64_t)(L->n_outs + 1) * page + KB__MEM_HEADROOM;
    if (cur.rlim_max != RLIM_INFINITY && want > cur.rlim_max) want = cur.rlim_max;
    struct rlimit nl = {want, cur.rlim_max};
    prlimit(w->pid, RLIMIT_AS, &nl, NULL);
}

static void drain_output(kb__worker *w)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(w->out_rd, buf, sizeof buf);
        if (n <= 0) return;
        size_t room = sizeof w->captured - 1 - w->n_captured;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(w->captured + w->n_captured, buf, take);
        w->n_captured += take;
        w->captured[w->n_captured] = 0;
        w->captured_total += (uint64_t)n;
    }
}

/* One look whether the worker has exited, without blocking; when it has
 * not, a millisecond's sleep. 1 once it is reaped. */
static int reaped_or_sleep(kb__worker *w)
{
    if (wait4(w->pid, &w->wstatus, WNOHANG, &w->ru) == w->pid) return w->reaped = 1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return 0;
}

static void reap(kb__worker *w, int wait_ms)
{
    if (w->reaped || w->pid <= 0) return;
    /* Give a dying worker a moment so its own signal, not our SIGKILL,
     * is what we report. */
    for (int i = 0; i < wait_ms; i++)
        if (reaped_or_sleep(w)) break;
    kill(-w->pid, SIGKILL); /* the group: grandchildren too */
    if (!w->reaped) {
        kill(w->pid, SIGKILL);
        if (wait4(w->pid, &w->wstatus, 0, &w->ru) == w->pid) w->reaped = 1;
    }
    if (w->out_rd >= 0) drain_output(w);
}

void kb__worker_kill(kb__worker *w)
{
    if (w->pid > 0 && !w->reaped) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL);
        reap(w, 0);
    }
    if (w->sock >= 0) close(w->sock);
    if (w->start_sock >= 0) close(w->start_sock);
    if (w->out_rd >= 0) close(w->out_rd);
    if (w->stat_fd >= 0) close(w->stat_fd);
    w->sock = w->start_sock = w->out_rd = w->stat_fd = -1;
}

/* A worker that dies after its last reply (in exit handlers, destructors)
 * may still have sent the harness's fault report: read it. */
static void read_last_words(kb__worker *w)
{
    kb__rep rep;
    while (!w->fault[0]) {
        ssize_t n = recv(w->sock, &rep, sizeof rep, MSG_DONTWAIT);
        if (n != (ssize_t)sizeof rep) return;
        if (rep.magic == KB__PROTO_MAGIC && rep.nonce == w->nonce && rep.type == KB__REP_FAULT) {
            rep.msg[sizeof rep.msg - 1] = 0;
            kb__errf(w->fault, sizeof w->fault, "%s", rep.msg);
        }
    }
}

static void describe_death(kb__worker *w, kb__failure *f, const char *what)
{
    if (w->fault[0]) {
        f->status = KB__ST_REJECTED;
        kb__errf(f->reason, sizeof f->reason, "%s %s during %s", w->label, w->fault, what);
        return;
    }
    if (WIFSIGNALED(w->wstatus)) {
        int sig = WTERMSIG(w->wstatus);
        if (sig == SIGSYS) { /* the filter killed it without the harness's report */
            f->status = KB__ST_REJECTED;
            kb__errf(f->reason, sizeof f->reason,
                     "%s made a forbidden system call (killed by SIGSYS) during %s", w->label,
                     what);
            return;
        }
        if (sig == SIGXCPU) {
            f->status = KB__ST_TIMEOUT;
            kb__errf(f->reason, sizeof f->reason, "%s exceeded its CPU time limit during %s",
                     w->label, what);
            return;
        }
        f->status = KB__ST_CRASH;
        const char *hint = sig == SIGILL ? ": it uses instructions this CPU lacks; declare them "
                                           "in cpu_features"
                                         : "";
        kb__errf(f->reason, sizeof f->reason, "%s killed by SIG%s (%s) during %s%s", w->label,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", strsignal(sig), what, hint);
        return;
    }
    f->status = KB__ST_CRASH;
    kb__errf(f->reason, sizeof f->reason, "%s exited with status %d during %s before reporting",
             w->label, WIFEXITED(w->wstatus) ? WEXITSTATUS(w->wstatus) : -1, what);
}

static int fail_with(kb__worker *w, kb__failure *f, kb__status st, const char *what,
                     const char *fmt, const char *detail)
{
    reap(w, 0);
    f->status = st;
    char tmp[400];
    snprintf(tmp, sizeof tmp, fmt, detail);
    kb__errf(f->reason, sizeof f->reason, "%s %s during %s", w->label, tmp, what);
    return KB__ECHILD;
}

/* One message and the kernel's stamp of its sending (CLOCK_REALTIME ns, 0
 * if none). Returns recv's result, or -2 if the worker sent descriptors
 * (closed here: nothing of a plugin's enters the host's table). */
static ssize_t recv_stamped(int sock, kb__rep *rep, uint64_t *stamp)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } cb;
    struct iovec iov = {rep, sizeof *rep};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof cb.buf};
    ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    int fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *stamp = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                close(fd);
            }
            fds = 1;
        }
    }
    return fds || (mh.msg_flags & MSG_CTRUNC) ? -2 : n;
}

/* Linux adds a running task's CPU time to the clock another process reads
 * only at a tick or when the task leaves the CPU (thread_group_cputime
 * skips other groups' pending runtime), so a worker read while it finishes
 * its reply reads up to a tick behind, and the missing part lands in the
 * next gap as idle CPU it never used (at a 0.06 ratio, 0.7 ms a gap: a
 * quarter of the baseline's wait, enough to end a trial inconclusive). Wait
 * up to KB__SETTLE_NS for the worker to block in its receive before reading
 * its clock; one still running then is read as it is: a late reading can
 * only make its gap look busier, never hide CPU. */
static void settle(const kb__worker *w)
{
    if (w->stat_fd < 0) return;
    const uint64_t until = kb__now_ns() + KB__SETTLE_NS;
    char buf[512];
    do {
        const ssize_t n = pread(w->stat_fd, buf, sizeof buf - 1, 0);
        if (n <= 0) return;
        buf[n] = 0;
        const char *p = strrchr(buf, ')'); /* the name may hold anything */
        if (!p || p[1] != ' ' || p[2] != 'R') return;
    } while (kb__now_ns() < until);
}

/* The batch time: the kernel's stamps from start message to reply when both
 * came and lie within the host's own reading (the stamps are wall-clock
 * time: a clock step makes them useless, never harmful), else the host's
 * reading. The worker blocks every signal from a reply to the next start
 * message, so no plugin code should run outside the stamps; the CPU it used
 * beyond them is kept in last_excess, for measure.c to compare. */
static uint64_t batch_ns(kb__worker *w, uint64_t host, uint64_t st_start, uint64_t st_end,
                         uint64_t cpu_sent)
{
    w->last_excess = 0;
    if (st_start <= 1 || st_end <= st_start || st_end - st_start > host) return host;
    const uint64_t ns = st_end - st_start, cpu = kb__worker_cpu_ns(w);
    if (cpu_sent && cpu >= cpu_sent) w->last_excess = (int64_t)(cpu - cpu_sent) - (int64_t)ns;
    return ns;
}

double kb__idle_cpu_per_gap_allowed(const kb__worker *base)
{
    return 2.0 * (double)base->idle_cpu_ns / (double)base->idle_gaps + KB__IDLE_CPU_PER_GAP_NS;
}

void kb__idle_cpu_fail(const kb__worker *w, kb__status status, const char *bound, kb__failure *fail)
{
    fail->status = status;
    kb__errf(fail->reason, sizeof fail->reason,
             "%s used CPU outside timed calls: %.1f ms while it waited %.1f ms in %llu gaps "
             "between calls %s",
             w->label, w->idle_cpu_ns / 1e6, w->idle_wall_ns / 1e6,
             (unsigned long long)w->idle_gaps, bound);
}

/* Between a reply and the next request nothing of the plugin's should
 * run: adds the gap that ends now to the worker's idle totals. 1 (fail
 * filled, the worker killed) when its idle CPU is over the backstop
 * (KB__IDLE_CPU_BACKSTOP_* in sandbox.h says why each side's bound is what
 * it is). */
static int idle_over_backstop(kb__worker *w, kb__failure *fail, const char *what)
{
    const uint64_t cpu = kb__worker_cpu_ns(w), wall = kb__now_ns();
    if (cpu > w->gap_cpu0) w->idle_cpu_ns += cpu - w->gap_cpu0;
    w->idle_wall_ns += wall - w->gap_wall0;
    w->idle_gaps++;
    w->in_gap = 0;
    /* Where timing cannot be trusted (an emulator's own translation work
     * lands in these gaps: 8 ms after faiss.so's load reply under
     * qemu-x86_64) the backstop would only end `info` and `verify`, which
     * time nothing; a trial's own check at the end of timing (check_idle)
     * still sees the total, and makes it inconclusive (trust.c). */
    if (kb__timing_untrusted(NULL)) return 0;
    double per_gap = KB__IDLE_CPU_BACKSTOP_PER_GAP_NS;
    const kb__worker *ref = w->idle_ref;
    if (ref && ref->idle_gaps) {
        const double rel = kb__idle_cpu_per_gap_allowed(ref);
        if (rel > per_gap) per_gap = rel;
    }
    double allow = KB__IDLE_CPU_BACKSTOP_NS + per_gap * (double)w->idle_gaps;
    const double share = KB__IDLE_CPU_BASELINE_SHARE * (double)w->idle_wall_ns;
    if (w->idle_is_baseline && share > allow) allow = share;
    if ((double)w->idle_cpu_ns <= allow) return 0;
    reap(w, 0);
    const int base = w->idle_is_baseline;
    char bound[sizeof fail->reason];
    snprintf(bound, sizeof bound, "(allowed: %.1f ms), seen before %s; %s", allow / 1e6, what,
             base ? "the timing cannot be trusted: run the trial again on a quieter machine"
                  : "work only inside prepare and run");
    kb__idle_cpu_fail(w, base ? KB__ST_INCONCLUSIVE : KB__ST_REJECTED, bound, fail);
    fail->status = kb__timing_verdict(fail->status, fail->reason, sizeof fail->reason);
    return 1;
}

/* Sends q with up to two descriptors in one message. 0, or -1. */
static int send_request(kb__worker *w, kb__req *q, const int *fds, int nfds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 2)];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {q, sizeof *q};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(w->sock, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof *q ? 0 : -1;
}

/* Waits until `deadline` for one well-formed reply that is neither a fault
 * report (kept in w->fault: the worker's death follows) nor a start
 * message, draining the worker's output meanwhile. 0 with rep, *t1 (when
 * it was read) and *stamp (the kernel's stamp of its sending); else fail
 * filled, the worker killed, KB__ECHILD. */
static int await_reply(kb__worker *w, kb__rep *rep, uint64_t deadline, double timeout_s,
                       uint64_t *t1, uint64_t *stamp, kb__failure *fail, const char *what)
{
    for (;;) {
        uint64_t now = kb__now_ns();
        if (now >= deadline) {
            reap(w, 0);
            fail->status = KB__ST_TIMEOUT;
            kb__errf(fail->reason, sizeof fail->reason,
                     "%s gave no answer within %.1f s during %s; killed its process group",
                     w->label, timeout_s, what);
            return KB__ECHILD;
        }
        int ms = (int)((deadline - now) / 1000000u) + 1;
        struct pollfd pf[2] = {{w->sock, POLLIN, 0}, {w->out_rd, POLLIN, 0}};
        int pr = poll(pf, 2, ms);
        if (pr < 0 && errno != EINTR)
            return fail_with(w, fail, KB__ST_CRASH, what, "%s", "poll failed");
        if (pr <= 0) continue;
        if (pf[1].revents) drain_output(w);
        if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        *stamp = 0;
        ssize_t n = recv_stamped(w->sock, rep, stamp);
        *t1 = kb__now_ns();
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n == -2)
            return fail_with(w, fail, KB__ST_REJECTED, what, "%s",
                             "sent file descriptors on the private channel");
        if (n <= 0) { /* channel closed: the worker is dead or dying */
            reap(w, 200);
            describe_death(w, fail, what);
            return KB__ECHILD;
        }
        if ((size_t)n != sizeof *rep || rep->magic != KB__PROTO_MAGIC || rep->nonce != w->nonce)
            return fail_with(w, fail, KB__ST_REJECTED, what, "%s",
                             "sent a malformed or forged message on the private channel");
        rep->msg[sizeof rep->msg - 1] = 0;
        if (rep->type == KB__REP_FAULT) {
            kb__errf(w->fault, sizeof w->fault, "%s", rep->msg);
            continue; /* its death follows */
        }
        if (rep->type == KB__REP_STARTED)
            return fail_with(w, fail, KB__ST_REJECTED, what, "%s",
                             "sent a start message that was not asked for (forged timing)");
        return 0;
    }
}

/* The harness announces a start once, before the plugin runs, on the start
 * channel: anything else there is the plugin speaking. 0 with *st_start
 * (the kernel's stamp, 1 when it has none; 0 when no start came), or -1
 * for a forged or extra message. */
static int read_start(kb__worker *w, uint64_t seq, uint64_t *st_start)
{
    kb__rep sr;
    uint64_t s0 = 0;
    ssize_t m = recv_stamped(w->start_sock, &sr, &s0);
    if (m == (ssize_t)sizeof sr && sr.magic == KB__PROTO_MAGIC && sr.nonce == w->nonce &&
        sr.type == KB__REP_STARTED && sr.seq == seq)
        *st_start = s0 ? s0 : 1;
    else if (m >= 0 || m == -2)
        return -1;
    if (recv_stamped(w->start_sock, &sr, &s0) != -1 || errno != EAGAIN) return -1;
    return 0;
}

int kb__worker_call(kb__worker *w, kb__req *q, const int *fds, int nfds, kb__rep *rep,
                    double timeout_s, uint64_t *host_ns, kb__failure *fail, const char *what)
{
    q->magic = KB__PROTO_MAGIC;
    q->nonce = w->nonce;
    q->seq = ++w->seq;
    if (w->fpenv_free) q->flags |= KB__REQF_FPENV_FREE;
    if (w->in_gap && idle_over_backstop(w, fail, what)) return KB__ECHILD;
    if (q->type == KB__REQ_CASE) set_memory_limit(w, &q->layout);
    /* A batch is timed by the kernel's stamps of the worker's start message
     * and reply: the host's own send-to-read reading would include both
     * processes' wake-ups (tens of microseconds; milliseconds under load). */
    const int stamped = host_ns && w->stamps && q->type == KB__REQ_BATCH;
    if (stamped) q->flags |= KB__REQF_STARTED;
    const uint64_t cpu_sent = host_ns ? kb__worker_cpu_ns(w) : 0;
    const uint64_t t0 = kb__now_ns();
    const uint64_t deadline = t0 + (uint64_t)(timeout_s * 1e9);
    if (send_request(w, q, fds, nfds) != 0) {
        reap(w, 100);
        describe_death(w, fail, what);
        return KB__ECHILD;
    }
    uint64_t t1 = 0, st_start = 0, st_end = 0;
    int rc = await_reply(w, rep, deadline, timeout_s, &t1, &st_end, fail, what);
    if (rc != 0) return rc;
    settle(w);
    if (stamped && read_start(w, q->seq, &st_start) != 0)
        return fail_with(w, fail, KB__ST_REJECTED, what, "%s",
                         "sent a start message that was not asked for (forged timing)");
    if (rep->seq != q->seq)
        return fail_with(w, fail, KB__ST_REJECTED, what, "%s",
                         "answered a request that was not asked (sequence mismatch)");
    if (host_ns) *host_ns = batch_ns(w, t1 - t0, st_start, st_end, cpu_sent);
    if (rep->type == KB__REP_OK && !kb__worker_emulated()) {
        const uint64_t n = worker_threads(w);
        if (n > rep->threads) rep->threads = n;
    }
    w->gap_cpu0 = kb__worker_cpu_ns(w);
    w->gap_wall0 = kb__now_ns();
    w->in_gap = w->have_cpu_clock;
    return 0;
}

int kb__worker_quit(kb__worker *w, double timeout_s, kb__failure *fail)
{
    kb__req *q = calloc(1, sizeof *q);
    kb__rep rep;
    if (!q) return KB__ENOMEM;
    q->type = KB__REQ_QUIT;
    int rc = kb__worker_call(w, q, NULL, 0, &rep, timeout_s, NULL, fail, "shutdown");
    free(q);
    if (rc != 0) return rc;
    /* It said goodbye; it must now exit 0 on its own. */
    uint64_t deadline = kb__now_ns() + (uint64_t)(timeout_s * 1e9);
    while (!w->reaped && kb__now_ns() < deadline) reaped_or_sleep(w);
    if (!w->reaped) {
        reap(w, 0);
        fail->status = KB__ST_TIMEOUT;
        kb__errf(fail->reason, sizeof fail->reason, "%s did not exit after shutdown", w->label);
        return KB__ECHILD;
    }
    kill(-w->pid, SIGKILL); /* anything it left behind in its group */
    drain_output(w);
    if (!WIFEXITED(w->wstatus) || WEXITSTATUS(w->wstatus) != 0) {
        read_last_words(w);
        describe_death(w, fail, "shutdown");
        return KB__ECHILD;
    }
    return 0;
}
