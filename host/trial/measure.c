/*
 * measure.c -- interleaved, paired timing of candidate against baseline.
 *
 * Per case, batches are sized so one takes about KB__BATCH_NS (jittered, so
 * nothing can lock onto a period), both sides run the same number of calls
 * on the same input sets, and sides alternate in ABBA / BAAB blocks with a
 * random phase, so slow drift and "who ran second" hit both equally. Each
 * adjacent pair gives one log ratio. Cases are visited in a fresh random
 * order every round. The loop stops at the budget, or earlier once the
 * verdict has come out the same at two successive looks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "trial.h"

#define KB__BATCH_NS        3e6
#define KB__RESAMPLES       2000
#define KB__MIN_PAIRS       20
#define KB__MIN_PAIRS_CLEAR 8    /* enough for a clear-cut result */
#define KB__NOISE_MAX_PCT   15.0 /* per-sample noise past which CIs are widened, calibrated or not */

/* The sets a case's timed batches use. A cold target's: all of them (the
 * worker rotates through their replicas). A warm one's: as many as fit in
 * half the last-level cache together, at least 4: sixteen sets of a large
 * case overflow the cache, and then the second side of each pair finds in
 * it what the first side just loaded, which swings batch times
 * (docs/measurement.md, section 2). Every set is still checked before
 * timing. */
static uint32_t timed_sets(const kb_target *t, const kb__case_data *cd)
{
    if (t->flags & KB_TARGET_COLD_INPUTS) return KB__SETS;
    const double per_set = (double)cd->layout.rep_stride / KB__SETS;
    if (per_set <= 0) return KB__SETS;
    const double n = (double)kb__llc_bytes() / 2 / per_set;
    return n < 4 ? 4 : n > KB__SETS ? KB__SETS : (uint32_t)n;
}

/* Entries of a batch's set order for k calls: whole groups of n_sets, each
 * a random permutation of sets 0..n_sets-1. Every batch then holds each set
 * equally often (within one call), so a side's time per call does not swing
 * with the mix of sets a batch happened to draw (which would read as
 * drift), and a cold target's worker, moving to the next replica after
 * each group of KB__SETS, never reads one copy of a set twice in a row. */
static uint32_t order_len(uint64_t k, uint32_t n_sets)
{
    const uint32_t n = k < KB__MAX_ORDER ? (uint32_t)k : KB__MAX_ORDER;
    return n > n_sets ? n / n_sets * n_sets : n;
}

static void order_fill(uint32_t *order, uint32_t n, uint32_t n_sets, uint64_t *rng)
{
    for (uint32_t g = 0; g < n; g += n_sets) {
        uint32_t perm[KB__SETS];
        for (uint32_t i = 0; i < n_sets; i++) perm[i] = i;
        for (uint32_t i = n_sets; i > 1; i--) {
            const uint32_t j = (uint32_t)(kb__splitmix64(rng) % i), tmp = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = tmp;
        }
        for (uint32_t i = 0; i < n_sets && g + i < n; i++) order[g + i] = perm[i];
    }
}

static int grow(double **p, uint32_t cap)
{
    double *q = realloc(*p, cap * sizeof *q);
    if (!q) return KB__ENOMEM;
    *p = q;
    return 0;
}

static int push(kb__samples *s, double c, double b, double k, double gc, double gb)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 256;
        if (grow(&s->logr, cap) || grow(&s->cand_ns, cap) || grow(&s->base_ns, cap) ||
            grow(&s->k, cap) || grow(&s->tmp, cap) || grow(&s->cand_gap, cap) ||
            grow(&s->base_gap, cap))
            return KB__ENOMEM;
        s->cap = cap;
    }
    s->cand_ns[s->n] = c;
    s->base_ns[s->n] = b;
    s->cand_gap[s->n] = gc;
    s->base_gap[s->n] = gb;
    s->k[s->n] = k;
    s->n++;
    return 0;
}

/* Per-pair noise (MAD of the log ratios, as a normal sigma, in %, median
 * over cases) and common drift: how far both sides' per-call times moved
 * together from the first half of the trial to the second. Paired ratios
 * cancel most drift, but drift large enough to show here means the machine
 * changed under the trial. */
static double trial_health(kb__samples *smp, uint32_t n_cases, kb__result *r)
{
    double noise[KB__MAX_CASES], dc[KB__MAX_CASES], db[KB__MAX_CASES];
    double split = 0;
    uint32_t m = 0;
    for (uint32_t c = 0; c < n_cases; c++) {
        kb__samples *x = &smp[c];
        if (x->n < 4) continue;
        const double med = kb__median(x->logr, x->n);
        for (uint32_t i = 0; i < x->n; i++) x->tmp[i] = fabs(x->logr[i] - med);
        noise[m] = 1.4826 * kb__median(x->tmp, x->n);
        const uint32_t h = x->n / 2;
        /* how far the paired ratio itself moved between the halves */
        split += kb__median(x->logr + h, x->n - h) - kb__median(x->logr, h);
        double *side[2] = {x->cand_ns, x->base_ns};
        double d[2];
        for (int s = 0; s < 2; s++) {
            for (uint32_t i = 0; i < x->n; i++) x->tmp[i] = side[s][i] / x->k[i];
            const double a = kb__median(x->tmp, h), b = kb__median(x->tmp + h, x->n - h);
            d[s] = log(b / a);
        }
        dc[m] = d[0];
        db[m] = d[1];
        m++;
    }
    if (m == 0) {
        r->noise_pct = r->drift_pct = NAN;
        return 0;
    }
    r->noise_pct = 100.0 * kb__median(noise, m);
    const double a = kb__median(dc, m), b = kb__median(db, m);
    const double common = (a > 0) == (b > 0) ? (fabs(a) < fabs(b) ? a : b) : 0.0;
    r->drift_pct = 100.0 * (exp(common) - 1.0);
    return split / m;
}

