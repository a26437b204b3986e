/*
 * gen.c -- the continuous and discrete distributions of kb_gen.h.
 *
 * Same seed, same bytes, on every platform: the only floating-point
 * operations here are IEEE + - * /, which are correctly rounded everywhere,
 * evaluated in a fixed order. libm's log/exp/sqrt are not: glibc, musl and
 * Apple differ in the last bit, and a last bit that flips a comparison in a
 * rejection sampler changes every draw after it. So log, log1p, exp, expm1
 * and sqrt below are private, written only with those four operations, and
 * accurate to a few ulp -- plenty for test inputs; what matters is that
 * they give the same bits everywhere. No libm symbol is referenced, so
 * plugins linking this library need not link -lm.
 */
#include "kb_gen.h"

#include <float.h>
#include <string.h>

/* Fused multiply-add and excess precision both change results bit for bit;
 * the build passes -ffp-contract=off, and these catch the rest. */
#if defined(__FAST_MATH__)
#error "kb_gen must not be built with -ffast-math: its outputs would depend on the compiler"
#endif
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error \
    "kb_gen needs FLT_EVAL_METHOD == 0 (SSE2 or aarch64), x87 excess precision changes its outputs"
#endif

/* ---- bit access ---------------------------------------------------------- */

static uint64_t kb__bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static double kb__from_bits(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* 2^e for -1022 <= e <= 1023, exactly. */
static double kb__pow2(int e)
{
    return kb__from_bits((uint64_t)(e + 1023) << 52);
}

/* x * 2^e with a single rounding, for x in [0.5, 2] and any e: the first
 * step is exact, so only the step into the subnormal range rounds. */
static double kb__scale(double x, int e)
{
    if (e > 1023) {
        if (e > 2046) e = 2046; /* overflows to inf anyway */
        return x * kb__pow2(1023) * kb__pow2(e - 1023);
    }
    if (e < -1022) {
        if (e < -1022 - 60) return 0.0; /* below half the smallest subnormal */
        return x * kb__pow2(e + 1022) * kb__pow2(-1022);
    }
    return x * kb__pow2(e);
}

static double kb__abs(double x)
{
    return x < 0 ? -x : x;
}

/* ---- private elementary functions -------------------------------------- */

/* ln 2 split as in fdlibm: the high part has 32 trailing zero bits, so
 * e * LN2_HI is exact for any exponent e. */
#define KB__LN2_HI  6.93147180369123816490e-01
#define KB__LN2_LO  1.90821492927058770002e-10
#define KB__INV_LN2 1.44269504088896338700e+00
#define KB__SQRT2   1.41421356237309514547e+00

/* 2 atanh(t) = ln((1+t)/(1-t)) for |t| <= 0.1716: the terms after t^23 are
 * below 2^-60 relative, so the truncated series is exact to rounding. */
static double kb__atanh2(double t)
{
    double t2 = t * t;
    double p = 1.0 / 23;
    p = 1.0 / 21 + t2 * p;
    p = 1.0 / 19 + t2 * p;
    p = 1.0 / 17 + t2 * p;
    p = 1.0 / 15 + t2 * p;
    p = 1.0 / 13 + t2 * p;
    p = 1.0 / 11 + t2 * p;
    p = 1.0 / 9 + t2 * p;
    p = 1.0 / 7 + t2 * p;
    p = 1.0 / 5 + t2 * p;
    p = 1.0 / 3 + t2 * p;
    return 2 * t + 2 * t * (t2 * p);
}

/* Natural log for finite x > 0 (callers guarantee it): x = m 2^e with m in
 * (sqrt(1/2), sqrt(2)], ln m = 2 atanh((m-1)/(m+1)). */
static double kb__log(double x)
{
    int e = 0;
    uint64_t b = kb__bits(x);
    if (b < ((uint64_t)1 << 52)) { /* subnormal: make it normal first */
        x *= 0x1.0p54;
        b = kb__bits(x);
        e = -54;
    }
    e += (int)(b >> 52) - 1023;
    double m = kb__from_bits((b & 0x000fffffffffffffu) | 0x3ff0000000000000u);
    if (m > KB__SQRT2) {
        m *= 0.5;
        e += 1;
    }
    double lm = kb__atanh2((m - 1) / (m + 1));
    return e * KB__LN2_HI + (lm + e * KB__LN2_LO);
}

/* ln(1 + x) for x > -1, accurate also for tiny x. */
static double kb__log1p(double x)
{
    if (kb__abs(x) < 0.25) return kb__atanh2(x / (2 + x)); /* |t| <= 1/7 */
    double u = 1 + x;
    /* u - 1 - x is the rounding error made forming u; fold it back. */
    return kb__log(u) - ((u - 1) - x) / u;
}

/* e^r - 1 for |r| <= 0.35 by Taylor series: r^16/16! < 2^-60 |r| there. */
static double kb__expm1_small(double r)
{
    double p = 1.0 + r * (1.0 / 16);
    p = 1.0 + r * (1.0 / 15) * p;
    p = 1.0 + r * (1.0 / 14) * p;
    p = 1.0 + r * (1.0 / 13) * p;
    p = 1.0 + r * (1.0 / 12) * p;
    p = 1.0 + r * (1.0 / 11) * p;
    p = 1.0 + r * (1.0 / 10) * p;
    p = 1.0 + r * (1.0 / 9) * p;
    p = 1.0 + r * (1.0 / 8) * p;
    p = 1.0 + r * (1.0 / 7) * p;
    p = 1.0 + r * (1.0 / 6) * p;
    p = 1.0 + r * (1.0 / 5) * p;
    p = 1.0 + r * (1.0 / 4) * p;
    p = 1.0 + r * (1.0 / 3) * p;
    p = 1.0 + r * 0.5 * p;
    return r * p;
}

/* e^x: x = k ln2 + r with |r| <= ln2 / 2, e^x = 2^k e^r. */
static double kb__exp(double x)
{
    if (x > 710.0) return kb__scale(1.0, 2046);
    if (x < -746.0) return 0.0;
    double kd = x * KB__INV_LN2;
    int k = (int)(kd < 0 ? kd - 0.5 : kd + 0.5);
    double r = (x - k * KB__LN2_HI) - k * KB__LN2_LO;
    return kb__scale(1.0 + kb__expm1_small(r), k);
}

static double kb__expm1(double x)
{
    if (kb__abs(x) <= 0.35) return kb__expm1_small(x);
    return kb__exp(x) - 1.0;
}

/* sqrt for finite y > 0: y = m 4^e with m in [1, 4); Newton from the chord
 * (m + 2) / 3 (error under 6%) squares the error each step, so five steps
 * reach rounding level. */
static double kb__sqrt(double y)
{
    int e = 0;
    uint64_t b = kb__bits(y);
    if (b < ((uint64_t)1 << 52)) {
        y *= 0x1.0p54;
        b = kb__bits(y);
        e = -54;
    }
    e += (int)(b >> 52) - 1023;
    double m = kb__from_bits((b & 0x000fffffffffffffu) | 0x3ff0000000000000u);
    if (e & 1) {
        m *= 2;
        e -= 1;
    }
    double g = (m + 2) * (1.0 / 3);
    for (int i = 0; i < 5; i++) g = 0.5 * (g + m / g);
    return g * kb__pow2(e / 2);
}

/* ---- normal -------------------------------------------------------------- */

/*
 * Marsaglia's polar method: a point uniform in the unit disc gives a normal
 * deviate without trigonometry. The second deviate it yields is dropped
 * because kb_rng has nowhere to keep it; a rejection costs two draws and
 * happens with probability 1 - pi/4.
 */
double kb_rng_normal(kb_rng *r)
{
    for (;;) {
        double u = 2 * kb_rng_unit(r) - 1;
        double v = 2 * kb_rng_unit(r) - 1;
        double s = u * u + v * v;
        if (s < 1 && s > 0) return u * kb__sqrt(-2 * kb__log(s) / s);
    }
}

/* ---- array generators --------------------------------------------------- */

/* The largest float below hi. */
static float kb__float_below(float hi)
{
    uint32_t b;
    memcpy(&b, &hi, sizeof b);
    if (hi > 0)
        b -= 1;
    else if (hi == 0)
        b = 0x80000001u;
    else
        b += 1;
    memcpy(&hi, &b, sizeof b);
    return hi;
}

void kb_gen_uniform_f32(kb_rng *r, float *out, size_t n, float lo, float hi)
{
    /* An empty range [lo, hi) has no valid output; it is read as {lo}. */
    if (!(hi > lo)) {
        for (size_t i = 0; i < n; i++) out[i] = lo;
        return;
    }
    /* In double the span and the product are nearly exact; the final
     * rounding to float may land on hi itself, which [lo, hi) excludes. */
    float top = kb__float_below(hi);
    double span = (double)hi - (double)lo;
    for (size_t i = 0; i < n; i++) {
        float f = (float)((double)lo + span * kb_rng_unit(r));
        out[i] = f > top ? top : f;
    }
}

void kb_gen_normal_f32(kb_rng *r, float *out, size_t n, float mean, float sd)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)mean + (double)sd * kb_rng_normal(r));
}

