/*
 * merge_set.c -- the results of a merge: collected, one per trial id, and
 * checked for one oracle digest per target (merge.h).
 */
#include <stdlib.h>
#include <string.h>

#include "merge.h"

kb__mentry *kb__mset_next(kb__mset *s)
{
    if (s->n == s->cap) {
        const size_t cap = s->cap ? 2 * s->cap : 16;
        kb__mentry *e = realloc(s->e, cap * sizeof *e);
        if (!e) return NULL;
        s->e = e;
        s->cap = cap;
    }
    return &s->e[s->n];
}

static int by_id(const void *a, const void *b)
{
    const kb__mentry *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (!c) c = (x->when > y->when) - (x->when < y->when);
    if (!c)
        c = strcmp(strrchr(x->file, '/') ? strrchr(x->file, '/') : x->file,
                   strrchr(y->file, '/') ? strrchr(y->file, '/') : y->file);
    return c;
}

void kb__mset_dedupe(kb__mset *s)
{
    s->n_all = s->n;
    if (!s->n) return;
    qsort(s->e, s->n, sizeof *s->e, by_id);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++)
        if (strcmp(s->e[i].id, s->e[w - 1].id)) {
            if (w != i) s->e[w] = s->e[i];
            w++;
        }
    s->n = w;
}

/* The digest most results of target have; the smallest on a tie. */
static const char *usual_digest(const kb__mset *s, const char *target)
{
    const char *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const kb__result *r = &s->e[i].r;
        if (strcmp(r->target, target)) continue;
        size_t n = 0;
        for (size_t j = 0; j < s->n; j++)
            n += !strcmp(s->e[j].r.target, target) &&
                 !strcmp(s->e[j].r.oracle_digest, r->oracle_digest);
        if (n > best_n || (n == best_n && strcmp(r->oracle_digest, best) < 0)) {
            best = r->oracle_digest;
            best_n = n;
        }
    }
    return best;
}

size_t kb__mset_check_digests(kb__mset *s, FILE *f)
{
    /* each target's usual digest, found once: a merge may hold thousands */
    const char *targets[64], *usual[64];
    size_t nt = 0, left = 0;
    for (size_t i = 0; i < s->n; i++) {
        kb__mentry *e = &s->e[i];
        size_t t = 0;
        while (t < nt && strcmp(targets[t], e->r.target)) t++;
        const char *u = t < nt ? usual[t] : usual_digest(s, e->r.target);
        if (t == nt && nt < 64) targets[nt] = e->r.target, usual[nt++] = u;
        if (!u || !strcmp(u, e->r.oracle_digest)) continue;
        e->left_out = 1;
        left++;
        fprintf(f,
                "kbench merge: %s: %s was judged by oracle %s, the other results of %s by %s; "
                "left out: rebuild that node's oracle (oracles/%s/PIN) and rerun the trial\n",
                e->file, e->id, e->r.oracle_digest[0] ? e->r.oracle_digest : "(none)", e->r.target,
                u, e->r.target);
    }
    return left;
}
