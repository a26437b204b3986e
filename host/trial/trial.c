/*
 * trial.c -- the path of one trial, start to verdict.
 *
 *  1. snapshot the candidate (a sealed private copy) and check its ELF;
 *  2. load it in a fresh worker, re-check the descriptor it reports;
 *  3. find and load the target's oracle in the host (trusted, pinned);
 *  4. per case, generate inputs from a secret seed and compute oracle outputs;
 *  5. load the baseline (the oracle again, or --against) in its own worker;
 *  6. prepare every case on both sides; check the candidate on every input set;
 *  7. measure (measure.c), checking every timed output as well;
 *  8. release every case, shut both workers down; prove inputs untouched.
 * Any failure along the way is a verdict, never a host failure.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "hwc.h"
#include "trial.h"

static void fail_result(kb__result *r, kb__status st, const char *reason)
{
    r->status = st;
    kb__errf(r->reason, sizeof r->reason, "%s", reason);
}

static int last_cpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int c = CPU_SETSIZE - 1; c >= 0; c--)
        if (CPU_ISSET(c, &set)) return c;
    return -1;
}

/* Deadline for a plugin's untimed phases (load with its constructors, one
 * case's prepare, release): the timing budget, at least 2 s. A plugin that
 * spends longer there is contained like one that hangs, and a short
 * --budget keeps a hung plugin's trial short. */
static double phase_timeout(const kb__trial_opts *o)
{
    return o->budget > 2.0 ? o->budget : 2.0;
}

/* The ELF checks; a foreign library (fp) need not export kb_plugin_entry_v1,
 * the only thing elf.c reports as KB__EABI. Its symbol is looked up in the
 * worker, inside the sandbox. */
static int elf_check(int fd, const char *path, const kb__fplan *fp, char *err, size_t err_len)
{
    const int rc = kb__elf_check_fd(fd, path, err, err_len);
    return fp && rc == KB__EABI ? 0 : rc;
}

/* Snapshot, ELF-check, spawn and load one plugin into a side; with fp, a
 * foreign function bound by fp instead. Returns 0, or fills fail. */
/* After loading, from outside the worker: every thread carries the
 * worker's two filters (a constructor that skipped the post-load one, or
 * stacked its own, shows a different count), and the memory map holds
 * nothing executable that is writable or no file's; it is kept for the
 * check after every batch (batch.c). Off where the worker runs without a
 * filter (an emulator, valgrind); a sanitizer build keeps the first only. */
static int check_hardened(kb__side *s, const char *path, kb__failure *fail)
{
    if (kb__worker_emulated() || KB__VALGRIND) return 0;
    int lo, hi;
    const int want = KB__ASAN ? 1 : 2;
    if (kb__worker_filters(s->w.pid, &lo, &hi) == 0 && lo >= 0 && (lo != want || hi != want)) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason,
                 "%s: after loading, the worker's threads carry %d to %d system-call filters, "
                 "not the harness's %d: a constructor tampered with the sandbox",
                 path, lo, hi, want);
        return KB__ECHILD;
    }
    char why[400];
    if (kb__maps_snapshot(s->w.pid, &s->maps, why, sizeof why) != 0) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s: the worker %s", path, why);
        return KB__ECHILD;
    }
    return 0;
}