/* The harness's fixed cost per batch, subtracted from both sides: the
 * baseline's gaps (stamped interval minus its worker's reading) alone. The
 * candidate's worker reading is the candidate's to forge (its clock, its
 * harness's memory), so it sizes nothing that is decided on; its gaps are
 * only reported. */
static double batch_overhead(kb__samples *x, kb__case_result *cr)
{
    double mine[2];
    cr->overhead_ns = kb__batch_overhead(x->base_gap, x->base_gap, x->cand_ns, x->base_ns, x->n,
                                         mine, &cr->batch_ns);
    cr->gap_ns[0] = x->n ? kb__median(x->cand_gap, x->n) : 0;
    cr->gap_ns[1] = mine[1];
    return cr->overhead_ns;
}

/* Case c's figures into cr: per-call times less the harness's cost per
 * batch, its log ratios (into x->logr) and their bootstrap CI. */
static void case_summary(const kb__case_data *cd, kb__samples *x, const kb__machine *machine,
                         uint64_t seed, kb__case_result *cr)
{
    snprintf(cr->name, sizeof cr->name, "%s", cd->cs->name);
    cr->samples = x->n;
    cr->calls = x->calls;
    cr->out_bytes = kb__lane_data(&cd->layout);
    cr->bytes_per_call = cd->cs->bytes_per_call;
    cr->flops_per_call = cd->cs->flops_per_call;
    cr->roof_gbps = machine ? kb__machine_roof(machine, cr->bytes_per_call) : 0;
    cr->roof_level = machine ? kb__machine_roof_level(machine, cr->bytes_per_call) : 0;
    cr->peak_gflops = machine ? machine->peak_gflops : 0;
    const double ov = batch_overhead(x, cr);
    for (uint32_t i = 0; i < x->n; i++) {
        const double a = x->cand_ns[i] - ov, b = x->base_ns[i] - ov;
        x->logr[i] = a > 0 && b > 0 ? log(a / b) : log(x->cand_ns[i] / x->base_ns[i]);
        x->tmp[i] = (a > 0 ? a : x->cand_ns[i]) / x->k[i];
    }
    cr->cand_ns = kb__median(x->tmp, x->n);
    for (uint32_t i = 0; i < x->n; i++)
        x->tmp[i] = (x->base_ns[i] - ov > 0 ? x->base_ns[i] - ov : x->base_ns[i]) / x->k[i];
    cr->base_ns = kb__median(x->tmp, x->n);
    kb__ci l = kb__bootstrap_median(x->logr, x->n, seed, KB__RESAMPLES);
    cr->ratio = (kb__ci){exp(l.est), exp(l.lo), exp(l.hi)};
}

/* The harness's cost per batch over the cases: medians in us and in % of
 * a batch. */
static void overhead_summary(kb__result *r, uint32_t n_cases)
{
    double ov[KB__MAX_CASES], pct[KB__MAX_CASES];
    for (uint32_t c = 0; c < n_cases; c++) {
        ov[c] = r->cases[c].overhead_ns / 1e3;
        pct[c] =
            r->cases[c].batch_ns > 0 ? 100 * r->cases[c].overhead_ns / r->cases[c].batch_ns : 0;
    }
    r->overhead_us = n_cases ? kb__median(ov, n_cases) : NAN;
    r->overhead_pct = n_cases ? kb__median(pct, n_cases) : NAN;
}

/* The spread between trials. One trial's pairs see one machine state (on a
 * VM, also where the hypervisor runs the vCPU) and one draw of inputs; a
 * trial minutes later meets others, and the ratio moves by more than the
 * bootstrap's CI says: in 30 trials of a pair, a 3%-slower fixture read
 * 1.017 to 1.050 with CIs about 1.5% wide, pq-l2's avx512.so 1.19x apart
 * from the 10th to the 90th percentile with CIs 1.05x wide. Same seed and
 * no address randomisation spread as much, so it is the machine's state,
 * which a 2 s trial cannot sample. A change of state slows two kernels
 * alike only as far as they do alike work, so the component added has a
 * standard deviation, in log space, of KB__SPREAD_K times the ratio's
 * distance from 1 (an identical copy gets none, and its CIs covered the
 * median 26-29 of 30 times without it), at most KB__SPREAD_CAP: both
 * fitted on scripts/spread.sh's pairs to bring every pair's coverage to
 * 85% or more (docs/measurement.md, section 4). */
