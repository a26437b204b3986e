/*
 * kb_bg.h -- for tests of long-lived kbench commands (watch, serve): start the
 * built kbench in the background with its stdout on a pipe, read its output
 * line by line under a deadline, signal it and collect its exit code.
 * Header-only, in the style of kb_run.h; include after it.
 */
#ifndef KB_BG_H
#define KB_BG_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

typedef struct kb_bg {
    pid_t pid;
    int out; /* its stdout, non-blocking */
    char buf[1 << 20];
    size_t len;
} kb_bg;

static inline uint64_t kb_bg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Starts build/kbench with a NULL-terminated argv (argv[0] is ignored);
 * stderr goes to `err_path` (or is inherited when NULL). */
static inline void kb_bg_start(kb_bg *b, char *const argv[], const char *err_path)
{
    int po[2];
    if (pipe(po)) abort();
    memset(b, 0, sizeof *b);
    b->pid = fork();
    if (b->pid == 0) {
        dup2(po[1], 1);
        close(po[0]);
        close(po[1]);
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) dup2(fd, 2);
        }
        kb_exec_kbench(argv);
        _exit(127);
    }
    close(po[1]);
    b->out = po[0];
    fcntl(b->out, F_SETFL, O_NONBLOCK);
}

/* The next line of its stdout (without the newline) in `line`, waiting up to
 * timeout_ms. 1: got one; 0: timed out; -1: its stdout closed. */
static inline int kb_bg_line(kb_bg *b, char *line, size_t cap, int timeout_ms)
{
    const uint64_t end = kb_bg_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *nl = memchr(b->buf, '\n', b->len);
        if (nl) {
            size_t n = (size_t)(nl - b->buf);
            size_t k = n < cap - 1 ? n : cap - 1;
            memcpy(line, b->buf, k);
            line[k] = 0;
            memmove(b->buf, nl + 1, b->len - n - 1);
            b->len -= n + 1;
            return 1;
        }
        uint64_t now = kb_bg_now_ms();
        if (now >= end) return 0;
        struct pollfd p = {b->out, POLLIN, 0};
        if (poll(&p, 1, (int)(end - now)) <= 0) continue;
        ssize_t r = read(b->out, b->buf + b->len, sizeof b->buf - 1 - b->len);
        if (r == 0) return -1;
        if (r > 0) b->len += (size_t)r;
    }
}

/* Waits up to timeout_ms for the file at `path` (its stderr, say) to
 * contain `needle`: a readiness line, where a sleep would only guess.
 * 1: found; 0: not within the time. */
static inline int kb_bg_wait_file(const char *path, const char *needle, int timeout_ms)
{
    const uint64_t end = kb_bg_now_ms() + (uint64_t)timeout_ms;
    char buf[65536];
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            if (strstr(buf, needle)) return 1;
        }
        if (kb_bg_now_ms() >= end) return 0;
        usleep(5000);
    }
}

/* Sends sig and waits up to timeout_ms for it to exit: its exit code, 128 +
 * signal, or -1 if it is still running (it is then killed). */
static inline int kb_bg_stop(kb_bg *b, int sig, int timeout_ms)
{
    if (b->pid <= 0) return -1;
    if (sig) kill(b->pid, sig);
    const uint64_t end = kb_bg_now_ms() + (uint64_t)timeout_ms;
    int st = 0, rc = -1;
    for (;;) {
        pid_t w = waitpid(b->pid, &st, WNOHANG);
        if (w == b->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (kb_bg_now_ms() >= end) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    close(b->out);
    b->pid = -1;
    return rc;
}

/* Copies a file (to a temporary beside dst, then renames over dst when
 * `rename_over`; else rewrites dst in place, truncating it first). Writes only
 * the first `limit` bytes when limit > 0 (a half-written build). */
static inline void kb_bg_put(const char *src, const char *dst, int rename_over, long limit)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", dst, (int)getpid());
    FILE *in = fopen(src, "rb");
    if (!in) abort();
    FILE *out = fopen(rename_over ? tmp : dst, "wb");
    if (!out) abort();
    char buf[65536];
    size_t n;
    long total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (limit > 0 && total + (long)n > limit) n = (size_t)(limit - total);
        fwrite(buf, 1, n, out);
        total += (long)n;
        if (limit > 0 && total >= limit) break;
    }
    fclose(in);
    if (fclose(out) != 0) abort();
    if (rename_over && rename(tmp, dst) != 0) abort();
}

#endif
