/*
 * test_cli.c -- what a user meets on a wrong command line: a misspelt option
 * gets the nearest one and the command's usage line (every command), a
 * forgotten value is refused, a misspelt --against, target or case gets the
 * known names and the nearest, `kbench info` of a plugin that cannot be
 * trialled says so, a plain library is pointed to --foreign, and --sig takes
 * C's own type names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb.h"
#include "kb_run.h"

#define PQ      "plugins/pq-l2/portable.so"
#define FOREIGN "tests/fixtures/libfx_foreign.so"
#define COLD    "tests/fixtures/fx_cold_same.so"

static void has(const char *text, const char *want)
{
    if (!strstr(text, want)) fail_msg("expected '%s' in:\n%s", want, text);
}

static void lacks(const char *text, const char *unwanted)
{
    if (strstr(text, unwanted)) fail_msg("did not expect '%s' in:\n%s", unwanted, text);
}

/* A usage error: exit 64, the message, the command's usage line and not
 * the rest of its help (every help has a blank line after its usage). */
static void usage_error(const kb_run *r, const char *cmd, const char *message)
{
    char usage[64];
    snprintf(usage, sizeof usage, "usage: kbench %s", cmd);
    if (r->code != 64) fail_msg("kbench %s: exit %d, expected 64\n%s", cmd, r->code, r->err);
    has(r->err, message);
    has(r->err, usage);
    lacks(r->err, "\n\n");
    assert_string_equal(r->out, "");
}

/* ---- the nearest name (host/core/suggest.c) ---------------------------- */

static void test_suggest(void **s)
{
    (void)s;
    static const char *const opts[] = {"against", "budget", "cases", "ledger", "seed", "state"};
    assert_int_equal(kb__edit_distance("budjet", "budget"), 1);
    assert_int_equal(kb__edit_distance("bset", "best"), 1); /* a swap is one edit */
    assert_int_equal(kb__edit_distance("", "abc"), 3);
    assert_string_equal(kb__suggest("budjet", opts, 6), "budget");
    assert_string_equal(kb__suggest("ledgr", opts, 6), "ledger");
    assert_string_equal(kb__suggest("sede", opts, 6), "seed");
    assert_null(kb__suggest("frobnicate", opts, 6));
    assert_null(kb__suggest("x", opts, 6)); /* short words are near everything */
    static const char *const targets[] = {"posting-intersect", "pq-l2"};
    assert_string_equal(kb__suggest("pq-l3", targets, 2), "pq-l2");
    assert_string_equal(kb__suggest("posting-intersetc", targets, 2), "posting-intersect");
}

/* ---- options: one handling for every command --------------------------- */