#define KB__Z90        1.6449
#define KB__SPREAD_K   0.25
#define KB__SPREAD_CAP 0.08
static double spread_half(double ratio)
{
    if (!(ratio > 0)) return 0;
    const double sd = KB__SPREAD_K * fabs(log(ratio));
    return KB__Z90 * (sd < KB__SPREAD_CAP ? sd : KB__SPREAD_CAP);
}

/* A trial's own CI widened by f (the rules below that doubt the trial's
 * pairs: noise, early looks), then the spread between trials added: that
 * spread is no less for a noisy trial, and no more for one that looks
 * early. */
static kb__ci with_spread(kb__ci within, double f)
{
    return kb__ci_add(kb__ci_widen(within, f), spread_half(within.est));
}

/* A close result needs a machine that held still. Pairing cancels a drift
 * both sides share; it is a reason to doubt only when the ratio itself
 * moved with it, by enough to change the verdict: the CIs widened by that
 * move must still give verdict st. 1 (with r->reason set) when they do not. */
static int drift_changes(const kb__trial_opts *o, kb__result *r, double split, kb__status st)
{
    char why[2];
    const int close = fabs(log(r->geomean.est)) < log(1.2);
    const double w = exp(fabs(split));
    if (!(close && fabs(r->drift_pct) > 10.0 && fabs(split) > log(1.01) &&
          kb__decide(&o->rule, (kb__ci){r->geomean.est, r->geomean.lo / w, r->geomean.hi * w},
                     (kb__ci){r->worst.est, r->worst.lo / w, r->worst.hi * w}, why,
                     sizeof why) != st))
        return 0;
    kb__errf(r->reason, sizeof r->reason,
             "both sides' speed changed by %+.1f%% during the trial (neighbour or thermal "
             "noise) and the ratio moved %+.1f%% with it, enough to change the verdict; "
             "rerun on a quieter machine",
             r->drift_pct, 100.0 * (exp(split) - 1.0));
    return 1;
}

/* Noisy samples make the bootstrap's interval too narrow: bursts from
 * elsewhere spoil runs of neighbouring pairs together, so the pairs are not
 * independent, by up to the factor the noise grew. Two yardsticks for that
 * growth: this machine's calibrated floor (noise over 3x it is a burst),
 * and, calibrated or not (a floor measured on a busy machine is high too),
 * KB__NOISE_MAX_PCT. Widened by the larger factor, in log space about their
 * estimates, the CIs must still give verdict st. This holds for every
 * verdict, not only close ones: under load a burst can look like a large
 * win with a CI clear of 0.99. A real 10% difference survives the
 * widening; a burst does not. 1 (with r->reason set) when it does not hold. */
static int noise_changes(const kb__trial_opts *o, kb__result *r, kb__status st)
{
    double f = 1;
    const int burst =
        isfinite(r->noise_floor_pct) && r->noise_pct > 3 * r->noise_floor_pct && r->noise_pct > 1.0;
    if (burst) f = r->noise_pct / r->noise_floor_pct;
    const int busy = r->noise_pct > KB__NOISE_MAX_PCT && r->noise_pct / KB__NOISE_MAX_PCT > f;
    if (busy) f = r->noise_pct / KB__NOISE_MAX_PCT;
    if (f <= 1) return 0;
    char why[2];
    const kb__ci gw = with_spread(r->geomean_within, f), ww = with_spread(r->worst_within, f);
    if (kb__decide(&o->rule, gw, ww, why, sizeof why) == st) return 0;
    char cause[96];
    if (busy)
        snprintf(cause, sizeof cause, "over %.0f%%", KB__NOISE_MAX_PCT);
    else
        snprintf(cause, sizeof cause, "over 3x this machine's calibrated %.2f%%",
                 r->noise_floor_pct);
    kb__errf(r->reason, sizeof r->reason,
             "noise %.2f%% per sample is %s: with the CI widened %.1fx for it, "
             "[%.4f, %.4f], the verdict does not hold; rerun when the machine is "
             "quieter%s",
             r->noise_pct, cause, f, gw.lo, gw.hi, busy ? "" : ", or `kbench calibrate` again");
    return 1;
}

