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
#define KB__PHASE_TIMEOUT_MIN_S 2.0
static double phase_timeout(const kb__trial_opts *o)
{
    return o->budget > KB__PHASE_TIMEOUT_MIN_S ? o->budget : KB__PHASE_TIMEOUT_MIN_S;
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
    s->w.sock = s->w.start_sock = s->w.out_rd = s->w.stat_fd = -1;
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
    r->geomean = r->worst = r->geomean_within = r->worst_within = (kb__ci){nan_, nan_, nan_};
    r->spread_pct = nan_;
    r->noise_pct = r->drift_pct = r->fresh_ratio = r->fresh_lo = r->fresh_hi = nan_;
}

/* One trial's state while it runs. The cases are the context's, which a
 * cache shares with later trials; what a trial changes per case lives in
 * its own runs[] (kb__case_run). */
typedef struct trial {
    const kb__trial_opts *o;
    kb__ctx_cache *cache, local;
    kb__side *cand, *base;
    kb__ctx *ctx;
    const kb_target *t;
    kb__case_data *cases;
    kb__case_run runs[KB__MAX_CASES];
    uint32_t n_cases;
    kb__samples *smp;
    kb__failure fail;
    int cpu;
} trial;

/* A step's outcome besides 0 (go on) and a negative code (no trial could
 * run): the trial ends with the verdict in T->fail. */
#define VERDICT 1

static void side_init(kb__side *s)
{
    s->snap.fd = -1;
    s->w.pid = -1;
    s->w.sock = s->w.start_sock = s->w.out_rd = s->w.stat_fd = -1;
    for (int i = 0; i < KB__MAX_CASES; i++) s->ob[i].fd = -1;
}

/* The candidate and --against must exist: a usage error, not a verdict. */
static int check_paths(const kb__trial_opts *o, char *err, size_t err_len)
{
    if (access(o->candidate, F_OK) != 0) {
        kb__errf(err, err_len, "%s: %s; build it first (cmake --build build) or check the path",
                 o->candidate, strerror(errno));
        return KB__EUSAGE;
    }
    if (o->against && strcmp(o->against, "oracle") && access(o->against, F_OK) != 0) {
        kb__errf(err, err_len, "--against %s: %s", o->against, strerror(errno));
        return KB__EUSAGE;
    }
    return 0;
}

/* The host waits on another CPU than the workers' (the last one). Returns
 * whether *saved holds the affinity to restore. */
static int host_cpu_away(int cpu, cpu_set_t *saved)
{
    const int restore = sched_getaffinity(0, sizeof *saved, saved) == 0;
    if (restore && cpu > 0 && CPU_COUNT(saved) > 1) {
        cpu_set_t others = *saved;
        CPU_CLR(cpu, &others);
        sched_setaffinity(0, sizeof others, &others);
    }
    return restore;
}

/* The warm state of `target` into T->ctx. 0; VERDICT (rejected, the reason
 * led by `by` and `name`) when its oracle is not found; else the error. */
static int get_context(trial *T, const char *target, const char *by, const char *name, char *err,
                       size_t err_len)
{
    const kb__trial_opts *o = T->o;
    int rc = (o->verify_only ? kb__ctx_get_check : kb__ctx_get)(
        T->cache, target, o->oracles_dir, o->cases, o->seed, &T->ctx, err, err_len);
    if (rc == KB__ENOTFOUND) {
        T->fail.status = KB__ST_REJECTED;
        kb__errf(T->fail.reason, sizeof T->fail.reason, "%s%s: %s", by, name, err);
        return VERDICT;
    }
    return rc;
}

/* A foreign candidate is bound to its target's spec before any of its
 * code runs. 0 with *fplan filled, VERDICT, or a usage error. */
