/*
 * test_generators.c -- kbench_gen: SplitMix64 against its published outputs,
 * every generator against an independent computation (reference SplitMix64
 * and libm written here), statistical properties, and golden values that
 * pin the exact bits a seed gives on every platform.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define N_STAT 100000

/* ---- independent references ---------------------------------------------- */

/* SplitMix64 as in Vigna's splitmix64.c. */
static uint64_t ref_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double ref_unit(uint64_t *x)
{
    return ldexp((double)(ref_next(x) >> 11), -53);
}

/* Lemire's nearly divisionless method, with 128-bit arithmetic. */
static uint64_t ref_below(uint64_t *x, uint64_t n)
{
    __extension__ typedef unsigned __int128 u128;
    u128 m = (u128)ref_next(x) * n;
    if ((uint64_t)m < n) {
        uint64_t t = -n % n;
        while ((uint64_t)m < t) m = (u128)ref_next(x) * n;
    }
    return (uint64_t)(m >> 64);
}

/* Marsaglia's polar method with libm. */
static double ref_normal(uint64_t *x)
{
    for (;;) {
        double u = 2 * ref_unit(x) - 1, v = 2 * ref_unit(x) - 1;
        double s = u * u + v * v;
        if (s < 1 && s > 0) return u * sqrt(-2 * log(s) / s);
    }
}

/* Rejection-inversion (Hörmann & Derflinger 1996) with libm, ranks 1..n. */
static double ref_zh(double s, double x)
{
    return exp(-s * log(x));
}

static double ref_zhint(double s, double x)
{
    double lx = log(x), t = (1 - s) * lx;
    double h2 = fabs(t) > 1e-8 ? expm1(t) / t : 1 + t * 0.5 * (1 + t * (1.0 / 3) * (1 + t * 0.25));
    return h2 * lx;
}

static double ref_zhinv(double s, double x)
{
    double t = x * (1 - s);
    if (t < -1) t = -1;
    double h1 = fabs(t) > 1e-8 ? log1p(t) / t : 1 - t * (0.5 - t * (1.0 / 3 - t * 0.25));
    return exp(h1 * x);
}

static void ref_zipf(uint64_t *x, uint32_t *out, size_t n, uint32_t items, double s)
{
    double nd = items, hx1 = ref_zhint(s, 1.5) - 1, hn = ref_zhint(s, nd + 0.5);
    double cut = 2 - ref_zhinv(s, ref_zhint(s, 2.5) - ref_zh(s, 2));
    for (size_t i = 0; i < n; i++) {
        for (;;) {
            double u = hn + ref_unit(x) * (hx1 - hn);
            double y = ref_zhinv(s, u);
            double k = floor(y + 0.5);
            if (k < 1) k = 1;
            if (k > nd) k = nd;
            if (k - y <= cut || u >= ref_zhint(s, k + 0.5) - ref_zh(s, k)) {
                out[i] = (uint32_t)k - 1;
                break;
            }
        }
    }
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t dbits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static uint32_t fbits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* ---- SplitMix64 ------------------------------------------------------------ */

static void test_splitmix_published(void **state)
{
    (void)state;
    /* Rosetta Code, "Pseudo-random numbers/Splitmix64": seed 1234567. */
    static const uint64_t want[5] = {6457827717110365317ULL, 3203168211198807973ULL,
                                     9817491932198370423ULL, 4593380528125082431ULL,
                                     16408922859458223821ULL};
    kb_rng r;
    kb_rng_seed(&r, 1234567);
    for (int i = 0; i < 5; i++) assert_int_equal(kb_rng_next(&r), want[i]);
    /* Seed 0: the first output of splitmix64.c. */
    kb_rng_seed(&r, 0);
    assert_int_equal(kb_rng_next(&r), 0xe220a8397b1dcdafULL);
}

static void test_splitmix_matches_reference(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {0, 1, 1234567, UINT64_MAX, 0x8000000000000000ULL};
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        kb_rng r;
        uint64_t x = seeds[s];
        kb_rng_seed(&r, seeds[s]);
        for (int i = 0; i < 10000; i++) assert_int_equal(kb_rng_next(&r), ref_next(&x));
        assert_int_equal(r.state, x);
    }
}

/* The finaliser's inverse: xorshifts undone, multipliers' inverses mod 2^64. */
static uint64_t unmix64(uint64_t z)
{
    z ^= (z >> 31) ^ (z >> 62);
    z *= 0x319642b2d24d8ec3ULL;
    z ^= (z >> 27) ^ (z >> 54);
    z *= 0x96de1b173f119089ULL;
    z ^= (z >> 30) ^ (z >> 60);
    return z;
}

static uint64_t mix64(uint64_t z)
{
    uint64_t x = z - 0x9e3779b97f4a7c15ULL;
    return ref_next(&x);
}

/* The derivation kbench used before it was keyed: three finalisers, each a
 * public bijection, so an output inverts to the seed. */
static uint64_t chain_derive(uint64_t seed, uint64_t a, uint64_t b)
{
    const uint64_t g = 0x9e3779b97f4a7c15ULL;
    uint64_t h = mix64(seed + g);
    h = mix64(h ^ mix64(a + 2 * g));
    return mix64(h ^ mix64(b + 3 * g));
}

