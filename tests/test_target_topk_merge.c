/*
 * test_target_topk_merge.c -- the topk-merge target end to end: every candidate this CPU
 * runs matches the oracle on every case (the others are refused by name), a candidate
 * that breaks distance ties the wrong way is reported incorrect, the generator gives the
 * same bits for a seed on every platform and the shapes the spec promises (sorted partial
 * lists, unique ids, exact ties), and a trial of the baseline is never a keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dlfcn.h>

#include "kb_run.h"
#include "kb_pick.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/topk-merge/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/topk-merge/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/topk-merge/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "topk-merge");
    return t;
}

static void test_every_variant_matches_the_oracle_on_every_case(void **s)
{
    (void)s;
    static const char *const variants[] = {"baseline", "portable", "avx2", "avx512", "neon"};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        char rel[256];
        snprintf(rel, sizeof rel, "plugins/topk-merge/%s.so", variants[v]);
        const char *path = kb_path(rel);
        if (access(path, R_OK) != 0) {
            /* each ISA file is built where its compiler flags exist */
#if defined(__x86_64__)
            if (strcmp(variants[v], "neon") != 0) fail_msg("%s is not built", rel);
#elif defined(__aarch64__)
            if (strcmp(variants[v], "avx2") != 0 && strcmp(variants[v], "avx512") != 0)
                fail_msg("%s is not built", rel);
#endif
            continue;
        }
        kb_run r;
        KB_RUN(&r, "info", (char *)path);
        if (strcmp(kb_field(&r, "cpu_features_missing"), "none") != 0) {
            KB_RUN(&r, "verify", (char *)path);
            assert_int_equal(r.code, 3); /* refused before any of its code runs */
            assert_non_null(strstr(kb_field(&r, "reason"), "lacks"));
            continue;
        }
        /* portable.so on all cases in one run, always: one worker maps
         * every case's output lanes at once, 13 cases of a small output
         * (kb__lane_cap keeps them within vm.max_map_count). */
        const char *cases = strcmp(variants[v], "portable") ? kb_verify_cases() : "all";
        KB_RUN(&r, "verify", (char *)path, "--cases", (char *)cases);
        if (r.code != 0 || strcmp(kb_field(&r, "status"), "correct") != 0)
            fail_msg("verify %s --cases %s: exit %d, %s: %s", rel, cases, r.code,
                     kb_field(&r, "status"), kb_field(&r, "reason"));
    }
}

static void test_ties_broken_the_wrong_way_are_incorrect(void **s)
{
    (void)s;
    const char *fx = kb_path("tests/fixtures/fx_wrong_topk.so");
    if (access(fx, R_OK) != 0) fail_msg("tests/fixtures/fx_wrong_topk.so is not built");
    kb_run r;
    /* plausible: without ties its answer is the oracle's (on a seed whose
     * uniform floats do not tie by chance) */
    KB_RUN(&r, "verify", (char *)fx, "--cases", "n=1024,k=10,p=1/uniform", "--seed", "1");
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "status"), "correct");
    /* wrong: where distances tie at and around the k-th place */
    KB_RUN(&r, "verify", (char *)fx, "--cases",
           "n=65536,k=10,p=1/ties;n=6000,k=1000,p=8/ties;n=262144,k=1000,p=1/ties");
    assert_int_equal(r.code, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *reason = kb_field(&r, "reason");
    assert_non_null(strstr(reason, "/ties"));
    assert_non_null(strstr(reason, "expected"));
}

/* ---- the generator ------------------------------------------------------ */

