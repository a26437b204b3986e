/*
 * cli_log.c -- the ledger read back: `kbench log` (a table, best so far
 * marked) and `kbench report --plot` (the history, drawn by gnuplot).
 *
 * A v2 ledger (ledger.h) says what each trial ran against and its ratio to
 * the oracle in columns of their own; only that column is ever shown or
 * drawn as a ratio to the oracle, so a trial against another file has none.
 * A v1 ledger has neither: a trial `--against best` carried them in its
 * description's tag "[vs best <digest>; oracle_ratio X; promoted]", and a
 * line without the tag is taken as a trial against the oracle, the default
 * (v1 did not record any other baseline).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "report.h"
#include "session.h"
#include "ledger.h"

typedef struct kb__row {
    char *f[KB__LF_N2];  /* a v1 line's v2 fields are "" */
    const char *against; /* "oracle", "best" or the baseline's path */
    double ratio;        /* against its baseline, NAN if not timed */
    double oracle_ratio; /* NAN when unknown */
    double best;         /* its target's best kept oracle_ratio so far, NAN before any */
    int kept, failed, new_best;
} kb__row;

typedef struct kb__tbest {
    char target[64];
    double best;
} kb__tbest;

typedef struct kb__rows {
    kb__row *v;
    size_t n, cap;
    kb__tbest *t; /* the best so far of each target, in order of first trial */
    size_t nt;
} kb__rows;

static double num(const char *s)
{
    char *end;
    double v = s ? strtod(s, &end) : NAN;
    return s && end != s ? v : NAN;
}

static int is_failure(const char *st)
{
    return !strcmp(st, "incorrect") || !strcmp(st, "crash") || !strcmp(st, "timeout") ||
           !strcmp(st, "rejected");
}

/* The best so far of `target`, added at NAN the first time. */
static double *target_best(kb__rows *rows, const char *target)
{
    for (size_t i = 0; i < rows->nt; i++)
        if (!strcmp(rows->t[i].target, target)) return &rows->t[i].best;
    kb__tbest *t = realloc(rows->t, (rows->nt + 1) * sizeof *t);
    if (!t) return NULL;
    rows->t = t;
    snprintf(t[rows->nt].target, sizeof t[rows->nt].target, "%s", target);
    t[rows->nt].best = NAN;
    return &t[rows->nt++].best;
}

/* What a line says about its baseline: from the v2 columns, else from a v1
 * description's tag. Returns whether it was promoted. */
static int baseline(kb__row *r, int version)
{
    static char empty[] = "";
    if (version >= 2) {
        r->against = r->f[KB__LF_AGAINST];
        r->oracle_ratio = num(r->f[KB__LF_ORACLE_RATIO]);
        return !strcmp(r->f[KB__LF_PROMOTED], "yes");
    }
    for (int k = KB__LF_N1; k < KB__LF_N2; k++) r->f[k] = empty;
    const char *d = r->f[KB__LF_DESC];
    const char *tag = strncmp(d, "[vs ", 4) ? NULL : strstr(d, "oracle_ratio ");
    r->against = !tag ? "oracle" : !strncmp(d, "[vs best ", 9) ? "best" : "oracle";
    r->oracle_ratio = tag ? num(tag + 13) : r->ratio;
    return tag && strstr(d, "; promoted]") != NULL;
}

/* Splits one line into r; 0 when it has the fields of its version. */
static int parse_row(char *line, int version, kb__row *r)
{
    static char empty[] = "";
    const int want = version >= 2 ? KB__LF_N2_MIN : KB__LF_N1;
    const int most = version >= 2 ? KB__LF_N2 : KB__LF_N1;
    memset(r, 0, sizeof *r);
    char *p = strdup(line);
    int k = 0;
    for (; k < most && p; k++) {
        r->f[k] = p;
        p = strchr(p, '\t');
        if (p) *p++ = 0;
    }
    if (k < want) {
        free(r->f[0]);
        return -1;
    }
    if (version >= 2 && p) *strchrnul(p, '\t') = 0; /* columns of a newer version */
    for (; k < KB__LF_N2; k++) r->f[k] = empty;     /* a v2 line without env */
    return 0;
}

static int push(kb__rows *rows, const kb__row *r)
{
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        kb__row *v = realloc(rows->v, cap * sizeof *v);
        if (!v) return -1;
        rows->v = v;
        rows->cap = cap;
    }
    rows->v[rows->n++] = *r;
    return 0;
}

/* Judges a row against its target's best so far. In the --against best
 * ratchet a promotion is the new best by definition (it beat the old best
 * head to head, which is the sharper test), so the line follows it even
 * where its separately measured ratio to the oracle came out higher. Among
 * other trials the best is the lowest kept ratio to the oracle. */
