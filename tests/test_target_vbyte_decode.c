/*
 * test_target_vbyte_decode.c -- the vbyte-decode target end to end (tests/kb_target.h):
 * listed and pinned, every candidate this CPU runs matches the oracle, a byte copy of the
 * oracle is never kept; its wrong fixture (a tail loaded without its length mask) is right
 * on whole control bytes and incorrect on a tail; the generator gives the same bits for a
 * seed on every platform and the code mix each distribution promises; the streamvbyte
 * library's decoder, where built, verifies on every case and runs to a timing verdict.
 */
#define TARGET      "vbyte-decode"
#define WRONG_FX    "fx_wrong_vbyte"
#define WRONG_CASES "n=65539/postings;n=1023/zipf"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/vbyte-decode/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/vbyte-decode/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/vbyte-decode/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "vbyte-decode");
    return t;
}

static void test_wrong_fixture_is_right_without_a_tail(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_vbyte.so"), "--cases", "quick");
    assert_int_equal(r.code, 0); /* plausible: every quick case has n % 4 == 0 */
    assert_string_equal(kb_field(&r, "status"), "correct");
}

/* Decodes a stream with the format's definition; returns the data bytes and counts codes. */
static uint64_t decode(const uint8_t *s, uint64_t n, uint32_t *out, uint64_t codes[4])
{
    const uint8_t *d = s + (n + 3) / 4, *d0 = d;
    for (uint64_t i = 0; i < n; i++) {
        unsigned c = (s[i / 4] >> (2 * (i % 4))) & 3;
        uint32_t v = 0;
        for (unsigned b = 0; b <= c; b++) v |= (uint32_t)*d++ << (8 * b);
        /* the encoder chose the shortest code */
        assert_true(c == 0 || v >> (8 * c) != 0);
        out[i] = v;
        codes[c]++;
    }
    return (uint64_t)(d - d0);
}

static void test_generator_codes_and_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=4096/postings", 0, UINT64_C(0xe4feb9397a6e9d39)},
        {"n=4096/postings", 1, UINT64_C(0xd214f321f7afc210)},
        {"n=65536/uniform", 0, UINT64_C(0xfd1f8a00db96848c)},
        {"n=1023/zipf", 0, UINT64_C(0x796dbf2cdd65a5fb)},
    };
    const kb_target *t = oracle_target();
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t cap = cs->lengths[0], n = cs->lengths[1];
        uint8_t *st = malloc(cap);
        uint32_t *out = malloc(n * sizeof *out);
        assert_non_null(st);
        assert_non_null(out);
        kb_buffer b[2] = {{st, cap, 0, KB_DT_U8, 0}, {out, n, 0, KB_DT_U32, 0}};
        char err[256];
        if (t->generate(cs, UINT64_C(0x5eed), golden[g].set, b, 2, err, sizeof err) != 0)
            fail_msg("%s", err);
        uint64_t codes[4] = {0}, used = decode(st, n, out, codes), h = UINT64_C(0xcbf29ce484222325);
        for (uint64_t i = (n + 3) / 4 + used; i < cap; i++) assert_int_equal(st[i], 0);
        assert_true(cap - ((n + 3) / 4 + used) >= 16); /* the padding */
        for (uint64_t i = 0; i < cap; i++) h = (h ^ st[i]) * UINT64_C(0x100000001b3);
        if (strstr(golden[g].name, "/postings")) assert_true(codes[0] > n * 8 / 10);
        if (strstr(golden[g].name, "/uniform")) assert_true(codes[3] > n * 7 / 10);
        if (strstr(golden[g].name, "/zipf"))
            for (int c = 0; c < 4; c++) assert_true(codes[c] > n / 8);
        if (h != golden[g].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[g].name,
                     golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
        free(st);
        free(out);
    }
}

/* A timed verdict: the plugin loaded, was correct and was measured. */
static void test_streamvbyte_contender(void **s)
{
    (void)s;
    kb_check_contender("streamvbyte", "libstreamvbyte-dev");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_wrong_fixture_is_right_without_a_tail),
        cmocka_unit_test(test_generator_codes_and_fixed_outputs),
        cmocka_unit_test(test_streamvbyte_contender),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
