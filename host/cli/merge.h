/*
 * merge.h -- the results `kbench merge` combines (merge_set.c: read,
 * deduplicated, checked) and what it writes from them (merge_write.c).
 */
#ifndef KB_MERGE_H
#define KB_MERGE_H

#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "verdict.h"

typedef struct kb__mentry {
    char id[PATH_MAX + 192];   /* the campaign's trial id */
    char file[PATH_MAX + 256]; /* where it was read */
    char build[64], node[256], job[128];
    time_t when;  /* the trial's end */
    int left_out; /* judged by another oracle digest than its target's others */
    kb__result r;
} kb__mentry;

typedef struct kb__mset {
    kb__mentry *e;
    size_t n, cap;
    size_t n_all; /* files read, duplicates included */
} kb__mset;

/* Room for one more entry at e[n] (the caller counts it in); NULL when out
 * of memory. */
kb__mentry *kb__mset_next(kb__mset *s);
/* Sorted by trial id, one entry per id: of copies, the one that ended
 * first (then the first file name), whichever folder it came from. */
void kb__mset_dedupe(kb__mset *s);
/* Per target, the oracle digest most of its results have (the smallest on
 * a tie); every other result is marked left_out and named on f. The
 * number left out. */
size_t kb__mset_check_digests(kb__mset *s, FILE *f);

/* The ledger, Markdown matrix and JSON document of the entries not left
 * out (each path NULL for none; all NULL: the matrix on stdout), each
 * written whole to a temporary file and renamed. 0, or -1 (said on
 * stderr). */
int kb__merge_write(const kb__mset *s, const char *ledger, const char *markdown, const char *json);

#endif /* KB_MERGE_H */