/*
 * Centre c is never stored: its coordinates are the stream seeded by
 * derive(base, c, 0), replayed for each vector that belongs to it. That
 * costs one extra draw per coordinate and no allocation, so the function
 * cannot fail. n_clusters == 0 is read as 1.
 */
void kb_gen_clustered_f32(kb_rng *r, float *out, size_t n_vec, size_t dim, size_t n_clusters,
                          float spread)
{
    if (n_clusters == 0) n_clusters = 1;
    uint64_t base = kb_rng_next(r);
    for (size_t v = 0; v < n_vec; v++) {
        kb_rng centre;
        kb_rng_seed(&centre, kb_rng_derive(base, kb_rng_below(r, n_clusters), 0));
        float *row = out + v * dim;
        for (size_t j = 0; j < dim; j++) {
            double c = 2 * kb_rng_unit(&centre) - 1;
            row[j] = (float)(c + (double)spread * kb_rng_normal(r));
        }
    }
}

void kb_gen_bytes(kb_rng *r, uint8_t *out, size_t n)
{
    /* Least significant byte first, so the stream is the same on big- and
     * little-endian machines. */
    size_t i = 0;
    while (i < n) {
        uint64_t x = kb_rng_next(r);
        for (int j = 0; j < 8 && i < n; j++, i++, x >>= 8) out[i] = (uint8_t)x;
    }
}

