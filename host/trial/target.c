/*
 * target.c -- a target's warm state: oracle, cases, inputs, oracle outputs.
 *
 * Generation and oracle outputs are the expensive, candidate-independent
 * part of a trial. They are keyed by (target, case selection, seed, oracle
 * digest) and kept for as long as the cache lives: one trial for
 * `kbench trial`, a whole session for watch and serve. The oracle file is
 * re-read and re-hashed on every lookup, so an oracle rebuilt underneath a
 * running session is noticed and its state rebuilt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "paths.h"
#include "trial.h"

#define KB__PROBE_SEED_DOMAIN 0x70726f6265736564u /* "probesed" */

/* The listed case whose name is nearest tok (kb__suggest's sense), or NULL. */
static const char *near_case(const kb_target *t, const char *tok)
{
    const char *names[KB__RESULT_MAX_CASES];
    uint32_t n = 0;
    for (; n < t->n_cases && n < KB__RESULT_MAX_CASES; n++) names[n] = t->cases[n].name;
    return kb__suggest(tok, names, n);
}

/* A --cases name that matches no case: the nearest name when one is near,
 * and every name, ';'-separated as --cases takes them. */
static int no_case(const kb_target *t, const char *tok, char *err, size_t err_len)
{
    char list[1024] = "";
    for (size_t o = 0, n = 0; n < t->n_cases && n < KB__RESULT_MAX_CASES && o < sizeof list; n++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", n ? ";" : "", t->cases[n].name);
    static const char *const words[] = {"quick", "all"};
    const char *near = near_case(t, tok);
    if (!near) near = kb__suggest(tok, words, 2);
    kb__errf(err, err_len,
             "no case '%s' in target %s; %s%s%sits cases: quick, all, or %s; a shape is "
             "written 'name=value,.../distribution' (`kbench list` shows the ranges)",
             tok, t->name, near ? "did you mean '" : "", near ? near : "", near ? "'? " : "", list);
    return KB__EUSAGE;
}

static const kb_case_spec *listed_case(const kb_target *t, const char *name)
{
    for (uint32_t i = 0; i < t->n_cases; i++)
        if (!strcmp(t->cases[i].name, name)) return &t->cases[i];
    return NULL;
}

/* The quick cases (or all), appended to specs[]: with no case flagged
 * quick, the first four. */
static void add_listed(const kb_target *t, int all, const kb_case_spec **specs, uint32_t *n)
{
    const uint32_t n0 = *n;
    for (uint32_t i = 0; i < t->n_cases && *n < KB__MAX_CASES; i++)
        if (all || (t->cases[i].flags & KB_CASE_QUICK)) specs[(*n)++] = &t->cases[i];
    if (*n == n0)
        for (uint32_t i = 0; i < t->n_cases && i < 4 && *n < KB__MAX_CASES; i++)
            specs[(*n)++] = &t->cases[i];
}

/* The cap on one input set holds for the shapes of a selection together,
 * so many of them cannot add up to what one could not take. */
static int within_cap(const kb_target *t, const kb_case_spec *cs, uint64_t *shaped, char *err,
                      size_t err_len)
{
    const uint64_t b = kb__shape_bytes(t, cs);
    if (b > t->max_case_bytes - *shaped) {
        kb__errf(err, err_len,
                 "the shapes asked for need %.1f MiB per input set together, over %s's cap of "
                 "%.1f MiB per set; ask for fewer or smaller shapes",
                 ((double)*shaped + (double)b) / (1 << 20), t->name,
                 (double)t->max_case_bytes / (1 << 20));
        return KB__EUSAGE;
    }
    *shaped += b;
    return 0;
}

/* Case selection: "quick" (default), "all", or a ";"-separated list of
 * listed case names and shapes ("n=100000,d=128,m=16/uniform"), in that
 * order, into specs[] (a shape's spec is kept in shapes[]). */
static int select_cases(const kb_target *t, const char *sel, const kb_case_spec **specs,
                        kb__shape *shapes, uint32_t *n, char *err, size_t err_len)
{
    *n = 0;
    uint64_t shaped = 0; /* one input set of every shape so far */
    if (!sel || !strcmp(sel, "quick") || !strcmp(sel, "all")) {
        add_listed(t, sel && !strcmp(sel, "all"), specs, n);
        return 0;
    }
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", sel);
    /* Case names contain commas themselves, so the list separator is ";". */
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save)) {
        if (*n == KB__MAX_CASES) {
            kb__errf(err, err_len, "more than %d cases selected; a trial takes at most %d",
                     KB__MAX_CASES, KB__MAX_CASES);
            return KB__EUSAGE;
        }
        if (!strcmp(tok, "quick") || !strcmp(tok, "all")) { /* --cases quick --case SHAPE */
            add_listed(t, !strcmp(tok, "all"), specs, n);
            continue;
        }
        const kb_case_spec *cs = listed_case(t, tok);
        if (!cs && kb__shape_is_spec(tok)) {
            int rc = kb__shape_parse(t, tok, &shapes[*n], err, err_len);
            /* A misspelt listed name reads as a shape too: the shape's
             * error, then the listed name when one is near. */
            const char *near = rc != 0 ? near_case(t, tok) : NULL;
            if (near) {
                const size_t used = strlen(err);
                if (used < err_len)
                    snprintf(err + used, err_len - used, "; or did you mean the listed case '%s'?",
                             near);
            }
            if (rc != 0) return rc;
            /* The same shape as a listed case is that case. */
            cs = listed_case(t, shapes[*n].name);
            if (!cs && (rc = within_cap(t, &shapes[*n].cs, &shaped, err, err_len)) != 0) return rc;
            if (!cs) cs = &shapes[*n].cs;
        }
        if (!cs) return no_case(t, tok, err, err_len);
        specs[(*n)++] = cs;
    }
    return 0;
}

