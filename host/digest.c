/*
 * digest.c -- content digests, and the sealed private copy of a plugin file
 * that everything after the command line works from.
 *
 * The host hashes, checks and loads the same bytes: a plugin is copied once
 * into a memfd that is then sealed, so a build that rewrites the .so during
 * a trial cannot change what was measured or what the ledger names.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "kb.h"

#define KB__SNAPSHOT_TRIES 4 /* the first read and up to 3 retries */

uint64_t kb__hash(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
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

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies src to dst until EOF. Returns the bytes copied, or -1 (errno). */
static int64_t copy_fd(int src, int dst)
{
    char buf[1 << 16];
    int64_t total = 0;
    for (;;) {
        ssize_t r = read(src, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return total;
        if (write_all(dst, buf, (size_t)r) != 0)
            return -1;
        total += r;
    }
}

/* One attempt. Returns 0 with *out set to the unsealed memfd, 1 when the
 * file changed while being read, or a KB__E code with err set. */
static int copy_once(const char *path, int *out, uint64_t *size, char *err, size_t err_len)
{
    struct stat before, after, named;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kb__errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return KB__EIO;
    }
    if (fstat(fd, &before) != 0) {
        kb__errf(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return KB__EIO;
    }
    if (!S_ISREG(before.st_mode)) {
        kb__errf(err, err_len, "%s: not a regular file; pass the plugin's .so", path);
        close(fd);
        return KB__EIO;
    }
    if (before.st_size == 0) {
        kb__errf(err, err_len, "%s: empty file (0 bytes); the build did not finish? rebuild it",
                 path);
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
    int64_t n = copy_fd(fd, mfd);
    if (n < 0) {
        kb__errf(err, err_len, "%s: cannot copy: %s", path, strerror(errno));
        close(mfd);
        close(fd);
        return KB__EIO;
    }
    /* A linker either rewrites in place (size or mtime moves) or renames a
     * new file over the path (the name points at another inode). */
    int changed = fstat(fd, &after) != 0 || !same_file_state(&before, &after) ||
                  stat(path, &named) != 0 || !same_file_state(&before, &named) ||
                  n != (int64_t)before.st_size ||
                  (leased && fcntl(fd, F_GETLEASE) != F_RDLCK);
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
    for (int i = 0; i < KB__SNAPSHOT_TRIES && rc == 1; i++)
        rc = copy_once(path, &mfd, &size, err, err_len);
    if (rc == 1) {
        kb__errf(err, err_len,
                 "%s: file changed while being read (still being written?); retry after the "
                 "build finishes",
                 path);
        return KB__EIO;
    }
    if (rc != 0)
        return rc;
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0 ||
        lseek(mfd, 0, SEEK_SET) != 0) {
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
    munmap(map, (size_t)size);
    s->fd = mfd;
    s->size = size;
    kb__hex64(s->digest, s->digest_hex);
    return 0;
}

void kb__snapshot_close(kb__snapshot *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
