/*
 * test_target_fts_bm25.c -- the fts-bm25 target end to end (tests/kb_target.h), judged by
 * its oracle's own check (ABI 1.2, relative error 1e-6 a score): the wrong fixture reads a
 * posting's document length at the posting's index instead of its doc id and the verdict
 * names the score; the lossy one (x86-64) divides with an approximate reciprocal and no
 * Newton step and is incorrect too; the generator's outputs are pinned by hash.
 */
#define TARGET      "fts-bm25"
#define WRONG_FX    "fx_wrong_bm25"
#define WRONG_CASES "quick"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/fts-bm25/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/fts-bm25/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/fts-bm25/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "fts-bm25");
    return t;
}

static uint64_t fnv(uint64_t h, const void *p, uint64_t bytes)
{
    const uint8_t *b = p;
    for (uint64_t i = 0; i < bytes; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* The distributions promised in the oracle's comment, and the same bits on every platform. */
static void check_set(const char *name, const uint32_t *len, uint64_t docs, const uint32_t *ids,
                      const uint32_t *tf, uint64_t n, float idf)
{
    uint64_t small_tf = 0, short_docs = 0;
    for (uint64_t i = 0; i < n; i++) {
        assert_true(ids[i] < docs && (i == 0 || ids[i] > ids[i - 1]));
        assert_true(tf[i] >= 1 && tf[i] <= 64);
        small_tf += tf[i] <= 3;
    }
    for (uint64_t d = 0; d < docs; d++) {
        assert_true(len[d] >= 1 && len[d] <= 65535);
        short_docs += len[d] <= 128;
    }
    assert_true(idf > 0.0f && idf < 20.0f);
    if (strstr(name, "/zipf")) {
        assert_true(small_tf > n * 80 / 100 && small_tf < n * 88 / 100); /* P(<= 3) = 0.84 */
        assert_true(short_docs > docs * 45 / 100 && short_docs < docs * 55 / 100); /* median */
    } else {
        assert_true(small_tf > n * 15 / 100 && small_tf < n * 23 / 100); /* 3 of 16 */
        assert_true(short_docs > docs * 22 / 100 && short_docs < docs * 28 / 100);
    }
}

static void test_generator_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=1000,docs=100000/zipf", 0, UINT64_C(0x45e6dfefc01d85fd)},
        {"n=1000,docs=100000/zipf", 1, UINT64_C(0x7588240387b15ccb)},
        {"n=10000,docs=100000/uniform", 0, UINT64_C(0x819a74c3ece3903b)},
    };
    const kb_target *t = oracle_target();
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t docs = cs->lengths[0], n = cs->lengths[1];
        uint32_t *len = calloc(docs, 4), *ids = calloc(n, 4), *tf = calloc(n, 4);
        float *sc = calloc(n, 4), idf = 0;
        assert_true(len && ids && tf && sc);
        kb_buffer b[5] = {{len, docs, 0, KB_DT_U32, 0},
                          {ids, n, 0, KB_DT_U32, 0},
                          {tf, n, 0, KB_DT_U32, 0},
                          {&idf, 1, 0, KB_DT_F32, 0},
                          {sc, n, 0, KB_DT_F32, 0}};
        char err[256];
        /* set 0 writes the statics; a later set reuses them */
        if (t->generate(cs, UINT64_C(0x5eed), 0, b, 5, err, sizeof err) != 0 ||
            t->generate(cs, UINT64_C(0x5eed), golden[g].set, b, 5, err, sizeof err) != 0)
            fail_msg("%s", err);
        check_set(golden[g].name, len, docs, ids, tf, n, idf);
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        h = fnv(h, len, docs * 4), h = fnv(h, ids, n * 4), h = fnv(h, tf, n * 4);
        h = fnv(h, &idf, 4);
        if (h != golden[g].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[g].name,
                     golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
        free(len), free(ids), free(tf), free(sc);
    }
}

static void test_wrong_reason_names_the_score(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/" WRONG_FX ".so"), "--cases", "quick");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "scores[") || !strstr(why, "relative error"))
        fail_msg("reason: %s", why);
}

static void test_lossy_reciprocal_is_incorrect(void **s)
{
    (void)s;
    const char *path = kb_path("tests/fixtures/fx_lossy_bm25.so");
    char why[512];
    if (access(path, R_OK) != 0 || !kb_pick_runs(path, why, sizeof why)) {
        print_message("fx_lossy_bm25.so not built or not run here: skipping\n");
        skip();
    }
    kb_run r;
    KB_RUN(&r, "verify", (char *)path, "--cases", "all");
    assert_int_equal(r.code, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    if (!strstr(kb_field(&r, "reason"), "relative error"))
        fail_msg("reason: %s", kb_field(&r, "reason"));
}

/* Every listed case's name, given to the oracle's shape() as an ad hoc shape, is that case
 * (the check tests/test_shape.c makes for the built-in oracles). */
static void test_listed_cases_are_shapes(void **s)
{
    (void)s;
    const kb_target *t = oracle_target();
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
}

/* An odd n (tails of every vector width and chunk) and a small corpus, as an ad hoc shape. */
static void test_candidates_verify_odd_shape(void **s)
{
    (void)s;
    static const char *const files[] = {"portable", "avx2", "avx512", "neon"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128], why[512];
        snprintf(rel, sizeof rel, "plugins/" TARGET "/%s.so", files[i]);
        const char *path = kb_path(rel);
        if (access(path, R_OK) != 0 || !kb_pick_runs(path, why, sizeof why)) continue;
        kb_run r;
        KB_RUN(&r, "verify", (char *)path, "--case", "n=1037,docs=4099/zipf");
        if (r.code != 0) fail_msg("%s: exit %d\n%s\n%s", rel, r.code, r.out, r.err);
        assert_string_equal(kb_field(&r, "status"), "correct");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {KB_TARGET_TESTS,
                                       cmocka_unit_test(test_wrong_reason_names_the_score),
                                       cmocka_unit_test(test_lossy_reciprocal_is_incorrect),
                                       cmocka_unit_test(test_generator_fixed_outputs),
                                       cmocka_unit_test(test_listed_cases_are_shapes),
                                       cmocka_unit_test(test_candidates_verify_odd_shape)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
