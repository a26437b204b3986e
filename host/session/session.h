/*
 * session.h -- what happens around a trial: the best-so-far of a target and
 * its promotion (best.c), and the ledger every trial is recorded in
 * (ledger.c).
 */
#ifndef KB_SESSION_H
#define KB_SESSION_H

#include <limits.h>

#include "trial.h"

/* ---- best-so-far (best.c) ------------------------------------------- */
/* `--against best`: the baseline is the best kept candidate of the
 * candidate's target, kept as <state>/<target>/best.so with best.tsv (its
 * digest, its ratio against the oracle, the ledger line that made it best).
 * The state directory is --state DIR, else $KBENCH_STATE_DIR, else ./.kbench
 * (the one `kbench calibrate` uses). With no best yet the oracle is the baseline. A keep promotes the
 * candidate (an atomic rename), after one more trial measures the new best
 * against the oracle. */

typedef struct kb__best {
    int exists;
    char dir[PATH_MAX]; /* <state>/<target> */
    char so[PATH_MAX];  /* <dir>/best.so */
    char digest[17];
    char oracle_digest[17];
    double oracle_ratio; /* best / oracle when it was promoted; NAN unknown */
    char source[PATH_MAX];
    char line[2048]; /* the ledger line of the trial that made it best */
} kb__best;

/* Reads <state>/<target>/best.tsv and checks best.so against its digest.
 * 0 with b->exists 0 when there is no best yet; KB__ECORRUPT when best.so
 * and best.tsv disagree (err says how to start over). */
int kb__best_load(const char *state_dir, const char *target, kb__best *b, char *err,
                  size_t err_len);

/* A trial with --against best (o->against == "best"): finds the target,
 * picks the baseline, runs the trial through `cache` (may be NULL), adds the
 * oracle ratio, promotes on keep. Same return contract as kb__trial_run. */
int kb__trial_best(const kb__trial_opts *o, const char *state_dir, kb__ctx_cache *cache,
                   kb__result *r, kb__best_info *bi, char *err, size_t err_len);

/* Any trial: kb__trial_best when o->against is "best", kb__trial_run
 * otherwise (bi->used 0). */
int kb__trial_any(const kb__trial_opts *o, const char *state_dir, kb__ctx_cache *cache,
                  kb__result *r, kb__best_info *bi, char *err, size_t err_len);

/* The lines watch and trial print after the block for --against best:
 * oracle_ratio, oracle_ratio_source, best, promoted. Nothing if !bi->used. */
void kb__best_print(const kb__best_info *bi, void *file /* FILE* */);

/* The description written to the ledger: the user's, after a tag
 * "[vs best <digest>|oracle; oracle_ratio X]" for --against best trials, which
 * `kbench log` and `report` read back, and "[seed chosen]" for a trial on a
 * seed its caller picked. The user's own brackets become parentheses, so a
 * description can never forge either tag. */
void kb__best_describe(const kb__best_info *bi, const char *desc, char *out, size_t out_len);

#endif /* KB_SESSION_H */
