/*
 * trial.h -- the pieces of one trial: case data (arena.c), output checks
 * (compare.c), one judged batch (batch.c), the sampling loop (measure.c)
 * and the whole trial (trial.c).
 */
#ifndef KB_TRIAL_H
#define KB_TRIAL_H

#include "proto.h"
#include "sandbox.h"
#include "verdict.h"

/* Inputs and oracle outputs of one case, generated once in the host. */
typedef struct kb__case_data {
    uint32_t index; /* into the spec's cases; UINT32_MAX for a case named by shape */
    const kb_case_spec *cs;
    kb__layout layout; /* what workers are told */
    int fd, ro_fd;     /* statics memfd, and a read-only reopen for workers */
    uint8_t *base;     /* host mapping (read-only once sealed) */
    size_t size;
    int cfd, cro_fd; /* the timed per-call sets' memfd (the calls arena) */
    uint8_t *cbase;
    size_t csize;
    uint64_t input_digest; /* of all three arenas, to prove nobody wrote them */
    int pfd, pro_fd;       /* the fresh sets' memfd, and its read-only reopen */
    uint8_t *pbase;
    size_t psize;
    void *ref[KB__ALLSETS][KB_MAX_BUFFERS]; /* oracle outputs, per output */
    uint64_t ref_produced[KB__ALLSETS][KB_MAX_BUFFERS];
    uint32_t n_sets;       /* input sets generated and answered: KB__ALLSETS, or for a
                         * context that only checks (verify, run) the KB__SETS
                         * timed ones, without cold replicas */
    uint32_t n_reps_trial; /* the replicas a trial's build has (layout.n_reps there) */
    double oracle_ns;      /* one in-host oracle call, for calibration */
    uint64_t llc_bytes;    /* the cache a cold case's replicas outgrow; 0 when warm */
} kb__case_data;

/* What a trial changes about a case as it runs. A kb__case_data belongs to
 * a context that a cache shares between trials (watch, serve) and is never
 * written after kb__case_build, so one trial cannot leave state to the
 * next: this lives with the trial, and starts at zero in every one. */
typedef struct kb__case_run {
    uint32_t rep_next;  /* the replica the next batch starts on (batch.c) */
    uint64_t touch_max; /* a warm batch's sets up to this many bytes are read in
                         * before its clock starts (batch.c); 0: never */
} kb__case_run;

/* The in-process oracle: its spec plus its kernel. */
int kb__case_build(const kb_target *t, const kb_plugin *oracle, uint32_t case_index, uint32_t slot,
                   uint64_t seed, uint64_t probe_seed, kb__case_data *cd, char *err,
                   size_t err_len);
/* The same for any case spec, listed or not (a shape the user named:
 * kb__shape_parse), with at most lane_cap lanes (kb__lane_cap); cs must
 * outlive cd. n_sets: KB__ALLSETS for a trial; KB__SETS builds only the
 * sets a check without timing reads (no fresh sets, no cold replicas). */
int kb__case_build_spec(const kb_target *t, const kb_plugin *oracle, const kb_case_spec *cs,
                        uint32_t slot, uint32_t lane_cap, uint32_t n_sets, uint64_t seed,
                        uint64_t probe_seed, kb__case_data *cd, char *err, size_t err_len);
/* The most lanes each of n_cases cases with n_outs outputs may have, so
 * that a worker mapping all of them stays within half of this machine's
 * vm.max_map_count (at least 1, at most KB__MAX_LANES). */
uint32_t kb__lane_cap(uint32_t n_cases, uint32_t n_outs);
void kb__case_free(kb__case_data *cd);
/* The input buffers of set s (statics, then per-call, spec order) as
 * read-only host views, into bufs[KB_MAX_BUFFERS]; returns how many. */
uint32_t kb__set_inputs(const kb__case_data *cd, uint32_t s, kb_buffer *bufs);
/* Digest of all the case's inputs, to prove after a trial nobody wrote them. */
uint64_t kb__case_digest(const kb__case_data *cd);
/* The verdict's `inputs` value: "warm", or for a KB_TARGET_COLD_INPUTS
 * target the replicas, working set and LLC of its cases, and whether the
 * per-case limit kept any of them under twice the LLC. */
