/*
 * test_ledger.c -- results.tsv appends: header once, whole lines under
 * concurrency, refusal of foreign files and of v1 ledgers, no torn line on
 * a short write, the v2 columns (baseline, oracle_ratio, promoted, version,
 * machine) and paths written one way.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kb.h"
#include "ledger.h"

#define NFIELDS KB__LF_N2

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_ledger.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", g_dir, name);
}

static void sample_result(kb__result *r, kb__status st, const char *desc)
{
    memset(r, 0, sizeof *r);
    r->status = st;
    snprintf(r->target, sizeof r->target, "pq_scan");
    snprintf(r->candidate, sizeof r->candidate, "build/plugins/pq_scan/avx512.so");
    snprintf(r->cand_digest, sizeof r->cand_digest, "0123456789abcdef");
    snprintf(r->oracle_digest, sizeof r->oracle_digest, "fedcba9876543210");
    snprintf(r->git_commit, sizeof r->git_commit, "%s", "");
    snprintf(r->description, sizeof r->description, "%s", desc);
    r->geomean = (kb__ci){0.61204, 0.6011, 0.62};
    r->worst = (kb__ci){0.70249, 0.69, 0.71};
    r->trial_seconds = 1.5;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

/* Splits line (modified in place) on tabs. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n < max) f[n] = p;
        n++;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

static void test_header_once_and_fields(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "results.tsv");
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "first\ttry\nwith\r breaks");
    time_t before = time(NULL);
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
    sample_result(&r, KB__ST_INCORRECT, "second");
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
    time_t after = time(NULL);

    size_t len;
    char *text = slurp(path, &len);
    assert_non_null(text);
    size_t hlen = strlen(KB__LEDGER_HEADER);
    assert_memory_equal(text, KB__LEDGER_HEADER, hlen);
    assert_null(strstr(text + 1, "timestamp\t")); /* header once */

    char *line1 = text + hlen, *nl = strchr(line1, '\n');
    assert_non_null(nl);
    *nl = '\0';
    char *line2 = nl + 1;
    nl = strchr(line2, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_int_equal(nl + 1 - text, (long)len); /* nothing after line 2 */

    char *f[NFIELDS];
    assert_int_equal(split(line1, f, NFIELDS), NFIELDS);
    /* timestamp: UTC ISO-8601, and the time of the call */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end = strptime(f[0], "%Y-%m-%dT%H:%M:%SZ", &tm);
    assert_non_null(end);
    assert_int_equal(*end, '\0');
    time_t t = timegm(&tm);
    assert_true(t >= before && t <= after);
    assert_string_equal(f[1], "pq_scan");
    char cwd[4096], abs[4200];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(abs, sizeof abs, "%s/build/plugins/pq_scan/avx512.so", cwd);
    assert_string_equal(f[2], abs); /* absolute, though the file is not there */
    assert_string_equal(f[3], "0123456789abcdef");
    assert_string_equal(f[4], "fedcba9876543210");
    assert_string_equal(f[5], "n/a"); /* unknown commit */
    assert_string_equal(f[6], "keep");
    assert_string_equal(f[7], "0.6120");
    assert_string_equal(f[8], "0.6011");
    assert_string_equal(f[9], "0.6200");
    assert_string_equal(f[10], "0.7025");
    assert_string_equal(f[11], "1.500");
    assert_string_equal(f[12], "first try with  breaks");
    /* v2: against the oracle, so the geomean is the ratio to the oracle */
    assert_string_equal(f[KB__LF_AGAINST], "oracle");
    assert_string_equal(f[KB__LF_AGAINST_DIGEST], "n/a");
    assert_string_equal(f[KB__LF_ORACLE_RATIO], "0.6120");
    assert_string_equal(f[KB__LF_PROMOTED], "no");
    assert_string_equal(f[KB__LF_VERSION], KB_VERSION);
    assert_true(strlen(f[KB__LF_MACHINE]) > 0);
    assert_string_equal(f[KB__LF_LEDGER_VERSION], "2");

    assert_int_equal(split(line2, f, NFIELDS), NFIELDS);
    assert_string_equal(f[6], "incorrect");
    for (int i = 7; i <= 10; i++) assert_string_equal(f[i], "n/a");
    assert_string_equal(f[KB__LF_ORACLE_RATIO], "n/a");
    assert_string_equal(f[12], "second");
    free(text);
}

