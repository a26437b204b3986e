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
#define KB__BUDGET_DEFAULT_S       2    /* seconds of timing */
#define KB__BUDGET_MAX_S           3600 /* the most a trial may be given */
#define KB__MIN_GAIN_DEFAULT_PCT   1    /* keep needs the geomean CI below 1 - this */
#define KB__WORST_CASE_DEFAULT_PCT 5    /* keep needs every case within 1 + this */
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
    int json; /* 0 text, 1 JSON, 2 Markdown */
    int quiet;
} kb__trial_args;

/* The getopt_long entries every trial command takes (one a line, as a
 * table reads); each command's own table lists them first, then its own,
 * then {0, 0, 0, 0}. */
/* clang-format off */
#define KB__TRIAL_LONGOPTS                      \
    {"against", required_argument, 0, 'a'},     \
    {"budget", required_argument, 0, 'b'},      \
    {"cases", required_argument, 0, 'c'},       \
    {"min-gain", required_argument, 0, 'g'},    \
    {"worst-case", required_argument, 0, 'w'},  \
    {"ledger", required_argument, 0, 'l'},      \
    {"description", required_argument, 0, 'd'}, \
    {"oracles", required_argument, 0, 'o'},     \
    {"seed", required_argument, 0, 's'},        \
    {"state", required_argument, 0, 'T'},       \
    {"json", no_argument, 0, 'j'},              \
    {"quiet", no_argument, 0, 'q'},             \
    {"help", no_argument, 0, 'h'}
/* clang-format on */

/* Trial options at their defaults (no candidate, the oracle as baseline). */
void kb__trial_opts_init(kb__trial_opts *o);
/* The same for a command line's arguments: nothing else set. */
void kb__trial_args_init(kb__trial_args *a);
/* Applies one option of KB__TRIAL_LONGOPTS but --help; 1 when `c` was one
 * (a bad value says so on stderr and sets *bad), 0 when it is the
 * command's own. */
int kb__trial_arg(kb__trial_args *a, int c, const char *arg, int *bad);
/* Whether a budget is one a trial may be given: (0, KB__BUDGET_MAX_S]. */
int kb__budget_ok(double seconds);

#endif /* KB_OPTIONS_H */
