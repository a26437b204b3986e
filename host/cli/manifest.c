/*
 * manifest.c -- a campaign's manifest read and expanded into its trials
 * (campaign.h), and the shard split every scheduler's task agrees on.
 *
 * The expansion must give the same list in the same order on every node
 * of a cluster, from the same manifest and the same files (a shared
 * folder), or two tasks would run one trial and none another: globs are
 * sorted, paths resolved against the manifest's folder, not the working
 * directory, and nothing depends on the machine.
 */
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "campaign.h"
#include "kb.h"

static const char *const TOP_KEYS[] = {"out",    "targets", "builds",  "candidates",   "against",
                                       "budget", "cases",   "repeats", "max_parallel", "oracles"};
static const char *const BUILD_KEYS[] = {"name", "dir", "candidates", "constraint", "partition"};

/* Refuses a member the manifest format does not have: a misspelt key
 * would otherwise be ignored and its intent lost. */
static int known_keys(const json_t *o, const char *const *keys, size_t n, const char *where,
                      const char *path, char *err, size_t err_len)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        size_t i = 0;
        while (i < n && strcmp(keys[i], k)) i++;
        if (i == n) {
            kb__errf(err, err_len, "%s: %s has no member \"%s\"; docs/campaign.md lists them", path,
                     where, k);
            return KB__ESPEC;
        }
    }
    return 0;
}

/* rel against the manifest's folder unless absolute. */
static void resolve(const kb__manifest *m, const char *base, const char *rel, char *out, size_t len)
{
    const char *dir = rel[0] == '/' ? "" : base ? base : m->dir;
    const size_t dl = strlen(dir), rl = strlen(rel);
    size_t o = 0;
    out[0] = 0;
    if (dl + 1 + rl >= len) return;
    memcpy(out, dir, dl);
    o = dl;
    if (dl) out[o++] = '/';
    memcpy(out + o, rel, rl + 1);
}

