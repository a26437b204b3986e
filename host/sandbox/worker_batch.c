/*
 * worker_batch.c -- timed batches in the worker (KB__REQ_BATCH): the
 * plugin called as asked between two clock readings, and the checks that
 * nothing it did there went unseen.
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
/* 0 when unchanged (or the target allows changes); else writes why. */
int kb__wk_fp_changed(kb__fpctl before, uint32_t req_flags, char *msg, size_t len)
{
    kb__fpctl now = fp_read();
    if ((req_flags & KB__REQF_FPENV_FREE) || (now.sse == before.sse && now.x87 == before.x87))
        return 0;
#if defined(__x86_64__)
    const uint32_t x = now.sse ^ before.sse;
    char what[96] = "";
    static const struct {
        uint32_t bit;
        const char *name;
    } parts[] = {{0x6000, "rounding mode"},
                 {0x8000, "flush-to-zero"},
                 {0x0040, "denormals-are-zero"},
                 {0x1f80, "exception masks"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (x & parts[i].bit)
            snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s", what[0] ? ", " : ": ",
                     parts[i].name);
    if (now.x87 != before.x87)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%sx87 control word",
                 what[0] ? ", " : ": ");
    snprintf(msg, len,
             "changed floating-point control state and left it changed (MXCSR %#06x -> %#06x, x87 "
             "control word %#06x -> %#06x%s); restore it before returning",
             before.sse, now.sse, before.x87, now.x87, what);
#else
    snprintf(msg, len,
             "changed floating-point control state and left it changed (%#x -> %#x); restore it "
             "before returning",
             before.sse, now.sse);
#endif
    return 1;
}

/* One group of fresh sets, and only it, for one batch (a BATCH that
 * carries the fresh arena's descriptor): the descriptor is closed before
 * any plugin code runs and the pages go after the batch (do_batch), so a
 * plugin meets each fresh set first at the call that runs it. Returns
 * NULL, or a reason. */
static const char *map_group(kb__wcase *k, uint32_t group, int *fd)
{
    const kb__layout *L = &k->layout;
    if (group >= KB__PROBE_GROUPS) return "bad probe request";
    const uint64_t from = L->group_off[group], to = L->group_off[group + 1];
    if (from % (uint64_t)W.page || to <= from || to > L->probe_size) return "bad probe layout";
    if (k->probe) munmap(k->probe, k->probe_size);
    k->probe = NULL;
    /* Populated: page faults on first touch would be timed otherwise. */
    void *m = mmap(NULL, to - from, PROT_READ, MAP_SHARED | MAP_POPULATE, *fd, (off_t)from);
    close(*fd);
    *fd = -1;
    if (m == MAP_FAILED) return "cannot map fresh inputs";
    k->probe = m;
    k->probe_size = to - from;
    k->probe_group = (int)group;
    mprotect(k->ins, k->ins_size, PROT_READ | PROT_WRITE);
    for (int p = 0; p < KB__PROBE; p++)
        for (uint32_t i = 0; i < L->n_calls; i++) {
            const uint32_t bi = L->n_statics + i;
            const int mine = p / KB__PROBE_GROUP == (int)group;
            k->ins[L->n_reps * KB__SETS + p][i] =
                (kb_buffer){mine ? k->probe + (L->buf[bi].poff[p] - from) : NULL,
                            mine ? L->buf[bi].count : 0, 0, L->buf[bi].dtype, 0};
        }
    mprotect(k->ins, k->ins_size, PROT_READ);
    return NULL;
}

/* KB__REQF_TOUCH: a load of every cache line of the sets' inputs. */
static void touch_sets(const kb__wcase *k, const uint32_t *rows, uint32_t n_order)
{
    uint64_t sum = 0;
    for (uint32_t o = 0; o < n_order; o++)
        for (uint32_t i = 0; i < k->n_ins; i++) {
            const kb_buffer *b = &k->ins[rows[o]][i];
            const volatile uint8_t *p = b->data;
            const size_t n = (size_t)b->count * kb__dtype_size(b->dtype);
            for (size_t x = 0; x < n; x += 64) sum += p[x];
        }
    W.touched += sum;
}

