/*
 * worker_load.c -- the worker loads its one plugin (KB__REQ_LOAD) and
 * hands it the host services.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h> /* glibc 2.35 on: RSEQ_SIG, __rseq_offset, __rseq_size */
#endif
#endif
#include <unistd.h>

#include "calls.h"
#include "worker.h"
/* ---- host services given to the plugin -------------------------------- */
static void host_log(const kb_host *h, const char *msg)
{
    (void)h;
    if (msg) fprintf(stderr, "[plugin] %.*s\n", 400, msg);
}
static void *host_alloc(const kb_host *h, size_t size, size_t align)
{
    (void)h;
    void *p = NULL;
    if (align < sizeof(void *) || (align & (align - 1))) return NULL;
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}
static void host_free(const kb_host *h, void *p)
{
    (void)h;
    free(p);
}
kb_host kb__wk_host = {sizeof(kb_host), 0, 0, host_log, host_alloc, host_free};

uint64_t kb__wk_count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    uint64_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    /* Not the emulator's: qemu-user runs a thread of its own in every process. */
    return W.base_threads > 1 && n >= W.base_threads ? n - (W.base_threads - 1) : n;
}

/* ---- requests ---------------------------------------------------------- */
void kb__wk_do_load(int fd, const char *shown, const kb__fplan *foreign)
{
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (W.loaded) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, "worker already has a plugin loaded");
        return;
    }
    if (W.sandbox_err[0]) { /* never run a plugin outside the sandbox */
        kb__errf(err, sizeof err, "%s: the worker cannot sandbox it: %s", shown, W.sandbox_err);
        kb__wk_reply_code(KB__REP_REFUSED, -1, err);
        return;
    }
    /* A foreign function (foreign.c) loads as a synthetic plugin around it. */
    int rc = foreign->active ? kb__foreign_open(path, shown, foreign, &W.lib, err, sizeof err)
                             : kb__lib_open(path, shown, 0, &W.lib, err, sizeof err);
    if (rc != 0) {
        kb__rep r;
        memset(&r, 0, sizeof r);
        r.type = KB__REP_REFUSED;
        r.code = rc;
        r.desc = W.lib.desc;
        snprintf(r.msg, sizeof r.msg, "%s", err);
        reply(&r);
        return;
    }
    /* What is executable is now final (a sanitizer runtime maps with
     * MAP_FIXED as it goes, so a sanitizer build keeps the first filter
     * only). */
    if (W.filtered && !KB__ASAN && kb__seccomp_harden(err, sizeof err) != 0) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, err);
        return;
    }
    W.loaded = 1;
    kb__wk_host.cpu_features = kb__cpu_features();
    kb__rep r;
    memset(&r, 0, sizeof r);
    r.type = KB__REP_OK;
    r.desc = W.lib.desc;
    r.threads = kb__wk_count_threads();
    reply(&r);
}
