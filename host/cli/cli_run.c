/*
 * cli_run.c -- `kbench run`: one candidate called in a loop in this
 * process, for perf, gdb, valgrind or a sanitizer to wrap.
 *
 * No worker, no sandbox, no baseline and no verdict: the candidate's code
 * runs with all of kbench's rights, so this is for plugins one trusts. The
 * case's inputs and the oracle's outputs come from the same code a trial
 * uses (kb__ctx_get), and the first call is judged by the trial's own
 * comparison (kb__outputs_check), so "ok" here means what it means there
 * for that one call.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "cli.h"
#include "options.h"
#include "trial.h"

#define KB__RUN_SECONDS_DEFAULT 2
#define KB__RUN_CHUNK_NS        1e6 /* calls are timed in chunks of about this long */
#define KB__NOT_A_VERDICT \
    "not a verdict: no sandbox, no baseline interleaving; use `kbench trial` for a verdict"

static const char RUN_HELP[] =
    "usage: kbench run <candidate.so> [--case NAME] [--seconds S] [--calls N] [options]\n"
    "\n"
    "Loads the candidate into this process, makes one case's inputs and the oracle's\n"
    "outputs as a trial does, checks the candidate's first call against the oracle, then\n"
    "calls run() in a loop and prints ns/call, for a profiler or debugger to wrap:\n"
    "  perf stat -e cycles,instructions kbench run CAND.so --seconds 5\n"
    "  valgrind --tool=callgrind kbench run CAND.so --calls 200\n"
    "  gdb --args kbench run CAND.so --calls 1\n"
    "It is " KB__NOT_A_VERDICT ".\n"
    "The candidate runs unsandboxed, with your rights: run only plugins you trust.\n"
    "\n"
    "options:\n"
    "  --case NAME      the case (default: the target's first quick case; `kbench list`)\n"
    "  --seconds S      call for S seconds (default " KB__STR(
        KB__RUN_SECONDS_DEFAULT) ")\n"
                                 "  --calls N        call N times (with --seconds: whichever comes "
                                 "first)\n"
                                 "  --seed N         input seed (default: a fresh one, printed to "
                                 "repeat the run)\n"
                                 "  --oracles DIR    look for DIR/<target>/oracle.so first\n"
                                 "  -h, --help       this text\n"
                                 "\n"
                                 "exit codes: 0 the first call matches the oracle, 2 it does not, "
                                 "3 the plugin failed\n"
                                 "to load, prepare or run, or wrote outside its output, 64 usage "
                                 "error, 70 kbench failed.\n";

typedef struct kb__run_args {
    const char *cand, *case_name, *oracles;
    double seconds; /* 0: no time limit */
    uint64_t calls; /* 0: no call limit */
    uint64_t seed;
} kb__run_args;

/* A plugin's services in the foreground: messages to stderr. */
static void run_log(const kb_host *h, const char *m)
{
    (void)h;
    fprintf(stderr, "[plugin] %s\n", m);
}

static int parse(int argc, char **argv, kb__run_args *a, int *done)
{
    struct option opts[8];
    kb__longopts("case seconds calls seed oracles help", opts, sizeof opts / sizeof opts[0]);
    memset(a, 0, sizeof *a);
    int bad = 0, secs_given = 0, calls_given = 0;
    optind = 1;
    const kb__cmdline cl = {"run", RUN_HELP, "h", opts};
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        switch (c) {
        case '?': return KB__EXIT_USAGE;
        case 'C': a->case_name = optarg; break;
        case 'e': a->seconds = kb__parse_num(optarg, "--seconds", &bad), secs_given = 1; break;
        case 'k':
            a->calls = (uint64_t)kb__parse_num(optarg, "--calls", &bad), calls_given = 1;
            break;
        case 's': a->seed = kb__parse_seed(optarg, &bad); break;
        case 'o': a->oracles = optarg; break;
        case 'h': fputs(RUN_HELP, stdout); return *done = 1, 0;
        default: bad = 1;
        }
    }
    if (!bad && ((secs_given && !(a->seconds > 0)) || (calls_given && a->calls < 1) ||
                 (a->case_name && strchr(a->case_name, ';')))) {
        fprintf(stderr,
                "kbench run: --seconds and --calls must be above 0 and --case names one case\n");
        bad = 1;
    }
    if (bad || optind != argc - 1) {
        if (!bad) fprintf(stderr, "kbench run: expected exactly one candidate .so\n");
        return kb__usage("run", RUN_HELP);
    }
    if (!secs_given && !a->calls) a->seconds = KB__RUN_SECONDS_DEFAULT;
    a->cand = argv[optind];
    return 0;
}

