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
#include "session.h"
#include "report.h"

#define KB__WATCH_MAX 16
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
    "  outside_ms:  the rest: debounce, noticing the change, printing\n"
    "  batches_ms:  inside the trial, the timed batches of both sides\n"
    "  warm:        yes when the inputs and oracle outputs were reused\n"
    "and appends to --ledger. Crashes, rejects, half-written and deleted files do not stop\n"
    "it; Ctrl-C does (after the running trial; twice: at once).\n"
    "\n"
    "options: --against oracle|best|FILE.so, --budget S, --cases SEL, --min-gain PCT,\n"
    "  --worst-case PCT, --ledger FILE, --description TEXT, --oracles DIR, --seed N,\n"
    "  --state DIR, -q: as for `kbench trial`.\n"
    "  --debounce MS     quiet time after the last change before a trial (default 30)\n"
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
    kb__trial_opts o;
    const char *ledger, *desc, *state;
    int json, quiet;
} kb__watch_cfg;

static void run_one(const kb__watch_cfg *cfg, kb__ctx_cache *cache, kb__watched *w)
{
    kb__trial_opts o = cfg->o;
    o.candidate = w->path;
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return;
    kb__best_info bi;
    char err[1024];
    const uint64_t builds = cache->builds;
    snprintf(r->description, sizeof r->description, "%s", cfg->desc);
    g_in_trial = 1;
    int rc = kb__trial_any(&o, cfg->state, cache, r, &bi, err, sizeof err);
    g_in_trial = 0;
    const double reload = (double)(kb__now_ns() - w->event_ns) / 1e6;
    if (rc != 0) {
        fprintf(stderr, "kbench watch: %s: %s\n", w->path, err);
        free(r);
        return;
    }
    /* A build rejected before it could name its target (a truncated file)
     * is still this file's trial: the ledger line says which target. */
    if (r->target[0])
        snprintf(w->target, sizeof w->target, "%s", r->target);
    else
        snprintf(r->target, sizeof r->target, "%s", w->target);
    kb__best_describe(&bi, cfg->desc, r->description, sizeof r->description);
    if (cfg->ledger) kb__git_commit(w->path, r->git_commit, sizeof r->git_commit);
    const double meas = batches_ms(r), trial = r->trial_seconds * 1e3;
    const int warm = cache->builds == builds;
    if (cfg->json) {
        json_t *doc = kb__result_to_json(r, &bi);
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
        if (!cfg->quiet && isatty(1) && r->n_cases) kb__result_print_table(r, stdout);
        kb__result_print_block(r, stdout);
        kb__best_print(&bi, stdout);
        printf("reload_ms: %.1f\ntrial_ms: %.1f\noutside_ms: %.1f\nbatches_ms: %.1f\nwarm: %s\n\n",
               reload, trial, reload - trial, meas, warm ? "yes" : "no");
    }
    fflush(stdout);
    if (cfg->ledger && !o.verify_only && kb__ledger_append(cfg->ledger, r, err, sizeof err) != 0)
        fprintf(stderr, "kbench watch: %s\n", err);
    free(r);
}

