/*
 * ledger.c -- results.tsv: one line per trial, appended, never rewritten.
 *
 * Several trials (an agent running candidates in parallel) may append to the
 * same file at once. Each line goes out in a single write(2) on an O_APPEND
 * descriptor while holding an exclusive flock, so lines never interleave and
 * the header is written exactly once, by whoever finds the file empty under
 * the lock. kb__ledger_format is the only place that knows a line's format
 * (ledger.h lists the columns; docs/results.md says how they grow).
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"

#ifndef KB_VERSION
#define KB_VERSION "unknown"
#endif

/* A copy of s with tabs, newlines and other control bytes turned into spaces,
 * so a field can never split the line or the columns. "n/a" when empty and
 * `na` is set. */
static void field(char *out, size_t out_len, const char *s, int na)
{
    if (na && (!s || !*s)) {
        snprintf(out, out_len, "n/a");
        return;
    }
    size_t i = 0;
    for (; s && s[i] && i + 1 < out_len; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    out[i] = '\0';
}

static void ratio(char *out, size_t out_len, int timed, double v)
{
    if (timed && isfinite(v))
        snprintf(out, out_len, "%.4f", v);
    else
        snprintf(out, out_len, "n/a");
}

/* Writes all of buf with one write(2); on a short write, cuts the file back
 * to `size` so no torn line is left for the next reader. */
static int write_line(int fd, const char *path, const char *buf, size_t len, off_t size, char *err,
                      size_t err_len)
{
    ssize_t n;
    do n = write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)len) return 0;
    int e = n < 0 ? errno : ENOSPC;
    if (n > 0 && ftruncate(fd, size) != 0) {
        kb__errf(err, err_len,
                 "%s: short write (%zd of %zu bytes) and could not cut the partial line "
                 "off (%s); the disk may be full: remove the last, incomplete line by hand",
                 path, n, len, strerror(errno));
        return KB__EIO;
    }
    if (n >= 0)
        kb__errf(err, err_len,
                 "%s: short write (%zd of %zu bytes), nothing was recorded; the disk may be "
                 "full",
                 path, n, len);
    else
        kb__errf(err, err_len, "%s: cannot append: %s%s", path, strerror(e),
                 e == ENOSPC || e == EDQUOT || e == EFBIG ? "; the disk may be full" : "");
    return KB__EIO;
}

int kb__ledger_header_version(const char *first_line)
{
    static const char v1[] = KB__LEDGER_HEADER_V1, v2[] = KB__LEDGER_COLUMNS_V2;
    if (!strcmp(first_line, v1)) return 1;
    size_t n = sizeof v2 - 1;
    if (!strncmp(first_line, v2, n) && (first_line[n] == '\n' || first_line[n] == '\t')) return 2;
    return 0;
}

/* The first line of an existing ledger (the bytes read from its start)
 * is this kbench's header, with env (*env = 1) or without (0); else err
 * says what it is and what to do. */
static int header_ok(const char *first, size_t n, const char *path, int *env, char *err,
                     size_t err_len)
{
    static const char header[] = KB__LEDGER_HEADER, older[] = KB__LEDGER_COLUMNS_V2 "\n";
    const size_t hlen = sizeof header - 1, olen = sizeof older - 1;
    *env = n >= hlen && memcmp(first, header, hlen) == 0;
    if (*env || (n >= olen && memcmp(first, older, olen) == 0)) return 0;
    const int v = kb__ledger_header_version(first);
    if (v != 0) {
        kb__errf(err, err_len,
                 "%s is %s; this kbench appends only to a v%d ledger: move it aside (mv %s "
                 "%s.v%d) or pass another --ledger file; kbench log reads both",
                 path,
                 v == 1 ? "a v1 ledger (an older kbench wrote it)" : "a ledger of a newer kbench",
                 KB__LEDGER_VERSION, path, path, v);
        return KB__ECORRUPT;
    }
    kb__errf(err, err_len,
             "%s: not a kbench ledger (first line is not the results.tsv header); pass another "
             "--ledger path",
             path);
    return KB__ECORRUPT;
}

int kb__ledger_check(const char *path, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return 0; /* a new ledger, or one kb__ledger_append will explain */
    char first[sizeof KB__LEDGER_HEADER + 1];
    ssize_t n = pread(fd, first, sizeof first - 1, 0);
    close(fd);
    if (n <= 0) return 0;
    first[n] = 0;
    char *nl = memchr(first, '\n', (size_t)n);
    if (nl) nl[1] = 0;
    int env;
    return header_ok(first, (size_t)n, path, &env, err, err_len);
}

