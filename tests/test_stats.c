/*
 * test_stats.c -- medians, bootstrap CIs and the verdict rule.
 *
 * Reference answers come from independent computations in this file (a full
 * sort, a naive resample-and-sort bootstrap) or from known distributions
 * (the median of Exp(1) is ln 2, of N(mu, 1) is mu).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"

/* The test's own generator (xorshift64*), unrelated to the one in stats.c. */
static uint64_t t_state;
static void t_seed(uint64_t s)
{
    t_state = s ? s : 1;
}
static uint64_t t_next(void)
{
    t_state ^= t_state >> 12;
    t_state ^= t_state << 25;
    t_state ^= t_state >> 27;
    return t_state * 0x2545f4914f6cdd1dull;
}
static double t_unif(void)
{
    return ((double)(t_next() >> 11) + 0.5) / 9007199254740992.0;
}
static double t_normal(void)
{
    return sqrt(-2.0 * log(t_unif())) * cos(6.283185307179586 * t_unif());
}
static double t_exp(void)
{
    return -log(t_unif());
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double ref_median(const double *x, size_t n)
{
    double *a = malloc(n * sizeof *a);
    assert_non_null(a);
    memcpy(a, x, n * sizeof *a);
    qsort(a, n, sizeof *a, cmpd);
    double m = n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
    free(a);
    return m;
}

/* Naive percentile bootstrap: resample, sort, take the median, B times. */
static void ref_bootstrap(const double *const *x, const size_t *n, size_t k, int b, double *lo,
                          double *hi)
{
    double *stat = malloc((size_t)b * sizeof *stat);
    size_t maxn = 0;
    for (size_t g = 0; g < k; g++) maxn = n[g] > maxn ? n[g] : maxn;
    double *rs = malloc(maxn * sizeof *rs);
    assert_non_null(stat);
    assert_non_null(rs);
    for (int i = 0; i < b; i++) {
        double s = 0;
        for (size_t g = 0; g < k; g++) {
            for (size_t j = 0; j < n[g]; j++) rs[j] = x[g][t_next() % n[g]];
            s += ref_median(rs, n[g]);
        }
        stat[i] = s / (double)k;
    }
    qsort(stat, (size_t)b, sizeof *stat, cmpd);
    double h = (b - 1) * 0.05;
    *lo = stat[(int)h] + (h - (int)h) * (stat[(int)h + 1] - stat[(int)h]);
    h = (b - 1) * 0.95;
    *hi = stat[(int)h] + (h - (int)h) * (stat[(int)h + 1] - stat[(int)h]);
    free(stat);
    free(rs);
}

/* ---- median --------------------------------------------------------- */
static void test_median_small(void **state)
{
    (void)state;
    double odd[] = {5, 1, 4, 2, 3};
    double even[] = {10, 1, 7, 3};
    double one[] = {42.5};
    double dup[] = {2, 2, 2, 1, 2, 3, 2};
    assert_true(kb__median(odd, 5) == 3.0);
    assert_true(kb__median(even, 4) == 5.0);
    assert_true(kb__median(one, 1) == 42.5);
    assert_true(kb__median(dup, 7) == 2.0);
    /* input untouched */
    assert_true(odd[0] == 5 && odd[4] == 3 && even[0] == 10 && even[3] == 3);
    double withnan[] = {1, NAN, 3};
    assert_true(isnan(kb__median(withnan, 3)));
}

static void test_median_matches_sort(void **state)
{
    (void)state;
    t_seed(7);
    static const size_t sizes[] = {2, 3, 10, 511, 512, 513, 1000, 4097};
    double *x = malloc(4097 * sizeof *x);
    assert_non_null(x);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        for (int pattern = 0; pattern < 4; pattern++) {
            for (size_t i = 0; i < n; i++) {
                switch (pattern) {
                case 0: x[i] = t_normal(); break;
                case 1: x[i] = (double)(t_next() % 4); break; /* heavy ties */
                case 2: x[i] = (double)i; break;              /* sorted */
                default: x[i] = (double)(n - i); break;       /* reversed */
                }
            }
            assert_true(kb__median(x, n) == ref_median(x, n));
        }
    }
    free(x);
}

