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
#include "session.h"
#include "report.h"
#include "trial.h"

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
    "                            $KBENCH_STATE_DIR, else .kbench)\n"
    "  --server SOCKET           run the trial in the `kbench serve` at SOCKET (warm inputs)\n"
    "  --budget SECONDS          timing budget (default 2); the trial may stop earlier\n"
    "  --cases quick|all|NAMES   cases to run (default quick; NAMES separated by ';')\n"
    "  --min-gain PERCENT        keep needs the geomean CI below 1 - this (default 1)\n"
    "  --worst-case PERCENT      keep needs every case within 1 + this (default 5)\n"
    "  --ledger FILE             append one line to this results.tsv\n"
    "  --description TEXT        stored in the ledger line\n"
    "  --oracles DIR             look for DIR/<target>/oracle.so first\n"
    "  --json                    print JSON (Google Benchmark shaped) instead of text\n"
    "  --format text|json|md     text (default), JSON, or a Markdown table for a PR\n"
    "  --seed N                  fixed input seed (default: a fresh secret per trial)\n"
    "  -q, --quiet               no per-case table\n"
    "  -h, --help                this text\n"
    "\n"
    "foreign kernels (a function in a plain shared library, called through libffi):\n"
    "  kbench trial --foreign LIB.so:SYMBOL --sig SIGNATURE --target TARGET [options]\n"
    "  --foreign LIB.so:SYMBOL   the candidate: SYMBOL in LIB.so, which needs no kbench code\n"
    "  --sig 'RET (TYPE NAME, ...)'  its C signature; RET void|u32|u64|i32|i64, TYPE\n"
    "                            [const] u8|u16|u32|u64|i32|i64|f32|f64 [*]. Parameters bind\n"
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
    "usage: kbench verify <candidate.so> [--cases quick|all|NAMES] [--oracles DIR] [--json]\n"
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

