/*
 * test_target_q4_0_matvec.c -- the q4-0-matvec target end to end
 * (tests/kb_target.h), judged by its oracle's own check (ABI 1.2): its lossy
 * fixture sums in f16 and fails the NMSE bound, naming the case; the
 * generator's bytes are fixed (golden hashes); the OpenBLAS contender, where
 * built, verifies and runs to a timing verdict.
 */
#define TARGET      "q4-0-matvec"
#define WRONG_FX    "fx_lossy_q4mv"
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

static uint64_t fnv(uint64_t h, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static float half_to_float(const uint8_t *b) /* normal fp16 values only */
{
    const uint32_t h = (uint32_t)(b[0] | b[1] << 8), e = h >> 10 & 0x1F;
    float v = (float)(1024 + (h & 0x3FF));
    for (uint32_t k = e; k < 25; k++) v /= 2;
    for (uint32_t k = 25; k < e; k++) v *= 2;
    return (h & 0x8000) ? -v : v;
}

/* The generator gives the same bytes for a seed on every platform (the
 * aarch64 matrix runs this too), and `outlier` holds what it promises: a few
 * vector blocks with a scale many times the typical one. Set 1 leaves the
 * matrix (a static) alone and draws another vector. */
static void test_generator_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=2048,rows=512/outlier", 0, UINT64_C(0xf910b1c5ecaa8809)},
        {"n=2048,rows=512/outlier", 1, UINT64_C(0x89a5f23610cc6cd2)},
        {"n=2048,rows=2048/uniform", 0, UINT64_C(0x954fad671ef59aef)},
    };
    const kb_target *t = oracle_target();
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t nw = cs->lengths[0], nx = cs->lengths[1];
        uint8_t *w = calloc(nw, 1), *x = calloc(nx, 1);
        assert_non_null(w);
        assert_non_null(x);
        kb_buffer b[3] = {{w, nw, 0, KB_DT_U8, 0},
                          {x, nx, 0, KB_DT_U8, 0},
                          {NULL, cs->lengths[2], 0, KB_DT_F32, 0}};
        char err[256];
        if (t->generate(cs, UINT64_C(0x5eed), golden[g].set, b, 3, err, sizeof err) != 0)
            fail_msg("%s", err);
        if (golden[g].set != 0)
            for (uint64_t i = 0; i < nw; i++) assert_int_equal(w[i], 0);
        const uint64_t h = fnv(fnv(UINT64_C(0xcbf29ce484222325), w, nw), x, nx);
        if (strstr(golden[g].name, "/outlier")) {
            float lo = 1e30f, hi = 0;
            for (uint64_t k = 0; k < nx / 34; k++) {
                const float d = half_to_float(x + 34 * k);
                lo = d < lo ? d : lo, hi = d > hi ? d : hi;
            }
            if (!(hi > 5 * lo)) fail_msg("%s: vector scales %g to %g", golden[g].name, lo, hi);
        }
        if (h != golden[g].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[g].name,
                     golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
        free(w);
        free(x);
    }
}

static void test_lossy_reason_names_nmse(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/" WRONG_FX ".so"), "--cases", "quick");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "normalized mean squared error ")) fail_msg("reason: %s", why);
}

/* Every listed case, asked for by its params as an ad hoc shape, gives the
 * table's lengths and figures (what test_shape checks for the first
 * targets), and shape() refuses what prepare would. */
static void test_shape_agrees_with_cases(void **s)
{
    (void)s;
    const kb_target *t = oracle_target();
    assert_non_null(t->shape);
    for (uint32_t i = 0; i < t->n_cases; i++) {
        kb_case_spec c = t->cases[i];
        memset(c.lengths, 0, sizeof c.lengths);
        c.bytes_per_call = c.flops_per_call = 0;
        char err[256];
        if (t->shape(&c, err, sizeof err) != 0) fail_msg("%s: %s", c.name, err);
        assert_memory_equal(c.lengths, t->cases[i].lengths, sizeof c.lengths);
        assert_true(c.bytes_per_call == t->cases[i].bytes_per_call);
        assert_true(c.flops_per_call == t->cases[i].flops_per_call);
    }
    kb_case_spec bad = t->cases[0];
    bad.params[0] = 100; /* not a multiple of 32 */
    char err[256];
    assert_int_not_equal(t->shape(&bad, err, sizeof err), 0);
}

static void test_openblas_contender(void **s)
{
    (void)s;
    kb_check_contender("openblas", "libopenblas-dev");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS, cmocka_unit_test(test_lossy_reason_names_nmse),
        cmocka_unit_test(test_generator_fixed_outputs),
        cmocka_unit_test(test_shape_agrees_with_cases), cmocka_unit_test(test_openblas_contender)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
