/*
 * closure.c -- the libraries a plugin loads with it, checked and hashed.
 *
 * A digest of the plugin file alone does not name the code that runs when
 * the kernel lives in a library the plugin links: swap the library and the
 * same digest times other code. So every library the loader maps for a
 * plugin must come from the system's library directories (elf.c refuses an
 * RPATH, a RUNPATH and a DT_NEEDED by path; here each resolved file must lie
 * under /lib, /usr/lib, /lib64 or /usr/lib64), and the digest of a plugin
 * covers the bytes of every library in its closure except glibc's own
 * (libc, libm, ...), which the host itself runs on. A plugin that needs only
 * those keeps the digest of its file alone.
 *
 * Where the loader finds each library is asked of the loader itself
 * (`ld.so --list` on the sealed copy, with no LD_* variables, as the
 * worker's loader sees it: spawn.c drops them from the worker's), which
 * maps the files and prints them without running any of their code.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kb.h"

#define KB__LIST_DEADLINE_MS 10000
#define KB__LIST_MAX         (64u << 10) /* bytes of `ld.so --list` output read */

/* glibc's own libraries: the host runs on them, every plugin needs libc,
 * and a change to them changes every timing alike. Not hashed. Nor are the
 * compiler's sanitizer runtimes, for the same reason in a sanitizer build
 * (KB_SANITIZE), whose host and plugins all run on them; a plugin cannot
 * put a kernel in them. */
static int glibc_own(const char *soname)
{
    static const char *const names[] = {
        "libc.so.6",      "libm.so.6",  "libmvec.so.1",         "libpthread.so.0",
        "libdl.so.2",     "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
        "linux-vdso.so.1"};
    static const char *const runtimes[] = {"libasan.so.", "libubsan.so.", "liblsan.so.",
                                           "libtsan.so.", "libhwasan.so."};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(soname, names[i])) return 1;
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++)
        if (!strncmp(soname, runtimes[i], strlen(runtimes[i]))) return 1;
    return 0;
}

/* The system's library directories: what the loader searches by default
 * (and its cache lists) on Debian, Fedora and Arch, multiarch and glibc-hwcaps
 * subdirectories included. /usr/local/lib is not one: a user may own it. */
static int trusted_path(const char *real)
{
    static const char *const dirs[] = {"/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (!strncmp(real, dirs[i], strlen(dirs[i]))) return 1;
    return 0;
}

static int find_loader(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_addr == (ElfW(Addr))getauxval(AT_BASE) && info->dlpi_name &&
        info->dlpi_name[0] == '/') {
        snprintf(data, PATH_MAX, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

/* The dynamic loader this host runs under (its PT_INTERP). */
static const char *loader_path(void)
{
    static _Thread_local char path[PATH_MAX];
    path[0] = 0;
    if (getauxval(AT_BASE)) dl_iterate_phdr(find_loader, path);
    return path[0] ? path : NULL;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads the child's output until EOF or the deadline. */
static size_t drain(int fd, char *out, size_t cap, uint64_t end)
{
    size_t n = 0;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= end) return n;
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)(end - now));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return n;
        char sink[4096];
        ssize_t r = n + 1 < cap ? read(fd, out + n, cap - 1 - n) : read(fd, sink, sizeof sink);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return n;
        if (n + 1 < cap) n += (size_t)r;
    }
}

#define KB__EXEC_FAILED 125 /* the child's code when the loader did not start */

/* The loader's environment: empty, but for an emulator's own settings
 * (QEMU_*), which the worker keeps too. Built before fork: the child may
 * not allocate. */
static void loader_env(char **envp, size_t cap)
{
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; e && *e && n + 1 < cap; e++)
        if (!strncmp(*e, "QEMU_", 5)) envp[n++] = *e;
    envp[n] = NULL;
}

/* Runs `ld.so --list /proc/self/fd/3` on the sealed copy, with no loader
 * environment and a deadline; through KB_WORKER_EXEC_PREFIX (qemu) when the
 * workers go through it, since the kernel may not run a foreign loader.
 * Returns 0 with out filled (NUL-terminated). */
static int loader_list(int fd, const char *path, char *out, size_t cap, char *err, size_t err_len)
{
    const char *ldso = loader_path(), *pre = getenv("KB_WORKER_EXEC_PREFIX");
    char *envp[16];
    loader_env(envp, sizeof envp / sizeof envp[0]);
    char *argv[] = {(char *)(pre && *pre ? pre : ldso), (char *)ldso, (char *)"--list",
                    (char *)"/proc/self/fd/3", NULL};
    char **args = pre && *pre ? argv : argv + 1;
    int po[2];
    if (!ldso || pipe2(po, O_CLOEXEC) != 0) {
        kb__errf(err, err_len, "%s: cannot find the dynamic loader to list its libraries", path);
        return KB__EIO;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls: the host may have threads */
        dup2(po[1], 1);
        dup2(po[1], 2);
        if (fd == 3)
            fcntl(3, F_SETFD, 0);
        else
            dup2(fd, 3);
        execve(args[0], args, envp);
        _exit(KB__EXEC_FAILED);
    }
    close(po[1]);
    if (pid < 0) {
        close(po[0]);
        kb__errf(err, err_len, "%s: cannot list its libraries: fork: %s", path, strerror(errno));
        return KB__EIO;
    }
    size_t n = drain(po[0], out, cap, mono_ms() + KB__LIST_DEADLINE_MS);
    out[n] = 0;
    close(po[0]);
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) != pid) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    if (!WIFEXITED(st)) {
        kb__errf(err, err_len, "%s: listing its libraries took over %d s; rebuild it", path,
                 KB__LIST_DEADLINE_MS / 1000);
        return KB__EFORMAT;
    }
    if (WEXITSTATUS(st) == KB__EXEC_FAILED) {
        kb__errf(err, err_len, "%s: cannot run the dynamic loader %s to list its libraries", path,
                 args[0]);
        return KB__EIO;
    }
    if (WEXITSTATUS(st) != 0) {
        /* "<file>: error while loading shared libraries: libx.so: cannot open ..." */
        const char *why = strstr(out, "shared libraries: ");
        why = why ? why + 18 : out;
        kb__errf(err, err_len,
                 "%s: a library it needs is not in the system's library directories (%.*s); "
                 "install it system-wide or link it statically",
                 path, (int)strcspn(why, "\n"), why);
        return KB__EFORMAT;
    }
    return 0;
}

