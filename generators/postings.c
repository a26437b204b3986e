/*
 * postings.c -- sorted posting lists with a planted common core.
 *
 * Plan: draw the core C (c sorted values from the universe), then for each
 * list draw its m = len - c extra values as sorted ranks in the universe
 * with C removed, map each rank to the rank-th non-core value by a merge
 * walk over C, and merge C back in. The extras avoid C by construction, so
 * no retry loop depends on how dense the core is.
 *
 * Cost: O(total + k*c) = O(total) expected time (k*c <= total), since each
 * sorted draw of m values is O(m) expected (see kb__sample_sorted), and
 * 4 * (c + max extra) bytes of scratch. Everything is written straight into
 * `out`; the core is the only array kept across lists.
 */
#include "kb_gen.h"

#include <stdlib.h>
#include <string.h>

/* LSD radix sort in four byte passes; an even number of passes leaves the
 * result back in a. */
static void kb__radix_u32(uint32_t *a, uint32_t *tmp, size_t n)
{
    uint32_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t pos[256] = {0};
        for (size_t i = 0; i < n; i++) pos[(src[i] >> shift) & 0xff]++;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t cnt = pos[b];
            pos[b] = sum;
            sum += cnt;
        }
        for (size_t i = 0; i < n; i++) dst[pos[(src[i] >> shift) & 0xff]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
}

/*
 * dst[0..m) = a uniformly random m-subset of [0, n), sorted; m <= n / 2.
 * tmp holds m words of scratch.
 *
 * Both branches draw values one at a time and keep each one not already
 * held, until m are held -- which gives every m-subset the same chance --
 * and differ only in how they notice repeats:
 * - dense (n <= 32 m): a bitmap of n bits, which fits in tmp; at most half
 *   the bits are ever set, so under two draws per value, then an O(n / 32)
 *   scan emits them in order. O(m).
 * - sparse: draw all missing values, radix sort, drop repeats, repeat.
 *   Fewer than m / 64 repeats are expected per round, so rounds shrink the
 *   shortfall 64-fold and a handful of O(m) sorts suffice.
 */
static void kb__sample_sorted(kb_rng *r, uint32_t *dst, uint64_t m, uint64_t n, uint32_t *tmp)
{
    if (m == 0) return;
    if (n <= 32 * m) {
        size_t words = (size_t)((n + 31) / 32);
        memset(tmp, 0, words * sizeof *tmp);
        for (uint64_t i = 0; i < m; i++) {
            uint64_t x;
            do x = kb_rng_below(r, n);
            while ((tmp[x >> 5] >> (x & 31)) & 1);
            tmp[x >> 5] |= (uint32_t)1 << (x & 31);
        }
        size_t j = 0;
        for (size_t w = 0; w < words; w++) {
            for (uint32_t bits = tmp[w]; bits; bits &= bits - 1)
                dst[j++] = (uint32_t)(w * 32 + (size_t)__builtin_ctz(bits));
        }
        return;
    }
    size_t have = 0;
    while (have < m) {
        for (size_t i = have; i < m; i++) dst[i] = (uint32_t)kb_rng_below(r, n);
        kb__radix_u32(dst, tmp, (size_t)m);
        have = 1;
        for (size_t i = 1; i < m; i++) {
            if (dst[i] != dst[have - 1]) dst[have++] = dst[i];
        }
    }
}

int kb_gen_postings(kb_rng *r, uint32_t k, const uint64_t *lens, double overlap, uint32_t universe,
                    uint32_t *out, uint64_t *offsets)
{
    if (!offsets) return -1;
    offsets[0] = 0;
    if (k == 0) return 0;
    if (!r || !lens || !out || !(overlap >= 0 && overlap <= 1)) return -1;

    /* sum(lens) <= universe / 2 keeps every draw at most half dense, which
     * is what bounds the expected cost of kb__sample_sorted. */
    uint64_t limit = universe / 2, total = 0, min_len = lens[0], max_len = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (lens[i] > limit - total) return -1;
        total += lens[i];
        offsets[i + 1] = total;
        if (lens[i] < min_len) min_len = lens[i];
        if (lens[i] > max_len) max_len = lens[i];
    }
    uint64_t c = (uint64_t)(overlap * (double)min_len + 0.5);
    if (c > min_len) c = min_len;
    uint64_t max_extra = max_len - c;

    uint32_t *core = malloc((size_t)(c ? c : 1) * sizeof *core);
    uint32_t *tmp = malloc((size_t)(c > max_extra ? c : max_extra ? max_extra : 1) * sizeof *tmp);
    if (!core || !tmp) {
        free(core);
        free(tmp);
        return -1;
    }

    kb__sample_sorted(r, core, c, universe, tmp);
    for (uint32_t i = 0; i < k; i++) {
        uint32_t *list = out + offsets[i];
        uint64_t m = lens[i] - c;
        /* Extras go to the front of the list: the backward merge below then
         * never overwrites an extra it has not read yet. */
        kb__sample_sorted(r, list, m, (uint64_t)universe - c, tmp);
        /* The rank-th non-core value is rank + (core values below it). */
        uint64_t j = 0;
        for (uint64_t e = 0; e < m; e++) {
            while (j < c && core[j] <= list[e] + j) j++;
            list[e] = (uint32_t)(list[e] + j);
        }
        uint64_t a = c, b = m, w = c + m;
        while (a > 0) {
            if (b > 0 && list[b - 1] > core[a - 1])
                list[--w] = list[--b];
            else
                list[--w] = core[--a];
        }
    }
    free(core);
    free(tmp);
    return 0;
}
