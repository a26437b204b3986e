/*
 * result.c -- a trial's result as people and programs read it: the grep-able
 * "---" block, the per-case table, and Google Benchmark shaped JSON.
 *
 * Every string here can come from a user (paths, descriptions) or from a
 * plugin (names, messages in the reason), so each is made safe for its
 * format: one line in the block and table, valid JSON and UTF-8 in the JSON,
 * inert text in the Markdown.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

#ifndef KB_VERSION
#define KB_VERSION "unknown"
#endif

/* ---- the block ------------------------------------------------------ */
/* "key: value\n" with control bytes in value shown as spaces. */
static void kv_str(FILE *f, const char *key, const char *v)
{
    fprintf(f, "%s: ", key);
    if (!v || !*v) fputs("n/a", f);
    for (const unsigned char *p = (const unsigned char *)v; p && *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
    fputc('\n', f);
}

static void kv_num(FILE *f, const char *key, int show, const char *fmt, double v)
{
    fprintf(f, "%s: ", key);
    if (show && isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("n/a", f);
    fputc('\n', f);
}

/* The machine (env.h): the same keys as the JSON's. */
static void print_env(FILE *f, const kb__env *e)
{
    kv_str(f, "cpu_model", e->cpu_model);
    kv_str(f, "isa", e->isa);
    kv_str(f, "kernel", e->kernel);
    kv_str(f, "governor", e->governor);
    kv_str(f, "boost", e->boost);
    kv_str(f, "smt", e->smt);
    kv_num(f, "load_avg", 1, "%.2f", e->load_avg);
    kv_num(f, "steal_pct", 1, "%.1f", e->steal_pct);
    kv_str(f, "cpu_quota", e->cpu_quota);
    kv_str(f, "hypervisor", e->hypervisor);
    kv_str(f, "pti", e->pti);
    kv_str(f, "kbench_version", e->version);
}

void kb__result_print_block(const kb__result *r, void *file)
{
    FILE *f = file;
    int t = kb__status_timed(r->status);
    fputs("---\n", f);
    kv_str(f, "target", r->target);
    kv_str(f, "candidate", r->candidate);
    kv_str(f, "candidate_name", r->cand_name);
    kv_str(f, "candidate_digest", r->cand_digest);
    kv_str(f, "against", r->against);
    kv_str(f, "against_digest", r->against_digest);
    kv_str(f, "oracle_digest", r->oracle_digest);
    kv_str(f, "status", kb__status_name(r->status));
    kv_str(f, "reason", r->reason);
    kv_num(f, "geomean_ratio", t, "%.4f", r->geomean.est);
    kv_num(f, "ci90_low", t, "%.4f", r->geomean.lo);
    kv_num(f, "ci90_high", t, "%.4f", r->geomean.hi);
    kv_str(f, "worst_case", t ? r->worst_case : "");
    kv_num(f, "worst_ratio", t, "%.4f", r->worst.est);
    kv_num(f, "worst_ci90_low", t, "%.4f", r->worst.lo);
    kv_num(f, "worst_ci90_high", t, "%.4f", r->worst.hi);
    fprintf(f, "cases: %" PRIu32 "\n", r->n_cases);
    kv_str(f, "inputs", r->inputs);
    kv_num(f, "input_sets", r->input_sets > 0, "%.0f", (double)r->input_sets);
    kv_num(f, "prepare_ms", 1, "%.3f", r->prepare_ms);
    kv_num(f, "trial_seconds", 1, "%.3f", r->trial_seconds);
    fprintf(f, "peak_rss_kb: %ld\n", r->peak_rss_kb);
    kv_num(f, "noise_pct", t, "%.2f", r->noise_pct);
    kv_num(f, "noise_floor_pct", 1, "%.2f", r->noise_floor_pct);
    kv_num(f, "drift_pct", t, "%+.1f", r->drift_pct);
    kv_num(f, "spread_pct", t, "%.2f", r->spread_pct);
    kv_num(f, "trial_ci90_low", t, "%.4f", r->geomean_within.lo);
    kv_num(f, "trial_ci90_high", t, "%.4f", r->geomean_within.hi);
    kv_num(f, "fresh_ratio", t, "%.4f", r->fresh_ratio);
    kv_num(f, "fresh_ci90_low", t, "%.4f", r->fresh_lo);
    kv_num(f, "fresh_ci90_high", t, "%.4f", r->fresh_hi);
    kv_num(f, "batch_overhead_us", t, "%.2f", r->overhead_us);
    kv_num(f, "batch_overhead_pct", t, "%.3f", r->overhead_pct);
    kv_str(f, "hw_counters", r->hw_counters);
    if (r->seed)
        fprintf(f, "seed: 0x%016" PRIx64 "\n", r->seed);
    else
        fputs("seed: hidden (a watch or serve session reuses its inputs)\n", f);
    /* yes: inputs picked by whoever ran kbench; such a verdict never makes a best */
    fputs(r->seed_chosen ? "seed_chosen: yes\n" : "seed_chosen: no\n", f);
    print_env(f, &r->env);
}

/* Achieved GB/s, GFLOP/s and the fraction of the roof that bounds them. */
static void case_roof(const kb__case_result *c, double *gbs, double *gfl, double *frac)
{
    *gbs = c->cand_ns > 0 && c->bytes_per_call > 0 ? c->bytes_per_call / c->cand_ns : NAN;
    *gfl = c->cand_ns > 0 && c->flops_per_call > 0 ? c->flops_per_call / c->cand_ns : NAN;
    double a = c->roof_gbps > 0 && isfinite(*gbs) ? *gbs / c->roof_gbps : NAN;
    double b = c->peak_gflops > 0 && isfinite(*gfl) ? *gfl / c->peak_gflops : NAN;
    *frac = isfinite(a) && isfinite(b) ? (a > b ? a : b) : isfinite(a) ? a : b;
}

/* s as inert Markdown text: control bytes (a newline would start a new
 * block: a fake heading, an unclosed "<!--" that hides the rest) become
 * spaces, and every character that can open an inline construct or a table
 * cell is backslash-escaped (a field never starts a line, so the characters
 * that matter only there, # - + =, are left alone), so a path or case name renders as itself and
 * can forge neither a verdict nor a column. Never a code span: a backtick in
 * the string could close it. */
static void md_text(FILE *f, const char *s)
{
    if (!s || !*s) {
        fputs("n/a", f);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fputc(' ', f);
        else if (strchr("\\`*_[]<>|~&", *p))
            fprintf(f, "\\%c", *p);
        else
            fputc(*p, f);
    }
}

void kb__result_print_md(const kb__result *r, void *file)
{
    FILE *f = file;
    int t = kb__status_timed(r->status);
    fputs("**", f);
    md_text(f, r->target[0] ? r->target : "?");
    fputs("** ", f);
    md_text(f, r->candidate);
    fputs(" vs ", f);
    md_text(f, r->against);
    fprintf(f, ": **%s**", kb__status_name(r->status));
    if (t) {
        fprintf(f, ", geomean ratio %.4f [%.4f, %.4f], worst %.4f (", r->geomean.est, r->geomean.lo,
                r->geomean.hi, r->worst.est);
        md_text(f, r->worst_case);
        fputs(")", f);
    }
    fputs("\n\n", f);
    if (!t || r->n_cases == 0) {
        /* a fixed word first: the reason never starts a Markdown line */
        fputs("> reason: ", f);
        md_text(f, r->reason);
        fputs("\n", f);
        return;
    }
    fputs("| case | candidate median ns | baseline median ns | paired ratio | 90% CI | GB/s | % of "
          "roof |\n"
          "|---|---:|---:|---:|---|---:|---:|\n",
          f);
    for (uint32_t i = 0; i < r->n_cases && i < 64; i++) {
        const kb__case_result *c = &r->cases[i];
        double gbs, gfl, frac;
        case_roof(c, &gbs, &gfl, &frac);
        char name[sizeof c->name + 1];
        snprintf(name, sizeof name, "%.*s", (int)sizeof c->name, c->name);
        fputs("| ", f);
        md_text(f, name);
        fprintf(f, " | %.1f | %.1f | %.4f | [%.4f, %.4f] | ", c->cand_ns, c->base_ns, c->ratio.est,
                c->ratio.lo, c->ratio.hi);
        if (isfinite(gbs))
            fprintf(f, "%.2f", gbs);
        else
            fputs("-", f);
        char roof[32];
        kb__result_roof_cell(c, roof, sizeof roof);
        fprintf(f, " | %s |\n", roof);
    }
    fputs("\nThe ns columns are each side's own median, not paired; the ratio is the paired "
          "figure the verdict uses. A roof figure over 100 ends in an asterisk, explained in "
          "docs/design.md, section 7.\n",
          f);
    fprintf(f, "\n%u cases, %.2f s, noise %.2f%% per sample, seed 0x%016" PRIx64 "%s\n", r->n_cases,
            r->trial_seconds, r->noise_pct, r->seed,
            r->seed_chosen ? " (chosen by the caller: not a fair verdict)" : "");
}

/* ---- the table ------------------------------------------------------ */
static void cell(FILE *f, int width, const char *fmt, double v, int show)
{
    if (show && isfinite(v))
        fprintf(f, fmt, width, v);
    else
        fprintf(f, "%*s", width, "-");
}

static const char *const ROOF_LEVEL[4] = {"L1", "L2", "L3", "DRAM"};

int kb__result_roof_cell(const kb__case_result *c, char *out, size_t n)
{
    double gbs, gfl, frac;
    case_roof(c, &gbs, &gfl, &frac);
    if (!isfinite(frac)) {
        snprintf(out, n, "-");
        return 0;
    }
    /* which roof bounds it: the memory level's, or the FMA peak's */
    const int mem = c->roof_gbps > 0 && isfinite(gbs) && frac == gbs / c->roof_gbps;
    const int lvl = c->roof_level >= 0 && c->roof_level < 4 ? c->roof_level : 3;
    snprintf(out, n, "%.0f %s%s", 100 * frac, mem ? ROOF_LEVEL[lvl] : "FP", frac > 1 ? "*" : "");
    return frac > 1;
}

/* A case's name for the table: control bytes shown as spaces, so a name
 * cannot add a line of its own. */
static void table_name(const kb__case_result *c, char out[sizeof c->name])
{
    size_t j = 0;
    for (; j + 1 < sizeof c->name && c->name[j]; j++)
        out[j] = (unsigned char)c->name[j] < 0x20 || c->name[j] == 0x7f ? ' ' : c->name[j];
    out[j] = '\0';
}

/* Under the table: what its columns are, and why a roof% over 100 is
 * printed as it is (never capped, never silent). */
static void table_notes(const kb__result *r, uint32_t n, FILE *f)
{
    fputs("\nns columns: each side's own median per call, not paired. ratio and ci90: the paired\n"
          "estimate (batches of both sides timed side by side) the verdict uses; it need not\n"
          "equal cand/base. roof%: achieved GB/s (or GFLOP/s, FP) over the roof of the level\n"
          "the case's bytes_per_call fits in (kbench calibrate).\n",
          f);
    for (uint32_t i = 0; i < n; i++) {
        const kb__case_result *c = &r->cases[i];
        char cellv[32], name[sizeof c->name];
        if (!kb__result_roof_cell(c, cellv, sizeof cellv)) continue;
        table_name(c, name);
        fprintf(f,
                "* %s: %s is over 100%% of its roof: its data likely stays in a faster level "
                "between calls than its %.0f bytes per call suggest, or it moves data faster "
                "than the triad the roof was measured with; rerun kbench calibrate if the roof "
                "looks low\n",
                name, cellv, c->bytes_per_call);
    }
}

void kb__result_print_table(const kb__result *r, void *file)
{
    FILE *f = file;
    uint32_t n = r->n_cases < 64 ? r->n_cases : 64;
    if (n == 0) return;
    int w = 4;
    for (uint32_t i = 0; i < n; i++) {
        int len = (int)strnlen(r->cases[i].name, sizeof r->cases[i].name);
        w = len > w ? len : w;
    }
    int t = kb__status_timed(r->status);
    fprintf(f, "%-*s %8s %12s %15s %15s %8s %-20s %10s %10s %9s\n", w, "case", "samples",
            "calls/batch", "cand median ns", "base median ns", "ratio", "ci90 [lo, hi]",
            "cand GB/s", "GFLOP/s", "roof%");
    for (uint32_t i = 0; i < n; i++) {
        const kb__case_result *c = &r->cases[i];
        char name[sizeof c->name];
        table_name(c, name);
        fprintf(f, "%-*s %8" PRIu32 " %12" PRIu64 " ", w, name, c->samples, c->calls);
        cell(f, 15, "%*.2f", c->cand_ns, t);
        fputc(' ', f);
        cell(f, 15, "%*.2f", c->base_ns, t);
        fputc(' ', f);
        cell(f, 8, "%*.4f", c->ratio.est, t);
        fputc(' ', f);
        char ci[64];
        if (t && isfinite(c->ratio.lo) && isfinite(c->ratio.hi))
            snprintf(ci, sizeof ci, "[%.4f, %.4f]", c->ratio.lo, c->ratio.hi);
        else
            snprintf(ci, sizeof ci, "-");
        fprintf(f, "%-20s ", ci);
        /* bytes per ns is GB/s */
        double gbs, gfl, frac;
        case_roof(c, &gbs, &gfl, &frac);
        cell(f, 10, "%*.2f", gbs, t);
        fputc(' ', f);
        cell(f, 10, "%*.2f", gfl, t);
        char roof[32];
        kb__result_roof_cell(c, roof, sizeof roof);
        fprintf(f, " %9s\n", t ? roof : "-");
    }
    if (t) table_notes(r, n, f);
}

/* ---- JSON ----------------------------------------------------------- */
/* The one writer of a result's JSON: --json, and the document `kbench
 * serve` sends its client (result_json.c adds the best-so-far and reads it
 * back). Every value is a jansson value, so the text is always valid JSON;
 * non-finite numbers are null. */

/* Length of the valid UTF-8 sequence at p, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

json_t *kb__json_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    const size_t len = strlen((const char *)p);
    char *u = malloc(3 * len + 1); /* U+FFFD is 3 bytes for 1 */
    if (!u) return NULL;
    size_t o = 0;
    while (*p) {
        const size_t n = utf8_len(p);
        if (n == 0) {
            memcpy(u + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        } else {
            memcpy(u + o, p, n);
            o += n;
            p += n;
        }
    }
    json_t *v = json_stringn(u, o);
    free(u);
    return v;
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* o[key] = v, stealing v. A NULL v (out of memory) or a failed set
 * clears *ok: a document is whole or not made at all. */
static void put(json_t *o, const char *key, json_t *v, int *ok)
{
    if (!o || !v || json_object_set_new(o, key, v) != 0) *ok = 0;
}

static void push(json_t *a, json_t *v, int *ok)
{
    if (!a || !v || json_array_append_new(a, v) != 0) *ok = 0;
}

/* o when every member went in, else NULL (and o released). */
static json_t *whole(json_t *o, int ok)
{
    if (ok && o) return o;
    json_decref(o);
    return NULL;
}

static void json_date(char *out, size_t len)
{
    /* Google Benchmark's form: local time with a +hh:mm offset */
    time_t now = time(NULL);
    struct tm tm;
    char z[8];
    if (!localtime_r(&now, &tm) || strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
        strftime(z, sizeof z, "%z", &tm) != 5) {
        snprintf(out, len, "unknown");
        return;
    }
    size_t n = strlen(out);
    snprintf(out + n, len - n, "%.3s:%.2s", z, z + 3);
}

static void seed_hex(const kb__result *r, char *out, size_t len)
{
    snprintf(out, len, "0x%016" PRIx64, r->seed);
}

/* Google Benchmark's "context", with the trial's target, sides and seed. */
static json_t *json_context(const kb__result *r)
{
    char buf[256], seed[24];
    json_t *o = json_object();
    int ok = 1;
    json_date(buf, sizeof buf);
    put(o, "date", kb__json_str(buf), &ok);
    if (gethostname(buf, sizeof buf) != 0) buf[0] = '\0';
    buf[sizeof buf - 1] = '\0';
    put(o, "host_name", kb__json_str(buf), &ok);
    put(o, "executable", kb__json_str("kbench"), &ok);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    put(o, "num_cpus", jint(cpus > 0 ? (uint64_t)cpus : 0), &ok);
#ifdef NDEBUG
    put(o, "library_build_type", kb__json_str("release"), &ok);
#else
    put(o, "library_build_type", kb__json_str("debug"), &ok);
#endif
    put(o, "kbench_version", kb__json_str(KB_VERSION), &ok);
    put(o, "target", kb__json_str(r->target), &ok);
    put(o, "candidate", kb__json_str(r->candidate), &ok);
    put(o, "against", kb__json_str(r->against), &ok);
    seed_hex(r, seed, sizeof seed);
    put(o, "seed", kb__json_str(seed), &ok);
    return whole(o, ok);
}

/* One side of a case as a Google Benchmark "benchmarks" entry. */
static json_t *json_benchmark(const kb__result *r, const kb__case_result *c, int cand)
{
    char name[64 + 96 + 16];
    snprintf(name, sizeof name, "%s/%s/%s", r->target, c->name, cand ? "candidate" : "baseline");
    const double ns = cand ? c->cand_ns : c->base_ns;
    json_t *o = json_object();
    int ok = 1;
    put(o, "name", kb__json_str(name), &ok);
    put(o, "run_name", kb__json_str(name), &ok);
    put(o, "run_type", kb__json_str("iteration"), &ok);
    put(o, "repetitions", jint(1), &ok);
    put(o, "repetition_index", jint(0), &ok);
    put(o, "threads", jint(1), &ok);
    put(o, "iterations", jint((uint64_t)c->samples * c->calls), &ok);
    put(o, "real_time", jnum(ns), &ok);
    put(o, "cpu_time", jnum(ns), &ok);
    put(o, "time_unit", kb__json_str("ns"), &ok);
    if (c->bytes_per_call > 0 && ns > 0)
        put(o, "bytes_per_second", jnum(c->bytes_per_call / ns * 1e9), &ok);
    if (c->flops_per_call > 0 && ns > 0)
        put(o, "flops_per_second", jnum(c->flops_per_call / ns * 1e9), &ok);
    /* the case's candidate/baseline ratio, on both sides' entries */
    put(o, "ratio", jnum(c->ratio.est), &ok);
    put(o, "ci90_low", jnum(c->ratio.lo), &ok);
    put(o, "ci90_high", jnum(c->ratio.hi), &ok);
    if (cand) {
        double gbs, gfl, frac;
        case_roof(c, &gbs, &gfl, &frac);
        put(o, "roof_fraction", jnum(frac), &ok);
    }
    return whole(o, ok);
}

/* One case in the "kbench" object; timing figures null unless timed. */
static json_t *json_case(const kb__case_result *c, int t)
{
    const double nan_ = NAN;
    json_t *o = json_object();
    int ok = 1;
    put(o, "name", kb__json_str(c->name), &ok);
    put(o, "samples", jint(c->samples), &ok);
    put(o, "calls_per_batch", jint(c->calls), &ok);
    put(o, "output_bytes_per_call", jint(c->out_bytes), &ok);
    put(o, "cand_ns_per_call", jnum(t ? c->cand_ns : nan_), &ok);
    put(o, "base_ns_per_call", jnum(t ? c->base_ns : nan_), &ok);
    put(o, "ratio", jnum(t ? c->ratio.est : nan_), &ok);
    put(o, "ci90_low", jnum(t ? c->ratio.lo : nan_), &ok);
    put(o, "ci90_high", jnum(t ? c->ratio.hi : nan_), &ok);
    put(o, "batch_ns", jnum(t ? c->batch_ns : nan_), &ok);
    put(o, "cand_batch_gap_ns", jnum(t ? c->gap_ns[0] : nan_), &ok);
    put(o, "base_batch_gap_ns", jnum(t ? c->gap_ns[1] : nan_), &ok);
    put(o, "batch_overhead_ns", jnum(t ? c->overhead_ns : nan_), &ok);
    put(o, "bytes_per_call", jnum(c->bytes_per_call), &ok);
    put(o, "flops_per_call", jnum(c->flops_per_call), &ok);
    return whole(o, ok);
}

/* The block's keys with their values; untimed verdicts give null figures. */
static void json_verdict(json_t *o, const kb__result *r, int t, int *okp)
{
    const double nan_ = NAN;
    put(o, "status", kb__json_str(kb__status_name(r->status)), okp);
    put(o, "exit_code", jint((uint64_t)kb__status_exit_code(r->status)), okp);
    put(o, "reason", kb__json_str(r->reason), okp);
    put(o, "geomean_ratio", jnum(t ? r->geomean.est : nan_), okp);
    put(o, "ci90_low", jnum(t ? r->geomean.lo : nan_), okp);
    put(o, "ci90_high", jnum(t ? r->geomean.hi : nan_), okp);
    put(o, "worst_case", t ? kb__json_str(r->worst_case) : json_null(), okp);
    put(o, "worst_ratio", jnum(t ? r->worst.est : nan_), okp);
    put(o, "worst_ci90_low", jnum(t ? r->worst.lo : nan_), okp);
    put(o, "worst_ci90_high", jnum(t ? r->worst.hi : nan_), okp);
}

static void json_health(json_t *o, const kb__result *r, int t, int *okp)
{
    const double nan_ = NAN;
    put(o, "noise_pct", jnum(t ? r->noise_pct : nan_), okp);
    put(o, "noise_floor_pct", jnum(r->noise_floor_pct), okp);
    put(o, "drift_pct", jnum(t ? r->drift_pct : nan_), okp);
    put(o, "spread_pct", jnum(t ? r->spread_pct : nan_), okp);
    put(o, "trial_ci90_low", jnum(t ? r->geomean_within.lo : nan_), okp);
    put(o, "trial_ci90_high", jnum(t ? r->geomean_within.hi : nan_), okp);
    put(o, "fresh_ratio", jnum(t ? r->fresh_ratio : nan_), okp);
    put(o, "fresh_ci90_low", jnum(t ? r->fresh_lo : nan_), okp);
    put(o, "fresh_ci90_high", jnum(t ? r->fresh_hi : nan_), okp);
    put(o, "batch_overhead_us", jnum(t ? r->overhead_us : nan_), okp);
    put(o, "batch_overhead_pct", jnum(t ? r->overhead_pct : nan_), okp);
}

/* kbench's own object: the block's facts, then the cases. */
static json_t *json_kbench(const kb__result *r, int t, uint32_t n)
{
    char seed[24];
    json_t *o = json_object();
    int ok = 1;
    put(o, "target", kb__json_str(r->target), &ok);
    put(o, "candidate", kb__json_str(r->candidate), &ok);
    put(o, "candidate_name", kb__json_str(r->cand_name), &ok);
    put(o, "candidate_digest", kb__json_str(r->cand_digest), &ok);
    put(o, "against", kb__json_str(r->against), &ok);
    put(o, "against_digest", kb__json_str(r->against_digest), &ok);
    put(o, "oracle_digest", kb__json_str(r->oracle_digest), &ok);
    json_verdict(o, r, t, &ok);
    put(o, "prepare_ms", jnum(r->prepare_ms), &ok);
    put(o, "trial_seconds", jnum(r->trial_seconds), &ok);
    put(o, "peak_rss_kb", jint(r->peak_rss_kb > 0 ? (uint64_t)r->peak_rss_kb : 0), &ok);
    seed_hex(r, seed, sizeof seed);
    put(o, "seed", kb__json_str(seed), &ok);
    put(o, "seed_chosen", json_boolean(r->seed_chosen), &ok);
    json_health(o, r, t, &ok);
    put(o, "inputs", kb__json_str(r->inputs), &ok);
    put(o, "input_sets", jint(r->input_sets), &ok);
    put(o, "hw_counters", kb__json_str(r->hw_counters), &ok);
    put(o, "description", kb__json_str(r->description), &ok);
    put(o, "git_commit", kb__json_str(r->git_commit), &ok);
    if (kb__env_to_json(o, &r->env) != 0) ok = 0;
    /* the block's "cases" count is this array's length */
    json_t *cases = json_array();
    for (uint32_t i = 0; i < n; i++) push(cases, json_case(&r->cases[i], t), &ok);
    put(o, "cases", cases, &ok);
    return whole(o, ok);
}

json_t *kb__result_json(const kb__result *r)
{
    const int t = kb__status_timed(r->status);
    const uint32_t n = r->n_cases < 64 ? r->n_cases : 64;
    json_t *doc = json_object(), *bm = json_array();
    int ok = 1;
    put(doc, "context", json_context(r), &ok);
    for (uint32_t i = 0; t && i < n; i++) {
        push(bm, json_benchmark(r, &r->cases[i], 1), &ok);
        push(bm, json_benchmark(r, &r->cases[i], 0), &ok);
    }
    put(doc, "benchmarks", bm, &ok);
    put(doc, "kbench", json_kbench(r, t, n), &ok);
    return whole(doc, ok);
}
