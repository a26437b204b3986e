/*
 * test_target_attn_decode.c -- the attn-decode target end to end
 * (tests/kb_target.h), judged by its oracle's own check (ABI 1.2, an NMSE
 * bound over the output as llama.cpp's test-backend-ops judges flash
 * attention): the softmax without its maximum subtracted (fx_wrong_attn)
 * overflows on the peaked quick case, the f16 accumulator (fx_lossy_attn)
 * misses the bound on the long uniform quick case; the generator gives the
 * same bits for a seed on every platform, and its peaked queries put
 * scores past expf's overflow.
 */
#define TARGET      "attn-decode"
#define WRONG_FX    "fx_wrong_attn"
#define WRONG_CASES "quick"
#include <dlfcn.h>
#include <math.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/attn-decode/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/attn-decode/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/attn-decode/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "attn-decode");
    return t;
}

static void test_no_max_subtraction_overflows(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_attn.so"), "--cases",
           "n=1024,d=128,kv=32/peaked");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "NaN") && !strstr(why, "not finite")) fail_msg("reason: %s", why);
}

static void test_f16_accumulator_misses_the_bound(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_lossy_attn.so"), "--cases", "quick");
    assert_int_equal(r.code, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "case n=4096,d=128,kv=16/uniform") ||
        !strstr(why, "normalized mean squared error"))
        fail_msg("reason: %s", why);
}

/* FNV-1a of the K words and the query, per case and set. */
static void test_generator_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=1024,d=128,kv=32/peaked", 0, UINT64_C(0xde89e590d669845c)},
        {"n=1024,d=128,kv=32/peaked", 3, UINT64_C(0xf6fc683b7841b851)},
        {"n=2048,d=64,kv=16/peaked", 1, UINT64_C(0x827742bd61beda0b)},
        {"n=4096,d=128,kv=16/uniform", 0, UINT64_C(0x54b23a0ea7042024)},
    };
    const kb_target *t = oracle_target();
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        kb_buffer b[4];
        for (int i = 0; i < 4; i++) {
            b[i] = (kb_buffer){malloc(cs->lengths[i] * (i < 2 ? 2 : 4)), cs->lengths[i], 0,
                               t->buffers[i].dtype, 0};
            assert_non_null(b[i].data);
        }
        char err[256];
        for (uint32_t set = 0; set <= golden[g].set; set += golden[g].set ? golden[g].set : 1)
            if (t->generate(cs, UINT64_C(0x5eed), set, b, 4, err, sizeof err) != 0)
                fail_msg("%s", err);
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        const uint8_t *k = b[0].data, *q = b[2].data;
        for (uint64_t i = 0; i < b[0].count * 2; i++) h = (h ^ k[i]) * UINT64_C(0x100000001b3);
        for (uint64_t i = 0; i < b[2].count * 4; i++) h = (h ^ q[i]) * UINT64_C(0x100000001b3);
        if (strstr(golden[g].name, "/peaked") && strstr(golden[g].name, "kv=32")) {
            /* the query is aligned with a key: some score is large */
            const float *kf = b[0].data, *qf = b[2].data;
            const uint64_t n = (uint64_t)cs->params[0], d = (uint64_t)cs->params[1];
            float best = -INFINITY;
            for (uint64_t i = 0; i < n; i++) {
                float dot = 0.0f;
                for (uint64_t c = 0; c < d; c++) dot += kf[i * d + c] * qf[c];
                dot /= sqrtf((float)d);
                if (dot > best) best = dot;
            }
            assert_true(best > 20.0f);
        }
        if (h != golden[g].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[g].name,
                     golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
        for (int i = 0; i < 4; i++) free(b[i].data);
    }
}

/* Every listed case, its name parsed as a shape (ABI 1.1), gives the
 * table's lengths and figures. */
static void test_shape_agrees_with_cases(void **s)
{
    (void)s;
    const kb_target *t = oracle_target();
    for (uint32_t c = 0; c < t->n_cases; c++) {
        kb_case_spec cs = t->cases[c];
        memset(cs.lengths, 0, sizeof cs.lengths);
        cs.bytes_per_call = cs.flops_per_call = 0;
        char err[256];
        if (t->shape(&cs, err, sizeof err) != 0) fail_msg("%s: %s", cs.name, err);
        assert_memory_equal(cs.lengths, t->cases[c].lengths, sizeof cs.lengths);
        assert_true(cs.bytes_per_call == t->cases[c].bytes_per_call);
        assert_true(cs.flops_per_call == t->cases[c].flops_per_call);
    }
}

/* Tails: n not a multiple of the candidates' key blocks, d not a multiple
 * of their value accumulators, n = 1. */
static void test_candidates_verify_odd_shapes(void **s)
{
    (void)s;
    static const char *const files[] = {"portable", "avx2", "avx512", "neon"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128], why[512];
        snprintf(rel, sizeof rel, "plugins/" TARGET "/%s.so", files[i]);
        const char *path = kb_path(rel);
        if (access(path, R_OK) != 0 || !kb_pick_runs(path, why, sizeof why)) continue;
        kb_run r;
        KB_RUN(&r, "verify", (char *)path, "--case", "n=300,d=80,kv=16/peaked", "--case",
               "n=1,d=16,kv=32/uniform", "--case", "n=77,d=256,kv=32/peaked");
        if (r.code != 0) fail_msg("%s: exit %d\n%s\n%s", rel, r.code, r.out, r.err);
        assert_string_equal(kb_field(&r, "status"), "correct");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_no_max_subtraction_overflows),
        cmocka_unit_test(test_f16_accumulator_misses_the_bound),
        cmocka_unit_test(test_generator_fixed_outputs),
        cmocka_unit_test(test_shape_agrees_with_cases),
        cmocka_unit_test(test_candidates_verify_odd_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