static int bind_foreign(trial *T, kb__result *r, kb__fplan *fplan, char *err, size_t err_len)
{
    const kb__trial_opts *o = T->o;
    snprintf(r->candidate, sizeof r->candidate, "%s:%s", o->candidate, o->foreign_sym);
    int rc = get_context(T, o->foreign_target, "--target ", o->foreign_target, err, err_len);
    if (rc != 0) return rc;
    rc = kb__foreign_bind(T->ctx->t, o->foreign_sig, o->foreign_sym, fplan, T->fail.reason,
                          sizeof T->fail.reason);
    if (rc == KB__EUSAGE) { /* unreadable --sig: a usage error, not a verdict */
        kb__errf(err, err_len, "%s", T->fail.reason);
        return rc;
    }
    if (rc != 0) {
        T->fail.status = KB__ST_REJECTED;
        return VERDICT;
    }
    return 0;
}

/* Steps 1-2: the candidate, in its worker. */
static int open_candidate(trial *T, kb__result *r, char *err, size_t err_len)
{
    kb__fplan fplan, *fp = NULL;
    if (T->o->foreign_sym) {
        const int rc = bind_foreign(T, r, &fplan, err, err_len);
        if (rc != 0) return rc;
        fp = &fplan;
    }
    if (side_open(T->cand, T->o->candidate, "candidate", T->o, T->cpu, fp, &T->fail) != 0)
        return VERDICT;
    snprintf(r->cand_digest, sizeof r->cand_digest, "%s", T->cand->snap.digest_hex);
    snprintf(r->target, sizeof r->target, "%s", T->cand->desc.target);
    snprintf(r->cand_name, sizeof r->cand_name, "%s", T->cand->desc.name);
    return 0;
}

/* Steps 3-4: oracle and cases, warm if this cache has seen the target. */
static int load_context(trial *T, kb__result *r, char *err, size_t err_len)
{
    const kb__trial_opts *o = T->o;
    const int rc = get_context(T, T->cand->desc.target, "", o->candidate, err, err_len);
    if (rc != 0) return rc;
    kb__ctx *ctx = T->ctx;
    /* A session's seed stays secret while the session lives: its inputs
     * are reused by every later trial. A one-shot trial reveals it. */
    r->seed = T->cache == &T->local ? ctx->seed : 0;
    if (kb__noise_load(ctx->target, &r->noise_floor_pct, NULL, 0) != 0) r->noise_floor_pct = NAN;
    snprintf(r->oracle_digest, sizeof r->oracle_digest, "%s", ctx->osnap.digest_hex);
    T->t = ctx->t;
    T->cases = ctx->cases;
    T->n_cases = ctx->n_cases;
    kb__inputs_describe(T->t, T->cases, T->n_cases, r->inputs, sizeof r->inputs);
    r->input_sets = ctx->n_sets;
    T->cand->threaded_ok = T->base->threaded_ok = (T->t->flags & KB_TARGET_MULTITHREADED) != 0;
    T->cand->w.fpenv_free = T->base->w.fpenv_free = (T->t->flags & KB_TARGET_FPENV_FREE) != 0;
    return 0;
}

/* Step 5: the baseline (the oracle again, --against, or what baseline_for
 * names once the candidate's target is known), for its target. */
static int open_baseline(trial *T, kb__result *r, char *err, size_t err_len)
{
    const kb__trial_opts *o = T->o;
    const char *against = o->against;
    if (o->baseline_for) {
        const int rc = o->baseline_for(o->baseline_arg, T->t->name, &against, err, err_len);
        if (rc != 0) return rc;
        snprintf(r->against, sizeof r->against, "%s", against ? against : "oracle");
    }
    const char *bpath = (!against || !strcmp(against, "oracle")) ? T->ctx->oracle_path : against;
    if (side_open(T->base, bpath, "baseline", o, T->cpu, NULL, &T->fail) != 0) return VERDICT;
    snprintf(r->against_digest, sizeof r->against_digest, "%s", T->base->snap.digest_hex);
    if (strcmp(T->base->desc.target, T->t->name)) {
        T->fail.status = KB__ST_REJECTED;
        kb__errf(T->fail.reason, sizeof T->fail.reason,
                 "--against %s is a plugin for target '%s', the candidate's is '%s'", bpath,
                 T->base->desc.target, T->t->name);
        return VERDICT;
    }
    return 0;
}

/* Step 6a: prepare every case, candidate first. Out of memory for output
 * buffers ends the trial without a verdict. */