/* Summarise the samples into r (ratios, CIs, worst case) and decide. */
static kb__status summarise(const kb__trial_opts *o, const kb__case_data *cases, uint32_t n_cases,
                            kb__samples *smp, kb__result *r, uint64_t seed)
{
    kb__machine machine;
    const int have_machine = kb__machine_load(&machine) == 0;
    const double *groups[KB__MAX_CASES];
    size_t ns[KB__MAX_CASES];
    kb__ci within[KB__MAX_CASES];
    uint32_t worst = 0;
    for (uint32_t c = 0; c < n_cases; c++) {
        case_summary(&cases[c], &smp[c], have_machine ? &machine : NULL, seed + c, &r->cases[c]);
        within[c] = r->cases[c].ratio;
        r->cases[c].ratio = with_spread(within[c], 1.0);
        if (r->cases[c].ratio.est > r->cases[worst].ratio.est) worst = c;
        groups[c] = smp[c].logr;
        ns[c] = smp[c].n;
    }
    r->n_cases = n_cases;
    overhead_summary(r, n_cases);
    const double split = trial_health(smp, n_cases, r);
    kb__ci g = kb__bootstrap_mean_of_medians(groups, ns, n_cases, seed ^ 0x5eed, KB__RESAMPLES);
    r->geomean_within = (kb__ci){exp(g.est), exp(g.lo), exp(g.hi)};
    r->spread_pct = 100.0 * (exp(spread_half(r->geomean_within.est)) - 1.0);
    r->geomean = with_spread(r->geomean_within, 1.0);
    r->worst_within = within[worst];
    r->worst = r->cases[worst].ratio;
    snprintf(r->worst_case, sizeof r->worst_case, "%s", r->cases[worst].name);
    kb__status st = kb__decide(&o->rule, r->geomean, r->worst, r->reason, sizeof r->reason);
    if (st != KB__ST_KEEP && st != KB__ST_DISCARD) return st;
    if (drift_changes(o, r, split, st) || noise_changes(o, r, st)) return KB__ST_INCONCLUSIVE;
    return st;
}

/* One case's fresh log ratios into lr[], and into adj[] the same with the
 * baseline's slowdown on fresh inputs taken off both sides (see
 * fresh_probe); *slow the baseline's fresh per-call time over its timed one.
 * Returns how many (or < 0 on a failure, which fail describes). */
static int probe_case(const kb_target *t, const kb__case_data *cd, kb__case_run *run,
                      const kb__case_result *cr, kb__side *cand, kb__side *base, uint64_t *rng,
                      double *lr, double *adj, double *slow, kb__failure *fail)
{
    const int cold = (t->flags & KB_TARGET_COLD_INPUTS) != 0;
    const uint32_t per = KB__PROBE_GROUP <= cd->layout.n_lanes ? KB__PROBE_GROUP : 1;
    const uint32_t n_pairs = cold ? KB__PROBE_GROUPS / 2 : KB__PROBE_GROUPS;
    const int phase = (int)(kb__splitmix64(rng) & 1);
    const double ov = cr->overhead_ns;
    double cn[KB__PROBE_GROUPS], bn[KB__PROBE_GROUPS];
    int n = 0;
    for (uint32_t j = 0; j < n_pairs; j++) {
        const int cand_first = ((int)j ^ phase) & 1;
        double ns[2]; /* [0] the candidate, [1] the baseline */
        for (int i = 0; i < 2; i++) {
            const int is_cand = (i == 0) == cand_first;
            kb__side *s = is_cand ? cand : base;
            const uint32_t g = cold ? 2 * j + (is_cand ? 0 : 1) : j;
            uint32_t sets[KB__PROBE_GROUP];
            for (uint32_t x = 0; x < per; x++) sets[x] = KB__SETS + g * KB__PROBE_GROUP + x;
            if (kb__side_batch(s, t, cd, run, sets, per, per, 10.0, &ns[is_cand ? 0 : 1], fail))
                return -1;
        }
        cn[n] = ns[0] - ov;
        bn[n] = ns[1] - ov;
        lr[n] = cn[n] > 0 && bn[n] > 0 ? log(cn[n] / bn[n]) : log(ns[0] / ns[1]);
        n++;
    }
    const double timed = cr->base_ns * per;
    const double extra = n ? kb__median(bn, (size_t)n) - timed : 0;
    *slow = timed > 0 && n ? (timed + extra) / timed : NAN;
    for (int i = 0; i < n; i++) {
        const double c = cn[i] - (extra > 0 ? extra : 0), b = bn[i] - (extra > 0 ? extra : 0);
        adj[i] = c > 0 && b > 0 ? log(c / b) : lr[i];
    }
    return n;
}

/* The fresh probe: each side timed on input sets it has never seen, in
 * pairs like the timed batches, so the ratio on fresh inputs comes with a
 * CI of its own (the same estimator as the geomean's). Per case, pair j
 * runs a group of KB__PROBE_GROUP fresh sets, each set once, on both sides,
 * each worker given that group's pages with its batch (proto.h),
 * the side that goes first alternating; the other side's run leaves
 * nothing for a side to replay, since each side sees each set once. Times
 * are the host's (the kernel's stamps), less the timed batches' estimated
 * harness cost, never a reading the worker produced. A warm target's
 * harness reads the sets in before the clock (KB__REQF_TOUCH), as for the
 * timed sets. A cold target's sets are meant to come from DRAM, so there
 * each side gets groups of its own that no worker has read.
 * A one-call batch on a short call costs more than the timed batches'
 * harness cost (on a VM, each wait for a request can cost the caches), so
 * both sides run slower there; only the baseline's slowdown is measured
 * (the candidate can tell a fresh set from a seen one, and so could steer a
 * control of its own), and the ratio with it taken off both sides
 * (fresh_adj_ratio) decides only whether a replay is beyond doubt, never a
 * keep (fresh_holds). */
