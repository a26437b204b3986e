/*
 * kb_pick.h -- for tests that need an optimized candidate of a target: the
 * best variant under build/plugins/<target>/ that this CPU runs, as the
 * built kbench itself judges it (`kbench info`: status ok and
 * cpu_features_missing none), by a fixed preference. A test then passes on
 * any CPU: where no variant runs, it skips and says which features are
 * missing. Header-only; include after cmocka.h and kb_run.h.
 */
#ifndef KB_PICK_H
#define KB_PICK_H

/* Widest first; "portable" (plain C) runs everywhere. */
static const char *const kb_pick_order[] = {"avx512", "avx2", "neon", "portable"};

/* 1 if this CPU runs the plugin at `path` (absolute), 0 if not; then, when
 * kbench named them, `missing` holds the features it lacks, else the reason. */
static inline int kb_pick_runs(const char *path, char *missing, size_t cap)
{
    static kb_run r; /* 80 KiB: not on the stack */
    KB_RUN(&r, "info", (char *)path);
    const char *m = kb_field(&r, "cpu_features_missing");
    if (r.code == 0 && strcmp(m, "none") == 0) return 1;
    if (missing && cap) {
        const char *why = m[0] && strcmp(m, "none") ? m : kb_field(&r, "reason");
        snprintf(missing, cap, "%s", why[0] ? why : "kbench info gave no reason");
    }
    return 0;
}

/* Absolute path of the best variant of `target` this CPU runs, or NULL with
 * `why` naming each built variant and what it lacks. */
static inline const char *kb_pick_best(const char *target, char *why, size_t cap)
{
    static char best[4096];
    size_t used = 0;
    if (cap) why[0] = 0;
    for (size_t i = 0; i < sizeof kb_pick_order / sizeof kb_pick_order[0]; i++) {
        char rel[512], missing[512];
        snprintf(rel, sizeof rel, "plugins/%s/%s.so", target, kb_pick_order[i]);
        const char *path = kb_path(rel);
        if (access(path, R_OK) != 0) continue;
        if (kb_pick_runs(path, missing, sizeof missing)) {
            snprintf(best, sizeof best, "%s", path);
            return best;
        }
        if (used < cap) {
            int n = snprintf(why + used, cap - used, "%s%s.so needs %s", used ? "; " : "",
                             kb_pick_order[i], missing);
            if (n > 0) used += (size_t)n;
        }
    }
    if (!why[0] && cap) snprintf(why, cap, "no variant of %s is built", target);
    return NULL;
}

/* kb_pick_best, or skip the calling test naming what is missing. */
#define KB_PICK_OR_SKIP(var, target)                                                             \
    do {                                                                                         \
        char kb__why[1024];                                                                      \
        (var) = kb_pick_best((target), kb__why, sizeof kb__why);                                 \
        if (!(var)) {                                                                            \
            print_message("no %s variant runs on this CPU (%s); skipping\n", (target), kb__why); \
            skip();                                                                              \
        }                                                                                        \
    } while (0)

/* The cases a test verifies each ISA variant on: "quick" by default, which
 * keeps the default suite within its time on 2 cores and under qemu;
 * KB_VERIFY_CASES=all (scripts/test.sh's CI step, `KB_VERIFY_CASES=all
 * ctest -R 'test_target_|test_isa_variants'`) verifies every case. */
static inline const char *kb_verify_cases(void)
{
    const char *c = getenv("KB_VERIFY_CASES");
    return c && *c ? c : "quick";
}

/* A byte copy of the oracle against the oracle: never a keep (the same
 * code, so any keep is the measurement's error). A separately built
 * baseline.so is not such a control: the same source compiled into another
 * object can run a few percent apart on code layout alone, a real
 * difference of the two binaries, which a trial may rightly keep. */
static inline void kb_assert_oracle_copy_not_kept(const char *target)
{
    char dir[] = "/tmp/kb-target-XXXXXX", copy[256], cmd[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(copy, sizeof copy, "%s/oracle-copy.so", dir);
    char rel[256];
    snprintf(rel, sizeof rel, "oracles/%s/oracle.so", target);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", kb_path(rel), copy);
    assert_int_equal(system(cmd), 0);
    kb_run r;
    KB_RUN(&r, "trial", copy, "--budget", "1");
    /* discard or inconclusive; on a loaded machine the harness may also reject a side for
     * work between calls, which is still not a keep (a crash is for the verify tests) */
    if (r.code != 1 && r.code != 4)
        print_message("%s: %s\n", kb_field(&r, "status"), kb_field(&r, "reason"));
    assert_string_not_equal(kb_field(&r, "status"), "keep");
    assert_true(r.code != 0 && r.code != 64 && r.code != 70);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

#endif