static int side_open(kb__side *s, const char *path, const char *label, const kb__trial_opts *o,
                     int cpu, const kb__fplan *fp, kb__failure *fail)
{
    char err[512];
    if (getrandom(&s->rng, sizeof s->rng, 0) != sizeof s->rng) s->rng = kb__now_ns();
    for (int i = 0; i < KB__MAX_CASES; i++) s->ob[i].fd = -1;
    s->w.pid = -1;
    s->w.sock = s->w.start_sock = s->w.out_rd = -1;
    if (kb__snapshot_take(path, &s->snap, err, sizeof err) != 0 ||
        elf_check(s->snap.fd, path, fp, err, sizeof err) != 0) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s", err);
        return KB__EFORMAT;
    }
    kb__limits lim = {
        .as_bytes = 16ull << 30, .cpu_seconds = (uint32_t)(o->budget * 4 + 60), .cpu = cpu};
    if (kb__worker_spawn(&s->w, o->exe, label, &lim, err, sizeof err) != 0) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s", err);
        return KB__EIO;
    }
    kb__req q;
    memset(&q, 0, sizeof q);
    q.type = KB__REQ_LOAD;
    snprintf(q.path, sizeof q.path, "%s", path);
    if (fp) q.foreign = *fp;
    kb__rep rep;
    int rc = kb__worker_call(&s->w, &q, &s->snap.fd, 1, &rep, phase_timeout(o), NULL, fail,
                             "load (constructors and kb_plugin_entry_v1)");
    if (rc != 0) return rc;
    if (rep.type != KB__REP_OK) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s", rep.msg);
        return KB__EABI;
    }
    /* The worker is untrusted: check what it says again, here. */
    rep.desc.target[sizeof rep.desc.target - 1] = 0;
    rep.desc.name[sizeof rep.desc.name - 1] = 0;
    rep.desc.version[sizeof rep.desc.version - 1] = 0;
    if (kb__desc_check(&rep.desc, path, err, sizeof err) != 0) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s", err);
        return KB__EABI;
    }
    if (fp && strcmp(rep.desc.target, fp->target)) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s: the worker reports target '%s', not '%s'",
                 path, rep.desc.target, fp->target);
        return KB__EABI;
    }
    s->desc = rep.desc;
    if ((rc = check_hardened(s, path, fail)) != 0) return rc;
    const uint64_t missing = rep.desc.cpu_features & ~kb__cpu_features();
    if (missing) {
        char names[256];
        kb__cpu_feature_names(missing, names, sizeof names);
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason,
                 "%s: needs CPU features this machine lacks: %s; trial it on a machine that has "
                 "them, or build a variant without them",
                 path, names);
        return KB__EABI;
    }
    return 0;
}

static int side_prepare(kb__side *s, kb__case_data *cd, double timeout_s, kb__failure *fail,
                        char *err, size_t err_len)
{
    const uint32_t slot = cd->layout.slot;
    /* Each side writes output memory of its own: pages both could map
     * writable, one could take away under the other (MADV_REMOVE punches
     * them out of the memfd, and the other side then page-faults inside
     * its timed interval). */
    if (kb__outbuf_create(&cd->layout, &s->ob[slot], err, err_len) != 0) return KB__ENOMEM;
    kb__req q;
    memset(&q, 0, sizeof q);
    q.type = KB__REQ_CASE;
    q.layout = cd->layout;
    int fds[2] = {cd->ro_fd, s->ob[slot].fd};
    kb__rep rep;
    char what[160];
    snprintf(what, sizeof what, "prepare of case %s", cd->cs->name);
    int rc = kb__worker_call(&s->w, &q, fds, 2, &rep, timeout_s, NULL, fail, what);
    if (rc != 0) return rc;
    if (rep.type != KB__REP_OK) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s %s (case %s)", s->w.label, rep.msg,
                 cd->cs->name);
        return KB__ECHILD;
    }
    s->prepared[slot] = 1;
    s->prepare_ms += (double)rep.ns / 1e6;
    return 0;
}

/* A case's timed sets, sent once every case is prepared: prepare, the one
 * untimed plugin code that sees inputs, never has a per-call set mapped,
 * this case's or any other's (arena.c). */
static int side_inputs(kb__side *s, kb__case_data *cd, double timeout_s, kb__failure *fail)
{
    kb__req q;
    memset(&q, 0, sizeof q);
    q.type = KB__REQ_INPUTS;
    q.slot = cd->layout.slot;
    kb__rep rep;
    char what[160];
    snprintf(what, sizeof what, "mapping of the inputs of case %s", cd->cs->name);
    int rc = kb__worker_call(&s->w, &q, &cd->cro_fd, 1, &rep, timeout_s, NULL, fail, what);
    if (rc) return rc;
    if (rep.type != KB__REP_OK) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s %s (case %s)", s->w.label, rep.msg,
                 cd->cs->name);
        return KB__ECHILD;
    }
    return 0;
}

