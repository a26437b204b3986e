/*
 * worker_case.c -- a case in the worker: its memory mapped as the host
 * laid it out, the plugin's prepare and verify (KB__REQ_CASE), the timed
 * sets after prepare (KB__REQ_INPUTS) and release (KB__REQ_RELEASE).
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
/* "prepare returned 2 (out of memory: the worker's memory limit is 2.1
 * GiB)" rather than a bare code, when the plugin says it ran out. */
void kb__wk_nomem_note(int rc, char *note, size_t len)
{
    note[0] = 0;
    if (rc != KB_ERR_NOMEM) return;
    uint64_t used, limit;
    kb__wk_vm_usage(&used, &limit);
    if (limit)
        snprintf(note, len,
                 " (out of memory: the worker's memory limit is %.2f GiB, %.2f GiB in use)",
                 (double)limit / (1u << 30), (double)used / (1u << 30));
    else
        snprintf(note, len, " (out of memory)");
}

static void unmap_case(kb__wcase *k)
{
    if (k->arena) munmap(k->arena, k->arena_size);
    if (k->calls) munmap(k->calls, k->calls_size);
    if (k->outmap) munmap(k->outmap, k->outmap_size);
    if (k->work) munmap(k->work, k->work_size);
    if (k->probe) munmap(k->probe, k->probe_size);
    if (k->ins) munmap(k->ins, k->ins_size);
    free(k->lanes);
    free(k->rows);
    memset(k, 0, sizeof *k);
}

/* Outputs: one lane per call of a batch, each slot mapped between PROT_NONE
 * guard pages, and the batch's shared copy of the lanes' descriptors. NULL,
 * or why not. */
static const char *map_outputs(kb__wcase *k, int out_fd)
{
    const kb__layout *L = &k->layout;
    if (L->n_lanes == 0 || L->n_lanes > KB__MAX_LANES || L->n_outs == 0 ||
        L->n_outs > KB_MAX_BUFFERS || L->n_reps == 0 || L->n_reps > KB__MAX_REPLICAS)
        return "bad case layout";
    size_t total = (size_t)W.page;
    for (uint32_t j = 0; j < L->n_outs; j++)
        total += L->buf[L->n_statics + L->n_calls + j].slot_size + (size_t)W.page;
    total = (total - (size_t)W.page) * L->n_lanes + (size_t)W.page;
    k->outmap_size = total;
    k->lanes = calloc((size_t)L->n_lanes * L->n_outs, sizeof *k->lanes);
    if (L->n_reps > 1 && !(k->rows = calloc(L->n_lanes, sizeof *k->rows)))
        return "cannot allocate input rows";
    k->work_size = (size_t)(L->out_size - L->prod_off);
    k->work = L->out_size <= L->prod_off ||
                      k->work_size < (size_t)L->n_lanes * L->n_outs * sizeof(kb_buffer)
                  ? MAP_FAILED
                  : mmap(NULL, k->work_size, PROT_READ | PROT_WRITE, MAP_SHARED, out_fd,
                         (off_t)L->prod_off);
    if (!k->lanes || k->work == MAP_FAILED) {
        k->work = NULL;
        return "cannot map output memory";
    }
    k->outmap = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k->outmap == MAP_FAILED) {
        k->outmap = NULL;
        return "cannot reserve output memory";
    }
    /* Each slot goes into a hole cut in the reservation, by address hint:
     * after loading, MAP_FIXED is the plugin's no more than the harness's. */
    uint8_t *cur = k->outmap + W.page;
    for (uint32_t l = 0; l < L->n_lanes; l++)
        for (uint32_t j = 0; j < L->n_outs; j++) {
            const uint32_t bi = L->n_statics + L->n_calls + j;
            munmap(cur, L->buf[bi].slot_size);
            void *m = mmap(cur, L->buf[bi].slot_size, PROT_READ | PROT_WRITE, MAP_SHARED, out_fd,
                           (off_t)(l * L->lane_size + L->buf[bi].slot_off));
            if (m != (void *)cur) {
                if (m != MAP_FAILED) munmap(m, L->buf[bi].slot_size);
                return "cannot map outputs";
            }
            k->lanes[(size_t)l * L->n_outs + j] =
                (kb_buffer){cur + L->buf[bi].data_off, L->buf[bi].count, 0, L->buf[bi].dtype, 0};
            cur += L->buf[bi].slot_size + W.page;
        }
    return NULL;
}

/* The statics' descriptors, the page the per-call descriptors go in
 * (read-only until the timed sets come) and the case as the plugin sees
 * it. NULL, or why not. */
