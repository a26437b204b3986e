/*
 * test_best.c -- `--against best` (host/session/best.c): with no best yet the oracle
 * is the baseline and a keep promotes the candidate (best.so holds exactly
 * the measured bytes, best.tsv its digest and ratio to the oracle); the next
 * trial is timed against that best and its oracle_ratio is the chained
 * product; a discard leaves the best alone; a best.so changed by hand is
 * refused with the way out in words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "kb_run.h"
#include "kb.h"
#include "ledger.h"

static char g_dir[256], g_state[512];

static int setup(void **s)
{
    (void)s;
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_best.XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_state, sizeof g_state, "%s/state", g_dir);
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void file_digest(const char *path, char out[17])
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[64 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    kb__hex64(kb__hash(buf, n, 0), out);
}

/* value of `key\t` in best.tsv */
static double tsv_num(const char *path, const char *key, char *str, size_t str_len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    double v = NAN;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == '\t') {
            line[strcspn(line, "\n")] = 0;
            if (str) snprintf(str, str_len, "%s", line + kl + 1);
            v = atof(line + kl + 1);
        }
    fclose(f);
    return v;
}

/* best.so, best.tsv and .lock as host/session/best.c's promote() leaves them, for
 * a candidate at 0.3 of the oracle. */
static void seed_best(const char *so, const char *best_so, const char *best_tsv, const char *digest,
                      const char *oracle_digest)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s", best_so);
    *strrchr(dir, '/') = 0;
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s' && : >'%s/.lock'", dir, so, best_so,
             dir);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(best_tsv, "w");
    assert_non_null(f);
    fprintf(f,
            "# kbench best-so-far of posting-intersect; written by hand by test_best\n"
            "target\tposting-intersect\ndigest\t%s\noracle_digest\t%s\noracle_ratio\t0.300000\n"
            "source\t%s\nledger\tn/a\n",
            digest, oracle_digest, so);
    assert_int_equal(fclose(f), 0);
}