static void test_concurrent_appends(void **state)
{
    (void)state;
    enum { PROCS = 8, EACH = 200 };
    char path[300];
    path_in_dir(path, sizeof path, "concurrent.tsv");
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            kb__result r;
            char desc[64], err[512];
            for (int i = 0; i < EACH; i++) {
                snprintf(desc, sizeof desc, "proc %d line %d", p, i);
                sample_result(&r, (kb__status)(i % 3), desc);
                if (kb__ledger_append(path, &r, NULL, err, sizeof err) != 0) {
                    fprintf(stderr, "child %d: %s\n", p, err);
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    size_t len;
    char *text = slurp(path, &len);
    assert_non_null(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    size_t hlen = strlen(KB__LEDGER_HEADER);
    assert_memory_equal(text, KB__LEDGER_HEADER, hlen);
    int seen[PROCS][EACH];
    memset(seen, 0, sizeof seen);
    int lines = 0;
    for (char *line = text + hlen; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *f[NFIELDS];
        assert_int_equal(split(line, f, NFIELDS), NFIELDS);
        int p, i;
        assert_int_equal(sscanf(f[12], "proc %d line %d", &p, &i), 2);
        assert_in_range(p, 0, PROCS - 1);
        assert_in_range(i, 0, EACH - 1);
        seen[p][i]++;
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, PROCS * EACH);
    for (int p = 0; p < PROCS; p++)
        for (int i = 0; i < EACH; i++) assert_int_equal(seen[p][i], 1);
    free(text);
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
}

static void test_refuses_foreign_file(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "notes.tsv");
    const char *content = "name\tvalue\nalpha\t1\n";
    write_file(path, content);
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "x");
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), KB__ECORRUPT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "not a kbench ledger"));
    assert_non_null(strstr(err, "--ledger"));
    size_t len;
    char *text = slurp(path, &len);
    assert_non_null(text);
    assert_string_equal(text, content);
    free(text);

    /* a file shorter than the header */
    write_file(path, "time");
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), KB__ECORRUPT);
    text = slurp(path, &len);
    assert_string_equal(text, "time");
    free(text);

    /* a ledger whose last line was torn by someone else */
    char torn[1024];
    snprintf(torn, sizeof torn, "%s2026-01-01T00:00:00Z\tpq_scan", KB__LEDGER_HEADER);
    write_file(path, torn);
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), KB__ECORRUPT);
    assert_non_null(strstr(err, "incomplete"));
    text = slurp(path, &len);
    assert_string_equal(text, torn);
    free(text);

    /* a directory */
    assert_int_not_equal(kb__ledger_append(g_dir, &r, NULL, err, sizeof err), 0);
    assert_non_null(strstr(err, g_dir));
}

/* A file-size limit makes write(2) short (or fail with EFBIG) the way a full
 * disk does; the ledger must keep its old contents exactly. */
static void test_short_write_leaves_no_torn_line(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "full.tsv");
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "before");
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
    size_t len0;
    char *before = slurp(path, &len0);
    assert_non_null(before);

    for (int room = 10; room >= 0; room -= 10) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {(rlim_t)len0 + (rlim_t)room, (rlim_t)len0 + (rlim_t)room};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
            kb__result rr;
            char e[512];
            sample_result(&rr, KB__ST_DISCARD, "this line does not fit");
            int rc = kb__ledger_append(path, &rr, NULL, e, sizeof e);
            if (rc != KB__EIO) _exit(11);
            if (!strstr(e, path) || !strstr(e, "disk may be full")) _exit(12);
            _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        size_t len1;
        char *after = slurp(path, &len1);
        assert_non_null(after);
        assert_int_equal(len1, len0);
        assert_memory_equal(after, before, len0);
        free(after);
    }
    free(before);

    /* and the ledger still takes lines afterwards */
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
}

static void test_missing_directory(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "no/such/dir/results.tsv");
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "x");
    assert_int_not_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
    assert_non_null(strstr(err, path));
    assert_null(strchr(err, '\n'));
}