void kb__inputs_describe(const kb_target *t, const kb__case_data *cases, uint32_t n, char *out,
                         size_t len);

/* One worker's output memory for one case. */
typedef struct kb__outbuf {
    int fd;
    uint8_t *base;
    size_t size;
    uint64_t ready; /* lanes filled with canary bytes so far (on first use) */
} kb__outbuf;

int kb__outbuf_create(const kb__layout *L, kb__outbuf *ob, char *err, size_t err_len);
/* Poisons the outputs of lanes [0, lanes) and their produced counts. */
void kb__outbuf_poison(const kb__layout *L, kb__outbuf *ob, uint64_t lanes);
void kb__outbuf_free(kb__outbuf *ob);

/* Compare a worker's outputs with the oracle's for input set `set`:
 * elementwise, or by the oracle's own check (kb__spec_outcheck) when it has
 * one. 0: equal. 1: wrong (detail: output, index, expected, got, or the
 * check's reason). 2: the plugin
 * broke the rules (wrote outside its buffer, claimed more than the
 * capacity). */
int kb__outputs_check(const kb_target *t, const kb__case_data *cd, const kb__outbuf *ob,
                      uint64_t lane, uint32_t set, char *detail, size_t detail_len);

#define KB__MAX_GAPS 4096

/* A plugin under trial: its worker and per-case output buffers. */
typedef struct kb__side {
    kb__worker w;
    kb__outbuf ob[KB__MAX_CASES];
    int prepared[KB__MAX_CASES];
    kb__desc desc;
    kb__snapshot snap;
    double prepare_ms;
    int threaded_ok;             /* the target allows threads */
    double last_worker_ns;       /* the worker's own reading of its last batch */
    double last_gap_ns;          /* the host's measure of it minus that reading */
    uint32_t n_gaps;             /* batches recorded in excess[] */
    double excess[KB__MAX_GAPS]; /* CPU time beyond the stamped interval, ns */
    uint64_t rng;                /* picks which lanes of a batch are checked */
    kb__maps maps;               /* the worker's mappings after loading (maps.c) */
} kb__side;

/* Output bytes one call writes: its lane's data, canaries excluded. */
uint64_t kb__lane_data(const kb__layout *L);
/* The most calls a batch of the case may make: lanes within an eighth of
 * l2_bytes, but at least 0.5 ms of calls, and never more than n_lanes. */
uint64_t kb__batch_calls_max(const kb__layout *L, double per_call_ns, uint64_t l2_bytes);
/* Whether a batch on order[0..n_order) has the worker read its input sets
 * in before the clock (batch.c says when and why). */
int kb__batch_reads_in(const kb_target *t, const kb__case_data *cd, uint64_t touch_max,
                       const uint32_t *order, uint32_t n_order);

/* Runs `calls` calls on case slot c, cycling through order[], then judges
 * the output of the last call. Returns 0 with *ns (the host's measure of
 * the batch) or fills fail (status incorrect for a wrong output). */
int kb__side_batch(kb__side *s, const kb_target *t, const kb__case_data *cd, kb__case_run *run,
                   const uint32_t *order, uint32_t n_order, uint64_t calls, double timeout_s,
                   double *ns, kb__failure *fail);

typedef struct kb__trial_opts {
    const char *candidate; /* path to the .so */
    const char *against;   /* NULL or "oracle", or a path */
    const char *oracles_dir;
    const char *cases; /* "quick" (default), "all", or case names and shapes
                        * ("n=100000,d=128,m=16/uniform", for a target whose
                        * oracle declares ranges) separated by ";" (names
                        * contain commas; target.c) */
    double budget;     /* seconds of timing; default 2 */
    kb__rule rule;
    int verify_only;
    const char *exe; /* the kbench binary workers exec */
    uint64_t seed;   /* 0: a fresh secret */
    /* --foreign: the candidate is a plain library and this function in it,
     * called through libffi as --sig describes, for target foreign_target
     * (foreign.c). NULL for a kbench plugin. */
    const char *foreign_sym;
    const char *foreign_sig;
    const char *foreign_target;
    /* When set, names the baseline instead of `against`, once the
     * candidate's worker has reported its target and before the baseline
     * loads (`--against best`: the target's best, best.c): *path gets the
     * baseline's file, or NULL for the oracle. Non-zero aborts the trial
     * with that code (err filled). Called at most once, never for verify. */
    int (*baseline_for)(void *arg, const char *target, const char **path, char *err,
                        size_t err_len);
    void *baseline_arg;
} kb__trial_opts;