/* ---- bootstrap ------------------------------------------------------ */
static void test_bootstrap_known_median(void **state)
{
    (void)state;
    t_seed(11);
    double x[2000];
    for (int i = 0; i < 2000; i++) x[i] = t_exp();
    kb__ci c = kb__bootstrap_median(x, 2000, 1234, 2000);
    assert_true(c.est == kb__median(x, 2000));
    assert_true(c.lo <= c.est && c.est <= c.hi);
    assert_true(c.lo < log(2.0) && log(2.0) < c.hi);
    /* the 90% CI of a median of 2000 Exp(1) draws is about +-0.037 wide */
    assert_true(c.hi - c.lo > 0.02 && c.hi - c.lo < 0.15);
}

static void test_bootstrap_coverage(void **state)
{
    (void)state;
    t_seed(99);
    int covered = 0, covered_skew = 0;
    double x[101], y[150];
    for (int d = 0; d < 200; d++) {
        double mu = 10.0 * t_unif();
        for (int i = 0; i < 101; i++) x[i] = mu + t_normal();
        kb__ci c = kb__bootstrap_median(x, 101, 1000 + (uint64_t)d, 2000);
        covered += c.lo <= mu && mu <= c.hi;
        /* an even n from a skewed law: Exp(1), median ln 2 */
        for (int i = 0; i < 150; i++) y[i] = t_exp();
        c = kb__bootstrap_median(y, 150, 5000 + (uint64_t)d, 2000);
        covered_skew += c.lo <= log(2.0) && log(2.0) <= c.hi;
    }
    print_message("coverage of 90%% CIs: normal n=101 %d/200, exp n=150 %d/200\n", covered,
                  covered_skew);
    assert_in_range(covered, 170, 190);
    assert_in_range(covered_skew, 170, 190);
}

static void test_bootstrap_constant(void **state)
{
    (void)state;
    double x[300];
    for (int i = 0; i < 300; i++) x[i] = 3.25;
    kb__ci c = kb__bootstrap_median(x, 300, 5, 2000);
    assert_true(c.est == 3.25 && c.lo == 3.25 && c.hi == 3.25);
    double one = 7.0;
    c = kb__bootstrap_median(&one, 1, 5, 2000);
    assert_true(c.est == 7.0 && c.lo == 7.0 && c.hi == 7.0);
}

static void test_bootstrap_shift_and_seed(void **state)
{
    (void)state;
    t_seed(3);
    double x[400], y[400];
    for (int i = 0; i < 400; i++) {
        x[i] = t_normal();
        y[i] = x[i] + 5.0;
    }
    kb__ci a = kb__bootstrap_median(x, 400, 77, 2000);
    kb__ci b = kb__bootstrap_median(y, 400, 77, 2000);
    assert_true(fabs(b.est - (a.est + 5.0)) < 1e-12);
    assert_true(fabs(b.lo - (a.lo + 5.0)) < 1e-12);
    assert_true(fabs(b.hi - (a.hi + 5.0)) < 1e-12);
    assert_true(b.lo > a.hi); /* a 5-sigma shift separates the CIs */
    kb__ci a2 = kb__bootstrap_median(x, 400, 77, 2000);
    assert_true(a2.lo == a.lo && a2.hi == a.hi);
    kb__ci a3 = kb__bootstrap_median(x, 400, 78, 2000);
    assert_true(a3.lo != a.lo || a3.hi != a.hi);
}

/* The order-statistic shortcut in stats.c must give the same CI as resampling
 * for real, up to Monte Carlo error. */
static void test_bootstrap_matches_naive(void **state)
{
    (void)state;
    static const size_t sizes[] = {51, 200};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        double x[200];
        t_seed(500 + s);
        for (size_t i = 0; i < n; i++) x[i] = t_exp();
        const double *px = x;
        double lo, hi;
        ref_bootstrap(&px, &n, 1, 20000, &lo, &hi);
        kb__ci c = kb__bootstrap_median(x, n, 42, 20000);
        /* tolerance: a fraction of the CI width plus the data's local gaps */
        double tol = 0.08 * (hi - lo) + 0.02;
        print_message("n=%zu naive [%.4f, %.4f] fast [%.4f, %.4f]\n", n, lo, hi, c.lo, c.hi);
        assert_true(fabs(c.lo - lo) < tol);
        assert_true(fabs(c.hi - hi) < tol);
    }
}

