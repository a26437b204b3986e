/*
 * test_hostile_inputs.c -- security issue items 1 and 4: what a plugin can
 * learn from its inputs, and what replaying answers gains it.
 *
 * Item 1: the trial seed must not be recoverable from the inputs, and the
 * fresh probe sets must not follow from anything a worker sees. Item 4: no
 * per-call input in reach of untimed plugin code, and a keep must hold on
 * inputs the candidate has never seen, whatever share of its answers it
 * replays. Each fixture is a correct kernel plus the one trick; every one
 * of them was kept, or caught only by luck of size, before (the table in
 * docs/robustness.md). Here each must end in a verdict other than keep,
 * with the exit code of that verdict and a reason that shows why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>

#include "kb_run.h"
#include "trial.h"

/* The built fixture's path (kb_path keeps one buffer: use it at once). */
static char *fx_path(const char *name)
{
    static char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/%s.so", name);
    return (char *)kb_path(rel);
}

static kb_run R; /* 80 KiB: not on the stack */

static int code_of(const char *status)
{
    static const struct {
        const char *s;
        int code;
    } map[] = {{"keep", 0},    {"discard", 1},  {"incorrect", 2},   {"crash", 3},
               {"timeout", 3}, {"rejected", 3}, {"inconclusive", 4}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].s, status)) return map[i].code;
    return -1;
}

/* A trial of the fixture: never a hang or an internal error (exit 70), the
 * exit code its status has, nothing left running, and never keep unless
 * may_keep (a fixture whose attack finds nothing and that then runs the
 * oracle's kernel compiled into another object, which code layout alone
 * can make a few percent faster: a real difference, not a replay's). */
static const char *contained_as(const char *fixture, const char *budget, int may_keep)
{
    KB_RUN(&R, "trial", fx_path(fixture), "--budget", (char *)budget);
    const char *st = kb_field(&R, "status");
    if ((!may_keep && !strcmp(st, "keep")) || R.code == 70 || code_of(st) != R.code)
        print_error("%s: status '%s', exit %d\nstdout:\n%s\nstderr:\n%s\n", fixture, st, R.code,
                    R.out, R.err);
    if (!may_keep) assert_string_not_equal(st, "keep");
    assert_int_not_equal(R.code, 70);
    assert_int_equal(R.code, code_of(st));
    assert_true(strncmp(R.out, "---\n", 4) == 0);
    assert_int_equal(kb_leftovers(), 0);
    static char copy[32]; /* kb_field's buffer is reused by the next call */
    snprintf(copy, sizeof copy, "%s", st);
    return copy;
}

static const char *contained(const char *fixture, const char *budget)
{
    return contained_as(fixture, budget, 0);
}

#define assert_contains(s, sub)                                                         \
    do {                                                                                \
        if (!strstr((s), (sub))) {                                                      \
            print_error("expected \"%s\" in \"%s\"\nstdout:\n%s\n", (sub), (s), R.out); \
            fail();                                                                     \
        }                                                                               \
    } while (0)

/* ---- 1: the derivation and the seeds -------------------------------------- */

static uint64_t arena_hash(const uint8_t *p, size_t n, uint64_t seed)
{
    return kb__hash(p, n, seed);
}

/* Same --seed, same inputs, fresh sets included (a trial repeats whole);
 * the fresh sets come from a seed of their own, so with the timed seed
 * fixed and the fresh one changed only the fresh arena changes; and the
 * session's random seeds are drawn independently. */
static void test_1_seeds_reproducible_and_independent(void **state)
{
    (void)state;
    char err[512], od[4096];
    snprintf(od, sizeof od, "%s/oracles", KB_TEST_BUILD_DIR);
    kb__ctx_cache a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    kb__ctx *ca, *cb;
    assert_int_equal(kb__ctx_get(&a, "posting-intersect", od, "quick", 77, &ca, err, sizeof err),
                     0);
    assert_int_equal(kb__ctx_get(&b, "posting-intersect", od, "quick", 77, &cb, err, sizeof err),
                     0);
    assert_true(ca->probe_seed == cb->probe_seed && ca->probe_seed != 77);
    for (uint32_t c = 0; c < ca->n_cases; c++)
        assert_true(ca->cases[c].input_digest == cb->cases[c].input_digest);
    kb__ctx_cache_free(&b);

    /* A session without --seed: two independent secrets. */
    assert_int_equal(kb__ctx_get(&b, "posting-intersect", od, "quick", 0, &cb, err, sizeof err), 0);
    assert_true(b.seed != 0 && b.probe_seed != b.seed && cb->probe_seed == b.probe_seed);
    kb__ctx_cache_free(&b);

    /* One case built twice with the timed seed fixed: the timed sets are the
     * same, the fresh sets follow their own seed alone. */
    const kb__ctx *x = ca;
    kb__case_data d1, d2;
    assert_int_equal(
        kb__case_build(x->t, x->oracle.plugin, x->cases[0].index, 0, 77, 1, &d1, err, sizeof err),
        0);
    assert_int_equal(
        kb__case_build(x->t, x->oracle.plugin, x->cases[0].index, 0, 77, 2, &d2, err, sizeof err),
        0);
    assert_true(arena_hash(d1.cbase, d1.csize, 0) == arena_hash(d2.cbase, d2.csize, 0));
    assert_true(arena_hash(d1.cbase, d1.csize, 0) ==
                arena_hash(x->cases[0].cbase, x->cases[0].csize, 0));
    assert_true(arena_hash(d1.pbase, d1.psize, 0) != arena_hash(d2.pbase, d2.psize, 0));
    kb__case_free(&d1);
    kb__case_free(&d2);
    kb__ctx_cache_free(&a);
}