static int fresh_probe(const kb_target *t, const kb__case_data *cases, kb__case_run *runs,
                       uint32_t n_cases, kb__side *cand, kb__side *base, kb__result *r,
                       uint64_t *rng, kb__failure *fail)
{
    static double lr[KB__MAX_CASES][KB__PROBE], adj[KB__MAX_CASES][KB__PROBE];
    const double *groups[KB__MAX_CASES], *agroups[KB__MAX_CASES];
    double slow[KB__MAX_CASES];
    size_t ns[KB__MAX_CASES];
    uint32_t m = 0;
    r->fresh_ratio = r->fresh_lo = r->fresh_hi = r->fresh_adj_ratio = r->fresh_slow_pct = NAN;
    for (uint32_t c = 0; c < n_cases; c++) {
        const int n = probe_case(t, &cases[c], &runs[c], &r->cases[c], cand, base, rng, lr[m],
                                 adj[m], &slow[m], fail);
        if (n < 0) return KB__ECHILD;
        if (n == 0) continue;
        groups[m] = lr[m];
        agroups[m] = adj[m];
        ns[m++] = (size_t)n;
    }
    if (!m) return 0;
    const uint64_t seed = kb__splitmix64(rng);
    const kb__ci g = kb__bootstrap_mean_of_medians(groups, ns, m, seed, KB__RESAMPLES);
    r->fresh_ratio = exp(g.est);
    r->fresh_lo = exp(g.lo);
    r->fresh_hi = exp(g.hi);
    r->fresh_adj_ratio =
        exp(kb__bootstrap_mean_of_medians(agroups, ns, m, seed, KB__RESAMPLES).est);
    r->fresh_slow_pct = 100.0 * (kb__median(slow, m) - 1.0);
    return 0;
}

/* How many standard errors the fresh ratio lies above the timed one, each
 * standard error read off the half of its CI that faces the other (both
 * are 90% intervals in log space, and a bootstrap's need not be
 * symmetric: a replay that helps some batches more than others stretches
 * the timed CI downwards, which says nothing about how high it reaches).
 * The timed CI is this trial's alone: both ratios come from one trial, so
 * the spread between trials moves them together. */
static double fresh_excess_z(const kb__result *r)
{
    const double se_f = (log(r->fresh_ratio) - log(r->fresh_lo)) / KB__Z90;
    const double se_t = (log(r->geomean_within.hi) - log(r->geomean_within.est)) / KB__Z90;
    const double se = sqrt(se_f * se_f + se_t * se_t);
    return se > 0 ? (log(r->fresh_ratio) - log(r->geomean_within.est)) / se : 0;
}

/* A keep must hold on inputs the candidate has never seen: a plugin that
 * replays answers (all of them, or some) is faster only on what it has
 * seen. Far slower on fresh inputs (over 2x the timed ratio) is a replay
 * beyond doubt; fresh ratio above the timed one by more than
 * KB__FRESH_Z standard errors of their difference (one-sided 1% for an
 * honest kernel, whose two ratios estimate one number) means the win is
 * not shown on fresh inputs: not a keep; nor is it when the fresh ratio
 * shows no win at all. A loaded machine widens both CIs enough to hide a
 * partial replay from the z test, so where the fresh CI reaches 1 (the
 * fresh inputs alone do not show a win) the fresh ratio may not exceed the
 * timed one by more than KB__FRESH_SLACK either: that bounds what a replay
 * can add to a keep to 2%, while an honest 3% win, whose two ratios agree,
 * keeps its power (docs/design.md has the figures). */
#define KB__FRESH_Z     2.326
#define KB__FRESH_SLACK 1.02
/* The baseline's slowdown on fresh one-call batches above which a fresh
 * ratio that does not hold is blamed on the batch, not called a replay. */
