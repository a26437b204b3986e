/*
 * test_env.c -- the machine in every verdict (host/core/env.c): /proc/stat's
 * steal, a cgroup's cpu.max and page-table isolation read from fixture
 * text, the note a noisy
 * machine adds to a reason, the keys in the block and JSON and back, and a
 * real trial's --json carrying every one of them.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "kb_run.h"
#include "env.h"
#include "report.h"

static const char *const env_keys[] = {"cpu_model", "isa",        "kernel",        "governor",
                                       "boost",     "smt",        "load_avg",      "steal_pct",
                                       "cpu_quota", "hypervisor", "pti",
                                       "kbench_version"};
#define N_ENV_KEYS (sizeof env_keys / sizeof env_keys[0])

static void test_parse_stat(void **s)
{
    (void)s;
    uint64_t steal = 0, total = 0;
    /* the aggregate line, after an unrelated one, before the per-CPU ones;
     * guest and guest_nice (already in user) are not counted */
    const char *text = "intr 12 3\n"
                       "cpu  100 0 50 800 10 0 5 35 7 9\n"
                       "cpu0 50 0 25 400 5 0 2 18 3 4\n";
    assert_int_equal(kb__env_parse_stat(text, &steal, &total), 0);
    assert_int_equal(steal, 35);
    assert_int_equal(total, 1000);
    /* a kernel before steal was counted: 7 fields, no steal */
    assert_int_equal(kb__env_parse_stat("cpu  1 2 3 4 5 6 7\n", &steal, &total), 0);
    assert_int_equal(steal, 0);
    assert_int_equal(total, 28);
    assert_int_equal(kb__env_parse_stat("cpu0 1 2 3 4 5 6 7 8\n", &steal, &total), -1);
    assert_int_equal(kb__env_parse_stat("", &steal, &total), -1);
    assert_int_equal(kb__env_parse_stat("cpu  x\n", &steal, &total), -1);
}

static void test_steal_pct(void **s)
{
    (void)s;
    assert_true(fabs(kb__env_steal_pct(35, 1000, 135, 2000) - 10.0) < 1e-12);
    assert_true(kb__env_steal_pct(35, 1000, 35, 2000) == 0.0);
    assert_true(isnan(kb__env_steal_pct(35, 1000, 35, 1000))); /* no tick passed */
    assert_true(isnan(kb__env_steal_pct(35, 1000, 30, 2000))); /* went backwards */
}

static void test_parse_cpu_max(void **s)
{
    (void)s;
    char out[64];
    assert_int_equal(kb__env_parse_cpu_max("max 100000\n", out, sizeof out), 0);
    assert_string_equal(out, "none");
    assert_int_equal(kb__env_parse_cpu_max("150000 100000\n", out, sizeof out), 0);
    assert_string_equal(out, "1.50 CPUs (150000/100000)");
    assert_int_equal(kb__env_parse_cpu_max("50000 100000", out, sizeof out), 0);
    assert_string_equal(out, "0.50 CPUs (50000/100000)");
    assert_int_equal(kb__env_parse_cpu_max("", out, sizeof out), -1);
    assert_int_equal(kb__env_parse_cpu_max("max", out, sizeof out), -1);
    assert_int_equal(kb__env_parse_cpu_max("0 100000", out, sizeof out), -1);
    assert_int_equal(kb__env_parse_cpu_max("12ab 100000", out, sizeof out), -1);
    assert_int_equal(kb__env_parse_cpu_max("50000 0", out, sizeof out), -1);
}

/* The kernel's meltdown line as it reads with and without isolation, and
 * on a CPU the kernel does not think affected. */
static void test_parse_pti(void **s)
{
    (void)s;
    char out[64];
    kb__env_parse_pti("Mitigation: PTI", 0, out, sizeof out);
    assert_string_equal(out, KB__ENV_PTI_FLUSH);
    kb__env_parse_pti("Mitigation: PTI", 1, out, sizeof out);
    assert_string_equal(out, "on");
    kb__env_parse_pti("Not affected", 0, out, sizeof out);
    assert_string_equal(out, "off");
    kb__env_parse_pti("Vulnerable", 1, out, sizeof out);
    assert_string_equal(out, "off");
    kb__env_parse_pti(NULL, 1, out, sizeof out);
    assert_string_equal(out, "n/a");
}

static void test_noise_note(void **s)
{
    (void)s;
    kb__env e;
    memset(&e, 0, sizeof e);
    char note[256];
    e.cpus = 4;
    e.load_avg = 0.5;
    e.steal_pct = KB__ENV_STEAL_NOISY_PCT - 0.1;
    kb__env_noise_note(&e, note, sizeof note);
    assert_string_equal(note, "");
    e.steal_pct = 12.2;
    kb__env_noise_note(&e, note, sizeof note);
    assert_string_equal(note, "; steal 12% during the trial: timing noisy");
    e.load_avg = 4.0;
    kb__env_noise_note(&e, note, sizeof note);
    assert_string_equal(note, "; steal 12% during the trial: timing noisy; load average 4.0 on 4 "
                              "CPUs at the start: timing noisy");
    e.steal_pct = NAN; /* unknown steal says nothing */
    kb__env_noise_note(&e, note, sizeof note);
    assert_string_equal(note, "; load average 4.0 on 4 CPUs at the start: timing noisy");
}

