/*
 * test_target_take.c -- the take target end to end (tests/kb_target.h): listed and
 * pinned, every candidate this CPU runs matches the oracle, a byte copy of the oracle is
 * never kept; its wrong fixture (a run shortcut that trusts a group's first and last
 * index) is incorrect on clustered runs and right on sparse sorted indices; the generator gives
 * the same bits for a seed on every platform and the shape each distribution promises.
 */
#define TARGET      "take"
#define WRONG_FX    "fx_wrong_take"
#define WRONG_CASES "n=1048576,m=65536,w=4/clustered;n=262144,m=65535,w=8/clustered"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/take/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/take/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/take/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "take");
    return t;
}

/* Plausible: right where eight indices never end seven apart without being a run. Sparse
 * sorted indices (gaps 0..130) qualify; random ones do not quite (1 in n a window ends
 * seven apart by chance, a few times a trial at these sizes). */
static void test_wrong_fixture_is_right_on_sparse_sorted(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_take.so"), "--cases",
           "n=65536,m=1000,w=4/sorted");
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "status"), "correct");
}

/* Generates one set of a case, checks its shape and returns the FNV-1a of its inputs. */
static uint64_t generated_hash(const kb_case_spec *cs, uint32_t set)
{
    const kb_target *t = oracle_target();
    const uint64_t n = (uint64_t)cs->params[0], m = (uint64_t)cs->params[1];
    uint8_t *values = calloc(cs->lengths[0], 1);
    uint32_t *idx = calloc(m, sizeof *idx);
    assert_non_null(values);
    assert_non_null(idx);
    kb_buffer b[3] = {{values, cs->lengths[0], 0, KB_DT_U8, 0},
                      {idx, m, 0, KB_DT_U32, 0},
                      {NULL, cs->lengths[2], 0, KB_DT_U8, 0}};
    char err[256];
    if (t->generate(cs, UINT64_C(0x5eed), 0, b, 3, err, sizeof err) != 0) fail_msg("%s", err);
    if (set && t->generate(cs, UINT64_C(0x5eed), set, b, 3, err, sizeof err) != 0)
        fail_msg("%s", err);
    uint64_t up = 0, step1 = 0, same = 0;
    for (uint64_t i = 0; i < m; i++) {
        assert_true(idx[i] < n);
        if (i) {
            up += idx[i] >= idx[i - 1];
            step1 += idx[i] == idx[i - 1] + 1;
            same += idx[i] == idx[i - 1];
        }
    }
    if (strstr(cs->name, "/sorted")) assert_true(up == m - 1);
    if (strstr(cs->name, "/clustered")) /* runs of mean 32.5, 14 of 16 steps +1, 1 of 16 a repeat */
        assert_true(step1 > (m - 1) * 3 / 4 && same > m / 40 && same < m / 10);
    if (strstr(cs->name, "/random")) assert_true(step1 < m / 100 + 2);
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (uint64_t i = 0; i < cs->lengths[0]; i++) h = (h ^ values[i]) * UINT64_C(0x100000001b3);
    for (uint64_t i = 0; i < m * 4; i++) h = (h ^ ((uint8_t *)idx)[i]) * UINT64_C(0x100000001b3);
    free(values);
    free(idx);
    return h;
}

static void test_generator_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=1000,m=1000,w=4/random", 0, UINT64_C(0xeb49f64486e336f8)},
        {"n=1000,m=1000,w=4/random", 1, UINT64_C(0x2496b713ab0f01c2)},
        {"n=65536,m=1000,w=4/sorted", 0, UINT64_C(0x4f0a8c3992a18801)},
        {"n=4096,m=4099,w=8/clustered", 0, UINT64_C(0xfd6fa7e9b3b1d8e2)},
        {"n=262144,m=65535,w=8/clustered", 2, UINT64_C(0x59d279e467112102)},
    };
    const kb_target *t = oracle_target();
    int bad = 0;
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t h = generated_hash(cs, golden[g].set);
        if (h != golden[g].hash) {
            print_error("%s set %u: generator hash 0x%016llx, pinned 0x%016llx\n", golden[g].name,
                        golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_wrong_fixture_is_right_on_sparse_sorted),
        cmocka_unit_test(test_generator_fixed_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
