/*
 * result_json.c -- a trial result as a jansson value and back, for the
 * socket protocol of `kbench serve` and its client.
 *
 * The document is exactly what `kbench trial --json` prints (result.c owns
 * that format); this file only parses it back, so the two can never drift:
 * a client that rebuilds a kb__result from the server's answer prints the
 * same block and the same JSON a local trial would.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

json_t *kb__result_to_json(const kb__result *r, const kb__best_info *bi)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    kb__result_print_json(r, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!doc) return NULL;
    json_t *kb = json_object_get(doc, "kbench");
    if (bi && bi->used && json_is_object(kb)) {
        json_object_set_new(kb, "oracle_ratio",
                            isfinite(bi->oracle_ratio) ? json_real(bi->oracle_ratio) : json_null());
        json_object_set_new(kb, "oracle_ratio_source",
                            json_string(bi->oracle_ratio_source ? bi->oracle_ratio_source : "n/a"));
        json_t *b = json_object();
        json_object_set_new(b, "against", json_string(bi->had_best ? "best" : "oracle"));
        json_object_set_new(b, "digest", json_string(bi->best_digest));
        json_object_set_new(b, "promoted", json_boolean(bi->promoted));
        /* the note comes from paths and plugin names: keep it valid UTF-8 */
        char note[sizeof bi->note];
        snprintf(note, sizeof note, "%s", bi->note);
        for (unsigned char *p = (unsigned char *)note; *p; p++)
            if (*p >= 0x80 || *p < 0x20) *p = '?';
        json_object_set_new(b, "note", json_string(note));
        json_object_set_new(kb, "best", b);
    }
    return doc;
}

void kb__result_print_json_ext(const kb__result *r, const kb__best_info *bi, void *file)
{
    if (!bi || !bi->used) {
        kb__result_print_json(r, file);
        return;
    }
    json_t *doc = kb__result_to_json(r, bi);
    if (!doc) {
        kb__result_print_json(r, file);
        return;
    }
    json_dumpf(doc, file, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    fputc('\n', file);
    json_decref(doc);
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
    int rc = 0;
    rc |= get_str(kb, "status", status, sizeof status, 1, err, err_len);
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
    rc |= get_str(kb, "seed", seed, sizeof seed, 0, err, err_len);
    rc |= get_str(kb, "hw_counters", r->hw_counters, sizeof r->hw_counters, 0, err, err_len);
    rc |= get_str(kb, "inputs", r->inputs, sizeof r->inputs, 0, err, err_len);
    if (rc) return KB__EFORMAT;
    if (status_from_name(status, &r->status) != 0) {
        kb__errf(err, err_len, "result JSON: unknown status \"%.32s\"", status);
        return KB__EFORMAT;
    }
    r->seed = strtoull(seed, NULL, 16);
    r->seed_chosen = json_is_true(json_object_get(kb, "seed_chosen"));
    r->geomean =
        (kb__ci){get_num(kb, "geomean_ratio"), get_num(kb, "ci90_low"), get_num(kb, "ci90_high")};
    r->worst = (kb__ci){get_num(kb, "worst_ratio"), get_num(kb, "worst_ci90_low"),
                        get_num(kb, "worst_ci90_high")};
    r->prepare_ms = get_num(kb, "prepare_ms");
    r->trial_seconds = get_num(kb, "trial_seconds");
    r->noise_pct = get_num(kb, "noise_pct");
    r->noise_floor_pct = get_num(kb, "noise_floor_pct");
    r->drift_pct = get_num(kb, "drift_pct");
    r->fresh_ratio = get_num(kb, "fresh_ratio");
    r->fresh_lo = get_num(kb, "fresh_ci90_low");
    r->fresh_hi = get_num(kb, "fresh_ci90_high");
    r->overhead_us = get_num(kb, "batch_overhead_us");
    r->overhead_pct = get_num(kb, "batch_overhead_pct");
    double rss = get_num(kb, "peak_rss_kb");
    r->peak_rss_kb = rss >= 0 && rss < 0x1p63 ? (long)rss : 0; /* a cast out of range is UB */
    const json_t *cases = json_object_get(kb, "cases");
    size_t n = json_is_array(cases) ? json_array_size(cases) : 0;
    if (n > sizeof r->cases / sizeof r->cases[0]) n = sizeof r->cases / sizeof r->cases[0];
    r->n_cases = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(cases, i);
        kb__case_result *cr = &r->cases[i];
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
    }
    if (bi) {
        memset(bi, 0, sizeof *bi);
        bi->oracle_ratio = NAN;
        bi->oracle_ratio_source = "n/a";
        const json_t *b = json_object_get(kb, "best");
        if (json_is_object(b)) {
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
    }
    return 0;
}
