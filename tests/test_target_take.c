/*
 * test_target_take.c -- the take target end to end (tests/kb_target.h): listed and
 * pinned, every candidate this CPU runs matches the oracle, a byte copy of the oracle is
 * never kept; its wrong fixture (a run shortcut that trusts a group's first and last
 * index) is incorrect on clustered runs and right on sparse sorted indices; the generator gives
 * the same bits for a seed on every platform, the shape each distribution promises and
 * strings of 0..32 bytes.
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
    uint32_t *off = calloc(cs->lengths[1], sizeof *off), *idx = calloc(m, sizeof *idx);
    assert_non_null(values);
    assert_non_null(off);
    assert_non_null(idx);
    kb_buffer b[5] = {{values, cs->lengths[0], 0, KB_DT_U8, 0},
                      {off, cs->lengths[1], 0, KB_DT_U32, 0},
                      {idx, m, 0, KB_DT_U32, 0},
                      {NULL, cs->lengths[3], 0, KB_DT_U32, 0},
                      {NULL, cs->lengths[4], 0, KB_DT_U8, 0}};
    char err[256];
    if (t->generate(cs, UINT64_C(0x5eed), 0, b, 5, err, sizeof err) != 0) fail_msg("%s", err);
    if (set && t->generate(cs, UINT64_C(0x5eed), set, b, 5, err, sizeof err) != 0)
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
    if (cs->params[2] == 0) /* strings: 0..32 bytes, the one at n / 2 empty */
        for (uint64_t e = 0; e < n; e++) {
            assert_true(off[e + 1] >= off[e] && off[e + 1] - off[e] <= 32);
            if (e == n / 2) assert_int_equal(off[e + 1], off[e]);
        }
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (uint64_t i = 0; i < cs->lengths[0]; i++) h = (h ^ values[i]) * UINT64_C(0x100000001b3);
    for (uint64_t i = 0; i < cs->lengths[1] * 4; i++)
        h = (h ^ ((uint8_t *)off)[i]) * UINT64_C(0x100000001b3);
    for (uint64_t i = 0; i < m * 4; i++) h = (h ^ ((uint8_t *)idx)[i]) * UINT64_C(0x100000001b3);
    free(values);
    free(off);
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
        {"n=1000,m=1000,w=4/random", 0, UINT64_C(0xfef15b73f1262788)},
        {"n=1000,m=1000,w=4/random", 1, UINT64_C(0x10aab46ba9981c32)},
        {"n=65536,m=1000,w=4/sorted", 0, UINT64_C(0x7795589ea56cf451)},
        {"n=4096,m=4099,w=8/clustered", 0, UINT64_C(0xb1406488459eba22)},
        {"n=262144,m=65535,w=8/clustered", 2, UINT64_C(0x45685358eebd9562)},
        {"n=1000,m=1001,w=0/sorted", 1, UINT64_C(0x3cb76306d9e218f2)},
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
