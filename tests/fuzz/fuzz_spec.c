/*
 * fuzz_spec.c -- kb__spec_check on a kb_target built from fuzz bytes.
 *
 * The spec comes from the oracle, which is trusted code, but everything
 * downstream indexes by its counts and multiplies its lengths on the word of
 * this one check, so the check itself must hold for any spec. Every array
 * is a heap block of exactly the size the spec declares (counts over the
 * limits get the limit's worth), so reading past what an oracle declared is
 * an ASan error. When the check accepts, the harness verifies independently
 * what the rest of the host relies on.
 */
#include <math.h>

#include "fuzz.h"
#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"

static int dummy_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                          uint32_t n_bufs, char *err, size_t err_len)
{
    (void)cs, (void)seed, (void)set, (void)bufs, (void)n_bufs, (void)err, (void)err_len;
    return 0;
}

/* A shape() that sizes every buffer from the first parameter (or 1). */
static int dummy_shape(kb_case_spec *cs, char *err, size_t err_len)
{
    (void)err, (void)err_len;
    const int64_t v = cs->params[0];
    for (int b = 0; b < KB_MAX_BUFFERS; b++) cs->lengths[b] = v > 0 ? (uint64_t)v : 1;
    for (int p = 0; p < KB_MAX_PARAMS; p++)
        if (cs->params[p] == KB_PARAM_UNSET) cs->params[p] = 0;
    return 0;
}

#define HEADER_SIZE 12
#define MAX_CASES   64 /* kb__result.cases */

static char *maybe_str(fz_in *in)
{
    return fz_u8(in) % 8 == 0 ? NULL : fz_str(in);
}

/* An array of n elements of `size` bytes, exactly, from the heap. */
static void *array(size_t n, size_t size)
{
    return fz_keep(calloc(n ? n : 1, n ? size : 1));
}

/* Small values mostly, any value now and then. */
static uint32_t small_u32(fz_in *in, uint32_t mod)
{
    uint8_t b = fz_u8(in);
    return b < 0xf0 ? b % mod : fz_u32(in);
}

static int is_name(const char *s, size_t max, char punct, int upper)
{
    size_t n = strnlen(s, max);
    if (n == 0 || n == max) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
              c == punct))
            return 0;
    }
    return 1;
}

/* What the host assumes of an accepted spec, checked without spec.c. */
static void check_accepted(const kb_target *t)
{
    FZ_CHECK(t->magic == KB_ABI_MAGIC && t->abi_major == KB_ABI_MAJOR &&
                 t->struct_size >= offsetof(kb_target, param_ranges),
             "bad header accepted");
    FZ_CHECK(t->generate, "no generate");
    FZ_CHECK(t->name && is_name(t->name, 64, '-', 0), "target name");
    FZ_CHECK(t->description && t->description[0], "description");
    FZ_CHECK(isfinite(t->rel_tol) && t->rel_tol >= 0 && t->rel_tol < 1, "rel_tol %g", t->rel_tol);
    FZ_CHECK(t->n_params <= KB_MAX_PARAMS, "n_params %u", t->n_params);
    for (uint32_t p = 0; p < t->n_params; p++) {
        FZ_CHECK(t->param_names && t->param_names[p], "param %u has no name", p);
        FZ_CHECK(strlen(t->param_names[p]) < 32, "param name too long");
        for (uint32_t q = 0; q < p; q++)
            FZ_CHECK(strcmp(t->param_names[p], t->param_names[q]), "param name twice");
    }
    FZ_CHECK(t->n_buffers >= 1 && t->n_buffers <= KB_MAX_BUFFERS && t->buffers, "n_buffers %u",
             t->n_buffers);
    int calls = 0, outputs = 0;
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec *s = &t->buffers[b];
        FZ_CHECK(s->name && strlen(s->name) < 32, "buffer name");
        FZ_CHECK(kb__dtype_size(s->dtype) > 0, "dtype %u", s->dtype);
        FZ_CHECK(s->role >= KB_ROLE_STATIC && s->role <= KB_ROLE_OUTPUT, "role %u", s->role);
        FZ_CHECK(b == 0 || s->role >= t->buffers[b - 1].role, "roles out of order");
        FZ_CHECK(!(s->flags & KB_BUF_VARIABLE) || s->role == KB_ROLE_OUTPUT, "variable input");
        calls += s->role == KB_ROLE_CALL;
        outputs += s->role == KB_ROLE_OUTPUT;
    }
    FZ_CHECK(calls > 0 && outputs > 0, "%d per-call inputs, %d outputs", calls, outputs);
    FZ_CHECK(t->n_cases >= 1 && t->n_cases <= MAX_CASES && t->cases, "n_cases %u", t->n_cases);
    for (uint32_t i = 0; i < t->n_cases; i++) {
        const kb_case_spec *c = &t->cases[i];
        FZ_CHECK(c->name && c->name[0] && strlen(c->name) < 96, "case name");
        for (uint32_t j = 0; j < i; j++)
            FZ_CHECK(strcmp(c->name, t->cases[j].name), "case name twice");
        uint64_t total = 0;
        for (uint32_t b = 0; b < t->n_buffers; b++) {
            uint64_t len = c->lengths[b], dsz = kb__dtype_size(t->buffers[b].dtype);
            FZ_CHECK(len > 0 && len <= (UINT64_C(1) << 40) / dsz, "length %llu",
                     (unsigned long long)len);
            total += len * dsz; /* 8 buffers of <= 2^40 bytes: cannot wrap */
        }
        FZ_CHECK(total <= (UINT64_C(1) << 43), "total bytes");
        FZ_CHECK(isfinite(c->bytes_per_call) && c->bytes_per_call >= 0, "bytes_per_call");
        FZ_CHECK(isfinite(c->flops_per_call) && c->flops_per_call >= 0, "flops_per_call");
    }
}