static uint64_t chain_invert(uint64_t out, uint64_t a, uint64_t b)
{
    const uint64_t g = 0x9e3779b97f4a7c15ULL;
    uint64_t h = unmix64(out) ^ mix64(b + 3 * g);
    h = unmix64(h) ^ mix64(a + 2 * g);
    return unmix64(h) - g;
}

/* SipHash-2-4 as published: the reference's test vector for key bytes
 * 00..0f and the 16-byte message 00..0f is db 9b c2 57 7f cc 2a 3f. */
static void test_prf_reference_vector(void **state)
{
    (void)state;
    assert_int_equal(kb_rng_prf(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL, 0x0706050403020100ULL,
                                0x0f0e0d0c0b0a0908ULL),
                     0x3f2acc7f57c29bdbULL);
}

/* What a plugin can do with eight bytes of raw generator output: undo the
 * SplitMix64 step to the stream's state (always possible, the generator is
 * public), then undo the derivation to the seed. The old chain gave the
 * seed back (the attack works on it, so the check can fail); the keyed one
 * gives a value that is not the seed and predicts no other stream. */
static void test_derive_is_one_way(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed < 2000; seed += 97) {
        const uint64_t old_state = chain_derive(seed * 0x2545f4914f6cdd1dULL, 3, 2);
        assert_int_equal(chain_invert(old_state, 3, 2), seed * 0x2545f4914f6cdd1dULL);

        const uint64_t secret = seed * 0x2545f4914f6cdd1dULL;
        kb_rng r;
        kb_rng_seed(&r, kb_rng_derive(secret, 3, 2));
        const uint64_t word = kb_rng_next(&r); /* what the input buffer holds */
        const uint64_t stream = unmix64(word) - 0x9e3779b97f4a7c15ULL;
        assert_int_equal(stream, kb_rng_derive(secret, 3, 2)); /* the state is public */
        const uint64_t guess = chain_invert(stream, 3, 2);
        assert_true(guess != secret);
        assert_true(kb_rng_derive(guess, 4, 2) != kb_rng_derive(secret, 4, 2));
        assert_true(chain_derive(guess, 4, 2) != kb_rng_derive(secret, 4, 2));
    }
}

/* Keyed: the same (a, b) under another seed is another stream, and a seed
 * one bit away shares nothing with it. */
static void test_derive_is_keyed(void **state)
{
    (void)state;
    for (int bit = 0; bit < 64; bit++) {
        const uint64_t k = 0x0123456789abcdefULL, k2 = k ^ ((uint64_t)1 << bit);
        kb_rng r1, r2;
        kb_rng_seed(&r1, kb_rng_derive(k, 5, 1));
        kb_rng_seed(&r2, kb_rng_derive(k2, 5, 1));
        int same = 0;
        for (int i = 0; i < 64; i++) same += kb_rng_next(&r1) == kb_rng_next(&r2);
        assert_int_equal(same, 0);
    }
}

static void test_derive(void **state)
{
    (void)state;
    /* Golden: pins the derivation so stored results stay reproducible. The
     * values changed when the derivation became SipHash-2-4 keyed by the
     * seed (every generated input changed with them). */
    assert_int_equal(kb_rng_derive(0, 0, 0), 0xe3e1343ec31d3d51ULL);
    assert_int_equal(kb_rng_derive(42, 1, 2), 0x42c9965240266952ULL);

    assert_int_equal(kb_rng_derive(7, 3, 9), kb_rng_derive(7, 3, 9));
    /* A 48 x 48 grid of (a, b), and the same with the seed changed: all
     * distinct, and argument order matters. */
    enum { G = 48 };
    uint64_t *v = malloc(2 * G * G * sizeof *v);
    assert_non_null(v);
    for (uint64_t a = 0; a < G; a++)
        for (uint64_t b = 0; b < G; b++) {
            v[a * G + b] = kb_rng_derive(7, a, b);
            v[G * G + a * G + b] = kb_rng_derive(8, a, b);
        }
    for (size_t i = 0; i < 2 * G * G; i++)
        for (size_t j = i + 1; j < 2 * G * G; j++) assert_true(v[i] != v[j]);
    free(v);
    /* Avalanche: one flipped input bit flips about half the output bits. */
    double flips = 0;
    int cases = 0;
    for (int bit = 0; bit < 64; bit++) {
        uint64_t m = (uint64_t)1 << bit;
        uint64_t base = kb_rng_derive(99, 5, 6);
        flips += __builtin_popcountll(base ^ kb_rng_derive(99 ^ m, 5, 6));
        flips += __builtin_popcountll(base ^ kb_rng_derive(99, 5 ^ m, 6));
        flips += __builtin_popcountll(base ^ kb_rng_derive(99, 5, 6 ^ m));
        cases += 3;
    }
    flips /= cases;
    assert_true(flips > 30 && flips < 34);
}

/* ---- uniform draws ------------------------------------------------------------ */

