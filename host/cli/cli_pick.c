/*
 * cli_pick.c -- `kbench pick`: given several ISA variants of one kernel,
 * trial each one this machine can run and name the best.
 *
 * A variant that needs CPU features the machine lacks is skipped as
 * unsupported (the same check a trial makes, so it is never run into
 * SIGILL); every other variant gets a full trial against the oracle, all
 * through one warm target context, so they are judged on the same inputs.
 * The best is the kept variant with the lowest geometric-mean ratio; if
 * none is kept, there is no pick (exit 1).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "session.h"
#include "options.h"

static const char HELP[] =
    "usage: kbench pick <variant.so>... [--budget S] [--cases quick|all|NAMES] [--oracles DIR]\n"
    "                   [--json]\n"
    "\n"
    "Trials every ISA variant of one kernel that this machine supports against the\n"
    "target's oracle (variants needing CPU features it lacks are shown as unsupported,\n"
    "never run) and prints a table and `best: FILE`. The best is the kept variant with\n"
    "the lowest geomean ratio. Exit 0 with a pick, 1 when no variant is kept, 64 on\n"
    "usage errors (all variants must be of the same target).\n";

/* 0, or an exit code (usage, or 0 after --help with *done). */
static int pick_args(int argc, char **argv, kb__trial_opts *base, int *json, int *done)
{
    struct option opts[8];
    kb__longopts("budget cases oracles json help", opts, sizeof opts / sizeof opts[0]);
    kb__trial_opts_init(base);
    const kb__cmdline cl = {"pick", HELP, "h", opts};
    int bad = 0;
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        switch (c) {
        case '?': return KB__EXIT_USAGE;
        case 'b': base->budget = kb__parse_num(optarg, "--budget", &bad); break;
        case 'c': base->cases = optarg; break;
        case 'o': base->oracles_dir = optarg; break;
        case 'j': *json = 1; break;
        case 'h': fputs(HELP, stdout); return *done = 1, 0;
        default: bad = 1;
        }
    }
    if (bad || optind >= argc || !kb__budget_ok(base->budget)) {
        if (!bad && optind >= argc)
            fputs("kbench pick: expected one or more variant .so\n", stderr);
        else if (!bad)
            fputs("kbench pick: --budget must be in (0, " KB__BUDGET_MAX_TXT "] seconds\n", stderr);
        return kb__usage("pick", HELP);
    }
    base->exe = kb__self_exe();
    return 0;
}

/* One variant's row of the table, or its member of the JSON array. */
static void print_variant(const kb__result *r, const char *path, int first, int json)
{
    /* A refusal for missing CPU features is "unsupported", not a failure. */
    const int unsupported = r->status == KB__ST_REJECTED && strstr(r->reason, "lacks");
    const char *st = unsupported ? "unsupported" : kb__status_name(r->status);
    if (json) {
        printf("%s\n  {\"file\": \"%s\", \"status\": \"%s\", \"geomean_ratio\": ", first ? "" : ",",
               path, st);
        if (kb__status_timed(r->status))
            printf("%.4f", r->geomean.est);
        else
            printf("null");
        printf("}");
        return;
    }
    char ci[48] = "-", g[16] = "-";
    if (kb__status_timed(r->status)) {
        snprintf(g, sizeof g, "%.4f", r->geomean.est);
        snprintf(ci, sizeof ci, "[%.4f, %.4f]", r->geomean.lo, r->geomean.hi);
    }
    printf("%-48s %-12s %10s %22s  %.120s\n", path, st, g, ci, r->reason);
}

typedef struct kb__pick {
    char target[64];
    const char *best;
    double best_ratio;
} kb__pick;

/* Trials every variant through one warm context; 0, or the usage exit code
 * (a trial that could not start, variants of different targets). */
static int pick_run(const kb__trial_opts *base, char **paths, int n, int json, kb__pick *pk)
{
    kb__ctx_cache cache;
    memset(&cache, 0, sizeof cache);
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return KB__EXIT_SOFTWARE;
    char err[1024];
    int code = 0;
    for (int i = 0; i < n && !code; i++) {
        kb__trial_opts o = *base;
        o.candidate = paths[i];
        memset(r, 0, sizeof *r);
        if (kb__trial_run(&o, &cache, r, err, sizeof err) != 0) {
            fprintf(stderr, "kbench pick: %s\n", err);
            code = KB__EXIT_USAGE;
        } else if (r->target[0] && pk->target[0] && strcmp(pk->target, r->target)) {
            fprintf(stderr, "kbench pick: %s is a variant of %s, the first was of %s\n", paths[i],
                    r->target, pk->target);
            code = KB__EXIT_USAGE;
        } else {
            if (r->target[0] && !pk->target[0])
                snprintf(pk->target, sizeof pk->target, "%s", r->target);
            if (r->status == KB__ST_KEEP && r->geomean.est < pk->best_ratio) {
                pk->best_ratio = r->geomean.est;
                pk->best = paths[i];
            }
            print_variant(r, paths[i], i == 0, json);
        }
    }
    kb__ctx_cache_free(&cache);
    free(r);
    return code;
}

int kb__cli_pick(int argc, char **argv)
{
    kb__trial_opts base;
    int json = 0, done = 0, code = pick_args(argc, argv, &base, &json, &done);
    if (code || done) return code;
    kb__pick pk = {"", NULL, INFINITY};
    if (json)
        printf("{\"variants\": [");
    else
        printf("%-48s %-12s %10s %22s  %s\n", "variant", "status", "geomean", "ci90", "reason");
    if ((code = pick_run(&base, argv + optind, argc - optind, json, &pk)) != 0) {
        if (json) printf("]}\n");
        return code;
    }
    if (json) {
        printf("\n], \"best\": ");
        if (pk.best)
            printf("\"%s\"}\n", pk.best);
        else
            printf("null}\n");
    } else {
        printf("---\ntarget: %s\nbest: %s\n", pk.target[0] ? pk.target : "n/a",
               pk.best ? pk.best : "none kept");
        if (pk.best) printf("best_geomean_ratio: %.4f\n", pk.best_ratio);
    }
    return pk.best ? 0 : 1;
}
