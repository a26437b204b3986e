/*
 * digest.c -- content digests, and the sealed private copy of a plugin file
 * that everything after the command line works from.
 *
 * The host hashes, checks and loads the same bytes: a plugin is copied once
 * into a memfd that is then sealed, so a build that rewrites the .so during
 * a trial cannot change what was measured or what the ledger names.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "kb.h"

#define KB__SNAPSHOT_TRIES 4 /* the first read and up to 3 retries */
/* A snapshot's whole budget; reading a 256 MiB file from a local disk takes
 * well under a second. */
#define KB__SNAPSHOT_DEADLINE_S 10
/* A real-time signal of kbench's own (glibc keeps those below SIGRTMIN):
 * SIGALRM may be someone else's (a test's alarm()). */
#define KB__SNAPSHOT_SIGNAL (SIGRTMIN + 4)

uint64_t kb__hash(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
}

#define KB__SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

/* F_SEAL_WRITE fails with EBUSY while any page of the file has a reference
 * beyond its mappings, and a page just written still has one while it sits
 * in the per-CPU batch of the CPU that wrote it. The kernel drains only the
 * caller's CPU before it gives up, so a thread that moved between writing
 * and sealing sees EBUSY now and then (an input arena, once in a test run
 * beside a worker spinning on the other core). Sealing from each allowed
 * CPU in turn drains them all. */
int kb__memfd_seal(int fd)
{
    if (fcntl(fd, F_ADD_SEALS, KB__SEALS) == 0) return 0;
    if (errno != EBUSY) return -1;
    cpu_set_t old, one;
    if (sched_getaffinity(0, sizeof old, &old) != 0) return -1;
    int rc = -1, e = EBUSY;
    for (int round = 0; round < 3 && rc != 0; round++) {
        for (int c = 0; c < CPU_SETSIZE && rc != 0; c++) {
            if (!CPU_ISSET(c, &old)) continue;
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            if (sched_setaffinity(0, sizeof one, &one) != 0) continue;
            rc = fcntl(fd, F_ADD_SEALS, KB__SEALS);
            e = errno;
        }
    }
    sched_setaffinity(0, sizeof old, &old);
    errno = e;
    return rc;
}

void kb__hex64(uint64_t v, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, v);
}

static int same_file_state(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int kb__write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The deadline of the snapshot being taken on this thread: a timer that
 * sends this thread a signal whose handler does nothing, so a read or open
 * stuck on a file that never answers (a hung FUSE or NFS mount) returns
 * EINTR instead of holding a trial (or a server's only trial thread)
 * forever. */
static _Thread_local uint64_t g_deadline_ns;

static void on_deadline(int sig)
{
    (void)sig;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int deadline_passed(void)
{
    return g_deadline_ns && mono_ns() >= g_deadline_ns;
}

static int deadline_arm(timer_t *t)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_deadline; /* no SA_RESTART: the blocked call must return */
    sigemptyset(&sa.sa_mask);
    /* never take over a handler someone else installed */
    if (sigaction(KB__SNAPSHOT_SIGNAL, NULL, &old) != 0 ||
        (old.sa_handler != on_deadline &&
         (old.sa_handler != SIG_DFL || sigaction(KB__SNAPSHOT_SIGNAL, &sa, NULL) != 0)))
        return -1;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = KB__SNAPSHOT_SIGNAL;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &ev, t) != 0) return -1;
    /* fires at the deadline, then every 100 ms so a retried call is cut too */
    struct itimerspec its = {.it_value = {KB__SNAPSHOT_DEADLINE_S, 0},
                             .it_interval = {0, 100 * 1000 * 1000}};
    g_deadline_ns = mono_ns() + (uint64_t)KB__SNAPSHOT_DEADLINE_S * 1000000000u;
    if (timer_settime(*t, 0, &its, NULL) != 0) {
        timer_delete(*t);
        return -1;
    }
    return 0;
}

static void deadline_disarm(timer_t t)
{
    timer_delete(t);
    g_deadline_ns = 0;
}

static void timed_out(const char *path, char *err, size_t err_len)
{
    kb__errf(err, err_len,
             "%s: reading it took over %d s (a hung network or FUSE mount?); copy the plugin "
             "to a local disk",
             path, KB__SNAPSHOT_DEADLINE_S);
}

static void too_big(const char *path, uint64_t size, char *err, size_t err_len)
{
    kb__errf(err, err_len,
             "%s: %" PRIu64 " bytes%s, over kbench's plugin size limit of %d MiB; is it the "
             "plugin's .so? strip debug info or link less into it",
             path, size, size > KB__SNAPSHOT_MAX_BYTES ? "" : " or more",
             (int)(KB__SNAPSHOT_MAX_BYTES >> 20));
}

static int not_regular(const char *path, const struct stat *st, char *err, size_t err_len)
{
    const char *what = S_ISDIR(st->st_mode)    ? "a directory"
                       : S_ISFIFO(st->st_mode) ? "a FIFO (named pipe)"
                       : S_ISCHR(st->st_mode)  ? "a character device"
                       : S_ISBLK(st->st_mode)  ? "a block device"
                       : S_ISSOCK(st->st_mode) ? "a socket"
                                               : "not a regular file";
    kb__errf(err, err_len, "%s: %s, not a regular file; pass the plugin's .so file", path, what);
    return -1;
}

/* Copies src to dst until EOF. Returns the bytes copied, -1 (errno), or -2
 * once more than `cap` bytes came (a file that grows while being read, or a
 * special file that never ends). */
