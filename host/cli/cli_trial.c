/*
 * cli_trial.c -- `kbench trial` and `kbench verify`: arguments in, one
 * verdict out (table + `---` block, or JSON), a ledger line, an exit code.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "session.h"
#include "options.h"
#include "record.h"

static const char TRIAL_HELP[] =
    "usage: kbench trial <candidate.so> [options]\n"
    "\n"
    "Checks the candidate against its target's oracle on inputs from a secret seed,\n"
    "then times it against a baseline, interleaved batch by batch, and prints one verdict.\n"
    "\n"
    "options:\n"
    "  --against oracle|best|FILE.so  baseline to time against (default: the oracle);\n"
    "                            best: the best kept candidate of the target so far\n"
    "                            (STATE/<target>/best.so); a keep promotes the candidate\n"
    "  --state DIR               where --against best keeps the best (default\n"
    "                            $KBENCH_STATE_DIR, else .kbench; with --server, the\n"
    "                            server's unless --state is given)\n"
    "  --server SOCKET           run the trial in the `kbench serve` at SOCKET (warm inputs)\n"
    "  --budget SECONDS          timing budget (default " KB__BUDGET_DEFAULT_TXT
    "); the trial may stop earlier\n"
    "  --cases quick|all|NAMES   cases to run (default quick; NAMES separated by ';')\n"
    "  --case 'n=...,d=...,m=.../DIST'  one case of any shape the target allows, its\n"
    "                            parameters by name, then its distribution; repeatable;\n"
    "                            alone it replaces the quick cases, with --cases adds to them\n"
    "  --min-gain PERCENT        keep needs the geomean CI below 1 - this "
    "(default " KB__MIN_GAIN_DEFAULT_TXT ")\n"
    "  --worst-case PERCENT      keep needs every case within 1 + this "
    "(default " KB__WORST_CASE_DEFAULT_TXT ")\n"
    "  --ledger FILE             append one line to this results.tsv\n"
    "  --description TEXT        stored in the ledger line\n"
    "  --oracles DIR             look for DIR/<target>/oracle.so first\n"
    "  --json                    print JSON (Google Benchmark shaped) instead of text\n"
    "  --format text|json|md     text (default), JSON, or a Markdown table for a PR\n"
    "  --seed N                  fixed input seed (default: a fresh secret per trial)\n"
    "  -q, --quiet               no per-case table\n"
    "  -h, --help                this text\n"
    "  A value that starts with '-' must be written --option=VALUE (no option takes a\n"
    "  negative number): `--ledger -q` is refused as a forgotten value.\n"
    "\n"
    "foreign kernels (a function in a plain shared library, called through libffi):\n"
    "  kbench trial --foreign LIB.so:SYMBOL --sig SIGNATURE --target TARGET [options]\n"
    "  --foreign LIB.so:SYMBOL   the candidate: SYMBOL in LIB.so, which needs no kbench code\n"
    "  --sig 'RET (TYPE NAME, ...)'  its C signature; RET void or a 32/64-bit integer,\n"
    "                            TYPE [const] a C integer or floating type (int, unsigned\n"
    "                            long, size_t, uint32_t, double, u32, f64, ...) [*], sized\n"
    "                            as this platform's ABI says (docs/writing-a-plugin.md\n"
    "                            lists every spelling). Parameters bind\n"
    "                            by name: a pointer named like a buffer of the target gets\n"
    "                            it, a scalar named like a case param gets its value,\n"
    "                            n<buf>/<buf>_len/len_<buf>/n_<buf> a buffer's element\n"
    "                            count, 'u64 *produced' a variable output's count (else an\n"
    "                            integer return is that count; otherwise a status, 0 = ok)\n"
    "  --target TARGET           the target whose oracle judges it, e.g. posting-intersect\n"
    "  e.g. --foreign ./libmine.so:my_and --target posting-intersect\n"
    "       --sig 'u64 (const u32 *lists, const u64 *offsets, u64 k, u32 *out)'\n"
    "\n"
    "verdicts and exit codes:\n"
    "  keep          0  geomean ratio CI entirely below 1 - min-gain, worst case within limit\n"
    "  discard       1  not a min-gain win, or a case clearly slower\n"
    "  incorrect     2  an output differs from the oracle's (case, index, expected, got)\n"
    "  crash         3  the plugin died (signal, or exited before reporting)\n"
    "  timeout       3  no answer within the deadline; its process group was killed\n"
    "  rejected      3  broke a rule (ABI, CPU features, wrote to input, threads, ...)\n"
    "  inconclusive  4  the noise is too large to decide; try a longer --budget\n"
    "  usage error  64\n";

static const char VERIFY_HELP[] =
    "usage: kbench verify <candidate.so> [--cases quick|all|NAMES] [--case SHAPE]...\n"
    "                     [--oracles DIR] [--json]\n"
    "       kbench verify --foreign LIB.so:SYMBOL --sig SIGNATURE --target TARGET [...]\n"
    "\n"
    "Correctness only: runs every selected case on every input set in a sandboxed worker\n"
    "and compares with the oracle. Exit 0 correct, 2 incorrect, 3 crash/timeout/rejected.\n"
    "--foreign, --sig and --target: a function of a plain shared library, called through\n"
    "libffi; `kbench trial --help` explains the signature and how it binds.\n";

double kb__parse_num(const char *s, const char *opt, int *bad)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end || !isfinite(v) || v < 0) {
        fprintf(stderr, "kbench: %s expects a non-negative number, got '%s'\n", opt, s);
        *bad = 1;
    }
    return v;
}

static void print_verdict(const kb__result *r, const kb__best_info *bi, void *arg)
{
    const kb__trial_args *a = arg;
    if (a->json == 2) {
        kb__result_print_md(r, stdout);
    } else if (a->json) {
        kb__result_print_json_ext(r, bi, stdout);
    } else {
        if (!a->quiet && isatty(1) && r->n_cases) kb__result_print_table(r, stdout);
        kb__result_print_block(r, stdout);
        kb__best_print(bi, stdout);
    }
    fflush(stdout);
}

/* --foreign LIB.so:SYMBOL with --sig and --target: the candidate. 0, or 1
 * with the reason on stderr. */