/* ---- zipf ---------------------------------------------------------------- */

/*
 * Rejection-inversion, Hörmann & Derflinger, "Rejection-inversion to
 * generate variates from monotone discrete distributions", ACM TOMACS 6(3)
 * 1996, in the form of Apache Commons RNG's RejectionInversionZipfSampler:
 * the hat integral H(x) = ((x^(1-s)) - 1) / (1-s) has a limit at s = 1, so
 * one formula serves every s > 0 (and s = 0 gives the uniform law). O(1)
 * per draw, no table, expected draws per value below 1.1 for any n.
 * Ranks here are 1..n; the output is rank - 1.
 */
typedef struct kb__zipf {
    double s;    /* exponent */
    double n;    /* number of items */
    double h_x1; /* H(1.5) - 1 */
    double h_n;  /* H(n + 0.5) */
    double cut;  /* accept without evaluating H when k - x <= cut */
} kb__zipf;

/* log1p(x) / x and expm1(x) / x, with the removable singularity at 0. */
static double kb__helper1(double x)
{
    if (kb__abs(x) > 1e-8) return kb__log1p(x) / x;
    return 1 - x * (0.5 - x * (1.0 / 3 - x * 0.25));
}

static double kb__helper2(double x)
{
    if (kb__abs(x) > 1e-8) return kb__expm1(x) / x;
    return 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + x * 0.25));
}

static double kb__zipf_h(const kb__zipf *z, double x)
{
    return kb__exp(-z->s * kb__log(x));
}

static double kb__zipf_hint(const kb__zipf *z, double x)
{
    double lx = kb__log(x);
    return kb__helper2((1 - z->s) * lx) * lx;
}

static double kb__zipf_hint_inv(const kb__zipf *z, double x)
{
    double t = x * (1 - z->s);
    if (t < -1) t = -1; /* H's range ends at -1/(1-s) for s > 1; rounding can overshoot */
    return kb__exp(kb__helper1(t) * x);
}

static uint64_t kb__zipf_draw(const kb__zipf *z, kb_rng *r)
{
    for (;;) {
        double u = z->h_n + kb_rng_unit(r) * (z->h_x1 - z->h_n);
        double x = kb__zipf_hint_inv(z, u);
        double kd = x + 0.5;
        uint64_t k;
        if (!(kd >= 1))
            k = 1;
        else if (kd >= z->n)
            k = (uint64_t)z->n;
        else
            k = (uint64_t)kd;
        double kf = (double)k;
        if (kf - x <= z->cut || u >= kb__zipf_hint(z, kf + 0.5) - kb__zipf_h(z, kf)) return k;
    }
}

/* n_items == 0 has no valid output; it is read as 1 (all zeros). s must be
 * >= 0; s == 0 is the uniform law. */
void kb_gen_zipf_u32(kb_rng *r, uint32_t *out, size_t n, uint32_t n_items, double s)
{
    if (n_items <= 1) {
        for (size_t i = 0; i < n; i++) out[i] = 0;
        return;
    }
    kb__zipf z;
    z.s = s;
    z.n = (double)n_items;
    z.h_x1 = kb__zipf_hint(&z, 1.5) - 1;
    z.h_n = kb__zipf_hint(&z, z.n + 0.5);
    z.cut = 2 - kb__zipf_hint_inv(&z, kb__zipf_hint(&z, 2.5) - kb__zipf_h(&z, 2));
    for (size_t i = 0; i < n; i++) out[i] = (uint32_t)(kb__zipf_draw(&z, r) - 1);
}