/* What kb__env_begin reads on this machine: every text filled. */
static void test_begin_fills_everything(void **s)
{
    (void)s;
    kb__env e;
    kb__env_begin(&e);
    const char *strs[] = {e.cpu_model, e.isa,       e.kernel,     e.governor, e.boost,
                          e.smt,       e.cpu_quota, e.hypervisor, e.pti,      e.version};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) assert_true(strs[i][0] != 0);
    assert_string_equal(e.version, KB_VERSION);
    assert_true(e.cpus >= 1);
    assert_true(isnan(e.steal_pct)); /* until kb__env_end */
    kb__env_end(&e);
    assert_true(isnan(e.steal_pct) || (e.steal_pct >= 0 && e.steal_pct <= 100));
}

/* The block shows the machine, and the JSON carries it back (a `kbench
 * serve` client prints the server's machine). */
static void test_block_and_json_round_trip(void **s)
{
    (void)s;
    kb__result r;
    memset(&r, 0, sizeof r);
    r.status = KB__ST_DISCARD;
    snprintf(r.env.cpu_model, sizeof r.env.cpu_model, "Test CPU \xe9");
    snprintf(r.env.isa, sizeof r.env.isa, "avx2 fma");
    snprintf(r.env.kernel, sizeof r.env.kernel, "6.1.0-test");
    snprintf(r.env.governor, sizeof r.env.governor, "performance");
    snprintf(r.env.boost, sizeof r.env.boost, "off");
    snprintf(r.env.smt, sizeof r.env.smt, "on");
    snprintf(r.env.cpu_quota, sizeof r.env.cpu_quota, "1.50 CPUs (150000/100000)");
    snprintf(r.env.hypervisor, sizeof r.env.hypervisor, "KVM");
    snprintf(r.env.pti, sizeof r.env.pti, "%s", KB__ENV_PTI_FLUSH);
    snprintf(r.env.version, sizeof r.env.version, "9.9.9");
    r.env.load_avg = 1.25;
    r.env.steal_pct = 12.34;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kb__result_print_block(&r, f);
    fclose(f);
    assert_non_null(strstr(buf, "\nisa: avx2 fma\n"));
    assert_non_null(strstr(buf, "\nload_avg: 1.25\n"));
    assert_non_null(strstr(buf, "\nsteal_pct: 12.3\n"));
    assert_non_null(strstr(buf, "\ncpu_quota: 1.50 CPUs (150000/100000)\n"));
    assert_non_null(strstr(buf, "\nhypervisor: KVM\npti: " KB__ENV_PTI_FLUSH "\n"));
    assert_non_null(strstr(buf, "\nkbench_version: 9.9.9\n"));
    free(buf);

    json_t *doc = kb__result_json(&r);
    assert_non_null(doc); /* the Latin-1 byte did not make it invalid */
    kb__result back;
    char err[256];
    assert_int_equal(kb__result_from_json(doc, &back, NULL, err, sizeof err), 0);
    json_decref(doc);
    assert_string_equal(back.env.cpu_model, "Test CPU ?");
    assert_string_equal(back.env.isa, r.env.isa);
    assert_string_equal(back.env.cpu_quota, r.env.cpu_quota);
    assert_string_equal(back.env.pti, r.env.pti);
    assert_string_equal(back.env.version, "9.9.9");
    assert_true(fabs(back.env.steal_pct - 12.34) < 1e-9);
    assert_true(fabs(back.env.load_avg - 1.25) < 1e-9);
}

/* A real trial's --json has every key of the machine, with a value. */
static void test_trial_json_has_env(void **s)
{
    (void)s;
    const char *cand = kb_path("plugins/posting-intersect/portable.so");
    if (access(cand, R_OK) != 0) skip();
    kb_run r;
    KB_RUN(&r, "trial", (char *)cand, "--budget", "0.3", "--json");
    json_error_t je;
    json_t *doc = json_loads(r.out, 0, &je);
    if (!doc) fail_msg("no JSON (%s): %s\n%s", je.text, r.out, r.err);
    json_t *kb = json_object_get(doc, "kbench");
    for (size_t i = 0; i < N_ENV_KEYS; i++) {
        json_t *v = json_object_get(kb, env_keys[i]);
        if (!v) fail_msg("--json has no \"%s\"", env_keys[i]);
        if (json_is_string(v))
            assert_true(json_string_length(v) > 0);
        else if (strcmp(env_keys[i], "steal_pct")) /* steal: null where /proc/stat is not */
            assert_true(json_is_number(v));
    }
    assert_string_equal(json_string_value(json_object_get(kb, "kbench_version")), KB_VERSION);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_steal_pct),
        cmocka_unit_test(test_parse_cpu_max),
        cmocka_unit_test(test_parse_pti),
        cmocka_unit_test(test_noise_note),
        cmocka_unit_test(test_begin_fills_everything),
        cmocka_unit_test(test_block_and_json_round_trip),
        cmocka_unit_test(test_trial_json_has_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