static void test_below_matches_reference(void **state)
{
    (void)state;
    /* 2^63 + 1 rejects almost half of all draws, so the reference's exact
     * rejection path is exercised too. */
    static const uint64_t ns[] = {
        1, 2, 3, 7, 1000, (1ULL << 32) + 1, 3ULL << 62, (1ULL << 63) + 1, UINT64_MAX};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        kb_rng r;
        uint64_t x = 31337 + k;
        kb_rng_seed(&r, x);
        for (int i = 0; i < 5000; i++) {
            uint64_t got = kb_rng_below(&r, ns[k]);
            assert_true(got < ns[k]);
            assert_int_equal(got, ref_below(&x, ns[k]));
        }
    }
}

static void test_below_unbiased(void **state)
{
    (void)state;
    kb_rng r;
    kb_rng_seed(&r, 2024);
    /* Chi-square with 9 degrees of freedom; 27.88 is the 0.999 quantile. */
    long cnt[10] = {0};
    for (int i = 0; i < N_STAT; i++) cnt[kb_rng_below(&r, 10)]++;
    double chi = 0, e = N_STAT / 10.0;
    for (int i = 0; i < 10; i++) chi += (cnt[i] - e) * (cnt[i] - e) / e;
    assert_true(chi < 27.88);
    /* n = 3 * 2^62: x % n would put half the mass below 2^62, not a third. */
    long low = 0;
    for (int i = 0; i < N_STAT; i++) low += kb_rng_below(&r, 3ULL << 62) < (1ULL << 62);
    assert_true(fabs(low / (double)N_STAT - 1.0 / 3) < 0.006);
    /* n = 1 is always 0; the top of a 64-bit range is reachable. */
    for (int i = 0; i < 100; i++) assert_int_equal(kb_rng_below(&r, 1), 0);
    int high = 0;
    for (int i = 0; i < 1000; i++) high += kb_rng_below(&r, UINT64_MAX) >= (UINT64_MAX / 4) * 3;
    assert_true(high > 200 && high < 300);
}

static void test_unit(void **state)
{
    (void)state;
    kb_rng r;
    uint64_t x = 555;
    kb_rng_seed(&r, 555);
    double sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < N_STAT; i++) {
        double u = kb_rng_unit(&r);
        assert_true(dbits(u) == dbits(ref_unit(&x)));
        assert_true(u >= 0 && u < 1);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    assert_true(fabs(sum / N_STAT - 0.5) < 0.005);
    assert_true(lo < 1e-3 && hi > 1 - 1e-3);
}

/* ---- normal ------------------------------------------------------------------- */

static void test_normal_matches_libm(void **state)
{
    (void)state;
    kb_rng r;
    uint64_t x = 77;
    kb_rng_seed(&r, 77);
    double worst = 0;
    for (int i = 0; i < N_STAT; i++) {
        double got = kb_rng_normal(&r), want = ref_normal(&x);
        double err = fabs(got - want) / (fabs(want) > 1 ? fabs(want) : 1);
        worst = err > worst ? err : worst;
    }
    /* Same draws consumed, and the private log/sqrt within a few ulp. */
    assert_int_equal(r.state, x);
    assert_true(worst < 1e-14);
}

static void test_normal_golden(void **state)
{
    (void)state;
    /* Exact bits on every platform; each also equals the libm polar method
     * to 1e-14 (test_normal_matches_libm, same seed scheme). */
    static const uint64_t want[4] = {0x3fdb7c251a5470ccULL, 0x3fdd368fe72bb620ULL,
                                     0xbfd4eaec1cb11225ULL, 0x3ff0e36d0885401cULL};
    kb_rng r;
    uint64_t x = 1;
    kb_rng_seed(&r, 1);
    for (int i = 0; i < 4; i++) {
        double got = kb_rng_normal(&r);
        assert_true(fabs(got - ref_normal(&x)) < 1e-14);
        assert_int_equal(dbits(got), want[i]);
    }
}

static void test_normal_moments(void **state)
{
    (void)state;
    kb_rng r;
    kb_rng_seed(&r, 4242);
    double s1 = 0, s2 = 0;
    long within1 = 0;
    for (int i = 0; i < N_STAT; i++) {
        double z = kb_rng_normal(&r);
        s1 += z;
        s2 += z * z;
        within1 += fabs(z) < 1;
    }
    double mean = s1 / N_STAT, sd = sqrt(s2 / N_STAT - mean * mean);
    assert_true(fabs(mean) < 0.015);
    assert_true(fabs(sd - 1) < 0.01);
    assert_true(fabs(within1 / (double)N_STAT - 0.682689) < 0.006);

    float *f = malloc(N_STAT * sizeof *f);
    assert_non_null(f);
    kb_gen_normal_f32(&r, f, N_STAT, 3.0f, 0.5f);
    s1 = s2 = 0;
    for (int i = 0; i < N_STAT; i++) {
        s1 += f[i];
        s2 += (double)f[i] * f[i];
    }
    mean = s1 / N_STAT;
    sd = sqrt(s2 / N_STAT - mean * mean);
    assert_true(fabs(mean - 3) < 0.0075);
    assert_true(fabs(sd - 0.5) < 0.005);
    free(f);
}

/* ---- float arrays -------------------------------------------------------------- */