/* For tiny n the bootstrap distribution of the median is known exactly by
 * enumerating all n^n resamples; the CI ends must sit where that
 * distribution's CDF crosses 5% and 95%. */
static double exact_cdf(const double *med, size_t count, double v)
{
    size_t below = 0;
    for (size_t i = 0; i < count; i++) below += med[i] <= v;
    return (double)below / (double)count;
}

static void test_bootstrap_exact_small(void **state)
{
    (void)state;
    static const double data[] = {0.1, 0.3, 0.35, 0.9, 1.5, 2.0};
    for (size_t n = 5; n <= 6; n++) {
        size_t count = 1;
        for (size_t i = 0; i < n; i++) count *= n;
        double *med = malloc(count * sizeof *med);
        assert_non_null(med);
        for (size_t t = 0; t < count; t++) {
            double r[6];
            size_t c = t;
            for (size_t i = 0; i < n; i++, c /= n) r[i] = data[c % n];
            med[t] = ref_median(r, n);
        }
        kb__ci ci = kb__bootstrap_median(data, n, 31, 100000);
        print_message("n=%zu exact CDF at lo %.4f: %.4f, below hi %.4f: %.4f\n", n, ci.lo,
                      exact_cdf(med, count, ci.lo), ci.hi, exact_cdf(med, count, ci.hi));
        /* P(med <= lo) >= 5% and P(med < lo) <= 5%, give or take MC error */
        assert_true(exact_cdf(med, count, ci.lo) >= 0.05 - 0.004);
        assert_true(exact_cdf(med, count, nextafter(ci.lo, -INFINITY)) <= 0.05 + 0.004);
        assert_true(exact_cdf(med, count, ci.hi) >= 0.95 - 0.004);
        assert_true(exact_cdf(med, count, nextafter(ci.hi, -INFINITY)) <= 0.95 + 0.004);
        free(med);
    }
}

static void test_mean_of_medians(void **state)
{
    (void)state;
    /* constant groups: exact answer, zero-width CI */
    double g1[] = {1, 1, 1}, g2[] = {2, 2}, g3[] = {6, 6, 6, 6, 6};
    const double *xs[] = {g1, g2, g3};
    size_t ns[] = {3, 2, 5};
    kb__ci c = kb__bootstrap_mean_of_medians(xs, ns, 3, 1, 2000);
    assert_true(fabs(c.est - 3.0) < 1e-12);
    assert_true(fabs(c.lo - 3.0) < 1e-12 && fabs(c.hi - 3.0) < 1e-12);

    /* random groups of different sizes vs the naive bootstrap */
    t_seed(21);
    enum { K = 5 };
    static double data[K][300];
    size_t n[K] = {50, 101, 300, 2, 77};
    const double *p[K];
    double want = 0;
    for (int g = 0; g < K; g++) {
        for (size_t i = 0; i < n[g]; i++) data[g][i] = (double)g + t_normal() * 0.1 * (g + 1);
        p[g] = data[g];
        want += ref_median(data[g], n[g]);
    }
    want /= K;
    c = kb__bootstrap_mean_of_medians(p, n, K, 9, 10000);
    assert_true(fabs(c.est - want) < 1e-12);
    double lo, hi;
    ref_bootstrap(p, n, K, 10000, &lo, &hi);
    print_message("mean of medians %.4f naive [%.4f, %.4f] fast [%.4f, %.4f]\n", want, lo, hi, c.lo,
                  c.hi);
    assert_true(c.lo < want && want < c.hi);
    double tol = 0.05 * (hi - lo);
    assert_true(fabs(c.lo - lo) < tol && fabs(c.hi - hi) < tol);

    /* bad input: no groups, an empty group */
    c = kb__bootstrap_mean_of_medians(p, n, 0, 9, 2000);
    assert_true(isnan(c.est));
    size_t n0[] = {50, 0};
    c = kb__bootstrap_mean_of_medians(p, n0, 2, 9, 2000);
    assert_true(isnan(c.est) && !(c.lo > -INFINITY) && !(c.hi < INFINITY));
}

