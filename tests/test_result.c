/*
 * test_result.c -- the "---" block, the table and the JSON of a trial result.
 * The JSON is checked by parsing it with jansson, not by comparing text.
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"

static const char *const block_keys[] = {
    "target",
    "candidate",
    "candidate_name",
    "candidate_digest",
    "against",
    "against_digest",
    "oracle_digest",
    "status",
    "reason",
    "geomean_ratio",
    "ci90_low",
    "ci90_high",
    "worst_case",
    "worst_ratio",
    "worst_ci90_low",
    "worst_ci90_high",
    "cases",
    "inputs",
    "input_sets",
    "prepare_ms",
    "trial_seconds",
    "peak_rss_kb",
    "noise_pct",
    "noise_floor_pct",
    "drift_pct",
    "spread_pct",
    "trial_ci90_low",
    "trial_ci90_high",
    "fresh_ratio",
    "fresh_ci90_low",
    "fresh_ci90_high",
    "batch_overhead_us",
    "batch_overhead_pct",
    "hw_counters",
    "seed",
    "seed_chosen",
    "cpu_model",
    "isa",
    "kernel",
    "governor",
    "boost",
    "smt",
    "load_avg",
    "steal_pct",
    "cpu_quota",
    "hypervisor",
    "pti",
    "kbench_version",
};
#define NKEYS (sizeof block_keys / sizeof block_keys[0])

static void sample(kb__result *r, kb__status st)
{
    memset(r, 0, sizeof *r);
    r->status = st;
    snprintf(r->reason, sizeof r->reason,
             "geomean 0.6120 [0.6011, 0.6200] is below 0.99\n"
             "and a \"quoted\" \\ tail");
    snprintf(r->target, sizeof r->target, "pq_scan");
    snprintf(r->candidate, sizeof r->candidate, "plugins/caf\xe9/avx512.so"); /* Latin-1 byte */
    snprintf(r->cand_name, sizeof r->cand_name, "avx512");
    snprintf(r->cand_digest, sizeof r->cand_digest, "0123456789abcdef");
    snprintf(r->against, sizeof r->against, "oracle");
    snprintf(r->against_digest, sizeof r->against_digest, "1111222233334444");
    snprintf(r->oracle_digest, sizeof r->oracle_digest, "1111222233334444");
    snprintf(r->description, sizeof r->description, "tab\there \xc3\xa9t\xc3\xa9");
    r->seed = 0x00c0ffee12345678ull;
    r->geomean = (kb__ci){0.61204, 0.60111, 0.62};
    r->worst = (kb__ci){0.70249, 0.69, 0.71};
    snprintf(r->worst_case, sizeof r->worst_case, "m16_n100k");
    r->n_cases = 2;
    snprintf(r->cases[0].name, sizeof r->cases[0].name, "m8_n10k");
    r->cases[0].samples = 120;
    r->cases[0].calls = 64;
    r->cases[0].cand_ns = 1.0e5;
    r->cases[0].base_ns = 2.0e5;
    r->cases[0].ratio = (kb__ci){0.5, 0.48, 0.52};
    r->cases[0].bytes_per_call = 1.0e6; /* 1e6 bytes in 1e5 ns: 10 GB/s */
    snprintf(r->cases[1].name, sizeof r->cases[1].name, "m16_n100k");
    r->cases[1].samples = 80;
    r->cases[1].calls = 3;
    r->cases[1].cand_ns = 7.0e5;
    r->cases[1].base_ns = 1.0e6;
    r->cases[1].ratio = (kb__ci){0.70249, 0.69, NAN};
    r->trial_seconds = 12.25;
    r->overhead_us = 3.25;
    r->overhead_pct = 0.108;
    r->prepare_ms = 3.5;
    r->peak_rss_kb = 20480;
    snprintf(r->inputs, sizeof r->inputs, "cold (16 replicas, 64 MiB working set > LLC 32 MiB)");
}