int kb__cli_watch(int argc, char **argv)
{
    static const struct option opts[] = {{"against", required_argument, 0, 'a'},
                                         {"budget", required_argument, 0, 'b'},
                                         {"cases", required_argument, 0, 'c'},
                                         {"min-gain", required_argument, 0, 'g'},
                                         {"worst-case", required_argument, 0, 'w'},
                                         {"ledger", required_argument, 0, 'l'},
                                         {"description", required_argument, 0, 'd'},
                                         {"oracles", required_argument, 0, 'o'},
                                         {"seed", required_argument, 0, 's'},
                                         {"state", required_argument, 0, 'T'},
                                         {"debounce", required_argument, 0, 'D'},
                                         {"no-initial", no_argument, 0, 'N'},
                                         {"max-trials", required_argument, 0, 'M'},
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    kb__watch_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.o.budget = 2.0;
    cfg.o.rule.min_gain = 0.01;
    cfg.o.rule.worst_case = 0.05;
    cfg.o.exe = kb__worker_exe();
    cfg.desc = "";
    double debounce_ms = 30, max_trials = 0;
    int initial = 1, bad = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "qh", opts, NULL)) != -1;) {
        switch (c) {
        case 'a': cfg.o.against = optarg; break;
        case 'b': cfg.o.budget = kb__parse_num(optarg, "--budget", &bad); break;
        case 'c': cfg.o.cases = optarg; break;
        case 'g': cfg.o.rule.min_gain = kb__parse_num(optarg, "--min-gain", &bad) / 100.0; break;
        case 'w':
            cfg.o.rule.worst_case = kb__parse_num(optarg, "--worst-case", &bad) / 100.0;
            break;
        case 'l': cfg.ledger = optarg; break;
        case 'd': cfg.desc = optarg; break;
        case 'o': cfg.o.oracles_dir = optarg; break;
        case 's': cfg.o.seed = strtoull(optarg, NULL, 0); break;
        case 'T': cfg.state = optarg; break;
        case 'D': debounce_ms = kb__parse_num(optarg, "--debounce", &bad); break;
        case 'N': initial = 0; break;
        case 'M': max_trials = kb__parse_num(optarg, "--max-trials", &bad); break;
        case 'j': cfg.json = 1; break;
        case 'q': cfg.quiet = 1; break;
        case 'h': fputs(WATCH_HELP, stdout); return 0;
        default: bad = 1;
        }
    }
    const int n = argc - optind;
    if (bad || n < 1 || n > KB__WATCH_MAX) {
        if (!bad)
            fprintf(stderr, "kbench watch: expected 1 to %d candidate .so files\n", KB__WATCH_MAX);
        fputs(WATCH_HELP, stderr);
        return KB__EXIT_USAGE;
    }
    if (cfg.o.budget <= 0 || cfg.o.budget > 3600) {
        fprintf(stderr, "kbench watch: --budget must be in (0, 3600] seconds\n");
        return KB__EXIT_USAGE;
    }
    kb__watched *ws = calloc((size_t)n, sizeof *ws);
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), sp[2] = {-1, -1};
    if (!ws || ifd < 0 || pipe2(sp, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "kbench watch: cannot start: %s\n", strerror(errno));
        free(ws);
        if (ifd >= 0) close(ifd);
        return KB__EXIT_SOFTWARE;
    }
    const uint64_t t0 = kb__now_ns();
    for (int i = 0; i < n; i++) {
        kb__watched *w = &ws[i];
        snprintf(w->path, sizeof w->path, "%s", argv[optind + i]);
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
            free(ws);
            close(ifd);
            return KB__EXIT_USAGE;
        }
        if (initial && access(w->path, F_OK) == 0) {
            w->event_ns = w->due_ns = t0;
            w->due_trial = 1;
        } else if (access(w->path, F_OK) != 0)
            w->gone_noted = 1;
    }
    g_wake = sp[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* poll below returns EINTR all the same */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "kbench watch: watching %d candidate(s); Ctrl-C to stop\n", n);

    kb__ctx_cache cache;
    memset(&cache, 0, sizeof cache);
    const uint64_t debounce_ns = (uint64_t)(debounce_ms * 1e6);
    uint64_t trials = 0, rewatch_ns = 0;
    while (!g_stop && (max_trials <= 0 || (double)trials < max_trials)) {
        uint64_t now = kb__now_ns(), next = 0;
        for (int i = 0; i < n; i++)
            if (ws[i].due_ns && (!next || ws[i].due_ns < next)) next = ws[i].due_ns;
        if (rewatch_ns && (!next || rewatch_ns < next)) next = rewatch_ns;
        int timeout = -1;
        if (next) timeout = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
        struct pollfd pfd[2] = {{ifd, POLLIN, 0}, {sp[0], POLLIN, 0}};
        int pr = poll(pfd, 2, timeout);
        if (pr < 0 && errno != EINTR) break;
        if (pfd[1].revents) {
            char b[16];
            while (read(sp[0], b, sizeof b) > 0) {
            }
        }
        /* inotify: collect changes, push each name's deadline back */
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (ssize_t len; pfd[0].revents && (len = read(ifd, buf, sizeof buf)) > 0;) {
            now = kb__now_ns();
            for (char *p = buf; p < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)p;
                p += sizeof *ev + ev->len;
                for (int i = 0; i < n; i++) {
                    kb__watched *w = &ws[i];
                    if (ev->mask & IN_Q_OVERFLOW) {
                        w->event_ns = now;
                        w->due_ns = now + debounce_ns;
                        w->due_trial = 1;
                    } else if (ev->wd == w->wd &&
                               (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) {
                        if (w->wd >= 0)
                            fprintf(stderr,
                                    "kbench watch: directory %s went away; watching for it to come "
                                    "back\n",
                                    w->dir);
                        inotify_rm_watch(ifd, w->wd);
                        w->wd = -1;
                        rewatch_ns = now + 500000000u;
                    } else if (ev->wd == w->wd && ev->len && !strcmp(ev->name, w->base)) {
                        /* A linker unlinks the old file and writes a new one:
                         * the delete only asks for a look later, the close
                         * or the rename is the new build. */
                        if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
                            w->event_ns = now;
                            w->due_trial = 1;
                        }
                        w->due_ns = now + debounce_ns;
                    }
                }
            }
        }
        now = kb__now_ns();
        if (rewatch_ns && rewatch_ns <= now) {
            rewatch_ns = 0;
            for (int i = 0; i < n; i++) {
                if (ws[i].wd >= 0) continue;
                if (add_watch(ifd, &ws[i]) >= 0) {
                    fprintf(stderr, "kbench watch: watching %s again\n", ws[i].dir);
                    ws[i].event_ns = now;
                    ws[i].due_ns = now; /* whatever is there now is new */
                    ws[i].due_trial = 1;
                } else {
                    rewatch_ns = now + 500000000u;
                }
            }
        }
        for (int i = 0; i < n && !g_stop; i++) {
            kb__watched *w = &ws[i];
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
            run_one(&cfg, &cache, w);
            trials++;
            if (max_trials > 0 && (double)trials >= max_trials) break;
        }
    }
    fprintf(stderr,
            "kbench watch: stopped after %llu trial(s); inputs built %llu time(s), reused %llu\n",
            (unsigned long long)trials, (unsigned long long)cache.builds,
            (unsigned long long)cache.hits);
    kb__ctx_cache_free(&cache);
    g_wake = -1;
    close(sp[0]);
    close(sp[1]);
    close(ifd);
    free(ws);
    return 0;
}
