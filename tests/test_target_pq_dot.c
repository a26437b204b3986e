/*
 * test_target_pq_dot.c -- the pq-dot target end to end (tests/kb_target.h); its
 * wrong fixture: a pq-dot table kept at f16 precision.
 */
#define TARGET      "pq-dot"
#define WRONG_FX    "fx_wrong_pq_dot"
#define WRONG_CASES "quick"
#include "kb_target.h"

int main(void)
{
    const struct CMUnitTest tests[] = {KB_TARGET_TESTS};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
