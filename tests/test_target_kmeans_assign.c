/*
 * test_target_kmeans_assign.c -- the kmeans-assign target end to end
 * (tests/kb_target.h), judged by its oracle's own check (ABI 1.2); its
 * wrong fixture gives every fifth point its second-nearest centroid, and
 * the verdict names the point and both centroids; the OpenBLAS contender,
 * where built, verifies and runs to a timing verdict.
 */
#define TARGET      "kmeans-assign"
#define WRONG_FX    "fx_wrong_kmeans"
#define WRONG_CASES "quick"
#include "kb_target.h"

static void test_wrong_reason_names_both_centroids(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/" WRONG_FX ".so"), "--cases", "quick");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "idx[3]: expected centroid ") || !strstr(why, "farther (tolerance "))
        fail_msg("reason: %s", why);
}

/* The checks around the oracle's check still hold: answers replayed from
 * another input set, and outputs left unwritten (poison), are incorrect
 * in a trial. */
static void test_replay_and_stale_are_incorrect(void **s)
{
    (void)s;
    static const char *const fx[] = {"tests/fixtures/fx_kmeans_replay.so",
                                     "tests/fixtures/fx_kmeans_stale.so"};
    for (size_t i = 0; i < 2; i++) {
        kb_run r;
        KB_RUN(&r, "trial", (char *)kb_path(fx[i]), "--budget", "0.5");
        if (strcmp(kb_field(&r, "status"), "incorrect") != 0)
            fail_msg("%s: %s: %s", fx[i], kb_field(&r, "status"), kb_field(&r, "reason"));
    }
}

static void test_openblas_contender(void **s)
{
    (void)s;
    kb_check_contender("openblas", "libopenblas-dev");
}

static void test_faiss_contender(void **s)
{
    (void)s;
    kb_check_contender("faiss", "libfaiss-dev");
}

int main(void)
{
    const struct CMUnitTest tests[] = {KB_TARGET_TESTS,
                                       cmocka_unit_test(test_wrong_reason_names_both_centroids),
                                       cmocka_unit_test(test_replay_and_stale_are_incorrect),
                                       cmocka_unit_test(test_openblas_contender),
                                       cmocka_unit_test(test_faiss_contender)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
