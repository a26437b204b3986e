/*
 * spec.c -- validates an oracle's target spec before anything relies on it.
 *
 * Everything downstream (arena layout, output poisoning, the result table)
 * indexes by these counts and multiplies these lengths, so the spec is
 * checked once, here, and the rest of the host may trust it.
 */
#include <math.h>
#include <string.h>

#include "kb.h"

/* The v1.0 kb_target ends with generate, the v1.1 one with shape, the
 * v1.2 one with check. */
#define KB__TARGET_V1_0_SIZE (offsetof(kb_target, generate) + sizeof(void (*)(void)))
#define KB__TARGET_V1_1_SIZE (offsetof(kb_target, shape) + sizeof(void (*)(void)))
#define KB__TARGET_V1_2_SIZE (offsetof(kb_target, check) + sizeof(void (*)(void)))
#define KB__MAX_DISTS        16
/* One buffer may not exceed 1 TiB; keeps length * dtype size far from
 * overflow in every later sum. */
#define KB__MAX_BUFFER_BYTES (UINT64_C(1) << 40)
/* Cases and their names must fit a kb__result. */
#define KB__SPEC_MAX_CASES ((size_t)KB__RESULT_MAX_CASES)
#define KB__CASE_NAME_MAX  ((size_t)KB__CASE_NAME_LEN)
#define KB__NAME_MAX       32 /* parameter and buffer names (the worker protocol's bound) */
#define KB__TEXT_MAX       256

#define SPEC_FAIL(code, ...)                 \
    do {                                     \
        kb__errf(err, err_len, __VA_ARGS__); \
        return code;                         \
    } while (0)

size_t kb__dtype_size(uint32_t dtype)
{
    switch (dtype) {
    case KB_DT_U8: return 1;
    case KB_DT_U16: return 2;
    case KB_DT_U32:
    case KB_DT_I32:
    case KB_DT_F32: return 4;
    case KB_DT_U64:
    case KB_DT_I64:
    case KB_DT_F64: return 8;
    default: return 0;
    }
}

const char *kb__dtype_name(uint32_t dtype)
{
    static const char *const names[] = {"?", "u8", "u16", "u32", "u64", "i32", "i64", "f32", "f64"};
    return dtype < sizeof names / sizeof names[0] ? names[dtype] : "?";
}

static const char *role_name(uint32_t role)
{
    return role == KB_ROLE_STATIC ? "static input"
           : role == KB_ROLE_CALL ? "per-call input"
                                  : "output";
}

static const char *shown(const char *s)
{
    return s ? s : "(null)";
}

/* 1..max-1 characters from [a-z0-9], [A-Z] when `upper`, and `punct`. */
static int is_name(const char *s, size_t max, const char *punct, int upper)
{
    size_t n = s ? strnlen(s, max) : 0;
    if (n == 0 || n == max) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
              strchr(punct, c)))
            return 0;
    }
    return 1;
}

/* One line of 1..max-1 bytes: no control characters (they would break the
 * one-line reports and the tab-separated ledger). */
