/*
 * verdict.h -- what a trial found: the result type every layer above the
 * trial reads (session records it, report prints it, cli returns its exit
 * code), and what a trial against the best-so-far adds to it.
 */
#ifndef KB_VERDICT_H
#define KB_VERDICT_H

#include "env.h"
#include "kb.h"

typedef struct kb__case_result {
    char name[KB__CASE_NAME_LEN];
    uint32_t samples;   /* paired samples */
    uint64_t calls;     /* calls per batch */
    uint64_t out_bytes; /* output bytes a call writes (its lane's data) */
    double cand_ns;     /* median ns per call, candidate */
    double base_ns;     /* median ns per call, baseline */
    kb__ci ratio;       /* candidate / baseline per call */
    double gap_ns[2];   /* candidate, baseline: median batch interval minus the
                            * worker's own reading (the harness inside it) */
    double overhead_ns; /* subtracted from every batch of both sides */
    double batch_ns;    /* median batch interval, the faster side's */
    double bytes_per_call;
    double flops_per_call;
    double roof_gbps;   /* memory roof for this working set; 0 if uncalibrated */
    int roof_level;     /* the level roof_gbps is for: 0 L1, 1 L2, 2 L3, 3 DRAM */
    double peak_gflops; /* compute roof; 0 if uncalibrated */
} kb__case_result;

typedef struct kb__result {
    kb__status status;
    char reason[512]; /* one line; for incorrect: case, index, expected, got */
    char target[64];
    char candidate[512]; /* path as given */
    char cand_name[64];
    char cand_digest[17];
    char against[512]; /* "oracle" or a path */
    char against_digest[17];
    char oracle_digest[17];
    char description[256];
    char git_commit[41];   /* "" when unknown */
    uint64_t seed;         /* the trial's secret seed, revealed afterwards */
    int seed_chosen;       /* the seed came from whoever ran kbench (--seed, a client's
                            * "seed"): the verdict is on inputs it picked, never a best */
    kb__ci geomean;        /* its CI covers the spread between trials too (spread_pct) */
    kb__ci worst;          /* the case with the largest ratio */
    kb__ci geomean_within; /* geomean's CI from this trial's pairs alone */
    kb__ci worst_within;   /* worst's, the same */
    double spread_pct;     /* the between-trial half-width added to geomean's CI, % */
    char worst_case[KB__CASE_NAME_LEN];
    uint32_t n_cases;
    kb__case_result cases[KB__RESULT_MAX_CASES];
    double trial_seconds;
    long peak_rss_kb;       /* candidate worker */
    double prepare_ms;      /* candidate, all cases */
    double noise_pct;       /* this trial's per-pair noise: MAD of log ratios, % */
    double noise_floor_pct; /* the machine's A/A noise for this target (calibrate); NAN if none */
    double drift_pct;       /* common speed change of both sides, first to second half, % */
    char hw_counters[96];   /* counter figures, or "n/a (why)" */
    double fresh_ratio;     /* geomean ratio on inputs neither side had seen (probe) */
    double fresh_lo, fresh_hi; /* its CI, at the level of geomean's */
    double fresh_slow_pct;     /* the oracle's own slowdown on fresh inputs, % (median of cases) */
    double fresh_adj_ratio;    /* fresh_ratio with that slowdown taken off both sides */
    double overhead_us;        /* batch overhead subtracted, median over cases, us */
    double overhead_pct;       /* the same as a share of a batch, median over cases */
    char inputs[192];    /* "warm" or "cold (...)": kb__inputs_describe; "" before the cases */
    uint32_t input_sets; /* input sets built per case: 32 for a trial (16 timed, 16
                          * fresh), 16 for verify; 0 before the cases */
    kb__env env;         /* the machine, and its steal over the trial (env.h) */
} kb__result;

/* What a trial with --against best found about the best-so-far (best.c
 * fills it; the block, JSON and ledger show it). Plain data, so the report
 * layer can print it without the session. */
typedef struct kb__best_info {
    int used;     /* --against best was asked for */
    int had_best; /* timed against a best (else against the oracle) */
    char best_digest[17];
    double oracle_ratio;             /* candidate / oracle, geomean; NAN when not timed */
    const char *oracle_ratio_source; /* "measured", "chained" or "n/a" */
    int promoted;
    int seed_chosen; /* the trial's seed was picked by its caller (kb__trial_any) */
    char note[768];  /* what happened to the best, one line */
} kb__best_info;

#endif /* KB_VERDICT_H */
