/*
 * test_pin.c -- oracle pins (host/core/pin.c): a pin written for a directory
 * checks clean; an edited, a new and a missing file each fail the check with
 * a message that names the file and the command that re-pins; the upstream
 * line survives a re-pin; the repository's own oracles match their pins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/stat.h>

#include "kb_run.h"
#include "cli.h"
#include "report.h"
#include "session.h"

static char g_dir[256];

static void put(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **s)
{
    (void)s;
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_pin.XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    strcat(g_dir, "/oracles");
    if (mkdir(g_dir, 0755)) return -1;
    strcat(g_dir, "/my-target");
    return mkdir(g_dir, 0755);
}

static int teardown(void **s)
{
    (void)s;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%.*s'", (int)(strstr(g_dir, "/oracles/") - g_dir), g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_pin_detects_drift(void **s)
{
    (void)s;
    char msg[2048];
    put("oracle.c", "int x;\n");
    put("CMakeLists.txt", "# oracle\n");
    assert_int_equal(kb__pin_write(g_dir, "upstream-project v1.2 (abc123)", msg, sizeof msg), 0);
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), 0);

    put("oracle.c", "int x = 1;\n");
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), KB__PIN_MISMATCH);
    assert_non_null(strstr(msg, "oracle.c changed"));
    assert_non_null(strstr(msg, "scripts/check-oracle-drift.sh --update my-target"));
    put("oracle.c", "int x;\n"); /* restored: clean again */
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), 0);

    put("extra.h", "#define Y 2\n");
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), KB__PIN_MISMATCH);
    assert_non_null(strstr(msg, "extra.h is not in"));

    /* re-pin keeps the upstream line */
    assert_int_equal(kb__pin_write(g_dir, NULL, msg, sizeof msg), 0);
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), 0);
    char p[512], line[512];
    snprintf(p, sizeof p, "%s/PIN", g_dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof line, f))
        found |= !strcmp(line, "upstream\tupstream-project v1.2 (abc123)\n");
    fclose(f);
    assert_true(found);

    snprintf(p, sizeof p, "%s/extra.h", g_dir);
    unlink(p);
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), KB__PIN_MISMATCH);
    assert_non_null(strstr(msg, "extra.h is pinned"));
    unlink(strcat(strcpy(p, g_dir), "/PIN"));
    assert_true(kb__pin_check(g_dir, msg, sizeof msg) < 0);
}

/* The generator library beside the oracles (oracles/T/../../generators) is
 * pinned with the oracle: an edit there changes every input the target is
 * judged on. */
static void test_pin_covers_generators(void **s)
{
    (void)s;
    char msg[2048], gen[600];
    snprintf(gen, sizeof gen, "%s/../../generators", g_dir);
    assert_int_equal(mkdir(gen, 0755), 0);
    put("../../generators/rng.c", "unsigned long derive(void) { return 1; }\n");
    put("oracle.c", "int x;\n");
    assert_int_equal(kb__pin_write(g_dir, "upstream", msg, sizeof msg), 0);
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), 0);
    put("../../generators/rng.c", "unsigned long derive(void) { return 2; }\n");
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), KB__PIN_MISMATCH);
    assert_non_null(strstr(msg, "generators/rng.c changed"));
    put("../../generators/rng.c", "unsigned long derive(void) { return 1; }\n");
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), 0);
    put("../../generators/new.c", "int y;\n");
    assert_int_equal(kb__pin_check(g_dir, msg, sizeof msg), KB__PIN_MISMATCH);
    assert_non_null(strstr(msg, "generators/new.c is not in"));
}

static void test_repository_oracles_are_pinned(void **s)
{
    (void)s;
    static const char *const targets[] = {"posting-intersect", "pq-l2"};
    for (size_t i = 0; i < 2; i++) {
        char dir[1024], msg[2048];
        snprintf(dir, sizeof dir, "%s/oracles/%s", KB_TEST_SOURCE_DIR, targets[i]);
        if (access(dir, F_OK)) continue;
        int rc = kb__pin_check(dir, msg, sizeof msg);
        if (rc) print_error("%s\n", msg);
        assert_int_equal(rc, 0);
    }
    /* and `kbench list` says so */
    kb_run r;
    KB_RUN(&r, "list");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "pin: ok"));
    assert_null(strstr(r.out, "pin: WARNING"));
    assert_string_equal(kb_field(&r, "nothing"), "");
    assert_non_null(kb_path("kbench"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_detects_drift),
        cmocka_unit_test(test_pin_covers_generators),
        cmocka_unit_test(test_repository_oracles_are_pinned),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