/* Under the lock: an empty file gets the header; anything else must already
 * be a v2 ledger and end with a complete line. *env: its header has env. */
static int check_or_init(int fd, const char *path, off_t *size, int *env, char *err, size_t err_len)
{
    static const char header[] = KB__LEDGER_HEADER;
    const size_t hlen = sizeof header - 1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        kb__errf(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
        return KB__EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        kb__errf(err, err_len, "%s: not a regular file; pass a file path to --ledger", path);
        return KB__EUSAGE;
    }
    *size = st.st_size;
    *env = 1;
    if (st.st_size == 0) {
        int rc = write_line(fd, path, header, hlen, 0, err, err_len);
        if (rc == 0) *size = (off_t)hlen;
        return rc;
    }
    char first[sizeof header + 1];
    ssize_t n = pread(fd, first, sizeof first - 1, 0);
    if (n < 0) {
        kb__errf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
        return KB__EIO;
    }
    first[n] = 0;
    char *nl = memchr(first, '\n', (size_t)n);
    if (nl) nl[1] = 0;
    const int rc = header_ok(first, (size_t)n, path, env, err, err_len);
    if (rc != 0) return rc;
    char last;
    if (pread(fd, &last, 1, st.st_size - 1) != 1) {
        kb__errf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
        return KB__EIO;
    }
    if (last != '\n') {
        /* appending now would glue our line onto the broken one */
        kb__errf(err, err_len,
                 "%s: the last line is incomplete (no newline at the end); remove it or pass "
                 "another --ledger path",
                 path);
        return KB__ECORRUPT;
    }
    return 0;
}

/* A path as one rule writes it, whoever wrote the line: canonical and
 * absolute, or joined to the working directory when it no longer resolves
 * (a candidate deleted since its trial). */
static void canonical(const char *p, char *out, size_t out_len)
{
    char real[PATH_MAX], cwd[PATH_MAX];
    if (!p || !*p)
        snprintf(out, out_len, "%s", "");
    else if (realpath(p, real))
        snprintf(out, out_len, "%s", real);
    else if (p[0] == '/' || !getcwd(cwd, sizeof cwd) ||
             (size_t)snprintf(out, out_len, "%s/%s", cwd, p) >= out_len)
        snprintf(out, out_len, "%s", p);
}

/* A value of the env column: one field, and no ';' to split it. */
static size_t env_pair(char *out, size_t n, size_t len, const char *key, const char *v)
{
    char val[256];
    field(val, sizeof val, v, 1);
    for (char *p = val; *p; p++)
        if (*p == ';') *p = ',';
    if (n >= len) return n;
    const int w = snprintf(out + n, len - n, "%s%s=%s", n ? ";" : "", key, val);
    return w > 0 ? n + (size_t)w : n;
}

/* The env column: the machine's keys of the verdict block (but cpu_model
 * and kbench_version, which have columns of their own) as key=value;... */
static void env_column(const kb__env *e, char *out, size_t len)
{
    char load[32], steal[32];
    snprintf(load, sizeof load, isfinite(e->load_avg) ? "%.2f" : "n/a", e->load_avg);
    snprintf(steal, sizeof steal, isfinite(e->steal_pct) ? "%.1f" : "n/a", e->steal_pct);
    size_t n = 0;
    out[0] = 0;
    n = env_pair(out, n, len, "isa", e->isa);
    n = env_pair(out, n, len, "kernel", e->kernel);
    n = env_pair(out, n, len, "governor", e->governor);
    n = env_pair(out, n, len, "boost", e->boost);
    n = env_pair(out, n, len, "smt", e->smt);
    n = env_pair(out, n, len, "load_avg", load);
    n = env_pair(out, n, len, "steal_pct", steal);
    n = env_pair(out, n, len, "cpu_quota", e->cpu_quota);
    n = env_pair(out, n, len, "hypervisor", e->hypervisor);
    env_pair(out, n, len, "pti", e->pti);
}

int kb__ledger_format(const kb__result *r, const kb__best_info *bi, char *buf, size_t buf_len)
{
    return kb__ledger_format_at(r, bi, time(NULL), buf, buf_len);
}