#define KB__FRESH_SLOW_PCT 10.0
static int fresh_holds(kb__result *r, kb__failure *fail)
{
    if (r->status != KB__ST_KEEP) return 0;
    if (!isfinite(r->fresh_ratio) || !isfinite(r->fresh_lo) || !isfinite(r->fresh_hi)) {
        r->status = KB__ST_INCONCLUSIVE;
        kb__errf(r->reason, sizeof r->reason,
                 "the timed batches show a win, but no ratio on fresh inputs could be measured "
                 "to confirm it; rerun");
        return 0;
    }
    /* Beyond doubt only where the baseline's own slowdown on one-call
     * batches does not explain it either. */
    if (r->fresh_ratio > 2.0 * r->geomean.est && !(r->fresh_adj_ratio <= 2.0 * r->geomean.est)) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason,
                 "on inputs it had never seen the candidate's ratio is %.3f, in the timed batches "
                 "%.3f: it replays answers cached from earlier calls",
                 r->fresh_ratio, r->geomean.est);
        fail->status = kb__timing_verdict(fail->status, fail->reason, sizeof fail->reason);
        return KB__ECHILD;
    }
    const double z = fresh_excess_z(r);
    const int unconfirmed = r->fresh_hi >= 1.0 && r->fresh_ratio > r->geomean.est * KB__FRESH_SLACK;
    if (z > KB__FRESH_Z || r->fresh_ratio >= 1.0 || unconfirmed) {
        r->status = KB__ST_INCONCLUSIVE;
        if (r->fresh_slow_pct > KB__FRESH_SLOW_PCT) {
            kb__errf(r->reason, sizeof r->reason,
                     "on inputs it had never seen the ratio is %.4f CI [%.4f, %.4f], in the "
                     "timed batches %.4f: the win cannot be confirmed on fresh inputs, where "
                     "calls this short run one per batch and the oracle itself ran %.0f%% "
                     "slower than timed; give a case with longer calls (--case)",
                     r->fresh_ratio, r->fresh_lo, r->fresh_hi, r->geomean.est, r->fresh_slow_pct);
            return 0;
        }
        kb__errf(r->reason, sizeof r->reason,
                 "on inputs it had never seen the ratio is %.4f CI [%.4f, %.4f], in the timed "
                 "batches %.4f CI [%.4f, %.4f] (this trial's; %.1f standard errors apart): the win "
                 "does not hold on fresh inputs, as with answers replayed from earlier calls",
                 r->fresh_ratio, r->fresh_lo, r->fresh_hi, r->geomean.est, r->geomean_within.lo,
                 r->geomean_within.hi, z);
    }
    return 0;
}

/* Each batch is timed by the kernel's stamps around the plugin's calls.
 * CPU the worker used beyond them is the harness's own wake-up, receive,
 * descriptor copy, read-in and sends (the same code on both sides; its
 * figures are in docs/design.md and docs/robustness.md, threat 26), plus
 * any plugin code that ran
 * outside the stamps, which the filters and the host's map checks are
 * there to prevent. A batch preempted by a neighbour shows less CPU than
 * wall time (a negative excess, which would hide such work), so only
 * batches that ran undisturbed count. The candidate's median may exceed
 * the baseline's by KB__OUTSIDE_MAX_NS, a fixed bound (hidden work within
 * it is under 0.7% of a 3 ms batch), widened by the spread of the
 * baseline's own excess: a busy machine scatters what it charges both
 * sides' harnesses, and a difference inside that scatter says nothing
 * about the plugin. The baseline's spread is the baseline's alone, so a
 * candidate cannot widen it. */
#define KB__OUTSIDE_MAX_NS   20e3
#define KB__OUTSIDE_SPREAD_K 2.0
static double undisturbed_excess(const kb__side *s, double *mad)
{
    static double x[KB__MAX_GAPS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_gaps; i++)
        if (s->excess[i] >= 0) x[n++] = s->excess[i];
    if (n < 8) return NAN;
    const double med = kb__median(x, n);
    for (uint32_t i = 0; i < n; i++) x[i] = fabs(x[i] - med);
    if (mad) *mad = kb__median(x, n);
    return med;
}

static int check_outside(kb__side *cand, kb__side *base, kb__failure *fail)
{
    double b_mad = 0;
    const double c = undisturbed_excess(cand, NULL), b = undisturbed_excess(base, &b_mad);
    /* NaN: too few batches to tell */
    if (!(c - b > KB__OUTSIDE_MAX_NS + KB__OUTSIDE_SPREAD_K * b_mad)) return 0;
    fail->status = KB__ST_REJECTED;
    kb__errf(fail->reason, sizeof fail->reason,
             "%s used %.0f us of CPU per batch outside its timed interval (the baseline: %.0f "
             "us): work only inside run",
             cand->w.label, c / 1e3, b / 1e3);
    fail->status = kb__timing_verdict(fail->status, fail->reason, sizeof fail->reason);
    return KB__ECHILD;
}

/* Idle CPU (between a reply and the next request) the candidate used beyond
 * the baseline's, per gap: the baseline's harness is the same code on the
 * same machine at the same time, so it carries whatever the machine charges
 * an idle worker (a VM's stolen time included), and what is left over is
 * the plugin working where nothing times it, on the CPU the baseline is
 * timed on. Twice the baseline's, because that charge is noisy: a slow
 * honest candidate can read twice an honest baseline's per gap
 * (docs/lab/trial-figures.md). */
static int check_idle(const kb__side *cand, const kb__side *base, kb__failure *fail)
{
    const kb__worker *c = &cand->w, *b = &base->w;
    if (!c->idle_gaps || !b->idle_gaps) return 0;
    const double allow =
        KB__IDLE_CPU_ALLOW_NS + kb__idle_cpu_per_gap_allowed(b) * (double)c->idle_gaps;
    if (!((double)c->idle_cpu_ns > allow)) return 0;
    char bound[sizeof fail->reason];
    snprintf(bound, sizeof bound,
             "(the baseline: %.1f ms in %llu; allowed: %.1f ms); work only inside prepare and run",
             b->idle_cpu_ns / 1e6, (unsigned long long)b->idle_gaps, allow / 1e6);
    kb__idle_cpu_fail(c, KB__ST_REJECTED, bound, fail);
    fail->status = kb__timing_verdict(fail->status, fail->reason, sizeof fail->reason);
    return KB__ECHILD;
}

