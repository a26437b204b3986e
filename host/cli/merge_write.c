/*
 * merge_write.c -- what `kbench merge` writes (merge.h): the ledger v2, the
 * Markdown matrix and the JSON document, each a pure function of the
 * entries, written to a temporary file and renamed into place.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "merge.h"

/* The row of a trial: its id without the repeat ("#N"). */
static size_t row_len(const char *id)
{
    const char *h = strrchr(id, '#');
    return h ? (size_t)(h - id) : strlen(id);
}

static int same_row(const kb__mentry *a, const kb__mentry *b)
{
    const size_t n = row_len(a->id);
    return n == row_len(b->id) && !strncmp(a->id, b->id, n);
}

/* The distinct machine kinds (CPU models) of the kept-in entries, sorted. */
static size_t machine_kinds(const kb__mset *s, const char **kinds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].left_out) continue;
        const char *k = s->e[i].r.env.cpu_model;
        size_t j = 0;
        while (j < n && strcmp(kinds[j], k)) j++;
        if (j == n && n < cap) kinds[n++] = k;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(kinds[j - 1], kinds[j]) > 0; j--) {
            const char *t = kinds[j];
            kinds[j] = kinds[j - 1];
            kinds[j - 1] = t;
        }
    return n;
}

/* The entry shown in the cell of row (starting at entry `row`) and kind:
 * of its repeats, the timed one with the median ratio, else the first;
 * -1 when none. *reps gets how many repeats the cell has. */
static long cell_entry(const kb__mset *s, size_t row, const char *kind, size_t *reps)
{
    long idx[256];
    size_t n = 0, timed = 0;
    for (size_t i = row; i < s->n && same_row(&s->e[i], &s->e[row]) && n < 256; i++)
        if (!s->e[i].left_out && !strcmp(s->e[i].r.env.cpu_model, kind)) idx[n++] = (long)i;
    *reps = n;
    if (!n) return -1;
    double g[256];
    for (size_t i = 0; i < n; i++)
        if (kb__status_timed(s->e[idx[i]].r.status)) g[timed] = s->e[idx[i]].r.geomean.est, timed++;
    if (!timed) return idx[0];
    for (size_t i = 1; i < timed; i++)
        for (size_t j = i; j > 0 && g[j - 1] > g[j]; j--) {
            const double t = g[j];
            g[j] = g[j - 1];
            g[j - 1] = t;
        }
    const double med = g[(timed - 1) / 2];
    for (size_t i = 0; i < n; i++)
        if (kb__status_timed(s->e[idx[i]].r.status) && s->e[idx[i]].r.geomean.est == med)
            return idx[i];
    return idx[0];
}

/* The best of a target in a kind: the kept cell with the lowest ratio. */
static long column_best(const kb__mset *s, const char *target, const char *kind)
{
    long best = -1;
    for (size_t i = 0; i < s->n; i++) {
        size_t reps;
        if (i && same_row(&s->e[i], &s->e[i - 1])) continue;
        if (strcmp(s->e[i].r.target, target)) continue;
        const long c = cell_entry(s, i, kind, &reps);
        if (c >= 0 && s->e[c].r.status == KB__ST_KEEP &&
            (best < 0 || s->e[c].r.geomean.est < s->e[best].r.geomean.est))
            best = c;
    }
    return best;
}

/* Text in a table cell: a '|' or a line break would end the cell or the
 * row (the ids and CPU models come from the result files). */
static void md_text(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++)
        fputc(s[i] == '|' || (unsigned char)s[i] < 0x20 ? '?' : s[i], f);
}

static void md_cell(FILE *f, const kb__mset *s, size_t row, const char *kind)
{
    size_t reps;
    const long c = cell_entry(s, row, kind, &reps);
    if (c < 0) {
        fputs(" - |", f);
        return;
    }
    const kb__result *r = &s->e[c].r;
    const int best = column_best(s, r->target, kind) == c;
    fprintf(f, " %s%s", best ? "**" : "", kb__status_name(r->status));
    if (kb__status_timed(r->status))
        fprintf(f, " %.3f [%.3f, %.3f]", r->geomean.est, r->geomean.lo, r->geomean.hi);
    fprintf(f, "%s", best ? "** (best)" : "");
    if (reps > 1) fprintf(f, " (median of %zu)", reps);
    fputs(" |", f);
}