static int prepare_cases(trial *T, char *err, size_t err_len)
{
    const double tmo = phase_timeout(T->o);
    for (uint32_t c = 0; c < T->n_cases; c++) {
        int rc = side_prepare(T->cand, &T->cases[c], tmo, &T->fail, err, err_len);
        if (rc == KB__ENOMEM) return rc;
        if (rc) return VERDICT;
        if (T->o->verify_only) continue;
        rc = side_prepare(T->base, &T->cases[c], tmo, &T->fail, err, err_len);
        if (rc == KB__ENOMEM) return rc;
        if (rc) return VERDICT;
    }
    return 0;
}

/* Step 6b: the timed sets to both sides; the candidate checked on every
 * one of them, the baseline on one. */
static int check_cases(trial *T)
{
    const double tmo = phase_timeout(T->o);
    for (uint32_t c = 0; c < T->n_cases; c++) {
        kb__case_data *cd = &T->cases[c];
        if (side_inputs(T->cand, cd, tmo, &T->fail) != 0) return VERDICT;
        for (uint32_t s = 0; s < KB__SETS; s++) {
            double ns;
            const double btmo = 2.0 + 100.0 * cd->oracle_ns / 1e9;
            if (kb__side_batch(T->cand, T->t, cd, &T->runs[c], &s, 1, 1, btmo, &ns, &T->fail) != 0)
                return VERDICT;
        }
        if (T->o->verify_only) continue;
        if (side_inputs(T->base, cd, tmo, &T->fail) != 0) return VERDICT;
        uint32_t s0 = 0;
        double ns;
        if (kb__side_batch(T->base, T->t, cd, &T->runs[c], &s0, 1, 1, 10.0, &ns, &T->fail) != 0)
            return VERDICT;
    }
    return 0;
}

/* Step 7: timing, or for --verify the verdict "correct". */
static int time_cases(trial *T, kb__result *r)
{
    if (!T->o->verify_only)
        return kb__measure(T->o, T->t, T->cases, T->runs, T->n_cases, T->cand, T->base, T->smp, r,
                           &T->fail) != 0
                   ? VERDICT
                   : 0;
    r->status = KB__ST_CORRECT;
    r->n_cases = T->n_cases;
    for (uint32_t c = 0; c < T->n_cases; c++)
        snprintf(r->cases[c].name, sizeof r->cases[c].name, "%s", T->cases[c].cs->name);
    kb__errf(r->reason, sizeof r->reason, "all %u cases match the oracle on %d input sets each",
             T->n_cases, KB__SETS);
    return 0;
}

/* Step 8: a crash or exit in release fails the trial, and so does a case
 * whose inputs changed. */
static int teardown(trial *T)
{
    const double tmo = phase_timeout(T->o);
    if (side_release_all(T->cand, T->cases, T->n_cases, tmo, &T->fail) != 0) return VERDICT;
    if (!T->o->verify_only && side_release_all(T->base, T->cases, T->n_cases, tmo, &T->fail) != 0)
        return VERDICT;
    for (uint32_t c = 0; c < T->n_cases; c++)
        if (kb__case_digest(&T->cases[c]) != T->cases[c].input_digest) {
            T->fail.status = KB__ST_REJECTED;
            kb__errf(T->fail.reason, sizeof T->fail.reason,
                     "inputs of case %s changed: a plugin wrote to input", T->cases[c].cs->name);
            return VERDICT;
        }
    return 0;
}

/* Steps 3 to 8, once the candidate runs. */
static int run_loaded(trial *T, kb__result *r, char *err, size_t err_len)
{
    int rc = load_context(T, r, err, err_len);
    if (rc == 0 && !T->o->verify_only) rc = open_baseline(T, r, err, err_len);
    if (rc == 0) rc = prepare_cases(T, err, err_len);
    if (rc == 0) rc = check_cases(T);
    if (rc == 0) {
        r->prepare_ms = T->cand->prepare_ms;
        rc = time_cases(T, r);
    }
    if (rc == 0) rc = teardown(T);
    return rc;
}

