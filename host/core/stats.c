/*
 * stats.c -- medians, bootstrap confidence intervals and the keep/discard
 * verdict.
 *
 * The bootstrap here is the ordinary percentile bootstrap of a median, but
 * it does not materialise the resamples. Resampling n values with replacement
 * is the same as drawing n uniforms U_i and mapping each through the sample's
 * quantile function Q(u) = x_(ceil(n u)) (x sorted). Q is monotone, so the
 * r-th smallest resampled value is Q(U_(r)), and the r-th order statistic of
 * n uniforms is Beta(r, n - r + 1); the next one above it is
 * U_(r) + (1 - U_(r)) * min of (n - r) fresh uniforms. A resample's median
 * therefore costs one Beta draw (plus one uniform for even n) instead of n
 * draws and a selection, with exactly the same distribution. That matters:
 * sequential stopping calls kb__bootstrap_mean_of_medians several times a
 * second on ~14 groups of up to a few thousand samples, on the same cores
 * that are timing the kernels.
 *
 * The random stream is a private SplitMix64 so that a trial's CI depends only
 * on its seed, not on the generators library or libc.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"

#define KB__BOOT_DEFAULT 2000 /* resamples when the caller passes < 2 */
#define KB__CI_LO_P      0.05
#define KB__CI_HI_P      0.95

/* ---- private random stream ------------------------------------------ */
typedef struct kb__rng {
    uint64_t s;
    double spare; /* second Box-Muller normal */
    int has_spare;
} kb__rng;

/* Uniform in (0, 1): never 0, so log() is always finite. */
static double unif_open(kb__rng *r)
{
    return ((double)(kb__splitmix64(&r->s) >> 11) + 0.5) * 0x1.0p-53;
}

static double std_normal(kb__rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = unif_open(r), v = unif_open(r);
    double rad = sqrt(-2.0 * log(u));
    double th = 6.283185307179586476925 * v;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

/* Gamma(shape, 1) for shape >= 1: Marsaglia and Tsang (2000). */
static double gamma_draw(kb__rng *r, double shape)
{
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = std_normal(r), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = unif_open(r), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return d * v;
    }
}

