/*
 * test_shape.c -- cases named by shape ("n=100000,d=128,m=16/uniform"):
 * the parser against a target built here, then against both shipped
 * oracles, whose shape() must give every listed case exactly the lengths
 * and figures its table lists; then `kbench verify`/`trial --case` end to
 * end, and an oracle built against the ABI 1.0 header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kb.h"
#include "kb_run.h"

#define FX_ORACLES KB_TEST_BUILD_DIR "/tests/fixtures/oracles"

static const char *const tq_params[] = {"n", "d", "m", "w"};
static const kb_buffer_spec tq_bufs[] = {
    {"table", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
    {"codes", KB_DT_U8, KB_ROLE_CALL, 0, 0},
    {"dist", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};
static const kb_param_range tq_ranges[] = {
    {1, 10000000, 1, 0, 0},
    {1, 4096, 1, 0, 0},
    {1, 256, 1, 0, 0},
    {8, 512, 8, KB_PARAM_POW2, 0},
};
static const char *const tq_dists[] = {"uniform", "clustered"};
static const kb_case_spec tq_cases[] = {
    {"n=64,d=8,m=2,w=8/uniform", KB_CASE_QUICK, 0, {64, 8, 2, 8}, {2048, 128, 64}, 1, 1},
};

static int tq_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    (void)cs, (void)seed, (void)set, (void)bufs, (void)n_bufs, (void)err, (void)err_len;
    return 0;
}

static int tq_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    const int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (d % m != 0) {
        snprintf(err, err_len, "m must divide d");
        return 1;
    }
    cs->lengths[0] = 256 * (uint64_t)d;
    cs->lengths[1] = (uint64_t)(n * m);
    cs->lengths[2] = (uint64_t)n;
    cs->bytes_per_call = (double)(n * m + 4 * n);
    return 0;
}

static kb_target tq_target(void)
{
    kb_target t = {
        .magic = KB_ABI_MAGIC,
        .abi_major = KB_ABI_MAJOR,
        .abi_minor = KB_ABI_MINOR,
        .struct_size = sizeof(kb_target),
        .name = "tq",
        .description = "a test target",
        .n_params = 4,
        .n_buffers = 3,
        .param_names = tq_params,
        .buffers = tq_bufs,
        .n_cases = 1,
        .cases = tq_cases,
        .generate = tq_generate,
        .param_ranges = tq_ranges,
        .distributions = tq_dists,
        .n_distributions = 2,
        .max_case_bytes = UINT64_C(1) << 20,
        .shape = tq_shape,
    };
    return t;
}

/* Parses spec; returns the code, with the message in err. */
static int parse(const kb_target *t, const char *spec, kb__shape *s, char *err, size_t len)
{
    err[0] = 0;
    return kb__shape_parse(t, spec, s, err, len);
}

static void expect_refused(const char *spec, const char *words)
{
    kb_target t = tq_target();
    kb__shape s;
    char err[512];
    assert_int_equal(parse(&t, spec, &s, err, sizeof err), KB__EUSAGE);
    if (!strstr(err, words)) fail_msg("%s: expected \"%s\" in \"%s\"", spec, words, err);
    assert_null(strchr(err, '\n'));
}

static void test_valid(void **state)
{
    (void)state;
    kb_target t = tq_target();
    char err[512];
    assert_int_equal(kb__spec_check(&t, "tq.so", err, sizeof err), 0);
    kb__shape s;
    assert_int_equal(parse(&t, "n=1000,d=128,m=16,w=64/uniform", &s, err, sizeof err), 0);
    assert_string_equal(s.cs.name, "n=1000,d=128,m=16,w=64/uniform");
    assert_ptr_equal(s.cs.name, s.name);
    assert_int_equal(s.cs.params[0], 1000);
    assert_int_equal(s.cs.params[3], 64);
    assert_int_equal(s.cs.lengths[0], 256 * 128);
    assert_int_equal(s.cs.lengths[1], 16000);
    assert_int_equal(s.cs.lengths[2], 1000);
    assert_int_equal(s.cs.flags, 0);
    /* Any order in, the target's order out: one shape, one name. */
    assert_int_equal(parse(&t, "w=8,m=16,d=128,n=1000/clustered", &s, err, sizeof err), 0);
    assert_string_equal(s.cs.name, "n=1000,d=128,m=16,w=8/clustered");
    assert_true(kb__shape_is_spec("n=1/uniform"));
    assert_false(kb__shape_is_spec("quick"));
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_refused("n=0,d=128,m=16,w=8/uniform",
                   "n=0 out of range for tq: n must be in [1, 10000000]");
    expect_refused("n=10000001,d=128,m=16,w=8/uniform", "n must be in [1, 10000000]");
    expect_refused("n=1,d=128,m=16,w=24/uniform",
                   "w=24 out of range for tq: w must be a power of two and a multiple of 8 in "
                   "[8, 512]");
    expect_refused("n=1,d=128,m=16,w=12/uniform", "w=12 out of range");
    expect_refused("n=-5,d=128,m=16,w=8/uniform", "n=-5 out of range");
    expect_refused("n=abc,d=128,m=16,w=8/uniform", "n=abc is not an integer");
    expect_refused("n=,d=128,m=16,w=8/uniform", "n= is not an integer");
    expect_refused("n=99999999999999999999,d=128,m=16,w=8/uniform", "is not an integer");
}

