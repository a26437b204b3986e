/*
 * shape.c -- a case named by its shape: "n=100000,d=128,m=16/uniform".
 *
 * The user's words reach the oracle's shape() and generate() only through
 * here, so every parameter is checked against the range the oracle
 * declares (ABI 1.1) and one input set against its byte cap before any
 * memory is sized from them. Each refusal names what is allowed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"

#define SHAPE_FAIL(...)                      \
    do {                                     \
        kb__errf(err, err_len, __VA_ARGS__); \
        return KB__EUSAGE;                   \
    } while (0)

int kb__shape_is_spec(const char *sel)
{
    return sel && strchr(sel, '=') != NULL;
}

/* "a, b, c" from a list of names, for the messages. */
static void join(const char *const *names, uint32_t n, char *out, size_t len)
{
    size_t at = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < n && at < len; i++) {
        int w = snprintf(out + at, len - at, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        at += (size_t)w;
    }
}

static int find(const char *const *names, uint32_t n, const char *s, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && !strncmp(names[i], s, len)) return (int)i;
    return -1;
}

static int in_range(const kb_param_range *r, int64_t v)
{
    if (v < r->min || v > r->max) return 0;
    if (r->multiple_of > 1 && v % r->multiple_of != 0) return 0;
    if ((r->flags & KB_PARAM_POW2) && (v <= 0 || (v & (v - 1)) != 0)) return 0;
    return 1;
}

static int range_fail(const kb_target *t, uint32_t p, int64_t v, char *err, size_t err_len)
{
    const kb_param_range *r = &kb__spec_ranges(t)[p];
    const int pow2 = (r->flags & KB_PARAM_POW2) != 0;
    char rule[64] = "";
    if (r->multiple_of > 1)
        snprintf(rule, sizeof rule, "%sa multiple of %lld ", pow2 ? "a power of two and " : "",
                 (long long)r->multiple_of);
    else if (pow2)
        snprintf(rule, sizeof rule, "a power of two ");
    SHAPE_FAIL("%s=%lld out of range for %s: %s must be %sin [%lld, %lld]", t->param_names[p],
               (long long)v, t->name, t->param_names[p], rule, (long long)r->min,
               (long long)r->max);
}

/* One "name=value" of the spec into params; seen[] catches repeats. */
static int parse_param(const kb_target *t, const char *tok, size_t len, int64_t *params, int *seen,
                       char *err, size_t err_len)
{
    const char *eq = memchr(tok, '=', len);
    char names[256];
    join(t->param_names, t->n_params, names, sizeof names);
    int p = eq ? find(t->param_names, t->n_params, tok, (size_t)(eq - tok)) : -1;
    if (p < 0)
        SHAPE_FAIL("unknown parameter '%.*s' for %s; its parameters: %s",
                   (int)(eq ? (size_t)(eq - tok) : len), tok, t->name, names);
    if (seen[p]) SHAPE_FAIL("parameter %s is given twice", t->param_names[p]);
    char val[32];
    const size_t vlen = len - (size_t)(eq + 1 - tok);
    snprintf(val, sizeof val, "%.*s", (int)(vlen < sizeof val ? vlen : sizeof val - 1), eq + 1);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (vlen == 0 || vlen >= sizeof val || *end || errno)
        SHAPE_FAIL("%s=%.*s is not an integer", t->param_names[p], (int)vlen, eq + 1);
    /* KB_PARAM_UNSET means "left out" to shape(): never a value given. */
    if (v == KB_PARAM_UNSET || !in_range(&kb__spec_ranges(t)[p], v))
        return range_fail(t, (uint32_t)p, v, err, err_len);
    params[p] = v;
    seen[p] = 1;
    return 0;
}

static int parse_params(const kb_target *t, const char *s, size_t len, int64_t *params, char *err,
                        size_t err_len)
{
    int seen[KB_MAX_PARAMS] = {0};
    for (size_t at = 0; at < len;) {
        const char *c = memchr(s + at, ',', len - at);
        const size_t tl = c ? (size_t)(c - (s + at)) : len - at;
        int rc = parse_param(t, s + at, tl, params, seen, err, err_len);
        if (rc) return rc;
        at += tl + 1;
    }
    char names[256];
    join(t->param_names, t->n_params, names, sizeof names);
    for (uint32_t p = 0; p < t->n_params; p++) {
        if (seen[p]) continue;
        if (!(kb__spec_ranges(t)[p].flags & KB_PARAM_DEFAULT))
            SHAPE_FAIL("missing parameter %s for %s; give each of %s, then '/' and a distribution",
                       t->param_names[p], t->name, names);
        params[p] = KB_PARAM_UNSET;
    }
    return 0;
}

static void canonical_name(const kb_target *t, const int64_t *params, const char *dist, char *out,
                           size_t len)
{
    size_t at = 0;
    for (uint32_t p = 0; p < t->n_params && at < len; p++) {
        if (params[p] == KB_PARAM_UNSET) continue; /* left to shape(): not named */
        int w = snprintf(out + at, len - at, "%s%s=%lld", at ? "," : "", t->param_names[p],
                         (long long)params[p]);
        if (w < 0) break;
        at += (size_t)w;
    }
    if (at < len) snprintf(out + at, len - at, "/%s", dist);
}

