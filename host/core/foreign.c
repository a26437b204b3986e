/*
 * foreign.c -- a function from a library that knows nothing about kbench,
 * described by a signature string and called through libffi.
 *
 *   kbench trial --foreign ./libmine.so:my_intersect \
 *       --sig 'u64 (const u32 *lists, const u64 *offsets, u64 k, u32 *out)' \
 *       --target posting-intersect
 *
 * Binding is by name, against the target's spec (host side, before any of
 * the library's code runs):
 *   - a pointer named like a buffer is that buffer; its element type must be
 *     the buffer's dtype, and an output must not be const;
 *   - an integer scalar named like a case parameter gets the case's value;
 *   - an integer scalar named n<buf>, <buf>_len, len_<buf> or n_<buf> gets
 *     that buffer's element count (an output's capacity);
 *   - `u64 *produced` (or `u64 *n_out`, `u64 *<buf>_produced`; u32 too) is
 *     where the function stores how many elements of a variable-length
 *     output it wrote; without one, an integer return value is that count.
 *     Any other integer return is a status: 0 is success.
 * Every buffer must be bound. The worker side builds one ffi_cif at load and
 * makes one ffi_call per run(), so the per-call cost is marshalling at most
 * KB__FMAX_ARGS values and libffi's trampoline (scripts/ffi-overhead.sh).
 */
#include <dlfcn.h>
#include <ffi.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "foreign.h"

/* ---- the signature ------------------------------------------------------ */

typedef struct kb__fparam {
    char name[64];
    char spelled[48]; /* the type as written, for messages */
    uint8_t type;     /* kb_dtype, or KB__FT_I8/I16 */
    uint8_t is_const; /* of the pointee */
    uint8_t ptr;
} kb__fparam;

/* Types known by one name: kbench's short names and those of <stdint.h>,
 * <stddef.h> and <sys/types.h>, sized as this platform's ABI lays them out.
 * sign: 1 signed, 0 unsigned, -1 floating point. */
static const struct {
    const char *name;
    size_t size;
    int sign;
} NAMED[] = {
    {"u8", 1, 0},
    {"u16", 2, 0},
    {"u32", 4, 0},
    {"u64", 8, 0},
    {"i8", 1, 1},
    {"i16", 2, 1},
    {"i32", 4, 1},
    {"i64", 8, 1},
    {"f32", 4, -1},
    {"f64", 8, -1},
    {"uint8_t", sizeof(uint8_t), 0},
    {"uint16_t", sizeof(uint16_t), 0},
    {"uint32_t", sizeof(uint32_t), 0},
    {"uint64_t", sizeof(uint64_t), 0},
    {"int8_t", sizeof(int8_t), 1},
    {"int16_t", sizeof(int16_t), 1},
    {"int32_t", sizeof(int32_t), 1},
    {"int64_t", sizeof(int64_t), 1},
    {"size_t", sizeof(size_t), 0},
    {"ssize_t", sizeof(ssize_t), 1},
    {"ptrdiff_t", sizeof(ptrdiff_t), 1},
    {"intptr_t", sizeof(intptr_t), 1},
    {"uintptr_t", sizeof(uintptr_t), 0},
};

/* The type an integer of `size` bytes has here; 0 for a size without one. */
static uint8_t int_type(size_t size, int is_signed)
{
    switch (size) {
    case 1: return is_signed ? KB__FT_I8 : KB_DT_U8;
    case 2: return is_signed ? KB__FT_I16 : KB_DT_U16;
    case 4: return is_signed ? KB_DT_I32 : KB_DT_U32;
    case 8: return is_signed ? KB_DT_I64 : KB_DT_U64;
    default: return 0;
    }
}

static uint8_t sized_type(size_t size, int sign)
{
    if (sign >= 0) return int_type(size, sign);
    return size == 4 ? KB_DT_F32 : size == 8 ? KB_DT_F64 : 0;
}

static const char *type_name(uint32_t t)
{
    return t == KB__FT_I8 ? "i8" : t == KB__FT_I16 ? "i16" : kb__dtype_name(t);
}

typedef struct kb__lex {
    const char *p;
    char tok[64]; /* the current token: an identifier, or one of * ( ) , ; "" at the end */
    int bad;      /* a character the grammar has no use for, or a name too long */
} kb__lex;

