/*
 * options.c -- the shared trial options and their defaults (options.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* Every long option of every command; a code is the same option wherever
 * it is taken ('q' and 'h' are also the short options -q and -h). */
/* clang-format off */
static const struct option kb__all_opts[] = {
    {"against", required_argument, 0, 'a'},
    {"budget", required_argument, 0, 'b'},
    {"cases", required_argument, 0, 'c'},
    {"case", required_argument, 0, 'C'},
    {"min-gain", required_argument, 0, 'g'},
    {"worst-case", required_argument, 0, 'w'},
    {"ledger", required_argument, 0, 'l'},
    {"description", required_argument, 0, 'd'},
    {"oracles", required_argument, 0, 'o'},
    {"seed", required_argument, 0, 's'},
    {"state", required_argument, 0, 'T'},
    {"json", no_argument, 0, 'j'},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {"format", required_argument, 0, 'f'},
    {"server", required_argument, 0, 'S'},
    {"foreign", required_argument, 0, 'F'},
    {"sig", required_argument, 0, 'G'},
    {"target", required_argument, 0, 't'},
    {"debounce", required_argument, 0, 'D'},
    {"no-initial", no_argument, 0, 'N'},
    {"max-trials", required_argument, 0, 'M'},
    {"trials", required_argument, 0, 'n'},
    {"no-roofline", no_argument, 0, 'r'},
    {"plot", required_argument, 0, 'p'},
    {"title", required_argument, 0, 'i'},
    {"socket", required_argument, 0, 'U'},
    {"allow-client-seed", no_argument, 0, 'A'},
    {"allow-client-oracles", no_argument, 0, 'O'},
};
/* clang-format on */

void kb__longopts(const char *names, struct option *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = names; *p && n + 1 < cap;) {
        const size_t len = strcspn(p, " ");
        for (size_t i = 0; i < sizeof kb__all_opts / sizeof kb__all_opts[0]; i++)
            if (!strncmp(kb__all_opts[i].name, p, len) && !kb__all_opts[i].name[len])
                out[n++] = kb__all_opts[i];
        p += len + (p[len] == ' ');
    }
    memset(&out[n], 0, sizeof out[n]);
}

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

/* --case adds one case; with --cases (the last one given), to those. The
 * selection is one ";"-separated string (target.c reads it), kept in a. */
static void set_cases(kb__trial_args *a, int c, const char *arg, int *bad)
{
    if (c == 'c') {
        a->cases_flag = arg;
    } else {
        const size_t at = strlen(a->case_list);
        const int w =
            snprintf(a->case_list + at, sizeof a->case_list - at, "%s%s", at ? ";" : "", arg);
        if (w < 0 || (size_t)w >= sizeof a->case_list - at) {
            fprintf(stderr,
                    "kbench: --case: the cases given are over %zu characters in all; "
                    "give fewer\n",
                    sizeof a->case_list - 1);
            *bad = 1;
            a->case_list[at] = 0;
        }
    }
    if (!a->case_list[0]) {
        a->o.cases = a->cases_flag;
        return;
    }
    a->o.cases = a->case_list;
    if (!a->cases_flag) return;
    const int w = snprintf(a->case_sel, sizeof a->case_sel, "%s;%s", a->cases_flag, a->case_list);
    if (w < 0 || (size_t)w >= sizeof a->case_sel) {
        fprintf(stderr, "kbench: --cases and --case together are over %zu characters; give fewer\n",
                sizeof a->case_sel - 1);
        *bad = 1;
    }
    a->o.cases = a->case_sel;
}

int kb__trial_arg(kb__trial_args *a, int c, const char *arg, int *bad)
{
    switch (c) {
    case 'a': a->o.against = arg; break;
    case 'b': a->o.budget = kb__parse_num(arg, "--budget", bad); break;
    case 'c':
    case 'C': set_cases(a, c, arg, bad); break;
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
