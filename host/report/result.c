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
#include <math.h>
#include <stdio.h>
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
    kv_num(f, "prepare_ms", 1, "%.3f", r->prepare_ms);
    kv_num(f, "trial_seconds", 1, "%.3f", r->trial_seconds);
    fprintf(f, "peak_rss_kb: %ld\n", r->peak_rss_kb);
    kv_num(f, "noise_pct", t, "%.2f", r->noise_pct);
    kv_num(f, "noise_floor_pct", 1, "%.2f", r->noise_floor_pct);
    kv_num(f, "drift_pct", t, "%+.1f", r->drift_pct);
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
    fputs("| case | candidate ns/call | baseline ns/call | ratio | 90% CI | GB/s | % of roof |\n"
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
        fputs(" | ", f);
        if (isfinite(frac))
            fprintf(f, "%.0f%%", 100 * frac);
        else
            fputs("-", f);
        fputs(" |\n", f);
    }
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
    fprintf(f, "%-*s %8s %12s %13s %13s %8s %-20s %10s %10s %6s\n", w, "case", "samples",
            "calls/batch", "cand ns/call", "base ns/call", "ratio", "ci90 [lo, hi]", "cand GB/s",
            "GFLOP/s", "roof%");
    for (uint32_t i = 0; i < n; i++) {
        const kb__case_result *c = &r->cases[i];
        char name[sizeof c->name];
        size_t j = 0;
        for (; j + 1 < sizeof name && c->name[j]; j++)
            name[j] = (unsigned char)c->name[j] < 0x20 || c->name[j] == 0x7f ? ' ' : c->name[j];
        name[j] = '\0';
        fprintf(f, "%-*s %8" PRIu32 " %12" PRIu64 " ", w, name, c->samples, c->calls);
        cell(f, 13, "%*.2f", c->cand_ns, t);
        fputc(' ', f);
        cell(f, 13, "%*.2f", c->base_ns, t);
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
        fputc(' ', f);
        cell(f, 6, "%*.0f", 100 * frac, t);
        fputc('\n', f);
    }
}

/* ---- JSON ----------------------------------------------------------- */
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

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p++, f);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", *p++);
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                /* a path with a Latin-1 byte must not make the document
                 * unparseable */
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, n, f);
                p += n;
            }
        }
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("null", f);
}

/* Writes `"key": ` preceded by a comma unless it is the first member. */
static void json_key(FILE *f, int *first, const char *indent, const char *key)
{
    fprintf(f, "%s\n%s", *first ? "" : ",", indent);
    *first = 0;
    json_str(f, key);
    fputs(": ", f);
}

static void jk_str(FILE *f, int *first, const char *in, const char *key, const char *v)
{
    json_key(f, first, in, key);
    json_str(f, v);
}

static void jk_num(FILE *f, int *first, const char *in, const char *key, double v)
{
    json_key(f, first, in, key);
    json_num(f, v);
}

