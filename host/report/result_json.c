/*
 * result_json.c -- a trial result as JSON, printed and read back: --json,
 * and the socket protocol of `kbench serve` and its client.
 *
 * result.c builds the document (kb__result_json); this file adds what a
 * trial against the best-so-far adds, prints it, and parses it back, so a
 * client that rebuilds a kb__result from the server's answer prints the
 * same block and the same JSON a local trial would.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* The best-so-far's members of the "kbench" object. 0, or -1 when out of
 * memory. */
static int best_to_json(json_t *kb, const kb__best_info *bi)
{
    int rc = json_object_set_new(
        kb, "oracle_ratio", isfinite(bi->oracle_ratio) ? json_real(bi->oracle_ratio) : json_null());
    rc |= json_object_set_new(
        kb, "oracle_ratio_source",
        kb__json_str(bi->oracle_ratio_source ? bi->oracle_ratio_source : "n/a"));
    json_t *b = json_object();
    rc |= json_object_set_new(b, "against", json_string(bi->had_best ? "best" : "oracle"));
    /* read back from a client's document, cut to its buffer: maybe not UTF-8 */
    rc |= json_object_set_new(b, "digest", kb__json_str(bi->best_digest));
    rc |= json_object_set_new(b, "promoted", json_boolean(bi->promoted));
    /* the note comes from paths and plugin names: keep it valid UTF-8 */
    char note[sizeof bi->note];
    snprintf(note, sizeof note, "%s", bi->note);
    for (unsigned char *p = (unsigned char *)note; *p; p++)
        if (*p >= 0x80 || *p < 0x20) *p = '?';
    rc |= json_object_set_new(b, "note", json_string(note));
    rc |= json_object_set_new(kb, "best", b);
    return rc ? -1 : 0;
}

typedef struct kb__env_str {
    const char *key;
    char *val;
    size_t len;
} kb__env_str;
#define KB__ENV_NSTRS   10
#define KB__ENV_NUMS_AT 6 /* load_avg and steal_pct come before strs[6] */

/* The machine's text members, by the key the block and JSON give them. */
static void env_strs(kb__env *e, kb__env_str s[KB__ENV_NSTRS])
{
#define KB__ES(k, m) (kb__env_str){k, e->m, sizeof e->m}
    s[0] = KB__ES("cpu_model", cpu_model);
    s[1] = KB__ES("isa", isa);
    s[2] = KB__ES("kernel", kernel);
    s[3] = KB__ES("governor", governor);
    s[4] = KB__ES("boost", boost);
    s[5] = KB__ES("smt", smt);
    s[6] = KB__ES("cpu_quota", cpu_quota);
    s[7] = KB__ES("hypervisor", hypervisor);
    s[8] = KB__ES("pti", pti);
    s[9] = KB__ES("kbench_version", version);
#undef KB__ES
}

int kb__env_to_json(json_t *kb, const kb__env *e)
{
    kb__env w = *e;
    kb__env_str strs[KB__ENV_NSTRS];
    env_strs(&w, strs);
    int rc = 0;
    for (size_t i = 0; i < KB__ENV_NSTRS; i++) {
        /* the block's order: the numbers follow smt */
        if (i == KB__ENV_NUMS_AT) {
            rc |= json_object_set_new(kb, "load_avg",
                                      isfinite(e->load_avg) ? json_real(e->load_avg) : json_null());
            rc |= json_object_set_new(
                kb, "steal_pct", isfinite(e->steal_pct) ? json_real(e->steal_pct) : json_null());
        }
        /* from the kernel's files: kept ASCII, so the document always parses */
        for (unsigned char *p = (unsigned char *)strs[i].val; *p; p++)
            if (*p >= 0x80 || *p < 0x20) *p = '?';
        rc |= json_object_set_new(kb, strs[i].key, json_string(strs[i].val));
    }
    return rc ? -1 : 0;
}

json_t *kb__result_to_json(const kb__result *r, const kb__best_info *bi)
{
    json_t *doc = kb__result_json(r);
    if (!doc || !bi || !bi->used) return doc;
    if (best_to_json(json_object_get(doc, "kbench"), bi) == 0) return doc;
    json_decref(doc);
    return NULL;
}

void kb__result_print_json_ext(const kb__result *r, const kb__best_info *bi, void *file)
{
    json_t *doc = kb__result_to_json(r, bi);
    if (!doc) {
        fputs("kbench: out of memory writing the result as JSON\n", stderr);
        return;
    }
    json_dumpf(doc, file, JSON_INDENT(2) | JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER);
    fputc('\n', file);
    json_decref(doc);
}

void kb__result_print_json(const kb__result *r, void *file)
{
    kb__result_print_json_ext(r, NULL, file);
}