/* ---- selection and sorting ------------------------------------------ */
static void swapd(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Hoare's FIND: after it returns, a[k] is the k-th smallest (0-based),
 * a[0..k) <= a[k] <= a(k..n). Expected O(n); many equal values (a kernel
 * timed at the same tick count) split evenly instead of degrading. */
static void select_kth(double *a, size_t n, size_t k)
{
    size_t l = 0, r = n - 1;
    while (l < r) {
        size_t mid = l + (r - l) / 2;
        /* median of three as the pivot: sorted or reversed input stays linear */
        if (a[mid] < a[l]) swapd(&a[mid], &a[l]);
        if (a[r] < a[l]) swapd(&a[r], &a[l]);
        if (a[r] < a[mid]) swapd(&a[r], &a[mid]);
        double x = a[mid];
        size_t i = l, j = r;
        for (;;) {
            while (a[i] < x) i++;
            while (x < a[j]) j--;
            if (i >= j) break;
            swapd(&a[i], &a[j]);
            i++;
            j--;
        }
        /* now a[l..j] <= x <= a[j+1..r] (or i == j holds x itself) */
        if (i == j) {
            if (k == i) return;
            if (k < i)
                r = i - 1;
            else
                l = i + 1;
        } else if (k <= j) {
            r = j;
        } else {
            l = j + 1;
        }
    }
}

/* Median of a, which it reorders. */
static double median_inplace(double *a, size_t n)
{
    size_t k = n / 2;
    select_kth(a, n, k);
    if (n % 2) return a[k];
    double below = a[0];
    for (size_t i = 1; i < k; i++)
        if (a[i] > below) below = a[i];
    return 0.5 * (below + a[k]);
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static int any_nan(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

double kb__median(const double *x, size_t n)
{
    if (!x || n == 0 || any_nan(x, n)) return NAN;
    double stackbuf[512];
    double *a = n <= sizeof stackbuf / sizeof stackbuf[0] ? stackbuf : malloc(n * sizeof *a);
    if (!a) return NAN;
    memcpy(a, x, n * sizeof *a);
    double m = median_inplace(a, n);
    if (a != stackbuf) free(a);
    return m;
}

/* A CI stretched about its estimate by factor f, in log space (ratios). */
kb__ci kb__ci_widen(kb__ci c, double f)
{
    if (!(c.est > 0) || !(c.lo > 0) || !(c.hi > 0) || !(f >= 1)) return c;
    const double e = log(c.est);
    return (kb__ci){c.est, exp(e + f * (log(c.lo) - e)), exp(e + f * (log(c.hi) - e))};
}

/* Independent errors add in variance: each half of the CI, in log space,
 * grows to the root of the sum of squares. */
kb__ci kb__ci_add(kb__ci c, double h)
{
    if (!(c.est > 0) || !(c.lo > 0) || !(c.hi > 0) || !(h > 0)) return c;
    const double e = log(c.est), lo = e - log(c.lo), hi = log(c.hi) - e;
    return (kb__ci){c.est, exp(e - sqrt(lo * lo + h * h)), exp(e + sqrt(hi * hi + h * h))};
}

/* ---- the fixed cost of a batch --------------------------------------- */
/* Every batch carries a fixed cost besides its calls: what the harness does
 * between the start message's stamp and the first call, and between the
 * last call and the reply's stamp (the end of one send, the start of
 * another: 3-11 us on the development VM, 0.1-0.4% of a 3 ms batch). The
 * same on both sides, it pulls every ratio towards 1, so it is measured and
 * taken off: per batch the host's stamped interval minus the worker's own
 * reading is that cost, and the smaller of the two sides' medians is
 * subtracted from every batch of both. A worker can forge its reading, so
 * a plugin can claim a larger cost for itself, never for the other side:
 * the smaller median is at most the honest side's. And never more than 1%
 * of the faster side's median batch, so even two forging plugins can
 * stretch their difference by 1% of itself only (a 1% win read as
 * 1.01%). */
double kb__batch_overhead(const double *gap_a, const double *gap_b, const double *ns_a,
                          const double *ns_b, size_t n, double gaps[2], double *batch_ns)
{
    gaps[0] = gaps[1] = *batch_ns = 0;
    if (n == 0) return 0;
    gaps[0] = kb__median(gap_a, n);
    gaps[1] = kb__median(gap_b, n);
    const double ma = kb__median(ns_a, n), mb = kb__median(ns_b, n);
    *batch_ns = ma < mb ? ma : mb;
    if (!isfinite(gaps[0]) || !isfinite(gaps[1])) return 0;
    double ov = gaps[0] < gaps[1] ? gaps[0] : gaps[1];
    if (!(ov > 0)) return 0;
    if (!(ov <= 0.01 * *batch_ns)) ov = *batch_ns > 0 ? 0.01 * *batch_ns : 0;
    return ov;
}

/* ---- bootstrap ------------------------------------------------------ */
/* Median of one resample of the sorted sample s[0..n). */
static double resample_median(const double *s, size_t n, kb__rng *r)
{
    if (n == 1) return s[0];
    size_t m = (n + 1) / 2; /* 1-based rank of the (lower) middle */
    double ga = gamma_draw(r, (double)m);
    double gb = gamma_draw(r, (double)(n - m + 1));
    double u = ga / (ga + gb);
    double p = ceil((double)n * u);
    size_t pos = p < 1.0 ? 1 : p > (double)n ? n : (size_t)p;
    double lo = s[pos - 1];
    if (n % 2) return lo;
    /* the smallest of the n - m uniforms above U_(m) */
    double w = u + (1.0 - u) * -expm1(log(unif_open(r)) / (double)(n - m));
    double p2 = ceil((double)n * w);
    size_t pos2 = p2 < (double)pos ? pos : p2 > (double)n ? n : (size_t)p2;
    return 0.5 * (lo + s[pos2 - 1]);
}

/* Type-7 (linear interpolation) quantile of sorted v[0..n). */
static double quantile_sorted(const double *v, size_t n, double p)
{
    double h = (double)(n - 1) * p;
    size_t i = (size_t)h;
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

static double median_sorted(const double *s, size_t n)
{
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static kb__ci ci_unknown(void)
{
    kb__ci c = {NAN, -INFINITY, INFINITY};
    return c;
}

kb__ci kb__bootstrap_mean_of_medians(const double *const *x, const size_t *n, size_t k,
                                     uint64_t seed, int resamples)
{
    if (!x || !n || k == 0) return ci_unknown();
    size_t total = 0;
    for (size_t g = 0; g < k; g++) {
        if (!x[g] || n[g] == 0 || any_nan(x[g], n[g])) return ci_unknown();
        total += n[g];
    }
    size_t b = resamples < 2 ? KB__BOOT_DEFAULT : (size_t)resamples;
    double *sorted = malloc(total * sizeof *sorted);
    double *stat = malloc(b * sizeof *stat);
    if (!sorted || !stat) {
        free(sorted);
        free(stat);
        return ci_unknown();
    }
    kb__ci c;
    double est = 0.0;
    size_t off = 0;
    for (size_t g = 0; g < k; g++) {
        memcpy(sorted + off, x[g], n[g] * sizeof *sorted);
        qsort(sorted + off, n[g], sizeof *sorted, cmp_double);
        est += median_sorted(sorted + off, n[g]);
        off += n[g];
    }
    c.est = est / (double)k;

    kb__rng r = {seed, 0.0, 0};
    for (size_t i = 0; i < b; i++) {
        double sum = 0.0;
        off = 0;
        for (size_t g = 0; g < k; g++) {
            sum += resample_median(sorted + off, n[g], &r);
            off += n[g];
        }
        stat[i] = sum / (double)k;
    }
    qsort(stat, b, sizeof *stat, cmp_double);
    c.lo = quantile_sorted(stat, b, KB__CI_LO_P);
    c.hi = quantile_sorted(stat, b, KB__CI_HI_P);
    /* rounding in the mean can put the estimate a hair outside a CI whose
     * resamples all equal it (constant groups) */
    if (c.lo > c.est) c.lo = c.est;
    if (c.hi < c.est) c.hi = c.est;
    free(sorted);
    free(stat);
    return c;
}

kb__ci kb__bootstrap_median(const double *x, size_t n, uint64_t seed, int resamples)
{
    if (n == 1 && x && !isnan(x[0])) {
        kb__ci c = {x[0], x[0], x[0]};
        return c;
    }
    return kb__bootstrap_mean_of_medians(&x, &n, 1, seed, resamples);
}

/* ---- verdict -------------------------------------------------------- */
static int ci_finite(kb__ci c)
{
    return isfinite(c.est) && isfinite(c.lo) && isfinite(c.hi);
}

kb__status kb__decide(const kb__rule *rule, kb__ci geomean, kb__ci worst, char *reason,
                      size_t reason_len)
{
    double min_gain = rule ? rule->min_gain : KB__MIN_GAIN_DEFAULT_PCT / 100.0;
    double worst_case = rule ? rule->worst_case : KB__WORST_CASE_DEFAULT_PCT / 100.0;
    double win = 1.0 - min_gain, cap = 1.0 + worst_case;
    const char *more = "run longer (raise --budget)";

    if (!ci_finite(geomean) || !ci_finite(worst)) {
        kb__errf(reason, reason_len,
                 "the ratio CIs are not finite (too few samples or a timer problem): %s", more);
        return KB__ST_INCONCLUSIVE;
    }
    if (geomean.lo > win) {
        kb__errf(reason, reason_len, "geomean %.4f CI [%.4f, %.4f] lies above %g: not a %g%% win",
                 geomean.est, geomean.lo, geomean.hi, win, min_gain * 100.0);
        return KB__ST_DISCARD;
    }
    if (worst.lo > cap) {
        kb__errf(reason, reason_len,
                 "the worst case %.4f CI [%.4f, %.4f] regresses beyond %g (geomean %.4f)",
                 worst.est, worst.lo, worst.hi, cap, geomean.est);
        return KB__ST_DISCARD;
    }
    if (geomean.hi < win && worst.est <= cap) {
        kb__errf(reason, reason_len,
                 "geomean %.4f [%.4f, %.4f] is below %g and the worst case %.4f is within %g",
                 geomean.est, geomean.lo, geomean.hi, win, worst.est, cap);
        return KB__ST_KEEP;
    }
    if (geomean.hi < win)
        kb__errf(reason, reason_len,
                 "geomean %.4f [%.4f, %.4f] is below %g but the worst case %.4f "
                 "[%.4f, %.4f] may exceed %g: %s",
                 geomean.est, geomean.lo, geomean.hi, win, worst.est, worst.lo, worst.hi, cap,
                 more);
    else
        kb__errf(reason, reason_len, "geomean %.4f CI [%.4f, %.4f] straddles %g: %s", geomean.est,
                 geomean.lo, geomean.hi, win, more);
    return KB__ST_INCONCLUSIVE;
}

/* Every look at a running trial is another chance for noise to look like a
 * win, and a trial that stops early reports the look that did. So an early
 * keep must hold at one-sided 99% (the CIs widened by 2.326/1.645), while
 * the verdict at the budget keeps 95%. The false keeps of an identical copy
 * in measurement.md (section 3.1) were early stops that this turns down. A
 * discard may still stop early: it can cost a win, never report one. */
#define KB__EARLY_WIDEN 1.414 /* z(0.99) / z(0.95) */
int kb__keep_holds_early(const kb__rule *rule, kb__ci geomean, kb__ci worst, double g_add,
                         double w_add)
{
    char why[2];
    return kb__decide(rule, kb__ci_add(geomean, g_add), kb__ci_add(worst, w_add), why,
                      sizeof why) == KB__ST_KEEP &&
           kb__decide(rule, kb__ci_add(kb__ci_widen(geomean, KB__EARLY_WIDEN), g_add),
                      kb__ci_add(kb__ci_widen(worst, KB__EARLY_WIDEN), w_add), why,
                      sizeof why) == KB__ST_KEEP;
}
