/*
 * test_target_posting_seek.c -- the posting-seek target end to end (tests/kb_target.h):
 * listed and pinned, every candidate this CPU runs matches the oracle, a byte copy of the
 * oracle is never kept; its wrong fixture (the first doc id > target, not >=) is incorrect;
 * the generator gives the same bits for a seed on every platform and the skips each
 * distribution promises (wand mostly shallow, deep never); and the worst-case guard does
 * what the lance workspace needed: a correct seek tuned on deep skips only (a binary search
 * from scratch a target) is not kept on the default cases, its worst case a shallow one.
 */
#define TARGET      "posting-seek"
#define WRONG_FX    "fx_wrong_seek"
#define WRONG_CASES "n=4096,m=64/wand;n=262144,m=8192/near"
#include <dlfcn.h>

#include "kb_target.h"
#include "kbench.h"

static const kb_target *oracle_target(void)
{
    static const kb_target *t;
    if (t) return t;
    void *h = dlopen(kb_path("oracles/posting-seek/oracle.so"), RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen oracles/posting-seek/oracle.so: %s", dlerror());
    const kb_target *(*entry)(void) = (const kb_target *(*)(void))dlsym(h, "kb_target_entry_v1");
    if (!entry) fail_msg("oracles/posting-seek/oracle.so has no kb_target_entry_v1");
    t = entry();
    assert_string_equal(t->name, "posting-seek");
    return t;
}

static uint64_t fnv(uint64_t h, const uint32_t *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) h = (h ^ ((v[i] >> (8 * b)) & 0xff)) * UINT64_C(0x100000001b3);
    return h;
}

/* The first index whose doc id is >= t (n past the end). */
static uint64_t lower_bound(const uint32_t *doc, uint64_t n, uint32_t t)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (doc[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void test_generator_skips_and_fixed_outputs(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        uint32_t set;
        uint64_t hash;
    } golden[] = {
        {"n=4096,m=64/wand", 0, UINT64_C(0xb17ff2a4e086f48f)},
        {"n=4096,m=64/wand", 1, UINT64_C(0x596026c872be29b6)},
        {"n=1048576,m=4096/wand", 0, UINT64_C(0xd97ab4d9fc9400de)},
        {"n=131072,m=32/deep", 0, UINT64_C(0xec4ff17c9eac073e)},
        {"n=65537,m=4096/near", 0, UINT64_C(0x0e5c7d7ab7e0be42)},
    };
    const kb_target *t = oracle_target();
    int bad = 0;
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        const kb_case_spec *cs = NULL;
        for (uint32_t c = 0; c < t->n_cases; c++)
            if (strcmp(t->cases[c].name, golden[g].name) == 0) cs = &t->cases[c];
        if (!cs) fail_msg("no case %s", golden[g].name);
        const uint64_t n = cs->lengths[0], nb = cs->lengths[1], m = cs->lengths[2];
        uint32_t *doc = malloc(n * 4), *first = malloc(nb * 4), *tg = malloc(m * 4);
        assert_true(doc && first && tg);
        kb_buffer b[4] = {{doc, n, 0, KB_DT_U32, 0},
                          {first, nb, 0, KB_DT_U32, 0},
                          {tg, m, 0, KB_DT_U32, 0},
                          {NULL, m, 0, KB_DT_U32, 0}};
        char err[256];
        /* statics are written for set 0 only: make them first */
        if (t->generate(cs, UINT64_C(0x5eed), 0, b, 4, err, sizeof err) != 0) fail_msg("%s", err);
        if (golden[g].set != 0 &&
            t->generate(cs, UINT64_C(0x5eed), golden[g].set, b, 4, err, sizeof err) != 0)
            fail_msg("%s", err);
        for (uint64_t i = 1; i < n; i++) assert_true(doc[i] > doc[i - 1]);
        assert_true(doc[n - 1] < UINT32_MAX);
        for (uint64_t k = 0; k < nb; k++) assert_int_equal(first[k], doc[k * 128]);
        /* the skips: the cursor's moves, in documents */
        uint64_t prev = 0, shallow = 0, deep = 0, moved = 0;
        for (uint64_t i = 0; i < m; i++) {
            if (i > 0) assert_true(tg[i] >= tg[i - 1]);
            const uint64_t p = lower_bound(doc, n, tg[i]);
            if (p == n) break;
            const uint64_t k = p - prev;
            shallow += k <= 4;
            deep += k > 512;
            moved++;
            prev = p;
        }
        assert_true(moved > m / 2);
        if (strstr(golden[g].name, "/wand")) {
            assert_true(shallow * 2 > moved);     /* most skips a few documents */
            assert_true(deep * 100 < moved * 10); /* deep ones rare */
        }
        if (strstr(golden[g].name, "/deep")) assert_true(shallow <= 1); /* the first seek may */
        if (strstr(golden[g].name, "/near")) assert_int_equal(deep, 0);
        const uint64_t h = fnv(fnv(fnv(UINT64_C(0xcbf29ce484222325), doc, n), first, nb), tg, m);
        if (h != golden[g].hash) {
            print_error("%s set %u: generator hash 0x%016llx, pinned 0x%016llx\n", golden[g].name,
                        golden[g].set, (unsigned long long)h, (unsigned long long)golden[g].hash);
            bad++;
        }
        free(doc);
        free(first);
        free(tg);
    }
    assert_int_equal(bad, 0);
}

/* Correct: a binary search from scratch is a seek, only a slow one on shallow skips. */
static void test_deep_only_seek_is_correct(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_seek_scratch.so"), "--cases",
           (char *)kb_verify_cases());
    if (r.code != 0) fail_msg("exit %d\n%s\n%s", r.code, r.out, r.err);
    assert_string_equal(kb_field(&r, "status"), "correct");
}

/* The lance workspace's trap: a seek tuned on deep skips loses the shallow ones that
 * dominate; a default trial must not keep it, and its worst case is a shallow case, not
 * the deep one it was tuned on. */
static void test_deep_only_seek_is_not_kept(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_seek_scratch.so"), "--budget", "1");
    if (r.code != 1 && r.code != 4)
        print_message("%s: %s\n", kb_field(&r, "status"), kb_field(&r, "reason"));
    assert_string_not_equal(kb_field(&r, "status"), "keep");
    assert_true(r.code == 1 || r.code == 4);
    if (!kb_emulated_timing_verdict(&r)) {
        const char *w = kb_field(&r, "worst_case");
        if (strstr(w, "/deep")) fail_msg("worst case %s: expected a shallow case", w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        KB_TARGET_TESTS,
        cmocka_unit_test(test_generator_skips_and_fixed_outputs),
        cmocka_unit_test(test_deep_only_seek_is_correct),
        cmocka_unit_test(test_deep_only_seek_is_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