/* ---- back from JSON ------------------------------------------------- */
static int get_str(const json_t *o, const char *key, char *out, size_t out_len, int required,
                   char *err, size_t err_len)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        out[0] = 0;
        if (!required) return 0;
        kb__errf(err, err_len, "result JSON: \"%s\" is missing", key);
        return KB__EFORMAT;
    }
    if (!json_is_string(v)) {
        kb__errf(err, err_len, "result JSON: \"%s\" is not a string", key);
        return KB__EFORMAT;
    }
    snprintf(out, out_len, "%s", json_string_value(v));
    return 0;
}

/* A number, or NAN for null/missing (result.c writes non-finite as null). */
static double get_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int status_from_name(const char *s, kb__status *st)
{
    for (int i = KB__ST_KEEP; i <= KB__ST_CORRECT; i++)
        if (!strcmp(kb__status_name((kb__status)i), s)) {
            *st = (kb__status)i;
            return 0;
        }
    return -1;
}

/* The block's strings; status and seed as text for the caller. */
static int strings_from_json(const json_t *kb, kb__result *r, char *status, size_t status_len,
                             char *seed, size_t seed_len, char *err, size_t err_len)
{
    int rc = 0;
    rc |= get_str(kb, "status", status, status_len, 1, err, err_len);
    rc |= get_str(kb, "target", r->target, sizeof r->target, 0, err, err_len);
    rc |= get_str(kb, "candidate", r->candidate, sizeof r->candidate, 0, err, err_len);
    rc |= get_str(kb, "candidate_name", r->cand_name, sizeof r->cand_name, 0, err, err_len);
    rc |= get_str(kb, "candidate_digest", r->cand_digest, sizeof r->cand_digest, 0, err, err_len);
    rc |= get_str(kb, "against", r->against, sizeof r->against, 0, err, err_len);
    rc |=
        get_str(kb, "against_digest", r->against_digest, sizeof r->against_digest, 0, err, err_len);
    rc |= get_str(kb, "oracle_digest", r->oracle_digest, sizeof r->oracle_digest, 0, err, err_len);
    rc |= get_str(kb, "reason", r->reason, sizeof r->reason, 0, err, err_len);
    rc |= get_str(kb, "worst_case", r->worst_case, sizeof r->worst_case, 0, err, err_len);
    rc |= get_str(kb, "description", r->description, sizeof r->description, 0, err, err_len);
    rc |= get_str(kb, "git_commit", r->git_commit, sizeof r->git_commit, 0, err, err_len);
    rc |= get_str(kb, "seed", seed, seed_len, 0, err, err_len);
    rc |= get_str(kb, "hw_counters", r->hw_counters, sizeof r->hw_counters, 0, err, err_len);
    rc |= get_str(kb, "inputs", r->inputs, sizeof r->inputs, 0, err, err_len);
    return rc ? KB__EFORMAT : 0;
}

static void numbers_from_json(const json_t *kb, kb__result *r)
{
    r->geomean =
        (kb__ci){get_num(kb, "geomean_ratio"), get_num(kb, "ci90_low"), get_num(kb, "ci90_high")};
    r->worst = (kb__ci){get_num(kb, "worst_ratio"), get_num(kb, "worst_ci90_low"),
                        get_num(kb, "worst_ci90_high")};
    r->prepare_ms = get_num(kb, "prepare_ms");
    r->trial_seconds = get_num(kb, "trial_seconds");
    r->noise_pct = get_num(kb, "noise_pct");
    r->noise_floor_pct = get_num(kb, "noise_floor_pct");
    r->drift_pct = get_num(kb, "drift_pct");
    r->spread_pct = get_num(kb, "spread_pct");
    r->geomean_within =
        (kb__ci){r->geomean.est, get_num(kb, "trial_ci90_low"), get_num(kb, "trial_ci90_high")};
    r->fresh_ratio = get_num(kb, "fresh_ratio");
    r->fresh_lo = get_num(kb, "fresh_ci90_low");
    r->fresh_hi = get_num(kb, "fresh_ci90_high");
    r->overhead_us = get_num(kb, "batch_overhead_us");
    r->overhead_pct = get_num(kb, "batch_overhead_pct");
    const double sets = get_num(kb, "input_sets");
    r->input_sets = sets >= 0 && sets <= 1024 ? (uint32_t)sets : 0;
    double rss = get_num(kb, "peak_rss_kb");
    r->peak_rss_kb = rss >= 0 && rss < 0x1p63 ? (long)rss : 0; /* a cast out of range is UB */
}