/* pattern with every "{target}" replaced. */
static void subst(const char *pattern, const char *target, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < len;) {
        if (!strncmp(p, "{target}", 8)) {
            o += (size_t)snprintf(out + o, len - o, "%s", target);
            if (o >= len) o = len - 1;
            p += 8;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
}

static int get_string(const json_t *o, const char *key, char *out, size_t len, const char *path,
                      char *err, size_t err_len)
{
    const json_t *v = json_object_get(o, key);
    if (!v) return 0;
    if (!json_is_string(v) || !json_string_value(v)[0] ||
        (size_t)snprintf(out, len, "%s", json_string_value(v)) >= len) {
        kb__errf(err, err_len, "%s: \"%s\" must be a non-empty string under %zu characters", path,
                 key, len);
        return KB__ESPEC;
    }
    return 0;
}

/* The scalar members: budget, cases, repeats, max_parallel, out, oracles. */
static int top_scalars(const json_t *doc, kb__manifest *m, char *err, size_t err_len)
{
    const json_t *b = json_object_get(doc, "budget"), *r = json_object_get(doc, "repeats");
    const json_t *k = json_object_get(doc, "max_parallel");
    char out[PATH_MAX] = "", oracles[PATH_MAX] = "";
    m->budget = KB__BUDGET_DEFAULT_S;
    m->repeats = 1;
    m->max_parallel = 4;
    if (b && (!json_is_number(b) || json_number_value(b) <= 0 || json_number_value(b) > 3600)) {
        kb__errf(err, err_len, "%s: \"budget\" must be seconds in (0, 3600]", m->path);
        return KB__ESPEC;
    }
    if (b) m->budget = json_number_value(b);
    if ((r && (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 100)) ||
        (k &&
         (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > 10000))) {
        kb__errf(err, err_len,
                 "%s: \"repeats\" (1..100) and \"max_parallel\" (1..10000) are "
                 "whole numbers",
                 m->path);
        return KB__ESPEC;
    }
    if (r) m->repeats = (int)json_integer_value(r);
    if (k) m->max_parallel = (int)json_integer_value(k);
    int rc = get_string(doc, "out", out, sizeof out, m->path, err, err_len);
    if (!rc) rc = get_string(doc, "oracles", oracles, sizeof oracles, m->path, err, err_len);
    if (out[0]) resolve(m, NULL, out, m->out, sizeof m->out);
    if (oracles[0]) resolve(m, NULL, oracles, m->oracles, sizeof m->oracles);
    return rc;
}

static int add_trial(kb__manifest *m, const kb__ctrial *t)
{
    if ((m->n_trials & (m->n_trials + 1)) == 0 || !m->trials) {
        kb__ctrial *p = realloc(m->trials, (2 * m->n_trials + 1) * sizeof *p);
        if (!p) return KB__ENOMEM;
        m->trials = p;
    }
    m->trials[m->n_trials++] = *t;
    return 0;
}

/* The file name of a trial's result: readable, and unique by the hash of
 * its id. */
static void result_file(kb__ctrial *t)
{
    const char *base = strrchr(t->candidate, '/');
    char name[40];
    const char *b = base ? base + 1 : t->candidate;
    const size_t bl = strlen(b) < sizeof name ? strlen(b) : sizeof name - 1;
    memcpy(name, b, bl);
    name[bl] = 0;
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    char hex[17];
    kb__hex64(kb__hash(t->id, strlen(t->id), 0), hex);
    snprintf(t->file, sizeof t->file, "%.24s-%.30s-%s.json", t->target, name, hex);
}

/* The cases of target: "cases" as one string for every target, or an
 * object of a string per target; "quick" where it says nothing. */
static int cases_for(const kb__manifest *m, const json_t *doc, const char *target, char *out,
                     size_t len, char *err, size_t err_len)
{
    const json_t *c = json_object_get(doc, "cases");
    if (json_is_object(c)) c = json_object_get(c, target);
    if (!c) return snprintf(out, len, "quick"), 0;
    if (json_is_string(c) && json_string_value(c)[0] &&
        (size_t)snprintf(out, len, "%s", json_string_value(c)) < len)
        return 0;
    kb__errf(err, err_len,
             "%s: \"cases\" (for %s) must be a non-empty string under %zu "
             "characters, or an object of one per target",
             m->path, target, len);
    return KB__ESPEC;
}

/* Every trial of one candidate file. */
static int add_candidate(kb__manifest *m, int bi, const char *target, const char *rel,
                         const char *abs, const char *against, const char *cases)
{
    for (size_t i = 0; i < m->n_trials; i++)
        if (m->trials[i].build == bi && !strcmp(m->trials[i].target, target) &&
            !strcmp(m->trials[i].candidate, abs))
            return 0; /* two patterns matched one file: one trial */
    kb__ctrial t;
    for (int rep = 0; rep < m->repeats; rep++) {
        memset(&t, 0, sizeof t);
        t.build = bi;
        t.repeat = rep;
        snprintf(t.target, sizeof t.target, "%s", target);
        snprintf(t.candidate, sizeof t.candidate, "%s", abs);
        snprintf(t.against, sizeof t.against, "%s", against);
        snprintf(t.cases, sizeof t.cases, "%s", cases);
        snprintf(t.id, sizeof t.id, "%s/%s/%s#%d", m->builds[bi].name, target, rel, rep);
        result_file(&t);
        if (add_trial(m, &t)) return KB__ENOMEM;
    }
    return 0;
}

/* One candidate pattern of one build for one target: its sorted matches. */
static int expand_pattern(kb__manifest *m, int bi, const char *target, const char *pattern,
                          const char *const ac[2], char *err, size_t err_len)
{
    const kb__cbuild *b = &m->builds[bi];
    char rel[PATH_MAX], abs[PATH_MAX], bdir[PATH_MAX];
    subst(pattern, target, rel, sizeof rel);
    resolve(m, NULL, b->dir, bdir, sizeof bdir);
    resolve(m, bdir, rel, abs, sizeof abs);
    glob_t g;
    if (glob(abs, 0, NULL, &g) != 0) {
        kb__errf(err, err_len,
                 "%s: build %s: candidate '%s' matches no file (%s); build it or "
                 "fix the pattern",
                 m->path, b->name, rel, abs);
        return KB__ENOTFOUND;
    }
    int rc = 0;
    const size_t cut = strlen(bdir) + 1;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
        const char *p = g.gl_pathv[i];
        rc = add_candidate(m, bi, target, strlen(p) > cut ? p + cut : p, p, ac[0], ac[1]);
    }
    globfree(&g);
    return rc;
}

