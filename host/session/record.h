/*
 * record.h -- one trial run and recorded (record.c): the steps every
 * command that runs trials (trial, watch, serve) takes after a verdict, in
 * one order, in one place.
 */
#ifndef KB_RECORD_H
#define KB_RECORD_H

#include <signal.h>

#include "session.h"

/* Shows a verdict (table and block, JSON, a protocol answer): called after
 * the description and commit are filled in, before the ledger line. */
typedef void kb__record_print_fn(const kb__result *r, const kb__best_info *bi, void *arg);

typedef struct kb__record {
    const char *state_dir;   /* --against best's state directory; NULL: the default */
    kb__ctx_cache *cache;    /* warm inputs across trials; NULL for a one-shot trial */
    const char *description; /* the user's; NULL or "" for none */
    const char *ledger;      /* the results.tsv to append to; NULL: none */
    const char *target_hint; /* the target of a candidate rejected before it named
                              * one (watch knows it from an earlier build); may be NULL */
    kb__record_print_fn *print;
    void *print_arg;
    volatile sig_atomic_t *in_trial; /* set while the trial runs; may be NULL */
    uint64_t done_ns;                /* out: kb__now_ns() when the trial ended */
} kb__record;

/* Runs the trial (kb__trial_any), then: the description with its tags, the
 * git commit of the candidate's directory (with a ledger), print, and the
 * ledger line (never for verify). Returns what kb__trial_any returns; when
 * that is 0 and the ledger line could not be written, lerr says why (else
 * lerr is ""). */
int kb__trial_record(const kb__trial_opts *o, kb__record *rec, kb__result *r, kb__best_info *bi,
                     char *err, size_t err_len, char *lerr, size_t lerr_len);

#endif /* KB_RECORD_H */