static void write_md(FILE *f, const kb__mset *s)
{
    const char *kinds[64];
    const size_t nk = machine_kinds(s, kinds, 64);
    fputs("| build/target/candidate |", f);
    for (size_t k = 0; k < nk; k++) {
        fputc(' ', f);
        md_text(f, kinds[k], strlen(kinds[k]));
        fputs(" |", f);
    }
    fputs("\n|---|", f);
    for (size_t k = 0; k < nk; k++) fputs("---|", f);
    fputc('\n', f);
    for (size_t i = 0; i < s->n; i++) {
        if ((i && same_row(&s->e[i], &s->e[i - 1])) || s->e[i].left_out) continue;
        fputs("| ", f);
        md_text(f, s->e[i].id, row_len(s->e[i].id));
        fputs(" |", f);
        for (size_t k = 0; k < nk; k++) md_cell(f, s, i, kinds[k]);
        fputc('\n', f);
    }
    fputs("\nEach cell: the verdict and the geomean ratio (candidate / baseline) with its 90% CI; "
          "bold: the lowest ratio kept of its target on that machine kind.\n",
          f);
}

static void write_ledger(FILE *f, const kb__mset *s)
{
    char line[4 * PATH_MAX];
    fputs(KB__LEDGER_HEADER, f);
    for (size_t i = 0; i < s->n; i++)
        if (!s->e[i].left_out &&
            kb__ledger_format_at(&s->e[i].r, NULL, s->e[i].when, line, sizeof line) > 0)
            fputs(line, f);
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *entry_json(const kb__mentry *e)
{
    const kb__result *r = &e->r;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "trial_id", e->id,
                  "build", e->build, "target", r->target, "candidate", r->candidate,
                  "candidate_digest", r->cand_digest, "oracle_digest", r->oracle_digest, "status",
                  kb__status_name(r->status), "node", e->node, "slurm_job_id", e->job, "cpu_model",
                  r->env.cpu_model, "isa", r->env.isa, "finished_unix", (json_int_t)e->when);
    if (!o) return NULL;
    json_object_set_new(o, "kbench_version", json_string(r->env.version));
    json_object_set_new(o, "trial_seconds", num(r->trial_seconds));
    json_object_set_new(o, "geomean_ratio",
                        num(kb__status_timed(r->status) ? r->geomean.est : NAN));
    json_object_set_new(o, "ci90_low", num(kb__status_timed(r->status) ? r->geomean.lo : NAN));
    json_object_set_new(o, "ci90_high", num(kb__status_timed(r->status) ? r->geomean.hi : NAN));
    return o;
}

static void write_json(FILE *f, const kb__mset *s)
{
    json_t *doc = json_object(), *res = json_array(), *left = json_array();
    for (size_t i = 0; i < s->n; i++) {
        json_t *o = entry_json(&s->e[i]);
        if (s->e[i].left_out) json_object_set_new(o, "file", json_string(s->e[i].file));
        json_array_append_new(s->e[i].left_out ? left : res, o);
    }
    json_object_set_new(doc, "kbench_merge_version", json_integer(1));
    json_object_set_new(doc, "results", res);
    json_object_set_new(doc, "left_out", left);
    json_dumpf(doc, f, JSON_INDENT(2) | JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER);
    fputc('\n', f);
    json_decref(doc);
}

typedef void kb__merge_writer(FILE *f, const kb__mset *s);

/* path written whole by fn through a temporary file and a rename. */
static int write_file(const char *path, kb__merge_writer *fn, const kb__mset *s)
{
    if (!path) return 0;
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f) fn(f, s);
    int bad = !f || fflush(f) != 0 || ferror(f);
    if (f) bad |= fclose(f) != 0;
    if (!bad && rename(tmp, path) == 0) return 0;
    fprintf(stderr, "kbench merge: %s: cannot write (%s); check the folder\n", path,
            strerror(errno));
    unlink(tmp);
    return -1;
}

int kb__merge_write(const kb__mset *s, const char *ledger, const char *markdown, const char *json)
{
    if (!ledger && !markdown && !json) {
        write_md(stdout, s);
        return fflush(stdout) ? -1 : 0;
    }
    int rc = write_file(ledger, write_ledger, s);
    rc |= write_file(markdown, write_md, s);
    rc |= write_file(json, write_json, s);
    return rc ? -1 : 0;
}