static void samples_free(kb__samples *smp)
{
    for (uint32_t c = 0; smp && c < KB__MAX_CASES; c++) {
        free(smp[c].logr);
        free(smp[c].cand_ns);
        free(smp[c].base_ns);
        free(smp[c].k);
        free(smp[c].tmp);
        free(smp[c].cand_gap);
        free(smp[c].base_gap);
    }
    free(smp);
}

/* The trial's steal, and a timed verdict's reason saying when the machine
 * was too busy or stolen from for its timing to be trusted. */
static void env_end(kb__result *r)
{
    kb__env_end(&r->env);
    char note[192];
    kb__env_noise_note(&r->env, note, sizeof note);
    const size_t n = strlen(r->reason);
    if (kb__status_timed(r->status) && note[0] && n < sizeof r->reason)
        snprintf(r->reason + n, sizeof r->reason - n, "%s", note);
}

int kb__trial_run(const kb__trial_opts *o, kb__ctx_cache *cache, kb__result *r, char *err,
                  size_t err_len)
{
    uint64_t t0 = kb__now_ns();
    trial tr, *T = &tr;
    memset(T, 0, sizeof *T);
    T->o = o;
    T->cache = cache ? cache : &T->local;
    T->cand = calloc(1, sizeof *T->cand);
    T->base = calloc(1, sizeof *T->base);
    T->smp = calloc(KB__MAX_CASES, sizeof *T->smp);
    T->fail = (kb__failure){KB__ST_CRASH, ""};
    /* before anything can fail: side_close must find no descriptor or pid */
    if (T->cand) side_init(T->cand);
    if (T->base) side_init(T->base);
    int rc = 0, restore = 0, hwc_open = 0, lock = -1;
    kb__hwc hwc;
    cpu_set_t saved;
    no_timing(r);
    r->noise_floor_pct = NAN;
    r->inputs[0] = 0;
    r->input_sets = 0;
    kb__env_begin(&r->env);
    if (!T->cand || !T->base || !T->smp) {
        kb__errf(err, err_len, "out of memory");
        rc = KB__ENOMEM;
        goto out;
    }
    snprintf(r->candidate, sizeof r->candidate, "%s", o->candidate);
    snprintf(r->against, sizeof r->against, "%s", o->against ? o->against : "oracle");
    if ((rc = check_paths(o, err, err_len)) != 0) goto out;
    T->cpu = last_cpu();
    /* Its workers run on that CPU from the first check to the last timed
     * call: the whole trial holds the CPU's lock (cpulock.c), and its time
     * starts when it has it. */
    lock = kb__cpu_lock(T->cpu, stderr);
    t0 = kb__now_ns();
    restore = host_cpu_away(T->cpu, &saved);
    rc = open_candidate(T, r, err, err_len);
    if (rc == 0) {
        kb__hwc_open(&hwc, T->cand->w.pid);
        hwc_open = 1;
        rc = run_loaded(T, r, err, err_len);
    }
    if (rc < 0) goto out;
    if (rc == VERDICT) {
        rc = 0; /* a verdict, not a failure to run the trial */
        r->status = T->fail.status;
        kb__errf(r->reason, sizeof r->reason, "%s", T->fail.reason);
        no_timing(r);
        r->n_cases = 0;
    }
    if (T->cand->w.pid > 0) {
        kb__worker_kill(&T->cand->w);
        r->peak_rss_kb = T->cand->w.ru.ru_maxrss;
    }
out:
    if (T->cand) side_close(T->cand);
    if (T->base) side_close(T->base);
    kb__cpu_unlock(lock);
    samples_free(T->smp);
    kb__ctx_cache_free(&T->local);
    free(T->cand);
    free(T->base);
    if (hwc_open)
        kb__hwc_close(&hwc, r->hw_counters, sizeof r->hw_counters);
    else
        snprintf(r->hw_counters, sizeof r->hw_counters, "n/a (no candidate ran)");
    if (restore) sched_setaffinity(0, sizeof saved, &saved);
    r->trial_seconds = (double)(kb__now_ns() - t0) / 1e9;
    env_end(r);
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