/* The line of one result, split; returns the number of fields. */
static int one_line(const kb__result *r, const kb__best_info *bi, char *buf, size_t len, char **f)
{
    int n = kb__ledger_format(r, bi, buf, len);
    assert_true(n > 0 && buf[n - 1] == '\n');
    buf[n - 1] = '\0';
    return split(buf, f, NFIELDS);
}

/* A ratio against another file is never written as a ratio to the oracle;
 * --against best writes "best", its digest, the chained oracle_ratio and
 * whether it was promoted, none of it in the description. */
static void test_baseline_columns(void **state)
{
    (void)state;
    char line[16384], *f[NFIELDS], other[300], real[4096];
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "x");
    path_in_dir(other, sizeof other, "base.so");
    write_file(other, "not a plugin");
    snprintf(r.against, sizeof r.against, "%s/./base.so", g_dir);
    snprintf(r.against_digest, sizeof r.against_digest, "1111222233334444");
    assert_int_equal(one_line(&r, NULL, line, sizeof line, f), NFIELDS);
    assert_non_null(realpath(other, real));
    assert_string_equal(f[KB__LF_AGAINST], real); /* canonical */
    assert_string_equal(f[KB__LF_AGAINST_DIGEST], "1111222233334444");
    assert_string_equal(f[KB__LF_GEO], "0.6120");
    assert_string_equal(f[KB__LF_ORACLE_RATIO], "n/a");

    kb__best_info bi = {.used = 1, .had_best = 1, .oracle_ratio = 0.25, .promoted = 1};
    snprintf(r.against, sizeof r.against, "%s", other);
    assert_int_equal(one_line(&r, &bi, line, sizeof line, f), NFIELDS);
    assert_string_equal(f[KB__LF_AGAINST], "best");
    assert_string_equal(f[KB__LF_ORACLE_RATIO], "0.2500");
    assert_string_equal(f[KB__LF_PROMOTED], "yes");
    assert_string_equal(f[KB__LF_DESC], "x");

    /* --against best with no best yet ran against the oracle */
    bi.had_best = 0;
    snprintf(r.against, sizeof r.against, "oracle");
    assert_int_equal(one_line(&r, &bi, line, sizeof line, f), NFIELDS);
    assert_string_equal(f[KB__LF_AGAINST], "oracle");
    assert_string_equal(f[KB__LF_ORACLE_RATIO], "0.2500");
}

/* A v1 ledger is read by `kbench log`, never appended to: its lines could
 * not say what a v2 line says. */
static void test_refuses_v1_ledger(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "v1.tsv");
    const char *content = KB__LEDGER_HEADER_V1
        "2026-01-01T00:00:00Z\tt\ta.so\td\to\tc\tkeep\t0.5\t0.4\t0.6\t0.7\t1.0\tx\n";
    write_file(path, content);
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "x");
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), KB__ECORRUPT);
    assert_non_null(strstr(err, "v1 ledger"));
    assert_non_null(strstr(err, "--ledger"));
    /* The check a trial makes before it runs says the same, and a file not
     * there yet is a new ledger. */
    err[0] = 0;
    assert_int_equal(kb__ledger_check(path, err, sizeof err), KB__ECORRUPT);
    assert_non_null(strstr(err, "move it aside"));
    char none[320];
    path_in_dir(none, sizeof none, "not-there.tsv");
    assert_int_equal(kb__ledger_check(none, err, sizeof err), 0);
    size_t len;
    char *text = slurp(path, &len);
    assert_string_equal(text, content);
    free(text);
    assert_int_equal(kb__ledger_header_version(KB__LEDGER_HEADER_V1), 1);
    assert_int_equal(kb__ledger_header_version(KB__LEDGER_HEADER), 2);
    assert_int_equal(kb__ledger_header_version(KB__LEDGER_COLUMNS_V2 "\tnewer\n"), 2);
    assert_int_equal(kb__ledger_header_version("timestamp\ttarget\n"), 0);
}

/* The env column: the machine's keys of the verdict block but cpu_model
 * (the machine column) and kbench_version (its own column), as
 * key=value pairs joined by ';', none of which a value can split. */