static void test_misspelt_option_every_command(void **s)
{
    (void)s;
    static const struct {
        const char *cmd, *typo, *meant;
    } c[] = {
        {"trial", "--budjet", "--budget"},     {"verify", "--oracels", "--oracles"},
        {"info", "--oracels", "--oracles"},    {"list", "--oracels", "--oracles"},
        {"watch", "--debounse", "--debounce"}, {"serve", "--sokcet", "--socket"},
        {"log", "--ledgr", "--ledger"},        {"report", "--tilte", "--title"},
        {"calibrate", "--trails", "--trials"}, {"pick", "--budjet", "--budget"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        kb_run r;
        char msg[160];
        KB_RUN(&r, (char *)c[i].cmd, (char *)c[i].typo, "2", "x.so");
        snprintf(msg, sizeof msg, "kbench %s: unknown option '%s'; did you mean %s?\n", c[i].cmd,
                 c[i].typo, c[i].meant);
        usage_error(&r, c[i].cmd, msg);
    }
}

static void test_unknown_option_forms(void **s)
{
    (void)s;
    kb_run r;
    /* the issue's own line */
    KB_RUN(&r, "trial", "--budjet", "2", "x.so");
    usage_error(&r, "trial", "kbench trial: unknown option '--budjet'; did you mean --budget?");
    has(r.err, "`kbench trial --help`");
    KB_RUN(&r, "trial", "--budjet=2", "x.so");
    usage_error(&r, "trial", "kbench trial: unknown option '--budjet'; did you mean --budget?");
    /* nothing near: no guess */
    KB_RUN(&r, "trial", "--frobnicate", "x.so");
    usage_error(&r, "trial", "kbench trial: unknown option '--frobnicate'\n");
    /* only this command's options are suggested: --budget is not info's */
    KB_RUN(&r, "info", "--budjet", "2", "x.so");
    usage_error(&r, "info", "kbench info: unknown option '--budjet'\n");
    /* a long option with one dash, a value after a flag, a missing value */
    KB_RUN(&r, "trial", "-budget", "2", "x.so");
    usage_error(&r, "trial", "kbench trial: unknown option '-budget'; did you mean --budget?");
    KB_RUN(&r, "trial", "--json=yes", "x.so");
    usage_error(&r, "trial", "kbench trial: --json takes no value");
    KB_RUN(&r, "trial", "x.so", "--budget");
    usage_error(&r, "trial", "kbench trial: --budget needs a value");
    KB_RUN(&r, "trial", "--s", "1", "x.so");
    usage_error(&r, "trial", "kbench trial: option '--s' is ambiguous");
    KB_RUN(&r, "trial", "-x", "x.so");
    usage_error(&r, "trial", "kbench trial: unknown option '-x'\n");
}

/* `--ledger -q` wrote a ledger named -q; `--ledger=-q` still can. */
static void test_value_that_looks_like_an_option(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--ledger", "-q");
    usage_error(&r, "trial",
                "kbench trial: --ledger needs a value; '-q' looks like an option (write "
                "--ledger=-q if you mean it)");
    assert_int_not_equal(access("-q", F_OK), 0);
    KB_RUN(&r, "log", "--ledger", "-q");
    usage_error(&r, "log", "--ledger needs a value; '-q' looks like an option");
    /* written with '=', it is the value: here a ledger that does not exist */
    KB_RUN(&r, "log", "--ledger=-q");
    has(r.err, "kbench: -q: No such file or directory");
    lacks(r.err, "looks like an option");
    /* no option takes a negative number */
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--seed", "-1");
    usage_error(&r, "trial", "--seed needs a value; '-1' looks like an option");
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--seed=-1");
    usage_error(&r, "trial", "kbench: --seed expects a non-negative integer, got '-1'");
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--seed", "12x");
    usage_error(&r, "trial", "--seed expects a non-negative integer, got '12x'");
}

static void test_against_misspelt(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--against", "bset");
    usage_error(&r, "trial", "--against 'bset': expected oracle, best or a FILE.so");
    has(r.err, "did you mean best?");
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--against", "orcale");
    has(r.err, "did you mean oracle?");
    KB_RUN(&r, "trial", (char *)kb_path(PQ), "--against", "/nonexistent/base.so");
    usage_error(&r, "trial",
                "--against '/nonexistent/base.so': expected oracle, best or a FILE.so");
    lacks(r.err, "did you mean");
}

/* ---- names a target or a case must match ------------------------------- */

static void test_unknown_target_lists_known(void **s)
{
    (void)s;
    kb_run r;
    char fn[4200];
    snprintf(fn, sizeof fn, "%s:fx_pq_l2", kb_path(FOREIGN));
    KB_RUN(&r, "verify", "--foreign", fn, "--sig",
           "void (const f32 *codebook, const f32 *query, const u8 *codes, u64 n, u32 d, u32 m, "
           "f32 *dist)",
           "--target", "pq-l3");
    assert_int_equal(r.code, 3);
    const char *why = kb_field(&r, "reason");
    has(why, "no oracle for target 'pq-l3'");
    has(why, "did you mean pq-l2?");
    has(why, "known targets: ");
    has(why, "posting-intersect");
    /* a plugin of a target this kbench has no oracle for */
    KB_RUN(&r, "verify", (char *)kb_path(COLD));
    assert_int_equal(r.code, 3);
    has(kb_field(&r, "reason"), "no oracle for target 'fx-cold'");
    has(kb_field(&r, "reason"), "known targets: ");
    lacks(kb_field(&r, "reason"), "did you mean");
}

static void test_unknown_case_lists_cases(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path(PQ), "--cases", "n=1024,d=128,m=8/unifrom");
    assert_int_equal(r.code, 64);
    /* read as a shape (name=value,.../distribution) first, then the
     * listed name it is nearest */
    has(r.err, "unknown distribution 'unifrom' for pq-l2; its distributions: uniform, clustered");
    has(r.err, "did you mean the listed case 'n=1024,d=128,m=8/uniform'?");
    KB_RUN(&r, "verify", (char *)kb_path(PQ), "--cases", "everything");
    assert_int_equal(r.code, 64);
    has(r.err, "no case 'everything' in target pq-l2");
    has(r.err, "its cases: quick, all, or n=1024,d=128,m=8/uniform;n=4096,d=128,m=16/uniform;");
    lacks(r.err, "did you mean");
    KB_RUN(&r, "verify", (char *)kb_path(PQ), "--cases", "qiuck");
    assert_int_equal(r.code, 64);
    has(r.err, "no case 'qiuck' in target pq-l2; did you mean 'quick'?");
}