int kb__cli_trial(int argc, char **argv, int verify_only)
{
    static const struct option opts[] = {{"against", required_argument, 0, 'a'},
                                         {"budget", required_argument, 0, 'b'},
                                         {"cases", required_argument, 0, 'c'},
                                         {"min-gain", required_argument, 0, 'g'},
                                         {"worst-case", required_argument, 0, 'w'},
                                         {"ledger", required_argument, 0, 'l'},
                                         {"description", required_argument, 0, 'd'},
                                         {"oracles", required_argument, 0, 'o'},
                                         {"json", no_argument, 0, 'j'},
                                         {"seed", required_argument, 0, 's'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"format", required_argument, 0, 'f'},
                                         {"server", required_argument, 0, 'S'},
                                         {"state", required_argument, 0, 'T'},
                                         {"foreign", required_argument, 0, 'F'},
                                         {"sig", required_argument, 0, 'G'},
                                         {"target", required_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    kb__trial_opts o;
    memset(&o, 0, sizeof o);
    o.budget = 2.0;
    o.rule.min_gain = 0.01;
    o.rule.worst_case = 0.05;
    const char *ledger = NULL, *desc = "", *server = NULL, *state = NULL, *foreign = NULL;
    static char fpath[PATH_MAX], fsym[KB__FSYM_MAX];
    int json = 0, quiet = 0, bad = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "qh", opts, NULL)) != -1;) {
        switch (c) {
        case 'a': o.against = optarg; break;
        case 'b': o.budget = kb__parse_num(optarg, "--budget", &bad); break;
        case 'c': o.cases = optarg; break;
        case 'g': o.rule.min_gain = kb__parse_num(optarg, "--min-gain", &bad) / 100.0; break;
        case 'w': o.rule.worst_case = kb__parse_num(optarg, "--worst-case", &bad) / 100.0; break;
        case 'l': ledger = optarg; break;
        case 'd': desc = optarg; break;
        case 'o': o.oracles_dir = optarg; break;
        case 'j': json = 1; break;
        case 'f':
            if (!strcmp(optarg, "json"))
                json = 1;
            else if (!strcmp(optarg, "md"))
                json = 2;
            else if (strcmp(optarg, "text")) {
                fprintf(stderr, "kbench: --format expects text, json or md, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case 's': o.seed = strtoull(optarg, NULL, 0); break;
        case 'q': quiet = 1; break;
        case 'S': server = optarg; break;
        case 'T': state = optarg; break;
        case 'F': foreign = optarg; break;
        case 'G': o.foreign_sig = optarg; break;
        case 'R': o.foreign_target = optarg; break;
        case 'h': fputs(verify_only ? VERIFY_HELP : TRIAL_HELP, stdout); return 0;
        default: bad = 1;
        }
    }
    const char *cmd = verify_only ? "verify" : "trial";
    if (!bad && foreign) {
        char err[512];
        if (kb__foreign_split(foreign, fpath, sizeof fpath, fsym, sizeof fsym, err, sizeof err)) {
            fprintf(stderr, "kbench %s: %s\n", cmd, err);
            bad = 1;
        } else if (!o.foreign_sig || !o.foreign_target) {
            fprintf(stderr, "kbench %s: --foreign needs --sig and --target\n", cmd);
            bad = 1;
        } else if (optind != argc) {
            fprintf(stderr, "kbench %s: --foreign is the candidate; drop '%s'\n", cmd,
                    argv[optind]);
            bad = 1;
        } else if (server || (o.against && !strcmp(o.against, "best"))) {
            fprintf(stderr,
                    "kbench %s: --foreign runs locally and cannot become the best; drop "
                    "%s\n",
                    cmd, server ? "--server" : "--against best");
            bad = 1;
        }
        o.candidate = fpath;
        o.foreign_sym = fsym;
        optind = argc - 1; /* as if the library were the positional candidate */
    } else if (!bad && (o.foreign_sig || o.foreign_target)) {
        fprintf(stderr, "kbench %s: --sig and --target go with --foreign\n", cmd);
        bad = 1;
    }
    if (bad || optind != argc - 1) {
        if (!bad) fprintf(stderr, "kbench %s: expected exactly one candidate .so\n", cmd);
        fputs(verify_only ? VERIFY_HELP : TRIAL_HELP, stderr);
        return KB__EXIT_USAGE;
    }
    if (o.budget <= 0 || o.budget > 3600) {
        fprintf(stderr, "kbench trial: --budget must be in (0, 3600] seconds\n");
        return KB__EXIT_USAGE;
    }
    if (!foreign) o.candidate = argv[optind];
    const char *emu = getenv("KB_WORKER_EXEC_PREFIX");
    if (emu && *emu)
        fprintf(stderr,
                "kbench: warning: KB_WORKER_EXEC_PREFIX=%s: workers run under emulation "
                "with the seccomp, thread and idle-CPU checks off; for correctness "
                "matrices only, never for verdicts you trust\n",
                emu);
    o.verify_only = verify_only;
    o.exe = kb__self_exe();
    if (server) {
        kb__remote_req q = {server, &o, ledger, desc, state, json, quiet};
        return kb__trial_remote(&q);
    }

    kb__result *r = calloc(1, sizeof *r);
    if (!r) return KB__EXIT_SOFTWARE;
    snprintf(r->description, sizeof r->description, "%s", desc);
    char err[1024];
    kb__best_info bi;
    int rc = kb__trial_any(&o, state, NULL, r, &bi, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "kbench: %s\n", err);
        free(r);
        return rc == KB__EUSAGE ? KB__EXIT_USAGE : KB__EXIT_SOFTWARE;
    }
    kb__best_describe(&bi, desc, r->description, sizeof r->description);
    if (ledger) kb__git_commit(o.candidate, r->git_commit, sizeof r->git_commit);
    if (json == 2) {
        kb__result_print_md(r, stdout);
    } else if (json) {
        kb__result_print_json_ext(r, &bi, stdout);
    } else {
        if (!quiet && isatty(1) && r->n_cases) kb__result_print_table(r, stdout);
        kb__result_print_block(r, stdout);
        kb__best_print(&bi, stdout);
    }
    fflush(stdout);
    int code = kb__status_exit_code(r->status);
    if (ledger && !verify_only && kb__ledger_append(ledger, r, err, sizeof err) != 0) {
        fprintf(stderr, "kbench: %s\n", err);
        code = KB__EXIT_SOFTWARE;
    }
    free(r);
    return code;
}