/* The seed inverted from 8 bytes of raw generator output, at the first
 * call or untimed in prepare, and every set regenerated and answered: kept
 * at a ratio of 0.21 before (fresh 0.21: the fresh sets came from the same
 * seed). Now the inversion finds no seed and the fixture is the oracle's
 * kernel: a ratio near 1, whatever the verdict. */
static void test_1_seed_inversion_finds_nothing(void **state)
{
    (void)state;
    static const char *const fx[] = {"fx_inverts_seed", "fx_inverts_seed_in_prepare"};
    for (size_t i = 0; i < 2; i++) {
        const char *st = contained_as(fx[i], "1", 1);
        if (kb_emulated_timing_verdict(&R)) continue; /* timing: the native run's claim */
        assert_true(!strcmp(st, "keep") || !strcmp(st, "discard") || !strcmp(st, "inconclusive"));
        /* Not shown faster than 0.9: a replay read 0.21 with a narrow CI;
         * the oracle's kernel in the fixture's object has read 0.95 [0.93,
         * 0.97], a keep. A busy machine widens the CI, never moves it
         * wholly below 0.9. */
        const double hi = atof(kb_field(&R, "ci90_high"));
        if (!(hi > 0.9)) print_error("%s: CI up to %.4f, a replay gain\n%s\n", fx[i], hi, R.out);
        assert_true(hi > 0.9);
    }
}

/* ---- 4: no inputs in reach early; the fresh probe ---------------------------- */

/* The fixture fails loudly if prepare can see any per-call input mapping
 * (it was rejected in prepare before: the whole arena was mapped) or if a
 * run can see fresh sets beyond its batch's group. Slow (it reads
 * /proc/self/maps every call), so a discard, never with its complaint. */
static void test_4_no_inputs_in_reach_early(void **state)
{
    (void)state;
    const char *st = contained("fx_reads_inputs_early", "0.5");
    const char *reason = kb_field(&R, "reason");
    if (strstr(reason, "mapped")) print_error("%s\n", R.out);
    assert_null(strstr(reason, "mapped"));
    /* Its reads of /proc/self/maps leave it more CPU between calls than
     * the baseline (about twice, on a quiet machine); a busy one can push
     * that over the idle bound. That rejection is about its CPU, not the
     * inputs: what this test holds is that it never finds them. */
    if (!strcmp(st, "rejected") && strstr(reason, "outside timed calls")) return;
    if (strcmp(st, "discard") && strcmp(st, "inconclusive")) print_error("%s\n", R.out);
    assert_true(!strcmp(st, "discard") || !strcmp(st, "inconclusive"));
}

/* Partial replays: a quarter, a half, a fifth (by address) of the timed
 * answers replayed. Before: kept at 0.80 and 0.83 (fresh 1.0: under the
 * 2x rule), the half rejected only because it gained more than 2x. Now
 * the fresh ratio's CI must agree with the timed one's. A machine loaded
 * enough to widen the CIs ends the trial inconclusive on noise first. */
static void test_4_partial_replays_caught(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    /* Under ASan the fixtures' own kernel runs about twice the
     * instrumented oracle's speed (fresh ratio 0.47), a real gain the
     * replay rides on: what is judged here is timing, which a sanitizer
     * build does not claim (docs/matrix.md: correctness only). */
    print_message("ASan build: partial replays are judged by the native suite\n");
    skip();
#endif
    static const char *const fx[] = {"fx_replays_quarter", "fx_replays_half",
                                     "fx_caches_some_by_pointer"};
    for (size_t i = 0; i < 3; i++) {
        const char *st = contained(fx[i], "2");
        const char *reason = kb_field(&R, "reason");
        if (strcmp(st, "inconclusive") && strcmp(st, "rejected"))
            print_error("%s: %s\n", fx[i], R.out);
        assert_true(!strcmp(st, "inconclusive") || !strcmp(st, "rejected"));
        /* Under an emulator the CPU checks can turn it away first (its
         * emulated CPU between calls): still no keep, the claim above. */
        if (kb_emulated_timing_verdict(&R)) continue;
        /* Caught by the fresh probe, or inconclusive on noise first (a CI
         * too wide to call: "noise" or "straddles"). */
        if (!strstr(reason, "noise") && !strstr(reason, "straddles"))
            assert_contains(reason, "never seen");
    }
}

int main(void)
{
    if (kb_subreaper() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_seeds_reproducible_and_independent),
        cmocka_unit_test(test_1_seed_inversion_finds_nothing),
        cmocka_unit_test(test_4_no_inputs_in_reach_early),
        cmocka_unit_test(test_4_partial_replays_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