static void test_promote_chain_and_tamper(void **s)
{
    (void)s;
    const char *fast = kb_path("plugins/posting-intersect/portable.so");
    const char *slow = kb_path("plugins/posting-intersect/baseline.so");
    if (access(fast, R_OK) || access(slow, R_OK)) {
        print_message("posting-intersect candidates not built; skipping\n");
        skip();
    }
    char best_so[700], best_tsv[700], want[17], got[17], rec[64];
    snprintf(best_so, sizeof best_so, "%s/posting-intersect/best.so", g_state);
    snprintf(best_tsv, sizeof best_tsv, "%s/posting-intersect/best.tsv", g_state);

    /* 1. no best: timed against the oracle. A keep promotes the candidate;
     *    any other verdict (a loaded or emulated machine can blur a 3x
     *    difference) promotes nothing, and the chain below starts from a
     *    best written as a promotion writes it. Either way it asserts. */
    kb_run r;
    for (int i = 0; i < 3; i++) {
        KB_RUN(&r, "trial", (char *)fast, "--against", "best", "--state", g_state);
        if (r.code == 0) break;
    }
    /* An emulated kbench's timing checks can end an honest plugin's trial
     * inconclusive before its figures (its one-call batches carry the
     * emulator's overhead: host/core/trust.c); nothing is promoted then
     * either. */
    const int emulated_probe = kb_emulated_timing_verdict(&r);
    if (r.code != 0 && r.code != 1 && r.code != 4) print_error("%s\n%s\n", r.out, r.err);
    assert_true(r.code == 0 || r.code == 1 || r.code == 4);
    assert_string_equal(kb_field(&r, "against"), "oracle");
    if (!emulated_probe) {
        assert_string_equal(kb_field(&r, "oracle_ratio_source"), "measured");
        assert_string_equal(kb_field(&r, "oracle_ratio"), kb_field(&r, "geomean_ratio"));
    }
    file_digest(fast, want);
    if (r.code == 0) {
        assert_string_equal(kb_field(&r, "promoted"), "yes");
        file_digest(best_so, got);
        assert_string_equal(got, want);
    } else {
        print_message("portable.so was not kept against the oracle here (%s); best set by hand\n",
                      kb_field(&r, "reason"));
        assert_string_equal(kb_field(&r, "promoted"), "no");
        assert_int_equal(access(best_so, F_OK), -1);
        char oracle_digest[17];
        snprintf(oracle_digest, sizeof oracle_digest, "%s", kb_field(&r, "oracle_digest"));
        seed_best(fast, best_so, best_tsv, want, oracle_digest);
    }
    tsv_num(best_tsv, "digest", rec, sizeof rec);
    assert_string_equal(rec, want);
    const double best_ratio = tsv_num(best_tsv, "oracle_ratio", NULL, 0);
    if (r.code == 0) assert_true(fabs(best_ratio - atof(kb_field(&r, "geomean_ratio"))) < 1e-4);

    /* 2. the plain baseline against that best: not kept, best unchanged,
     *    oracle_ratio = ratio to best x best's ratio to the oracle */
    char ledger[700];
    snprintf(ledger, sizeof ledger, "%s/results.tsv", g_dir);
    KB_RUN(&r, "trial", (char *)slow, "--against", "best", "--state", g_state, "--ledger", ledger,
           "--budget", "1");
    assert_true(r.code == 1 || r.code == 4);
    assert_string_equal(kb_field(&r, "against_digest"), want);
    assert_string_equal(kb_field(&r, "promoted"), "no");
    assert_string_equal(kb_field(&r, "best_digest"), want);
    assert_string_equal(kb_field(&r, "oracle_ratio_source"), "chained");
    const double g = atof(kb_field(&r, "geomean_ratio")), o = atof(kb_field(&r, "oracle_ratio"));
    assert_true(fabs(o - g * best_ratio) < 1e-3 * (1 + o));
    file_digest(best_so, got);
    assert_string_equal(got, want);
    /* the ledger line says it ran against the best, with its oracle_ratio,
     * in the columns `kbench log` reads */
    FILE *f = fopen(ledger, "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    char *col[KB__LF_N2 + 1] = {line};
    int ncol = 1;
    for (char *p = line; *p && ncol <= KB__LF_N2; p++)
        if (*p == '\t') *p = 0, col[ncol++] = p + 1;
    assert_int_equal(ncol, KB__LF_N2);
    col[KB__LF_N2 - 1][strcspn(col[KB__LF_N2 - 1], "\n")] = 0;
    assert_string_equal(col[KB__LF_AGAINST], "best");
    assert_string_equal(col[KB__LF_AGAINST_DIGEST], want);
    assert_true(fabs(atof(col[KB__LF_ORACLE_RATIO]) - o) < 1e-3 * (1 + o));
    assert_string_equal(col[KB__LF_PROMOTED], "no");
    assert_null(strstr(col[KB__LF_DESC], "oracle_ratio"));

    /* 3. best.so changed by hand: refused, with the fix */
    f = fopen(best_so, "ab");
    assert_non_null(f);
    fputc(0, f);
    fclose(f);
    KB_RUN(&r, "trial", (char *)slow, "--against", "best", "--state", g_state, "--budget", "1");
    assert_int_equal(r.code, 70);
    assert_non_null(strstr(r.err, "changed by hand"));
    assert_non_null(strstr(r.err, "remove"));
}

/* Writes a best by hand: best.so a copy of `so`, best.tsv its digest, the
 * oracle's digest and a chosen ratio to the oracle. */
static void plant_best(const char *so, const char *oracle_digest, double oracle_ratio)
{
    char dir[700], cmd[4000], tsv[800], dig[17];
    snprintf(dir, sizeof dir, "%s/posting-intersect", g_state);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s/best.so' && touch '%s/.lock'", dir, so,
             dir, dir);
    assert_int_equal(system(cmd), 0);
    file_digest(so, dig);
    snprintf(tsv, sizeof tsv, "%s/best.tsv", dir);
    FILE *f = fopen(tsv, "w");
    assert_non_null(f);
    fprintf(f,
            "target\tposting-intersect\ndigest\t%s\noracle_digest\t%s\noracle_ratio\t%.6f\n"
            "source\t%s\nledger\tn/a\n",
            dig, oracle_digest, oracle_ratio, so);
    fclose(f);
}

/* A keep against the best is promoted only when the candidate's own ratio
 * to the oracle beats the best's: planted with a best whose recorded ratio
 * (0.01) nothing here can beat, a clear keep against it is not promoted;
 * with a recorded ratio of 50 the same keep is (the check is not a wall). */