static uint64_t fnv(uint64_t h, uint64_t v)
{
    for (int b = 0; b < 8; b++) {
        h ^= (v >> (8 * b)) & 0xff;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

typedef struct gen_out {
    float *d;
    uint64_t *id, *off, n, p, k, hash;
} gen_out;

static gen_out generate(const char *name, uint64_t seed, uint32_t set)
{
    const kb_target *t = oracle_target();
    const kb_case_spec *cs = NULL;
    for (uint32_t c = 0; c < t->n_cases; c++)
        if (strcmp(t->cases[c].name, name) == 0) cs = &t->cases[c];
    if (!cs) fail_msg("no case %s", name);
    gen_out g = {0};
    g.n = cs->lengths[0];
    g.p = cs->lengths[2] - 1;
    g.k = cs->lengths[3];
    g.d = malloc(g.n * sizeof *g.d);
    g.id = malloc(g.n * sizeof *g.id);
    g.off = malloc((g.p + 1) * sizeof *g.off);
    assert_non_null(g.d);
    assert_non_null(g.id);
    assert_non_null(g.off);
    kb_buffer b[4] = {{g.d, g.n, 0, KB_DT_F32, 0},
                      {g.id, g.n, 0, KB_DT_U64, 0},
                      {g.off, g.p + 1, 0, KB_DT_U64, 0},
                      {NULL, g.k, 0, KB_DT_U64, 0}};
    char err[256];
    if (t->generate(cs, seed, set, b, 4, err, sizeof err) != 0) fail_msg("%s", err);
    g.hash = UINT64_C(0xcbf29ce484222325);
    for (uint64_t i = 0; i < g.n; i++) {
        uint32_t bits;
        memcpy(&bits, &g.d[i], 4);
        g.hash = fnv(fnv(g.hash, bits), g.id[i]);
    }
    for (uint64_t j = 0; j <= g.p; j++) g.hash = fnv(g.hash, g.off[j]);
    return g;
}

static void gen_free(gen_out *g)
{
    free(g->d);
    free(g->id);
    free(g->off);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Offsets run 0..n, lists at most k long and sorted by (distance, id) when p > 1,
 * distances finite and >= +0, ids unique; returns how many rows tie the distance of
 * some other row. */
static uint64_t check_shape(const gen_out *g)
{
    assert_int_equal(g->off[0], 0);
    assert_int_equal(g->off[g->p], g->n);
    for (uint64_t j = 0; j < g->p; j++) {
        assert_true(g->off[j] <= g->off[j + 1]);
        if (g->p == 1) continue;
        assert_true(g->off[j + 1] - g->off[j] <= g->k);
        for (uint64_t i = g->off[j] + 1; i < g->off[j + 1]; i++)
            assert_true(g->d[i - 1] < g->d[i] ||
                        (g->d[i - 1] == g->d[i] && g->id[i - 1] < g->id[i]));
    }
    uint64_t *ids = malloc(g->n * sizeof *ids), ties = 0;
    assert_non_null(ids);
    memcpy(ids, g->id, g->n * sizeof *ids);
    qsort(ids, g->n, sizeof *ids, cmp_u64);
    for (uint64_t i = 0; i < g->n; i++) {
        uint32_t bits;
        memcpy(&bits, &g->d[i], 4);
        assert_true(g->d[i] >= 0.0f && g->d[i] < 1e30f && bits != UINT32_C(0x80000000));
    }
    for (uint64_t i = 1; i < g->n; i++) assert_true(ids[i - 1] < ids[i]);
    for (uint64_t i = 0; i < g->n; i++) {
        uint32_t bits;
        memcpy(&bits, &g->d[i], 4);
        ids[i] = bits; /* reuse: distance bits, to count ties */
    }
    qsort(ids, g->n, sizeof *ids, cmp_u64);
    for (uint64_t i = 1; i < g->n; i++) ties += ids[i] == ids[i - 1];
    free(ids);
    return ties;
}

static void test_generator_shapes_and_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=1024,k=10,p=1/uniform", 0, UINT64_C(0x678b549cd06060c3)},
        {"n=1200,k=100,p=16/pq", 0, UINT64_C(0x6673e8a51201e444)},
        {"n=1200,k=100,p=16/pq", 1, UINT64_C(0x5c2024a8045badd7)},
        {"n=65536,k=100,p=1/pq", 0, UINT64_C(0x5b9ae5f5a5275e7f)},
        {"n=6000,k=1000,p=8/ties", 0, UINT64_C(0x40c48e55881aed2d)},
    };
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        gen_out g = generate(golden[i].name, UINT64_C(0x5eed), golden[i].set);
        gen_out again = generate(golden[i].name, UINT64_C(0x5eed), golden[i].set);
        assert_int_equal(g.hash, again.hash); /* deterministic */
        uint64_t ties = check_shape(&g);
        if (strstr(golden[i].name, "/ties")) assert_true(ties > g.n / 2);
        if (strstr(golden[i].name, "/pq")) assert_true(ties > g.n / 8); /* duplicate vectors */
        if (g.hash != golden[i].hash)
            fail_msg("%s set %u: generator hash 0x%016llx, pinned 0x%016llx", golden[i].name,
                     golden[i].set, (unsigned long long)g.hash, (unsigned long long)golden[i].hash);
        gen_free(&g);
        gen_free(&again);
    }
}

/* kb_pick.h says why a byte copy of the oracle, not baseline.so, is the control. */
static void test_oracle_copy_is_not_kept(void **s)
{
    (void)s;
    kb_assert_oracle_copy_not_kept("topk-merge");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_shapes_and_fixed_outputs),
        cmocka_unit_test(test_every_variant_matches_the_oracle_on_every_case),
        cmocka_unit_test(test_ties_broken_the_wrong_way_are_incorrect),
        cmocka_unit_test(test_oracle_copy_is_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