/* The whole memory map, once timing is over (each batch checked only the
 * size of the executable memory: maps.c). */
static int check_maps(kb__side *s, kb__failure *fail)
{
    char why[400];
    if (!kb__maps_changed(s->w.pid, &s->maps, why, sizeof why)) return 0;
    fail->status = KB__ST_REJECTED;
    kb__errf(fail->reason, sizeof fail->reason, "%s %s", s->w.label, why);
    return KB__ECHILD;
}

/* One side's calls per batch on a case, by its worker's own clock, into
 * *per_call (ns a call). */
static int calibrate_side(kb__side *s, const kb_target *t, const kb__case_data *cd,
                          kb__case_run *run, uint32_t *order, uint32_t n_sets, double *per_call,
                          kb__failure *fail)
{
    uint64_t k = KB__SETS;
    double ns;
    for (int step = 0; step < 3; step++) {
        if (k > cd->layout.n_lanes) k = cd->layout.n_lanes;
        const uint32_t n_order = order_len(k, n_sets);
        const int rc =
            kb__side_batch(s, t, cd, run, order, n_order, k, 10.0 + (double)k * 1e-5, &ns, fail);
        if (rc) return rc;
        const double w = s->last_worker_ns > 20 ? s->last_worker_ns : 20;
        *per_call = w / (double)k;
        uint64_t nk = (uint64_t)(KB__BATCH_NS / *per_call);
        /* Half a target is reading enough, the first (all sets once)
         * included: a second batch of a slow case tells nothing new. */
        if (w > KB__BATCH_NS / 2) break;
        k = nk > KB__SETS ? nk : KB__SETS;
    }
    return 0;
}

/* Calibrate calls per batch by the workers' own clocks (this only sizes
 * batches; it is never a sample). Every input set is touched first, so no
 * side meets a cold set later. The faster side's batch gets the target
 * duration, so round-trip noise stays small on both; *slow_call is the
 * slower side's ns a call, which sizes the batches' timeouts. */
static int calibrate_case(const kb_target *t, const kb__case_data *cd, kb__case_run *run,
                          kb__side *cand, kb__side *base, uint64_t l2, kb__samples *x,
                          double *slow_call, kb__failure *fail)
{
    uint32_t order[KB__MAX_ORDER];
    const uint32_t n_sets = timed_sets(t, cd);
    for (uint32_t i = 0; i < KB__MAX_ORDER; i++) order[i] = i % n_sets;
    double pc[2] = {0, 0};
    kb__side *sides[2] = {cand, base};
    for (int si = 0; si < 2; si++) {
        const int rc = calibrate_side(sides[si], t, cd, run, order, n_sets, &pc[si], fail);
        if (rc) return rc;
    }
    const double fast = pc[0] < pc[1] ? pc[0] : pc[1];
    const double slow = pc[0] > pc[1] ? pc[0] : pc[1];
    uint64_t k = (uint64_t)(KB__BATCH_NS / fast);
    /* Keep the slower side's batch within 4 targets. */
    if ((double)k * slow > 4 * KB__BATCH_NS) k = (uint64_t)(4 * KB__BATCH_NS / slow);
    x->max_calls = kb__batch_calls_max(&cd->layout, fast, l2);
    if (k > x->max_calls) k = x->max_calls;
    x->calls = k ? k : 1;
    *slow_call = slow;
    return 0;
}

/* One ABBA or BAAB block on case cd: two pairs of batches of k calls
 * (jittered) on one random set order, into x. */
static int sample_case(const kb_target *t, const kb__case_data *cd, kb__case_run *run,
                       kb__side *cand, kb__side *base, kb__samples *x, double slow_call,
                       uint64_t *rng, kb__failure *fail)
{
    uint32_t order[KB__MAX_ORDER];
    const double jitter = 0.75 + 0.5 * (double)(kb__splitmix64(rng) >> 11) / 9007199254740992.0;
    uint64_t k = (uint64_t)((double)x->calls * jitter);
    if (k == 0) k = 1;
    if (k > x->max_calls) k = x->max_calls;
    const uint32_t n_sets = timed_sets(t, cd);
    const uint32_t n_order = order_len(k, n_sets);
    order_fill(order, n_order, n_sets, rng);
    const double tmo = 1.0 + 50.0 * slow_call * (double)k / 1e9;
    const int phase = (int)(kb__splitmix64(rng) & 1);
    for (int half = 0; half < 2; half++) {
        const int cand_first = (half ^ phase) == 0;
        kb__side *first = cand_first ? cand : base, *second = cand_first ? base : cand;
        double a, b;
        int rc;
        if ((rc = kb__side_batch(first, t, cd, run, order, n_order, k, tmo, &a, fail))) return rc;
        if ((rc = kb__side_batch(second, t, cd, run, order, n_order, k, tmo, &b, fail))) return rc;
        const double ns_c = cand_first ? a : b, ns_b = cand_first ? b : a;
        const double gc = cand->last_gap_ns, gb = base->last_gap_ns;
        if ((rc = push(x, ns_c, ns_b, (double)k, gc, gb))) return rc;
    }
    return 0;
}