int kb__ledger_format_at(const kb__result *r, const kb__best_info *bi, time_t when, char *buf,
                         size_t buf_len)
{
    char ts[32], target[sizeof r->target], cand[PATH_MAX], against[PATH_MAX], path[PATH_MAX];
    char digest[sizeof r->cand_digest], odigest[sizeof r->oracle_digest];
    char adigest[sizeof r->against_digest], commit[sizeof r->git_commit];
    char desc[sizeof r->description], cpu[256], mach[256], env[1024];
    char g[32], lo[32], hi[32], w[32], orat[32];
    struct tm tm;
    if (!gmtime_r(&when, &tm) || strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(ts, sizeof ts, "n/a");
    const int best = bi && bi->used, timed = kb__status_timed(r->status);
    const int vs_oracle = !r->against[0] || !strcmp(r->against, "oracle");
    canonical(r->candidate, path, sizeof path);
    field(cand, sizeof cand, path, 1);
    if (best && bi->had_best)
        snprintf(against, sizeof against, "best");
    else if (vs_oracle)
        snprintf(against, sizeof against, "oracle");
    else {
        canonical(r->against, path, sizeof path);
        field(against, sizeof against, path, 1);
    }
    field(target, sizeof target, r->target, 1);
    field(digest, sizeof digest, r->cand_digest, 1);
    field(odigest, sizeof odigest, r->oracle_digest, 1);
    field(adigest, sizeof adigest, r->against_digest, 1);
    field(commit, sizeof commit, r->git_commit, 1);
    field(desc, sizeof desc, r->description, 0);
    if (r->env.cpu_model[0])
        snprintf(cpu, sizeof cpu, "%s", r->env.cpu_model);
    else
        kb__env_cpu_model(cpu, sizeof cpu);
    field(mach, sizeof mach, cpu, 1);
    env_column(&r->env, env, sizeof env);
    ratio(g, sizeof g, timed, r->geomean.est);
    ratio(lo, sizeof lo, timed, r->geomean.lo);
    ratio(hi, sizeof hi, timed, r->geomean.hi);
    ratio(w, sizeof w, timed, r->worst.est);
    /* a ratio to the oracle only where one was measured or chained: never
     * the ratio to another file */
    ratio(orat, sizeof orat, timed && (best || vs_oracle),
          best ? bi->oracle_ratio : r->geomean.est);
    double secs = isfinite(r->trial_seconds) ? r->trial_seconds : 0.0;
    int n = snprintf(buf, buf_len,
                     "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s"
                     "\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n",
                     ts, target, cand, digest, odigest, commit, kb__status_name(r->status), g, lo,
                     hi, w, secs, desc, against, adigest, orat, best && bi->promoted ? "yes" : "no",
                     KB_VERSION, mach, KB__LEDGER_VERSION, env);
    return n < 0 || (size_t)n >= buf_len ? -1 : n;
}

int kb__ledger_append(const char *path, const kb__result *r, const kb__best_info *bi, char *err,
                      size_t err_len)
{
    /* every field is bounded (the kb__result arrays, two paths of PATH_MAX):
     * this always fits */
    char line[4 * PATH_MAX];
    int len = kb__ledger_format(r, bi, line, sizeof line);
    if (len < 0) {
        kb__errf(err, err_len, "%s: ledger line too long", path);
        return KB__EIO;
    }

    /* Never open a device, FIFO or socket named as the ledger (a serve
     * client names it): opening some devices has effects of its own. A
     * FIFO swapped in after the stat opens without blocking (O_NONBLOCK)
     * and is refused by check_or_init. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        kb__errf(err, err_len, "%s: not a regular file; pass a file path to --ledger", path);
        return KB__EUSAGE;
    }
    /* O_RDWR, not O_WRONLY: the header check reads the first line */
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644);
    if (fd < 0) {
        kb__errf(err, err_len, "%s: cannot open the ledger: %s", path, strerror(errno));
        return errno == ENOENT ? KB__ENOTFOUND : KB__EIO;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        kb__errf(err, err_len, "%s: cannot lock the ledger: %s", path, strerror(errno));
        close(fd);
        return KB__EIO;
    }
    off_t size = 0;
    int env = 1;
    rc = check_or_init(fd, path, &size, &env, err, err_len);
    if (rc == 0 && !env) { /* under a header without env: the line ends before it */
        char *tab = strrchr(line, '\t');
        memcpy(tab, "\n", 2);
        len = (int)(tab + 1 - line);
    }
    if (rc == 0) rc = write_line(fd, path, line, (size_t)len, size, err, err_len);
    /* close drops the lock; on NFS it is also where a delayed write error
     * shows up */
    if (close(fd) != 0 && rc == 0) {
        kb__errf(err, err_len, "%s: error closing the ledger: %s", path, strerror(errno));
        rc = KB__EIO;
    }
    return rc;
}
