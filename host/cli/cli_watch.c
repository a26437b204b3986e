/*
 * cli_watch.c -- `kbench watch <cand.so>...`: a trial on every new build.
 *
 * inotify watches the candidates' directories, not the files: a linker that
 * writes in place ends with IN_CLOSE_WRITE, one that writes a temporary and
 * renames it over the old file ends with IN_MOVED_TO, and a watch on the
 * file itself would follow the old inode away after a rename. Events for a
 * name are debounced (a quiet period, default 30 ms) so a burst of writes is
 * one trial. A linker's output lands with one close or one rename, so the
 * quiet period only has to cover a follow-up step (strip, objcopy) on the
 * same file; it is short because it adds straight to every reload, and a
 * write that comes later anyway just gets a trial of its own. Each trial snapshots the file (a sealed private copy; a file
 * still changing is retried, then rejected) and runs through one
 * kb__ctx_cache kept for the whole session: the target's inputs and oracle
 * outputs are built by the first trial and reused by every later one.
 *
 * Each round is described on its own (describe.c) before its trial, so
 * the ledger tells one rebuild from the next.
 *
 * Nothing a candidate does stops the watch: crashes, rejects, half-written
 * and deleted files are verdicts or notes, and the next build is picked up.
 * SIGINT/SIGTERM stop it after the running trial (a second one at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cli.h"
#include "describe.h"
#include "report.h"
#include "session.h"
#include "options.h"
#include "record.h"

#define KB__WATCH_MAX            16
#define KB__DEBOUNCE_DEFAULT_MS  30
#define KB__DEBOUNCE_DEFAULT_TXT KB__STR(KB__DEBOUNCE_DEFAULT_MS)
#define KB__WATCH_MASK                                                                          \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | \
     IN_ONLYDIR)

static const char WATCH_HELP[] =
    "usage: kbench watch <candidate.so>... [trial options] [--debounce MS] [--no-initial]\n"
    "                    [--max-trials N] [--json]\n"
    "\n"
    "Runs a trial of each candidate now and again on every new build of it (a write or\n"
    "a rename into place), with the target's inputs and oracle outputs kept warm between\n"
    "trials. Prints the verdict block each time, then\n"
    "  reload_ms:   from the file change to the verdict\n"
    "  trial_ms:    of that, the trial itself (its trial_seconds)\n"
    "  outside_ms:  the rest: debounce, noticing the change, describing the round,\n"
    "               printing; for a keep that makes a new best, its trial against the oracle\n"
    "  batches_ms:  inside the trial, the timed batches of both sides\n"
    "  warm:        yes when the inputs and oracle outputs were reused\n"
    "and appends to --ledger. Crashes, rejects, half-written and deleted files do not stop\n"
    "it; Ctrl-C does (after the running trial; twice: at once).\n"
    "\n"
    "Each round gets its own description: the first line --describe-cmd prints, else, in\n"
    "a git work tree, the candidate directory's commit subject and `git diff --shortstat`\n"
    "with the round's number, else the round's number; --description TEXT goes before it\n"
    "as \"TEXT: ...\".\n"
    "\n"
    "options: --against oracle|best|FILE.so, --budget S, --cases SEL, --min-gain PCT,\n"
    "  --worst-case PCT, --ledger FILE, --oracles DIR, --seed N, --state DIR, -q: as for\n"
    "  `kbench trial`.\n"
    "  --description TEXT  the start of every round's description\n"
    "  --describe-cmd CMD  run `sh -c CMD` in the candidate's directory before each\n"
    "                      trial ($KBENCH_CANDIDATE: its path); its first line describes\n"
    "                      the round. Killed after " KB__DESCRIBE_TIMEOUT_TXT
    " s; a failure is reported and the\n"
    "                      round is described as without it\n"
    "  --debounce MS     quiet time after the last change before a trial "
    "(default " KB__DEBOUNCE_DEFAULT_TXT ")\n"
    "  --no-initial      no trial at start, only on changes\n"
    "  --max-trials N    exit after N verdicts (scripts, tests)\n"
    "  --json            one JSON document per verdict, on one line\n";

typedef struct kb__watched {
    char path[PATH_MAX]; /* as given */
    char dir[PATH_MAX];
    char base[256];
    int wd;
    uint64_t due_ns;   /* 0: nothing pending */
    int due_trial;     /* what is due: a trial, or only a look whether it is gone */
    uint64_t event_ns; /* the last change of the pending burst */
    int gone_noted;
    char target[64]; /* learnt from its last verdict that named one */
} kb__watched;

static volatile sig_atomic_t g_stop, g_in_trial;
static int g_wake = -1;

