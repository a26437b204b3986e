/*
 * test_ledger_read.c -- `kbench log` and `kbench report` on a v1 ledger (a
 * real one, tests/fixtures/ledger/v1.tsv, written by the kbench before v2)
 * and a v2 one: each target's own best, and a ratio against anything but
 * the oracle never shown or drawn as a ratio to the oracle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <math.h>

#include "kb_run.h"
#include "kb.h"
#include "ledger.h"

static char g_dir[256];

static int setup(void **s)
{
    (void)s;
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_ledger_read.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The table row of `kbench log` whose description is `desc` (static). */
static const char *row_of(const kb_run *r, const char *desc)
{
    static char row[1024];
    const char *p = strstr(r->out, desc);
    assert_non_null(p);
    const char *start = p;
    while (start > r->out && start[-1] != '\n') start--;
    size_t n = strcspn(start, "\n");
    snprintf(row, sizeof row, "%.*s", (int)n, start);
    return row;
}

/* The v1 ledger: a trial against a best is read from its tag; every
 * target keeps its own best (the pq-l2 rows, none of them kept, show
 * none, not posting-intersect's). */
static void test_v1_fixture(void **s)
{
    (void)s;
    const char *v1 = KB_TEST_SOURCE_DIR "/tests/fixtures/ledger/v1.tsv";
    assert_int_equal(access(kb_path("kbench"), X_OK), 0);
    kb_run r;
    KB_RUN(&r, "log", "--ledger", (char *)v1);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "7 trial(s), 2 kept, 3 failed; best so far, ratio to the "
                                  "oracle: posting-intersect 0.2693, pq-l2 -\n"));
    const char *row = row_of(&r, "pq plain");
    assert_non_null(strstr(row, "pq-l2"));
    assert_null(strstr(row, "0.1851"));
    assert_null(strstr(row, "0.2693"));
    row = row_of(&r, "vs the best");
    assert_non_null(strstr(row, " best "));
    assert_non_null(strstr(row, "1.7389")); /* the ratio to the best */
    assert_non_null(strstr(row, "0.4683")); /* and its oracle_ratio */
    assert_non_null(strstr(row_of(&r, "first best"), "0.2693*"));

    KB_RUN(&r, "log", "--ledger", (char *)v1, "--target", "posting-intersect");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "4 trial(s), 2 kept, 0 failed; best so far, ratio to the "
                                  "oracle: 0.2693\n"));
    assert_null(strstr(r.out, "pq-l2"));
}

static void add(const char *ledger, const char *target, kb__status st, double g,
                const char *against, const kb__best_info *bi, const char *desc)
{
    kb__result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    snprintf(r.target, sizeof r.target, "%s", target);
    snprintf(r.candidate, sizeof r.candidate, "%s/cand.so", g_dir);
    snprintf(r.cand_digest, sizeof r.cand_digest, "0123456789abcdef");
    snprintf(r.oracle_digest, sizeof r.oracle_digest, "fedcba9876543210");
    snprintf(r.against, sizeof r.against, "%s", against);
    snprintf(r.description, sizeof r.description, "%s", desc);
    r.geomean = (kb__ci){g, g * 0.95, g * 1.05};
    r.worst = (kb__ci){g * 1.1, g, g * 1.2};
    r.trial_seconds = 1;
    char err[512];
    assert_int_equal(kb__ledger_append(ledger, &r, bi, err, sizeof err), 0);
}

/* A v2 ledger written by kb__ledger_append: a keep of 0.8278 against a
 * file is shown as a ratio to that file (against: its name, vs_oracle:
 * none), is no best, and is drawn at no point; --against best lines use
 * their oracle_ratio column. */