static int is_id(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static void next(kb__lex *L)
{
    while (*L->p == ' ' || *L->p == '\t' || *L->p == '\n') L->p++;
    L->tok[0] = 0;
    if (!*L->p) return;
    if (strchr("*(),", *L->p)) {
        L->tok[0] = *L->p++;
        L->tok[1] = 0;
        return;
    }
    size_t n = 0;
    while (is_id(*L->p, n == 0)) {
        if (n + 1 >= sizeof L->tok)
            L->bad = 1;
        else
            L->tok[n++] = *L->p;
        L->p++;
    }
    if (n == 0) { /* not an identifier, not punctuation: show it */
        L->bad = 1;
        L->tok[n++] = *L->p++;
    }
    L->tok[n] = 0;
}

static int named(const char *tok)
{
    for (size_t i = 0; i < sizeof NAMED / sizeof NAMED[0]; i++)
        if (!strcmp(tok, NAMED[i].name)) return (int)i;
    return -1;
}

/* C's keywords that make up a type, as counted in one declaration. */
enum { KW_SIGNED, KW_UNSIGNED, KW_CHAR, KW_SHORT, KW_INT, KW_LONG, KW_FLOAT, KW_DOUBLE, KW_N };
static const char *const KEYWORDS[KW_N] = {"signed", "unsigned", "char",  "short",
                                           "int",    "long",     "float", "double"};

static int keyword(const char *tok)
{
    for (int k = 0; k < KW_N; k++)
        if (!strcmp(tok, KEYWORDS[k])) return k;
    return -1;
}

/* The type the keywords counted in kw name, as C reads them in any order
 * (`unsigned long long`, `long unsigned int`, `signed char`); 0 when they
 * name none (`short long`, `unsigned double`) or one without a kbench type
 * (`long double`). `char` alone is signed where this ABI says so. */
static uint8_t keyword_type(const int *kw)
{
    const int sign = kw[KW_SIGNED] + kw[KW_UNSIGNED];
    const int is_signed = !kw[KW_UNSIGNED];
    const int others = kw[KW_CHAR] + kw[KW_SHORT] + kw[KW_LONG] + kw[KW_FLOAT] + kw[KW_DOUBLE];
    if (sign > 1 || kw[KW_INT] > 1) return 0;
    if (kw[KW_FLOAT] || kw[KW_DOUBLE])
        return others == 1 && !sign && !kw[KW_INT]
                   ? sized_type(kw[KW_FLOAT] ? sizeof(float) : sizeof(double), -1)
                   : 0;
    if (kw[KW_CHAR])
        return others == 1 && !kw[KW_INT] ? int_type(1, sign ? is_signed : CHAR_MIN < 0) : 0;
    if (kw[KW_SHORT]) return others == 1 ? int_type(sizeof(short), is_signed) : 0;
    if (kw[KW_LONG] == 1 && others == 1) return int_type(sizeof(long), is_signed);
    if (kw[KW_LONG] == 2 && others == 2) return int_type(sizeof(long long), is_signed);
    if (others) return 0;
    return sign || kw[KW_INT] ? int_type(sizeof(int), is_signed) : 0;
}

/* A type as C spells it: keywords in any order, or one name of NAMED, with
 * `const` anywhere among them (the pointee's, when a '*' follows). Stops at
 * the first other token; a name of NAMED after another type word is the
 * parameter's name, as in C. 0, or KB__EUSAGE with *words set when words
 * were read that make no type (none read: *words is empty). */
static int c_type(kb__lex *L, uint8_t *type, uint8_t *is_const, char *words, size_t words_len)
{
    int kw[KW_N] = {0}, n_named = 0, n_kw = 0, nm = -1;
    size_t w = 0;
    words[0] = 0;
    *type = 0;
    for (;;) {
        const int k = keyword(L->tok), i = n_kw || n_named ? -1 : named(L->tok);
        if (!strcmp(L->tok, "const"))
            *is_const = 1;
        else if (k >= 0)
            kw[k]++, n_kw++;
        else if (i >= 0)
            nm = i, n_named++;
        else
            break;
        if (strcmp(L->tok, "const") && w < words_len)
            w += (size_t)snprintf(words + w, words_len - w, "%s%s", w ? " " : "", L->tok);
        next(L);
    }
    if (!n_kw && !n_named) return 0;
    *type = n_named ? sized_type(NAMED[nm].size, NAMED[nm].sign) : keyword_type(kw);
    return *type ? 0 : KB__EUSAGE;
}

static int is_int(uint32_t dt)
{
    return dt != KB_DT_F32 && dt != KB_DT_F64;
}

#define SYNTAX(...)                          \
    do {                                     \
        kb__errf(err, err_len, __VA_ARGS__); \
        return KB__EUSAGE;                   \
    } while (0)

static const char GRAMMAR[] =
    "write it as RET (TYPE NAME, ...) with RET void or a 32/64-bit integer and TYPE "
    "[const] a C integer or floating type (int, unsigned long, size_t, uint32_t, double, u32, "
    "f64, ...) [*]";

/* RET ( [void | param {, param}] ) */
static int parse(const char *sig, uint8_t *ret, kb__fparam *ps, uint32_t *n, char *err,
                 size_t err_len)
{
    kb__lex L = {.p = sig ? sig : ""};
    char words[48];
    uint8_t rc = 0;
    *n = 0;
    next(&L);
    if (!strcmp(L.tok, "void")) {
        *ret = 0;
        next(&L);
    } else if (c_type(&L, ret, &rc, words, sizeof words) || !*ret || !is_int(*ret) ||
               *ret == KB_DT_U8 || *ret == KB_DT_U16 || *ret == KB__FT_I8 || *ret == KB__FT_I16)
        SYNTAX("--sig: return type '%s' is not void or a 32/64-bit integer; %s",
               words[0] ? words : L.tok, GRAMMAR);
    if (strcmp(L.tok, "("))
        SYNTAX("--sig: expected '(' after the return type, found '%s'; %s", L.tok, GRAMMAR);
    next(&L);
    if (!strcmp(L.tok, "void"))
        next(&L);
    else
        while (strcmp(L.tok, ")")) {
            if (*n == KB__FMAX_ARGS) SYNTAX("--sig: more than %d parameters", KB__FMAX_ARGS);
            kb__fparam *p = &ps[(*n)++];
            memset(p, 0, sizeof *p);
            if (c_type(&L, &p->type, &p->is_const, p->spelled, sizeof p->spelled))
                SYNTAX("--sig: parameter %u: '%s' is not a C type kbench can pass; %s", *n,
                       p->spelled, GRAMMAR);
            if (!p->type) SYNTAX("--sig: parameter %u: unknown type '%s'; %s", *n, L.tok, GRAMMAR);
            if (!strcmp(L.tok, "*")) p->ptr = 1, next(&L);
            if (!strcmp(L.tok, "*"))
                SYNTAX("--sig: parameter %u: pointers to pointers bind nothing", *n);
            if (!strcmp(L.tok, "const")) next(&L); /* `T *const p`: the pointer itself */
            if (!is_id(L.tok[0], 1))
                SYNTAX("--sig: parameter %u has no name; names bind arguments to the target's "
                       "buffers and params",
                       *n);
            snprintf(p->name, sizeof p->name, "%s", L.tok);
            if (p->is_const && !p->ptr) p->is_const = 0; /* a const scalar is just a scalar */
            for (uint32_t j = 0; j + 1 < *n; j++)
                if (!strcmp(ps[j].name, p->name))
                    SYNTAX("--sig: parameter '%s' appears twice", p->name);
            next(&L);
            if (!strcmp(L.tok, ","))
                next(&L);
            else if (strcmp(L.tok, ")"))
                SYNTAX("--sig: expected ',' or ')' after '%s', found '%s'; %s", p->name, L.tok,
                       GRAMMAR);
        }
    if (strcmp(L.tok, ")")) SYNTAX("--sig: expected ')' at the end of the parameters");
    next(&L);
    if (L.bad || L.tok[0]) SYNTAX("--sig: unexpected text near '%s%.20s'; %s", L.tok, L.p, GRAMMAR);
    return 0;
}

/* ---- binding ---------------------------------------------------------- */

static const char *role_word(const kb_buffer_spec *b)
{
    return b->role == KB_ROLE_STATIC ? "static input"
           : b->role == KB_ROLE_CALL ? "input"
           : (b->flags & KB_BUF_VARIABLE)
               ? "output, variable length: count from a u32/u64 return or u64 *produced"
               : "output";
}

/* The binding the target expects, appended to every mismatch message. */
static void expected(const kb_target *t, char *out, size_t len)
{
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(n < len ? out + n : NULL, n < len ? len - n : 0, __VA_ARGS__)
    ADD("expected for target %s: buffers ", t->name);
    int variable = 0;
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec *s = &t->buffers[b];
        ADD("%s%s%s *%s (%s)", b ? ", " : "", s->role == KB_ROLE_OUTPUT ? "" : "const ",
            kb__dtype_name(s->dtype), s->name, role_word(s));
        variable += (s->flags & KB_BUF_VARIABLE) != 0;
    }
    ADD("; integer scalars: params ");
    for (uint32_t p = 0; p < t->n_params; p++) ADD("%s%s", p ? ", " : "", t->param_names[p]);
    ADD(", element counts n<buffer>, <buffer>_len; e.g. '%s (", variable ? "u64" : "void");
    for (uint32_t b = 0, v = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec *s = &t->buffers[b];
        ADD("%s%s%s *%s", b ? ", " : "", s->role == KB_ROLE_OUTPUT ? "" : "const ",
            kb__dtype_name(s->dtype), s->name);
        if ((s->flags & KB_BUF_VARIABLE) && v++) ADD(", u64 *%s_produced", s->name);
    }
    ADD(")'");
#undef ADD
    if (n >= len && len > 4) memcpy(out + len - 4, "...", 4);
}