/* Sampling: interleave both sides until decided or out of budget. */
typedef struct kb__samples {
    uint32_t n; /* pairs */
    uint32_t cap;
    double *logr;                /* log(candidate / baseline) per pair, at summary */
    double *cand_ns, *base_ns;   /* host-measured batch times */
    double *cand_gap, *base_gap; /* those minus the workers' own readings */
    double *k;                   /* calls in that pair's batches */
    double *tmp;                 /* scratch for per-call figures */
    uint64_t calls;              /* calibrated calls per batch (before jitter) */
    uint64_t max_calls;          /* most calls a batch may make (kb__batch_calls_max) */
} kb__samples;

int kb__measure(const kb__trial_opts *o, const kb_target *t, const kb__case_data *cases,
                kb__case_run *runs, uint32_t n_cases, kb__side *cand, kb__side *base,
                kb__samples *samples, kb__result *r, kb__failure *fail);

/* The warm state of a target (target.c): its oracle loaded in the host and
 * every selected case's inputs and oracle outputs, built once per (target,
 * cases, seed, oracle digest) and reused by every trial that follows, so
 * `kbench watch`/`serve` spend no time on generation after the first. */
typedef struct kb__ctx {
    char target[64];
    char oracles_dir[1024];
    char cases_sel[1024];
    char oracle_path[1024];
    kb__snapshot osnap;
    kb__lib oracle;
    const kb_target *t;
    uint64_t seed;
    uint64_t probe_seed; /* the fresh sets' seed (kb__ctx_get) */
    uint32_t n_sets;     /* input sets built per case (kb__case_data.n_sets) */
    uint32_t n_cases;
    kb__case_data cases[KB__MAX_CASES];
    kb__shape shapes[KB__MAX_CASES]; /* the specs of cases named by shape */
    double build_seconds;            /* generation and oracle outputs */
} kb__ctx;

#define KB__CTX_MAX 8
typedef struct kb__ctx_cache {
    kb__ctx *ctx[KB__CTX_MAX];
    uint32_t n;
    uint64_t seed;       /* secret, drawn when the cache is first used */
    uint64_t probe_seed; /* secret, drawn with it, independently */
    uint64_t hits, builds;
} kb__ctx_cache;

/* The context for `target`, built or reused. A reused context is rebuilt
 * when its oracle file's digest changed. KB__ENOTFOUND when the target has
 * no oracle (err says where it looked); KB__EUSAGE for an unknown case. */
int kb__ctx_get(kb__ctx_cache *cc, const char *target, const char *oracles_dir, const char *cases,
                uint64_t seed, kb__ctx **out, char *err, size_t err_len);
/* The same for a caller that only checks outputs (verify, run): a context
 * of the KB__SETS timed sets alone, or any fuller one already cached. */
int kb__ctx_get_check(kb__ctx_cache *cc, const char *target, const char *oracles_dir,
                      const char *cases, uint64_t seed, kb__ctx **out, char *err, size_t err_len);
void kb__ctx_cache_free(kb__ctx_cache *cc);

/* Runs a whole trial. Returns 0 with r filled for every verdict (crash,
 * incorrect, ... included); a negative code only when no trial could start
 * (bad arguments, missing file), with err filled. `cache` may be NULL (a
 * one-shot trial) or live across trials (watch, serve). */
int kb__trial_run(const kb__trial_opts *o, kb__ctx_cache *cache, kb__result *r, char *err,
                  size_t err_len);

/* Loads a plugin in a worker only to read and check its descriptor
 * (`kbench info`). 0, or fail filled. digest_hex gets 17 bytes. */
int kb__plugin_probe(const char *path, const char *exe, kb__desc *d, char *digest_hex,
                     kb__failure *fail);

#endif /* KB_TRIAL_H */