/* The ABI 1.1 members, from the bytes left after the cases (none in an
 * input written before them: no ranges). */
static void fuzz_shapes(fz_in *in, kb_target *t, uint32_t np)
{
    const uint8_t sel = fz_u8(in);
    if (!(sel & 1)) return;
    kb_param_range *r = array(np, sizeof *r);
    for (uint32_t p = 0; p < np; p++) {
        r[p].min = (int64_t)(int8_t)fz_u8(in);
        r[p].max = fz_u8(in) < 0xf0 ? r[p].min + fz_u8(in) : (int64_t)fz_u64(in);
        r[p].multiple_of = fz_u8(in) % 5;
        r[p].flags = small_u32(in, 4);
    }
    t->param_ranges = r;
    t->n_distributions = fz_count(in, 17);
    uint32_t nd = t->n_distributions < 17 ? t->n_distributions : 17;
    const char **d = array(nd, sizeof *d);
    for (uint32_t i = 0; i < nd; i++) d[i] = maybe_str(in);
    t->distributions = sel & 2 ? NULL : d;
    t->max_case_bytes = sel & 4 ? 0 : fz_u8(in) < 0xf0 ? fz_u16(in) : fz_u64(in);
    t->shape = sel & 8 ? NULL : dummy_shape;
}

/* A shape named from fuzz bytes against an accepted spec: refused in one
 * line, or every value within its range, the name within bounds and one
 * set within the cap. */
