/*
 * options.h -- the trial options every command that runs trials shares
 * (trial, verify, watch, pick, calibrate, and serve's requests), with the
 * one place each default is written (options.c).
 */
#ifndef KB_OPTIONS_H
#define KB_OPTIONS_H

#include <getopt.h>

#include "trial.h"

/* The defaults, as numbers for the code and as text for the help. */
/* (KB__BUDGET_DEFAULT_S, KB__MIN_GAIN_DEFAULT_PCT, KB__WORST_CASE_DEFAULT_PCT: kb.h) */
#define KB__BUDGET_MAX_S           3600 /* the most a trial may be given */
#define KB__STR_(x)                #x
#define KB__STR(x)                 KB__STR_(x)
#define KB__BUDGET_DEFAULT_TXT     KB__STR(KB__BUDGET_DEFAULT_S)
#define KB__BUDGET_MAX_TXT         KB__STR(KB__BUDGET_MAX_S)
#define KB__MIN_GAIN_DEFAULT_TXT   KB__STR(KB__MIN_GAIN_DEFAULT_PCT)
#define KB__WORST_CASE_DEFAULT_TXT KB__STR(KB__WORST_CASE_DEFAULT_PCT)

/* What a command line or a request says about a trial beyond the trial
 * itself. */
typedef struct kb__trial_args {
    kb__trial_opts o;
    const char *ledger, *desc, *state, *server;
    const char *cases_flag; /* the last --cases */
    char case_list[1024];   /* every --case, joined by ";" */
    char case_sel[1024];    /* both, what o.cases points to (kb__ctx's bound) */
    int json;               /* 0 text, 1 JSON, 2 Markdown */
    int quiet;
} kb__trial_args;

/* The long options every trial command takes; each command names them
 * first, then its own, for kb__longopts. */
#define KB__TRIAL_OPTS                                                                          \
    "against budget cases case min-gain worst-case ledger description oracles seed state json " \
    "quiet help"

/* Fills out (cap entries, the closing {0, 0, 0, 0} included) with the
 * getopt_long entries of the options named in `names` (space-separated, in
 * the order given; "name=" for the entry of that name that takes a value,
 * where one name is spelt both ways) from the one table of every kbench option (options.c),
 * where each option's spelling, whether it takes a value and the code
 * getopt_long returns for it are written once. A name not in that table
 * gets no entry. */
void kb__longopts(const char *names, struct option *out, size_t cap);

/* One command's command line for kb__getopt: its name ("trial"), its help
 * (the lines before the first blank one are its usage), the short options
 * ("h" or "qh") and the getopt_long table from kb__longopts. */
typedef struct kb__cmdline {
    const char *cmd, *help, *shortopts;
    const struct option *opts;
} kb__cmdline;

/* getopt_long, with every usage error of an option said here, once for all
 * commands: an unknown option (with the nearest of this command's options
 * when one is near), an ambiguous abbreviation, a missing or unwanted
 * value, and a value that starts with '-' given as the next word
 * (`--ledger -q` is a forgotten value far more often than a file named -q;
 * `--ledger=-q` says it is meant). No kbench option takes a negative number,
 * so a number is never refused by that. After such an error it has printed
 * the message and the command's usage on stderr and returns '?': the caller
 * returns KB__EXIT_USAGE. */
int kb__getopt(int argc, char **argv, const kb__cmdline *cl);

/* The command's usage (its help up to the first blank line) and where the
 * whole help is, on stderr, after a usage error said on the line before.
 * Returns KB__EXIT_USAGE. */
int kb__usage(const char *cmd, const char *help);
/* --seed N: a non-negative integer (decimal, or 0x hex), all of it; a bad
 * one says so on stderr and sets *bad. */
uint64_t kb__parse_seed(const char *arg, int *bad);

/* Trial options at their defaults (no candidate, the oracle as baseline). */
void kb__trial_opts_init(kb__trial_opts *o);
/* The same for a command line's arguments: nothing else set. */
void kb__trial_args_init(kb__trial_args *a);
/* Applies one option of KB__TRIAL_OPTS but --help; 1 when `c` was one
 * (a bad value says so on stderr and sets *bad: a --seed that is not a
 * non-negative integer, an --against that is neither oracle, best nor an
 * existing file), 0 when it is the command's own. */
int kb__trial_arg(kb__trial_args *a, int c, const char *arg, int *bad);
/* Whether a budget is one a trial may be given: (0, KB__BUDGET_MAX_S]. */
int kb__budget_ok(double seconds);

#endif /* KB_OPTIONS_H */