static void test_unknown_param(void **state)
{
    (void)state;
    expect_refused("n=1,k=2,d=128,m=16,w=8/uniform",
                   "unknown parameter 'k' for tq; its parameters: n, d, m, w");
    expect_refused("n=1,d,m=16,w=8/uniform", "unknown parameter 'd' for tq");
    expect_refused("n=1,n=2,d=128,m=16,w=8/uniform", "parameter n is given twice");
}

static void test_unknown_distribution(void **state)
{
    (void)state;
    expect_refused("n=1,d=128,m=16,w=8/zipf",
                   "unknown distribution 'zipf' for tq; its distributions: uniform, clustered");
    expect_refused("n=1,d=128,m=16,w=8", "has no distribution; end it with '/' and one of: "
                                         "uniform, clustered");
    expect_refused("n=1,d=128,m=16,w=8/", "has no distribution");
}

static void test_missing_param(void **state)
{
    (void)state;
    expect_refused("n=1,d=128,w=8/uniform",
                   "missing parameter m for tq; give each of n, d, m, w, then '/' and a "
                   "distribution");
}

static void test_buffer_cap(void **state)
{
    (void)state;
    /* 10^6 * (16 + 4) bytes + the table: 19.2 MiB, over the 1 MiB cap. */
    expect_refused("n=1000000,d=128,m=16,w=8/uniform",
                   "case n=1000000,d=128,m=16,w=8/uniform needs 19.2 MiB per input set, over "
                   "tq's cap of 1.0 MiB per set");
    expect_refused("n=1,d=10,m=3,w=8/uniform", "tq refuses case n=1,d=10,m=3,w=8/uniform: m must "
                                               "divide d");
}

/* A parameter left out is the oracle's to set; set outside its range, the
 * oracle is at fault, not the user. */
static int tq_shape_bad_default(kb_case_spec *cs, char *err, size_t err_len)
{
    cs->params[3] = 7; /* w: not a multiple of 8 */
    return tq_shape(cs, err, err_len);
}

static int tq_shape_default(kb_case_spec *cs, char *err, size_t err_len)
{
    if (cs->params[3] == KB_PARAM_UNSET) cs->params[3] = 64;
    return tq_shape(cs, err, err_len);
}

static void test_default_param(void **state)
{
    (void)state;
    static const kb_param_range ranges[] = {
        {1, 10000000, 1, 0, 0},
        {1, 4096, 1, 0, 0},
        {1, 256, 1, 0, 0},
        {8, 512, 8, KB_PARAM_DEFAULT, 0},
    };
    kb_target t = tq_target();
    t.param_ranges = ranges;
    t.shape = tq_shape_bad_default;
    kb__shape s;
    char err[512];
    assert_int_equal(parse(&t, "n=10,d=8,m=2/uniform", &s, err, sizeof err), KB__ESPEC);
    assert_non_null(strstr(err, "tq's shape() set w=7 for case n=10,d=8,m=2/uniform, outside"));
    /* Given, it is checked like any other; left out of the name. */
    assert_int_equal(parse(&t, "n=10,d=8,m=2,w=7/uniform", &s, err, sizeof err), KB__EUSAGE);
    assert_int_equal(parse(&t, "n=10,d=8,m=2,w=-9223372036854775808/uniform", &s, err, sizeof err),
                     KB__EUSAGE);
    t.shape = tq_shape_default;
    assert_int_equal(parse(&t, "n=10,d=8,m=2/uniform", &s, err, sizeof err), 0);
    assert_string_equal(s.name, "n=10,d=8,m=2/uniform");
    assert_int_equal(s.cs.params[3], 64);
    assert_int_equal(parse(&t, "n=10,d=8,m=2,w=16/uniform", &s, err, sizeof err), 0);
    assert_string_equal(s.name, "n=10,d=8,m=2,w=16/uniform");
    assert_int_equal(s.cs.params[3], 16);
}