static int side_release_all(kb__side *s, kb__case_data *cases, uint32_t n, double timeout_s,
                            kb__failure *fail)
{
    for (uint32_t c = 0; c < n; c++) {
        if (!s->prepared[c]) continue;
        kb__req q;
        memset(&q, 0, sizeof q);
        q.type = KB__REQ_RELEASE;
        q.slot = c;
        kb__rep rep;
        char what[160];
        snprintf(what, sizeof what, "release of case %s", cases[c].cs->name);
        int rc = kb__worker_call(&s->w, &q, NULL, 0, &rep, timeout_s, NULL, fail, what);
        if (rc != 0) return rc;
        s->prepared[c] = 0;
    }
    return kb__worker_quit(&s->w, timeout_s, fail);
}

static void side_close(kb__side *s)
{
    kb__worker_kill(&s->w);
    for (int i = 0; i < KB__MAX_CASES; i++)
        if (s->ob[i].base || s->ob[i].fd >= 0) kb__outbuf_free(&s->ob[i]);
    kb__snapshot_close(&s->snap);
    kb__maps_free(&s->maps);
}

static void no_timing(kb__result *r)
{
    const double nan_ = NAN;
    r->geomean = r->worst = (kb__ci){nan_, nan_, nan_};
    r->noise_pct = r->drift_pct = r->fresh_ratio = r->fresh_lo = r->fresh_hi = nan_;
}

