/*
 * test_target_predicate.c -- the predicate target end to end (tests/kb_target.h): listed
 * and pinned, every candidate this CPU runs matches the oracle, a byte copy of the oracle
 * is never kept; its wrong fixtures are incorrect: IEEE float compares where arrow-rs uses
 * totalOrder (right on the integer cases), and null rows selected by their value slot;
 * the generator gives the same bits for a seed on every platform and the specials it
 * promises (NaN of both signs, both zeros and infinities in f32 columns; about 3% nulls,
 * some over values that would match).
 */
#define TARGET      "predicate"
#define WRONG_FX    "fx_wrong_pred"
#define WRONG_CASES "n=100000/f32_lt;n=65536/f32_eq"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/predicate/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/predicate/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/predicate/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "predicate");
    return t;
}

/* IEEE float compares: right wherever no float is compared. */
static void test_wrong_fixture_is_right_on_integers(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_pred.so"), "--cases",
           "n=262144/i32_eq;n=131072/i64_lt;n=131072/i32_in");
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "status"), "correct");
}

static void test_null_rows_are_never_selected(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_pred_nulls.so"), "--cases",
           "n=262144/i32_eq;n=131072/i64_lt");
    assert_int_equal(r.code, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    assert_non_null(strstr(kb_field(&r, "reason"), "case n="));
}

static void test_generator_specials_and_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=65536/f32_eq", 0, UINT64_C(0x0020b9b7d286df36)},  {"n=65536/f32_eq", 1, UINT64_C(0x720e7f41ceaa02e0)},
        {"n=262144/i32_eq", 0, UINT64_C(0x5e24fd153834e2da)}, {"n=131072/i64_lt", 0, UINT64_C(0x5a48369174ee43a6)},
        {"n=65537/f32_in", 0, UINT64_C(0xea330254db2fec5f)},
    };
    const kb_target *t = oracle_target();
    int bad = 0;
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t n = (uint64_t)cs->params[0], cb = cs->lengths[0], vb = cs->lengths[1];
        uint8_t *col = malloc(cb), *valid = malloc(vb);
        uint64_t consts[9];
        assert_true(col && valid);
        kb_buffer b[5] = {{col, cb, 0, KB_DT_U8, 0},
                          {valid, vb, 0, KB_DT_U8, 0},
                          {consts, 9, 0, KB_DT_U64, 0},
                          {NULL, vb, 0, KB_DT_U8, 0},
                          {NULL, n, 0, KB_DT_U32, 0}};
        char err[256];
        if (t->generate(cs, UINT64_C(0x5eed), golden[g].set, b, 5, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_true(consts[0] >= 1 && consts[0] <= 8);
        uint64_t nulls = 0, pnan = 0, nnan = 0, nzero = 0, pzero = 0, inf = 0, matching_null = 0;
        const int f32 = strstr(golden[g].name, "/f32") != NULL, w = (int)(cb / n);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = 0;
            for (int q = 0; q < w; q++) v |= (uint64_t)col[i * w + q] << (8 * q);
            const int null = !((valid[i / 8] >> (i % 8)) & 1);
            nulls += null;
            matching_null += null && v == consts[1];
            if (f32) {
                const uint32_t u = (uint32_t)v;
                pnan += (u & 0xff800000u) == 0x7f800000u && (u & 0x7fffff);
                nnan += (u & 0xff800000u) == 0xff800000u && (u & 0x7fffff);
                nzero += u == 0x80000000u;
                pzero += u == 0;
                inf += (u & 0x7fffffffu) == 0x7f800000u;
            }
        }
        for (uint64_t i = n; i < vb * 8; i++) assert_int_equal((valid[i / 8] >> (i % 8)) & 1, 0);
        assert_true(nulls > n / 100 && nulls < n / 10);
        assert_true(matching_null > nulls / 4);
        if (f32) assert_true(pnan > 0 && nnan > 0 && nzero > 0 && pzero > 0 && inf > 0);
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (uint64_t i = 0; i < cb; i++) h = (h ^ col[i]) * UINT64_C(0x100000001b3);
        for (uint64_t i = 0; i < vb; i++) h = (h ^ valid[i]) * UINT64_C(0x100000001b3);
        for (int q = 0; q < 9; q++)
            for (int y = 0; y < 8; y++)
                h = (h ^ ((consts[q] >> (8 * y)) & 0xff)) * UINT64_C(0x100000001b3);
        if (h != golden[g].hash) {
            print_error("%s set %u: generator hash 0x%016llx, pinned 0x%016llx\n", golden[g].name,
                        golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
            bad++;
        }
        free(col);
        free(valid);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_wrong_fixture_is_right_on_integers),
        cmocka_unit_test(test_null_rows_are_never_selected),
        cmocka_unit_test(test_generator_specials_and_fixed_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
