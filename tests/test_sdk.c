/*
 * test_sdk.c -- kbench as third parties use it.
 *
 * ABI evolution through the real binary: a plugin from a newer minor loads
 * and verifies, one from another major is refused naming both versions.
 * A C++ candidate (tests/fixtures/cxx) verifies correct. And the installed
 * SDK: `cmake --install` this build into a temporary prefix, build the
 * out-of-tree example (docs/examples/third-party-plugin) against it once
 * with CMake and once with its Makefile and pkg-config, then verify and
 * trial the results with the installed kbench, which must find the
 * installed oracles by itself. That part is skipped when cmake, make or
 * pkg-config is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"
#include "kb_run.h"
#include "kb_pick.h"

static void expect_status(const kb_run *r, const char *status, int code)
{
    if (strcmp(kb_field(r, "status"), status) != 0 || r->code != code)
        print_error("expected %s (%d), got '%s' (%d)\nstdout:\n%s\nstderr:\n%s\n", status, code,
                    kb_field(r, "status"), r->code, r->out, r->err);
    assert_string_equal(kb_field(r, "status"), status);
    assert_int_equal(r->code, code);
}

/* Cases in a target, read from its oracle, not written down here. */
static uint32_t oracle_cases(const char *target)
{
    char rel[256], err[512];
    snprintf(rel, sizeof rel, "oracles/%s/oracle.so", target);
    kb__lib lib;
    int rc = kb__lib_open(kb_path(rel), rel, 1, &lib, err, sizeof err);
    if (rc != 0) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    uint32_t n = lib.target->n_cases;
    kb__lib_close(&lib);
    return n;
}

/* ---- ABI evolution, end to end ------------------------------------------ */

static void test_newer_minor_verifies(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_newer_minor.so"), "--cases", "all");
    expect_status(&r, "correct", 0);
    assert_string_equal(kb_field(&r, "candidate_name"), "newer-minor");
    assert_int_equal(atoi(kb_field(&r, "cases")), oracle_cases("pq-l2"));
}

static void test_wrong_major_rejected_naming_both(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_major.so"));
    expect_status(&r, "rejected", 3);
    const char *reason = kb_field(&r, "reason");
    char plugin_v[64], host_v[64];
    /* The fixture says 2.0; the host says its own major. */
    snprintf(plugin_v, sizeof plugin_v, "kbench ABI %d.%d", 2, 0);
    snprintf(host_v, sizeof host_v, "this host speaks %d.x", KB_ABI_MAJOR);
    if (!strstr(reason, plugin_v) || !strstr(reason, host_v)) print_error("reason: %s\n", reason);
    assert_non_null(strstr(reason, plugin_v));
    assert_non_null(strstr(reason, host_v));
    /* Refused from the header alone: no oracle, no cases. */
    assert_int_equal(atoi(kb_field(&r, "cases")), 0);
}

/* ---- C++ ------------------------------------------------------------------ */

static void test_cxx_plugin_verifies(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_cxx_plugin.so"), "--cases", "all");
    expect_status(&r, "correct", 0);
    assert_string_equal(kb_field(&r, "target"), "posting-intersect");
    assert_string_equal(kb_field(&r, "candidate_name"), "cxx");
    assert_int_equal(atoi(kb_field(&r, "cases")), oracle_cases("posting-intersect"));
}

/* A timed verdict: the plugin loaded, was correct and was measured. */
static void assert_timed(const kb_run *r)
{
    if (kb_emulated_timing_verdict(r)) return; /* a claim about timing: the native run's */
    const char *st = kb_field(r, "status");
    int ok = (!strcmp(st, "keep") && r->code == 0) || (!strcmp(st, "discard") && r->code == 1) ||
             (!strcmp(st, "inconclusive") && r->code == 4);
    if (!ok) print_error("expected a timed verdict, got '%s' (%d)\n%s\n", st, r->code, r->out);
    assert_true(ok);
    const double g = atof(kb_field(r, "geomean_ratio"));
    assert_true(g > 0.0 && g < 100.0);
    assert_true(atoi(kb_field(r, "cases")) > 0);
}

/* ---- FAISS, an upstream library, as a contender --------------------------- */