/* An oracle built against ABI 1.0 ends before param_ranges: whatever lies
 * past its struct_size is not read, and it offers its fixed cases. */
static void test_fixed_only(void **state)
{
    (void)state;
    kb_target t = tq_target();
    t.struct_size = offsetof(kb_target, param_ranges);
    t.abi_minor = 0;
    char err[768];
    assert_int_equal(kb__spec_check(&t, "tq.so", err, sizeof err), 0);
    assert_null(kb__spec_ranges(&t));
    kb__shape s;
    assert_int_equal(parse(&t, "n=1,d=8,m=2,w=8/uniform", &s, err, sizeof err), KB__EUSAGE);
    assert_non_null(strstr(err, "target tq's oracle lists fixed cases only (ABI 1.0); choose one "
                                "of: 'n=64,d=8,m=2,w=8/uniform'"));
    /* An oracle of a later minor may leave the ranges out too. */
    t = tq_target();
    t.param_ranges = NULL;
    assert_int_equal(parse(&t, "n=1,d=8,m=2,w=8/uniform", &s, err, sizeof err), KB__EUSAGE);
    char want[64];
    snprintf(want, sizeof want, "fixed cases only (ABI %d.%d)", KB_ABI_MAJOR, KB_ABI_MINOR);
    if (!strstr(err, want)) fail_msg("%s: %s", want, err);
}

static void test_spec_checks_ranges(void **state)
{
    (void)state;
    static const kb_param_range bad[] = {
        {5, 1, 1, 0, 0}, {1, 2, 1, 0, 0}, {1, 2, 1, 0, 0}, {1, 2, 1, 0, 0}};
    static const char *const dup[] = {"uniform", "uniform"};
    static const char *const upper[] = {"Uniform"};
    const struct {
        int what;
        const char *words;
    } v[] = {
        {0, "range of parameter n: need min <= max"},
        {1, "param_ranges is set but shape is NULL"},
        {2, "param_ranges is set but max_case_bytes is 0"},
        {3, "n_distributions 0 must be 1..16"},
        {4, "distribution \"uniform\" is listed twice"},
        {5, "distribution 0: name \"Uniform\" must be"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        kb_target t = tq_target();
        switch (v[i].what) {
        case 0: t.param_ranges = bad; break;
        case 1: t.shape = NULL; break;
        case 2: t.max_case_bytes = 0; break;
        case 3: t.n_distributions = 0; break;
        case 4: t.distributions = dup; break;
        case 5: t.distributions = upper, t.n_distributions = 1; break;
        }
        char err[512] = "";
        assert_int_equal(kb__spec_check(&t, "tq.so", err, sizeof err), KB__ESPEC);
        if (!strstr(err, v[i].words)) fail_msg("expected \"%s\" in \"%s\"", v[i].words, err);
    }
}

/* The shipped oracle of `target`, loaded in this process (trusted). */
static void open_oracle(const char *target, kb__lib *lib)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/oracles/%s/oracle.so", KB_TEST_BUILD_DIR, target);
    if (kb__lib_open(path, path, 1, lib, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(kb__spec_check(lib->target, path, err, sizeof err), 0);
}

/* A listed case asked for by its own name as a shape is the same case:
 * same lengths, same figures, so a custom case follows the same rules. */
static void test_shipped_oracles_agree(void **state)
{
    (void)state;
    const char *targets[] = {"pq-l2", "posting-intersect", "ivf-partition", "vbyte-decode",
                             "bitpack-decode", "posting-seek", "predicate", "rmsnorm",
                             "softmax", "dictionary-decode", "take", "attn-decode",
                             "q8-0-dot", "q4-0-dot", "fts-bm25", "q4-0-matvec"};
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        kb__lib lib;
        open_oracle(targets[k], &lib);
        const kb_target *t = lib.target;
        assert_non_null(kb__spec_ranges(t));
        for (uint32_t i = 0; i < t->n_cases; i++) {
            const kb_case_spec *c = &t->cases[i];
            kb__shape s;
            char err[512];
            if (parse(t, c->name, &s, err, sizeof err) != 0) fail_msg("%s: %s", c->name, err);
            assert_string_equal(s.name, c->name);
            assert_memory_equal(s.cs.params, c->params, sizeof c->params);
            assert_memory_equal(s.cs.lengths, c->lengths, sizeof c->lengths);
            assert_true(s.cs.bytes_per_call == c->bytes_per_call);
            assert_true(s.cs.flops_per_call == c->flops_per_call);
        }
        kb__lib_close(&lib);
    }
}

static void test_shipped_messages(void **state)
{
    (void)state;
    kb__lib lib;
    kb__shape s;
    char err[512];
    open_oracle("pq-l2", &lib);
    assert_int_equal(parse(lib.target, "n=0,d=128,m=16/uniform", &s, err, sizeof err), KB__EUSAGE);
    assert_string_equal(err, "n=0 out of range for pq-l2: n must be in [1, 10000000]");
    assert_int_equal(parse(lib.target, "n=100000,d=128,m=16/uniform", &s, err, sizeof err), 0);
    assert_int_equal(parse(lib.target, "n=10000000,d=128,m=16/uniform", &s, err, sizeof err),
                     KB__EUSAGE);
    assert_non_null(strstr(err, "over pq-l2's cap of 32.0 MiB per set"));
    kb__lib_close(&lib);
    open_oracle("posting-intersect", &lib);
    assert_int_equal(
        parse(lib.target, "k=3,n=1000,ratio=4,overlap_ppm=10000/sparse", &s, err, sizeof err), 0);
    assert_int_equal(
        parse(lib.target, "k=3,n=1000,ratio=3,overlap_ppm=10000/sparse", &s, err, sizeof err),
        KB__EUSAGE);
    assert_non_null(strstr(err, "ratio must be a power of two"));
    kb__lib_close(&lib);
}

static void expect_case_line(const kb_run *r, const char *name)
{
    if (!strstr(r->out, name)) fail_msg("no case %s in:\n%s", name, r->out);
}

static void test_verify_custom(void **state)
{
    (void)state;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("plugins/pq-l2/portable.so"), "--case",
           "m=16,n=100000,d=128/uniform", "--case", "n=3000,d=96,m=12/clustered");
    if (r.code != 0) fail_msg("exit %d\n%s%s", r.code, r.out, r.err);
    assert_string_equal(kb_field(&r, "status"), "correct");
    assert_string_equal(kb_field(&r, "cases"), "2");
    /* --cases (the last one) and --case together: the quick cases and the shapes. */
    KB_RUN(&r, "verify", (char *)kb_path("plugins/posting-intersect/portable.so"), "--cases", "all",
           "--cases", "quick", "--case", "k=3,n=5000,ratio=8,overlap_ppm=20000/sparse", "--case",
           "k=4,n=3000,ratio=4,overlap_ppm=100000/zipf");
    if (r.code != 0) fail_msg("exit %d\n%s%s", r.code, r.out, r.err);
    assert_string_equal(kb_field(&r, "status"), "correct");
    assert_string_equal(kb_field(&r, "cases"), "6"); /* the 4 quick ones and the 2 shapes */
}