/* The target's first quick case (else its first case), into name. */
static int first_quick_case(const char *target, const char *oracles, char *name, size_t len,
                            char *err, size_t err_len)
{
    char path[4096];
    kb__lib o;
    int rc = kb__oracle_find(target, oracles, path, sizeof path, err, err_len);
    if (rc == 0) rc = kb__lib_open(path, path, 1, &o, err, err_len);
    if (rc != 0) return rc;
    uint32_t i = 0;
    while (i < o.target->n_cases && !(o.target->cases[i].flags & KB_CASE_QUICK)) i++;
    snprintf(name, len, "%s", o.target->cases[i < o.target->n_cases ? i : 0].name);
    kb__lib_close(&o);
    return 0;
}

/* The case as the candidate sees it: its inputs' descriptors, per set, and
 * every lane's output descriptors. */
typedef struct kb__fg {
    const kb_plugin *p;
    const kb_target *t;
    kb__case_data *cd;
    kb__outbuf ob;
    void *state;
    kb_buffer ins[KB__SETS][KB_MAX_BUFFERS];
    kb_buffer *lanes, *work; /* n_lanes * n_outs: the template, and a call's copy */
} kb__fg;

static int fg_setup(kb__fg *g, char *err, size_t err_len)
{
    const kb__layout *L = &g->cd->layout;
    if (kb__outbuf_create(L, &g->ob, err, err_len) != 0) return KB__ENOMEM;
    kb__outbuf_poison(L, &g->ob, L->n_lanes);
    g->lanes = calloc((size_t)L->n_lanes * L->n_outs, sizeof *g->lanes);
    g->work = calloc((size_t)L->n_lanes * L->n_outs, sizeof *g->work);
    if (!g->lanes || !g->work) {
        kb__errf(err, err_len, "out of memory");
        return KB__ENOMEM;
    }
    for (uint32_t l = 0; l < L->n_lanes; l++)
        for (uint32_t j = 0; j < L->n_outs; j++) {
            const uint32_t bi = L->n_statics + L->n_calls + j;
            g->lanes[l * L->n_outs + j] = (kb_buffer){g->ob.base + l * L->lane_size +
                                                          L->buf[bi].slot_off + L->buf[bi].data_off,
                                                      L->buf[bi].count, 0, L->buf[bi].dtype, 0};
        }
    for (int s = 0; s < KB__SETS; s++)
        for (uint32_t i = 0; i < L->n_calls; i++) {
            const uint32_t bi = L->n_statics + i;
            g->ins[s][i] = (kb_buffer){g->cd->cbase + L->buf[bi].off[s], L->buf[bi].count, 0,
                                       L->buf[bi].dtype, 0};
        }
    return 0;
}

static int fg_prepare(kb__fg *g, char *err, size_t err_len)
{
    const kb__layout *L = &g->cd->layout;
    static const kb_host host0 = {sizeof(kb_host), 0, 0, run_log, kb__host_alloc, kb__host_free};
    static kb_host host;
    host = host0;
    host.cpu_features = kb__cpu_features();
    const char *names[KB_MAX_PARAMS];
    for (uint32_t p = 0; p < L->n_params; p++) names[p] = L->param_names[p];
    kb_case kc = {L->case_name, L->n_params, 0, L->params, names};
    kb_buffer statics[KB_MAX_BUFFERS];
    for (uint32_t i = 0; i < L->n_statics; i++)
        statics[i] =
            (kb_buffer){g->cd->base + L->buf[i].off[0], L->buf[i].count, 0, L->buf[i].dtype, 0};
    char perr[512] = "";
    const int rc = g->p->prepare(&host, &kc, statics, L->n_statics, &g->state, perr, sizeof perr);
    perr[sizeof perr - 1] = 0;
    if (rc != 0) kb__errf(err, err_len, "prepare returned %d: %s", rc, perr);
    return rc;
}