static void test_faiss_contender(void **s)
{
    (void)s;
    if (access(kb_path("plugins/pq-l2/faiss.so"), R_OK) != 0) {
        print_message("plugins/pq-l2/faiss.so not built (no libfaiss-dev, or plugins/pq-l2/faiss "
                      "not added to the build): skipping\n");
        skip();
    }
    kb_run *r = malloc(sizeof *r);
    assert_non_null(r);
    KB_RUN(r, "verify", (char *)kb_path("plugins/pq-l2/faiss.so"), "--cases", "all");
    expect_status(r, "correct", 0);
    assert_string_equal(kb_field(r, "candidate_name"), "faiss");
    assert_int_equal(atoi(kb_field(r, "cases")), oracle_cases("pq-l2"));
    /* Against the best pq-l2 variant this CPU runs (portable.so at worst):
     * timed side by side; which one wins is docs/faiss.md's business. */
    char why[1024], best[4096];
    const char *b = kb_pick_best("pq-l2", why, sizeof why);
    if (!b) {
        print_message("no pq-l2 variant runs on this CPU (%s): faiss not trialled\n", why);
        free(r);
        skip();
    }
    snprintf(best, sizeof best, "%s", b);
    KB_RUN(r, "trial", (char *)kb_path("plugins/pq-l2/faiss.so"), "--against", best, "--budget",
           "0.5");
    assert_timed(r);
    assert_string_equal(kb_field(r, "against"), best);
    free(r);
}

/* ---- the installed SDK -------------------------------------------------- */

static int have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Runs a shell command; on failure prints it and its output (in log). */
static int sh(const char *log, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8400];
    snprintf(full, sizeof full, "( %s ) >'%s' 2>&1", cmd, log);
    int st = system(full);
    int rc = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (rc != 0) {
        print_error("command failed (%d): %s\n", rc, cmd);
        FILE *f = fopen(log, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) print_error("  %s", line);
        if (f) fclose(f);
    }
    return rc;
}

/* The installed binary, its stdout and exit code, in a kb_run so that
 * kb_field reads its block. */