void kb__env_from_json(const json_t *kb, kb__env *e)
{
    memset(e, 0, sizeof *e);
    kb__env_str strs[KB__ENV_NSTRS];
    env_strs(e, strs);
    for (size_t i = 0; i < KB__ENV_NSTRS; i++) {
        const json_t *v = json_object_get(kb, strs[i].key);
        snprintf(strs[i].val, strs[i].len, "%s", json_is_string(v) ? json_string_value(v) : "");
    }
    e->load_avg = get_num(kb, "load_avg");
    e->steal_pct = get_num(kb, "steal_pct");
}

static int case_from_json(const json_t *c, size_t i, kb__case_result *cr, char *err, size_t err_len)
{
    if (!json_is_object(c) || get_str(c, "name", cr->name, sizeof cr->name, 1, err, err_len)) {
        kb__errf(err, err_len, "result JSON: case %zu has no name", i);
        return KB__EFORMAT;
    }
    double s = get_num(c, "samples"), k = get_num(c, "calls_per_batch");
    cr->samples = s >= 0 && s <= UINT32_MAX ? (uint32_t)s : 0;
    cr->calls = k >= 0 && k < 0x1p64 ? (uint64_t)k : 0;
    cr->cand_ns = get_num(c, "cand_ns_per_call");
    cr->base_ns = get_num(c, "base_ns_per_call");
    cr->ratio = (kb__ci){get_num(c, "ratio"), get_num(c, "ci90_low"), get_num(c, "ci90_high")};
    cr->batch_ns = get_num(c, "batch_ns");
    cr->gap_ns[0] = get_num(c, "cand_batch_gap_ns");
    cr->gap_ns[1] = get_num(c, "base_batch_gap_ns");
    cr->overhead_ns = get_num(c, "batch_overhead_ns");
    cr->bytes_per_call = get_num(c, "bytes_per_call");
    cr->flops_per_call = get_num(c, "flops_per_call");
    if (!isfinite(cr->bytes_per_call)) cr->bytes_per_call = 0;
    if (!isfinite(cr->flops_per_call)) cr->flops_per_call = 0;
    return 0;
}

static void best_from_json(const json_t *kb, kb__best_info *bi, char *err, size_t err_len)
{
    memset(bi, 0, sizeof *bi);
    bi->oracle_ratio = NAN;
    bi->oracle_ratio_source = "n/a";
    const json_t *b = json_object_get(kb, "best");
    if (!json_is_object(b)) return;
    static const char *const sources[] = {"measured", "chained", "n/a"};
    char src[16];
    bi->used = 1;
    bi->oracle_ratio = get_num(kb, "oracle_ratio");
    get_str(kb, "oracle_ratio_source", src, sizeof src, 0, err, err_len);
    for (int i = 0; i < 3; i++)
        if (!strcmp(src, sources[i])) bi->oracle_ratio_source = sources[i];
    const json_t *ag = json_object_get(b, "against");
    bi->had_best = json_is_string(ag) && !strcmp(json_string_value(ag), "best");
    bi->promoted = json_is_true(json_object_get(b, "promoted"));
    get_str(b, "digest", bi->best_digest, sizeof bi->best_digest, 0, err, err_len);
    get_str(b, "note", bi->note, sizeof bi->note, 0, err, err_len);
}

int kb__result_from_json(const json_t *doc, kb__result *r, kb__best_info *bi, char *err,
                         size_t err_len)
{
    memset(r, 0, sizeof *r);
    const json_t *kb = json_object_get(doc, "kbench");
    if (!json_is_object(kb)) {
        kb__errf(err, err_len, "result JSON: no \"kbench\" object");
        return KB__EFORMAT;
    }
    char status[32], seed[32];
    if (strings_from_json(kb, r, status, sizeof status, seed, sizeof seed, err, err_len) != 0)
        return KB__EFORMAT;
    if (status_from_name(status, &r->status) != 0) {
        kb__errf(err, err_len, "result JSON: unknown status \"%.32s\"", status);
        return KB__EFORMAT;
    }
    r->seed = strtoull(seed, NULL, 16);
    r->seed_chosen = json_is_true(json_object_get(kb, "seed_chosen"));
    numbers_from_json(kb, r);
    kb__env_from_json(kb, &r->env);
    const json_t *cases = json_object_get(kb, "cases");
    size_t n = json_is_array(cases) ? json_array_size(cases) : 0;
    if (n > sizeof r->cases / sizeof r->cases[0]) n = sizeof r->cases / sizeof r->cases[0];
    r->n_cases = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        if (case_from_json(json_array_get(cases, i), i, &r->cases[i], err, err_len) != 0)
            return KB__EFORMAT;
    if (bi) best_from_json(kb, bi, err, err_len);
    return 0;
}