static const char *map_inputs(kb__wcase *k)
{
    const kb__layout *L = &k->layout;
    k->n_outs = L->n_outs;
    k->n_ins = L->n_calls;
    for (uint32_t i = 0; i < L->n_statics; i++)
        k->statics[i] =
            (kb_buffer){k->arena + L->buf[i].off[0], L->buf[i].count, 0, L->buf[i].dtype, 0};
    const size_t insz = ins_bytes(L->n_reps);
    void *insm = mmap(NULL, insz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (insm == MAP_FAILED) return "cannot map input descriptors";
    k->ins = insm;
    k->ins_size = insz;
    mprotect(k->ins, insz, PROT_READ);
    for (uint32_t p = 0; p < L->n_params && p < KB_MAX_PARAMS; p++)
        k->names[p] = k->layout.param_names[p];
    k->layout.case_name[sizeof k->layout.case_name - 1] = 0;
    k->cs = (kb_case){k->layout.case_name, L->n_params, 0, k->layout.params,
                      (const char *const *)k->names};
    return NULL;
}

/* Runs the plugin's prepare and verify on a mapped case and replies: OK
 * with prepare's time, or FAIL with what prepare returned or the FP control
 * state it changed. */
static void prepare_case(kb__wcase *k, uint32_t req_flags)
{
    char err[512] = "";
    const kb__fpctl fp0 = fp_read();
    uint64_t t0 = now_ns();
    void *state = NULL;
    int rc = W.lib.plugin->prepare(&kb__wk_host, &k->cs, k->statics, k->layout.n_statics, &state,
                                   err, sizeof err);
    uint64_t t1 = now_ns();
    err[sizeof err - 1] = 0;
    if (rc != 0) {
        kb__rep r;
        char note[160];
        memset(&r, 0, sizeof r);
        r.type = KB__REP_FAIL;
        r.code = rc;
        r.ns = t1 - t0;
        kb__wk_nomem_note(rc, note, sizeof note);
        snprintf(r.msg, sizeof r.msg, "prepare returned %d%s: %s", rc, note, err);
        reply(&r);
        k->ready = 0;
        unmap_case(k);
        return;
    }
    k->state = state;
    if (W.lib.plugin->verify) {
        err[0] = 0;
        rc = W.lib.plugin->verify(state, err, sizeof err);
        err[sizeof err - 1] = 0;
        if (rc != 0) fprintf(stderr, "[kbench] plugin self-check returned %d: %s\n", rc, err);
    }
    kb__rep r;
    memset(&r, 0, sizeof r);
    if (kb__wk_fp_changed(fp0, req_flags, r.msg, sizeof r.msg)) {
        /* the trial ends here: the host rejects the plugin */
        r.type = KB__REP_FAIL;
        r.code = -1;
        reply(&r);
        return;
    }
    r.type = KB__REP_OK;
    r.ns = t1 - t0;
    r.threads = kb__wk_count_threads();
    reply(&r);
}

void kb__wk_do_case(const kb__req *q, int arena_fd, int out_fd)
{
    if (!W.loaded || q->layout.slot >= KB__MAX_CASES || arena_fd < 0 || out_fd < 0) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, "bad case request");
        goto out;
    }
    kb__wcase *k = &W.cases[q->layout.slot];
    if (k->ready) unmap_case(k);
    k->layout = q->layout;
    k->arena_size = k->layout.arena_size;
    k->arena = mmap(NULL, k->layout.arena_size, PROT_READ, MAP_SHARED, arena_fd, 0);
    if (k->arena == MAP_FAILED) {
        char err[512];
        k->arena = NULL;
        snprintf(err, sizeof err, "cannot map inputs: %s", strerror(errno));
        kb__wk_reply_code(KB__REP_REFUSED, -1, err);
        goto out;
    }
    const char *why = map_outputs(k, out_fd);
    if (!why) why = map_inputs(k);
    if (why) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, why);
        goto out;
    }
    k->ready = 1;
    prepare_case(k, q->flags);
out:
    if (arena_fd >= 0) close(arena_fd);
    if (out_fd >= 0) close(out_fd);
}

/* The timed sets, after prepare: prepare has returned and no plugin code
 * runs between requests, so the plugin meets them first in a timed call. */
void kb__wk_do_inputs(const kb__req *q, int fd)
{
    if (q->slot >= KB__MAX_CASES || !W.cases[q->slot].ready || fd < 0 || W.cases[q->slot].calls) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, "bad inputs request");
        return;
    }
    kb__wcase *k = &W.cases[q->slot];
    const kb__layout *L = &k->layout;
    void *m = mmap(NULL, L->calls_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        char err[160];
        snprintf(err, sizeof err, "cannot map inputs: %s", strerror(errno));
        kb__wk_reply_code(KB__REP_REFUSED, -1, err);
        return;
    }
    k->calls = m;
    k->calls_size = L->calls_size;
    mprotect(k->ins, k->ins_size, PROT_READ | PROT_WRITE);
    for (uint32_t r = 0; r < L->n_reps; r++)
        for (int s = 0; s < KB__SETS; s++)
            for (uint32_t i = 0; i < L->n_calls; i++) {
                const uint32_t bi = L->n_statics + i;
                k->ins[r * KB__SETS + s][i] =
                    (kb_buffer){k->calls + L->buf[bi].off[s] + r * L->rep_stride, L->buf[bi].count,
                                0, L->buf[bi].dtype, 0};
            }
    mprotect(k->ins, k->ins_size, PROT_READ);
    kb__wk_reply_code(KB__REP_OK, 0, NULL);
}

void kb__wk_do_release(const kb__req *q)
{
    if (q->slot >= KB__MAX_CASES || !W.cases[q->slot].ready) {
        kb__wk_reply_code(KB__REP_REFUSED, -1, "bad release request");
        return;
    }
    kb__wcase *k = &W.cases[q->slot];
    W.lib.plugin->release(k->state);
    unmap_case(k);
    kb__wk_reply_code(KB__REP_OK, 0, NULL);
}