static void test_uniform_f32(void **state)
{
    (void)state;
    float *f = malloc(N_STAT * sizeof *f);
    assert_non_null(f);
    kb_rng r;
    uint64_t x = 9;
    kb_rng_seed(&r, 9);
    kb_gen_uniform_f32(&r, f, N_STAT, -2.0f, 6.0f);
    double sum = 0;
    for (int i = 0; i < N_STAT; i++) {
        float want = (float)(-2.0 + 8.0 * ref_unit(&x));
        if (want >= 6.0f) want = nextafterf(6.0f, 0.0f);
        assert_true(fbits(f[i]) == fbits(want));
        assert_true(f[i] >= -2.0f && f[i] < 6.0f);
        sum += f[i];
    }
    assert_true(fabs(sum / N_STAT - 2.0) < 0.04);
    /* Golden: the first values for seed 9. */
    assert_int_equal(fbits(f[0]), 0x405d5ea6u);
    assert_int_equal(fbits(f[1]), 0x40802d8au);

    /* A range one float wide holds only lo; a range ending at 0 never gives 0;
     * an empty range is read as {lo}. */
    float one_up = nextafterf(1.0f, 2.0f);
    kb_gen_uniform_f32(&r, f, 1000, 1.0f, one_up);
    for (int i = 0; i < 1000; i++) assert_true(f[i] == 1.0f);
    kb_gen_uniform_f32(&r, f, 1000, -1e-30f, 0.0f);
    for (int i = 0; i < 1000; i++) assert_true(f[i] >= -1e-30f && f[i] < 0.0f);
    kb_gen_uniform_f32(&r, f, 10, 5.0f, 5.0f);
    for (int i = 0; i < 10; i++) assert_true(f[i] == 5.0f);
    free(f);
}

/* Points of each cluster must sit within a few spreads of one another and
 * form exactly n_clusters well-separated groups in [-1, 1)^dim. */
static void test_clustered_f32(void **state)
{
    (void)state;
    enum { NV = 600, DIM = 8, NC = 3 };
    const float spread = 1e-3f;
    float *p = malloc(NV * DIM * sizeof *p);
    assert_non_null(p);
    kb_rng r;
    kb_rng_seed(&r, 31);
    kb_gen_clustered_f32(&r, p, NV, DIM, NC, spread);

    int group[NV], rep[NV], n_groups = 0;
    for (int v = 0; v < NV; v++) {
        group[v] = -1;
        for (int g = 0; g < n_groups && group[v] < 0; g++) {
            double d2 = 0;
            for (int j = 0; j < DIM; j++) {
                double d = p[v * DIM + j] - p[rep[g] * DIM + j];
                d2 += d * d;
            }
            if (d2 < 0.05 * 0.05) group[v] = g;
        }
        if (group[v] < 0) {
            rep[n_groups] = v;
            group[v] = n_groups++;
        }
        for (int j = 0; j < DIM; j++)
            assert_true(p[v * DIM + j] > -1.01f && p[v * DIM + j] < 1.01f);
    }
    assert_int_equal(n_groups, NC);
    /* Within a group, each coordinate's sd about the group mean is spread. */
    for (int g = 0; g < n_groups; g++) {
        double mean[DIM] = {0}, ss = 0;
        int cnt = 0;
        for (int v = 0; v < NV; v++)
            if (group[v] == g) {
                cnt++;
                for (int j = 0; j < DIM; j++) mean[j] += p[v * DIM + j];
            }
        assert_true(cnt > NV / NC / 2);
        for (int j = 0; j < DIM; j++) {
            mean[j] /= cnt;
            assert_true(mean[j] >= -1.0 && mean[j] < 1.0);
        }
        for (int v = 0; v < NV; v++)
            if (group[v] == g)
                for (int j = 0; j < DIM; j++)
                    ss += (p[v * DIM + j] - mean[j]) * (p[v * DIM + j] - mean[j]);
        double sd = sqrt(ss / (cnt * DIM - DIM));
        assert_true(fabs(sd - spread) < 0.1 * spread);
    }
    /* Spread 0 and one cluster: every vector is the same centre. */
    kb_gen_clustered_f32(&r, p, 10, DIM, 1, 0.0f);
    for (int v = 1; v < 10; v++) assert_memory_equal(p, p + v * DIM, DIM * sizeof *p);
    free(p);
}

/* ---- bytes ----------------------------------------------------------------------- */

static void test_bytes(void **state)
{
    (void)state;
    uint8_t *b = malloc(N_STAT);
    assert_non_null(b);
    kb_rng r;
    uint64_t x = 12;
    kb_rng_seed(&r, 12);
    kb_gen_bytes(&r, b, 1003); /* not a multiple of 8: the tail word is cut */
    for (size_t i = 0; i < 1003; i += 8) {
        uint64_t w = ref_next(&x);
        for (size_t j = 0; j < 8 && i + j < 1003; j++)
            assert_int_equal(b[i + j], (uint8_t)(w >> (8 * j)));
    }
    kb_gen_bytes(&r, b, N_STAT);
    long cnt[256] = {0};
    double sum = 0;
    for (int i = 0; i < N_STAT; i++) {
        cnt[b[i]]++;
        sum += b[i];
    }
    assert_true(fabs(sum / N_STAT - 127.5) < 1.0);
    double chi = 0, e = N_STAT / 256.0;
    for (int i = 0; i < 256; i++) chi += (cnt[i] - e) * (cnt[i] - e) / e;
    assert_true(chi < 330.5); /* 0.999 quantile, 255 degrees of freedom */
    free(b);
}

