/*
 * test_target_bitpack_decode.c -- the bitpack-decode target end to end
 * (tests/kb_target.h): listed and pinned, every candidate this CPU runs matches the
 * oracle, a byte copy of the oracle is never kept; its wrong fixture (the last, partial
 * chunk read as plain bit packing) is right on whole chunks and incorrect on a partial
 * one; the generator gives the same bits for a seed on every platform, chunk headers
 * within 0..b and a packed stream that decodes, by an independent reading of FastLanes'
 * layout, to values within each chunk's width.
 */
#define TARGET      "bitpack-decode"
#define WRONG_FX    "fx_wrong_bitpack"
#define WRONG_CASES "n=100000,b=7/real;n=1000,b=1/fixed"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/bitpack-decode/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/bitpack-decode/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/bitpack-decode/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "bitpack-decode");
    return t;
}

static void test_wrong_fixture_is_right_on_whole_chunks(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_wrong_bitpack.so"), "--cases",
           "n=65536,b=3/fixed;n=65536,b=11/real");
    assert_int_equal(r.code, 0); /* plausible: n a multiple of 1024 */
    assert_string_equal(kb_field(&r, "status"), "correct");
}

/* Value v of a chunk of width w, read bit by bit: FastLanes puts value
 * FL_ORDER[r / 8] * 16 + (r % 8) * 128 + l at bits r * w .. r * w + w - 1 of lane l,
 * lane l's bits running LSB first through words l, 32 + l, 64 + l, ... */
static uint32_t fl_value(const uint32_t *packed, uint32_t w, uint32_t v)
{
    static const uint32_t order[8] = {0, 4, 2, 6, 1, 5, 3, 7};
    uint32_t lane, r = 0;
    for (; r < 32; r++) {
        uint32_t base = order[r / 8] * 16 + (r % 8) * 128;
        if (v >= base && v < base + 32) break;
    }
    assert_true(r < 32);
    lane = v - (order[r / 8] * 16 + (r % 8) * 128);
    uint32_t x = 0;
    for (uint32_t b = 0; b < w; b++) {
        uint32_t bit = r * w + b;
        x |= ((packed[32 * (bit / 32) + lane] >> (bit % 32)) & 1u) << b;
    }
    return x;
}

static void test_generator_layout_and_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=1000,b=1/fixed", 0, UINT64_C(0xe819bb4035fe7630)},
        {"n=30000,b=13/real", 0, UINT64_C(0x199d74b788863789)},
        {"n=30000,b=13/real", 1, UINT64_C(0xc50c50961c578cde)},
        {"n=4097,b=32/fixed", 0, UINT64_C(0x8b66a430b03d7167)},
    };
    const kb_target *t = oracle_target();
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t cap = cs->lengths[0], n = cs->lengths[1];
        const uint32_t b = (uint32_t)cs->params[1];
        uint32_t *p = malloc(cap * sizeof *p);
        assert_non_null(p);
        kb_buffer bufs[2] = {{p, cap, 0, KB_DT_U32, 0}, {NULL, n, 0, KB_DT_U32, 0}};
        char err[256];
        if (t->generate(cs, UINT64_C(0x5eed), golden[g].set, bufs, 2, err, sizeof err) != 0)
            fail_msg("%s", err);
        uint64_t pos = 0, h = UINT64_C(0xcbf29ce484222325), narrow = 0;
        for (uint64_t done = 0; done < n; done += 1024) {
            const uint32_t w = p[pos++];
            assert_true(w <= b);
            narrow += w < b;
            uint32_t max = 0;
            for (uint32_t v = 0; v < 1024; v++) {
                uint32_t x = fl_value(p + pos, w, v);
                if (done + v >= n) assert_int_equal(x, 0); /* zero padding */
                if (x > max) max = x;
            }
            /* the width Lance's statistic gives: the bits of the chunk's largest value */
            if (w > 0) assert_true(max >> (w - 1) == 1);
            if (w == 0) assert_int_equal(max, 0);
            pos += 32 * w;
        }
        assert_true(pos <= cap);
        if (strstr(golden[g].name, "/fixed")) assert_int_equal(narrow, 0);
        for (uint64_t i = 0; i < cap; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
        if (h != golden[g].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[g].name,
                     golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_wrong_fixture_is_right_on_whole_chunks),
        cmocka_unit_test(test_generator_layout_and_fixed_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