static int mismatch(const kb_target *t, char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int mismatch(const kb_target *t, char *err, size_t err_len, const char *fmt, ...)
{
    char what[256], exp[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    expected(t, exp, sizeof exp);
    kb__errf(err, err_len, "--sig: %s; %s", what, exp);
    return KB__EABI;
}

static int find_buf(const kb_target *t, const char *name)
{
    for (uint32_t b = 0; b < t->n_buffers; b++)
        if (!strcmp(t->buffers[b].name, name)) return (int)b;
    return -1;
}

/* n<buf>, <buf>_len, len_<buf>, n_<buf> */
static int count_of(const kb_target *t, const char *name)
{
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const char *bn = t->buffers[b].name;
        char forms[4][80];
        snprintf(forms[0], sizeof forms[0], "n%s", bn);
        snprintf(forms[1], sizeof forms[1], "%s_len", bn);
        snprintf(forms[2], sizeof forms[2], "len_%s", bn);
        snprintf(forms[3], sizeof forms[3], "n_%s", bn);
        for (int f = 0; f < 4; f++)
            if (!strcmp(name, forms[f])) return (int)b;
    }
    return -1;
}

/* produced / n_out (the only variable output), <buf>_produced */
static int produced_of(const kb_target *t, const char *name, int *ambiguous)
{
    int only = -1, n = 0;
    *ambiguous = 0;
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        if (!(t->buffers[b].flags & KB_BUF_VARIABLE)) continue;
        char form[80];
        snprintf(form, sizeof form, "%s_produced", t->buffers[b].name);
        if (!strcmp(name, form)) return (int)b;
        only = (int)b;
        n++;
    }
    if (strcmp(name, "produced") && strcmp(name, "n_out")) return -1;
    if (n > 1) *ambiguous = 1;
    return n == 1 ? only : -1;
}