static void test_verify_refusals(void **state)
{
    (void)state;
    kb_run r;
    const char *pq = kb_path("plugins/pq-l2/portable.so");
    KB_RUN(&r, "verify", (char *)pq, "--case", "n=0,d=128,m=16/uniform");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "n=0 out of range for pq-l2: n must be in [1, 10000000]"));
    KB_RUN(&r, "verify", (char *)pq, "--case", "n=10,d=128,q=16/uniform");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "its parameters: n, d, m"));
    KB_RUN(&r, "verify", (char *)pq, "--case", "n=10,d=128,m=16/normal");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "its distributions: uniform, clustered"));
    KB_RUN(&r, "verify", (char *)pq, "--case", "n=10000000,d=4096,m=16/uniform");
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "cap of 32.0 MiB per set"));
    /* 28.7 MiB each: one fits, two together do not. */
    KB_RUN(&r, "verify", (char *)pq, "--case", "n=1500000,d=128,m=16/uniform", "--case",
           "n=1500000,d=128,m=16/clustered");
    assert_int_equal(r.code, 64);
    if (!strstr(r.err, "the shapes asked for need 57.5 MiB per input set together, over pq-l2's "
                       "cap of 32.0 MiB per set"))
        fail_msg("%s", r.err);
}

/* A verdict from timing: keep, discard or inconclusive (also where timing
 * cannot be trusted: host/core/trust.c); or, on a loaded machine, the
 * CPU-outside-timed-calls rejection that honest plugins draw there too
 * (COMMON timing flake). Never crash, incorrect, timeout or another
 * rejection. */