static void test_v2_columns(void **s)
{
    (void)s;
    char ledger[400], base[400], gp[400], data[400], png[400];
    snprintf(ledger, sizeof ledger, "%s/v2.tsv", g_dir);
    snprintf(base, sizeof base, "%s/portable.so", g_dir);
    kb__best_info bi = {.used = 1, .had_best = 1, .oracle_ratio = 0.45, .promoted = 1};
    add(ledger, "pq-l2", KB__ST_KEEP, 0.5, "oracle", NULL, "pq vs oracle");
    add(ledger, "posting-intersect", KB__ST_KEEP, 0.4128, "oracle", NULL, "pi vs oracle");
    add(ledger, "pq-l2", KB__ST_KEEP, 0.8278, base, NULL, "pq vs a file");
    add(ledger, "pq-l2", KB__ST_KEEP, 0.9, "best", &bi, "pq vs best");
    kb_run r;
    KB_RUN(&r, "log", "--ledger", ledger);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "4 trial(s), 4 kept, 0 failed; best so far, ratio to the "
                                  "oracle: pq-l2 0.4500, posting-intersect 0.4128\n"));
    const char *row = row_of(&r, "pq vs a file");
    assert_non_null(strstr(row, " portable.so "));
    assert_non_null(strstr(row, "0.8278"));
    assert_non_null(strstr(row, " -    0.5000 ")); /* vs_oracle none; pq-l2's best */
    assert_null(strstr(row, "*"));
    assert_null(strstr(row, "0.4128"));
    row = row_of(&r, "pq vs best");
    assert_non_null(strstr(row, " best "));
    assert_non_null(strstr(row, "0.4500*"));

    /* report: a fake gnuplot keeps the script it is fed */
    snprintf(gp, sizeof gp, "%s/gnuplot", g_dir);
    snprintf(data, sizeof data, "%s/gnuplot.in", g_dir);
    snprintf(png, sizeof png, "%s/p.png", g_dir);
    FILE *f = fopen(gp, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\ncat > '%s'\n", data);
    fclose(f);
    assert_int_equal(chmod(gp, 0755), 0);
    char path[8192];
    snprintf(path, sizeof path, "%s:%s", g_dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    KB_RUN(&r, "report", "--ledger", ledger, "--target", "pq-l2", "--plot", png);
    assert_int_equal(r.code, 0);
    size_t n = 0;
    static char script[65536];
    f = fopen(data, "r");
    assert_non_null(f);
    n = fread(script, 1, sizeof script - 1, f);
    fclose(f);
    script[n] = 0;
    /* trial, its ratio to the oracle, kept, the best so far, failed */
    assert_non_null(strstr(script, "\n1 0.5 0.5 0.5 nan\n"));
    assert_non_null(strstr(script, "\n2 nan nan 0.5 nan\n"));
    assert_non_null(strstr(script, "\n3 0.45 0.45 0.45 nan\n"));
    assert_null(strstr(script, "0.8278"));
}

/* A v2 ledger an earlier kbench started, without the env column, and a
 * line this kbench appended to it: `kbench log` reads both lines. */
static void test_v2_without_env(void **s)
{
    (void)s;
    char ledger[400];
    snprintf(ledger, sizeof ledger, "%s/v2-older.tsv", g_dir);
    FILE *f = fopen(ledger, "w");
    assert_non_null(f);
    fputs(KB__LEDGER_COLUMNS_V2
          "\n2026-01-01T00:00:00Z\tpq-l2\t/a.so\td\to\tc\tkeep\t0.5000"
          "\t0.4000\t0.6000\t0.7000\t1.000\tolder line\toracle\tn/a\t0.5000\tno\t0.1.0\tcpu\t2\n",
          f);
    fclose(f);
    add(ledger, "pq-l2", KB__ST_KEEP, 0.45, "oracle", NULL, "newer line");
    kb_run r;
    KB_RUN(&r, "log", "--ledger", ledger);
    if (r.code != 0) print_message("%s\n%s\n", r.out, r.err);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "2 trial(s), 2 kept"));
    assert_non_null(strstr(row_of(&r, "older line"), "0.5000"));
    assert_non_null(strstr(row_of(&r, "newer line"), "0.4500"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_fixture),
        cmocka_unit_test(test_v2_columns),
        cmocka_unit_test(test_v2_without_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