static int param_of(const kb_target *t, const char *name)
{
    for (uint32_t p = 0; p < t->n_params; p++)
        if (!strcmp(t->param_names[p], name)) return (int)p;
    return -1;
}

static int fits(uint32_t dt, int64_t v)
{
    switch (dt) {
    case KB_DT_U8: return v >= 0 && v <= UINT8_MAX;
    case KB_DT_U16: return v >= 0 && v <= UINT16_MAX;
    case KB__FT_I8: return v >= INT8_MIN && v <= INT8_MAX;
    case KB__FT_I16: return v >= INT16_MIN && v <= INT16_MAX;
    case KB_DT_U32: return v >= 0 && v <= (int64_t)UINT32_MAX;
    case KB_DT_I32: return v >= INT32_MIN && v <= INT32_MAX;
    case KB_DT_U64: return v >= 0;
    default: return 1;
    }
}

static int bind_one(const kb_target *t, const kb__fparam *p, kb__farg *a, char *err, size_t err_len)
{
    const char *tn = p->spelled;
    int b, amb;
    if (p->ptr) {
        if ((b = find_buf(t, p->name)) >= 0) {
            const kb_buffer_spec *s = &t->buffers[b];
            if (p->type != s->dtype) {
                char here[32] = "";
                if (strcmp(tn, type_name(p->type)))
                    snprintf(here, sizeof here, " (%s here)", type_name(p->type));
                return mismatch(t, err, err_len, "'%s *%s'%s but %s holds %s", tn, p->name, here,
                                p->name, kb__dtype_name(s->dtype));
            }
            if (p->is_const && s->role == KB_ROLE_OUTPUT)
                return mismatch(t, err, err_len, "'%s' is an output but declared const", p->name);
            *a = (kb__farg){KB__FA_BUF, p->type, (uint8_t)b, 0};
            return 0;
        }
        if ((b = produced_of(t, p->name, &amb)) >= 0) {
            if ((p->type != KB_DT_U64 && p->type != KB_DT_U32) || p->is_const)
                return mismatch(t, err, err_len,
                                "'%s' receives a produced count: declare it 'u64 *%s' (or u32)",
                                p->name, p->name);
            *a = (kb__farg){KB__FA_PRODUCED, p->type, (uint8_t)b, 0};
            return 0;
        }
        if (amb)
            return mismatch(t, err, err_len,
                            "'%s' is ambiguous: several outputs have a variable length; name it "
                            "<output>_produced",
                            p->name);
        if (!strcmp(p->name, "produced") || !strcmp(p->name, "n_out"))
            return mismatch(
                t, err, err_len,
                "'%s': no output of %s has a variable length, there is nothing to count", p->name,
                t->name);
        return mismatch(t, err, err_len, "pointer '%s' names no buffer", p->name);
    }
    int pi = param_of(t, p->name), ci = pi < 0 ? count_of(t, p->name) : -1;
    if (pi < 0 && ci < 0) {
        if (find_buf(t, p->name) >= 0)
            return mismatch(t, err, err_len, "'%s' is a buffer: declare it as a pointer", p->name);
        return mismatch(t, err, err_len, "'%s' names no param, buffer or element count", p->name);
    }
    if (!is_int(p->type))
        return mismatch(t, err, err_len, "'%s %s': params and element counts are integers", tn,
                        p->name);
    *a = pi >= 0 ? (kb__farg){KB__FA_PARAM, p->type, (uint8_t)pi, 0}
                 : (kb__farg){KB__FA_COUNT, p->type, (uint8_t)ci, 0};
    /* Every case's value must fit the declared type, or it would be cut. */
    for (uint32_t c = 0; c < t->n_cases; c++) {
        const kb_case_spec *cs = &t->cases[c];
        const int64_t v = pi >= 0 ? cs->params[pi] : (int64_t)cs->lengths[ci];
        if (!fits(p->type, v) || (pi < 0 && cs->lengths[ci] > INT64_MAX))
            return mismatch(t, err, err_len, "'%s %s' cannot hold %lld (case %s); widen it", tn,
                            p->name, (long long)v, cs->name);
    }
    return 0;
}