static void ctx_free(kb__ctx *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->n_cases; i++) kb__case_free(&c->cases[i]);
    if (c->t) kb__lib_close(&c->oracle);
    kb__snapshot_close(&c->osnap);
    free(c);
}

static int ctx_build(kb__ctx *c, const char *target, const char *oracles_dir, const char *sel,
                     uint64_t seed, uint64_t probe_seed, char *err, size_t err_len)
{
    const uint64_t t0 = kb__now_ns();
    const uint32_t n_sets = c->n_sets;
    snprintf(c->target, sizeof c->target, "%s", target);
    snprintf(c->oracles_dir, sizeof c->oracles_dir, "%s", oracles_dir ? oracles_dir : "");
    snprintf(c->cases_sel, sizeof c->cases_sel, "%s", sel ? sel : "quick");
    c->seed = seed;
    c->probe_seed = probe_seed;
    for (int i = 0; i < KB__MAX_CASES; i++)
        c->cases[i].fd = c->cases[i].ro_fd = c->cases[i].cfd = c->cases[i].cro_fd =
            c->cases[i].pfd = c->cases[i].pro_fd = -1;
    c->osnap.fd = -1;
    int rc =
        kb__oracle_find(target, oracles_dir, c->oracle_path, sizeof c->oracle_path, err, err_len);
    if (rc != 0) return KB__ENOTFOUND;
    if ((rc = kb__snapshot_take(c->oracle_path, &c->osnap, err, err_len)) != 0) return rc;
    /* Load the sealed copy whose digest is reported, not the path, which
     * could change between the two. */
    char sealed[64];
    snprintf(sealed, sizeof sealed, "/proc/self/fd/%d", c->osnap.fd);
    if ((rc = kb__lib_open(sealed, c->oracle_path, 1, &c->oracle, err, err_len)) != 0) return rc;
    c->t = c->oracle.target;
    const kb_case_spec *specs[KB__MAX_CASES];
    uint32_t n = 0;
    if ((rc = select_cases(c->t, sel, specs, c->shapes, &n, err, err_len)) != 0) return rc;
    uint32_t n_outs = 0;
    for (uint32_t b = 0; b < c->t->n_buffers; b++)
        n_outs += c->t->buffers[b].role == KB_ROLE_OUTPUT;
    const uint32_t lane_cap = kb__lane_cap(n, n_outs);
    for (uint32_t i = 0; i < n; i++) {
        c->n_cases = i + 1;
        rc = kb__case_build_spec(c->t, c->oracle.plugin, specs[i], i, lane_cap, n_sets, seed,
                                 probe_seed, &c->cases[i], err, err_len);
        if (rc != 0) return rc;
        if (specs[i] != &c->shapes[i].cs) c->cases[i].index = (uint32_t)(specs[i] - c->t->cases);
    }
    c->build_seconds = (double)(kb__now_ns() - t0) / 1e9;
    return 0;
}

