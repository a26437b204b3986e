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
#include "kb_target.h"

static void test_lossy_reason_names_nmse(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/" WRONG_FX ".so"), "--cases", "quick");
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    if (!strstr(why, "normalized mean squared error ")) fail_msg("reason: %s", why);
}

static void test_openblas_contender(void **s)
{
    (void)s;
    kb_check_contender("openblas", "libopenblas-dev");
}

int main(void)
{
    const struct CMUnitTest tests[] = {KB_TARGET_TESTS,
                                       cmocka_unit_test(test_lossy_reason_names_nmse),
                                       cmocka_unit_test(test_openblas_contender)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