static char *capture(void (*fn)(const kb__result *, void *), const kb__result *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(r, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* Splits the block into key/value pairs; checks the framing. */
static size_t parse_block(char *text, char **keys, char **vals, size_t max)
{
    assert_memory_equal(text, "---\n", 4);
    size_t n = 0;
    for (char *line = text + 4; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *sep = strstr(line, ": ");
        assert_non_null(sep);
        *sep = '\0';
        assert_true(n < max);
        keys[n] = line;
        vals[n] = sep + 2;
        assert_true(strlen(vals[n]) > 0);
        n++;
        line = nl + 1;
    }
    return n;
}

static const char *val(char **keys, char **vals, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0) return vals[i];
    fail_msg("no key %s", key);
    return NULL;
}

static void test_block_keep(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_KEEP);
    char *text = capture(kb__result_print_block, &r);
    char *keys[64], *vals[64];
    size_t n = parse_block(text, keys, vals, 64);
    assert_int_equal(n, NKEYS);
    for (size_t i = 0; i < NKEYS; i++) assert_string_equal(keys[i], block_keys[i]);
    assert_string_equal(val(keys, vals, n, "status"), "keep");
    assert_string_equal(val(keys, vals, n, "geomean_ratio"), "0.6120");
    assert_string_equal(val(keys, vals, n, "ci90_low"), "0.6011");
    assert_string_equal(val(keys, vals, n, "ci90_high"), "0.6200");
    assert_string_equal(val(keys, vals, n, "worst_case"), "m16_n100k");
    assert_string_equal(val(keys, vals, n, "worst_ratio"), "0.7025");
    assert_string_equal(val(keys, vals, n, "cases"), "2");
    assert_string_equal(val(keys, vals, n, "inputs"),
                        "cold (16 replicas, 64 MiB working set > LLC 32 MiB)");
    assert_string_equal(val(keys, vals, n, "trial_seconds"), "12.250");
    assert_string_equal(val(keys, vals, n, "peak_rss_kb"), "20480");
    assert_string_equal(val(keys, vals, n, "batch_overhead_us"), "3.25");
    assert_string_equal(val(keys, vals, n, "batch_overhead_pct"), "0.108");
    assert_string_equal(val(keys, vals, n, "seed"), "0x00c0ffee12345678");
    assert_string_equal(val(keys, vals, n, "seed_chosen"), "no");
    /* the reason's newline did not start a new line */
    assert_non_null(strstr(val(keys, vals, n, "reason"), "0.99 and a"));
    free(text);
}

static void test_block_incorrect(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_INCORRECT);
    snprintf(r.reason, sizeof r.reason, "case m8_n10k, index 17: expected 3, got 4");
    r.cand_digest[0] = '\0';
    r.inputs[0] = '\0'; /* the trial ended before its target was known */
    char *text = capture(kb__result_print_block, &r);
    char *keys[64], *vals[64];
    size_t n = parse_block(text, keys, vals, 64);
    assert_int_equal(n, NKEYS);
    for (size_t i = 0; i < NKEYS; i++) assert_string_equal(keys[i], block_keys[i]);
    assert_string_equal(val(keys, vals, n, "status"), "incorrect");
    static const char *const na[] = {
        "geomean_ratio",   "ci90_low",          "ci90_high",          "worst_case",
        "worst_ratio",     "worst_ci90_low",    "worst_ci90_high",    "candidate_digest",
        "noise_pct",       "drift_pct",         "fresh_ratio",        "fresh_ci90_low",
        "fresh_ci90_high", "batch_overhead_us", "batch_overhead_pct", "hw_counters",
        "inputs",          "spread_pct",        "trial_ci90_low",     "trial_ci90_high"};
    for (size_t i = 0; i < sizeof na / sizeof na[0]; i++)
        assert_string_equal(val(keys, vals, n, na[i]), "n/a");
    assert_string_equal(val(keys, vals, n, "reason"), "case m8_n10k, index 17: expected 3, got 4");
    free(text);
}

