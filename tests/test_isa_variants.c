/*
 * test_isa_variants.c -- every target ships one candidate per instruction
 * set, named after it (avx2.so, avx512.so on x86-64; neon.so on aarch64;
 * portable.so everywhere). Each must declare the features its name says, so
 * the host can refuse it on a CPU without them; the ones this CPU has the
 * features for must match the oracle, and the others must be refused by
 * name, never run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"
#include "kb_pick.h"

static const char *const targets[] = {"pq-l2", "posting-intersect"};

typedef struct variant {
    const char *file;    /* under plugins/<target>/ */
    const char *feature; /* a word its cpu_features_needed must hold */
    const char *absent;  /* a word it must not hold, or NULL */
} variant;

static const variant variants[] = {
    {"portable.so", "none", NULL},
#if defined(__x86_64__)
    {"avx2.so", "avx2", "avx512"},
    {"avx512.so", "avx512f", NULL},
#elif defined(__aarch64__)
    {"neon.so", "neon", NULL},
#endif
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* The line after `key: ` in the output, with a leading space, so that
 * words can be searched as " word". */
static void words_of(const kb_run *r, const char *key, char *buf, size_t cap)
{
    snprintf(buf, cap, " %s ", kb_field(r, key));
}

static void test_each_isa_variant_is_built_and_declares_its_isa(void **s)
{
    (void)s;
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        for (size_t v = 0; v < N_VARIANTS; v++) {
            char rel[256], needed[512];
            snprintf(rel, sizeof rel, "plugins/%s/%s", targets[t], variants[v].file);
            const char *path = kb_path(rel);
            if (access(path, R_OK) != 0) fail_msg("%s is not built", path);
            kb_run r;
            KB_RUN(&r, "info", (char *)path);
            /* exit 3 is right for a variant this CPU lacks the features of */
            if (r.code != 0 &&
                !(r.code == 3 && strcmp(kb_field(&r, "cpu_features_missing"), "none") &&
                  kb_field(&r, "cpu_features_missing")[0]))
                fail_msg("kbench info %s: exit %d\n%s%s", path, r.code, r.out, r.err);
            words_of(&r, "cpu_features_needed", needed, sizeof needed);
            char want[64];
            snprintf(want, sizeof want, " %s ", variants[v].feature);
            if (!strstr(needed, want))
                fail_msg("%s declares [%s], expected %s among them", rel, needed, want);
            if (variants[v].absent && strstr(needed, variants[v].absent))
                fail_msg("%s declares [%s], which should not name %s", rel, needed,
                         variants[v].absent);
            assert_string_equal(kb_field(&r, "target"), targets[t]);
        }
    }
}

static void test_variants_this_cpu_runs_match_the_oracle_the_rest_are_refused(void **s)
{
    (void)s;
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        for (size_t v = 0; v < N_VARIANTS; v++) {
            char rel[256];
            snprintf(rel, sizeof rel, "plugins/%s/%s", targets[t], variants[v].file);
            const char *path = kb_path(rel);
            if (access(path, R_OK) != 0) fail_msg("%s is not built", path);
            kb_run info, r;
            KB_RUN(&info, "info", (char *)path);
            const int runs_here = strcmp(kb_field(&info, "cpu_features_missing"), "none") == 0;
            KB_RUN(&r, "verify", (char *)path, "--cases", (char *)kb_verify_cases());
            /* A feature with no KB_CPU_ bit in ABI 1.0 (pq-l2 avx512.so's VBMI)
             * is checked by the plugin's prepare, which refuses in the same
             * words: such a CPU counts as lacking it. */
            const int lacks_in_prepare = r.code == 3 && strstr(kb_field(&r, "reason"), "lacks");
            if (runs_here && !lacks_in_prepare) {
                if (r.code != 0 || strcmp(kb_field(&r, "status"), "correct") != 0)
                    fail_msg("verify %s: exit %d, status %s\n%s", rel, r.code,
                             kb_field(&r, "status"), kb_field(&r, "reason"));
            } else if (!runs_here) {
                /* Refused before any of its code runs, naming what is missing. */
                assert_int_equal(r.code, 3);
                assert_string_equal(kb_field(&r, "status"), "rejected");
                assert_non_null(strstr(kb_field(&r, "reason"), "lacks"));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_isa_variant_is_built_and_declares_its_isa),
        cmocka_unit_test(test_variants_this_cpu_runs_match_the_oracle_the_rest_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
