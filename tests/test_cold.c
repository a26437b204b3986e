/*
 * test_cold.c -- KB_TARGET_COLD_INPUTS: a cold target's arena holds
 * replicas of its per-call sets, together at least twice the last-level
 * cache; timed calls read them; every replica is judged against its set's
 * oracle output; the verdict says how cold the inputs were.
 *
 * The target is the fixture fx-cold (tests/fixtures/cold): one case with
 * 1 MiB of per-call input per set.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "kb_run.h"
#include "trial.h"

#define FX_ORACLES     KB_TEST_BUILD_DIR "/tests/fixtures/oracles"
#define FX_COLD_ORACLE FX_ORACLES "/fx-cold/oracle.so"
#define FX_SET_BYTES   (262144 * 4) /* fx-cold's x, per set */

/* The largest cache of cpu0 as sysfs gives it, read here independently of
 * the host's code; 32 MiB when sysfs says nothing. */
static uint64_t sysfs_llc(void)
{
    uint64_t best = 0;
    for (int i = 0; i < 16; i++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        unsigned long long v = 0;
        char unit = 0;
        if (fscanf(f, "%llu%c", &v, &unit) >= 1) {
            v <<= unit == 'K' ? 10 : unit == 'M' ? 20 : unit == 'G' ? 30 : 0;
            if (v > best) best = v;
        }
        fclose(f);
    }
    return best ? best : UINT64_C(32) << 20;
}

static void test_llc_is_sysfs_not_getconf(void **s)
{
    (void)s;
    assert_true(kb__llc_bytes() == sysfs_llc());
}

/* ---- the arena, in process ---------------------------------------------- */

static void *t_alloc(const kb_host *h, size_t size, size_t align)
{
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}
static void t_free(const kb_host *h, void *p)
{
    (void)h;
    free(p);
}
static const kb_host test_host = {sizeof(kb_host), 0, 0, NULL, t_alloc, t_free};

typedef struct built {
    kb__lib lib;
    kb_target t; /* a copy, so a test can clear the cold flag */
    kb__case_data cd;
} built;