typedef struct dep {
    char name[64];
    uint64_t hash;
} dep;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const dep *)a)->name, ((const dep *)b)->name);
}

/* The XXH3 of a library file, read through a private map. */
static int hash_file(const char *real, const char *path, uint64_t *h, char *err, size_t err_len)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        (uint64_t)st.st_size > KB__SNAPSHOT_MAX_BYTES) {
        kb__errf(err, err_len, "%s: cannot read the library %s it loads", path, real);
        if (fd >= 0) close(fd);
        return KB__EIO;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        kb__errf(err, err_len, "%s: cannot map the library %s it loads", path, real);
        return KB__EIO;
    }
    *h = kb__hash(map, (size_t)st.st_size, 0);
    munmap(map, (size_t)st.st_size);
    return 0;
}

/* One line of `ld.so --list`: "\tNAME => PATH (0x...)", "\tNAME => not
 * found", or a line without "=>" (the vDSO, the loader, "statically
 * linked"). Adds a library outside glibc to deps. */
static int take_line(char *line, const char *path, dep *deps, size_t *n, char *err, size_t err_len)
{
    while (*line == ' ' || *line == '\t') line++;
    char *arrow = strstr(line, " => ");
    if (!arrow) return 0;
    *arrow = 0;
    char *lib = arrow + 4;
    if (!strncmp(lib, "not found", 9)) {
        kb__errf(err, err_len,
                 "%s: needs %s, which the system's library directories do not have; install it "
                 "system-wide or link it statically",
                 path, line);
        return KB__EFORMAT;
    }
    char *paren = strstr(lib, " (0x");
    if (paren) *paren = 0;
    char real[PATH_MAX];
    if (!realpath(lib, real) || !trusted_path(real)) {
        kb__errf(err, err_len,
                 "%s: loads %s from %s, outside the system's library directories (/lib, /usr/lib); "
                 "install it system-wide or link it statically",
                 path, line, lib);
        return KB__EFORMAT;
    }
    if (glibc_own(line)) return 0;
    if (*n == KB__ELF_MAX_DEPS * 4) {
        kb__errf(err, err_len, "%s: loads more than %d libraries; link fewer", path,
                 KB__ELF_MAX_DEPS * 4);
        return KB__EFORMAT;
    }
    snprintf(deps[*n].name, sizeof deps[*n].name, "%s", line);
    int rc = hash_file(real, path, &deps[*n].hash, err, err_len);
    if (rc == 0) (*n)++;
    return rc;
}

int kb__closure_digest(int fd, const void *bytes, size_t size, const char *path, uint64_t *digest,
                       char *err, size_t err_len)
{
    kb__deps need;
    int rc = kb__elf_deps(bytes, size, path, &need, err, err_len);
    if (rc != 0) return rc == 1 ? 0 : rc; /* not an ELF file: kb__elf_check says why */
    int only_glibc = 1;
    for (uint32_t i = 0; i < need.n; i++) only_glibc &= glibc_own(need.name[i]);
    if (only_glibc) return 0;
    char *out = malloc(KB__LIST_MAX);
    dep *deps = calloc(KB__ELF_MAX_DEPS * 4, sizeof *deps);
    size_t n = 0;
    rc = !out || !deps ? KB__ENOMEM : loader_list(fd, path, out, KB__LIST_MAX, err, err_len);
    for (char *save = NULL, *line = rc ? NULL : strtok_r(out, "\n", &save); line && !rc;
         line = strtok_r(NULL, "\n", &save))
        rc = take_line(line, path, deps, &n, err, err_len);
    if (!rc) {
        /* the plugin's own digest, then each library by name: one value */
        qsort(deps, n, sizeof *deps, by_name);
        uint64_t h = *digest;
        for (size_t i = 0; i < n; i++) {
            uint64_t two[2] = {h, deps[i].hash};
            h = kb__hash(two, sizeof two, kb__hash(deps[i].name, strlen(deps[i].name), 0));
        }
        *digest = h;
    }
    if (rc == KB__ENOMEM) kb__errf(err, err_len, "%s: out of memory listing its libraries", path);
    free(out);
    free(deps);
    return rc;
}
