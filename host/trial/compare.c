/*
 * compare.c -- is a worker's output the oracle's output?
 *
 * The only judge of correctness. Integers compare bitwise; floats within the
 * target's tolerance, |got - ref| <= rel_tol * max(1, |ref|), and NaN never
 * matches (poison is NaN, so an output left unwritten fails). Variable-length
 * outputs must produce exactly the oracle's count. The bytes around each
 * output must be as the host left them.
 *
 * A target whose oracle has its own check (ABI 1.2) is judged by that check
 * instead of element by element, after the same frame checks and with NaN
 * still never matching. It gets the very input set the lane ran on (a
 * timed, fresh or held-out set alike), so the defences built around the
 * comparison (fresh inputs, held-out sets, lanes drawn at random) hold for
 * it as they do for the elementwise rule.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trial.h"

#define KB__CANARY 0xa5

static void show(uint32_t dtype, const void *p, uint64_t i, char *out, size_t n)
{
    switch (dtype) {
    case KB_DT_U8: snprintf(out, n, "%u", ((const uint8_t *)p)[i]); break;
    case KB_DT_U16: snprintf(out, n, "%u", ((const uint16_t *)p)[i]); break;
    case KB_DT_U32: snprintf(out, n, "%u", ((const uint32_t *)p)[i]); break;
    case KB_DT_U64: snprintf(out, n, "%llu", (unsigned long long)((const uint64_t *)p)[i]); break;
    case KB_DT_I32: snprintf(out, n, "%d", ((const int32_t *)p)[i]); break;
    case KB_DT_I64: snprintf(out, n, "%lld", (long long)((const int64_t *)p)[i]); break;
    case KB_DT_F32: snprintf(out, n, "%.9g", (double)((const float *)p)[i]); break;
    case KB_DT_F64: snprintf(out, n, "%.17g", ((const double *)p)[i]); break;
    default: snprintf(out, n, "?");
    }
}

static int close_enough(double ref, double got, double tol)
{
    if (isnan(ref) || isnan(got)) return 0;
    if (isinf(ref) || isinf(got)) return ref == got;
    double scale = fabs(ref) > 1.0 ? fabs(ref) : 1.0;
    return fabs(got - ref) <= tol * scale;
}

/* First index where got differs from ref, or n. */
static uint64_t first_mismatch(uint32_t dtype, const void *ref, const void *got, uint64_t n,
                               double tol)
{
    const size_t es = kb__dtype_size(dtype);
    if (tol == 0.0 || (dtype != KB_DT_F32 && dtype != KB_DT_F64)) {
        if (memcmp(ref, got, n * es) == 0) return n;
        for (uint64_t i = 0; i < n; i++)
            if (memcmp((const char *)ref + i * es, (const char *)got + i * es, es) != 0) return i;
        return n;
    }
    if (dtype == KB_DT_F32) {
        const float *r = ref, *g = got;
        for (uint64_t i = 0; i < n; i++)
            if (!close_enough(r[i], g[i], tol)) return i;
    } else {
        const double *r = ref, *g = got;
        for (uint64_t i = 0; i < n; i++)
            if (!close_enough(r[i], g[i], tol)) return i;
    }
    return n;
}

/* The bytes around output j as the host left them and its produced count
 * the oracle's: 0, with its data and element count; else 1 or 2 as
 * kb__outputs_check. */
static int frame_check(const kb_target *t, const kb__case_data *cd, const kb__outbuf *ob,
                       uint64_t lane, uint32_t set, uint32_t j, uint64_t produced,
                       const uint8_t **out, uint64_t *n, char *detail, size_t detail_len)
{
    const kb__layout *L = &cd->layout;
    const uint32_t bi = L->n_statics + L->n_calls + j;
    const kb_buffer_spec *bs = &t->buffers[bi];
    const size_t es = kb__dtype_size(bs->dtype);
    const uint64_t cap = L->buf[bi].count;
    const uint8_t *slot = ob->base + lane * L->lane_size + L->buf[bi].slot_off;
    const uint8_t *data = slot + L->buf[bi].data_off;

    for (size_t k = 0; k < L->buf[bi].data_off; k++)
        if (slot[k] != KB__CANARY) {
            kb__errf(detail, detail_len,
                     "wrote before the start of output '%s' (%zu bytes before it) in case %s",
                     bs->name, (size_t)(L->buf[bi].data_off - k), cd->cs->name);
            return 2;
        }
    for (size_t k = cap * es; k < L->buf[bi].slot_size - L->buf[bi].data_off; k++)
        if (data[k] != 0xff) {
            kb__errf(detail, detail_len,
                     "wrote past the end of output '%s' (byte %zu of a %zu-byte buffer) in "
                     "case %s",
                     bs->name, k, (size_t)(cap * es), cd->cs->name);
            return 2;
        }
    *out = data;
    *n = cap;
    if (!(bs->flags & KB_BUF_VARIABLE)) return 0;
    if (produced > cap) {
        kb__errf(detail, detail_len,
                 "claimed %llu elements produced in output '%s' of case %s, but the buffer "
                 "holds %llu",
                 (unsigned long long)produced, bs->name, cd->cs->name, (unsigned long long)cap);
        return 2;
    }
    if (produced != cd->ref_produced[set][j]) {
        kb__errf(detail, detail_len, "case %s, output '%s': produced %llu elements, expected %llu",
                 cd->cs->name, bs->name, (unsigned long long)produced,
                 (unsigned long long)cd->ref_produced[set][j]);
        return 1;
    }
    *n = produced;
    return 0;
}