static void test_table(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_KEEP);
    char *text = capture(kb__result_print_table, &r);
    /* header plus one line per case, all the same width up to the last
     * column, then a blank line and the notes on the columns */
    char *lines[8];
    int n = 0;
    char *p = text;
    while (*p && *p != '\n' && n < 8) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    assert_int_equal(n, 3);
    /* the medians are labelled as such and the ratio as the paired figure,
     * so 53405 vs 57871 ns beside a ratio of 1.025 cannot be misread */
    assert_non_null(strstr(lines[0], "cand median ns"));
    assert_non_null(strstr(lines[0], "base median ns"));
    assert_non_null(strstr(p, "not paired"));
    assert_non_null(strstr(p, "need not\nequal cand/base"));
    assert_non_null(strstr(lines[0], "case"));
    assert_non_null(strstr(lines[0], "calls/batch"));
    assert_non_null(strstr(lines[0], "GB/s"));
    assert_int_equal(strlen(lines[1]), strlen(lines[0]));
    assert_int_equal(strlen(lines[2]), strlen(lines[0]));
    assert_non_null(strstr(lines[1], "m8_n10k"));
    assert_non_null(strstr(lines[1], "[0.4800, 0.5200]"));
    /* candidate GB/s: 1e6 bytes / 1e5 ns */
    assert_non_null(strstr(lines[1], " 10.00"));
    /* no bytes known, a non-finite CI end: dashes, not "nan" */
    assert_null(strstr(lines[2], "nan"));
    assert_string_equal(lines[2] + strlen(lines[2]) - 2, " -");
    free(text);

    r.n_cases = 0;
    text = capture(kb__result_print_table, &r);
    assert_string_equal(text, "");
    free(text);
}

/* The roof% cell names its roof and marks a figure over 100; the table says
 * why for each such case. */
static void test_roof_cell(void **state)
{
    (void)state;
    kb__case_result c;
    memset(&c, 0, sizeof c);
    char out[32];
    c.cand_ns = 1.0e5;
    c.bytes_per_call = 1.0e6; /* 10 GB/s */
    assert_int_equal(kb__result_roof_cell(&c, out, sizeof out), 0);
    assert_string_equal(out, "-"); /* uncalibrated */
    c.roof_gbps = 20, c.roof_level = 1;
    assert_int_equal(kb__result_roof_cell(&c, out, sizeof out), 0);
    assert_string_equal(out, "50 L2");
    c.roof_gbps = 8.85, c.roof_level = 1; /* 113% */
    assert_int_equal(kb__result_roof_cell(&c, out, sizeof out), 1);
    assert_string_equal(out, "113 L2*");
    c.roof_gbps = 1000, c.roof_level = 3;
    c.flops_per_call = 4.0e6, c.peak_gflops = 100; /* 40 GFLOP/s: 40% of FP */
    assert_int_equal(kb__result_roof_cell(&c, out, sizeof out), 0);
    assert_string_equal(out, "40 FP");

    kb__result r;
    sample(&r, KB__ST_KEEP);
    r.cases[0].roof_gbps = 8.85, r.cases[0].roof_level = 1;
    char *text = capture(kb__result_print_table, &r);
    assert_non_null(strstr(text, "113 L2*"));
    assert_non_null(strstr(text, "* m8_n10k: 113 L2* is over 100% of its roof"));
    free(text);
    /* a case name cannot add a line through the note either */
    snprintf(r.cases[0].name, sizeof r.cases[0].name, "a\nstatus: keep");
    text = capture(kb__result_print_table, &r);
    assert_non_null(strstr(text, "* a status: keep: 113 L2*"));
    assert_null(strstr(text, "\nstatus:"));
    free(text);
}

