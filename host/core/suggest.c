/*
 * suggest.c -- "did you mean ...?": the known name nearest to a misspelt
 * one (an option, --against's words, a target, a case), by edit distance.
 */
#include <string.h>

#include "kb.h"

/* Optimal-string-alignment distance: insertions, deletions, substitutions
 * and swaps of two neighbours each cost 1, so "bset" is 1 from "best". Names
 * longer than KB__SUGGEST_MAX are never near anything. */
#define KB__SUGGEST_MAX 64

size_t kb__edit_distance(const char *a, const char *b)
{
    const size_t na = strlen(a), nb = strlen(b);
    if (na > KB__SUGGEST_MAX || nb > KB__SUGGEST_MAX) return (size_t)-1;
    size_t d[KB__SUGGEST_MAX + 1][KB__SUGGEST_MAX + 1];
    for (size_t i = 0; i <= na; i++) d[i][0] = i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[na][nb];
}

/* How far a typo may be from what was meant: nothing for one or two
 * characters (every short name is near every other), then one edit per
 * three or four characters, at most three. */
static size_t near_enough(size_t len)
{
    return len <= 2 ? 0 : len <= 5 ? 1 : len <= 9 ? 2 : 3;
}

const char *kb__suggest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = near_enough(word ? strlen(word) : 0) + 1;
    for (size_t i = 0; word && i < n; i++) {
        if (!names[i]) continue;
        const size_t d = kb__edit_distance(word, names[i]);
        if (d < best_d) best = names[i], best_d = d;
    }
    return best;
}