/* ---- plugins that cannot be trialled as they are ------------------------ */

static void test_info_without_oracle_is_not_ok(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "info", (char *)kb_path(COLD));
    assert_int_equal(r.code, 3);
    lacks(r.out, "status: ok");
    assert_string_equal(kb_field(&r, "oracle"), "none");
    assert_string_equal(kb_field(&r, "status"), "rejected");
    has(kb_field(&r, "reason"), "loads, but cannot be trialled: no oracle for target 'fx-cold'");
    has(kb_field(&r, "reason"), "pass --oracles DIR");
    /* with its oracle found, it is ok */
    KB_RUN(&r, "info", (char *)kb_path(COLD), "--oracles",
           (char *)kb_path("tests/fixtures/oracles"));
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "status"), "ok");
}

static void test_plain_library_points_to_foreign(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path(FOREIGN));
    assert_int_equal(r.code, 3);
    const char *why = kb_field(&r, "reason");
    has(why, "does not export kb_plugin_entry_v1");
    has(why, "kbench trial --foreign ");
    has(why, "libfx_foreign.so:SYMBOL --sig 'RET (TYPE NAME, ...)' --target TARGET");
    KB_RUN(&r, "info", (char *)kb_path(FOREIGN));
    assert_int_equal(r.code, 3);
    has(kb_field(&r, "reason"), "--foreign ");
}

/* C's own spellings, end to end: int, size_t, unsigned, uint64_t. */
static void test_sig_in_c_spellings(void **s)
{
    (void)s;
    kb_run r;
    char fn[4200];
    snprintf(fn, sizeof fn, "%s:fx_intersect_status", kb_path(FOREIGN));
    KB_RUN(&r, "verify", "--foreign", fn, "--sig",
           "int (const unsigned int *lists, size_t noffsets, uint64_t const *offsets, "
           "unsigned *out, size_t *produced)",
           "--target", "posting-intersect");
    if (r.code != 0) fail_msg("exit %d\n%s%s", r.code, r.out, r.err);
    assert_string_equal(kb_field(&r, "status"), "correct");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_misspelt_option_every_command),
        cmocka_unit_test(test_unknown_option_forms),
        cmocka_unit_test(test_value_that_looks_like_an_option),
        cmocka_unit_test(test_against_misspelt),
        cmocka_unit_test(test_unknown_target_lists_known),
        cmocka_unit_test(test_unknown_case_lists_cases),
        cmocka_unit_test(test_info_without_oracle_is_not_ok),
        cmocka_unit_test(test_plain_library_points_to_foreign),
        cmocka_unit_test(test_sig_in_c_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