/* A working set takes the roof of the first level that holds it. */
static void test_roof_level(void **state)
{
    (void)state;
    kb__machine m = {.bw_gbps = {200, 100, 50, 20}, .level_bytes = {48e3, 2e6, 32e6, 256e6}};
    assert_int_equal(kb__machine_roof_level(&m, 1), 0);
    assert_int_equal(kb__machine_roof_level(&m, 48e3), 0);
    assert_int_equal(kb__machine_roof_level(&m, 48e3 + 1), 1);
    assert_int_equal(kb__machine_roof_level(&m, 2e6), 1);
    assert_int_equal(kb__machine_roof_level(&m, 3e6), 2);
    assert_int_equal(kb__machine_roof_level(&m, 33e6), 3);
    assert_int_equal(kb__machine_roof_level(&m, 1e12), 3);
    assert_true(kb__machine_roof(&m, 3e6) == 50);
}

static json_t *parse_json(const kb__result *r)
{
    char *text = capture(kb__result_print_json, r);
    json_error_t e;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!root) fail_msg("JSON does not parse: %s at line %d\n%s", e.text, e.line, text);
    free(text);
    return root;
}

static void test_json_keep(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_KEEP);
    json_t *root = parse_json(&r);

    json_t *ctx = json_object_get(root, "context");
    assert_true(json_is_object(ctx));
    assert_true(json_is_string(json_object_get(ctx, "date")));
    assert_true(json_is_string(json_object_get(ctx, "host_name")));
    assert_string_equal(json_string_value(json_object_get(ctx, "executable")), "kbench");
    assert_true(json_integer_value(json_object_get(ctx, "num_cpus")) >= 1);
    assert_true(json_is_string(json_object_get(ctx, "library_build_type")));
    assert_string_equal(json_string_value(json_object_get(ctx, "kbench_version")), KB_VERSION);
    assert_string_equal(json_string_value(json_object_get(ctx, "target")), "pq_scan");
    /* the invalid byte became U+FFFD, the rest survived */
    assert_string_equal(json_string_value(json_object_get(ctx, "candidate")),
                        "plugins/caf\xef\xbf\xbd/avx512.so");

    json_t *bm = json_object_get(root, "benchmarks");
    assert_true(json_is_array(bm));
    assert_int_equal(json_array_size(bm), 4);
    static const char *const names[] = {"pq_scan/m8_n10k/candidate", "pq_scan/m8_n10k/baseline",
                                        "pq_scan/m16_n100k/candidate",
                                        "pq_scan/m16_n100k/baseline"};
    for (size_t i = 0; i < 4; i++) {
        json_t *b = json_array_get(bm, i);
        const kb__case_result *c = &r.cases[i / 2];
        double ns = i % 2 ? c->base_ns : c->cand_ns;
        assert_string_equal(json_string_value(json_object_get(b, "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(b, "run_name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(b, "run_type")), "iteration");
        assert_string_equal(json_string_value(json_object_get(b, "time_unit")), "ns");
        assert_int_equal(json_integer_value(json_object_get(b, "iterations")),
                         (json_int_t)c->samples * (json_int_t)c->calls);
        assert_true(json_number_value(json_object_get(b, "real_time")) == ns);
        assert_true(json_number_value(json_object_get(b, "cpu_time")) == ns);
        assert_true(fabs(json_number_value(json_object_get(b, "ratio")) - c->ratio.est) < 1e-9);
        assert_true(fabs(json_number_value(json_object_get(b, "ci90_low")) - c->ratio.lo) < 1e-9);
    }
    /* NaN CI end is null, not a bare nan token */
    assert_true(json_is_null(json_object_get(json_array_get(bm, 2), "ci90_high")));
    assert_true(fabs(json_number_value(json_object_get(json_array_get(bm, 0), "bytes_per_second")) -
                     1e10) < 1.0);

    json_t *kb = json_object_get(root, "kbench");
    assert_true(json_is_object(kb));
    for (size_t i = 0; i < NKEYS; i++) assert_non_null(json_object_get(kb, block_keys[i]));
    assert_string_equal(json_string_value(json_object_get(kb, "status")), "keep");
    assert_string_equal(json_string_value(json_object_get(kb, "reason")), r.reason);
    assert_string_equal(json_string_value(json_object_get(kb, "description")), r.description);
    assert_string_equal(json_string_value(json_object_get(kb, "seed")), "0x00c0ffee12345678");
    assert_string_equal(json_string_value(json_object_get(kb, "inputs")), r.inputs);
    assert_true(fabs(json_number_value(json_object_get(kb, "geomean_ratio")) - 0.61204) < 1e-9);
    json_t *cases = json_object_get(kb, "cases");
    assert_true(json_is_array(cases));
    assert_int_equal(json_array_size(cases), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cases, 1), "name")),
                        "m16_n100k");
    json_decref(root);
}