uint64_t kb__shape_bytes(const kb_target *t, const kb_case_spec *cs)
{
    uint64_t sum = 0;
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const uint64_t size = kb__dtype_size(t->buffers[b].dtype), len = cs->lengths[b];
        if (len > (UINT64_MAX - sum) / size) return UINT64_MAX;
        sum += len * size;
    }
    return sum;
}

/* "32.0 MiB", or "1300 bytes" under a mebibyte. */
static void size_text(uint64_t bytes, char *out, size_t len)
{
    if (bytes >= (1u << 20))
        snprintf(out, len, "%.1f MiB", (double)bytes / (1 << 20));
    else
        snprintf(out, len, "%llu bytes", (unsigned long long)bytes);
}

static int fixed_only(const kb_target *t, char *err, size_t err_len)
{
    char list[768];
    size_t at = 0;
    list[0] = 0;
    for (uint32_t i = 0; i < t->n_cases && at < sizeof list; i++) {
        int w = snprintf(list + at, sizeof list - at, "%s'%s'", i ? " " : "", t->cases[i].name);
        if (w < 0) break;
        at += (size_t)w;
    }
    SHAPE_FAIL("target %s's oracle lists fixed cases only (ABI %u.%u); choose one of: %s", t->name,
               t->abi_major, t->abi_minor, list);
}

static int finish(const kb_target *t, kb__shape *out, char *err, size_t err_len)
{
    char why[256] = "";
    if (t->shape(&out->cs, why, sizeof why) != 0) {
        why[sizeof why - 1] = 0;
        SHAPE_FAIL("%s refuses case %s: %s", t->name, out->name, why[0] ? why : "no reason given");
    }
    for (uint32_t p = 0; p < t->n_params; p++)
        if (!in_range(&kb__spec_ranges(t)[p], out->cs.params[p])) {
            kb__errf(err, err_len,
                     "%s's shape() set %s=%lld for case %s, outside its own range; the oracle is "
                     "at fault",
                     t->name, t->param_names[p], (long long)out->cs.params[p], out->name);
            return KB__ESPEC;
        }
    const uint64_t bytes = kb__shape_bytes(t, &out->cs), cap = t->max_case_bytes;
    if (bytes > cap) {
        char need[32], most[32];
        size_text(bytes, need, sizeof need);
        size_text(cap, most, sizeof most);
        SHAPE_FAIL("case %s needs %s per input set, over %s's cap of %s per set (the host holds "
                   "every set of a trial in memory); choose a smaller shape",
                   out->name, need, t->name, most);
    }
    /* The oracle's own lengths, checked as a listed case's are. */
    return kb__spec_case_check(t, &out->cs, t->name, err, err_len);
}

int kb__shape_parse(const kb_target *t, const char *spec, kb__shape *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!kb__spec_ranges(t)) return fixed_only(t, err, err_len);
    const char *slash = strrchr(spec, '/');
    char dists[256];
    join(t->distributions, t->n_distributions, dists, sizeof dists);
    if (!slash || !slash[1])
        SHAPE_FAIL("case '%s' has no distribution; end it with '/' and one of: %s", spec, dists);
    int d = find(t->distributions, t->n_distributions, slash + 1, strlen(slash + 1));
    if (d < 0)
        SHAPE_FAIL("unknown distribution '%s' for %s; its distributions: %s", slash + 1, t->name,
                   dists);
    int rc = parse_params(t, spec, (size_t)(slash - spec), out->cs.params, err, err_len);
    if (rc) return rc;
    canonical_name(t, out->cs.params, t->distributions[d], out->name, sizeof out->name);
    if (strlen(out->name) + 1 >= sizeof out->name)
        SHAPE_FAIL("case '%s' makes a name over %zu characters", spec, sizeof out->name - 1);
    out->cs.name = out->name;
    return finish(t, out, err, err_len);
}

void kb__shape_describe(const kb_target *t, char *out, size_t len)
{
    const kb_param_range *r = kb__spec_ranges(t);
    size_t at = 0;
    out[0] = 0;
    if (!r) {
        if (t->struct_size < offsetof(kb_target, shape) + sizeof t->shape)
            snprintf(out, len, "no, listed cases only (its oracle is ABI %u.%u)", t->abi_major,
                     t->abi_minor);
        else
            snprintf(out, len, "no, listed cases only (its oracle declares no ranges)");
        return;
    }
    for (uint32_t p = 0; p < t->n_params && at < len; p++) {
        char rule[64] = "";
        if (r[p].multiple_of > 1)
            snprintf(rule, sizeof rule, " multiple of %lld", (long long)r[p].multiple_of);
        int w = snprintf(out + at, len - at, "%s%s in [%lld, %lld]%s%s%s", p ? ", " : "",
                         t->param_names[p], (long long)r[p].min, (long long)r[p].max,
                         (r[p].flags & KB_PARAM_POW2) ? " power of two" : "", rule,
                         (r[p].flags & KB_PARAM_DEFAULT) ? " (optional)" : "");
        if (w < 0) return;
        at += (size_t)w;
    }
    char dists[256];
    join(t->distributions, t->n_distributions, dists, sizeof dists);
    if (at < len)
        snprintf(out + at, len - at, "; distributions: %s; at most %.1f MiB per input set", dists,
                 (double)t->max_case_bytes / (1 << 20));
}
