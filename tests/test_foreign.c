/*
 * test_foreign.c -- foreign kernels (host/core/foreign.c): functions of a plain
 * shared library (tests/fixtures/foreign/libfx_foreign.so), described by
 * --sig, bound by name to a target's buffers and params, called through
 * libffi. Correct ones verify and get timed verdicts, wrong ones are
 * incorrect, and every binding mistake is rejected before the library runs,
 * with the binding the target expects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "foreign.h"
#include "kb_run.h"

#define LIB    "tests/fixtures/libfx_foreign.so"
#define PI_SIG "u64 (const u32 *lists, const u64 *offsets, u64 k, u32 *out)"
#define PI_EXPECTED                                                                       \
    "expected for target posting-intersect: buffers const u32 *lists (input), const u64 " \
    "*offsets (input), u32 *out (output, variable length"

static char *fn(const char *symbol)
{
    static char buf[4][4200];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s:%s", kb_path(LIB), symbol);
    return buf[i];
}

static void expect(const kb_run *r, const char *status, int code, const char *in_reason)
{
    const char *st = kb_field(r, "status");
    if (strcmp(st, status) || r->code != code ||
        (in_reason && !strstr(kb_field(r, "reason"), in_reason)))
        print_error("expected %s (%d) with '%s', got '%s' (%d)\nstdout:\n%s\nstderr:\n%s\n", status,
                    code, in_reason ? in_reason : "", st, r->code, r->out, r->err);
    assert_string_equal(kb_field(r, "status"), status);
    assert_int_equal(r->code, code);
    if (in_reason) assert_non_null(strstr(kb_field(r, "reason"), in_reason));
}

static void verify(kb_run *r, const char *symbol, const char *sig, const char *target)
{
    KB_RUN(r, "verify", "--foreign", fn(symbol), "--sig", (char *)sig, "--target", (char *)target);
}

/* ---- correct functions ------------------------------------------------ */

static void test_intersect_verifies(void **s)
{
    (void)s;
    kb_run r;
    verify(&r, "fx_intersect", PI_SIG, "posting-intersect");
    expect(&r, "correct", 0, "match the oracle");
    assert_string_equal(kb_field(&r, "target"), "posting-intersect");
    assert_string_equal(kb_field(&r, "candidate_name"), "fx_intersect");
    assert_non_null(strstr(kb_field(&r, "candidate"), "libfx_foreign.so:fx_intersect"));
}

/* A count binding, the produced count through an out-parameter and a
 * status return, all at once, on every case of the target. */
static void test_count_and_produced_bindings_verify(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", "--foreign", fn("fx_intersect_status"), "--sig",
           "i32 (const u32 *lists, u64 noffsets, const u64 *offsets, u32 *out, u64 *produced)",
           "--target", "posting-intersect", "--cases", "all");
    expect(&r, "correct", 0, "match the oracle");
    assert_int_equal(atoi(kb_field(&r, "cases")), 13);
}

/* A static buffer and three case params, float outputs. */
static void test_pq_verifies(void **s)
{
    (void)s;
    kb_run r;
    verify(&r, "fx_pq_l2",
           "void (const f32 *codebook, const f32 *query, const u8 *codes, u64 n, u32 d, u32 m, "
           "f32 *dist)",
           "pq-l2");
    expect(&r, "correct", 0, "match the oracle");
}

static void test_trial_gives_timed_verdict(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", "--foreign", fn("fx_intersect"), "--sig", PI_SIG, "--target",
           "posting-intersect", "--budget", "1");
    if (kb_emulated_timing_verdict(&r)) return; /* a claim about timing: the native run's */
    const char *st = kb_field(&r, "status");
    if (strcmp(st, "keep") && strcmp(st, "discard") && strcmp(st, "inconclusive"))
        print_error("not a timed verdict:\n%s\n%s\n", r.out, r.err);
    assert_true(!strcmp(st, "keep") || !strcmp(st, "discard") || !strcmp(st, "inconclusive"));
    assert_int_equal(r.code, !strcmp(st, "keep") ? 0 : !strcmp(st, "discard") ? 1 : 4);
    const double g = atof(kb_field(&r, "geomean_ratio"));
    assert_true(g > 0.0 && g < 100.0);
    assert_int_equal(atoi(kb_field(&r, "cases")), 4);
}