/* ---- zipf ------------------------------------------------------------------------- */

static void test_zipf_matches_libm(void **state)
{
    (void)state;
    static const struct {
        uint32_t n;
        double s;
    } cases[] = {{1000, 1.1}, {UINT32_MAX, 0.8}, {10, 2.5}, {100, 1.0}, {50, 0.0}, {2, 7.0}};
    uint32_t *a = malloc(N_STAT * sizeof *a), *b = malloc(N_STAT * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        kb_rng r;
        uint64_t x = 100 + c;
        kb_rng_seed(&r, x);
        kb_gen_zipf_u32(&r, a, N_STAT, cases[c].n, cases[c].s);
        ref_zipf(&x, b, N_STAT, cases[c].n, cases[c].s);
        assert_memory_equal(a, b, N_STAT * sizeof *a);
        for (int i = 0; i < N_STAT; i++) assert_true(a[i] < cases[c].n);
    }
    free(a);
    free(b);
}

/* Generalised harmonic number sum_{k=1}^{n} k^-s, summed exactly to 10^6 and
 * by Euler-Maclaurin beyond. */
static double harmonic(double n, double s)
{
    double h = 0, k_max = n < 1e6 ? n : 1e6;
    for (double k = k_max; k >= 1; k--) h += pow(k, -s);
    if (n > k_max) {
        double a = k_max, b = n;
        double tail = s == 1 ? log(b / a) : (pow(b, 1 - s) - pow(a, 1 - s)) / (1 - s);
        h += tail + (pow(b, -s) - pow(a, -s)) / 2 - s * (pow(b, -s - 1) - pow(a, -s - 1)) / 12;
    }
    return h;
}