/* A list of non-empty strings: the member `key` of o, else of dflt. */
static const json_t *string_list(const json_t *o, const json_t *dflt, const char *key,
                                 const char *where, const char *path, char *err, size_t err_len)
{
    const json_t *v = json_object_get(o, key);
    if (!v && dflt) v = json_object_get(dflt, key);
    size_t i;
    const json_t *s;
    int ok = json_is_array(v) && json_array_size(v) > 0;
    json_array_foreach(v, i, s) ok = ok && json_is_string(s) && json_string_value(s)[0];
    if (!ok) {
        kb__errf(err, err_len, "%s: %s needs \"%s\", a non-empty list of strings", path, where,
                 key);
        return NULL;
    }
    return v;
}

/* The baseline of a target in a build: "oracle", or a path like a
 * candidate's. */
static int against_for(const kb__manifest *m, const json_t *doc, int bi, const char *target,
                       char *out, size_t len, char *err, size_t err_len)
{
    const json_t *a = json_object_get(doc, "against");
    const char *s = json_is_string(a) ? json_string_value(a) : "oracle";
    if (a && !json_is_string(a)) s = "";
    if (!strcmp(s, "oracle")) return snprintf(out, len, "oracle"), 0;
    if (!s[0] || !strcmp(s, "best")) {
        kb__errf(err, err_len,
                 "%s: \"against\" is \"oracle\" or a FILE.so (\"best\" is one "
                 "machine's state, not a campaign's)",
                 m->path);
        return KB__ESPEC;
    }
    char rel[PATH_MAX], bdir[PATH_MAX];
    subst(s, target, rel, sizeof rel);
    resolve(m, NULL, m->builds[bi].dir, bdir, sizeof bdir);
    resolve(m, bdir, rel, out, len);
    if (access(out, R_OK) == 0) return 0;
    kb__errf(err, err_len, "%s: \"against\" %s: %s; build it or fix the path", m->path, out,
             strerror(errno));
    return KB__ENOTFOUND;
}

static int read_build(kb__manifest *m, const json_t *b, int bi, char *err, size_t err_len)
{
    char where[48];
    snprintf(where, sizeof where, "builds[%d]", bi);
    kb__cbuild *cb = &m->builds[bi];
    if (!json_is_object(b)) {
        kb__errf(err, err_len, "%s: %s must be an object", m->path, where);
        return KB__ESPEC;
    }
    int rc = known_keys(b, BUILD_KEYS, sizeof BUILD_KEYS / sizeof *BUILD_KEYS, where, m->path, err,
                        err_len);
    if (!rc) rc = get_string(b, "name", cb->name, sizeof cb->name, m->path, err, err_len);
    if (!rc) rc = get_string(b, "dir", cb->dir, sizeof cb->dir, m->path, err, err_len);
    if (!rc)
        rc = get_string(b, "constraint", cb->constraint, sizeof cb->constraint, m->path, err,
                        err_len);
    if (!rc)
        rc = get_string(b, "partition", cb->partition, sizeof cb->partition, m->path, err, err_len);
    if (rc) return rc;
    if (!cb->dir[0]) snprintf(cb->dir, sizeof cb->dir, ".");
    if (!cb->name[0]) {
        const size_t n = strlen(cb->dir) < sizeof cb->name ? strlen(cb->dir) : sizeof cb->name - 1;
        memmove(cb->name, cb->dir, n);
        cb->name[n] = 0;
    }
    for (int i = 0; i < bi; i++)
        if (!strcmp(m->builds[i].name, cb->name)) {
            kb__errf(err, err_len, "%s: two builds are named '%s'; give each its own \"name\"",
                     m->path, cb->name);
            return KB__ESPEC;
        }
    return 0;
}

/* Every trial of build bi: targets x candidate patterns x repeats. */
static int expand_build(kb__manifest *m, const json_t *doc, const json_t *b, int bi, char *err,
                        size_t err_len)
{
    char where[48];
    snprintf(where, sizeof where, "builds[%d]", bi);
    const json_t *targets =
        string_list(doc, NULL, "targets", "the manifest", m->path, err, err_len);
    const json_t *cands = string_list(b, doc, "candidates", where, m->path, err, err_len);
    if (!targets || !cands) return KB__ESPEC;
    size_t i, j;
    const json_t *t, *c;
    json_array_foreach(targets, i, t)
    {
        const char *target = json_string_value(t);
        char against[PATH_MAX], cases[512];
        const char *const ac[2] = {against, cases};
        int rc = against_for(m, doc, bi, target, against, sizeof against, err, err_len);
        if (!rc) rc = cases_for(m, doc, target, cases, sizeof cases, err, err_len);
        json_array_foreach(cands, j, c)
        {
            if (!rc) rc = expand_pattern(m, bi, target, json_string_value(c), ac, err, err_len);
        }
        if (rc) return rc;
    }
    return 0;
}