int kb__foreign_bind(const kb_target *t, const char *sig, const char *symbol, kb__fplan *plan,
                     char *err, size_t err_len)
{
    memset(plan, 0, sizeof *plan);
    kb__fparam ps[KB__FMAX_ARGS];
    uint8_t ret = 0;
    uint32_t n = 0;
    int rc = parse(sig, &ret, ps, &n, err, err_len);
    if (rc) return rc;
    if (!symbol || !*symbol || strlen(symbol) >= sizeof plan->symbol) {
        kb__errf(err, err_len, "--foreign: the symbol name must be 1 to %zu characters",
                 sizeof plan->symbol - 1);
        return KB__EUSAGE;
    }
    if (strlen(t->name) >= sizeof plan->target) {
        kb__errf(err, err_len, "target name '%s' is too long for --foreign", t->name);
        return KB__EUSAGE;
    }
    uint8_t bound[KB_MAX_BUFFERS] = {0}, counted[KB_MAX_BUFFERS] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = bind_one(t, &ps[i], &plan->args[i], err, err_len)) != 0) return rc;
        const kb__farg *a = &plan->args[i];
        if (a->kind == KB__FA_BUF) bound[a->index] = 1;
        if (a->kind == KB__FA_PRODUCED) {
            if (counted[a->index]++)
                return mismatch(t, err, err_len,
                                "two parameters receive the produced count of '%s'",
                                t->buffers[a->index].name);
        }
    }
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec *s = &t->buffers[b];
        if (s->role == KB_ROLE_STATIC)
            plan->n_statics++;
        else if (s->role == KB_ROLE_CALL)
            plan->n_calls++;
        else
            plan->n_outs++;
        if (!bound[b])
            return mismatch(t, err, err_len, "no parameter binds %s '%s' (%s)",
                            s->role == KB_ROLE_OUTPUT ? "output" : "input", s->name,
                            kb__dtype_name(s->dtype));
        if (!(s->flags & KB_BUF_VARIABLE) || counted[b]) continue;
        if (ret && !plan->ret_counts) {
            plan->ret_counts = 1;
            plan->ret_buf = (uint8_t)b;
            continue;
        }
        return mismatch(t, err, err_len,
                        "nothing reports how many elements of output '%s' were written: return "
                        "the count (u32/u64) or add 'u64 *produced'",
                        s->name);
    }
    plan->active = 1;
    plan->n_args = n;
    plan->ret_type = ret;
    snprintf(plan->symbol, sizeof plan->symbol, "%s", symbol);
    snprintf(plan->target, sizeof plan->target, "%s", t->name);
    return 0;
}