static void expect_timed(const kb_run *r)
{
    const char *st = kb_field(r, "status");
    if (!strcmp(st, "keep") || !strcmp(st, "discard") || !strcmp(st, "inconclusive")) return;
    if (!strcmp(st, "rejected") && strstr(kb_field(r, "reason"), "CPU outside timed calls")) return;
    fail_msg("status %s (exit %d)\n%s%s", st, r->code, r->out, r->err);
}

static void test_trial_custom(void **state)
{
    (void)state;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/pq-l2/portable.so"), "--case",
           "n=20000,d=64,m=8/clustered", "--budget", "1");
    expect_timed(&r);
    if (strcmp(kb_field(&r, "status"), "rejected")) /* the table comes with timing */
        expect_case_line(&r, "n=20000,d=64,m=8/clustered");
}

static void test_list_shows_ranges(void **state)
{
    (void)state;
    kb_run r;
    KB_RUN(&r, "list", "--oracles", FX_ORACLES);
    assert_int_equal(r.code, 0);
    if (!strstr(r.out, "any shape (--case 'NAME=VALUE,.../DISTRIBUTION'): n in [1, 10000000], d "
                       "in [1, 4096], m in [1, 4096]; distributions: uniform, clustered; at most "
                       "32.0 MiB per input set") ||
        !strstr(r.out, "no, listed cases only (its oracle is ABI 1.0)"))
        fail_msg("%s", r.out);
}

/* A foreign function's signature was checked against the listed cases;
 * a shape's parameter its type cannot hold is refused, not cut. */
static void test_foreign_param_width(void **state)
{
    (void)state;
    kb_run r;
    char fn[4096];
    snprintf(fn, sizeof fn, "%s:fx_pq_l2", kb_path("tests/fixtures/libfx_foreign.so"));
    const char *sig =
        "void (const f32 *codebook, const f32 *query, const u8 *codes, u64 n, u32 d, u8 m, "
        "f32 *dist)";
    KB_RUN(&r, "verify", "--foreign", fn, "--sig", (char *)sig, "--target", "pq-l2", "--case",
           "n=100,d=512,m=128/uniform");
    assert_string_equal(kb_field(&r, "status"), "correct");
    KB_RUN(&r, "verify", "--foreign", fn, "--sig", (char *)sig, "--target", "pq-l2", "--case",
           "n=100,d=512,m=512/uniform");
    assert_string_equal(kb_field(&r, "status"), "rejected");
    assert_non_null(
        strstr(kb_field(&r, "reason"), "parameter m=512 does not fit the signature's u8"));
}

/* A 1.0 oracle loads, verifies and trials on its listed cases; a shape it
 * does not list is refused with those cases named. */
static void test_abi_1_0_oracle(void **state)
{
    (void)state;
    kb_run r;
    const char *fx = kb_path("tests/fixtures/fx_abi10_copy.so");
    KB_RUN(&r, "verify", (char *)fx, "--oracles", FX_ORACLES, "--cases", "all");
    if (r.code != 0) fail_msg("exit %d\n%s%s", r.code, r.out, r.err);
    assert_string_equal(kb_field(&r, "status"), "correct");
    KB_RUN(&r, "verify", (char *)fx, "--oracles", FX_ORACLES, "--case", "n=16384/uniform");
    if (r.code != 0) fail_msg("exit %d\n%s%s", r.code, r.out, r.err);
    KB_RUN(&r, "verify", (char *)fx, "--oracles", FX_ORACLES, "--case", "n=1000/uniform");
    assert_int_equal(r.code, 64);
    if (!strstr(r.err, "target fx-abi10's oracle lists fixed cases only (ABI 1.0); choose one "
                       "of: 'n=4096/uniform' 'n=16384/uniform'"))
        fail_msg("%s", r.err);
    KB_RUN(&r, "trial", (char *)fx, "--oracles", FX_ORACLES, "--budget", "0.5");
    expect_timed(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_unknown_param),
        cmocka_unit_test(test_unknown_distribution),
        cmocka_unit_test(test_missing_param),
        cmocka_unit_test(test_buffer_cap),
        cmocka_unit_test(test_fixed_only),
        cmocka_unit_test(test_default_param),
        cmocka_unit_test(test_spec_checks_ranges),
        cmocka_unit_test(test_shipped_oracles_agree),
        cmocka_unit_test(test_shipped_messages),
        cmocka_unit_test(test_verify_custom),
        cmocka_unit_test(test_verify_refusals),
        cmocka_unit_test(test_trial_custom),
        cmocka_unit_test(test_abi_1_0_oracle),
        cmocka_unit_test(test_foreign_param_width),
        cmocka_unit_test(test_list_shows_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
