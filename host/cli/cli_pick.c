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
#include "trial.h"

static const char HELP[] =
    "usage: kbench pick <variant.so>... [--budget S] [--cases quick|all|NAMES] [--oracles DIR]\n"
    "                   [--json]\n"
    "\n"
    "Trials every ISA variant of one kernel that this machine supports against the\n"
    "target's oracle (variants needing CPU features it lacks are shown as unsupported,\n"
    "never run) and prints a table and `best: FILE`. The best is the kept variant with\n"
    "the lowest geomean ratio. Exit 0 with a pick, 1 when no variant is kept, 64 on\n"
    "usage errors (all variants must be of the same target).\n";

int kb__cli_pick(int argc, char **argv)
{
    static const struct option opts[] = {
        {"budget", required_argument, 0, 'b'},  {"cases", required_argument, 0, 'c'},
        {"oracles", required_argument, 0, 'o'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    kb__trial_opts base;
    memset(&base, 0, sizeof base);
    base.budget = 2.0;
    base.rule.min_gain = 0.01;
    base.rule.worst_case = 0.05;
    int bad = 0, json = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 'b': base.budget = kb__parse_num(optarg, "--budget", &bad); break;
        case 'c': base.cases = optarg; break;
        case 'o': base.oracles_dir = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad || optind >= argc || !(base.budget > 0 && base.budget <= 3600)) {
        fputs(HELP, stderr);
        return KB__EXIT_USAGE;
    }
    base.exe = kb__self_exe();
    const int n = argc - optind;
    kb__ctx_cache cache;
    memset(&cache, 0, sizeof cache);
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return KB__EXIT_SOFTWARE;
    char target[64] = "", err[1024];
    const char *best = NULL;
    double best_ratio = INFINITY;
    if (json)
        printf("{\"variants\": [");
    else
        printf("%-48s %-12s %10s %22s  %s\n", "variant", "status", "geomean", "ci90", "reason");
    int code = 0;
    for (int i = 0; i < n; i++) {
        const char *path = argv[optind + i];
        kb__trial_opts o = base;
        o.candidate = path;
        memset(r, 0, sizeof *r);
        if (kb__trial_run(&o, &cache, r, err, sizeof err) != 0) {
            fprintf(stderr, "kbench pick: %s\n", err);
            code = KB__EXIT_USAGE;
            break;
        }
        if (r->target[0]) {
            if (!target[0])
                snprintf(target, sizeof target, "%s", r->target);
            else if (strcmp(target, r->target)) {
                fprintf(stderr, "kbench pick: %s is a variant of %s, the first was of %s\n", path,
                        r->target, target);
                code = KB__EXIT_USAGE;
                break;
            }
        }
        /* A refusal for missing CPU features is "unsupported", not a failure. */
        const int unsupported = r->status == KB__ST_REJECTED && strstr(r->reason, "lacks");
        const char *st = unsupported ? "unsupported" : kb__status_name(r->status);
        const int timed = kb__status_timed(r->status);
        if (r->status == KB__ST_KEEP && r->geomean.est < best_ratio) {
            best_ratio = r->geomean.est;
            best = path;
        }
        if (json) {
            printf("%s\n  {\"file\": \"%s\", \"status\": \"%s\", \"geomean_ratio\": ", i ? "," : "",
                   path, st);
            if (timed)
                printf("%.4f", r->geomean.est);
            else
                printf("null");
            printf("}");
        } else {
            char ci[48] = "-", g[16] = "-";
            if (timed) {
                snprintf(g, sizeof g, "%.4f", r->geomean.est);
                snprintf(ci, sizeof ci, "[%.4f, %.4f]", r->geomean.lo, r->geomean.hi);
            }
            printf("%-48s %-12s %10s %22s  %.120s\n", path, st, g, ci, r->reason);
        }
    }
    kb__ctx_cache_free(&cache);
    free(r);
    if (code) {
        if (json) printf("]}\n");
        return code;
    }
    if (json) {
        printf("\n], \"best\": ");
        if (best)
            printf("\"%s\"}\n", best);
        else
            printf("null}\n");
    } else {
        printf("---\ntarget: %s\nbest: %s\n", target[0] ? target : "n/a",
               best ? best : "none kept");
        if (best) printf("best_geomean_ratio: %.4f\n", best_ratio);
    }
    return best ? 0 : 1;
}