static void judge(kb__rows *rows, kb__row *r, int promoted, const char *target)
{
    r->kept = !strcmp(r->f[KB__LF_STATUS], "keep");
    r->failed = is_failure(r->f[KB__LF_STATUS]);
    double *best = target_best(rows, target ? target : r->f[KB__LF_TARGET]);
    if (!best) return;
    if (r->kept && isfinite(r->oracle_ratio) && (promoted || !(r->oracle_ratio >= *best))) {
        *best = r->oracle_ratio;
        r->new_best = 1;
    }
    r->best = *best;
}

static FILE *open_ledger(const char *path, int *version)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "kbench: %s: %s; pass --ledger FILE (the results.tsv trials append to)\n",
                path, strerror(errno));
        return NULL;
    }
    size_t cap = 0;
    char *line = NULL;
    *version = getline(&line, &cap, f) < 0 ? 0 : kb__ledger_header_version(line);
    free(line);
    if (*version == 0) {
        fprintf(
            stderr,
            "kbench: %s is not a kbench ledger (its first line is not the results.tsv header)\n",
            path);
        fclose(f);
    }
    return *version ? f : NULL;
}

/* Reads the ledger, v1 or v2; rows of other targets are skipped when target
 * is set. */
static int load(const char *path, const char *target, kb__rows *rows)
{
    memset(rows, 0, sizeof *rows);
    int version;
    FILE *f = open_ledger(path, &version);
    if (!f) return KB__EXIT_USAGE;
    size_t cap = 0;
    char *line = NULL;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = 0;
        kb__row r;
        if (parse_row(line, version, &r) != 0) continue;
        /* a candidate rejected before it named its target has "n/a": it is
         * shown under every target rather than lost */
        const char *t = r.f[KB__LF_TARGET];
        if (target && strcmp(t, target) && strcmp(t, "n/a")) {
            free(r.f[0]);
            continue;
        }
        r.ratio = num(r.f[KB__LF_GEO]);
        judge(rows, &r, baseline(&r, version), target);
        if (push(rows, &r) != 0) {
            free(r.f[0]);
            break;
        }
    }
    free(line);
    fclose(f);
    /* rows that could belong to any target do not make a history on their own */
    size_t own = 0;
    for (size_t i = 0; i < rows->n; i++)
        own += !target || !strcmp(rows->v[i].f[KB__LF_TARGET], target);
    if (!own) {
        for (size_t i = 0; i < rows->n; i++) free(rows->v[i].f[0]);
        rows->n = 0;
    }
    return 0;
}

static void unload(kb__rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) free(rows->v[i].f[0]);
    free(rows->v);
    free(rows->t);
}

static void fmt_ratio(char *out, size_t n, double v)
{
    if (isfinite(v))
        snprintf(out, n, "%.4f", v);
    else
        snprintf(out, n, "-");
}

static const char LOG_HELP[] =
    "usage: kbench log [--ledger results.tsv] [--target T]\n"
    "\n"
    "Prints the ledger as a table, oldest first: status, the baseline the trial ran against\n"
    "(oracle, best, or a file), the ratio to that baseline with its 90% CI, the ratio to the\n"
    "oracle, and the best so far of the trial's target ('*' where a trial set a new best).\n"
    "The ratio to the oracle is the geomean of a trial against the oracle, or the\n"
    "oracle_ratio of a trial --against best; a trial against another file has none. The\n"
    "best so far is the last promoted candidate of an --against best ratchet, else the\n"
    "lowest kept ratio to the oracle. v1 and v2 ledgers are read alike; a v1 line that\n"
    "is not --against best is taken as a trial against the oracle.\n";

/* The baseline as the table shows it: oracle, best, or the file's name. */
static const char *against_name(const kb__row *r)
{
    const char *slash = strrchr(r->against, '/');
    return slash ? slash + 1 : r->against;
}

static void print_row(size_t i, const kb__row *r)
{
    char ratio[16], ci[40], orat[16], best[16];
    fmt_ratio(ratio, sizeof ratio, r->ratio);
    fmt_ratio(orat, sizeof orat, r->oracle_ratio);
    fmt_ratio(best, sizeof best, r->best);
    const double lo = num(r->f[KB__LF_LO]), hi = num(r->f[KB__LF_HI]);
    if (isfinite(lo) && isfinite(hi))
        snprintf(ci, sizeof ci, "[%.3f, %.3f]", lo, hi);
    else
        snprintf(ci, sizeof ci, "-");
    const char *cand = r->f[KB__LF_CAND], *slash = strrchr(cand, '/');
    printf("%4zu  %-20.20s  %-18.18s  %-12s  %-12.12s  %7s  %-17s  %9s  %8s%c  %s: %.70s\n", i + 1,
           r->f[KB__LF_TS], r->f[KB__LF_TARGET], r->f[KB__LF_STATUS], against_name(r), ratio, ci,
           orat, best, r->new_best ? '*' : ' ', slash ? slash + 1 : cand, r->f[KB__LF_DESC]);
}

