/*
 * fuzz.h -- what the fuzz harnesses share: the libFuzzer entry point's
 * declaration, a reader that turns fuzz bytes into typed values, and a
 * private scratch directory for the harnesses that go through files.
 *
 * Each harness is a file of its own with LLVMFuzzerTestOneInput. Built with
 * clang -fsanitize=fuzzer (KB_FUZZ=ON) libFuzzer drives it; built any other
 * way replay.c supplies main() and runs the inputs named on the command line
 * (files or directories), so the corpus is a regression test under gcc too.
 * Header-only; include once per harness.
 */
#ifndef KB_FUZZ_H
#define KB_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the harness checks failed: abort, so libFuzzer keeps the input
 * and the replay exits non-zero. */
#define FZ_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* With KB_FUZZ_VERBOSE set, says what the code under test answered (for
 * checking that a seed reaches what it was written for). */
static inline void fz_note(const char *what, int rc, const char *err)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("KB_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "  %s: %d %s\n", what, rc, err ? err : "");
}

/* Reads typed values off the front of the fuzz input; past the end every
 * read yields zeros, so any input decodes to something. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline void fz_bytes(fz_in *in, void *out, size_t len)
{
    size_t k = len < in->n ? len : in->n;
    memcpy(out, in->p, k);
    memset((char *)out + k, 0, len - k);
    in->p += k;
    in->n -= k;
}

static inline uint8_t fz_u8(fz_in *in)
{
    uint8_t v;
    fz_bytes(in, &v, 1);
    return v;
}

static inline uint16_t fz_u16(fz_in *in)
{
    uint16_t v;
    fz_bytes(in, &v, sizeof v);
    return v;
}

static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t v;
    fz_bytes(in, &v, sizeof v);
    return v;
}

static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t v;
    fz_bytes(in, &v, sizeof v);
    return v;
}

static inline double fz_f64(fz_in *in)
{
    double v;
    fz_bytes(in, &v, sizeof v);
    return v;
}

/* A count that is usually small (so the harness gets deep) but now and then
 * any 32-bit value (so the range checks are hit). */
static inline uint32_t fz_count(fz_in *in, uint32_t small)
{
    uint8_t b = fz_u8(in);
    if (b == 0xff)
        return fz_u32(in);
    return b % (small + 1);
}

/* A fresh heap string of exactly len+1 bytes (so ASan sees any read past its
 * NUL), its length from one byte, its bytes from the input. The strings are
 * freed by fz_free_all. */
#define FZ_MAX_ALLOCS 256
static void *fz_allocs[FZ_MAX_ALLOCS];
static size_t fz_n_allocs;

static inline void *fz_keep(void *p)
{
    if (!p)
        abort();
    if (fz_n_allocs == FZ_MAX_ALLOCS)
        abort();
    fz_allocs[fz_n_allocs++] = p;
    return p;
}

static inline void fz_free_all(void)
{
    while (fz_n_allocs)
        free(fz_allocs[--fz_n_allocs]);
}

static inline char *fz_str(fz_in *in)
{
    size_t len = fz_u8(in);
    len = len < in->n ? len : in->n;
    char *s = fz_keep(malloc(len + 1));
    fz_bytes(in, s, len);
    s[len] = '\0';
    return s;
}

/* A scratch directory of this process, removed (with what the harness left
 * in it: plain files and one level of subdirectories) at exit. */
static char fz_dir_path[256];

static inline void fz_dir_cleanup(void)
{
    char cmd[300];
    if (fz_dir_path[0] && strstr(fz_dir_path, "kbfuzz.")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_path);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz: could not remove %s\n", fz_dir_path);
    }
}

static inline const char *fz_dir(void)
{
    if (!fz_dir_path[0]) {
        const char *t = getenv("TMPDIR");
        /* /dev/shm when it is there: the file harnesses write on every run */
        if (!t || !*t)
            t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fz_dir_path, sizeof fz_dir_path, "%s/kbfuzz.XXXXXX", t);
        if (!mkdtemp(fz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fz_dir_cleanup);
    }
    return fz_dir_path;
}

/* Writes bytes to path (replacing it); aborts on failure, which is the
 * harness's problem, not the code under test's. */
static inline void fz_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Reads a whole file into a malloc'ed, NUL-terminated buffer. */
static inline char *fz_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        abort();
    buf[n] = '\0';
    *size = n;
    return buf;
}

#endif
