/*
 * rng.c -- SplitMix64 and the uniform draws every generator builds on.
 *
 * SplitMix64 is Vigna's reference (prng.di.unimi.it/splitmix64.c): a Weyl
 * sequence with step 0x9e3779b97f4a7c15 fed through a 64-bit finaliser. Its
 * whole state is one word, so a sub-stream costs nothing to seed, and its
 * output is fixed by the published reference, so the bytes a seed gives are
 * a fact, not an artefact of this file. Sub-stream seeds come from a keyed
 * PRF (SipHash-2-4), so a stream's state, which its output gives away,
 * does not give away the seed.
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

#define KB__ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static void kb__sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = KB__ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = KB__ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = KB__ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = KB__ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = KB__ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = KB__ROTL(v[2], 32);
}

static void kb__sip_block(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    kb__sip_round(v);
    kb__sip_round(v);
    v[0] ^= m;
}

uint64_t kb_rng_prf(uint64_t k0, uint64_t k1, uint64_t a, uint64_t b)
{
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575u, k1 ^ 0x646f72616e646f6du, k0 ^ 0x6c7967656e657261u,
                     k1 ^ 0x7465646279746573u};
    kb__sip_block(v, a);
    kb__sip_block(v, b);
    kb__sip_block(v, (uint64_t)16 << 56);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++) kb__sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/*
 * A keyed PRF, not a mix: a plugin reads SplitMix64 output in its inputs,
 * and one output word inverts to the stream's state (the finaliser is a
 * bijection, the Weyl step is public). That state is derive(seed, a, b);
 * were derive a chain of bijections too, it would invert to the seed and
 * with it every other stream, the never-seen probe sets included. Under
 * SipHash-2-4 keyed by the seed, a known output tells nothing about the key
 * or about the output for any other (a, b) short of searching 2^64 keys.
 * The key's second word is a fixed function of the seed (the ABI passes 64
 * bits), so the key holds the seed's 64 bits of secret.
 */
uint64_t kb_rng_derive(uint64_t seed, uint64_t a, uint64_t b)
{
    return kb_rng_prf(seed, kb__mix64(seed ^ KB__GOLDEN), a, b);
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
        while (lo < threshold) hi = kb__mul128(kb_rng_next(r), n, &lo);
    }
    return hi;
}

double kb_rng_unit(kb_rng *r)
{
    return (double)(kb_rng_next(r) >> 11) * 0x1.0p-53;
}
