/*
 * test_target_pq_cosine.c -- the pq-cosine target end to end (tests/kb_target.h); its
 * wrong fixture: the query normalized by an approximate reciprocal square root.
 */
#define TARGET      "pq-cosine"
#define WRONG_FX    "fx_wrong_pq_cosine"
#define WRONG_CASES "quick"
#include "kb_target.h"

int main(void)
{
    const struct CMUnitTest tests[] = {KB_TARGET_TESTS};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