static void test_json_incorrect_and_odd_strings(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_CRASH);
    /* every control byte and a truncated UTF-8 sequence */
    char reason[40];
    for (int i = 0; i < 31; i++) reason[i] = (char)(i + 1);
    reason[31] = '\x7f';
    reason[32] = '\xe2';
    reason[33] = '\x82';
    reason[34] = '\0';
    memcpy(r.reason, reason, 35);
    r.trial_seconds = INFINITY;
    json_t *root = parse_json(&r);
    json_t *kb = json_object_get(root, "kbench");
    const char *got = json_string_value(json_object_get(kb, "reason"));
    assert_non_null(got);
    assert_memory_equal(got, reason, 32);
    assert_string_equal(got + 32, "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(kb, "status")), "crash");
    assert_int_equal(json_integer_value(json_object_get(kb, "exit_code")), 3);
    assert_true(json_is_null(json_object_get(kb, "geomean_ratio")));
    assert_true(json_is_null(json_object_get(kb, "worst_case")));
    assert_true(json_is_null(json_object_get(kb, "trial_seconds")));
    assert_int_equal(json_array_size(json_object_get(root, "benchmarks")), 0);
    json_decref(root);

    r.seed_chosen = 1;
    r.n_cases = 0;
    root = parse_json(&r);
    assert_true(json_is_true(json_object_get(json_object_get(root, "kbench"), "seed_chosen")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(root, "kbench"), "cases")), 0);
    json_decref(root);
}

/* o's keys, in order, are exactly want[0..n). */
static void keys_are(const json_t *o, const char *const *want, size_t n, const char *what)
{
    assert_true(json_is_object(o));
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        if (i >= n || strcmp(key, want[i]))
            fail_msg("%s: key %zu is \"%s\", expected \"%s\"", what, i, key,
                     i < n ? want[i] : "(end)");
        i++;
    }
    if (i != n) fail_msg("%s: %zu keys, expected %zu", what, i, n);
}

#define KEYS_ARE(o, want, what) keys_are(o, want, sizeof want / sizeof want[0], what)

/* Every key of the --json document, in order, and the integer members as
 * integers: what scripts and Google Benchmark readers parse. */