static void on_signal(int sig)
{
    (void)sig;
    int e = errno;
    if (g_stop && g_in_trial) _exit(130); /* second Ctrl-C: workers die with us */
    g_stop = 1;
    if (g_in_trial) {
        static const char m[] = "\nkbench watch: stopping after this trial (again to stop now)\n";
        ssize_t n = write(2, m, sizeof m - 1);
        (void)n;
    }
    if (g_wake >= 0) {
        ssize_t n = write(g_wake, "s", 1);
        (void)n;
    }
    errno = e;
}

static int add_watch(int ifd, kb__watched *w)
{
    w->wd = inotify_add_watch(ifd, w->dir, KB__WATCH_MASK);
    return w->wd;
}

/* Time spent in timed batches, both sides (from the per-case medians): the
 * floor of what a trial costs. The rest of the trial is calibration, the
 * checks of every timed output, workers starting and stopping. */
static double batches_ms(const kb__result *r)
{
    double ms = 0;
    for (uint32_t i = 0; i < r->n_cases && i < 64; i++) {
        const kb__case_result *c = &r->cases[i];
        if (isfinite(c->cand_ns) && isfinite(c->base_ns))
            ms += (double)c->samples * (double)c->calls * (c->cand_ns + c->base_ns) / 1e6;
    }
    return ms;
}

typedef struct kb__watch_cfg {
    kb__trial_args a;
    double debounce_ms, max_trials;
    int initial;
    const char *describe_cmd;
} kb__watch_cfg;

typedef struct kb__shown {
    const kb__watch_cfg *cfg;
    const kb__watched *w;
    const kb__record *rec;
    const kb__ctx_cache *cache;
    uint64_t builds; /* the cache's builds before the trial */
} kb__shown;