/* One round: every case once, in a fresh random order. */
static int sample_round(const kb_target *t, const kb__case_data *cases, kb__case_run *runs,
                        uint32_t n_cases, kb__side *cand, kb__side *base, kb__samples *smp,
                        const double *slow_call, uint64_t *rng, kb__failure *fail)
{
    uint32_t perm[KB__MAX_CASES];
    for (uint32_t c = 0; c < n_cases; c++) perm[c] = c;
    for (uint32_t c = n_cases; c > 1; c--) {
        uint32_t j = (uint32_t)(kb__splitmix64(rng) % c), tmp = perm[c - 1];
        perm[c - 1] = perm[j];
        perm[j] = tmp;
    }
    for (uint32_t pi = 0; pi < n_cases; pi++) {
        const uint32_t c = perm[pi];
        const int rc =
            sample_case(t, &cases[c], &runs[c], cand, base, &smp[c], slow_call[c], rng, fail);
        if (rc) return rc;
    }
    return 0;
}

/* The early stop: looks at the verdict every eighth of the budget. */
typedef struct look {
    kb__status last;
    int same;
    uint64_t last_look;
} look;

/* Whether sampling may stop before the budget: the verdict came out the
 * same, and not inconclusive, at two successive looks. Looks start early,
 * but only a clear-cut result (the whole CI beyond 10% either way) may stop
 * before KB__MIN_PAIRS per case. */
static int decided_early(const kb__trial_opts *o, const kb__case_data *cases, uint32_t n_cases,
                         kb__samples *smp, kb__result *r, uint64_t stats_seed, uint64_t now,
                         look *lk)
{
    uint32_t min_n = UINT32_MAX;
    for (uint32_t c = 0; c < n_cases; c++)
        if (smp[c].n < min_n) min_n = smp[c].n;
    if (min_n < KB__MIN_PAIRS_CLEAR || (double)(now - lk->last_look) < o->budget * 1e9 / 8)
        return 0;
    lk->last_look = now;
    kb__status st = summarise(o, cases, n_cases, smp, r, stats_seed);
    if (st == KB__ST_KEEP &&
        !kb__keep_holds_early(&o->rule, r->geomean_within, r->worst_within,
                              spread_half(r->geomean_within.est), spread_half(r->worst_within.est)))
        st = KB__ST_INCONCLUSIVE;
    const int clear = r->geomean.hi < 0.9 || r->geomean.lo > 1.1;
    lk->same = (st == lk->last && st != KB__ST_INCONCLUSIVE) ? lk->same + 1 : 0;
    lk->last = st;
    return lk->same >= 1 && (min_n >= KB__MIN_PAIRS || clear);
}

int kb__measure(const kb__trial_opts *o, const kb_target *t, const kb__case_data *cases,
                kb__case_run *runs, uint32_t n_cases, kb__side *cand, kb__side *base,
                kb__samples *smp, kb__result *r, kb__failure *fail)
{
    uint64_t rng;
    if (getrandom(&rng, sizeof rng, 0) != sizeof rng) rng = kb__now_ns();
    const uint64_t stats_seed = kb__splitmix64(&rng);
    const uint64_t t_start = kb__now_ns();
    const double budget_ns = o->budget * 1e9;
    int rc;
    cand->w.idle_ref = &base->w;
    base->w.idle_is_baseline = 1;

    double slow_call[KB__MAX_CASES];
    const uint64_t l2 = kb__l2_bytes(); /* sysfs: read once, not per case */
    for (uint32_t c = 0; c < n_cases; c++) runs[c].touch_max = l2;
    for (uint32_t c = 0; c < n_cases; c++)
        if (cases[c].layout.n_reps > 1)
            runs[c].rep_next = (uint32_t)(kb__splitmix64(&rng) % cases[c].layout.n_reps);
    for (uint32_t c = 0; c < n_cases; c++)
        if ((rc = calibrate_case(t, &cases[c], &runs[c], cand, base, l2, &smp[c], &slow_call[c],
                                 fail)))
            return rc;

    look lk = {KB__ST_INCONCLUSIVE, 0, kb__now_ns()};
    for (;;) {
        if ((rc = sample_round(t, cases, runs, n_cases, cand, base, smp, slow_call, &rng, fail)))
            return rc;
        const uint64_t now = kb__now_ns();
        if ((double)(now - t_start) >= budget_ns) break;
        if (decided_early(o, cases, n_cases, smp, r, stats_seed, now, &lk)) break;
    }
    if ((rc = check_outside(cand, base, fail))) return rc;
    if ((rc = fresh_probe(t, cases, runs, n_cases, cand, base, r, &rng, fail))) return rc;
    if ((rc = check_idle(cand, base, fail)) || (rc = check_maps(cand, fail)) ||
        (rc = check_maps(base, fail)))
        return rc;
    r->status = summarise(o, cases, n_cases, smp, r, stats_seed);
    return fresh_holds(r, fail);
}
