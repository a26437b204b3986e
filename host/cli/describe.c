/*
 * describe.c -- what a `kbench watch` round changed, in words (describe.h).
 *
 * Every rebuild is its own experiment, so its ledger line needs its own
 * description. The words come from the user's --describe-cmd, else from git
 * (the commit's subject and how far the work tree has moved from it), else
 * from the round's number. A describer runs before the trial, never during
 * it (it would take CPU from the timed batches), in its own process group,
 * and is killed with that group when it overstays KB__DESCRIBE_TIMEOUT_S: a
 * hung command costs one round that long, never the watch.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "describe.h"
#include "kb.h"

/* Child side: the process group, stdio, cwd and environment, then exec. */
static void child_exec(char *const argv[], const char *dir, const char *cand, int out_fd, int quiet)
{
    setpgid(0, 0);
    dup2(out_fd, 1);
    const int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, 0);
        if (quiet) dup2(nul, 2);
    }
    if (chdir(dir) != 0) _exit(126);
    setenv("KBENCH_CANDIDATE", cand, 1);
    execvp(argv[0], argv);
    _exit(127);
}

/* Reads the child's stdout into out until EOF or the deadline; 1 when the
 * deadline came first. */
static int read_until(int fd, uint64_t end_ns, char *out, size_t out_len)
{
    size_t n = 0;
    for (;;) {
        const uint64_t now = kb__now_ns();
        if (now >= end_ns) return 1;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, (int)((end_ns - now) / 1000000u) + 1) <= 0) continue;
        char buf[512];
        const ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        const size_t take = n + (size_t)k < out_len ? (size_t)k : out_len - 1 - n;
        memcpy(out + n, buf, take);
        n += take;
        out[n] = 0;
    }
}

/* Waits for pid until the deadline, then kills its group; its wait status,
 * or -1 when it had to be killed. */
static int reap(pid_t pid, uint64_t end_ns)
{
    int st = 0;
    for (;;) {
        const pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return st;
        if (w < 0 && errno != EINTR) return -1;
        if (kb__now_ns() >= end_ns) break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return -1;
}

/* Runs argv in dir; its stdout (cut to out_len - 1 bytes) in out. 0 when it
 * exited 0 in time, else -1 and why in err. */
static int run_capture(char *const argv[], const char *dir, const char *cand, int quiet, char *out,
                       size_t out_len, char *err, size_t err_len)
{
    int p[2];
    out[0] = 0;
    if (pipe2(p, O_CLOEXEC) != 0) {
        kb__errf(err, err_len, "pipe: %s", strerror(errno));
        return -1;
    }
    const pid_t pid = fork();
    if (pid == 0) child_exec(argv, dir, cand, p[1], quiet);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        kb__errf(err, err_len, "fork: %s", strerror(errno));
        return -1;
    }
    setpgid(pid, pid); /* also here: the group must exist before a kill */
    const uint64_t end = kb__now_ns() + (uint64_t)KB__DESCRIBE_TIMEOUT_S * 1000000000u;
    const int late = read_until(p[0], end, out, out_len);
    close(p[0]);
    const int st = late ? (kill(-pid, SIGKILL), reap(pid, 0)) : reap(pid, end);
    if (late || st < 0) {
        kb__errf(err, err_len, "timed out after " KB__DESCRIBE_TIMEOUT_TXT " s and was killed");
        return -1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (WIFEXITED(st))
        kb__errf(err, err_len, "exited %d%s", WEXITSTATUS(st),
                 WEXITSTATUS(st) == 127 ? " (command not found?)" : "");
    else
        kb__errf(err, err_len, "killed by signal %d", WTERMSIG(st));
    return -1;
}

/* The first line of s, control characters as spaces, outer blanks gone. */
static void first_line(char *s)
{
    s[strcspn(s, "\r\n")] = 0;
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    size_t lead = strspn(s, " "), n = strlen(s);
    while (n > lead && s[n - 1] == ' ') n--;
    memmove(s, s + lead, n - lead);
    s[n - lead] = 0;
}

/* Whether dir or a directory above it holds .git (or $GIT_DIR is set): a
 * few stat calls, so a candidate outside any repository costs no git
 * process on every round. */
static int in_git_tree(const char *dir)
{
    const char *gd = getenv("GIT_DIR");
    if (gd && *gd) return 1;
    char p[4096 + 8];
    if (!realpath(dir, p)) return 0;
    for (;;) {
        const size_t n = strlen(p);
        struct stat st;
        snprintf(p + n, sizeof p - n, "%s.git", n > 1 ? "/" : "");
        if (stat(p, &st) == 0) return 1;
        p[n] = 0;
        char *slash = strrchr(p, '/');
        if (!slash || n <= 1) return 0;
        slash[slash == p ? 1 : 0] = 0;
    }
}

/* "<subject> (<shortstat>|no uncommitted change)" when dir is in a git
 * work tree with a commit; "" otherwise. */
static void git_words(const char *dir, const char *cand, char *out, size_t out_len)
{
    char subj[256], stat[256], e[128];
    /* Only git's own reading: no fsmonitor hook, external diff or
     * textconv program named by the repository's config. */
    char *const log[] = {"git", "-c", "core.fsmonitor=false", "log", "-1", "--format=%s", NULL};
    char *const diff[] = {"git",
                          "-c",
                          "core.fsmonitor=false",
                          "diff",
                          "--no-ext-diff",
                          "--no-textconv",
                          "--shortstat",
                          "HEAD",
                          NULL};
    out[0] = 0;
    if (!in_git_tree(dir)) return;
    if (run_capture(log, dir, cand, 1, subj, sizeof subj, e, sizeof e) != 0) return;
    first_line(subj);
    if (run_capture(diff, dir, cand, 1, stat, sizeof stat, e, sizeof e) != 0) stat[0] = 0;
    first_line(stat);
    snprintf(out, out_len, "%s (%s%s)", subj[0] ? subj : "(no subject)",
             stat[0] ? "uncommitted: " : "no uncommitted change", stat);
}

void kb__describe_round(const char *cand, const char *cmd, const char *prefix, uint64_t round,
                        char *out, size_t out_len, char *err, size_t err_len)
{
    char dir[4096], words[512] = "", git[512];
    snprintf(dir, sizeof dir, "%s", cand);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    err[0] = 0;
    if (cmd && *cmd) {
        char *const sh[] = {"/bin/sh", "-c", (char *)cmd, NULL};
        if (run_capture(sh, dir, cand, 0, words, sizeof words, err, err_len) == 0) {
            first_line(words);
            if (!words[0]) kb__errf(err, err_len, "printed nothing");
        } else {
            words[0] = 0;
        }
    }
    if (!words[0]) {
        git_words(dir, cand, git, sizeof git);
        snprintf(words, sizeof words, "%s%sround %llu", git, git[0] ? "; " : "",
                 (unsigned long long)round);
    }
    if (prefix && *prefix)
        snprintf(out, out_len, "%s: %s", prefix, words);
    else
        snprintf(out, out_len, "%s", words);
}