/* The closing line: counts, and the best so far of the target (of each
 * target, when the ledger holds several and no --target picked one). */
static void print_summary(const kb__rows *rows, const char *target)
{
    size_t kept = 0, failed = 0;
    for (size_t i = 0; i < rows->n; i++) {
        kept += (size_t)rows->v[i].kept;
        failed += (size_t)rows->v[i].failed;
    }
    char best[16];
    printf("%zu trial(s), %zu kept, %zu failed; best so far, ratio to the oracle:", rows->n, kept,
           failed);
    /* with --target every row counts for it; without, "n/a" rows have no best */
    size_t named = 0, one = 0;
    for (size_t i = 0; i < rows->nt; i++)
        if (target || strcmp(rows->t[i].target, "n/a")) named++, one = i;
    if (named <= 1) {
        fmt_ratio(best, sizeof best, named && rows->n ? rows->t[one].best : NAN);
        printf(" %s\n", best);
        return;
    }
    for (size_t i = 0, k = 0; i < rows->nt; i++) {
        if (!strcmp(rows->t[i].target, "n/a")) continue;
        fmt_ratio(best, sizeof best, rows->t[i].best);
        printf("%s %s %s", k++ ? "," : "", rows->t[i].target, best);
    }
    putchar('\n');
}

int kb__cli_log(int argc, char **argv)
{
    struct option opts[4];
    kb__longopts("ledger target help", opts, sizeof opts / sizeof opts[0]);
    const char *ledger = "results.tsv", *target = NULL;
    const kb__cmdline cl = {"log", LOG_HELP, "h", opts};
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        if (c == 'l')
            ledger = optarg;
        else if (c == 't')
            target = optarg;
        else if (c == 'h')
            return fputs(LOG_HELP, stdout), 0;
        else
            return KB__EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, "kbench log: takes no operands, got '%s'\n", argv[optind]);
        return kb__usage("log", LOG_HELP);
    }
    kb__rows rows;
    int rc = load(ledger, target, &rows);
    if (rc) return rc;
    printf("%4s  %-20s  %-18s  %-12s  %-12s  %7s  %-17s  %9s  %9s  %s\n", "#", "time (UTC)",
           "target", "status", "against", "ratio", "ci90", "vs_oracle", "best",
           "candidate: description");
    for (size_t i = 0; i < rows.n; i++) print_row(i, &rows.v[i]);
    print_summary(&rows, target);
    unload(&rows);
    return 0;
}

static const char REPORT_HELP[] =
    "usage: kbench report --target T --plot OUT.png [--ledger results.tsv] [--title TEXT]\n"
    "\n"
    "Draws the experiment history of target T with gnuplot (package gnuplot-nox): the ratio\n"
    "to the oracle of every timed trial (log scale, lower is faster), kept trials\n"
    "highlighted, the best kept ratio so far as a step line, and failed trials (incorrect,\n"
    "crash, timeout, rejected) as crosses along the top. A trial against another file has\n"
    "no ratio to the oracle and no point.\n";

typedef struct kb__report_args {
    const char *ledger, *target, *plot, *title;
} kb__report_args;

/* 0, or the exit code of a usage error or --help (with *done). */
static int report_args(int argc, char **argv, kb__report_args *a, int *done)
{
    struct option opts[8];
    kb__longopts("ledger target plot title help", opts, sizeof opts / sizeof opts[0]);
    memset(a, 0, sizeof *a);
    a->ledger = "results.tsv";
    const kb__cmdline cl = {"report", REPORT_HELP, "h", opts};
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        if (c == 'l')
            a->ledger = optarg;
        else if (c == 't')
            a->target = optarg;
        else if (c == 'p')
            a->plot = optarg;
        else if (c == 'i')
            a->title = optarg;
        else if (c == 'h')
            return fputs(REPORT_HELP, stdout), *done = 1, 0;
        else
            return KB__EXIT_USAGE;
    }
    if (!a->target || !a->plot || optind != argc) {
        fputs("kbench report: needs --target and --plot, and no operands\n", stderr);
        return kb__usage("report", REPORT_HELP);
    }
    /* they go into gnuplot's double-quoted strings, where a backquote runs a
     * shell command */
    if (strpbrk(a->plot, "\"\n`") || strpbrk(a->target, "\"\n\\`") ||
        (a->title && strpbrk(a->title, "\"\n\\`"))) {
        fprintf(stderr, "kbench report: --plot, --target and --title may not contain quotes, "
                        "backquotes or newlines\n");
        return KB__EXIT_USAGE;
    }
    return 0;
}