/* ---- the oracle judges it like any plugin ----------------------------- */

static void test_wrong_function_is_incorrect(void **s)
{
    (void)s;
    kb_run r;
    verify(&r, "fx_intersect_drops_last", PI_SIG, "posting-intersect");
    expect(&r, "incorrect", 2, "output 'out': produced");
}

static void test_sandbox_applies(void **s)
{
    (void)s;
    kb_run r;
    verify(&r, "fx_writes_input", "u64 (u32 *lists, const u64 *offsets, u32 *out)",
           "posting-intersect");
    expect(&r, "rejected", 3, "wrote to input (read-only memory)");
    verify(&r, "fx_opens_socket", "u64 (const u32 *lists, const u64 *offsets, u32 *out)",
           "posting-intersect");
    expect(&r, "rejected", 3, "forbidden system call: socket");
}

/* ---- binding mistakes: rejected, with the expected binding ------------ */

static void rejected_with(const char *sig, const char *problem)
{
    kb_run r;
    verify(&r, "fx_intersect", sig, "posting-intersect");
    expect(&r, "rejected", 3, problem);
    expect(&r, "rejected", 3, PI_EXPECTED);
    assert_null(strchr(kb_field(&r, "reason"), '\n'));
}

static void test_type_mismatch_rejected(void **s)
{
    (void)s;
    rejected_with("u64 (const u8 *lists, const u64 *offsets, u64 k, u32 *out)",
                  "'u8 *lists' but lists holds u32");
}

static void test_unknown_name_rejected(void **s)
{
    (void)s;
    /* The issue's own example: posting-intersect has no per-list buffers. */
    rejected_with("u32 (const u32 *a, u64 na, const u32 *b, u64 nb, u32 *out)",
                  "pointer 'a' names no buffer");
    rejected_with("u64 (const u32 *lists, const u64 *offsets, u64 kk, u32 *out)",
                  "'kk' names no param, buffer or element count");
}

static void test_missing_output_rejected(void **s)
{
    (void)s;
    rejected_with("u64 (const u32 *lists, const u64 *offsets, u64 k)",
                  "no parameter binds output 'out' (u32)");
}

static void test_const_output_rejected(void **s)
{
    (void)s;
    rejected_with("u64 (const u32 *lists, const u64 *offsets, u64 k, const u32 *out)",
                  "'out' is an output but declared const");
}

static void test_missing_count_rejected(void **s)
{
    (void)s;
    rejected_with("void (const u32 *lists, const u64 *offsets, u64 k, u32 *out)",
                  "nothing reports how many elements of output 'out' were written");
}

static void test_narrow_scalar_rejected(void **s)
{
    (void)s;
    rejected_with("u64 (const u32 *lists, const u64 *offsets, u8 n, u32 *out)",
                  "'u8 n' cannot hold 65536");
}

static void test_missing_symbol_rejected(void **s)
{
    (void)s;
    kb_run r;
    verify(&r, "fx_no_such_function", PI_SIG, "posting-intersect");
    expect(&r, "rejected", 3, "does not export 'fx_no_such_function'");
    verify(&r, "fx_table", PI_SIG, "posting-intersect");
    expect(&r, "rejected", 3, "'fx_table' is a data object, not a function");
}

static void test_usage_errors(void **s)
{
    (void)s;
    kb_run r;
    verify(&r, "fx_intersect", "u64 (const u32 *lists, const u64 *offsets, u64 k, u32 *out",
           "posting-intersect");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "--sig: expected ',' or ')'"));
    KB_RUN(&r, "verify", "--foreign", fn("fx_intersect"), "--target", "posting-intersect");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "--foreign needs --sig and --target"));
    KB_RUN(&r, "verify", "--foreign", (char *)kb_path(LIB), "--sig", PI_SIG, "--target",
           "posting-intersect");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "LIBRARY.so:SYMBOL"));
    KB_RUN(&r, "verify", "--foreign", fn("fx_intersect"), "--sig", PI_SIG, "--target", "no-such");
    expect(&r, "rejected", 3, "--target no-such: no oracle for target 'no-such'");
}