static void fuzz_parse(fz_in *in, const kb_target *t)
{
    if (!kb__spec_ranges(t)) return;
    const char *spec = fz_str(in);
    kb__shape sh;
    char err[512] = "";
    int rc = kb__shape_parse(t, spec, &sh, err, sizeof err);
    fz_note("shape_parse", rc, err);
    if (rc) {
        FZ_CHECK((rc == KB__EUSAGE || rc == KB__ESPEC) && err[0] && !strchr(err, '\n'),
                 "bad refusal %d '%s'", rc, err);
        return;
    }
    FZ_CHECK(sh.cs.name == sh.name && strlen(sh.name) < sizeof sh.name, "name");
    uint64_t bytes = 0;
    for (uint32_t p = 0; p < t->n_params; p++) {
        const kb_param_range *r = &t->param_ranges[p];
        const int64_t v = sh.cs.params[p];
        FZ_CHECK(v >= r->min && v <= r->max, "%s=%lld outside", t->param_names[p], (long long)v);
    }
    for (uint32_t b = 0; b < t->n_buffers; b++)
        bytes += sh.cs.lengths[b] * kb__dtype_size(t->buffers[b].dtype);
    FZ_CHECK(bytes <= t->max_case_bytes, "%llu bytes over the cap", (unsigned long long)bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    kb_target t;
    memset(&t, 0, sizeof t);
    uint8_t sel = fz_u8(&in);
    t.magic = sel & 1 ? KB_ABI_MAGIC : fz_u32(&in);
    t.abi_major = sel & 2 ? KB_ABI_MAJOR : fz_u16(&in);
    t.abi_minor = fz_u16(&in);
    t.struct_size = sel & 4 ? (uint32_t)sizeof t : small_u32(&in, 256);
    t.flags = sel & 8 ? 0 : fz_u32(&in);
    t.generate = sel & 16 ? dummy_generate : NULL;
    t.rel_tol = sel & 32 ? 0.0 : fz_f64(&in);
    t.name = maybe_str(&in);
    t.description = maybe_str(&in);
    t.upstream = maybe_str(&in);

    t.n_params = fz_count(&in, KB_MAX_PARAMS + 1);
    uint32_t np = t.n_params < KB_MAX_PARAMS ? t.n_params : KB_MAX_PARAMS;
    if (fz_u8(&in) != 0xff) {
        const char **names = array(np, sizeof *names);
        for (uint32_t i = 0; i < np; i++) names[i] = maybe_str(&in);
        t.param_names = names;
    }

    t.n_buffers = fz_count(&in, KB_MAX_BUFFERS + 1);
    uint32_t nb = t.n_buffers < KB_MAX_BUFFERS ? t.n_buffers : KB_MAX_BUFFERS;
    if (fz_u8(&in) != 0xff) {
        kb_buffer_spec *bufs = array(nb, sizeof *bufs);
        for (uint32_t i = 0; i < nb; i++) {
            bufs[i].name = maybe_str(&in);
            bufs[i].dtype = small_u32(&in, 10);
            bufs[i].role = small_u32(&in, 5);
            bufs[i].flags = small_u32(&in, 2);
            bufs[i].reserved = 0;
        }
        t.buffers = bufs;
    }

    t.n_cases = fz_count(&in, MAX_CASES + 2);
    uint32_t nc = t.n_cases < MAX_CASES ? t.n_cases : MAX_CASES;
    if (fz_u8(&in) != 0xff) {
        kb_case_spec *cases = array(nc, sizeof *cases);
        for (uint32_t i = 0; i < nc; i++) {
            kb_case_spec *c = &cases[i];
            c->name = maybe_str(&in);
            c->flags = small_u32(&in, 2);
            for (int p = 0; p < KB_MAX_PARAMS; p++) c->params[p] = (int64_t)fz_u8(&in);
            for (int b = 0; b < KB_MAX_BUFFERS; b++) {
                uint8_t l = fz_u8(&in);
                c->lengths[b] = l < 0xf0 ? l : fz_u64(&in);
            }
            uint8_t d = fz_u8(&in);
            c->bytes_per_call = d & 1 ? fz_f64(&in) : 1024.0;
            c->flops_per_call = d & 2 ? fz_f64(&in) : 0.0;
        }
        t.cases = cases;
    }
    fuzz_shapes(&in, &t, np);

    /* The oracle declared struct_size bytes; give it exactly that (at least
     * the header, at most the whole struct plus a zeroed tail). */
    size_t have = t.struct_size < HEADER_SIZE ? HEADER_SIZE : t.struct_size;
    if (have > sizeof t + 64) have = sizeof t + 64;
    unsigned char *block = fz_keep(calloc(1, have));
    memcpy(block, &t, have < sizeof t ? have : sizeof t);

    char err[512] = "";
    int rc = kb__spec_check((const kb_target *)(void *)block, "fuzz-oracle.so", err, sizeof err);
    fz_note("spec_check", rc, err);
    FZ_CHECK(rc <= 0, "rc %d", rc);
    if (rc)
        FZ_CHECK(err[0] && !strchr(err, '\n'), "bad message: '%s'", err);
    else
        check_accepted((const kb_target *)(void *)block);
    if (!rc) fuzz_parse(&in, (const kb_target *)(void *)block);
    fz_free_all();
    return 0;
}