static int expand(kb__manifest *m, const json_t *doc, char *err, size_t err_len)
{
    int rc = known_keys(doc, TOP_KEYS, sizeof TOP_KEYS / sizeof *TOP_KEYS, "the manifest", m->path,
                        err, err_len);
    if (!rc) rc = top_scalars(doc, m, err, err_len);
    if (rc) return rc;
    const json_t *builds = json_object_get(doc, "builds");
    static const char *const one = "{\"name\": \"default\", \"dir\": \".\"}";
    json_t *dflt = builds ? NULL : json_loads(one, 0, NULL);
    if (!builds) builds = json_pack("[o]", dflt);
    if (!json_is_array(builds) || !json_array_size(builds) ||
        json_array_size(builds) > KB__CAMPAIGN_BUILDS_MAX) {
        kb__errf(err, err_len, "%s: \"builds\" must be a list of 1 to %d build objects", m->path,
                 KB__CAMPAIGN_BUILDS_MAX);
        rc = KB__ESPEC;
    }
    for (size_t i = 0; !rc && i < json_array_size(builds); i++) {
        m->n_builds = (int)i + 1;
        rc = read_build(m, json_array_get(builds, i), (int)i, err, err_len);
        if (!rc) rc = expand_build(m, doc, json_array_get(builds, i), (int)i, err, err_len);
    }
    if (!json_object_get(doc, "builds")) json_decref((json_t *)builds);
    return rc;
}

int kb__manifest_load(const char *path, kb__manifest *m, char *err, size_t err_len)
{
    memset(m, 0, sizeof *m);
    json_error_t je;
    if (!realpath(path, m->path)) {
        kb__errf(err, err_len, "%s: %s; give the campaign's manifest", path, strerror(errno));
        return KB__ENOTFOUND;
    }
    snprintf(m->dir, sizeof m->dir, "%s", m->path);
    *strrchr(m->dir, '/') = 0;
    if (!m->dir[0]) snprintf(m->dir, sizeof m->dir, "/");
    json_t *doc = json_load_file(m->path, JSON_REJECT_DUPLICATES, &je);
    if (!doc || !json_is_object(doc)) {
        kb__errf(err, err_len, "%s:%d: %s", path, je.line,
                 doc ? "the manifest must be a JSON object" : je.text);
        json_decref(doc);
        return KB__ESPEC;
    }
    int rc = expand(m, doc, err, err_len);
    json_decref(doc);
    if (rc) kb__manifest_free(m);
    return rc;
}

void kb__manifest_free(kb__manifest *m)
{
    free(m->trials);
    m->trials = NULL;
    m->n_trials = 0;
}

int kb__shard_has(size_t k, unsigned i, unsigned n)
{
    return n == 0 || k % n == i;
}

static int parse_uint(const char *s, size_t len, unsigned *v)
{
    char buf[24], *end;
    if (!len || len >= sizeof buf || s[0] == '-' || s[0] == '+') return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    errno = 0;
    const unsigned long x = strtoul(buf, &end, 10);
    if (*end || errno || x > 1000000) return -1;
    *v = (unsigned)x;
    return 0;
}

int kb__shard_parse(const char *s, unsigned *i, unsigned *n, char *err, size_t err_len)
{
    const char *slash = strchr(s, '/');
    const char *idx = s;
    size_t ilen = slash ? (size_t)(slash - s) : 0;
    if (slash && !strncmp(s, "auto/", 5)) {
        idx = getenv("SLURM_ARRAY_TASK_ID");
        if (!idx || !*idx) idx = getenv("JOB_COMPLETION_INDEX");
        ilen = idx ? strlen(idx) : 0;
        if (!idx || !*idx) {
            kb__errf(err, err_len,
                     "--shard auto/N: neither $SLURM_ARRAY_TASK_ID nor "
                     "$JOB_COMPLETION_INDEX is set; give the index, e.g. --shard 0/%s",
                     slash + 1);
            return -1;
        }
    }
    if (!slash || parse_uint(idx, ilen, i) || parse_uint(slash + 1, strlen(slash + 1), n) ||
        *n == 0 || *i >= *n) {
        kb__errf(err, err_len,
                 "--shard '%s': expected I/N with 0 <= I < N (or auto/N), e.g. "
                 "--shard 0/4",
                 s);
        return -1;
    }
    return 0;
}
