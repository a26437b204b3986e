/*
 * test_target_dictionary_decode.c -- the dictionary-decode target end to end
 * (tests/kb_target.h): listed and pinned, every candidate this CPU runs matches the oracle,
 * a byte copy of the oracle is never kept; its wrong fixture (a tail that reads u16 and u32
 * codes as bytes) is right on the quick cases and incorrect on a tail with wide codes; the
 * generator gives the same bits for a seed on every platform, codes inside the dictionary,
 * strings of 0..32 bytes and the skew each distribution promises.
 */
#define TARGET      "dictionary-decode"
#define WRONG_FX    "fx_wrong_dict"
#define WRONG_CASES "n=4099,d=300,k=2,w=4/zipf;n=65535,d=65536,k=2,w=8/uniform"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/dictionary-decode/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/dictionary-decode/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/dictionary-decode/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "dictionary-decode");
    return t;
}

static void test_wrong_fixture_is_right_without_a_tail(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_dict.so"), "--cases", "quick");
    assert_int_equal(r.code, 0); /* plausible: every quick case has n % 8 == 0 */
    assert_string_equal(kb_field(&r, "status"), "correct");
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Generates one set of a case, checks its invariants and returns the FNV-1a of its inputs. */
static uint64_t generated_hash(const kb_case_spec *cs, uint32_t set)
{
    const kb_target *t = oracle_target();
    const int64_t n = cs->params[0], d = cs->params[1], k = cs->params[2], w = cs->params[3];
    static const uint32_t dt[5] = {KB_DT_U8, KB_DT_U32, KB_DT_U8, KB_DT_U32, KB_DT_U8};
    static const size_t sz[3] = {1, 4, 1};
    void *mem[3];
    kb_buffer b[5];
    for (int i = 0; i < 5; i++) { /* the three inputs, then the outputs (no data) */
        if (i < 3) assert_non_null(mem[i] = calloc(cs->lengths[i], sz[i]));
        b[i] = (kb_buffer){i < 3 ? mem[i] : NULL, cs->lengths[i], 0, dt[i], 0};
    }
    char err[256];
    if (t->generate(cs, UINT64_C(0x5eed), 0, b, 5, err, sizeof err) != 0) fail_msg("%s", err);
    if (set && t->generate(cs, UINT64_C(0x5eed), set, b, 5, err, sizeof err) != 0)
        fail_msg("%s", err);
    const uint8_t *codes = mem[2];
    const uint32_t *off = mem[1];
    uint64_t zeros = 0, top = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = 0;
        for (int64_t j = 0; j < k; j++) c |= (uint64_t)codes[i * k + j] << (8 * j);
        assert_true(c < (uint64_t)d);
        zeros += c == 0;
        top += c == (uint64_t)(d - 1);
    }
    if (strstr(cs->name, "/zipf")) assert_true(zeros > (uint64_t)n / 20 && zeros > 4 * top);
    if (strstr(cs->name, "/uniform")) assert_true(zeros < 2 * (uint64_t)n / (uint64_t)d + 20);
    if (w == 0) {
        assert_int_equal(off[0], 0);
        for (int64_t e = 0; e < d; e++) {
            assert_true(off[e + 1] >= off[e] && off[e + 1] - off[e] <= 32);
            if (e == d / 2) assert_int_equal(off[e + 1], off[e]);
        }
    }
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (int i = 0; i < 3; i++) h = fnv(h, mem[i], cs->lengths[i] * sz[i]);
    for (int i = 0; i < 3; i++) free(mem[i]);
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
        {"n=4099,d=300,k=2,w=4/zipf", 0, UINT64_C(0x4622fed544126fca)},
        {"n=4099,d=300,k=2,w=4/zipf", 1, UINT64_C(0x75802bcfcb1d691d)},
        {"n=1000,d=16,k=1,w=8/uniform", 0, UINT64_C(0x42b4344161e5f30f)},
        {"n=1000,d=16,k=1,w=0/uniform", 0, UINT64_C(0x1b7a8e42cf772fe1)},
        {"n=65536,d=1000,k=2,w=0/zipf", 2, UINT64_C(0x3f06674b3983277b)},
        {"n=100003,d=20000,k=4,w=4/zipf", 0, UINT64_C(0x6f94ed2a71563e41)},
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
        cmocka_unit_test(test_wrong_fixture_is_right_without_a_tail),
        cmocka_unit_test(test_generator_fixed_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