static void build_case(built *b, uint32_t flags)
{
    char err[512];
    memset(b, 0, sizeof *b);
    if (kb__lib_open(FX_COLD_ORACLE, "fx-cold oracle", 1, &b->lib, err, sizeof err) != 0)
        fail_msg("%s", err);
    b->t = *b->lib.target;
    b->t.flags = flags;
    if (kb__case_build(&b->t, b->lib.plugin, 0, 0, 0x5eed, 0xf5e5, &b->cd, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static void free_case(built *b)
{
    kb__case_free(&b->cd);
    kb__lib_close(&b->lib);
}

/* Replicas are byte copies of their sets at other addresses, together at
 * least 2x the LLC and no more, and the oracle's output for set s is the
 * output for every replica of s. */
static void test_arena_replicas(void **s)
{
    (void)s;
    static built b;
    build_case(&b, KB_TARGET_COLD_INPUTS);
    const kb__layout *L = &b.cd.layout;
    const uint64_t llc = sysfs_llc();
    assert_int_equal(L->rep_stride, KB__SETS * FX_SET_BYTES);
    assert_true(L->n_reps >= 2);
    assert_true((uint64_t)L->n_reps * L->rep_stride >= 2 * llc);
    assert_true((uint64_t)(L->n_reps - 1) * L->rep_stride < 2 * llc || L->n_reps == 2);
    assert_true(L->calls_size >= L->buf[1].off[0] + (uint64_t)L->n_reps * L->rep_stride);
    assert_true(L->arena_size + L->calls_size <= (UINT64_C(1) << 30) + 2 * 4096);
    assert_true(b.cd.llc_bytes == llc);

    kb_buffer statics = {b.cd.base + L->buf[0].off[0], L->buf[0].count, 0, KB_DT_U64, 0};
    kb_case kc = {L->case_name, 0, 0, NULL, NULL};
    void *st = NULL;
    char err[256];
    assert_int_equal(b.lib.plugin->prepare(&test_host, &kc, &statics, 1, &st, err, sizeof err), 0);
    for (uint32_t r = 0; r < L->n_reps; r++)
        for (uint32_t set = 0; set < KB__SETS; set++) {
            const uint8_t *x0 = b.cd.cbase + L->buf[1].off[set];
            const uint8_t *xr = x0 + (uint64_t)r * L->rep_stride;
            assert_memory_equal(xr, x0, FX_SET_BYTES);
            kb_buffer in = {(void *)xr, L->buf[1].count, 0, KB_DT_U32, 0};
            uint64_t got[8];
            kb_buffer out = {got, 8, 0, KB_DT_U64, 0};
            assert_int_equal(b.lib.plugin->run(st, &in, 1, &out, 1, err, sizeof err), 0);
            assert_memory_equal(got, b.cd.ref[set][0], sizeof got);
            /* and no other set's answer would pass for it */
            for (uint32_t o = 0; o < KB__SETS; o++)
                if (o != set) assert_memory_not_equal(got, b.cd.ref[o][0], sizeof got);
        }
    b.lib.plugin->release(st);
    assert_true(kb__case_digest(&b.cd) == b.cd.input_digest);

    char desc[192], want[192];
    kb__inputs_describe(&b.t, &b.cd, 1, desc, sizeof desc);
    snprintf(want, sizeof want, "cold (%u replicas, %.0f MiB working set > LLC %.0f MiB)",
             L->n_reps, (double)L->n_reps * L->rep_stride / (1 << 20), (double)llc / (1 << 20));
    assert_string_equal(desc, want);
    free_case(&b);
}

/* Without the flag the calls arena holds each per-call set once. */
static void test_warm_arena_unchanged(void **s)
{
    (void)s;
    static built b;
    build_case(&b, 0);
    const kb__layout *L = &b.cd.layout;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(L->n_reps, 1);
    assert_int_equal(L->rep_stride, KB__SETS * FX_SET_BYTES);
    const uint64_t end = L->buf[1].off[KB__SETS - 1] + FX_SET_BYTES;
    assert_int_equal(L->calls_size, (end + page - 1) / page * page);
    assert_true(b.cd.llc_bytes == 0);
    char desc[192];
    kb__inputs_describe(&b.t, &b.cd, 1, desc, sizeof desc);
    assert_string_equal(desc, "warm");
    free_case(&b);
}

/* Several cases: ranges; a case kept under 2x the LLC by the limits is
 * said so, not hidden. Layouts are made up: no arena of 1 GiB is built. */
static void test_describe_ranges_and_caps(void **s)
{
    (void)s;
    static kb__case_data cd[2];
    static const kb_target cold = {.flags = KB_TARGET_COLD_INPUTS};
    memset(cd, 0, sizeof cd);
    cd[0].llc_bytes = cd[1].llc_bytes = UINT64_C(32) << 20;
    cd[0].layout.n_reps = 16, cd[0].layout.rep_stride = UINT64_C(4) << 20;
    cd[1].layout.n_reps = 22, cd[1].layout.rep_stride = UINT64_C(3) << 20;
    char desc[192];
    kb__inputs_describe(&cold, cd, 2, desc, sizeof desc);
    assert_string_equal(desc, "cold (16-22 replicas, 64-66 MiB working set > LLC 32 MiB)");

    cd[1].layout.n_reps = 4096, cd[1].layout.rep_stride = 256; /* tiny sets: 1 MiB in all */
    kb__inputs_describe(&cold, cd, 2, desc, sizeof desc);
    assert_string_equal(desc, "cold (16-4096 replicas, 1.0-64 MiB working set, under 2x LLC 32 MiB "
                              "in 1 of 2 cases: capped at 1024 MiB of inputs or 4096 replicas "
                              "per case)");
}

/* ---- end to end ----------------------------------------------------------- */

static void expect_code(const kb_run *r, int code)
{
    if (r->code != code)
        print_error("exit %d, expected %d\nstdout:\n%s\nstderr:\n%s\n", r->code, code, r->out,
                    r->err);
    assert_int_equal(r->code, code);
}

/* An honest candidate is timed on cold inputs and never judged wrong; the
 * block says how cold, in figures that match this machine. */
static void test_trial_of_correct_candidate(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_cold_same.so"), "--oracles", FX_ORACLES,
           "--budget", "0.5");
    /* a trial builds every set: the timed ones and the fresh probe's */
    assert_string_equal(kb_field(&r, "input_sets"), "32");
    if (kb_emulated_timing_verdict(&r)) return; /* a claim about timing: the native run's */
    const char *st = kb_field(&r, "status");
    if (strcmp(st, "keep") && strcmp(st, "discard") && strcmp(st, "inconclusive"))
        fail_msg("status %s (exit %d), expected a timed verdict:\n%s%s", st, r.code, r.out, r.err);
    assert_true(r.code == 0 || r.code == 1 || r.code == 4);
    assert_string_equal(kb_field(&r, "target"), "fx-cold");
    assert_true(atof(kb_field(&r, "geomean_ratio")) > 0);
    unsigned reps = 0;
    double ws = 0, llc = 0;
    const char *in = kb_field(&r, "inputs");
    if (sscanf(in, "cold (%u replicas, %lf MiB working set > LLC %lf MiB)", &reps, &ws, &llc) != 3)
        fail_msg("inputs: %s", in);
    assert_true(reps >= 2);
    assert_true(fabs(llc - (double)sysfs_llc() / (1 << 20)) <= 0.5); /* printed rounded */
    assert_true(ws >= 2 * llc);
    assert_true(ws == reps * (double)(KB__SETS * FX_SET_BYTES) / (1 << 20));
}

/* The same field in JSON, and warm targets say warm. */
static void test_json_and_warm(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("tests/fixtures/fx_cold_same.so"), "--oracles", FX_ORACLES,
           "--json");
    expect_code(&r, 0);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    if (!j) fail_msg("not JSON (%s): %s", e.text, r.out);
    const char *in = json_string_value(json_object_get(json_object_get(j, "kbench"), "inputs"));
    assert_non_null(in);
    assert_memory_equal(in, "cold (", 6);
    assert_non_null(strstr(in, "MiB working set > LLC"));
    /* verify checks the 16 timed sets once each: it builds neither the
     * fresh sets nor the replicas, and says the replicas are a trial's */
    assert_non_null(strstr(in, "in a trial: a check reads each set once)"));
    const json_t *sets = json_object_get(json_object_get(j, "kbench"), "input_sets");
    assert_true(json_is_integer(sets));
    assert_int_equal(json_integer_value(sets), KB__SETS);
    json_decref(j);

    KB_RUN(&r, "verify", (char *)kb_path("plugins/posting-intersect/portable.so"));
    expect_code(&r, 0);
    assert_string_equal(kb_field(&r, "inputs"), "warm");
    assert_string_equal(kb_field(&r, "input_sets"), "16");
}

/* Right where the sets are checked before timing, wrong on every other
 * replica: `verify` (one call per set) cannot tell, a trial must, in a
 * timed batch of several calls. */
static void test_wrong_on_replicas_is_incorrect(void **s)
{
    (void)s;
    const char *fx = kb_path("tests/fixtures/fx_cold_wrong_on_new_addresses.so");
    kb_run r;
    KB_RUN(&r, "verify", (char *)fx, "--oracles", FX_ORACLES);
    expect_code(&r, 0);
    assert_string_equal(kb_field(&r, "status"), "correct");

    KB_RUN(&r, "trial", (char *)fx, "--oracles", FX_ORACLES, "--budget", "0.5");
    expect_code(&r, 2);
    assert_string_equal(kb_field(&r, "status"), "incorrect");
    const char *why = kb_field(&r, "reason");
    assert_non_null(strstr(why, "output 'sums'[0]"));
    assert_non_null(strstr(why, "of a batch of "));
    assert_null(strstr(why, "of a batch of 1)"));
    assert_memory_equal(kb_field(&r, "inputs"), "cold (", 6);
}

/* Replicas are copies, so a plugin that keys answers on content hits on
 * every one of them; the fresh probe (cold too, on a cold target) shows
 * it up. */
static void test_content_cache_is_rejected(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("tests/fixtures/fx_cold_caches_by_content.so"), "--oracles",
           FX_ORACLES, "--budget", "0.5");
    /* Never kept. Telling a replayer by its speed on inputs it has not seen
     * needs timings worth reading: on a busy or emulated machine the trial
     * may end inconclusive first (the measurement suite asserts the
     * rejection: tests/measure/test_measure.c). */
    const char *st = kb_field(&r, "status");
    if (strcmp(st, "rejected") != 0) {
        print_message("fx_cold_caches_by_content: %s (%s)\n", st, kb_field(&r, "reason"));
        expect_code(&r, 4);
        assert_string_equal(kb_field(&r, "status"), "inconclusive");
        return;
    }
    expect_code(&r, 3);
    assert_non_null(strstr(kb_field(&r, "reason"), "replays answers cached from earlier calls"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llc_is_sysfs_not_getconf),
        cmocka_unit_test(test_arena_replicas),
        cmocka_unit_test(test_warm_arena_unchanged),
        cmocka_unit_test(test_describe_ranges_and_caps),
        cmocka_unit_test(test_trial_of_correct_candidate),
        cmocka_unit_test(test_json_and_warm),
        cmocka_unit_test(test_wrong_on_replicas_is_incorrect),
        cmocka_unit_test(test_content_cache_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