static void test_json_keys(void **state)
{
    (void)state;
    static const char *const top[] = {"context", "benchmarks", "kbench"};
    static const char *const context[] = {
        "date",           "host_name", "executable", "num_cpus", "library_build_type",
        "kbench_version", "target",    "candidate",  "against",  "seed"};
    static const char *const bench_cand[] = {
        "name",       "run_name",  "run_type",     "repetitions", "repetition_index", "threads",
        "iterations", "real_time", "cpu_time",     "time_unit",   "bytes_per_second", "ratio",
        "ci90_low",   "ci90_high", "roof_fraction"};
    static const char *const bench_base[] = {
        "name",       "run_name",  "run_type", "repetitions", "repetition_index", "threads",
        "iterations", "real_time", "cpu_time", "time_unit",   "bytes_per_second", "ratio",
        "ci90_low",   "ci90_high"};
    static const char *const kbench[] = {"target",
                                         "candidate",
                                         "candidate_name",
                                         "candidate_digest",
                                         "against",
                                         "against_digest",
                                         "oracle_digest",
                                         "status",
                                         "exit_code",
                                         "reason",
                                         "geomean_ratio",
                                         "ci90_low",
                                         "ci90_high",
                                         "worst_case",
                                         "worst_ratio",
                                         "worst_ci90_low",
                                         "worst_ci90_high",
                                         "prepare_ms",
                                         "trial_seconds",
                                         "peak_rss_kb",
                                         "seed",
                                         "seed_chosen",
                                         "noise_pct",
                                         "noise_floor_pct",
                                         "drift_pct",
                                         "spread_pct",
                                         "trial_ci90_low",
                                         "trial_ci90_high",
                                         "fresh_ratio",
                                         "fresh_ci90_low",
                                         "fresh_ci90_high",
                                         "batch_overhead_us",
                                         "batch_overhead_pct",
                                         "inputs",
                                         "input_sets",
                                         "hw_counters",
                                         "description",
                                         "git_commit",
                                         "cpu_model",
                                         "isa",
                                         "kernel",
                                         "governor",
                                         "boost",
                                         "smt",
                                         "load_avg",
                                         "steal_pct",
                                         "cpu_quota",
                                         "hypervisor",
                                         "pti",
                                         "kbench_version",
                                         "cases"};
    static const char *const kcase[] = {"name",
                                        "samples",
                                        "calls_per_batch",
                                        "output_bytes_per_call",
                                        "cand_ns_per_call",
                                        "base_ns_per_call",
                                        "ratio",
                                        "ci90_low",
                                        "ci90_high",
                                        "batch_ns",
                                        "cand_batch_gap_ns",
                                        "base_batch_gap_ns",
                                        "batch_overhead_ns",
                                        "bytes_per_call",
                                        "flops_per_call"};
    kb__result r;
    sample(&r, KB__ST_KEEP);
    json_t *root = parse_json(&r);
    KEYS_ARE(root, top, "document");
    KEYS_ARE(json_object_get(root, "context"), context, "context");
    json_t *bm = json_object_get(root, "benchmarks");
    KEYS_ARE(json_array_get(bm, 0), bench_cand, "benchmarks[0]");
    KEYS_ARE(json_array_get(bm, 1), bench_base, "benchmarks[1]");
    json_t *kb = json_object_get(root, "kbench");
    KEYS_ARE(kb, kbench, "kbench");
    KEYS_ARE(json_array_get(json_object_get(kb, "cases"), 0), kcase, "kbench.cases[0]");
    assert_true(json_is_integer(json_object_get(json_array_get(bm, 0), "iterations")));
    assert_true(json_is_integer(json_object_get(json_array_get(bm, 0), "repetitions")));
    assert_true(json_is_integer(json_object_get(kb, "exit_code")));
    assert_int_equal(json_integer_value(json_object_get(kb, "peak_rss_kb")), 20480);
    assert_true(json_is_false(json_object_get(kb, "seed_chosen")));
    json_t *c0 = json_array_get(json_object_get(kb, "cases"), 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "samples")), 120);
    assert_int_equal(json_integer_value(json_object_get(c0, "calls_per_batch")), 64);
    assert_true(json_is_integer(json_object_get(c0, "output_bytes_per_call")));
    json_decref(root);

    /* with the best-so-far: its members follow the cases */
    kb__best_info bi;
    memset(&bi, 0, sizeof bi);
    bi.used = bi.had_best = bi.promoted = 1;
    bi.oracle_ratio = 0.5;
    bi.oracle_ratio_source = "measured";
    snprintf(bi.best_digest, sizeof bi.best_digest, "0123456789abcdef");
    snprintf(bi.note, sizeof bi.note, "promoted \xe9");
    json_t *doc = kb__result_to_json(&r, &bi);
    assert_non_null(doc);
    kb = json_object_get(doc, "kbench");
    assert_int_equal(json_object_size(kb), sizeof kbench / sizeof kbench[0] + 3);
    assert_true(json_number_value(json_object_get(kb, "oracle_ratio")) == 0.5);
    assert_string_equal(json_string_value(json_object_get(kb, "oracle_ratio_source")), "measured");
    static const char *const best[] = {"against", "digest", "promoted", "note"};
    KEYS_ARE(json_object_get(kb, "best"), best, "kbench.best");
    assert_string_equal(json_string_value(json_object_get(json_object_get(kb, "best"), "note")),
                        "promoted ?");
    json_decref(doc);
}