static void test_promotion_needs_a_better_oracle_ratio(void **s)
{
    (void)s;
    const char *fast = kb_path("plugins/posting-intersect/portable.so");
    const char *slow = kb_path("plugins/posting-intersect/baseline.so");
    if (access(fast, R_OK) || access(slow, R_OK)) skip();
    char cmd[700], odig[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_state);
    assert_int_equal(system(cmd), 0);
    kb_run r;
    KB_RUN(&r, "verify", (char *)slow);
    snprintf(odig, sizeof odig, "%s", kb_field(&r, "oracle_digest"));
    assert_int_equal(strlen(odig), 16);
    const double recorded[2] = {0.01, 50.0};
    for (int k = 0; k < 2; k++) {
        plant_best(slow, odig, recorded[k]);
        for (int i = 0; i < 3; i++) {
            KB_RUN(&r, "trial", (char *)fast, "--against", "best", "--state", g_state);
            if (r.code == 0) break;
        }
        if (r.code != 0) {
            print_message("portable.so was not a clear keep against baseline.so here; skipping\n");
            skip();
        }
        assert_string_equal(kb_field(&r, "oracle_ratio_source"), "measured");
        if (k == 0) {
            assert_string_equal(kb_field(&r, "promoted"), "no");
            assert_non_null(strstr(kb_field(&r, "best_note"), "the best's is 0.0100"));
        } else {
            assert_string_equal(kb_field(&r, "promoted"), "yes");
        }
    }
}

/* A keep against the best whose trial against the oracle ends untimed is
 * not promoted, even where the chained ratio would allow it (the best's
 * recorded ratio is 50 here): fx_fails_second_trial is portable.so's kernel
 * whose prepare fails once its host is 1.5 s old, i.e. in the second of
 * the two trials `--against best` runs (the first ends no sooner than a
 * quarter of its 8 s budget). */
static void test_no_promotion_when_the_oracle_trial_is_untimed(void **s)
{
    (void)s;
    const char *fx = kb_path("tests/fixtures/fx_fails_second_trial.so");
    const char *slow = kb_path("plugins/posting-intersect/baseline.so");
    if (access(fx, R_OK) || access(slow, R_OK)) skip();
    if (kb_host_emulated()) {
        print_message("kbench under an emulator: its first trial may start 1.5 s in; skipping\n");
        skip();
    }
    char cmd[700], odig[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_state);
    assert_int_equal(system(cmd), 0);
    kb_run r;
    KB_RUN(&r, "verify", (char *)slow);
    snprintf(odig, sizeof odig, "%s", kb_field(&r, "oracle_digest"));
    plant_best(slow, odig, 50.0);
    KB_RUN(&r, "trial", (char *)fx, "--against", "best", "--state", g_state, "--budget", "8");
    if (r.code != 0) {
        print_message("fx_fails_second_trial was not a keep against baseline.so here (%s): "
                      "skipping\n%s\n",
                      kb_field(&r, "status"), r.out);
        skip();
    }
    char note[1024];
    snprintf(note, sizeof note, "%s", kb_field(&r, "best_note"));
    if (!strstr(note, "its trial against the oracle ended"))
        print_error("best_note: %s\n%s\n", note, r.out);
    assert_non_null(strstr(note, "its trial against the oracle ended"));
    assert_string_equal(kb_field(&r, "promoted"), "no");
}

/* A best recorded before digests took in the libraries a plugin loads
 * (best.tsv holds the hash of faiss.so's file alone) is still the best: its
 * bytes are unchanged, and it is named by its digest now, not refused as
 * "changed by hand". */
