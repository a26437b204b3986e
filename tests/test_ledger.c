/*
 * test_ledger.c -- results.tsv appends: header once, whole lines under
 * concurrency, refusal of foreign files, no torn line on a short write.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"

#define NFIELDS 13

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
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), 0);
    sample_result(&r, KB__ST_INCORRECT, "second");
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), 0);
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
    assert_string_equal(f[2], "build/plugins/pq_scan/avx512.so");
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

    assert_int_equal(split(line2, f, NFIELDS), NFIELDS);
    assert_string_equal(f[6], "incorrect");
    for (int i = 7; i <= 10; i++) assert_string_equal(f[i], "n/a");
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
                if (kb__ledger_append(path, &r, err, sizeof err) != 0) {
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
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), KB__ECORRUPT);
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
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), KB__ECORRUPT);
    text = slurp(path, &len);
    assert_string_equal(text, "time");
    free(text);

    /* a ledger whose last line was torn by someone else */
    char torn[1024];
    snprintf(torn, sizeof torn, "%s2026-01-01T00:00:00Z\tpq_scan", KB__LEDGER_HEADER);
    write_file(path, torn);
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), KB__ECORRUPT);
    assert_non_null(strstr(err, "incomplete"));
    text = slurp(path, &len);
    assert_string_equal(text, torn);
    free(text);

    /* a directory */
    assert_int_not_equal(kb__ledger_append(g_dir, &r, err, sizeof err), 0);
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
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), 0);
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
            int rc = kb__ledger_append(path, &rr, e, sizeof e);
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
    assert_int_equal(kb__ledger_append(path, &r, err, sizeof err), 0);
}

static void test_missing_directory(void **state)
{
    (void)state;
    char path[300], err[512];
    path_in_dir(path, sizeof path, "no/such/dir/results.tsv");
    kb__result r;
    sample_result(&r, KB__ST_KEEP, "x");
    assert_int_not_equal(kb__ledger_append(path, &r, err, sizeof err), 0);
    assert_non_null(strstr(err, path));
    assert_null(strchr(err, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_once_and_fields),
        cmocka_unit_test(test_concurrent_appends),
        cmocka_unit_test(test_refuses_foreign_file),
        cmocka_unit_test(test_short_write_leaves_no_torn_line),
        cmocka_unit_test(test_missing_directory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
