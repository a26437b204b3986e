/*
 * rng.c -- the host's SplitMix64: the same sequence as generators/rng.c's
 * kb_rng_next (Vigna's reference), for the host's own draws (bootstrap
 * resamples, jitter, which lanes of a batch are checked). The inputs a
 * target generates never come from here.
 */
#include "kb.h"

uint64_t kb__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