/* ---- the plan itself, against the oracle's spec ----------------------- */

static void test_bind_plan(void **s)
{
    (void)s;
    kb__lib o;
    char err[1024];
    const char *path = kb_path("oracles/posting-intersect/oracle.so");
    if (kb__lib_open(path, path, 1, &o, err, sizeof err) != 0) fail_msg("%s", err);
    kb__fplan p;
    /* spec order: lists (0), offsets (1), out (2); params k (0), n, ratio, overlap_ppm */
    assert_int_equal(kb__foreign_bind(o.target,
                                      "i32 (u32 const *lists, u32 len_offsets, const u64 *offsets, "
                                      "u64 n_out, u32 *out, u64 *produced, i64 overlap_ppm)",
                                      "f", &p, err, sizeof err),
                     0);
    assert_int_equal(p.n_args, 7);
    assert_int_equal(p.args[0].kind, KB__FA_BUF);
    assert_int_equal(p.args[0].index, 0);
    assert_int_equal(p.args[1].kind, KB__FA_COUNT);
    assert_int_equal(p.args[1].index, 1);
    assert_int_equal(p.args[1].type, KB_DT_U32);
    assert_int_equal(p.args[3].kind, KB__FA_COUNT); /* a scalar n_out: out's capacity */
    assert_int_equal(p.args[3].index, 2);
    assert_int_equal(p.args[5].kind, KB__FA_PRODUCED);
    assert_int_equal(p.args[5].index, 2);
    assert_int_equal(p.args[6].kind, KB__FA_PARAM);
    assert_int_equal(p.args[6].index, 3);
    assert_int_equal(p.ret_type, KB_DT_I32);
    assert_int_equal(p.ret_counts, 0); /* a status: the count comes through *produced */
    assert_int_equal(p.n_calls, 2);
    assert_int_equal(p.n_outs, 1);
    assert_string_equal(p.target, "posting-intersect");

    assert_int_equal(kb__foreign_bind(o.target, PI_SIG, "f", &p, err, sizeof err), 0);
    assert_int_equal(p.ret_counts, 1);
    assert_int_equal(p.ret_buf, 2);
    assert_int_equal(p.args[2].kind, KB__FA_PARAM);
    assert_int_equal(p.args[2].index, 0);

    /* A scalar named like a buffer, a float count, a repeated name. */
    assert_int_equal(kb__foreign_bind(o.target, "u64 (u64 lists, const u64 *offsets, u32 *out)",
                                      "f", &p, err, sizeof err),
                     KB__EABI);
    assert_non_null(strstr(err, "'lists' is a buffer: declare it as a pointer"));
    assert_int_equal(kb__foreign_bind(o.target,
                                      "u64 (const u32 *lists, const u64 *offsets, f64 k, u32 *out)",
                                      "f", &p, err, sizeof err),
                     KB__EABI);
    assert_non_null(strstr(err, "are integers"));
    assert_int_equal(kb__foreign_bind(o.target, "u64 (const u32 *lists, const u32 *lists)", "f", &p,
                                      err, sizeof err),
                     KB__EUSAGE);
    assert_non_null(strstr(err, "appears twice"));
    kb__lib_close(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_plan),
        cmocka_unit_test(test_intersect_verifies),
        cmocka_unit_test(test_count_and_produced_bindings_verify),
        cmocka_unit_test(test_pq_verifies),
        cmocka_unit_test(test_trial_gives_timed_verdict),
        cmocka_unit_test(test_wrong_function_is_incorrect),
        cmocka_unit_test(test_sandbox_applies),
        cmocka_unit_test(test_type_mismatch_rejected),
        cmocka_unit_test(test_unknown_name_rejected),
        cmocka_unit_test(test_missing_output_rejected),
        cmocka_unit_test(test_const_output_rejected),
        cmocka_unit_test(test_missing_count_rejected),
        cmocka_unit_test(test_narrow_scalar_rejected),
        cmocka_unit_test(test_missing_symbol_rejected),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
