/*
 * rng.c -- SplitMix64 and the uniform draws every generator builds on.
 *
 * SplitMix64 is Vigna's reference (prng.di.unimi.it/splitmix64.c): a Weyl
 * sequence with step 0x9e3779b97f4a7c15 fed through a 64-bit finaliser. Its
 * whole state is one word, so a sub-stream costs nothing to seed, and its
 * output is fixed by the published reference, so the bytes a seed gives are
 * a fact, not an artefact of this file.
 */
#include "kb_gen.h"

#define KB__GOLDEN 0x9e3779b97f4a7c15u

/* The SplitMix64 output finaliser (Stafford's Mix13 variant). A bijection on
 * 64-bit words with full avalanche, which is what makes derived seeds
 * independent of one another. */
static uint64_t kb__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void kb_rng_seed(kb_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t kb_rng_next(kb_rng *r)
{
    r->state += KB__GOLDEN;
    return kb__mix64(r->state);
}

/*
 * Each argument goes through the finaliser before it meets the next one, so
 * derive(s, a, b) and derive(s, b, a) differ, and neighbouring (a, b) pairs
 * land on unrelated seeds rather than on neighbouring points of one Weyl
 * sequence (which would make their streams overlapping shifts of each other).
 */
uint64_t kb_rng_derive(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t h = kb__mix64(seed + KB__GOLDEN);
    h = kb__mix64(h ^ kb__mix64(a + 2 * KB__GOLDEN));
    return kb__mix64(h ^ kb__mix64(b + 3 * KB__GOLDEN));
}

/* High and low words of the 128-bit product; written out by hand where the
 * compiler has no 128-bit integer so every platform gets the same numbers. */
static uint64_t kb__mul128(uint64_t x, uint64_t y, uint64_t *lo)
{
#if defined(__SIZEOF_INT128__)
    __extension__ unsigned __int128 m = (unsigned __int128)x * y;
    *lo = (uint64_t)m;
    return (uint64_t)(m >> 64);
#else
    uint64_t xl = x & 0xffffffffu, xh = x >> 32;
    uint64_t yl = y & 0xffffffffu, yh = y >> 32;
    uint64_t ll = xl * yl, lh = xl * yh, hl = xh * yl, hh = xh * yh;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    *lo = (mid << 32) | (ll & 0xffffffffu);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

/*
 * Lemire, "Fast Random Integer Generation in an Interval" (2019): the high
 * word of x * n is uniform on [0, n) once the low words below 2^64 mod n
 * are rejected. The threshold's division runs only when a draw lands in the
 * rare zone where rejection is possible.
 */
uint64_t kb_rng_below(kb_rng *r, uint64_t n)
{
    uint64_t lo;
    uint64_t hi = kb__mul128(kb_rng_next(r), n, &lo);
    if (lo < n) {
        uint64_t threshold = (0 - n) % n;
        while (lo < threshold)
            hi = kb__mul128(kb_rng_next(r), n, &lo);
    }
    return hi;
}

double kb_rng_unit(kb_rng *r)
{
    return (double)(kb_rng_next(r) >> 11) * 0x1.0p-53;
}