static void test_zipf_frequencies(void **state)
{
    (void)state;
    uint32_t *a = malloc(N_STAT * sizeof *a);
    assert_non_null(a);
    kb_rng r;
    kb_rng_seed(&r, 5);

    /* Whole law, ten items: chi-square, 9 degrees of freedom. */
    kb_gen_zipf_u32(&r, a, N_STAT, 10, 1.2);
    long cnt[10] = {0};
    for (int i = 0; i < N_STAT; i++) cnt[a[i]]++;
    double h = harmonic(10, 1.2), chi = 0;
    for (int k = 0; k < 10; k++) {
        double e = N_STAT * pow(k + 1, -1.2) / h;
        chi += (cnt[k] - e) * (cnt[k] - e) / e;
    }
    assert_true(chi < 27.88);

    /* Rank 0 has probability 1 / H(n, s); 5 standard errors. */
    static const struct {
        uint32_t n;
        double s;
    } cases[] = {{1000, 1.0}, {UINT32_MAX, 1.1}, {1u << 20, 0.7}, {UINT32_MAX, 2.0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        kb_gen_zipf_u32(&r, a, N_STAT, cases[c].n, cases[c].s);
        long zero = 0;
        for (int i = 0; i < N_STAT; i++) zero += a[i] == 0;
        double p = 1 / harmonic(cases[c].n, cases[c].s);
        double se = sqrt(p * (1 - p) / N_STAT);
        assert_true(fabs(zero / (double)N_STAT - p) < 5 * se);
    }

    /* Degenerate item counts give rank 0. */
    kb_gen_zipf_u32(&r, a, 100, 1, 1.0);
    kb_gen_zipf_u32(&r, a + 100, 100, 0, 1.0);
    for (int i = 0; i < 200; i++) assert_int_equal(a[i], 0);
    free(a);
}

static void test_zipf_golden(void **state)
{
    (void)state;
    uint32_t a[8];
    kb_rng r;
    kb_rng_seed(&r, 2718);
    kb_gen_zipf_u32(&r, a, 8, 1000000, 1.1);
    static const uint32_t want[8] = {0, 28, 166, 136426, 246, 24, 30, 260945};
    assert_memory_equal(a, want, sizeof want);
    uint64_t x = 2718;
    ref_zipf(&x, a, 8, 1000000, 1.1);
    assert_memory_equal(a, want, sizeof want);
}

/* ---- postings ---------------------------------------------------------------------- */

/* Checks every promise of kb_gen_postings and returns |intersection|. */
static uint64_t check_postings(uint64_t seed, uint32_t k, const uint64_t *lens, double overlap,
                               uint32_t universe, uint32_t **keep)
{
    uint64_t total = 0, min = lens[0];
    for (uint32_t i = 0; i < k; i++) {
        total += lens[i];
        min = lens[i] < min ? lens[i] : min;
    }
    uint32_t *out = malloc((total + 1) * sizeof *out);
    uint64_t *off = malloc((k + 1) * sizeof *off);
    assert_non_null(out);
    assert_non_null(off);
    kb_rng r;
    kb_rng_seed(&r, seed);
    assert_int_equal(kb_gen_postings(&r, k, lens, overlap, universe, out, off), 0);
    assert_int_equal(off[0], 0);
    for (uint32_t i = 0; i < k; i++) {
        assert_int_equal(off[i + 1] - off[i], lens[i]);
        for (uint64_t j = off[i]; j < off[i + 1]; j++) {
            assert_true(out[j] < universe);
            if (j > off[i]) assert_true(out[j - 1] < out[j]);
        }
    }
    /* Intersection of all lists by k-way cursor walk over list 0. */
    uint64_t *cur = calloc(k, sizeof *cur), inter = 0;
    assert_non_null(cur);
    for (uint64_t j = 0; j < lens[0]; j++) {
        uint32_t v = out[j];
        int all = 1;
        for (uint32_t i = 1; i < k && all; i++) {
            while (cur[i] < lens[i] && out[off[i] + cur[i]] < v) cur[i]++;
            all = cur[i] < lens[i] && out[off[i] + cur[i]] == v;
        }
        inter += all;
    }
    uint64_t core = (uint64_t)floor(overlap * (double)min + 0.5);
    assert_true(inter >= core);
    free(cur);
    free(off);
    if (keep)
        *keep = out;
    else
        free(out);
    return inter;
}

static void test_postings_properties(void **state)
{
    (void)state;
    /* Sparse: chance collisions across all three lists are negligible, so
     * the intersection is exactly the core. */
    uint64_t sparse[3] = {20000, 50000, 30000};
    assert_int_equal(check_postings(1, 3, sparse, 0.25, UINT32_MAX, NULL), 5000);
    assert_int_equal(check_postings(2, 3, sparse, 0.0, UINT32_MAX, NULL), 0);
    assert_int_equal(check_postings(3, 3, sparse, 1.0, UINT32_MAX, NULL), 20000);
    /* Dense: the universe is exactly twice the total. */
    uint64_t dense[5] = {100, 100, 100, 100, 100};
    assert_true(check_postings(4, 5, dense, 0.3, 1000, NULL) >= 30);
    uint64_t two[2] = {250, 250};
    uint64_t both = check_postings(5, 2, two, 0.4, 1000, NULL);
    /* 150 extras each among 900 non-core values: about 25 collide. */
    assert_true(both >= 100 && both < 160);
    /* Overlap 1 with equal lengths: every list is the core. */
    uint32_t *out;
    uint64_t eq[4] = {777, 777, 777, 777};
    assert_int_equal(check_postings(6, 4, eq, 1.0, 100000, &out), 777);
    for (int i = 1; i < 4; i++) assert_memory_equal(out, out + 777 * i, 777 * sizeof *out);
    free(out);
    /* Empty lists and a single list. */
    uint64_t empty[3] = {0, 10, 0};
    assert_int_equal(check_postings(7, 3, empty, 0.5, 100, NULL), 0);
    uint64_t one[1] = {40};
    assert_int_equal(check_postings(8, 1, one, 0.5, 80, NULL), 40);
    /* Large: 4M ids in the full 32-bit universe. */
    uint64_t big[4] = {1000000, 1000000, 1000000, 1000000};
    assert_int_equal(check_postings(9, 4, big, 0.1, UINT32_MAX, NULL), 100000);
}

static void test_postings_uniform(void **state)
{
    (void)state;
    /* Sparse: the values of one long list spread evenly over the universe. */
    uint64_t len[1] = {N_STAT};
    uint32_t *out;
    check_postings(10, 1, len, 0.0, UINT32_MAX, &out);
    long quarter[4] = {0};
    for (int i = 0; i < N_STAT; i++) quarter[out[i] >> 30]++;
    for (int q = 0; q < 4; q++) assert_true(labs(quarter[q] - N_STAT / 4) < 1000); /* 7 sd */
    free(out);
    /* Dense: each of 64 values is in a 32-of-64 list half the time. */
    long hits[64] = {0};
    uint64_t half[1] = {32};
    for (uint64_t seed = 0; seed < 2000; seed++) {
        check_postings(1000 + seed, 1, half, 0.0, 64, &out);
        for (int i = 0; i < 32; i++) hits[out[i]]++;
        free(out);
    }
    for (int v = 0; v < 64; v++) assert_true(labs(hits[v] - 1000) < 120); /* 5.4 sd */
}

static void test_postings_refusals(void **state)
{
    (void)state;
    uint32_t out[64];
    uint64_t off[4];
    kb_rng r;
    kb_rng_seed(&r, 1);
    uint64_t ok[3] = {10, 10, 10};
    uint64_t over[3] = {10, 10, 11};
    assert_int_equal(kb_gen_postings(&r, 3, ok, 0.5, 60, out, off), 0);
    assert_int_equal(kb_gen_postings(&r, 3, over, 0.5, 61, out, off), -1);
    assert_int_equal(kb_gen_postings(&r, 3, ok, 1.5, 1000, out, off), -1);
    assert_int_equal(kb_gen_postings(&r, 3, ok, -0.1, 1000, out, off), -1);
    assert_int_equal(kb_gen_postings(&r, 3, ok, NAN, 1000, out, off), -1);
    uint64_t huge[2] = {UINT64_MAX, 2};
    assert_int_equal(kb_gen_postings(&r, 2, huge, 0.5, UINT32_MAX, out, off), -1);
    off[0] = 99;
    assert_int_equal(kb_gen_postings(&r, 0, ok, 0.5, 1000, out, off), 0);
    assert_int_equal(off[0], 0);
}

static void test_postings_golden(void **state)
{
    (void)state;
    uint64_t lens[3] = {1000, 3000, 2000};
    uint32_t out[6000];
    uint64_t off[4];
    kb_rng r;
    kb_rng_seed(&r, 1234567);
    assert_int_equal(kb_gen_postings(&r, 3, lens, 0.3, 100000, out, off), 0);
    /* Pinned bits; the properties are checked in test_postings_*. */
    assert_int_equal(fnv1a(out, sizeof out), 0x3876308335d8b765ULL);
}

/* ---- determinism -------------------------------------------------------------------- */

/* Runs every generator from one seed into one byte buffer. */
static size_t run_all(uint64_t seed, unsigned char *buf)
{
    size_t n = 0;
    kb_rng r;
    kb_rng_seed(&r, seed);
    kb_gen_uniform_f32(&r, (float *)(void *)(buf + n), 256, -1, 1);
    n += 256 * sizeof(float);
    kb_gen_normal_f32(&r, (float *)(void *)(buf + n), 256, 0, 1);
    n += 256 * sizeof(float);
    kb_gen_clustered_f32(&r, (float *)(void *)(buf + n), 32, 8, 4, 0.1f);
    n += 256 * sizeof(float);
    kb_gen_bytes(&r, buf + n, 1024);
    n += 1024;
    kb_gen_zipf_u32(&r, (uint32_t *)(void *)(buf + n), 256, 1000, 1.1);
    n += 256 * sizeof(uint32_t);
    uint64_t lens[2] = {128, 128}, off[3];
    assert_int_equal(kb_gen_postings(&r, 2, lens, 0.5, 10000, (uint32_t *)(void *)(buf + n), off),
                     0);
    n += 256 * sizeof(uint32_t);
    return n;
}

/* ---- product quantization (pq-dot, pq-cosine) -------------------------------------- */

/* FNV-1a over bytes: a fingerprint of a whole generated buffer. */
static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

enum { PQ_M = 4, PQ_DS = 8, PQ_N = 512, PQ_CB = 256 * PQ_M * PQ_DS };

/* The exact bits a seed gives, on every platform (the matrix runs this under qemu-aarch64). */
static void test_pq_golden(void **state)
{
    (void)state;
    static float cb[PQ_CB], q[PQ_M * PQ_DS];
    static uint8_t codes[PQ_N * PQ_M];
    uint64_t h[2][3];
    for (int clustered = 0; clustered < 2; clustered++) {
        kb_gen_pq_codebook(77, PQ_M, PQ_DS, clustered, 0.25f, cb);
        kb_gen_pq_query(77, 3, PQ_M, PQ_DS, clustered, 0.25f, cb, q);
        assert_int_equal(kb_gen_pq_codes(77, 3, PQ_N, PQ_M, clustered, codes), 0);
        h[clustered][0] = fnv(cb, sizeof cb);
        h[clustered][1] = fnv(q, sizeof q);
        h[clustered][2] = fnv(codes, sizeof codes);
    }
    static const uint64_t want[2][3] = {
        {0xf8e76576458b1aa5ULL, 0xc40e3d1057425db9ULL, 0x68c1eb2ff030069aULL},
        {0x5c66ac99c093f1b6ULL, 0x275c132fd9a6186bULL, 0xcd761fea68977447ULL},
    };
    assert_memory_equal(h, want, sizeof want);
}

/* Uniform values stay in [-scale, scale); the scale multiplies exactly; a clustered query
 * sits near one centroid per sub-space; clustered codes are skewed, uniform ones are not. */
static void test_pq_properties(void **state)
{
    (void)state;
    static float cb[PQ_CB], cb2[PQ_CB], q[PQ_M * PQ_DS];
    static uint8_t codes[PQ_N * PQ_M];
    kb_gen_pq_codebook(5, PQ_M, PQ_DS, 0, 1.0f, cb);
    kb_gen_pq_codebook(5, PQ_M, PQ_DS, 0, 0.5f, cb2);
    for (size_t i = 0; i < PQ_CB; i++) {
        assert_true(cb[i] >= -1.0f && cb[i] < 1.0f);
        assert_true(cb2[i] == cb[i] * 0.5f);
    }
    kb_gen_pq_codebook(5, PQ_M, PQ_DS, 1, 1.0f, cb);
    kb_gen_pq_query(5, 1, PQ_M, PQ_DS, 1, 1.0f, cb, q);
    for (uint32_t j = 0; j < PQ_M; j++) {
        double best = 1e30;
        for (uint32_t c = 0; c < 256; c++) {
            double d2 = 0;
            for (uint32_t t = 0; t < PQ_DS; t++) {
                double e = q[j * PQ_DS + t] - cb[(j * 256 + c) * PQ_DS + t];
                d2 += e * e;
            }
            best = d2 < best ? d2 : best;
        }
        assert_true(best < PQ_DS * 0.05 * 0.05 * 9); /* 3 sd of the noise per coordinate */
    }
    for (int clustered = 0; clustered < 2; clustered++) {
        assert_int_equal(kb_gen_pq_codes(5, 1, PQ_N, PQ_M, clustered, codes), 0);
        uint32_t count[256] = {0}, top = 0;
        for (uint32_t i = 0; i < PQ_N; i++) count[codes[i * PQ_M]]++;
        for (uint32_t c = 0; c < 256; c++) top = count[c] > top ? count[c] : top;
        /* Zipf(1.1) over 256 ranks gives rank 0 about 22%; uniform about 0.4% (2 of 512) */
        if (clustered)
            assert_true(top > PQ_N / 8);
        else
            assert_true(top < PQ_N / 32);
    }
}

/* At scale 1 the helpers draw the very inputs of pq-l2's oracle (its own copy of the same
 * streams), so every PQ target is judged on one family of inputs. */
static void test_pq_matches_pq_l2(void **state)
{
    (void)state;
    void *h = dlopen(KB_TEST_BUILD_DIR "/oracles/pq-l2/oracle.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("%s", dlerror());
    kb_target_entry_fn entry = (kb_target_entry_fn)dlsym(h, "kb_target_entry_v1");
    assert_non_null(entry);
    const kb_target *t = entry();
    for (uint32_t k = 0; k < t->n_cases; k++) {
        const kb_case_spec *cs = &t->cases[k];
        const uint64_t n = (uint64_t)cs->params[0];
        const uint32_t d = (uint32_t)cs->params[1], m = (uint32_t)cs->params[2];
        if (n > 65536) continue; /* the shapes, not the sizes, are under test */
        const int clustered = strstr(cs->name, "/clustered") != NULL;
        float *cb = malloc((size_t)256 * d * sizeof *cb),
              *cb2 = malloc((size_t)256 * d * sizeof *cb2);
        float *q = malloc(d * sizeof *q), *q2 = malloc(d * sizeof *q2);
        uint8_t *codes = malloc(n * m), *codes2 = malloc(n * m);
        assert_true(cb && cb2 && q && q2 && codes && codes2);
        kb_buffer bufs[4] = {{cb, 256ULL * d, 0, KB_DT_F32, 0},
                             {q, d, 0, KB_DT_F32, 0},
                             {codes, n * m, 0, KB_DT_U8, 0},
                             {NULL, n, 0, KB_DT_F32, 0}};
        char err[256];
        for (uint32_t set = 0; set < 2; set++) {
            assert_int_equal(t->generate(cs, 99, set, bufs, 4, err, sizeof err), 0);
            if (set == 0) kb_gen_pq_codebook(99, m, d / m, clustered, 1.0f, cb2);
            kb_gen_pq_query(99, set, m, d / m, clustered, 1.0f, cb2, q2);
            assert_int_equal(kb_gen_pq_codes(99, set, n, m, clustered, codes2), 0);
            assert_memory_equal(cb, cb2, (size_t)256 * d * sizeof *cb);
            assert_memory_equal(q, q2, d * sizeof *q);
            assert_memory_equal(codes, codes2, n * m);
        }
        free(cb), free(cb2), free(q), free(q2), free(codes), free(codes2);
    }
    dlclose(h);
}

static void test_determinism(void **state)
{
    (void)state;
    enum { SZ = 8192 };
    _Alignas(8) unsigned char a[SZ], b[SZ], c[SZ];
    size_t n = run_all(11, a);
    assert_true(n <= SZ);
    assert_int_equal(run_all(11, b), n);
    assert_int_equal(run_all(12, c), n);
    assert_memory_equal(a, b, n);
    /* Each section differs with the seed. */
    static const size_t sect[7] = {0, 1024, 2048, 3072, 4096, 5120, 6144};
    for (int s = 0; s < 6; s++)
        assert_memory_not_equal(a + sect[s], c + sect[s], sect[s + 1] - sect[s]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix_published),
        cmocka_unit_test(test_splitmix_matches_reference),
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_prf_reference_vector),
        cmocka_unit_test(test_derive_is_one_way),
        cmocka_unit_test(test_derive_is_keyed),
        cmocka_unit_test(test_below_matches_reference),
        cmocka_unit_test(test_below_unbiased),
        cmocka_unit_test(test_unit),
        cmocka_unit_test(test_normal_matches_libm),
        cmocka_unit_test(test_normal_golden),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_uniform_f32),
        cmocka_unit_test(test_clustered_f32),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_zipf_matches_libm),
        cmocka_unit_test(test_pq_golden),
        cmocka_unit_test(test_pq_properties),
        cmocka_unit_test(test_pq_matches_pq_l2),
        cmocka_unit_test(test_zipf_frequencies),
        cmocka_unit_test(test_zipf_golden),
        cmocka_unit_test(test_postings_properties),
        cmocka_unit_test(test_postings_uniform),
        cmocka_unit_test(test_postings_refusals),
        cmocka_unit_test(test_postings_golden),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