static void print_verdict(const kb__result *r, const kb__best_info *bi, void *arg)
{
    const kb__shown *sh = arg;
    const double reload = (double)(sh->rec->done_ns - sh->w->event_ns) / 1e6;
    const double meas = batches_ms(r), trial = r->trial_seconds * 1e3;
    const int warm = sh->cache->builds == sh->builds; /* no inputs built for it */
    if (sh->cfg->a.json) {
        json_t *doc = kb__result_to_json(r, bi);
        if (doc) {
            json_object_set_new(doc, "exit_code", json_integer(kb__status_exit_code(r->status)));
            json_object_set_new(doc, "reload_ms", json_real(reload));
            json_object_set_new(doc, "trial_ms", json_real(trial));
            json_object_set_new(doc, "outside_ms", json_real(reload - trial));
            json_object_set_new(doc, "batches_ms", json_real(meas));
            json_object_set_new(doc, "warm", json_boolean(warm));
            json_dumpf(doc, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
            fputc('\n', stdout);
            json_decref(doc);
        }
    } else {
        if (!sh->cfg->a.quiet && isatty(1) && r->n_cases) kb__result_print_table(r, stdout);
        kb__result_print_block(r, stdout);
        kb__best_print(bi, stdout);
        printf("reload_ms: %.1f\ntrial_ms: %.1f\noutside_ms: %.1f\nbatches_ms: %.1f\nwarm: %s\n\n",
               reload, trial, reload - trial, meas, warm ? "yes" : "no");
    }
    fflush(stdout);
}

static void run_one(const kb__watch_cfg *cfg, kb__ctx_cache *cache, kb__watched *w, uint64_t round)
{
    kb__trial_opts o = cfg->a.o;
    o.candidate = w->path;
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return;
    kb__best_info bi;
    char err[1024], lerr[1024], desc[sizeof r->description];
    kb__describe_round(w->path, cfg->describe_cmd, cfg->a.desc, round, desc, sizeof desc, err,
                       sizeof err);
    if (err[0])
        fprintf(stderr,
                "kbench watch: --describe-cmd for %s %s; round %llu is described as \"%s\" "
                "(fix the command, or drop --describe-cmd)\n",
                w->path, err, (unsigned long long)round, desc);
    /* A build rejected before it could name its target (a truncated file)
     * is still this file's trial: the ledger line says which target. */
    kb__record rec = {.state_dir = cfg->a.state,
                      .cache = cache,
                      .description = desc,
                      .ledger = cfg->a.ledger,
                      .target_hint = w->target,
                      .print = print_verdict,
                      .in_trial = &g_in_trial};
    kb__shown sh = {cfg, w, &rec, cache, cache->builds};
    rec.print_arg = &sh;
    int rc = kb__trial_record(&o, &rec, r, &bi, err, sizeof err, lerr, sizeof lerr);
    if (rc != 0)
        fprintf(stderr, "kbench watch: %s: %s\n", w->path, err);
    else if (lerr[0])
        fprintf(stderr, "kbench watch: %s\n", lerr);
    if (rc == 0 && r->target[0]) snprintf(w->target, sizeof w->target, "%s", r->target);
    free(r);
}
/* Reads the command line into cfg; 0 with *n candidates from argv[optind],
 * or an exit code (usage, or 0 after --help with *n 0). */
static int parse(int argc, char **argv, kb__watch_cfg *cfg, int *n)
{
    struct option opts[24];
    kb__longopts(KB__TRIAL_OPTS " debounce no-initial max-trials describe-cmd", opts,
                 sizeof opts / sizeof opts[0]);
    memset(cfg, 0, sizeof *cfg);
    kb__trial_args_init(&cfg->a);
    cfg->a.o.exe = kb__worker_exe();
    cfg->debounce_ms = KB__DEBOUNCE_DEFAULT_MS;
    cfg->initial = 1;
    const kb__cmdline cl = {"watch", WATCH_HELP, "qh", opts};
    int bad = 0;
    *n = 0;
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        if (c == '?') return KB__EXIT_USAGE;
        if (kb__trial_arg(&cfg->a, c, optarg, &bad)) continue;
        switch (c) {
        case 'D': cfg->debounce_ms = kb__parse_num(optarg, "--debounce", &bad); break;
        case 'N': cfg->initial = 0; break;
        case 'M': cfg->max_trials = kb__parse_num(optarg, "--max-trials", &bad); break;
        case 'X': cfg->describe_cmd = optarg; break;
        case 'h': fputs(WATCH_HELP, stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad || argc - optind < 1 || argc - optind > KB__WATCH_MAX) {
        if (!bad)
            fprintf(stderr, "kbench watch: expected 1 to %d candidate .so files\n", KB__WATCH_MAX);
        return kb__usage("watch", WATCH_HELP);
    }
    if (!kb__budget_ok(cfg->a.o.budget)) {
        fprintf(stderr, "kbench watch: --budget must be in (0, " KB__BUDGET_MAX_TXT "] seconds\n");
        return KB__EXIT_USAGE;
    }
    *n = argc - optind;
    return 0;
}

/* Splits the path into directory and name and watches the directory; a
 * trial is due at t0 when the file is there and initial is set. */
static int watch_path(int ifd, kb__watched *w, const char *path, int initial, uint64_t t0)
{
    snprintf(w->path, sizeof w->path, "%s", path);
    const char *slash = strrchr(w->path, '/');
    snprintf(w->base, sizeof w->base, "%.255s", slash ? slash + 1 : w->path);
    if (slash == w->path)
        snprintf(w->dir, sizeof w->dir, "/");
    else if (slash)
        snprintf(w->dir, sizeof w->dir, "%.*s", (int)(slash - w->path), w->path);
    else
        snprintf(w->dir, sizeof w->dir, ".");
    if (!w->base[0] || add_watch(ifd, w) < 0) {
        fprintf(stderr, "kbench watch: cannot watch the directory of %s (%s): %s\n", w->path,
                w->dir, w->base[0] ? strerror(errno) : "no file name");
        return -1;
    }
    if (initial && access(w->path, F_OK) == 0) {
        w->event_ns = w->due_ns = t0;
        w->due_trial = 1;
    } else if (access(w->path, F_OK) != 0)
        w->gone_noted = 1;
    return 0;
}

typedef struct kb__watch {
    kb__watched *ws;
    int n, ifd, sp[2];
    uint64_t debounce_ns, rewatch_ns, trials;
    kb__ctx_cache cache;
} kb__watch;

/* One inotify event: pushes the deadline of the name it is about back. */
static void on_event(kb__watch *W, const struct inotify_event *ev, uint64_t now)
{
    for (int i = 0; i < W->n; i++) {
        kb__watched *w = &W->ws[i];
        if (ev->mask & IN_Q_OVERFLOW) {
            w->event_ns = now;
            w->due_ns = now + W->debounce_ns;
            w->due_trial = 1;
        } else if (ev->wd == w->wd && (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) {
            if (w->wd >= 0)
                fprintf(stderr,
                        "kbench watch: directory %s went away; watching for it to come "
                        "back\n",
                        w->dir);
            inotify_rm_watch(W->ifd, w->wd);
            w->wd = -1;
            W->rewatch_ns = now + 500000000u;
        } else if (ev->wd == w->wd && ev->len && !strcmp(ev->name, w->base)) {
            /* A linker unlinks the old file and writes a new one: the delete
             * only asks for a look later, the close or the rename is the new
             * build. */
            if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
                w->event_ns = now;
                w->due_trial = 1;
            }
            w->due_ns = now + W->debounce_ns;
        }
    }
}

/* Waits for a change, a signal or the next deadline, and takes in the
 * changes. -1 when poll failed. */
static int wait_changes(kb__watch *W)
{
    uint64_t now = kb__now_ns(), next = 0;
    for (int i = 0; i < W->n; i++)
        if (W->ws[i].due_ns && (!next || W->ws[i].due_ns < next)) next = W->ws[i].due_ns;
    if (W->rewatch_ns && (!next || W->rewatch_ns < next)) next = W->rewatch_ns;
    int timeout = -1;
    if (next) timeout = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
    struct pollfd pfd[2] = {{W->ifd, POLLIN, 0}, {W->sp[0], POLLIN, 0}};
    int pr = poll(pfd, 2, timeout);
    if (pr < 0 && errno != EINTR) return -1;
    if (pfd[1].revents) {
        char b[16];
        while (read(W->sp[0], b, sizeof b) > 0) {
        }
    }
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (ssize_t len; pfd[0].revents && (len = read(W->ifd, buf, sizeof buf)) > 0;) {
        now = kb__now_ns();
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            on_event(W, ev, now);
        }
    }
    return 0;
}

/* Watches directories that went away again once they are back. */
static void rewatch(kb__watch *W, uint64_t now)
{
    if (!W->rewatch_ns || W->rewatch_ns > now) return;
    W->rewatch_ns = 0;
    for (int i = 0; i < W->n; i++) {
        kb__watched *w = &W->ws[i];
        if (w->wd >= 0) continue;
        if (add_watch(W->ifd, w) >= 0) {
            fprintf(stderr, "kbench watch: watching %s again\n", w->dir);
            w->event_ns = now;
            w->due_ns = now; /* whatever is there now is new */
            w->due_trial = 1;
        } else {
            W->rewatch_ns = now + 500000000u;
        }
    }
}

/* Runs the trials that are due. */
static void run_due(kb__watch *W, const kb__watch_cfg *cfg, uint64_t now)
{
    for (int i = 0; i < W->n && !g_stop; i++) {
        kb__watched *w = &W->ws[i];
        if (!w->due_ns || w->due_ns > now) continue;
        w->due_ns = 0;
        if (access(w->path, F_OK) != 0) {
            if (!w->gone_noted)
                fprintf(stderr, "kbench watch: %s was deleted; waiting for the next build\n",
                        w->path);
            w->gone_noted = 1;
            w->due_trial = 0;
            continue;
        }
        w->gone_noted = 0;
        if (!w->due_trial) continue; /* replaced, and still being written */
        w->due_trial = 0;
        W->trials++;
        run_one(cfg, &W->cache, w, W->trials);
        if (cfg->max_trials > 0 && (double)W->trials >= cfg->max_trials) break;
    }
}

static void on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* poll below returns EINTR all the same */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void watch_close(kb__watch *W)
{
    kb__ctx_cache_free(&W->cache);
    g_wake = -1;
    if (W->sp[0] >= 0) close(W->sp[0]);
    if (W->sp[1] >= 0) close(W->sp[1]);
    if (W->ifd >= 0) close(W->ifd);
    free(W->ws);
}

int kb__cli_watch(int argc, char **argv)
{
    kb__watch_cfg cfg;
    int n, rc = parse(argc, argv, &cfg, &n);
    if (rc || !n) return rc;
    kb__watch W;
    memset(&W, 0, sizeof W);
    W.n = n;
    W.sp[0] = W.sp[1] = -1;
    W.ws = calloc((size_t)n, sizeof *W.ws);
    W.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (!W.ws || W.ifd < 0 || pipe2(W.sp, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "kbench watch: cannot start: %s\n", strerror(errno));
        watch_close(&W);
        return KB__EXIT_SOFTWARE;
    }
    const uint64_t t0 = kb__now_ns();
    for (int i = 0; i < n; i++)
        if (watch_path(W.ifd, &W.ws[i], argv[optind + i], cfg.initial, t0) != 0) {
            watch_close(&W);
            return KB__EXIT_USAGE;
        }
    g_wake = W.sp[1];
    on_signals();
    fprintf(stderr, "kbench watch: watching %d candidate(s); Ctrl-C to stop\n", n);
    W.debounce_ns = (uint64_t)(cfg.debounce_ms * 1e6);
    while (!g_stop && (cfg.max_trials <= 0 || (double)W.trials < cfg.max_trials)) {
        if (wait_changes(&W) != 0) break;
        uint64_t now = kb__now_ns();
        rewatch(&W, now);
        run_due(&W, &cfg, now);
    }
    fprintf(stderr,
            "kbench watch: stopped after %llu trial(s); inputs built %llu time(s), reused %llu\n",
            (unsigned long long)W.trials, (unsigned long long)W.cache.builds,
            (unsigned long long)W.cache.hits);
    watch_close(&W);
    return 0;
}