/* `calls` calls cycling through the sets from set 0, each into its own
 * lane. 0 with *ns the time they took, or the plugin's code (err says).
 * Never inlined or cloned: its name is what a profiler is told to count
 * (valgrind --toggle-collect=fg_calls, docs/writing-a-plugin.md). */
__attribute__((noinline, noclone)) static int fg_calls(kb__fg *g, uint64_t calls, double *ns,
                                                       char *err, size_t err_len)
{
    const kb__layout *L = &g->cd->layout;
    static const uint32_t order[KB__SETS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    memcpy(g->work, g->lanes, sizeof *g->work * L->n_outs * calls);
    uint64_t done = 0;
    char perr[512] = "";
    const uint64_t t0 = kb__now_ns();
    const int rc =
        kb__run_calls(g->p, g->state, (const kb_buffer(*)[KB_MAX_BUFFERS])g->ins, L->n_calls,
                      g->work, L->n_outs, order, KB__SETS, calls, &done, perr, sizeof perr);
    *ns = (double)(kb__now_ns() - t0);
    perr[sizeof perr - 1] = 0;
    if (rc != 0) kb__errf(err, err_len, "run returned %d (call %" PRIu64 "): %s", rc, done, perr);
    return rc;
}

/* The first call, judged like a trial's: 0 ok, 1 wrong, 2 broke the rules;
 * what was found in `detail`. *ns: its time. */
static int fg_check(kb__fg *g, double *ns, char *detail, size_t len)
{
    const kb__layout *L = &g->cd->layout;
    if (fg_calls(g, 1, ns, detail, len) != 0) return 3;
    /* the produced counts, where the trial's worker leaves them */
    memcpy(g->ob.base + L->prod_off, g->work, sizeof *g->work * L->n_outs);
    const int rc = kb__outputs_check(g->t, g->cd, &g->ob, 0, 0, detail, len);
    if (rc == 0) snprintf(detail, len, "the first call's outputs match the oracle's");
    return rc;
}

/* Calls in chunks until the limits; prints calls and ns/call. 0, or the
 * plugin's failure (err says). */
static int fg_loop(kb__fg *g, const kb__run_args *a, double first_ns, char *err, size_t err_len)
{
    const uint32_t n_lanes = g->cd->layout.n_lanes;
    double per = first_ns > 1 ? KB__RUN_CHUNK_NS / first_ns : n_lanes;
    const uint64_t chunk = per < 1 ? 1 : per > n_lanes ? n_lanes : (uint64_t)per;
    const uint64_t t0 = kb__now_ns();
    uint64_t calls = 0;
    size_t n = 0, cap = 0;
    double *v = NULL, sum = 0;
    int rc = 0;
    while ((!a->calls || calls < a->calls) &&
           (!(a->seconds > 0) || (double)(kb__now_ns() - t0) < a->seconds * 1e9)) {
        const uint64_t k = a->calls && a->calls - calls < chunk ? a->calls - calls : chunk;
        double ns;
        if ((rc = fg_calls(g, k, &ns, err, err_len)) != 0) break;
        if (n == cap) {
            double *w = realloc(v, (cap = cap ? 2 * cap : 1024) * sizeof *v);
            if (!w) break;
            v = w;
        }
        v[n++] = ns / (double)k;
        sum += ns;
        calls += k;
    }
    printf("calls: %" PRIu64 "\n", calls);
    printf("chunks: %zu of up to %" PRIu64 " calls\n", n, chunk);
    printf("ns_per_call_median: %.1f\n", n ? kb__median(v, n) : NAN);
    printf("ns_per_call_mean: %.1f\n", calls ? sum / (double)calls : NAN);
    free(v);
    return rc;
}

/* Loads the candidate here; the target's case context into *ctx. 0, or
 * the exit code with the reason on stderr. */
static int fg_load(const kb__run_args *a, kb__lib *lib, kb__ctx_cache *cc, kb__ctx **ctx)
{
    char err[1024], name[KB__CASE_NAME_LEN], missing[256];
    if (access(a->cand, F_OK) != 0) {
        fprintf(stderr, "kbench run: %s: no such file; build it first or check the path\n",
                a->cand);
        return KB__EXIT_USAGE;
    }
    if (kb__lib_open(a->cand, a->cand, 0, lib, err, sizeof err) != 0) {
        fprintf(stderr, "kbench run: %s\n", err);
        return KB__EXIT_FAILED;
    }
    kb__cpu_feature_names(lib->desc.cpu_features & ~kb__cpu_features(), missing, sizeof missing);
    if (missing[0]) {
        fprintf(stderr, "kbench run: %s needs %s, which this CPU lacks; run a variant it has\n",
                a->cand, missing);
        return KB__EXIT_FAILED;
    }
    const char *cs = a->case_name;
    if (!cs &&
        first_quick_case(lib->desc.target, a->oracles, name, sizeof name, err, sizeof err) == 0)
        cs = name;
    int rc = kb__ctx_get_check(cc, lib->desc.target, a->oracles, cs ? cs : "quick", a->seed, ctx,
                               err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "kbench run: %s\n", err);
        return rc == KB__EUSAGE ? KB__EXIT_USAGE : KB__EXIT_SOFTWARE;
    }
    return 0;
}