int kb__foreign_split(const char *spec, char *path, size_t path_len, char *symbol,
                      size_t symbol_len, char *err, size_t err_len)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) {
        kb__errf(err, err_len, "--foreign expects LIBRARY.so:SYMBOL, got '%s'", spec);
        return KB__EUSAGE;
    }
    const size_t n = (size_t)(colon - spec);
    if (n >= path_len || strlen(colon + 1) >= symbol_len) {
        kb__errf(err, err_len, "--foreign '%s': path or symbol too long", spec);
        return KB__EUSAGE;
    }
    memcpy(path, spec, n);
    path[n] = 0;
    snprintf(symbol, symbol_len, "%s", colon + 1);
    return 0;
}

/* ---- the worker's side: a kb_plugin around one ffi_call ---------------- */

/* One foreign function per worker process, like one plugin per worker. */
static struct {
    kb__fplan plan;
    void (*fn)(void);
    ffi_cif cif;
    ffi_type *types[KB__FMAX_ARGS];
    char name[64];
    kb_plugin plugin;
} F;

typedef struct kb__fstate {
    int64_t params[KB_MAX_PARAMS];
    kb_buffer statics[KB_MAX_BUFFERS];
} kb__fstate;

typedef union kb__fval {
    uint8_t u8;
    uint16_t u16;
    int8_t i8;
    int16_t i16;
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    int64_t i64;
    void *p;
} kb__fval;

static ffi_type *ffi_of(uint32_t dt)
{
    switch (dt) {
    case KB_DT_U8: return &ffi_type_uint8;
    case KB_DT_U16: return &ffi_type_uint16;
    case KB__FT_I8: return &ffi_type_sint8;
    case KB__FT_I16: return &ffi_type_sint16;
    case KB_DT_U32: return &ffi_type_uint32;
    case KB_DT_U64: return &ffi_type_uint64;
    case KB_DT_I32: return &ffi_type_sint32;
    case KB_DT_I64: return &ffi_type_sint64;
    case KB_DT_F32: return &ffi_type_float;
    case KB_DT_F64: return &ffi_type_double;
    default: return NULL;
    }
}