static int foreign_args(kb__trial_args *a, const char *foreign, int argc, char **argv,
                        const char *cmd)
{
    static char fpath[PATH_MAX], fsym[KB__FSYM_MAX];
    kb__trial_opts *o = &a->o;
    char err[512];
    int bad = 1;
    if (kb__foreign_split(foreign, fpath, sizeof fpath, fsym, sizeof fsym, err, sizeof err))
        fprintf(stderr, "kbench %s: %s\n", cmd, err);
    else if (!o->foreign_sig || !o->foreign_target)
        fprintf(stderr, "kbench %s: --foreign needs --sig and --target\n", cmd);
    else if (optind != argc)
        fprintf(stderr, "kbench %s: --foreign is the candidate; drop '%s'\n", cmd, argv[optind]);
    else if (a->server || (o->against && !strcmp(o->against, "best")))
        fprintf(stderr,
                "kbench %s: --foreign runs locally and cannot become the best; drop "
                "%s\n",
                cmd, a->server ? "--server" : "--against best");
    else
        bad = 0;
    o->candidate = fpath;
    o->foreign_sym = fsym;
    return bad;
}

/* Reads the command line into a; 0, or the exit code of a usage error
 * (said on stderr) or of --help. */
static int parse(int argc, char **argv, int verify_only, kb__trial_args *a, int *done)
{
    struct option opts[24];
    kb__longopts(KB__TRIAL_OPTS " format server foreign sig target", opts,
                 sizeof opts / sizeof opts[0]);
    const char *help = verify_only ? VERIFY_HELP : TRIAL_HELP, *foreign = NULL;
    const char *cmd = verify_only ? "verify" : "trial";
    const kb__cmdline cl = {cmd, help, "qh", opts};
    int bad = 0;
    kb__trial_args_init(a);
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        if (c == '?') return KB__EXIT_USAGE;
        if (kb__trial_arg(a, c, optarg, &bad)) continue;
        switch (c) {
        case 'f':
            if (!strcmp(optarg, "json"))
                a->json = 1;
            else if (!strcmp(optarg, "md"))
                a->json = 2;
            else if (strcmp(optarg, "text")) {
                fprintf(stderr, "kbench: --format expects text, json or md, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case 'S': a->server = optarg; break;
        case 'F': foreign = optarg; break;
        case 'G': a->o.foreign_sig = optarg; break;
        case 't': a->o.foreign_target = optarg; break;
        case 'h': fputs(help, stdout); return *done = 1, 0;
        default: bad = 1;
        }
    }
    if (!bad && foreign) {
        bad = foreign_args(a, foreign, argc, argv, cmd);
        optind = argc - 1; /* as if the library were the positional candidate */
    } else if (!bad && (a->o.foreign_sig || a->o.foreign_target)) {
        fprintf(stderr, "kbench %s: --sig and --target go with --foreign\n", cmd);
        bad = 1;
    }
    if (bad || optind != argc - 1) {
        if (!bad) fprintf(stderr, "kbench %s: expected exactly one candidate .so\n", cmd);
        return kb__usage(cmd, help);
    }
    if (!kb__budget_ok(a->o.budget)) {
        fprintf(stderr, "kbench trial: --budget must be in (0, " KB__BUDGET_MAX_TXT "] seconds\n");
        return KB__EXIT_USAGE;
    }
    if (!foreign) a->o.candidate = argv[optind];
    return 0;
}

int kb__cli_trial(int argc, char **argv, int verify_only)
{
    kb__trial_args a;
    int done = 0, rc = parse(argc, argv, verify_only, &a, &done);
    if (rc || done) return rc;
    const char *emu = getenv("KB_WORKER_EXEC_PREFIX");
    if (emu && *emu)
        fprintf(stderr,
                "kbench: warning: KB_WORKER_EXEC_PREFIX=%s: workers run under emulation "
                "with the seccomp, thread and idle-CPU checks off; for correctness "
                "matrices only, never for verdicts you trust\n",
                emu);
    a.o.verify_only = verify_only;
    a.o.exe = kb__self_exe();
    if (a.server) {
        kb__remote_req q = {a.server, &a.o, a.ledger, a.desc, a.state, a.json, a.quiet};
        return kb__trial_remote(&q);
    }
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return KB__EXIT_SOFTWARE;
    char err[1024], lerr[1024];
    kb__best_info bi;
    kb__record rec = {.state_dir = a.state,
                      .description = a.desc,
                      .ledger = a.ledger,
                      .print = print_verdict,
                      .print_arg = &a};
    rc = kb__trial_record(&a.o, &rec, r, &bi, err, sizeof err, lerr, sizeof lerr);
    if (rc != 0) {
        fprintf(stderr, "kbench: %s\n", err);
        free(r);
        return rc == KB__EUSAGE ? KB__EXIT_USAGE : KB__EXIT_SOFTWARE;
    }
    int code = kb__status_exit_code(r->status);
    if (lerr[0]) {
        fprintf(stderr, "kbench: %s\n", lerr);
        code = KB__EXIT_SOFTWARE;
    }
    free(r);
    return code;
}