/* Output j against the oracle's, element by element. */
static int elementwise(const kb_target *t, const kb__case_data *cd, uint32_t set, uint32_t j,
                       const uint8_t *data, uint64_t n, char *detail, size_t detail_len)
{
    const kb_buffer_spec *bs = &t->buffers[cd->layout.n_statics + cd->layout.n_calls + j];
    const uint64_t i = first_mismatch(bs->dtype, cd->ref[set][j], data, n, t->rel_tol);
    if (i == n) return 0;
    char e[48], g[48];
    show(bs->dtype, cd->ref[set][j], i, e, sizeof e);
    show(bs->dtype, data, i, g, sizeof g);
    kb__errf(detail, detail_len, "case %s, output '%s'[%llu]: expected %s, got %s", cd->cs->name,
             bs->name, (unsigned long long)i, e, g);
    return 1;
}

/* First NaN in a float output, or n: NaN never matches, whatever the
 * oracle's check would make of it. */
static uint64_t first_nan(uint32_t dtype, const void *p, uint64_t n)
{
    if (dtype == KB_DT_F32) {
        for (uint64_t i = 0; i < n; i++)
            if (isnan(((const float *)p)[i])) return i;
    } else if (dtype == KB_DT_F64) {
        for (uint64_t i = 0; i < n; i++)
            if (isnan(((const double *)p)[i])) return i;
    }
    return n;
}

/* Every output at once, by the oracle's check, on the inputs of `set`. */
static int by_oracle(const kb_target *t, kb__check_fn check, const kb__case_data *cd, uint32_t set,
                     const uint8_t *const *data, const uint64_t *n, char *detail, size_t detail_len)
{
    const kb__layout *L = &cd->layout;
    kb_buffer ins[KB_MAX_BUFFERS], ref[KB_MAX_BUFFERS], got[KB_MAX_BUFFERS];
    const uint32_t n_ins = kb__set_inputs(cd, set, ins);
    for (uint32_t j = 0; j < L->n_outs; j++) {
        const kb_buffer_spec *bs = &t->buffers[n_ins + j];
        const uint64_t i = first_nan(bs->dtype, data[j], n[j]);
        if (i < n[j]) {
            kb__errf(detail, detail_len, "case %s, output '%s'[%llu]: got NaN, which never matches",
                     cd->cs->name, bs->name, (unsigned long long)i);
            return 1;
        }
        ref[j] = (kb_buffer){cd->ref[set][j], cd->ref_produced[set][j], cd->ref_produced[set][j],
                             bs->dtype, 0};
        got[j] = (kb_buffer){(void *)data[j], n[j], n[j], bs->dtype, 0};
    }
    char why[300] = "";
    if (check(cd->cs, t->rel_tol, ins, n_ins, ref, got, L->n_outs, why, sizeof why) == 0) return 0;
    why[sizeof why - 1] = 0;
    for (char *c = why; *c; c++) /* one line, whatever the oracle wrote */
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    kb__errf(detail, detail_len, "case %s: %s", cd->cs->name,
             why[0] ? why : "the oracle's check found the outputs wrong (it gave no reason)");
    return 1;
}

int kb__outputs_check(const kb_target *t, const kb__case_data *cd, const kb__outbuf *ob,
                      uint64_t lane, uint32_t set, char *detail, size_t detail_len)
{
    const kb__layout *L = &cd->layout;
    const kb__check_fn check = kb__spec_outcheck(t);
    const uint8_t *data[KB_MAX_BUFFERS];
    uint64_t n[KB_MAX_BUFFERS];
    for (uint32_t j = 0; j < L->n_outs; j++) {
        kb_buffer d; /* the worker's descriptor of this call's output j */
        memcpy(&d, ob->base + L->prod_off + (lane * L->n_outs + j) * sizeof d, sizeof d);
        int rc =
            frame_check(t, cd, ob, lane, set, j, d.produced, &data[j], &n[j], detail, detail_len);
        if (rc == 0 && !check) rc = elementwise(t, cd, set, j, data[j], n[j], detail, detail_len);
        if (rc) return rc;
    }
    return check ? by_oracle(t, check, cd, set, data, n, detail, detail_len) : 0;
}