static int64_t copy_fd(int src, int dst, uint64_t cap)
{
    char buf[1 << 16];
    int64_t total = 0;
    for (;;) {
        ssize_t r = read(src, buf, sizeof buf);
        if (r < 0 && errno == EINTR && !deadline_passed()) continue;
        if (r < 0) return -1;
        if (r == 0) return total;
        if ((uint64_t)total + (uint64_t)r > cap) return -2;
        if (kb__write_all(dst, buf, (size_t)r) != 0) return -1;
        total += r;
    }
}

/* Opens path for the copy without ever blocking on what it names: only a
 * regular file is opened (stat first, so a FIFO, device or socket is never
 * opened at all), and O_NONBLOCK covers a swap between the stat and the open
 * (a FIFO then opens at once, and is refused by the fstat after) and a
 * conflicting lease (EWOULDBLOCK, not a 45 s wait). Returns the fd, -1 with
 * err set, or -2 when the file is busy (try again). */
static int open_regular(const char *path, struct stat *st, char *err, size_t err_len)
{
    if (stat(path, st) != 0) {
        kb__errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st->st_mode)) return not_regular(path, st, err, err_len);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && (errno == EWOULDBLOCK || errno == EINTR)) return -2;
    if (fd < 0) {
        kb__errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int rc = not_regular(path, st, err, err_len);
        close(fd);
        return rc;
    }
    return fd;
}

/* One attempt. Returns 0 with *out set to the unsealed memfd, 1 when the
 * file changed while being read, or a KB__E code with err set. */
static int copy_once(const char *path, int *out, uint64_t *size, char *err, size_t err_len)
{
    struct stat before, after, named;
    int fd = open_regular(path, &before, err, err_len);
    if (fd == -2) return 1;
    if (fd < 0) return KB__EIO;
    if (before.st_size == 0) {
        kb__errf(err, err_len, "%s: empty file (0 bytes); the build did not finish? rebuild it",
                 path);
        close(fd);
        return KB__EFORMAT;
    }
    if ((uint64_t)before.st_size > KB__SNAPSHOT_MAX_BYTES) {
        too_big(path, (uint64_t)before.st_size, err, err_len);
        close(fd);
        return KB__EFORMAT;
    }
    /* A read lease: refused while anyone has the file open for writing,
     * and broken (seen below) if anyone opens it for writing during the
     * copy. Size and mtime alone miss a copy taken between two same-size
     * in-place writes. Filesystems without leases (and files of another
     * owner without CAP_LEASE) fall back to the size/mtime/inode checks. */
    signal(SIGIO, SIG_IGN); /* a lease break must not kill the host */
    int leased = fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    if (!leased && (errno == EAGAIN || errno == EBUSY)) {
        close(fd);
        return 1;
    }
    int mfd = memfd_create("kb-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) {
        kb__errf(err, err_len, "%s: memfd_create: %s", path, strerror(errno));
        close(fd);
        return KB__EIO;
    }
    int64_t n = copy_fd(fd, mfd, KB__SNAPSHOT_MAX_BYTES);
    if (n < 0) {
        if (n == -2)
            too_big(path, KB__SNAPSHOT_MAX_BYTES + 1, err, err_len);
        else if (deadline_passed())
            timed_out(path, err, err_len);
        else
            kb__errf(err, err_len, "%s: cannot copy: %s", path, strerror(errno));
        close(mfd);
        close(fd);
        return n == -2 ? KB__EFORMAT : KB__EIO;
    }
    /* A linker either rewrites in place (size or mtime moves) or renames a
     * new file over the path (the name points at another inode). */
    int changed = fstat(fd, &after) != 0 || !same_file_state(&before, &after) ||
                  stat(path, &named) != 0 || !same_file_state(&before, &named) ||
                  n != (int64_t)before.st_size || (leased && fcntl(fd, F_GETLEASE) != F_RDLCK);
    if (leased) fcntl(fd, F_SETLEASE, F_UNLCK);
    close(fd);
    if (changed) {
        close(mfd);
        return 1;
    }
    *out = mfd;
    *size = (uint64_t)n;
    return 0;
}

int kb__snapshot_take(const char *path, kb__snapshot *s, char *err, size_t err_len)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int mfd = -1, rc = 1;
    uint64_t size = 0;
    timer_t timer;
    int armed = deadline_arm(&timer) == 0;
    for (int i = 0; i < KB__SNAPSHOT_TRIES && rc == 1 && !deadline_passed(); i++)
        rc = copy_once(path, &mfd, &size, err, err_len);
    int late = deadline_passed();
    if (armed) deadline_disarm(timer);
    if (rc == 1 && late) {
        timed_out(path, err, err_len);
        return KB__EIO;
    }
    if (rc == 1) {
        kb__errf(err, err_len,
                 "%s: file changed while being read (still being written?); retry after the "
                 "build finishes",
                 path);
        return KB__EIO;
    }
    if (rc != 0) return rc;
    if (kb__memfd_seal(mfd) != 0 || lseek(mfd, 0, SEEK_SET) != 0) {
        kb__errf(err, err_len, "%s: cannot seal the private copy: %s", path, strerror(errno));
        close(mfd);
        return KB__EIO;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, mfd, 0);
    if (map == MAP_FAILED) {
        kb__errf(err, err_len, "%s: cannot map the private copy: %s", path, strerror(errno));
        close(mfd);
        return KB__EIO;
    }
    s->digest = kb__hash(map, (size_t)size, 0);
    int rc2 = kb__closure_digest(mfd, map, (size_t)size, path, &s->digest, err, err_len);
    munmap(map, (size_t)size);
    if (rc2 != 0) {
        close(mfd);
        return rc2;
    }
    s->fd = mfd;
    s->size = size;
    kb__hex64(s->digest, s->digest_hex);
    return 0;
}

void kb__snapshot_close(kb__snapshot *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}
