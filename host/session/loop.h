/*
 * loop.h -- the agent loop: trials kept warm across reloads (watch, serve),
 * the best-so-far of a target, oracle pins, the ledger read back (log,
 * report), and a trial result as JSON (the socket protocol).
 */
#ifndef KB_LOOP_H
#define KB_LOOP_H

#include <jansson.h>
#include <limits.h>

#include "trial.h"

/* ---- subcommands (each returns the process exit code) ---------------- */
int kb__cli_watch(int argc, char **argv);
int kb__cli_serve(int argc, char **argv);
int kb__cli_log(int argc, char **argv);
int kb__cli_report(int argc, char **argv);

/* ---- best-so-far (best.c) ------------------------------------------- */
/* `--against best`: the baseline is the best kept candidate of the
 * candidate's target, kept as <state>/<target>/best.so with best.tsv (its
 * digest, its ratio against the oracle, the ledger line that made it best).
 * The state directory is --state DIR, else $KBENCH_STATE_DIR, else ./.kbench
 * (the one `kbench calibrate` uses). With no best yet the oracle is the baseline. A keep promotes the
 * candidate (an atomic rename), after one more trial measures the new best
 * against the oracle. */
#define KB__STATE_DIR_DEFAULT ".kbench"

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
 * "[seed chosen]" for a trial on a seed its caller picked. The user's own
 * brackets become parentheses, so a description can never forge the tag.
 * What a trial ran against, its oracle_ratio and whether it was promoted
 * are columns of the ledger line of their own (ledger.h). */
void kb__best_describe(const kb__best_info *bi, const char *desc, char *out, size_t out_len);

/* The program long-lived commands (watch, serve) start their workers with:
 * /proc/self/exe, which in the forked child still names the binary this
 * process runs even after a rebuild replaced the file, so a server never
 * pairs itself with workers of another build. The resolved path when
 * KB_WORKER_EXEC_PREFIX (qemu) needs a real file name. */
const char *kb__worker_exe(void);

/* The git commit of the candidate's directory ("" when not in a work tree). */
void kb__git_commit(const char *path, char *out, size_t n);

/* ---- the client of `kbench serve` (cli_serve.c) --------------------- */
/* Sends one trial/verify request to the server at `socket_path`, prints the
 * verdict like a local trial (table + block, or JSON) and returns the same
 * exit code. Paths are made absolute here: the server has its own cwd. */
typedef struct kb__remote_req {
    const char *socket_path;
    const kb__trial_opts *o;
    const char *ledger, *description, *state_dir;
    int json, quiet;
} kb__remote_req;
int kb__trial_remote(const kb__remote_req *q);

/* ---- oracle pins (pin.c) -------------------------------------------- */
/* oracles/<t>/PIN records the XXH3-64 of every source file of the oracle
 * (every regular file in its directory but PIN) and the upstream revision it
 * was ported from. */
#define KB__PIN_MISMATCH 1
/* 0: sources match the PIN. KB__PIN_MISMATCH: they do not, msg says which
 * file and the command that re-pins. Negative: no PIN or unreadable (msg). */
int kb__pin_check(const char *oracle_src_dir, char *msg, size_t msg_len);
/* Writes <dir>/PIN for the sources as they are now; `upstream` NULL keeps the
 * recorded one. */
int kb__pin_write(const char *oracle_src_dir, const char *upstream, char *msg, size_t msg_len);
/* The source tree this kbench was built from (for `kbench list`), or NULL
 * when it is not there (an installed kbench). */
const char *kb__source_dir(void);

#endif /* KB_LOOP_H */
