/*
 * test_target_q4_0_dot.c -- the q4-0-dot target end to end (tests/kb_target.h):
 * listed and pinned, every candidate this CPU runs passes the oracle's check,
 * a byte copy of the oracle is never kept; the lossy fixture (the vector
 * quantized again to 4 bits) fails the NMSE bound on every case, both
 * distributions; the generator gives the same bytes for a seed on every
 * platform, and its blocks are what ggml's quantizers make: q4_0 weights
 * with a finite scale and a nibble 0 (the value of largest magnitude is -8 d)
 * unless all is 0; q8_0 vectors with qs in [-127, 127], one of them +-127.
 */
#define TARGET      "q4-0-dot"
#define WRONG_FX    "fx_lossy_q4dot"
#define WRONG_CASES "quick"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/" TARGET "/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/" TARGET "/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/" TARGET "/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, TARGET);
    return t;
}

static void test_lossy_fails_nmse_on_every_case(void **s)
{
    (void)s;
    const kb_target *t = oracle_target();
    for (uint32_t c = 0; c < t->n_cases; c++) {
        kb_run r;
        KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/" WRONG_FX ".so"), "--cases",
               (char *)t->cases[c].name);
        if (r.code != 2 || strcmp(kb_field(&r, "status"), "incorrect") != 0 ||
            !strstr(kb_field(&r, "reason"), "normalized mean squared error "))
            fail_msg("%s: exit %d, %s: %s", t->cases[c].name, r.code, kb_field(&r, "status"),
                     kb_field(&r, "reason"));
    }
}

/* The blocks of one buffer: each scale a positive finite fp16 (or 0 with all
 * qs 0), every qs in [-127, 127] and the largest |qs| 127 (amax / 127 is the
 * scale). Returns the FNV-1a hash of the bytes. */
static uint64_t check_q4_blocks(const uint8_t *p, uint64_t bytes, uint64_t h)
{
    for (uint64_t b = 0; b < bytes; b += 18) {
        const uint16_t d = (uint16_t)(p[b] | p[b + 1] << 8);
        assert_true((d & 0x7C00) != 0x7C00); /* finite */
        int zero = 0;
        for (int j = 0; j < 16; j++) zero |= (p[b + 2 + j] & 0x0F) == 0 || (p[b + 2 + j] >> 4) == 0;
        assert_true((d & 0x7FFF) == 0 || zero);
    }
    for (uint64_t i = 0; i < bytes; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t check_blocks(const uint8_t *p, uint64_t bytes, uint64_t h)
{
    for (uint64_t b = 0; b < bytes; b += 34) {
        const uint16_t d = (uint16_t)(p[b] | p[b + 1] << 8);
        assert_true(d < 0x7C00); /* positive and finite */
        int amax = 0;
        for (int j = 0; j < 32; j++) {
            const int q = (int8_t)p[b + 2 + j];
            assert_true(q >= -127 && q <= 127);
            if ((q < 0 ? -q : q) > amax) amax = q < 0 ? -q : q;
        }
        assert_true(d == 0 ? amax == 0 : amax == 127);
    }
    for (uint64_t i = 0; i < bytes; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static void test_generator_blocks_and_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=4096,rows=128/outlier", 0, UINT64_C(0x930d615674debcf4)},
        {"n=4096,rows=128/outlier", 1, UINT64_C(0x03b65beeb4886708)},
        {"n=256,rows=1024/uniform", 0, UINT64_C(0x0eaeebcec37dafb3)},
    };
    const kb_target *t = oracle_target();
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        uint8_t *w = malloc(cs->lengths[0]), *x = malloc(cs->lengths[1]);
        assert_non_null(w);
        assert_non_null(x);
        kb_buffer bufs[3] = {{w, cs->lengths[0], 0, KB_DT_U8, 0},
                             {x, cs->lengths[1], 0, KB_DT_U8, 0},
                             {NULL, cs->lengths[2], 0, KB_DT_F32, 0}};
        char err[256];
        if (t->generate(cs, UINT64_C(0x5eed), golden[g].set, bufs, 3, err, sizeof err) != 0)
            fail_msg("%s", err);
        uint64_t h = check_q4_blocks(w, cs->lengths[0], UINT64_C(0xcbf29ce484222325));
        h = check_blocks(x, cs->lengths[1], h);
        if (h != golden[g].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[g].name,
                     golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
        free(w);
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_lossy_fails_nmse_on_every_case),
        cmocka_unit_test(test_generator_blocks_and_fixed_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
