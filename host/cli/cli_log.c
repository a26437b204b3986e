/*
 * cli_log.c -- the ledger read back: `kbench log` (a table, best so far
 * marked) and `kbench report --plot` (the history, drawn by gnuplot).
 *
 * The ledger (ledger.c) records each trial's ratio against its baseline. A
 * trial against the oracle measures the ratio to the oracle directly; a
 * trial `--against best` carries it in its description's tag
 * "[vs best <digest>; oracle_ratio X]" (best.c). Trials against another
 * file say nothing about the oracle and are shown without one.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "session.h"
#include "report.h"

enum {
    F_TS,
    F_TARGET,
    F_CAND,
    F_DIGEST,
    F_ODIGEST,
    F_COMMIT,
    F_STATUS,
    F_GEO,
    F_LO,
    F_HI,
    F_WORST,
    F_SECS,
    F_DESC,
    F_N
};

typedef struct kb__row {
    char *f[F_N];
    double ratio;        /* against its baseline, NAN if not timed */
    double oracle_ratio; /* NAN when unknown */
    double best;         /* best kept oracle_ratio so far, NAN before any */
    int kept, failed, new_best;
} kb__row;

typedef struct kb__rows {
    kb__row *v;
    size_t n, cap;
    char *text;
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

/* Reads the ledger; rows of other targets are skipped when target is set. */
static int load(const char *path, const char *target, kb__rows *rows)
{
    memset(rows, 0, sizeof *rows);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "kbench: %s: %s; pass --ledger FILE (the results.tsv trials append to)\n",
                path, strerror(errno));
        return KB__EXIT_USAGE;
    }
    size_t cap = 0;
    char *line = NULL;
    ssize_t n = getline(&line, &cap, f);
    static const char header[] = KB__LEDGER_HEADER;
    if (n < 0 || strcmp(line, header) != 0) {
        fprintf(
            stderr,
            "kbench: %s is not a kbench ledger (its first line is not the results.tsv header)\n",
            path);
        free(line);
        fclose(f);
        return KB__EXIT_USAGE;
    }
    double best = NAN;
    while ((n = getline(&line, &cap, f)) > 0) {
        line[strcspn(line, "\n")] = 0;
        kb__row r;
        memset(&r, 0, sizeof r);
        char *dup = strdup(line), *p = dup;
        int k = 0;
        for (; k < F_N && p; k++) {
            r.f[k] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        /* a candidate rejected before it named its target has "n/a": it is
         * shown under every target rather than lost */
        if (k < F_N || (target && strcmp(r.f[F_TARGET], target) && strcmp(r.f[F_TARGET], "n/a"))) {
            free(dup);
            continue;
        }
        r.ratio = num(r.f[F_GEO]);
        const char *tag =
            strncmp(r.f[F_DESC], "[vs ", 4) ? NULL : strstr(r.f[F_DESC], "oracle_ratio ");
        if (tag)
            r.oracle_ratio = num(tag + 13);
        else
            r.oracle_ratio = r.ratio; /* a plain trial: against the oracle */
        r.kept = !strcmp(r.f[F_STATUS], "keep");
        r.failed = is_failure(r.f[F_STATUS]);
        /* In the --against best ratchet a promotion is the new best by
         * definition (it beat the old best head to head, which is the sharper
         * test), so the line follows it even where its separately measured
         * ratio to the oracle came out higher. Among plain trials the best
         * is the lowest kept ratio. */
        const int promoted = tag && strstr(r.f[F_DESC], "; promoted]") != NULL;
        if (r.kept && isfinite(r.oracle_ratio) && (promoted || !(r.oracle_ratio >= best))) {
            best = r.oracle_ratio;
            r.new_best = 1;
        }
        r.best = best;
        if (rows->n == rows->cap) {
            rows->cap = rows->cap ? rows->cap * 2 : 64;
            kb__row *v = realloc(rows->v, rows->cap * sizeof *v);
            if (!v) {
                free(dup);
                break;
            }
            rows->v = v;
        }
        rows->v[rows->n++] = r;
    }
    free(line);
    fclose(f);
    /* rows that could belong to any target do not make a history on their own */
    size_t own = 0;
    for (size_t i = 0; i < rows->n; i++) own += !target || !strcmp(rows->v[i].f[F_TARGET], target);
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
    "Prints the ledger as a table, oldest first: status, ratio to the baseline with its 90%\n"
    "CI, ratio to the oracle, and the best so far ('*' where a trial set a new best). The\n"
    "ratio to the oracle is the geomean of a trial against the oracle, or the oracle_ratio\n"
    "tag of a trial --against best. The best so far is the last promoted candidate of an\n"
    "--against best ratchet, else the lowest kept ratio to the oracle.\n";

int kb__cli_log(int argc, char **argv)
{
    static const struct option opts[] = {{"ledger", required_argument, 0, 'l'},
                                         {"target", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *ledger = "results.tsv", *target = NULL;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (c == 'l')
            ledger = optarg;
        else if (c == 't')
            target = optarg;
        else if (c == 'h')
            return fputs(LOG_HELP, stdout), 0;
        else
            return fputs(LOG_HELP, stderr), KB__EXIT_USAGE;
    }
    if (optind != argc) return fputs(LOG_HELP, stderr), KB__EXIT_USAGE;
    kb__rows rows;
    int rc = load(ledger, target, &rows);
    if (rc) return rc;
    printf("%4s  %-20s  %-18s  %-12s  %7s  %-17s  %9s  %9s  %s\n", "#", "time (UTC)", "target",
           "status", "ratio", "ci90", "vs_oracle", "best", "candidate: description");
    for (size_t i = 0; i < rows.n; i++) {
        const kb__row *r = &rows.v[i];
        char ratio[16], ci[40], orat[16], best[16];
        fmt_ratio(ratio, sizeof ratio, r->ratio);
        fmt_ratio(orat, sizeof orat, r->oracle_ratio);
        fmt_ratio(best, sizeof best, r->best);
        if (isfinite(num(r->f[F_LO])) && isfinite(num(r->f[F_HI])))
            snprintf(ci, sizeof ci, "[%.3f, %.3f]", num(r->f[F_LO]), num(r->f[F_HI]));
        else
            snprintf(ci, sizeof ci, "-");
        const char *slash = strrchr(r->f[F_CAND], '/');
        printf("%4zu  %-20.20s  %-18.18s  %-12s  %7s  %-17s  %9s  %8s%c  %s: %.70s\n", i + 1,
               r->f[F_TS], r->f[F_TARGET], r->f[F_STATUS], ratio, ci, orat, best,
               r->new_best ? '*' : ' ', slash ? slash + 1 : r->f[F_CAND], r->f[F_DESC]);
    }
    size_t kept = 0, failed = 0;
    for (size_t i = 0; i < rows.n; i++) {
        kept += (size_t)rows.v[i].kept;
        failed += (size_t)rows.v[i].failed;
    }
    char best[16];
    fmt_ratio(best, sizeof best, rows.n ? rows.v[rows.n - 1].best : NAN);
    printf("%zu trial(s), %zu kept, %zu failed; best so far, ratio to the oracle: %s\n", rows.n,
           kept, failed, best);
    unload(&rows);
    return 0;
}

static const char REPORT_HELP[] =
    "usage: kbench report --target T --plot OUT.png [--ledger results.tsv] [--title TEXT]\n"
    "\n"
    "Draws the experiment history of target T with gnuplot (package gnuplot-nox): the ratio\n"
    "to the oracle of every timed trial (log scale, lower is faster), kept trials\n"
    "highlighted, the best kept ratio so far as a step line, and failed trials (incorrect,\n"
    "crash, timeout, rejected) as crosses along the top.\n";

int kb__cli_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ledger", required_argument, 0, 'l'}, {"target", required_argument, 0, 't'},
        {"plot", required_argument, 0, 'p'},   {"title", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *ledger = "results.tsv", *target = NULL, *plot = NULL, *title = NULL;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (c == 'l')
            ledger = optarg;
        else if (c == 't')
            target = optarg;
        else if (c == 'p')
            plot = optarg;
        else if (c == 'T')
            title = optarg;
        else if (c == 'h')
            return fputs(REPORT_HELP, stdout), 0;
        else
            return fputs(REPORT_HELP, stderr), KB__EXIT_USAGE;
    }
    if (!target || !plot || optind != argc) return fputs(REPORT_HELP, stderr), KB__EXIT_USAGE;
    /* they go into gnuplot's double-quoted strings, where a backquote runs a
     * shell command */
    if (strpbrk(plot, "\"\n`") || strpbrk(target, "\"\n\\`") ||
        (title && strpbrk(title, "\"\n\\`"))) {
        fprintf(stderr, "kbench report: --plot, --target and --title may not contain quotes, "
                        "backquotes or newlines\n");
        return KB__EXIT_USAGE;
    }
    kb__rows rows;
    int rc = load(ledger, target, &rows);
    if (rc) return rc;
    if (rows.n == 0) {
        fprintf(stderr, "kbench report: no trials of target '%s' in %s\n", target, ledger);
        unload(&rows);
        return 1;
    }
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr,
                "kbench report: gnuplot not found; install it (apt-get install gnuplot-nox) "
                "or read the table from `kbench log`\n");
        unload(&rows);
        return KB__EXIT_SOFTWARE;
    }
    double lo = INFINITY, hi = -INFINITY;
    size_t kept = 0, failed = 0;
    for (size_t i = 0; i < rows.n; i++) {
        double v = rows.v[i].oracle_ratio;
        if (isfinite(v) && v > 0) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        kept += (size_t)rows.v[i].kept;
        failed += (size_t)rows.v[i].failed;
    }
    if (!isfinite(lo)) lo = 0.5, hi = 1;
    const double ymin = lo / 1.25, ymax = hi * 1.6, yfail = hi * 1.3;
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        fprintf(stderr, "kbench report: cannot run gnuplot: %s\n", strerror(errno));
        unload(&rows);
        return KB__EXIT_SOFTWARE;
    }
    fprintf(g, "set terminal pngcairo size 1100,600 font 'sans,11'\nset output \"%s\"\n", plot);
    fprintf(g, "set title \"%s\"\n", title ? title : "");
    if (!title)
        fprintf(g, "set title \"%s: %zu trials, %zu kept, %zu failed\"\n", target, rows.n, kept,
                failed);
    fprintf(g,
            "set xlabel 'trial'\nset ylabel 'time / oracle time (geomean over cases; lower is "
            "faster)'\n"
            "set logscale y\nset yrange [%g:%g]\nset xrange [0.5:%zu.5]\nset grid ytics\n"
            "set format y '%%.2f'\nset key outside top center horizontal\n"
            "set datafile missing 'NaN'\n",
            ymin, ymax, rows.n);
    /* a log axis only ticks powers of ten; ratios live between them */
    fputs("set ytics (", g);
    static const double tics[] = {0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2,
                                  0.25, 0.3,  0.4,  0.5,  0.6,  0.7, 0.8,  0.9,
                                  1,    1.25, 1.5,  2,    3,    5,   10};
    for (size_t i = 0; i < sizeof tics / sizeof tics[0]; i++)
        fprintf(g, "%s%g", i ? ", " : "", tics[i]);
    fputs(")\n", g);
    if (rows.n <= 40) fputs("set xtics 1\n", g);
    if (ymin < 1 && ymax > 1)
        fputs("set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#555555'\n",
              g);
    fprintf(g, "$d << EOD\n");
    for (size_t i = 0; i < rows.n; i++) {
        const kb__row *r = &rows.v[i];
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
    int st = pclose(g);
    unload(&rows);
    if (st != 0) {
        fprintf(stderr, "kbench report: gnuplot failed (status %d)\n", st);
        return KB__EXIT_SOFTWARE;
    }
    printf("%s: %zu trials of %s\n", plot, (size_t)rows.n, target);
    return 0;
}