/* A context of at least n_sets input sets per case (KB__SETS or
 * KB__ALLSETS), built or reused. */
static int ctx_get(kb__ctx_cache *cc, const char *target, const char *oracles_dir,
                   const char *cases, uint64_t seed, uint32_t n_sets, kb__ctx **out, char *err,
                   size_t err_len)
{
    if (!cc->seed) {
        uint64_t s[2];
        if (getrandom(s, sizeof s, 0) != sizeof s) {
            s[0] = kb__now_ns() * 0x9e3779b97f4a7c15u;
            s[1] = kb__hash(s, sizeof s[0], kb__now_ns());
        }
        cc->seed = s[0] ? s[0] : 1;
        cc->probe_seed = s[1];
    }
    /* The fresh sets' seed: independent secret bits, so no timed input
     * (nor the timed seed, were it found) predicts them. A user's --seed is
     * public by choice, and its fresh sets follow from it, so a trial
     * repeats whole. */
    const uint64_t probe_seed =
        seed ? kb__hash(&seed, sizeof seed, KB__PROBE_SEED_DOMAIN) : cc->probe_seed;
    if (!seed) seed = cc->seed;
    const char *sel = cases ? cases : "quick", *od = oracles_dir ? oracles_dir : "";
    /* The selection keys the cache: one cut short could match another's. */
    if (strlen(sel) >= sizeof cc->ctx[0]->cases_sel) {
        kb__errf(err, err_len, "the case selection is over %zu characters; select fewer cases",
                 sizeof cc->ctx[0]->cases_sel - 1);
        return KB__EUSAGE;
    }
    for (uint32_t i = 0; i < cc->n; i++) {
        kb__ctx *c = cc->ctx[i];
        if (strcmp(c->target, target) || strcmp(c->cases_sel, sel) || strcmp(c->oracles_dir, od) ||
            c->seed != seed || c->probe_seed != probe_seed || c->n_sets < n_sets)
            continue;
        /* Still the same oracle? */
        kb__snapshot now = {.fd = -1};
        char path[1024];
        int same = kb__oracle_find(target, oracles_dir, path, sizeof path, err, err_len) == 0 &&
                   !strcmp(path, c->oracle_path) &&
                   kb__snapshot_take(path, &now, err, err_len) == 0 &&
                   now.digest == c->osnap.digest;
        kb__snapshot_close(&now);
        if (same) {
            cc->hits++;
            *out = c;
            return 0;
        }
        ctx_free(c);
        cc->ctx[i] = cc->ctx[--cc->n];
        break;
    }
    kb__ctx *c = calloc(1, sizeof *c);
    if (!c) {
        kb__errf(err, err_len, "out of memory");
        return KB__ENOMEM;
    }
    c->n_sets = n_sets;
    int rc = ctx_build(c, target, oracles_dir, sel, seed, probe_seed, err, err_len);
    if (rc != 0) {
        ctx_free(c);
        return rc;
    }
    if (cc->n == KB__CTX_MAX) { /* evict the oldest */
        ctx_free(cc->ctx[0]);
        memmove(cc->ctx, cc->ctx + 1, sizeof cc->ctx[0] * (KB__CTX_MAX - 1));
        cc->n--;
    }
    cc->ctx[cc->n++] = c;
    cc->builds++;
    *out = c;
    return 0;
}

int kb__ctx_get(kb__ctx_cache *cc, const char *target, const char *oracles_dir, const char *cases,
                uint64_t seed, kb__ctx **out, char *err, size_t err_len)
{
    return ctx_get(cc, target, oracles_dir, cases, seed, KB__ALLSETS, out, err, err_len);
}

int kb__ctx_get_check(kb__ctx_cache *cc, const char *target, const char *oracles_dir,
                      const char *cases, uint64_t seed, kb__ctx **out, char *err, size_t err_len)
{
    return ctx_get(cc, target, oracles_dir, cases, seed, KB__SETS, out, err, err_len);
}

void kb__ctx_cache_free(kb__ctx_cache *cc)
{
    for (uint32_t i = 0; i < cc->n; i++) ctx_free(cc->ctx[i]);
    memset(cc, 0, sizeof *cc);
}