static int f_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                     uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)host;
    if (n_statics != F.plan.n_statics || n_statics > KB_MAX_BUFFERS ||
        cs->n_params > KB_MAX_PARAMS) {
        snprintf(err, err_len, "foreign: %u static buffers and %u params, the plan has %u",
                 n_statics, cs->n_params, F.plan.n_statics);
        return KB_ERR_INTERNAL;
    }
    for (uint32_t i = 0; i < F.plan.n_args; i++) {
        const kb__farg *a = &F.plan.args[i];
        if (a->kind == KB__FA_PARAM && a->index >= cs->n_params) {
            snprintf(err, err_len, "foreign: param %u bound but the case has %u", a->index,
                     cs->n_params);
            return KB_ERR_INTERNAL;
        }
        /* Binding checked the listed cases; a case named by shape
         * (--case) may hold a value the declared type would cut. */
        if (a->kind == KB__FA_PARAM && !fits(a->type, cs->params[a->index])) {
            snprintf(
                err, err_len,
                "foreign: parameter %s=%lld does not fit the signature's %s; widen it in --sig",
                cs->param_names[a->index], (long long)cs->params[a->index],
                kb__dtype_name(a->type));
            return KB_ERR_UNSUPPORTED;
        }
    }
    kb__fstate *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, err_len, "foreign: out of memory");
        return KB_ERR_NOMEM;
    }
    memcpy(st->params, cs->params, sizeof(int64_t) * cs->n_params);
    memcpy(st->statics, statics, sizeof(kb_buffer) * n_statics);
    *state = st;
    return KB_OK;
}

static void put_int(kb__fval *v, uint32_t dt, int64_t x)
{
    switch (dt) {
    case KB_DT_U8: v->u8 = (uint8_t)x; break;
    case KB_DT_U16: v->u16 = (uint16_t)x; break;
    case KB__FT_I8: v->i8 = (int8_t)x; break;
    case KB__FT_I16: v->i16 = (int16_t)x; break;
    case KB_DT_U32: v->u32 = (uint32_t)x; break;
    case KB_DT_I32: v->i32 = (int32_t)x; break;
    case KB_DT_I64: v->i64 = x; break;
    default: v->u64 = (uint64_t)x; break;
    }
}

static int f_run(void *state, const kb_buffer *in, uint32_t n_in, kb_buffer *out, uint32_t n_out,
                 char *err, size_t err_len)
{
    const kb__fstate *st = state;
    const kb__fplan *p = &F.plan;
    if (n_in != p->n_calls || n_out != p->n_outs) {
        snprintf(err, err_len, "foreign: %u inputs and %u outputs, the plan has %u and %u", n_in,
                 n_out, p->n_calls, p->n_outs);
        return KB_ERR_INTERNAL;
    }
    const uint32_t first_out = (uint32_t)p->n_statics + p->n_calls;
    kb__fval v[KB__FMAX_ARGS];
    uint64_t prod[KB__FMAX_ARGS];
    void *av[KB__FMAX_ARGS];
    for (uint32_t i = 0; i < p->n_args; i++) {
        const kb__farg *a = &p->args[i];
        const uint32_t b = a->index;
        av[i] = &v[i];
        if (a->kind == KB__FA_PARAM) {
            put_int(&v[i], a->type, st->params[b]);
        } else if (a->kind == KB__FA_PRODUCED) {
            prod[i] = 0;
            v[i].p = &prod[i];
        } else {
            const kb_buffer *buf = b < p->n_statics ? &st->statics[b]
                                   : b < first_out  ? &in[b - p->n_statics]
                                                    : &out[b - first_out];
            if (a->kind == KB__FA_BUF)
                v[i].p = buf->data;
            else
                put_int(&v[i], a->type, (int64_t)buf->count);
        }
    }
    ffi_arg rv = 0;
    ffi_call(&F.cif, F.fn, &rv, av);
    for (uint32_t i = 0; i < p->n_args; i++)
        if (p->args[i].kind == KB__FA_PRODUCED) {
            uint32_t p32;
            memcpy(&p32, &prod[i], sizeof p32);
            out[p->args[i].index - first_out].produced =
                p->args[i].type == KB_DT_U32 ? p32 : prod[i];
        }
    if (!p->ret_type) return KB_OK;
    const int is_signed = p->ret_type == KB_DT_I32 || p->ret_type == KB_DT_I64;
    const int64_t s = p->ret_type == KB_DT_I32 ? (int32_t)rv : (int64_t)rv;
    const uint64_t u = p->ret_type == KB_DT_U32 ? (uint32_t)rv : (uint64_t)rv;
    if (p->ret_counts && !(is_signed && s < 0)) {
        out[p->ret_buf - first_out].produced = u;
        return KB_OK;
    }
    if (!p->ret_counts && u == 0) return KB_OK;
    if (is_signed)
        snprintf(err, err_len, "%s returned %lld", p->symbol, (long long)s);
    else
        snprintf(err, err_len, "%s returned %llu", p->symbol, (unsigned long long)u);
    return KB_ERR_INTERNAL;
}