void kb__wk_do_batch(const kb__req *q, int *fresh_fd)
{
    if (*fresh_fd >= 0 && q->slot < KB__MAX_CASES && W.cases[q->slot].ready) {
        const char *why = map_group(&W.cases[q->slot], q->group, fresh_fd);
        if (why) {
            kb__wk_reply_code(KB__REP_REFUSED, -1, why);
            return;
        }
    }
    if (*fresh_fd >= 0 || q->slot >= KB__MAX_CASES || !W.cases[q->slot].ready ||
        !W.cases[q->slot].calls || q->n_order == 0 || q->n_order > KB__MAX_ORDER || q->calls == 0 ||
        q->calls > W.cases[q->slot].layout.n_lanes) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, "bad batch request");
        return;
    }
    kb__wcase *k = &W.cases[q->slot];
    for (uint32_t i = 0; i < q->n_order; i++) {
        const uint32_t o = q->order[i];
        const int fresh_ok = k->probe && o >= KB__SETS && o < KB__ALLSETS &&
                             (int)((o - KB__SETS) / KB__PROBE_GROUP) == k->probe_group;
        if (o >= KB__SETS && !fresh_ok) {
            kb__wk_reply_code(KB__REP_REFUSED, -1, "bad batch request");
            return;
        }
    }
    if (q->rep0 >= k->layout.n_reps) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, "bad batch request");
        return;
    }
    const uint64_t calls = q->calls;
    /* The descriptor rows the calls cycle through. Warm: the host's order,
     * set indices. Cold: group g of KB__SETS calls reads replica
     * (rep0 + g) mod n_reps and the host's order has each set once per
     * group (measure.c), so no call reads bytes a recent call read; the
     * rows are spelled out per call before the clock starts, so the timed
     * loop is the warm one. The set alone decides a call's expected
     * output, whichever replica it read. */
    const uint32_t *rows = q->order;
    uint32_t n_order = q->n_order;
    if (k->rows) {
        const uint32_t n_reps = k->layout.n_reps;
        for (uint64_t c = 0; c < calls; c++) {
            const uint32_t s = q->order[c % n_order];
            const uint32_t r = (uint32_t)((q->rep0 + c / KB__SETS) % n_reps);
            k->rows[c] = s < KB__SETS ? r * KB__SETS + s : (n_reps - 1) * KB__SETS + s;
        }
        rows = k->rows;
        n_order = (uint32_t)calls;
    }
    const uint32_t n_outs = k->n_outs;
    /* Fresh descriptors for every call, and the reply, set up before the
     * clock starts: between the start message and the reply only the calls
     * run, and the reply's send. */
    memcpy(k->work, k->lanes, sizeof(kb_buffer) * n_outs * calls);
    char err[512] = "";
    uint64_t done = 0;
    kb__rep r;
    memset(&r, 0, sizeof r);
    if (q->flags & KB__REQF_TOUCH) touch_sets(k, rows, n_order);
    const kb__fpctl fp0 = fp_read();
    if (q->flags & KB__REQF_STARTED) announce_start();
    unblock_signals();
    const uint64_t t0 = now_ns();
    const int rc =
        kb__run_calls(W.lib.plugin, k->state, (const kb_buffer(*)[KB_MAX_BUFFERS])k->ins, k->n_ins,
                      k->work, n_outs, rows, n_order, calls, &done, err, sizeof err);
    const uint64_t t1 = now_ns();
    r.ns = t1 - t0;
    for (uint32_t j = 0; j < n_outs; j++) r.produced[j] = k->work[(done - 1) * n_outs + j].produced;
    /* A host that times by the channel counts the threads itself, after
     * the reply: reading /proc here would be tens of microseconds inside
     * its reading. Under an emulator (base_threads > 1) only this count
     * is meaningful. */
    if (!(q->flags & KB__REQF_STARTED) || W.base_threads > 1) r.threads = kb__wk_count_threads();
    if (rc != 0) {
        char note[160];
        err[sizeof err - 1] = 0;
        r.type = KB__REP_FAIL;
        r.code = rc;
        kb__wk_nomem_note(rc, note, sizeof note);
        snprintf(r.msg, sizeof r.msg, "run returned %d%s: %s", rc, note, err);
    } else if (kb__wk_fp_changed(fp0, q->flags, r.msg, sizeof r.msg)) {
        r.type = KB__REP_FAIL;
        r.code = -1;
    } else {
        r.type = KB__REP_OK;
    }
    reply(&r);
    /* A fresh group serves one batch; after it, none is in reach. */
    if (k->probe) {
        munmap(k->probe, k->probe_size);
        k->probe = NULL;
        k->probe_group = -1;
    }
}
