/*
 * test_foreign.c -- foreign kernels (host/core/foreign.c): functions of a plain
 * shared library (tests/fixtures/foreign/libfx_foreign.so), described by
 * --sig, bound by name to a target's buffers and params, called through
 * libffi. Correct ones verify and get timed verdicts, wrong ones are
 * incorrect, and every binding mistake is rejected before the library runs,
 * with the binding the target expects.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* C's own type names, as this platform's ABI sizes them, bound to pq-l2's
 * param m (8..64: fits every integer type) and its u8 buffer codes. */
static void test_c_spellings(void **s)
{
    (void)s;
    kb__lib o;
    char err[1024], sig[512];
    const char *path = kb_path("oracles/pq-l2/oracle.so");
    if (kb__lib_open(path, path, 1, &o, err, sizeof err) != 0) fail_msg("%s", err);
#define INT_T(bytes, sgn)                              \
    ((bytes) == 1   ? ((sgn) ? KB__FT_I8 : KB_DT_U8)   \
     : (bytes) == 2 ? ((sgn) ? KB__FT_I16 : KB_DT_U16) \
     : (bytes) == 4 ? ((sgn) ? KB_DT_I32 : KB_DT_U32)  \
                    : ((sgn) ? KB_DT_I64 : KB_DT_U64))
    static const struct {
        const char *spelled;
        int type;
    } ok[] = {
        {"int", INT_T(sizeof(int), 1)},
        {"signed", INT_T(sizeof(int), 1)},
        {"signed int", INT_T(sizeof(int), 1)},
        {"unsigned", INT_T(sizeof(unsigned), 0)},
        {"unsigned int", INT_T(sizeof(unsigned), 0)},
        {"long", INT_T(sizeof(long), 1)},
        {"long int", INT_T(sizeof(long), 1)},
        {"unsigned long", INT_T(sizeof(long), 0)},
        {"long unsigned int", INT_T(sizeof(long), 0)},
        {"long long", INT_T(sizeof(long long), 1)},
        {"unsigned long long", INT_T(sizeof(long long), 0)},
        {"unsigned long long int", INT_T(sizeof(long long), 0)},
        {"short", INT_T(sizeof(short), 1)},
        {"short int", INT_T(sizeof(short), 1)},
        {"unsigned short", INT_T(sizeof(short), 0)},
        {"char", INT_T(1, CHAR_MIN < 0)},
        {"signed char", KB__FT_I8},
        {"unsigned char", KB_DT_U8},
        {"size_t", INT_T(sizeof(size_t), 0)},
        {"ssize_t", INT_T(sizeof(ssize_t), 1)},
        {"ptrdiff_t", INT_T(sizeof(ptrdiff_t), 1)},
        {"uintptr_t", INT_T(sizeof(uintptr_t), 0)},
        {"int8_t", KB__FT_I8},
        {"int16_t", KB__FT_I16},
        {"int32_t", KB_DT_I32},
        {"int64_t", KB_DT_I64},
        {"uint8_t", KB_DT_U8},
        {"uint16_t", KB_DT_U16},
        {"uint32_t", KB_DT_U32},
        {"uint64_t", KB_DT_U64},
        {"i8", KB__FT_I8},
        {"i16", KB__FT_I16},
        {"u32", KB_DT_U32},
        {"const int", INT_T(sizeof(int), 1)},
        {"int const", INT_T(sizeof(int), 1)},
    };
    kb__fplan p;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(sig, sizeof sig,
                 "void (const float *codebook, float const *query, const uint8_t *codes, "
                 "uint64_t n, uint32_t d, %s m, float *const dist)",
                 ok[i].spelled);
        if (kb__foreign_bind(o.target, sig, "f", &p, err, sizeof err) != 0)
            fail_msg("'%s': %s", ok[i].spelled, err);
        if (p.args[5].type != ok[i].type)
            fail_msg("'%s' is type %d, expected %d", ok[i].spelled, p.args[5].type, ok[i].type);
        assert_int_equal(p.args[5].kind, KB__FA_PARAM);
    }
    /* pointers: the pointee's type, const anywhere before the '*' */
    static const char *const u8ptr[] = {"const unsigned char *", "unsigned char const *",
                                        "const uint8_t *", "const u8 *",
                                        "const unsigned char *const "};
    for (size_t i = 0; i < sizeof u8ptr / sizeof u8ptr[0]; i++) {
        snprintf(sig, sizeof sig,
                 "void (const float *codebook, const double *query, %scodes, size_t n, "
                 "unsigned d, unsigned m, float *dist)",
                 u8ptr[i]);
        /* query is f32: double is refused, after codes parsed */
        assert_int_equal(kb__foreign_bind(o.target, sig, "f", &p, err, sizeof err), KB__EABI);
        assert_non_null(strstr(err, "'double *query' (f64 here) but query holds f32"));
        snprintf(sig, sizeof sig,
                 "void (const float *codebook, const float *query, %scodes, size_t n, "
                 "unsigned d, unsigned m, float *dist)",
                 u8ptr[i]);
        if (kb__foreign_bind(o.target, sig, "f", &p, err, sizeof err) != 0)
            fail_msg("'%s': %s", u8ptr[i], err);
        assert_int_equal(p.args[2].kind, KB__FA_BUF);
        assert_int_equal(p.args[2].type, KB_DT_U8);
    }
    /* return types: void or 32/64-bit integers in any spelling */
    assert_int_equal(kb__foreign_bind(o.target,
                                      "unsigned long long (const float *codebook, const float "
                                      "*query, const unsigned char *codes, float *dist)",
                                      "f", &p, err, sizeof err),
                     0);
    assert_int_equal(p.ret_type, INT_T(sizeof(long long), 0));
    assert_int_equal(kb__foreign_bind(o.target,
                                      "int (const float *codebook, const float *query, const "
                                      "unsigned char *codes, float *dist)",
                                      "f", &p, err, sizeof err),
                     0);
    assert_int_equal(p.ret_type, INT_T(sizeof(int), 1));
    /* not C, or not a type kbench can pass */
    static const struct {
        const char *sig, *msg;
    } bad[] = {
        {"void (long double m)", "'long double' is not a C type kbench can pass"},
        {"void (short long m)", "'short long' is not a C type kbench can pass"},
        {"void (unsigned float m)", "'unsigned float' is not a C type kbench can pass"},
        {"void (signed unsigned m)", "'signed unsigned' is not a C type kbench can pass"},
        {"void (int int m)", "'int int' is not a C type kbench can pass"},
        {"void (long long long m)", "'long long long' is not a C type kbench can pass"},
        {"void (char short m)", "'char short' is not a C type kbench can pass"},
        {"short (const float *codebook)", "return type 'short' is not void or a 32/64-bit"},
        {"double (const float *codebook)", "return type 'double' is not void or a 32/64-bit"},
        {"void (bool m)", "unknown type 'bool'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kb__foreign_bind(o.target, bad[i].sig, "f", &p, err, sizeof err),
                         KB__EUSAGE);
        if (!strstr(err, bad[i].msg)) fail_msg("'%s': %s", bad[i].sig, err);
    }
    /* i8/i16 scalars are checked against every case like the others */
    assert_int_equal(kb__foreign_bind(o.target,
                                      "void (const float *codebook, const float *query, const "
                                      "unsigned char *codes, size_t n, short d, signed char m, "
                                      "float *dist)",
                                      "f", &p, err, sizeof err),
                     0);
    assert_int_equal(kb__foreign_bind(o.target,
                                      "void (const float *codebook, const float *query, const "
                                      "unsigned char *codes, size_t n, signed char d, int m, "
                                      "float *dist)",
                                      "f", &p, err, sizeof err),
                     KB__EABI);
    assert_non_null(strstr(err, "'signed char d' cannot hold 128"));
#undef INT_T
    kb__lib_close(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_plan),
        cmocka_unit_test(test_c_spellings),
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