int kb__cli_run(int argc, char **argv)
{
    kb__run_args a;
    int done = 0, code = parse(argc, argv, &a, &done);
    if (code || done) return code;
    kb__lib lib;
    kb__ctx_cache cc;
    kb__ctx *ctx = NULL;
    memset(&lib, 0, sizeof lib);
    memset(&cc, 0, sizeof cc);
    kb__fg g;
    memset(&g, 0, sizeof g);
    g.ob.fd = -1;
    char err[1024], detail[1024];
    if ((code = fg_load(&a, &lib, &cc, &ctx)) != 0) goto out;
    g.p = lib.plugin;
    g.t = ctx->t;
    g.cd = &ctx->cases[0];
    printf("kbench run: " KB__NOT_A_VERDICT "\n");
    printf("candidate: %s\ntarget: %s\ncase: %s\nseed: 0x%016" PRIx64 "\n", a.cand, g.t->name,
           g.cd->cs->name, ctx->seed);
    fflush(stdout);
    if (fg_setup(&g, err, sizeof err) != 0) {
        fprintf(stderr, "kbench run: %s\n", err);
        code = KB__EXIT_SOFTWARE;
        goto out;
    }
    if (fg_prepare(&g, err, sizeof err) != 0) {
        printf("check: failed: %s\n", err);
        code = KB__EXIT_FAILED;
        goto out;
    }
    double first_ns = 0;
    /* prepare succeeded: release follows, whatever the calls do */
    const int chk = fg_check(&g, &first_ns, detail, sizeof detail);
    static const char *const what[] = {"ok", "incorrect", "rejected", "failed"};
    printf("check: %s: %s\n", what[chk], detail);
    fflush(stdout);
    code = chk == 0 ? 0 : chk == 1 ? KB__EXIT_INCORRECT : KB__EXIT_FAILED;
    if (chk < 3 && fg_loop(&g, &a, first_ns, err, sizeof err) != 0) {
        printf("run: failed: %s\n", err);
        code = KB__EXIT_FAILED;
    }
    g.p->release(g.state);
out:
    kb__outbuf_free(&g.ob);
    free(g.lanes);
    free(g.work);
    kb__ctx_cache_free(&cc);
    kb__lib_close(&lib);
    return code;
}