/* A trial calls this several times a second with ~14 groups of up to 2000
 * samples; the bound is loose so a sanitizer build passes, but a per-resample
 * sort (~seconds) would not. */
static void test_mean_of_medians_fast(void **state)
{
    (void)state;
    enum { K = 14, N = 2000 };
    static double data[K][N];
    const double *p[K];
    size_t n[K];
    t_seed(5);
    for (int g = 0; g < K; g++) {
        for (int i = 0; i < N; i++) data[g][i] = t_normal();
        p[g] = data[g];
        n[g] = N;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kb__ci c = {0, 0, 0};
    for (int rep = 0; rep < 5; rep++)
        c = kb__bootstrap_mean_of_medians(p, n, K, (uint64_t)rep, 2000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 5;
    print_message("mean_of_medians 14 x 2000, 2000 resamples: %.2f ms\n", ms);
    assert_true(c.lo < c.est && c.est < c.hi);
    assert_true(ms < 250.0);
}

/* ---- verdict -------------------------------------------------------- */
static kb__ci ci(double est, double lo, double hi)
{
    kb__ci c = {est, lo, hi};
    return c;
}

static void check_reason(const char *r)
{
    assert_true(strlen(r) > 10);
    assert_null(strchr(r, '\n'));
}

static void test_decide(void **state)
{
    (void)state;
    kb__rule rule = {0.01, 0.05};
    char r[256];

    assert_int_equal(kb__decide(&rule, ci(0.612, 0.601, 0.620), ci(0.702, 0.69, 0.71), r, sizeof r),
                     KB__ST_KEEP);
    check_reason(r);
    assert_non_null(strstr(r, "0.6120"));

    /* geomean clearly not a 1% win */
    assert_int_equal(kb__decide(&rule, ci(0.999, 0.995, 1.004), ci(1.01, 1.0, 1.02), r, sizeof r),
                     KB__ST_DISCARD);
    check_reason(r);
    assert_non_null(strstr(r, "1%"));

    /* a fast geomean but one case clearly regresses */
    assert_int_equal(kb__decide(&rule, ci(0.8, 0.79, 0.81), ci(1.12, 1.08, 1.15), r, sizeof r),
                     KB__ST_DISCARD);
    check_reason(r);

    /* CI straddles the threshold */
    assert_int_equal(kb__decide(&rule, ci(0.99, 0.97, 1.02), ci(1.0, 0.98, 1.03), r, sizeof r),
                     KB__ST_INCONCLUSIVE);
    check_reason(r);
    assert_non_null(strstr(r, "straddles"));

    /* a win, but the worst case's estimate is above the cap while its CI
     * still reaches below it */
    assert_int_equal(kb__decide(&rule, ci(0.8, 0.79, 0.81), ci(1.06, 1.04, 1.08), r, sizeof r),
                     KB__ST_INCONCLUSIVE);
    check_reason(r);

    /* boundaries: hi exactly at 1 - min_gain is not a keep; worst.est exactly
     * at 1 + worst_case is allowed */
    assert_int_equal(kb__decide(&rule, ci(0.98, 0.97, 0.99), ci(1.0, 0.9, 1.1), r, sizeof r),
                     KB__ST_INCONCLUSIVE);
    assert_int_equal(kb__decide(&rule, ci(0.9, 0.89, 0.91), ci(1.05, 1.0, 1.07), r, sizeof r),
                     KB__ST_KEEP);

    /* the rule's numbers are used */
    kb__rule strict = {0.2, 0.0};
    assert_int_equal(kb__decide(&strict, ci(0.85, 0.84, 0.86), ci(0.9, 0.89, 0.91), r, sizeof r),
                     KB__ST_DISCARD);
    assert_non_null(strstr(r, "20%"));

    /* an unknown CI never decides */
    assert_int_equal(kb__decide(&rule, ci(NAN, -INFINITY, INFINITY), ci(1, 1, 1), r, sizeof r),
                     KB__ST_INCONCLUSIVE);
    check_reason(r);

    /* a tiny reason buffer is truncated, not overflowed */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    kb__decide(&rule, ci(0.612, 0.601, 0.620), ci(0.702, 0.69, 0.71), tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), 7);
}

/* An early look's keep needs one-sided 99%. The A/A false keep of
 * measurement.md 3.1 (an identical copy, stopped at 1.95 s) was a keep at
 * 95% and is not one at 99%; a clear 10% win is one at both; discards and
 * inconclusive verdicts never pass as early keeps. */
static void test_keep_holds_early(void **state)
{
    (void)state;
    kb__rule rule = {0.01, 0.05};
    char r[256];
    const kb__ci aa = ci(0.9687, 0.9506, 0.9861), aa_worst = ci(0.985, 0.96, 1.01);
    assert_int_equal(kb__decide(&rule, aa, aa_worst, r, sizeof r), KB__ST_KEEP);
    assert_false(kb__keep_holds_early(&rule, aa, aa_worst, 0, 0));
    const kb__ci win = ci(0.91, 0.90, 0.92), win_worst = ci(0.93, 0.91, 0.95);
    assert_int_equal(kb__decide(&rule, win, win_worst, r, sizeof r), KB__ST_KEEP);
    assert_true(kb__keep_holds_early(&rule, win, win_worst, 0, 0));
    /* a keep whose worst case sits just under the cap and widens past it:
     * the worst case's CI is widened too, but keep looks at its estimate,
     * which widening leaves alone */
    assert_true(kb__keep_holds_early(&rule, win, ci(1.049, 1.0, 1.1), 0, 0));
    assert_false(kb__keep_holds_early(&rule, ci(0.999, 0.995, 1.004), ci(1.01, 1.0, 1.02), 0, 0));
    assert_false(kb__keep_holds_early(&rule, ci(0.99, 0.97, 1.02), ci(1.0, 0.98, 1.03), 0, 0));
    assert_false(kb__keep_holds_early(&rule, ci(NAN, NAN, NAN), ci(1, 1, 1), 0, 0));
    /* the rule's margin is applied to the widened CI: 0.95 [0.94, 0.958]
     * widens to about [0.936, 0.961], a keep at min-gain 3.5% but not 4% */
    kb__rule g35 = {0.035, 0.05}, g4 = {0.04, 0.05};
    assert_int_equal(kb__decide(&g4, ci(0.95, 0.94, 0.958), win_worst, r, sizeof r), KB__ST_KEEP);
    assert_true(kb__keep_holds_early(&g35, ci(0.95, 0.94, 0.958), win_worst, 0, 0));
    assert_false(kb__keep_holds_early(&g4, ci(0.95, 0.94, 0.958), win_worst, 0, 0));
    /* The spread between trials is added after the looks' widening, not
     * widened with it: a 3% win whose own CI is +-0.8% with a 1.25%
     * spread holds early (0.97 x e^sqrt(0.0113^2 + 0.0125^2) = 0.9865),
     * where widening the whole CI 1.414x would reach 0.9906 and make every
     * 3% win run to its budget; a spread of 3% leaves no keep at all. */
    const kb__ci w3 = ci(0.97, 0.97 * exp(-0.008), 0.97 * exp(0.008));
    const kb__ci w3_worst = ci(0.99, 0.99 * exp(-0.01), 0.99 * exp(0.01));
    assert_true(kb__keep_holds_early(&rule, w3, w3_worst, 0.0125, 0.0125));
    assert_false(kb__keep_holds_early(&rule, kb__ci_add(w3, 0.0125), kb__ci_add(w3_worst, 0.0125),
                                      0, 0));
    assert_false(kb__keep_holds_early(&rule, w3, w3_worst, 0.03, 0.03));
}

/* The fixed cost of a batch. Two sides whose calls take 1000 and 970 ns
 * (a 3% win), 3000 calls a batch, each batch carrying a fixed 20-22 us
 * of harness on top, which the gap (interval minus the worker's reading)
 * shows, with noise. Uncorrected the ratio reads low by the overhead's
 * share; corrected it is the calls' own. */
static void test_batch_overhead(void **state)
{
    (void)state;
    enum { N = 201 };
    double na[N], nb[N], ga[N], gb[N], raw[N], fix[N], gaps[2], batch;
    t_seed(42);
    for (int i = 0; i < N; i++) {
        const double fa = 20000 + 2000 * t_unif(), fb = 20000 + 2000 * t_unif();
        ga[i] = fa;
        gb[i] = fb;
        na[i] = 3000 * 970.0 + fa;
        nb[i] = 3000 * 1000.0 + fb;
    }
    double ov = kb__batch_overhead(ga, gb, na, nb, N, gaps, &batch);
    assert_true(ov > 20500 && ov < 21500); /* the median of U(20000, 22000) */
    assert_true(fabs(gaps[0] - 21000) < 500 && fabs(gaps[1] - 21000) < 500);
    assert_true(fabs(batch - (3000 * 970.0 + 21000)) < 600);
    for (int i = 0; i < N; i++) {
        raw[i] = na[i] / nb[i];
        fix[i] = (na[i] - ov) / (nb[i] - ov);
    }
    const double r_raw = kb__median(raw, N), r_fix = kb__median(fix, N);
    assert_true(fabs(r_fix - 0.97) < 6e-5);
    assert_true(r_raw - 0.97 > 1.5e-4); /* pulled towards 1 by about 0.02% */
    assert_true(r_raw > r_fix);

    /* A side that forges its readings short claims a big gap: the smaller
     * median, the honest side's, is still what is taken off. */
    for (int i = 0; i < N; i++) ga[i] = 28000;
    assert_true(fabs(kb__batch_overhead(ga, gb, na, nb, N, gaps, &batch) - gaps[1]) < 1e-9);
    assert_true(gaps[0] == 28000);
    /* Both forging: never more than 1% of the faster side's batch. */
    for (int i = 0; i < N; i++) ga[i] = gb[i] = 50000;
    ov = kb__batch_overhead(ga, gb, na, nb, N, gaps, &batch);
    assert_true(fabs(ov - 0.01 * batch) < 1e-6);
    /* A host reading shorter than the worker's (clamped to 0 upstream),
     * negative or unknown gaps: nothing is subtracted. */
    for (int i = 0; i < N; i++) ga[i] = 0;
    assert_true(kb__batch_overhead(ga, gb, na, nb, N, gaps, &batch) == 0);
    ga[0] = NAN;
    assert_true(kb__batch_overhead(ga, gb, na, nb, N, gaps, &batch) == 0);
    assert_true(kb__batch_overhead(ga, gb, na, nb, 0, gaps, &batch) == 0);
}

/* The noise rule's widening: in log space about the estimate, so a ratio
 * CI and its reciprocal widen alike. */
/* The spread between trials: a further error added in quadrature to each
 * half, in log space, so a narrow CI takes the new error's width and a
 * wide one barely grows. */
static void test_ci_add(void **state)
{
    (void)state;
    kb__ci a = kb__ci_add(ci(1.0, exp(-0.03), exp(0.04)), 0.04);
    assert_true(a.est == 1.0);
    assert_true(fabs(log(a.lo) + 0.05) < 1e-12);
    assert_true(fabs(log(a.hi) - sqrt(0.0032)) < 1e-12);
    /* about the estimate, not about 1 */
    a = kb__ci_add(ci(0.25, 0.25 * exp(-0.02), 0.25 * exp(0.02)), 0.3);
    assert_true(fabs(log(a.lo / 0.25) + sqrt(0.0004 + 0.09)) < 1e-12);
    assert_true(fabs(log(a.hi / 0.25) - sqrt(0.0004 + 0.09)) < 1e-12);
    /* h <= 0, or a bound that is not positive: unchanged */
    a = kb__ci_add(ci(0.9, 0.8, 1.0), 0.0);
    assert_true(a.lo == 0.8 && a.hi == 1.0);
    a = kb__ci_add(ci(0.9, NAN, 1.0), 0.1);
    assert_true(isnan(a.lo) && a.hi == 1.0);
}

static void test_ci_widen(void **state)
{
    (void)state;
    kb__ci w = kb__ci_widen(ci(0.9, 0.8, 1.0), 2.0);
    assert_true(fabs(w.est - 0.9) < 1e-12);
    assert_true(fabs(w.lo - 0.9 * (0.8 / 0.9) * (0.8 / 0.9)) < 1e-12);
    assert_true(fabs(w.hi - 0.9 / 0.9 / 0.9) < 1e-12);
    kb__ci inv = kb__ci_widen(ci(1 / 0.9, 1 / 1.0, 1 / 0.8), 2.0);
    assert_true(fabs(inv.lo - 1 / w.hi) < 1e-12 && fabs(inv.hi - 1 / w.lo) < 1e-12);
    /* f < 1, or bounds that are not positive: unchanged */
    w = kb__ci_widen(ci(0.9, 0.8, 1.0), 0.5);
    assert_true(w.lo == 0.8 && w.hi == 1.0);
    w = kb__ci_widen(ci(0.9, NAN, 1.0), 3.0);
    assert_true(isnan(w.lo) && w.hi == 1.0);
    /* As the trial uses it (figures from trials of a 10% faster variant
     * during a burst, floor 1.69%): at 7.46% noise the widened CI still
     * keeps it; at 10.83% it reaches 0.99 and the trial stays
     * inconclusive; a 3% "win" with a CI as narrow is not kept. */
    kb__rule rule = {0.01, 0.05};
    char r[256];
    double f = 7.46 / 1.69;
    assert_int_equal(kb__decide(&rule, kb__ci_widen(ci(0.9109, 0.8825, 0.9163), f),
                                kb__ci_widen(ci(0.9238, 0.90, 0.94), f), r, sizeof r),
                     KB__ST_KEEP);
    assert_int_equal(kb__decide(&rule, kb__ci_widen(ci(0.872, 0.8497, 0.8897), 10.83 / 1.69),
                                kb__ci_widen(ci(0.892, 0.87, 0.91), 10.83 / 1.69), r, sizeof r),
                     KB__ST_INCONCLUSIVE);
    assert_int_equal(kb__decide(&rule, ci(0.97, 0.955, 0.985), ci(0.975, 0.96, 0.99), r, sizeof r),
                     KB__ST_KEEP);
    assert_int_equal(kb__decide(&rule, kb__ci_widen(ci(0.97, 0.955, 0.985), f),
                                kb__ci_widen(ci(0.975, 0.96, 0.99), f), r, sizeof r),
                     KB__ST_INCONCLUSIVE);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(kb__status_name(KB__ST_KEEP), "keep");
    assert_string_equal(kb__status_name(KB__ST_INCONCLUSIVE), "inconclusive");
    assert_string_equal(kb__status_name(KB__ST_REJECTED), "rejected");
    assert_int_equal(kb__status_exit_code(KB__ST_KEEP), 0);
    assert_int_equal(kb__status_exit_code(KB__ST_DISCARD), 1);
    assert_int_equal(kb__status_exit_code(KB__ST_INCORRECT), 2);
    assert_int_equal(kb__status_exit_code(KB__ST_CRASH), 3);
    assert_int_equal(kb__status_exit_code(KB__ST_TIMEOUT), 3);
    assert_int_equal(kb__status_exit_code(KB__ST_REJECTED), 3);
    assert_int_equal(kb__status_exit_code(KB__ST_INCONCLUSIVE), 4);
    assert_string_equal(kb__status_name(KB__ST_CORRECT), "correct");
    assert_int_equal(kb__status_exit_code(KB__ST_CORRECT), 0);
    assert_int_equal(kb__status_exit_code((kb__status)99), 3);

    char e[16];
    kb__errf(e, sizeof e, "a\nb\tc%s", "\x1b[2Jlong tail");
    assert_int_equal(strlen(e), 15);
    assert_null(strchr(e, '\n'));
    assert_null(strchr(e, '\t'));
    assert_null(strchr(e, '\x1b'));
    assert_memory_equal(e, "a b c ", 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median_small),
        cmocka_unit_test(test_median_matches_sort),
        cmocka_unit_test(test_bootstrap_known_median),
        cmocka_unit_test(test_bootstrap_coverage),
        cmocka_unit_test(test_bootstrap_constant),
        cmocka_unit_test(test_bootstrap_shift_and_seed),
        cmocka_unit_test(test_bootstrap_matches_naive),
        cmocka_unit_test(test_bootstrap_exact_small),
        cmocka_unit_test(test_mean_of_medians),
        cmocka_unit_test(test_mean_of_medians_fast),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_keep_holds_early),
        cmocka_unit_test(test_batch_overhead),
        cmocka_unit_test(test_ci_widen),
        cmocka_unit_test(test_ci_add),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