/* The axes and labels: a log axis fitted to the ratios to the oracle. */
static void plot_frame(FILE *g, const kb__report_args *a, const kb__rows *rows, double *yfail)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t kept = 0, failed = 0;
    for (size_t i = 0; i < rows->n; i++) {
        double v = rows->v[i].oracle_ratio;
        if (isfinite(v) && v > 0) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        kept += (size_t)rows->v[i].kept;
        failed += (size_t)rows->v[i].failed;
    }
    if (!isfinite(lo)) lo = 0.5, hi = 1;
    const double ymin = lo / 1.25, ymax = hi * 1.6;
    *yfail = hi * 1.3;
    fprintf(g, "set terminal pngcairo size 1100,600 font 'sans,11'\nset output \"%s\"\n", a->plot);
    fprintf(g, "set title \"%s\"\n", a->title ? a->title : "");
    if (!a->title)
        fprintf(g, "set title \"%s: %zu trials, %zu kept, %zu failed\"\n", a->target, rows->n, kept,
                failed);
    fprintf(g,
            "set xlabel 'trial'\nset ylabel 'time / oracle time (geomean over cases; lower is "
            "faster)'\n"
            "set logscale y\nset yrange [%g:%g]\nset xrange [0.5:%zu.5]\nset grid ytics\n"
            "set format y '%%.2f'\nset key outside top center horizontal\n"
            "set datafile missing 'NaN'\n",
            ymin, ymax, rows->n);
    /* a log axis only ticks powers of ten; ratios live between them */
    fputs("set ytics (", g);
    static const double tics[] = {0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2,
                                  0.25, 0.3,  0.4,  0.5,  0.6,  0.7, 0.8,  0.9,
                                  1,    1.25, 1.5,  2,    3,    5,   10};
    for (size_t i = 0; i < sizeof tics / sizeof tics[0]; i++)
        fprintf(g, "%s%g", i ? ", " : "", tics[i]);
    fputs(")\n", g);
    if (rows->n <= 40) fputs("set xtics 1\n", g);
    if (ymin < 1 && ymax > 1)
        fputs("set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#555555'\n",
              g);
}

/* The points: only ratios to the oracle, never a ratio to another file. */
static void plot_data(FILE *g, const kb__rows *rows, double yfail)
{
    fprintf(g, "$d << EOD\n");
    for (size_t i = 0; i < rows->n; i++) {
        const kb__row *r = &rows->v[i];
        fprintf(g, "%zu %.6g %.6g %.6g %.6g\n", i + 1,
                isfinite(r->oracle_ratio) ? r->oracle_ratio : NAN,
                r->kept && isfinite(r->oracle_ratio) ? r->oracle_ratio : NAN,
                isfinite(r->best) ? r->best : NAN, r->failed ? yfail : NAN);
    }
    fprintf(g, "EOD\n");
    fprintf(g, "plot $d using 1:4 with steps lw 2 lc rgb '#d73027' title 'best so far', \\\n"
               "     $d using 1:2 with points pt 7 ps 1.0 lc rgb '#8c8c8c' title 'trial', \\\n"
               "     $d using 1:3 with points pt 7 ps 2.0 lc rgb '#1a9850' title 'kept', \\\n"
               "     $d using 1:5 with points pt 2 ps 1.8 lw 2 lc rgb '#b2182b' "
               "title 'failed (incorrect, crash, timeout, rejected)'\n");
}

static int plot(const kb__report_args *a, const kb__rows *rows)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr,
                "kbench report: gnuplot not found; install it (apt-get install gnuplot-nox) "
                "or read the table from `kbench log`\n");
        return KB__EXIT_SOFTWARE;
    }
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        fprintf(stderr, "kbench report: cannot run gnuplot: %s\n", strerror(errno));
        return KB__EXIT_SOFTWARE;
    }
    double yfail;
    plot_frame(g, a, rows, &yfail);
    plot_data(g, rows, yfail);
    int st = pclose(g);
    if (st != 0) {
        fprintf(stderr, "kbench report: gnuplot failed (status %d)\n", st);
        return KB__EXIT_SOFTWARE;
    }
    printf("%s: %zu trials of %s\n", a->plot, rows->n, a->target);
    return 0;
}

int kb__cli_report(int argc, char **argv)
{
    kb__report_args a;
    int done = 0, rc = report_args(argc, argv, &a, &done);
    if (rc || done) return rc;
    kb__rows rows;
    if ((rc = load(a.ledger, a.target, &rows)) != 0) return rc;
    if (rows.n == 0) {
        fprintf(stderr, "kbench report: no trials of target '%s' in %s\n", a.target, a.ledger);
        rc = 1;
    } else {
        rc = plot(&a, &rows);
    }
    unload(&rows);
    return rc;
}