/* Counts the '|' of a Markdown line that are not backslash-escaped. */
static int bare_pipes(const char *line, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\') {
            i++;
            continue;
        }
        n += line[i] == '|';
    }
    return n;
}

/* A hostile candidate path and case name (newlines, a fake verdict, an
 * unclosed HTML comment, pipes, backticks) render as inert text: the only
 * bold "keep" is none (the verdict is discard), no line starts with '<',
 * the line count is what an honest result gives and every table row keeps
 * its 8 cell borders. */
static void test_markdown_escapes_every_field(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_DISCARD);
    char *honest = capture(kb__result_print_md, &r);
    snprintf(r.candidate, sizeof r.candidate, "x\n\n**keep**\n<!-- `a|b` *c* [l](u) & \x7f.so");
    snprintf(r.against, sizeof r.against, "<script>|");
    snprintf(r.worst_case, sizeof r.worst_case, "w\n| fake | row |");
    snprintf(r.cases[0].name, sizeof r.cases[0].name, "a|b\n| 0.1 |`c`<!--");
    char *md = capture(kb__result_print_md, &r);
    int lines = 0, honest_lines = 0;
    for (const char *p = honest; *p; p++) honest_lines += *p == '\n';
    for (const char *line = md; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        lines++;
        assert_true(line[0] != '<');
        if (line[0] == '|') assert_int_equal(bare_pipes(line, (size_t)(nl - line)), 8);
        line = nl + 1;
    }
    assert_int_equal(lines, honest_lines);
    assert_null(strstr(md, "**keep**"));
    assert_non_null(strstr(md, "**discard**"));
    for (const char *p = md; *p; p++) /* no HTML, no code span opens */
        if (*p == '<' || *p == '`') assert_true(p > md && p[-1] == '\\');
    assert_null(strchr(md, '\x7f'));
    free(md);

    /* the reason of an untimed verdict, in its quote line */
    sample(&r, KB__ST_INCORRECT);
    snprintf(r.reason, sizeof r.reason, "bad\n\n**keep**\n<!--");
    md = capture(kb__result_print_md, &r);
    assert_null(strstr(md, "**keep**"));
    assert_null(strstr(md, "\n<"));
    assert_non_null(strstr(md, "> reason: bad  \\*\\*keep\\*\\* \\<!--\n"));
    free(md);
    free(honest);
}

/* A path with a newline cannot forge a block line: "status: keep" never
 * starts a line of a discard's block. */
static void test_block_cannot_be_forged(void **state)
{
    (void)state;
    kb__result r;
    sample(&r, KB__ST_DISCARD);
    snprintf(r.candidate, sizeof r.candidate, "x.so\nstatus: keep\r\nreason: fine");
    snprintf(r.description, sizeof r.description, "d\nstatus: keep");
    char *text = capture(kb__result_print_block, &r);
    assert_null(strstr(text, "\nstatus: keep"));
    assert_non_null(strstr(text, "\nstatus: discard\n"));
    assert_non_null(strstr(text, "\ncandidate: x.so status: keep  reason: fine\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_keep),
        cmocka_unit_test(test_block_incorrect),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_roof_cell),
        cmocka_unit_test(test_roof_level),
        cmocka_unit_test(test_json_keep),
        cmocka_unit_test(test_json_incorrect_and_odd_strings),
        cmocka_unit_test(test_json_keys),
        cmocka_unit_test(test_markdown_escapes_every_field),
        cmocka_unit_test(test_block_cannot_be_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