static void f_release(void *state)
{
    free(state);
}

int kb__foreign_open(const char *load_path, const char *shown_path, const kb__fplan *plan,
                     kb__lib *lib, char *err, size_t err_len)
{
    memset(lib, 0, sizeof *lib);
    F.plan = *plan;
    F.plan.symbol[sizeof F.plan.symbol - 1] = 0;
    F.plan.target[sizeof F.plan.target - 1] = 0;
    const kb__fplan *p = &F.plan;
    ffi_type *rtype = !p->ret_type ? &ffi_type_void : ffi_of(p->ret_type);
    int ok = p->n_args <= KB__FMAX_ARGS && rtype &&
             (uint32_t)p->n_statics + p->n_calls + p->n_outs <= KB_MAX_BUFFERS;
    for (uint32_t i = 0; ok && i < p->n_args; i++) {
        const kb__farg *a = &p->args[i];
        const int ptr = a->kind == KB__FA_BUF || a->kind == KB__FA_PRODUCED;
        F.types[i] = ptr ? &ffi_type_pointer : ffi_of(a->type);
        ok = F.types[i] && a->kind >= KB__FA_BUF && a->kind <= KB__FA_PRODUCED &&
             (a->kind == KB__FA_PARAM ? a->index < KB_MAX_PARAMS
                                      : a->index < p->n_statics + p->n_calls + p->n_outs) &&
             (a->kind != KB__FA_PRODUCED || a->index >= p->n_statics + p->n_calls);
    }
    if (!ok || (p->ret_counts && p->ret_buf < p->n_statics + p->n_calls)) {
        kb__errf(err, err_len, "%s: malformed foreign-call plan", shown_path);
        return KB__EUSAGE;
    }
    lib->dl = dlopen(load_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->dl) {
        const char *msg = dlerror();
        msg = msg ? msg : "unknown error";
        const size_t n = strlen(load_path);
        if (!strncmp(msg, load_path, n) && !strncmp(msg + n, ": ", 2)) msg += n + 2;
        kb__errf(err, err_len, "%s: cannot load: %s; check its dependencies with ldd", shown_path,
                 msg);
        return KB__EFORMAT;
    }
    dlerror();
    void *sym = dlsym(lib->dl, p->symbol);
    if (!sym) {
        kb__errf(err, err_len,
                 "%s: does not export '%s'; `nm -D --defined-only %s` lists what it does export",
                 shown_path, p->symbol, shown_path);
        goto fail;
    }
    Dl_info info;
    const ElfW(Sym) *es = NULL;
    if (dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) && es &&
        ELF64_ST_TYPE(es->st_info) == STT_OBJECT) {
        kb__errf(err, err_len, "%s: '%s' is a data object, not a function", shown_path, p->symbol);
        goto fail;
    }
    memcpy(&F.fn, &sym, sizeof F.fn);
    if (ffi_prep_cif(&F.cif, FFI_DEFAULT_ABI, p->n_args, rtype, F.types) != FFI_OK) {
        kb__errf(err, err_len, "%s: libffi cannot describe the call to '%s'", shown_path,
                 p->symbol);
        goto fail;
    }
    /* The descriptor's name holds 63 characters; a longer symbol is cut. */
    const size_t nl = strnlen(p->symbol, sizeof F.name - 1);
    memcpy(F.name, p->symbol, nl);
    F.name[nl] = 0;
    F.plugin = (kb_plugin){
        .magic = KB_ABI_MAGIC,
        .abi_major = KB_ABI_MAJOR,
        .abi_minor = KB_ABI_MINOR,
        .struct_size = sizeof(kb_plugin),
        .target = F.plan.target,
        .name = F.name,
        .version = "foreign",
        .prepare = f_prepare,
        .run = f_run,
        .release = f_release,
    };
    lib->plugin = &F.plugin;
    if (kb__desc_read(lib->plugin, &lib->desc, shown_path, err, err_len) != 0) goto fail;
    return 0;
fail:
    dlclose(lib->dl);
    memset(lib, 0, sizeof *lib);
    return KB__EABI;
}