static void test_env_column(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "env.tsv");
    kb__result r;
    sample_result(&r, KB__ST_DISCARD, "env");
    kb__env *e = &r.env;
    snprintf(e->cpu_model, sizeof e->cpu_model, "Test CPU 9000");
    snprintf(e->isa, sizeof e->isa, "avx2 fma");
    snprintf(e->kernel, sizeof e->kernel, "6.1.0-test");
    snprintf(e->governor, sizeof e->governor, "performance");
    snprintf(e->boost, sizeof e->boost, "off");
    snprintf(e->smt, sizeof e->smt, "on");
    snprintf(e->cpu_quota, sizeof e->cpu_quota, "1.50 CPUs (150000/100000)");
    snprintf(e->hypervisor, sizeof e->hypervisor, "KVM;steal_pct=0\tx");
    snprintf(e->pti, sizeof e->pti, "on");
    e->load_avg = 0.5;
    e->steal_pct = 12.34;
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
    size_t len;
    char *text = slurp(path, &len);
    assert_non_null(text);
    assert_memory_equal(text, KB__LEDGER_HEADER, strlen(KB__LEDGER_HEADER));
    assert_non_null(strstr(text, "\tledger_version\tenv\n"));
    char *line = text + strlen(KB__LEDGER_HEADER);
    line[strcspn(line, "\n")] = 0;
    char *f[NFIELDS];
    assert_int_equal(split(line, f, NFIELDS), NFIELDS);
    assert_int_equal(KB__LF_ENV, NFIELDS - 1);
    assert_string_equal(f[KB__LF_MACHINE], "Test CPU 9000");
    assert_string_equal(f[KB__LF_LEDGER_VERSION], "2");
    assert_string_equal(f[KB__LF_ENV],
                        "isa=avx2 fma;kernel=6.1.0-test;governor=performance;boost=off;smt=on;"
                        "load_avg=0.50;steal_pct=12.3;cpu_quota=1.50 CPUs (150000/100000);"
                        "hypervisor=KVM,steal_pct=0 x;pti=on");
    free(text);
    /* unknown figures say so */
    e->load_avg = NAN;
    e->steal_pct = NAN;
    e->isa[0] = 0;
    e->pti[0] = 0;
    char buf[8192];
    assert_true(kb__ledger_format(&r, NULL, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "\tisa=n/a;"));
    assert_non_null(strstr(buf, ";load_avg=n/a;steal_pct=n/a;"));
    assert_non_null(strstr(buf, ";pti=n/a"));
}

/* A v2 ledger an earlier kbench started (its header ends at
 * ledger_version) is still appended to, with lines that end there too. */
static void test_v2_without_env_column(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "v2-older.tsv");
    const char *content = KB__LEDGER_COLUMNS_V2
        "\n2026-01-01T00:00:00Z\tt\t/a.so\td\to\tc\tkeep\t0.5\t0.4\t0.6\t0.7\t1.000\tx"
        "\toracle\tn/a\t0.5000\tno\t0.1.0\tcpu\t2\n";
    write_file(path, content);
    assert_int_equal(kb__ledger_check(path, err, sizeof err), 0);
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "appended");
    assert_int_equal(kb__ledger_append(path, &r, NULL, err, sizeof err), 0);
    size_t len;
    char *text = slurp(path, &len);
    assert_memory_equal(text, content, strlen(content));
    char *line = text + strlen(content), *f[NFIELDS];
    assert_int_equal(line[strlen(line) - 1], '\n');
    line[strlen(line) - 1] = 0;
    assert_int_equal(split(line, f, NFIELDS), KB__LF_N2_MIN);
    assert_string_equal(f[KB__LF_DESC], "appended");
    assert_string_equal(f[KB__LF_LEDGER_VERSION], "2");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_once_and_fields),
        cmocka_unit_test(test_concurrent_appends),
        cmocka_unit_test(test_refuses_foreign_file),
        cmocka_unit_test(test_short_write_leaves_no_torn_line),
        cmocka_unit_test(test_missing_directory),
        cmocka_unit_test(test_baseline_columns),
        cmocka_unit_test(test_refuses_v1_ledger),
        cmocka_unit_test(test_env_column),
        cmocka_unit_test(test_v2_without_env_column),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
