/*
 * options.c -- the shared trial options and their defaults (options.h).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

void kb__trial_opts_init(kb__trial_opts *o)
{
    memset(o, 0, sizeof *o);
    o->budget = KB__BUDGET_DEFAULT_S;
    o->rule.min_gain = KB__MIN_GAIN_DEFAULT_PCT / 100.0;
    o->rule.worst_case = KB__WORST_CASE_DEFAULT_PCT / 100.0;
}

void kb__trial_args_init(kb__trial_args *a)
{
    memset(a, 0, sizeof *a);
    kb__trial_opts_init(&a->o);
    a->desc = "";
}

int kb__trial_arg(kb__trial_args *a, int c, const char *arg, int *bad)
{
    switch (c) {
    case 'a': a->o.against = arg; break;
    case 'b': a->o.budget = kb__parse_num(arg, "--budget", bad); break;
    case 'c': a->o.cases = arg; break;
    case 'g': a->o.rule.min_gain = kb__parse_num(arg, "--min-gain", bad) / 100.0; break;
    case 'w': a->o.rule.worst_case = kb__parse_num(arg, "--worst-case", bad) / 100.0; break;
    case 'l': a->ledger = arg; break;
    case 'd': a->desc = arg; break;
    case 'o': a->o.oracles_dir = arg; break;
    case 's': a->o.seed = strtoull(arg, NULL, 0); break;
    case 'T': a->state = arg; break;
    case 'j': a->json = 1; break;
    case 'q': a->quiet = 1; break;
    default: return 0;
    }
    return 1;
}

int kb__budget_ok(double seconds)
{
    return seconds > 0 && seconds <= KB__BUDGET_MAX_S;
}