static void run_installed(kb_run *r, const char *prefix, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/bin/kbench' %s 2>/dev/null", prefix, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(r->out, 1, sizeof r->out - 1, p);
    r->out[n] = 0;
    r->err[0] = 0;
    int st = pclose(p);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void assert_file(const char *dir, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) print_error("missing: %s\n", path);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

/* Exactly one dynamic symbol defined: the entry point. */
static void assert_exports_entry_only(const char *so)
{
    char cmd[4400], line[512];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", so);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = 0, entry = 0;
    while (fgets(line, sizeof line, p)) {
        n++;
        if (strstr(line, " kb_plugin_entry_v1"))
            entry = 1;
        else
            print_error("%s exports %s", so, line);
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(entry, 1);
    assert_int_equal(n, 1);
}

/* 1 when the machine's own compiler builds for the architecture this test
 * was built for. Not so in a cross build run under an emulator: the example
 * would come out for the wrong machine and the installed kbench could not be
 * started. */
static int native_build(void)
{
#if defined(__x86_64__)
    const char *want = "x86_64";
#elif defined(__aarch64__)
    const char *want = "aarch64";
#else
    const char *want = "";
#endif
    char triple[128] = "";
    FILE *p = popen("cc -dumpmachine 2>/dev/null", "r");
    if (!p) return 0;
    if (!fgets(triple, sizeof triple, p)) triple[0] = 0;
    pclose(p);
    return want[0] && strncmp(triple, want, strlen(want)) == 0;
}

static void test_installed_sdk(void **s)
{
    (void)s;
    const char *tools[] = {"cmake", "make", "pkg-config", "nm", "cc"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (!have(tools[i])) {
            print_message("%s not found: skipping the installed-SDK test\n", tools[i]);
            skip();
        }
    if (!native_build()) {
        print_message("cc does not build for this test's machine (a cross build?): skipping the "
                      "installed-SDK test\n");
        skip();
    }
    /* Paths go into shell commands between single quotes. */
    assert_null(strchr(KB_TEST_BUILD_DIR, '\''));
    assert_null(strchr(KB_TEST_SOURCE_DIR, '\''));

    char tmp[] = "/tmp/kb-sdk-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char prefix[256], log[256], example[4096];
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    snprintf(log, sizeof log, "%s/log", tmp);
    snprintf(example, sizeof example, "%s/docs/examples/third-party-plugin", KB_TEST_SOURCE_DIR);

    /* 1. Install this build somewhere its configure-time prefix is not. */
    assert_int_equal(sh(log, "cmake --install '%s' --prefix '%s'", KB_TEST_BUILD_DIR, prefix), 0);
    assert_file(prefix, "bin/kbench");
    assert_file(prefix, "include/kbench/kbench.h");
    assert_file(prefix, "lib/kbench/oracles/pq-l2/oracle.so");
    assert_file(prefix, "lib/kbench/oracles/posting-intersect/oracle.so");
    assert_file(prefix, "lib/cmake/kbench/kbenchConfig.cmake");
    assert_file(prefix, "lib/cmake/kbench/kbenchConfigVersion.cmake");
    assert_file(prefix, "lib/cmake/kbench/kbench-plugin.cmake");
    assert_file(prefix, "lib/pkgconfig/kbench.pc");

    /* 2. The example with CMake: find_package(kbench) + kbench_add_plugin. */
    assert_int_equal(sh(log,
                        "cmake -S '%s' -B '%s/cmake' -DCMAKE_PREFIX_PATH='%s' && "
                        "cmake --build '%s/cmake'",
                        example, tmp, prefix, tmp),
                     0);
    char so_cmake[512], so_make[512];
    snprintf(so_cmake, sizeof so_cmake, "%s/cmake/plugins/pq-l2/transposed.so", tmp);
    assert_file(tmp, "cmake/plugins/pq-l2/transposed.so");
    assert_exports_entry_only(so_cmake);

    /* 3. The example with its Makefile and pkg-config, built in another dir. */
    assert_int_equal(sh(log,
                        "mkdir -p '%s/make' && cd '%s/make' && PKG_CONFIG_PATH='%s/lib/pkgconfig' "
                        "make -f '%s/Makefile'",
                        tmp, tmp, prefix, example),
                     0);
    snprintf(so_make, sizeof so_make, "%s/make/transposed.so", tmp);
    assert_file(tmp, "make/transposed.so");
    assert_exports_entry_only(so_make);

    /* 4. The installed kbench, no flags: it must use the installed oracle
     * (not this build's, not the configure-time prefix's). */
    kb_run *r = malloc(sizeof *r);
    assert_non_null(r);
    char args[1200], want[512];
    snprintf(args, sizeof args, "info '%s'", so_cmake);
    run_installed(r, prefix, args);
    snprintf(want, sizeof want, "\noracle: %s/lib/kbench/oracles/pq-l2/oracle.so\n", prefix);
    if (!strstr(r->out, want)) print_error("wanted%s\ngot:\n%s\n", want, r->out);
    assert_non_null(strstr(r->out, want));
    assert_int_equal(r->code, 0);

    snprintf(args, sizeof args, "verify '%s' --cases all", so_cmake);
    run_installed(r, prefix, args);
    expect_status(r, "correct", 0);
    assert_string_equal(kb_field(r, "candidate_name"), "transposed");
    assert_int_equal(atoi(kb_field(r, "cases")), oracle_cases("pq-l2"));

    snprintf(args, sizeof args, "verify '%s'", so_make);
    run_installed(r, prefix, args);
    expect_status(r, "correct", 0);

    /* 5. A trial of the pkg-config build against the installed oracle. */
    /* any timed verdict: the shortest budget shows it */
    snprintf(args, sizeof args, "trial '%s' --budget 0.5", so_make);
    run_installed(r, prefix, args);
    char status[64];
    snprintf(status, sizeof status, "%s", kb_field(r, "status"));
    print_message("installed kbench trial transposed.so: %s, geomean_ratio %s\n", status,
                  kb_field(r, "geomean_ratio"));
    assert_timed(r);
    free(r);

    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmp);
    assert_int_equal(system(rm), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newer_minor_verifies),
        cmocka_unit_test(test_wrong_major_rejected_naming_both),
        cmocka_unit_test(test_cxx_plugin_verifies),
        cmocka_unit_test(test_faiss_contender),
        cmocka_unit_test(test_installed_sdk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