static int is_text(const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;
    if (n == 0 || n == max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

static int check_header(const kb_target *t, const char *path, char *err, size_t err_len)
{
    if (!t)
        SPEC_FAIL(KB__EABI, "%s: kb_target_entry_v1 returned NULL; return a static kb_target",
                  path);
    if (t->magic != KB_ABI_MAGIC)
        SPEC_FAIL(KB__EABI,
                  "%s: bad magic 0x%08x in kb_target_entry_v1's spec (expected 0x%08x); not a "
                  "kbench oracle or a corrupt build",
                  path, t->magic, KB_ABI_MAGIC);
    if (t->abi_major != KB_ABI_MAJOR)
        SPEC_FAIL(KB__EABI,
                  "%s: target spec built for kbench ABI %u.%u, this host speaks %d.x; rebuild "
                  "against abi/kbench.h",
                  path, t->abi_major, t->abi_minor, KB_ABI_MAJOR);
    if (t->struct_size < KB__TARGET_V1_0_SIZE)
        SPEC_FAIL(KB__EABI,
                  "%s: kb_target struct too small: %u bytes, ABI 1.0 needs %zu; rebuild against "
                  "abi/kbench.h",
                  path, t->struct_size, (size_t)KB__TARGET_V1_0_SIZE);
    uint32_t known = KB_TARGET_MULTITHREADED | KB_TARGET_FPENV_FREE | KB_TARGET_COLD_INPUTS;
    if (t->flags & ~known)
        SPEC_FAIL(KB__ESPEC, "%s: unknown target flags 0x%x", path, t->flags & ~known);
    if (!is_name(t->name, 64, "-", 0))
        SPEC_FAIL(KB__ESPEC,
                  "%s: target name \"%s\" must be 1-63 lowercase letters, digits and '-'", path,
                  shown(t->name));
    if (!is_text(t->description, KB__TEXT_MAX))
        SPEC_FAIL(KB__ESPEC, "%s: description must be one line of 1-%d printable characters", path,
                  KB__TEXT_MAX - 1);
    if (t->upstream && t->upstream[0] && !is_text(t->upstream, KB__TEXT_MAX))
        SPEC_FAIL(KB__ESPEC, "%s: upstream must be one line of 1-%d printable characters", path,
                  KB__TEXT_MAX - 1);
    if (!isfinite(t->rel_tol) || t->rel_tol < 0 || t->rel_tol >= 1)
        SPEC_FAIL(KB__ESPEC, "%s: rel_tol %g must be finite, >= 0 and < 1", path, t->rel_tol);
    if (!t->generate)
        SPEC_FAIL(KB__ESPEC, "%s: generate is NULL; an oracle must generate its inputs", path);
    return 0;
}

static int check_params(const kb_target *t, const char *path, char *err, size_t err_len)
{
    if (t->n_params > KB_MAX_PARAMS)
        SPEC_FAIL(KB__ESPEC, "%s: n_params %u is over KB_MAX_PARAMS (%d)", path, t->n_params,
                  KB_MAX_PARAMS);
    if (t->n_params && !t->param_names)
        SPEC_FAIL(KB__ESPEC, "%s: n_params is %u but param_names is NULL", path, t->n_params);
    for (uint32_t p = 0; p < t->n_params; p++) {
        if (!is_name(t->param_names[p], KB__NAME_MAX, "_", 1))
            SPEC_FAIL(KB__ESPEC,
                      "%s: parameter %u: name \"%s\" must be 1-%d letters, digits or '_'", path, p,
                      shown(t->param_names[p]), KB__NAME_MAX - 1);
        for (uint32_t q = 0; q < p; q++)
            if (strcmp(t->param_names[p], t->param_names[q]) == 0)
                SPEC_FAIL(KB__ESPEC, "%s: parameter name \"%s\" is used twice", path,
                          t->param_names[p]);
    }
    return 0;
}

static int check_buffers(const kb_target *t, const char *path, char *err, size_t err_len)
{
    if (t->n_buffers < 1 || t->n_buffers > KB_MAX_BUFFERS || !t->buffers)
        SPEC_FAIL(KB__ESPEC, "%s: n_buffers %u must be 1..%d with buffers set", path, t->n_buffers,
                  KB_MAX_BUFFERS);
    uint32_t n_role[4] = {0, 0, 0, 0};
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec *s = &t->buffers[b];
        if (!is_name(s->name, KB__NAME_MAX, "_", 1))
            SPEC_FAIL(KB__ESPEC, "%s: buffer %u: name \"%s\" must be 1-%d letters, digits or '_'",
                      path, b, shown(s->name), KB__NAME_MAX - 1);
        for (uint32_t c = 0; c < b; c++)
            if (strcmp(s->name, t->buffers[c].name) == 0)
                SPEC_FAIL(KB__ESPEC, "%s: buffer name '%s' is used twice", path, s->name);
        if (!kb__dtype_size(s->dtype))
            SPEC_FAIL(KB__ESPEC, "%s: buffer '%s': unknown dtype %u", path, s->name, s->dtype);
        if (s->role < KB_ROLE_STATIC || s->role > KB_ROLE_OUTPUT)
            SPEC_FAIL(KB__ESPEC, "%s: buffer '%s': unknown role %u", path, s->name, s->role);
        if (b > 0 && s->role < t->buffers[b - 1].role)
            SPEC_FAIL(KB__ESPEC,
                      "%s: buffer '%s' (%s) is listed after '%s' (%s); list static inputs, "
                      "then per-call inputs, then outputs",
                      path, s->name, role_name(s->role), t->buffers[b - 1].name,
                      role_name(t->buffers[b - 1].role));
        if (s->flags & ~KB_BUF_VARIABLE)
            SPEC_FAIL(KB__ESPEC, "%s: buffer '%s': unknown flags 0x%x", path, s->name, s->flags);
        if ((s->flags & KB_BUF_VARIABLE) && s->role != KB_ROLE_OUTPUT)
            SPEC_FAIL(KB__ESPEC, "%s: buffer '%s': KB_BUF_VARIABLE is only for outputs", path,
                      s->name);
        n_role[s->role]++;
    }
    if (!n_role[KB_ROLE_CALL])
        SPEC_FAIL(KB__ESPEC,
                  "%s: no per-call input (KB_ROLE_CALL); each run must read inputs it cannot "
                  "predict",
                  path);
    if (!n_role[KB_ROLE_OUTPUT])
        SPEC_FAIL(KB__ESPEC, "%s: no output buffer (KB_ROLE_OUTPUT)", path);
    return 0;
}

int kb__spec_case_check(const kb_target *t, const kb_case_spec *c, const char *path, char *err,
                        size_t err_len)
{
    if (c->flags & ~KB_CASE_QUICK)
        SPEC_FAIL(KB__ESPEC, "%s: case '%s': unknown flags 0x%x", path, c->name, c->flags);
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec *s = &t->buffers[b];
        uint64_t len = c->lengths[b];
        if (len == 0)
            SPEC_FAIL(KB__ESPEC, "%s: case '%s': buffer '%s' has length 0", path, c->name, s->name);
        if (len > KB__MAX_BUFFER_BYTES / kb__dtype_size(s->dtype))
            SPEC_FAIL(KB__ESPEC,
                      "%s: case '%s': buffer '%s' has %llu elements of %zu bytes, over the "
                      "2^40-byte limit",
                      path, c->name, s->name, (unsigned long long)len, kb__dtype_size(s->dtype));
    }
    if (!isfinite(c->bytes_per_call) || c->bytes_per_call < 0 || !isfinite(c->flops_per_call) ||
        c->flops_per_call < 0)
        SPEC_FAIL(KB__ESPEC,
                  "%s: case '%s': bytes_per_call and flops_per_call must be finite and >= 0", path,
                  c->name);
    return 0;
}