static void jk_int(FILE *f, int *first, const char *in, const char *key, uint64_t v)
{
    json_key(f, first, in, key);
    fprintf(f, "%" PRIu64, v);
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

static void json_case(FILE *f, const kb__result *r, const kb__case_result *c, int cand, int *first)
{
    char name[64 + 96 + 16];
    snprintf(name, sizeof name, "%s/%s/%s", r->target, c->name, cand ? "candidate" : "baseline");
    double ns = cand ? c->cand_ns : c->base_ns;
    const char *in = "      ";
    fprintf(f, "%s\n    {", *first ? "" : ",");
    *first = 0;
    int m = 1;
    jk_str(f, &m, in, "name", name);
    jk_str(f, &m, in, "run_name", name);
    jk_str(f, &m, in, "run_type", "iteration");
    jk_int(f, &m, in, "repetitions", 1);
    jk_int(f, &m, in, "repetition_index", 0);
    jk_int(f, &m, in, "threads", 1);
    jk_int(f, &m, in, "iterations", (uint64_t)c->samples * c->calls);
    jk_num(f, &m, in, "real_time", ns);
    jk_num(f, &m, in, "cpu_time", ns);
    jk_str(f, &m, in, "time_unit", "ns");
    if (c->bytes_per_call > 0 && ns > 0)
        jk_num(f, &m, in, "bytes_per_second", c->bytes_per_call / ns * 1e9);
    if (c->flops_per_call > 0 && ns > 0)
        jk_num(f, &m, in, "flops_per_second", c->flops_per_call / ns * 1e9);
    /* the case's candidate/baseline ratio, on both sides' entries */
    jk_num(f, &m, in, "ratio", c->ratio.est);
    jk_num(f, &m, in, "ci90_low", c->ratio.lo);
    jk_num(f, &m, in, "ci90_high", c->ratio.hi);
    if (cand) {
        double gbs, gfl, frac;
        case_roof(c, &gbs, &gfl, &frac);
        jk_num(f, &m, in, "roof_fraction", frac);
    }
    fputs("\n    }", f);
}

void kb__result_print_json(const kb__result *r, void *file)
{
    FILE *f = file;
    int t = kb__status_timed(r->status);
    uint32_t n = r->n_cases < 64 ? r->n_cases : 64;
    char buf[256], seed[24];
    snprintf(seed, sizeof seed, "0x%016" PRIx64, r->seed);
    double nan = NAN;

    fputs("{\n  \"context\": {", f);
    int m = 1;
    const char *in = "    ";
    json_date(buf, sizeof buf);
    jk_str(f, &m, in, "date", buf);
    if (gethostname(buf, sizeof buf) != 0) buf[0] = '\0';
    buf[sizeof buf - 1] = '\0';
    jk_str(f, &m, in, "host_name", buf);
    jk_str(f, &m, in, "executable", "kbench");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    jk_int(f, &m, in, "num_cpus", cpus > 0 ? (uint64_t)cpus : 0);
#ifdef NDEBUG
    jk_str(f, &m, in, "library_build_type", "release");
#else
    jk_str(f, &m, in, "library_build_type", "debug");
#endif
    jk_str(f, &m, in, "kbench_version", KB_VERSION);
    jk_str(f, &m, in, "target", r->target);
    jk_str(f, &m, in, "candidate", r->candidate);
    jk_str(f, &m, in, "against", r->against);
    jk_str(f, &m, in, "seed", seed);
    fputs("\n  },\n  \"benchmarks\": [", f);
    m = 1;
    for (uint32_t i = 0; t && i < n; i++) {
        json_case(f, r, &r->cases[i], 1, &m);
        json_case(f, r, &r->cases[i], 0, &m);
    }
    fputs(m ? "],\n" : "\n  ],\n", f);

    fputs("  \"kbench\": {", f);
    m = 1;
    jk_str(f, &m, in, "target", r->target);
    jk_str(f, &m, in, "candidate", r->candidate);
    jk_str(f, &m, in, "candidate_name", r->cand_name);
    jk_str(f, &m, in, "candidate_digest", r->cand_digest);
    jk_str(f, &m, in, "against", r->against);
    jk_str(f, &m, in, "against_digest", r->against_digest);
    jk_str(f, &m, in, "oracle_digest", r->oracle_digest);
    jk_str(f, &m, in, "status", kb__status_name(r->status));
    jk_int(f, &m, in, "exit_code", (uint64_t)kb__status_exit_code(r->status));
    jk_str(f, &m, in, "reason", r->reason);
    jk_num(f, &m, in, "geomean_ratio", t ? r->geomean.est : nan);
    jk_num(f, &m, in, "ci90_low", t ? r->geomean.lo : nan);
    jk_num(f, &m, in, "ci90_high", t ? r->geomean.hi : nan);
    json_key(f, &m, in, "worst_case");
    if (t)
        json_str(f, r->worst_case);
    else
        fputs("null", f);
    jk_num(f, &m, in, "worst_ratio", t ? r->worst.est : nan);
    jk_num(f, &m, in, "worst_ci90_low", t ? r->worst.lo : nan);
    jk_num(f, &m, in, "worst_ci90_high", t ? r->worst.hi : nan);
    jk_num(f, &m, in, "prepare_ms", r->prepare_ms);
    jk_num(f, &m, in, "trial_seconds", r->trial_seconds);
    jk_int(f, &m, in, "peak_rss_kb", r->peak_rss_kb > 0 ? (uint64_t)r->peak_rss_kb : 0);
    jk_str(f, &m, in, "seed", seed);
    json_key(f, &m, in, "seed_chosen");
    fputs(r->seed_chosen ? "true" : "false", f);
    jk_num(f, &m, in, "noise_pct", t ? r->noise_pct : nan);
    jk_num(f, &m, in, "noise_floor_pct", r->noise_floor_pct);
    jk_num(f, &m, in, "drift_pct", t ? r->drift_pct : nan);
    jk_num(f, &m, in, "fresh_ratio", t ? r->fresh_ratio : nan);
    jk_num(f, &m, in, "fresh_ci90_low", t ? r->fresh_lo : nan);
    jk_num(f, &m, in, "fresh_ci90_high", t ? r->fresh_hi : nan);
    jk_num(f, &m, in, "batch_overhead_us", t ? r->overhead_us : nan);
    jk_num(f, &m, in, "batch_overhead_pct", t ? r->overhead_pct : nan);
    jk_str(f, &m, in, "inputs", r->inputs);
    jk_str(f, &m, in, "hw_counters", r->hw_counters);
    jk_str(f, &m, in, "description", r->description);
    jk_str(f, &m, in, "git_commit", r->git_commit);
    /* the block's "cases" count is this array's length */
    json_key(f, &m, in, "cases");
    fputc('[', f);
    for (uint32_t i = 0; i < n; i++) {
        const kb__case_result *c = &r->cases[i];
        const char *ci = "        ";
        int cm = 1;
        fprintf(f, "%s\n      {", i ? "," : "");
        jk_str(f, &cm, ci, "name", c->name);
        jk_int(f, &cm, ci, "samples", c->samples);
        jk_int(f, &cm, ci, "calls_per_batch", c->calls);
        jk_int(f, &cm, ci, "output_bytes_per_call", c->out_bytes);
        jk_num(f, &cm, ci, "cand_ns_per_call", t ? c->cand_ns : nan);
        jk_num(f, &cm, ci, "base_ns_per_call", t ? c->base_ns : nan);
        jk_num(f, &cm, ci, "ratio", t ? c->ratio.est : nan);
        jk_num(f, &cm, ci, "ci90_low", t ? c->ratio.lo : nan);
        jk_num(f, &cm, ci, "ci90_high", t ? c->ratio.hi : nan);
        jk_num(f, &cm, ci, "batch_ns", t ? c->batch_ns : nan);
        jk_num(f, &cm, ci, "cand_batch_gap_ns", t ? c->gap_ns[0] : nan);
        jk_num(f, &cm, ci, "base_batch_gap_ns", t ? c->gap_ns[1] : nan);
        jk_num(f, &cm, ci, "batch_overhead_ns", t ? c->overhead_ns : nan);
        jk_num(f, &cm, ci, "bytes_per_call", c->bytes_per_call);
        jk_num(f, &cm, ci, "flops_per_call", c->flops_per_call);
        fputs("\n      }", f);
    }
    fputs(n ? "\n    ]" : "]", f);
    fputs("\n  }\n}\n", f);
}