static void test_best_recorded_with_a_file_only_digest(void **s)
{
    (void)s;
    const char *faiss = kb_path("plugins/pq-l2/faiss.so");
    const char *cand = kb_path("plugins/pq-l2/portable.so");
    if (access(faiss, R_OK) || access(cand, R_OK)) skip();
    char dir[700], cmd[4000], tsv[800], dig[17];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_state);
    assert_int_equal(system(cmd), 0);
    snprintf(dir, sizeof dir, "%s/pq-l2", g_state);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s/best.so' && touch '%s/.lock'", dir,
             faiss, dir, dir);
    assert_int_equal(system(cmd), 0);
    file_digest(faiss, dig);
    snprintf(tsv, sizeof tsv, "%s/best.tsv", dir);
    FILE *f = fopen(tsv, "w");
    assert_non_null(f);
    fprintf(f,
            "target\tpq-l2\ndigest\t%s\noracle_digest\t0000000000000000\noracle_ratio\t0.5\n"
            "source\t%s\nledger\tn/a\n",
            dig, faiss);
    fclose(f);
    kb_run r;
    KB_RUN(&r, "trial", (char *)cand, "--against", "best", "--state", g_state, "--budget", "0.3");
    if (r.code == 70) print_error("%s\n%s\n", r.out, r.err);
    assert_true(r.code != 70 && r.code != 64);
    char against[32];
    snprintf(against, sizeof against, "%s", kb_field(&r, "against_digest"));
    assert_string_equal(kb_field(&r, "best_digest"), against);
    assert_string_not_equal(against, dig);
}

/* `kbench log` marks the best so far; `kbench report` draws it (when gnuplot
 * is installed). The ledger here is written by hand, so the expected marks
 * are known without running a trial. */
static void test_log_and_report(void **s)
{
    (void)s;
    char ledger[700], png[700];
    snprintf(ledger, sizeof ledger, "%s/hand.tsv", g_dir);
    snprintf(png, sizeof png, "%s/h.png", g_dir);
    FILE *f = fopen(ledger, "w");
    assert_non_null(f);
    fputs(KB__LEDGER_HEADER_V1, f); /* v1: the best's facts are in the description's tag */
    static const char *const rows[] = {
        /* plain trials: the best is the lowest kept ratio */
        "T1\tt\ta.so\td\to\tc\tkeep\t0.5000\t0.4\t0.6\t0.7\t1.0\tfirst",
        "T2\tt\tb.so\td\to\tc\tkeep\t0.6000\t0.5\t0.7\t0.8\t1.0\tslower, still a keep",
        "T3\tt\tc.so\td\to\tc\tcrash\tn/a\tn/a\tn/a\tn/a\t1.0\tboom",
        /* the ratchet: a promotion is the new best even if its ratio is higher */
        "T4\tt\td.so\td\to\tc\tkeep\t0.9000\t0.8\t0.95\t1.0\t1.0\t[vs best 0123456789abcdef; "
        "oracle_ratio 0.4500; promoted] step",
        "T5\tt\te.so\td\to\tc\tdiscard\t1.1000\t1.0\t1.2\t1.3\t1.0\t[vs best 0123456789abcdef; "
        "oracle_ratio 0.4950] worse",
        "T6\tother\tf.so\td\to\tc\tkeep\t0.1000\t0.1\t0.1\t0.1\t1.0\tanother target",
    };
    for (size_t i = 0; i < 6; i++) fprintf(f, "%s\n", rows[i]);
    fclose(f);
    kb_run r;
    KB_RUN(&r, "log", "--ledger", ledger, "--target", "t");
    assert_int_equal(r.code, 0);
    assert_non_null(
        strstr(r.out, "5 trial(s), 3 kept, 1 failed; best so far, ratio to the oracle: 0.4500"));
    /* '*' on rows 1 and 4 only */
    int stars = 0;
    for (const char *p = r.out; (p = strstr(p, "*  ")); p++) stars++;
    assert_int_equal(stars, 2);
    assert_non_null(strstr(r.out, "0.5000*"));
    assert_non_null(strstr(r.out, "0.4500*"));
    assert_null(strstr(r.out, "another target"));

    KB_RUN(&r, "report", "--target", "t", "--plot", png, "--ledger", ledger);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        print_message("gnuplot not installed: checking the message only\n");
        assert_int_equal(r.code, 70);
        assert_non_null(strstr(r.err, "gnuplot"));
        return;
    }
    if (r.code) print_error("%s\n", r.err);
    assert_int_equal(r.code, 0);
    unsigned char sig[8] = {0};
    f = fopen(png, "rb");
    assert_non_null(f);
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_and_report),
        cmocka_unit_test(test_promote_chain_and_tamper),
        cmocka_unit_test(test_promotion_needs_a_better_oracle_ratio),
        cmocka_unit_test(test_no_promotion_when_the_oracle_trial_is_untimed),
        cmocka_unit_test(test_best_recorded_with_a_file_only_digest),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