static int check_cases(const kb_target *t, const char *path, char *err, size_t err_len)
{
    if (t->n_cases < 1 || t->n_cases > KB__SPEC_MAX_CASES || !t->cases)
        SPEC_FAIL(KB__ESPEC, "%s: n_cases %u must be 1..%zu with cases set", path, t->n_cases,
                  (size_t)KB__SPEC_MAX_CASES);
    for (uint32_t i = 0; i < t->n_cases; i++) {
        const kb_case_spec *c = &t->cases[i];
        if (!is_text(c->name, KB__CASE_NAME_MAX))
            SPEC_FAIL(KB__ESPEC, "%s: case %u: name must be one line of 1-%zu characters", path, i,
                      KB__CASE_NAME_MAX - 1);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(c->name, t->cases[j].name) == 0)
                SPEC_FAIL(KB__ESPEC, "%s: case %u: name '%s' is already case %u's", path, i,
                          c->name, j);
        int rc = kb__spec_case_check(t, c, path, err, err_len);
        if (rc) return rc;
    }
    return 0;
}

const kb_param_range *kb__spec_ranges(const kb_target *t)
{
    return t->struct_size >= KB__TARGET_V1_1_SIZE ? t->param_ranges : NULL;
}

kb__check_fn kb__spec_outcheck(const kb_target *t)
{
    return t->struct_size >= KB__TARGET_V1_2_SIZE ? t->check : NULL;
}

static int check_range(const kb_target *t, uint32_t p, const char *path, char *err, size_t err_len)
{
    const kb_param_range *r = &t->param_ranges[p];
    if (r->min > r->max || r->multiple_of < 0 || (r->flags & ~(KB_PARAM_POW2 | KB_PARAM_DEFAULT)))
        SPEC_FAIL(KB__ESPEC,
                  "%s: range of parameter %s: need min <= max, multiple_of >= 0 and known flags "
                  "(got [%lld, %lld], multiple of %lld, flags 0x%x)",
                  path, t->param_names[p], (long long)r->min, (long long)r->max,
                  (long long)r->multiple_of, r->flags);
    return 0;
}

/* The ABI 1.1 members, when present and set: what `--case` trusts. */
static int check_shapes(const kb_target *t, const char *path, char *err, size_t err_len)
{
    if (!kb__spec_ranges(t)) return 0;
    for (uint32_t p = 0; p < t->n_params; p++) {
        int rc = check_range(t, p, path, err, err_len);
        if (rc) return rc;
    }
    if (!t->shape)
        SPEC_FAIL(KB__ESPEC, "%s: param_ranges is set but shape is NULL; set both or neither",
                  path);
    if (t->max_case_bytes == 0)
        SPEC_FAIL(KB__ESPEC, "%s: param_ranges is set but max_case_bytes is 0", path);
    if (t->n_distributions < 1 || t->n_distributions > KB__MAX_DISTS || !t->distributions)
        SPEC_FAIL(KB__ESPEC, "%s: n_distributions %u must be 1..%d with distributions set", path,
                  t->n_distributions, KB__MAX_DISTS);
    for (uint32_t d = 0; d < t->n_distributions; d++) {
        if (!is_name(t->distributions[d], KB__NAME_MAX, "_-", 0))
            SPEC_FAIL(KB__ESPEC, "%s: distribution %u: name \"%s\" must be 1-%d of [a-z0-9_-]",
                      path, d, shown(t->distributions[d]), KB__NAME_MAX - 1);
        for (uint32_t e = 0; e < d; e++)
            if (strcmp(t->distributions[d], t->distributions[e]) == 0)
                SPEC_FAIL(KB__ESPEC, "%s: distribution \"%s\" is listed twice", path,
                          t->distributions[d]);
    }
    return 0;
}

int kb__spec_check(const kb_target *t, const char *path, char *err, size_t err_len)
{
    int rc = check_header(t, path, err, err_len);
    if (!rc) rc = check_params(t, path, err, err_len);
    if (!rc) rc = check_buffers(t, path, err, err_len);
    if (!rc) rc = check_cases(t, path, err, err_len);
    if (!rc) rc = check_shapes(t, path, err, err_len);
    return rc;
}
