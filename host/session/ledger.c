/*
 * ledger.c -- results.tsv: one line per trial, appended, never rewritten.
 *
 * Several trials (an agent running candidates in parallel) may append to the
 * same file at once. Each line goes out in a single write(2) on an O_APPEND
 * descriptor while holding an exclusive flock, so lines never interleave and
 * the header is written exactly once, by whoever finds the file empty under
 * the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

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

/* Under the lock: an empty file gets the header; anything else must already
 * be a ledger and end with a complete line. */
static int check_or_init(int fd, const char *path, off_t *size, char *err, size_t err_len)
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
    if (st.st_size == 0) {
        int rc = write_line(fd, path, header, hlen, 0, err, err_len);
        if (rc == 0) *size = (off_t)hlen;
        return rc;
    }
    char first[sizeof header];
    ssize_t n = (size_t)st.st_size >= hlen ? pread(fd, first, hlen, 0) : 0;
    if (n < 0) {
        kb__errf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
        return KB__EIO;
    }
    if ((size_t)n != hlen || memcmp(first, header, hlen) != 0) {
        kb__errf(err, err_len,
                 "%s: not a kbench ledger (first line is not the results.tsv header); pass "
                 "another --ledger path",
                 path);
        return KB__ECORRUPT;
    }
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

static int format_line(const kb__result *r, char *buf, size_t buf_len)
{
    char ts[32], target[sizeof r->target], cand[sizeof r->candidate];
    char digest[sizeof r->cand_digest], odigest[sizeof r->oracle_digest];
    char commit[sizeof r->git_commit], desc[sizeof r->description];
    char g[32], lo[32], hi[32], w[32];
    struct tm tm;
    time_t now = time(NULL);
    if (!gmtime_r(&now, &tm) || strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(ts, sizeof ts, "n/a");
    field(target, sizeof target, r->target, 1);
    field(cand, sizeof cand, r->candidate, 1);
    field(digest, sizeof digest, r->cand_digest, 1);
    field(odigest, sizeof odigest, r->oracle_digest, 1);
    field(commit, sizeof commit, r->git_commit, 1);
    field(desc, sizeof desc, r->description, 0);
    int timed = kb__status_timed(r->status);
    ratio(g, sizeof g, timed, r->geomean.est);
    ratio(lo, sizeof lo, timed, r->geomean.lo);
    ratio(hi, sizeof hi, timed, r->geomean.hi);
    ratio(w, sizeof w, timed, r->worst.est);
    double secs = isfinite(r->trial_seconds) ? r->trial_seconds : 0.0;
    return snprintf(buf, buf_len, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\n", ts,
                    target, cand, digest, odigest, commit, kb__status_name(r->status), g, lo, hi, w,
                    secs, desc);
}

int kb__ledger_append(const char *path, const kb__result *r, char *err, size_t err_len)
{
    /* every field is bounded by the kb__result arrays: this always fits */
    char line[2048];
    int len = format_line(r, line, sizeof line);
    if (len < 0 || (size_t)len >= sizeof line) {
        kb__errf(err, err_len, "%s: ledger line too long (%d bytes)", path, len);
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
    rc = check_or_init(fd, path, &size, err, err_len);
    if (rc == 0) rc = write_line(fd, path, line, (size_t)len, size, err, err_len);
    /* close drops the lock; on NFS it is also where a delayed write error
     * shows up */
    if (close(fd) != 0 && rc == 0) {
        kb__errf(err, err_len, "%s: error closing the ledger: %s", path, strerror(errno));
        rc = KB__EIO;
    }
    return rc;
}