int kb__trial_run(const kb__trial_opts *o, kb__ctx_cache *cache, kb__result *r, char *err,
                  size_t err_len)
{
    const uint64_t t0 = kb__now_ns();
    kb__side *cand = calloc(1, sizeof *cand), *base = calloc(1, sizeof *base);
    kb__ctx_cache local;
    memset(&local, 0, sizeof local);
    if (!cache) cache = &local;
    kb__ctx *ctx = NULL;
    kb__case_data *cases = NULL;
    kb__samples *smp = calloc(KB__MAX_CASES, sizeof *smp);
    kb__failure fail = {KB__ST_CRASH, ""};
    int rc = 0, restore = 0, hwc_open = 0;
    kb__hwc hwc;
    uint32_t n_cases = 0;
    cpu_set_t saved;
    no_timing(r);
    r->noise_floor_pct = NAN;
    r->inputs[0] = 0;
    if (!cand || !base || !smp) {
        kb__errf(err, err_len, "out of memory");
        rc = KB__ENOMEM;
        goto out;
    }
    cand->snap.fd = base->snap.fd = -1;
    cand->w.pid = base->w.pid = -1;
    cand->w.sock = cand->w.start_sock = cand->w.out_rd = -1;
    base->w.sock = base->w.start_sock = base->w.out_rd = -1;
    for (int i = 0; i < KB__MAX_CASES; i++) cand->ob[i].fd = base->ob[i].fd = -1;
    snprintf(r->candidate, sizeof r->candidate, "%s", o->candidate);
    snprintf(r->against, sizeof r->against, "%s", o->against ? o->against : "oracle");
    if (access(o->candidate, F_OK) != 0) {
        kb__errf(err, err_len, "%s: %s; build it first (cmake --build build) or check the path",
                 o->candidate, strerror(errno));
        rc = KB__EUSAGE;
        goto out;
    }
    if (o->against && strcmp(o->against, "oracle") && access(o->against, F_OK) != 0) {
        kb__errf(err, err_len, "--against %s: %s", o->against, strerror(errno));
        rc = KB__EUSAGE;
        goto out;
    }
    const int cpu = last_cpu();
    /* The host waits on another CPU than the workers'. */
    restore = sched_getaffinity(0, sizeof saved, &saved) == 0;
    if (restore && cpu > 0 && CPU_COUNT(&saved) > 1) {
        cpu_set_t others = saved;
        CPU_CLR(cpu, &others);
        sched_setaffinity(0, sizeof others, &others);
    }

    /* 1-2. candidate; a foreign one is bound to its target's spec first,
     * before any of its code runs */
    kb__fplan fplan, *fp = NULL;
    if (o->foreign_sym) {
        snprintf(r->candidate, sizeof r->candidate, "%s:%s", o->candidate, o->foreign_sym);
        rc = kb__ctx_get(cache, o->foreign_target, o->oracles_dir, o->cases, o->seed, &ctx, err,
                         err_len);
        if (rc == KB__ENOTFOUND) {
            fail.status = KB__ST_REJECTED;
            kb__errf(fail.reason, sizeof fail.reason, "--target %s: %s", o->foreign_target, err);
            rc = 0;
            goto verdict;
        }
        if (rc != 0) goto out;
        rc = kb__foreign_bind(ctx->t, o->foreign_sig, o->foreign_sym, &fplan, fail.reason,
                              sizeof fail.reason);
        if (rc == KB__EUSAGE) { /* unreadable --sig: a usage error, not a verdict */
            kb__errf(err, err_len, "%s", fail.reason);
            goto out;
        }
        if (rc != 0) {
            fail.status = KB__ST_REJECTED;
            goto verdict;
        }
        fp = &fplan;
    }
    if (side_open(cand, o->candidate, "candidate", o, cpu, fp, &fail) != 0) goto verdict;
    snprintf(r->cand_digest, sizeof r->cand_digest, "%s", cand->snap.digest_hex);
    snprintf(r->target, sizeof r->target, "%s", cand->desc.target);
    snprintf(r->cand_name, sizeof r->cand_name, "%s", cand->desc.name);
    kb__hwc_open(&hwc, cand->w.pid);
    hwc_open = 1;

    /* 3-4. oracle and cases: warm if this cache has seen the target */
    rc = kb__ctx_get(cache, cand->desc.target, o->oracles_dir, o->cases, o->seed, &ctx, err,
                     err_len);
    if (rc == KB__ENOTFOUND) {
        fail.status = KB__ST_REJECTED;
        kb__errf(fail.reason, sizeof fail.reason, "%s: %s", o->candidate, err);
        rc = 0;
        goto verdict;
    }
    if (rc != 0) goto out;
    /* A session's seed stays secret while the session lives: its inputs
     * are reused by every later trial. A one-shot trial reveals it. */
    r->seed = cache == &local ? ctx->seed : 0;
    if (kb__noise_load(ctx->target, &r->noise_floor_pct, NULL, 0) != 0) r->noise_floor_pct = NAN;
    snprintf(r->oracle_digest, sizeof r->oracle_digest, "%s", ctx->osnap.digest_hex);
    const kb_target *t = ctx->t;
    const char *opath = ctx->oracle_path;
    cases = ctx->cases;
    n_cases = ctx->n_cases;
    kb__inputs_describe(t, cases, n_cases, r->inputs, sizeof r->inputs);
    cand->threaded_ok = base->threaded_ok = (t->flags & KB_TARGET_MULTITHREADED) != 0;
    cand->w.fpenv_free = base->w.fpenv_free = (t->flags & KB_TARGET_FPENV_FREE) != 0;

    /* 5. baseline */
    const char *against = o->against;
    if (!o->verify_only && o->baseline_for) {
        if ((rc = o->baseline_for(o->baseline_arg, t->name, &against, err, err_len)) != 0) goto out;
        snprintf(r->against, sizeof r->against, "%s", against ? against : "oracle");
    }
    const char *bpath = (!against || !strcmp(against, "oracle")) ? opath : against;
    if (!o->verify_only) {
        if (side_open(base, bpath, "baseline", o, cpu, NULL, &fail) != 0) goto verdict;
        snprintf(r->against_digest, sizeof r->against_digest, "%s", base->snap.digest_hex);
        if (strcmp(base->desc.target, t->name)) {
            fail.status = KB__ST_REJECTED;
            kb__errf(fail.reason, sizeof fail.reason,
                     "--against %s is a plugin for target '%s', the candidate's is '%s'", bpath,
                     base->desc.target, t->name);
            goto verdict;
        }
    }

    /* 6. prepare every case, candidate first; then check every input set */
    for (uint32_t c = 0; c < n_cases; c++) {
        if ((rc = side_prepare(cand, &cases[c], phase_timeout(o), &fail, err, err_len)) ==
            KB__ENOMEM)
            goto out;
        if (rc) goto verdict;
        if (!o->verify_only) {
            if ((rc = side_prepare(base, &cases[c], phase_timeout(o), &fail, err, err_len)) ==
                KB__ENOMEM)
                goto out;
            if (rc) goto verdict;
        }
    }
    for (uint32_t c = 0; c < n_cases; c++) {
        if (side_inputs(cand, &cases[c], phase_timeout(o), &fail) != 0) goto verdict;
        for (uint32_t s = 0; s < KB__SETS; s++) {
            double ns;
            const double tmo = 2.0 + 100.0 * cases[c].oracle_ns / 1e9;
            if (kb__side_batch(cand, t, &cases[c], &s, 1, 1, tmo, &ns, &fail) != 0) goto verdict;
        }
        if (!o->verify_only) {
            if (side_inputs(base, &cases[c], phase_timeout(o), &fail) != 0) goto verdict;
            uint32_t s0 = 0;
            double ns;
            if (kb__side_batch(base, t, &cases[c], &s0, 1, 1, 10.0, &ns, &fail) != 0) goto verdict;
        }
    }
    r->prepare_ms = cand->prepare_ms;

    /* 7. timing */
    if (o->verify_only) {
        r->status = KB__ST_CORRECT;
        r->n_cases = n_cases;
        for (uint32_t c = 0; c < n_cases; c++)
            snprintf(r->cases[c].name, sizeof r->cases[c].name, "%s", cases[c].cs->name);
        kb__errf(r->reason, sizeof r->reason, "all %u cases match the oracle on %d input sets each",
                 n_cases, KB__SETS);
    } else if (kb__measure(o, t, cases, n_cases, cand, base, smp, r, &fail) != 0) {
        goto verdict;
    }

    /* 8. teardown: a crash or exit in release fails the trial */
    if (side_release_all(cand, cases, n_cases, phase_timeout(o), &fail) != 0) goto verdict;
    if (!o->verify_only && side_release_all(base, cases, n_cases, phase_timeout(o), &fail) != 0)
        goto verdict;
    for (uint32_t c = 0; c < n_cases; c++)
        if (kb__case_digest(&cases[c]) != cases[c].input_digest) {
            fail.status = KB__ST_REJECTED;
            kb__errf(fail.reason, sizeof fail.reason,
                     "inputs of case %s changed: a plugin wrote to input", cases[c].cs->name);
            goto verdict;
        }
    goto done;

verdict:
    rc = 0; /* a verdict, not a failure to run the trial */
    r->status = fail.status;
    kb__errf(r->reason, sizeof r->reason, "%s", fail.reason);
    no_timing(r);
    r->n_cases = 0;
done:
    if (cand && cand->w.pid > 0) {
        kb__worker_kill(&cand->w);
        r->peak_rss_kb = cand->w.ru.ru_maxrss;
    }
out:
    if (cand) side_close(cand);
    if (base) side_close(base);
    for (uint32_t c = 0; smp && c < KB__MAX_CASES; c++) {
        free(smp[c].logr);
        free(smp[c].cand_ns);
        free(smp[c].base_ns);
        free(smp[c].k);
        free(smp[c].tmp);
        free(smp[c].cand_gap);
        free(smp[c].base_gap);
    }
    kb__ctx_cache_free(&local);
    free(cand);
    free(base);
    free(smp);
    if (hwc_open)
        kb__hwc_close(&hwc, r->hw_counters, sizeof r->hw_counters);
    else
        snprintf(r->hw_counters, sizeof r->hw_counters, "n/a (no candidate ran)");
    if (restore) sched_setaffinity(0, sizeof saved, &saved);
    r->trial_seconds = (double)(kb__now_ns() - t0) / 1e9;
    (void)fail_result;
    return rc;
}

int kb__plugin_probe(const char *path, const char *exe, kb__desc *d, char *digest_hex,
                     kb__failure *fail)
{
    kb__side *s = calloc(1, sizeof *s);
    if (!s) return KB__ENOMEM;
    s->snap.fd = -1;
    kb__trial_opts o;
    memset(&o, 0, sizeof o);
    o.exe = exe;
    o.budget = 1;
    int rc = side_open(s, path, "plugin", &o, -1, NULL, fail);
    if (s->snap.fd >= 0) snprintf(digest_hex, 17, "%s", s->snap.digest_hex);
    *d = s->desc;
    if (rc == 0) rc = kb__worker_quit(&s->w, 5.0, fail);
    side_close(s);
    free(s);
    return rc;
}
