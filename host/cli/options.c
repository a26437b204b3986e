/*
 * options.c -- the shared trial options and their defaults (options.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    {"seconds", required_argument, 0, 'e'},
    {"calls", required_argument, 0, 'k'},
    {"describe-cmd", required_argument, 0, 'X'},
    {"out", required_argument, 0, 'y'},
    {"shard", required_argument, 0, 'H'},
    {"build", required_argument, 0, 'B'},
    {"list", no_argument, 0, 'L'},
    {"slurm", no_argument, 0, 'W'},
    {"markdown", required_argument, 0, 'm'},
    /* `kbench merge --json FILE`; a command names it "json=" */
    {"json", required_argument, 0, 'J'},
};
/* clang-format on */

void kb__longopts(const char *names, struct option *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = names; *p && n + 1 < cap;) {
        const size_t len = strcspn(p, " ");
        /* "name=": the entry of that name that takes a value; else the first */
        const int valued = len > 1 && p[len - 1] == '=';
        const size_t nlen = len - (size_t)valued;
        for (size_t i = 0; i < sizeof kb__all_opts / sizeof kb__all_opts[0]; i++)
            if (!strncmp(kb__all_opts[i].name, p, nlen) && !kb__all_opts[i].name[nlen] &&
                (!valued || kb__all_opts[i].has_arg == required_argument)) {
                out[n++] = kb__all_opts[i];
                break;
            }
        p += len + (p[len] == ' ');
    }
    memset(&out[n], 0, sizeof out[n]);
}

/* The entry of opts named by `name` (up to '=' or its end): an exact
 * name, else the one option it abbreviates; NULL with *n_prefix matches. */
static const struct option *opt_named(const struct option *opts, const char *name, size_t len,
                                      int *n_prefix)
{
    const struct option *hit = NULL;
    *n_prefix = 0;
    for (const struct option *o = opts; o->name; o++) {
        if (strncmp(o->name, name, len)) continue;
        if (!o->name[len]) return o;
        hit = o;
        ++*n_prefix;
    }
    return *n_prefix == 1 ? hit : NULL;
}

/* An unknown option, with the nearest of this command's when one is near. */
static void unknown(const kb__cmdline *cl, const char *shown, const char *word)
{
    const char *names[64];
    size_t n = 0;
    for (const struct option *o = cl->opts; o->name && n < 64; o++) names[n++] = o->name;
    const char *near = kb__suggest(word, names, n);
    fprintf(stderr, "kbench %s: unknown option '%s'", cl->cmd, shown);
    if (near) fprintf(stderr, "; did you mean --%s?", near);
    fputc('\n', stderr);
}

/* What was wrong with a long option getopt_long refused: the word is
 * arg ("--name" or "--name=value"). */
static void long_error(const kb__cmdline *cl, const char *arg)
{
    const char *name = arg + 2;
    const size_t len = strcspn(name, "=");
    int n_prefix;
    const struct option *o = opt_named(cl->opts, name, len, &n_prefix);
    if (o && name[len] == '=')
        fprintf(stderr, "kbench %s: --%s takes no value; drop '%s'\n", cl->cmd, o->name,
                name + len);
    else if (o)
        fprintf(stderr, "kbench %s: --%s needs a value\n", cl->cmd, o->name);
    else if (n_prefix > 1)
        fprintf(stderr, "kbench %s: option '--%.*s' is ambiguous; write the whole name\n", cl->cmd,
                (int)len, name);
    else {
        char shown[128];
        snprintf(shown, sizeof shown, "--%.*s", (int)len, name);
        unknown(cl, shown, shown + 2);
    }
}

/* A short option that is not one: a long option written with one dash
 * ("-budget") is named as such. GNU getopt leaves optind on the word while
 * it has characters left, and past it after the last one. */
static void short_error(const kb__cmdline *cl, int argc, char **argv)
{
    const char *w = NULL;
    if (optind - 1 >= 1 && optind - 1 < argc) {
        const char *prev = argv[optind - 1];
        const size_t n = strlen(prev);
        if (prev[0] == '-' && prev[1] != '-' && n > 1 && prev[n - 1] == optopt) w = prev;
    }
    if (!w && optind < argc && argv[optind][0] == '-') w = argv[optind];
    if (w && strlen(w) > 2) {
        unknown(cl, w, w + 1);
        return;
    }
    fprintf(stderr, "kbench %s: unknown option '-%c'\n", cl->cmd, optopt);
}

int kb__usage(const char *cmd, const char *help)
{
    const char *end = strstr(help, "\n\n");
    fprintf(stderr, "%.*s\n`kbench %s --help` explains every option.\n",
            (int)(end ? end - help : (ptrdiff_t)strlen(help)), help, cmd);
    return KB__EXIT_USAGE;
}

int kb__getopt(int argc, char **argv, const kb__cmdline *cl)
{
    int idx = -1;
    opterr = 0;
    const int c = getopt_long(argc, argv, cl->shortopts, cl->opts, &idx);
    if (c == '?' || c == ':') {
        const char *arg = optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
        if (!strncmp(arg, "--", 2))
            long_error(cl, arg);
        else
            short_error(cl, argc, argv);
        kb__usage(cl->cmd, cl->help);
        return '?';
    }
    /* The value came as the next word (not --name=value) and looks like an
     * option: the value was most likely forgotten. A lone "-" is a value. */
    if (c != -1 && idx >= 0 && optarg && optarg == argv[optind - 1] && optarg[0] == '-' &&
        optarg[1]) {
        fprintf(stderr,
                "kbench %s: --%s needs a value; '%s' looks like an option (write --%s=%s if you "
                "mean it)\n",
                cl->cmd, cl->opts[idx].name, optarg, cl->opts[idx].name, optarg);
        kb__usage(cl->cmd, cl->help);
        return '?';
    }
    return c;
}

/* --against oracle|best|FILE.so: a word that is neither and names no file
 * is most likely a misspelt word. */
static const char *against_arg(const char *arg, int *bad)
{
    static const char *const words[] = {"oracle", "best"};
    if (!strcmp(arg, "oracle") || !strcmp(arg, "best") || access(arg, F_OK) == 0) return arg;
    const char *why = strerror(errno), *near = kb__suggest(arg, words, 2);
    fprintf(stderr, "kbench: --against '%s': expected oracle, best or a FILE.so (%s)", arg, why);
    if (near)
        fprintf(stderr, "; did you mean %s?\n", near);
    else
        fprintf(stderr, "; build it or check the path\n");
    *bad = 1;
    return arg;
}

uint64_t kb__parse_seed(const char *arg, int *bad)
{
    char *end;
    errno = 0;
    const unsigned long long v = strtoull(arg, &end, 0);
    if (!*arg || *end || errno || arg[strspn(arg, " \t")] == '-') {
        fprintf(stderr, "kbench: --seed expects a non-negative integer, got '%s'\n", arg);
        *bad = 1;
    }
    return v;
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
    case 'a': a->o.against = against_arg(arg, bad); break;
    case 'b': a->o.budget = kb__parse_num(arg, "--budget", bad); break;
    case 'c':
    case 'C': set_cases(a, c, arg, bad); break;
    case 'g': a->o.rule.min_gain = kb__parse_num(arg, "--min-gain", bad) / 100.0; break;
    case 'w': a->o.rule.worst_case = kb__parse_num(arg, "--worst-case", bad) / 100.0; break;
    case 'l': a->ledger = arg; break;
    case 'd': a->desc = arg; break;
    case 'o': a->o.oracles_dir = arg; break;
    case 's': a->o.seed = kb__parse_seed(arg, bad); break;
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
