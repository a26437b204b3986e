/*
 * compare.c -- is a worker's output the oracle's output?
 *
 * The only judge of correctness. Integers compare bitwise; floats within the
 * target's tolerance, |got - ref| <= rel_tol * max(1, |ref|), and NaN never
 * matches (poison is NaN, so an output left unwritten fails). Variable-length
 * outputs must produce exactly the oracle's count. The bytes around each
 * output must be as the host left them.
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

int kb__outputs_check(const kb_target *t, const kb__case_data *cd, const kb__outbuf *ob,
                      uint64_t lane, uint32_t set, char *detail, size_t detail_len)
{
    const kb__layout *L = &cd->layout;
    uint64_t produced[KB_MAX_BUFFERS];
    for (uint32_t j = 0; j < L->n_outs; j++) {
        kb_buffer d; /* the worker's descriptor of this call's output j */
        memcpy(&d, ob->base + L->prod_off + (lane * L->n_outs + j) * sizeof d, sizeof d);
        produced[j] = d.produced;
    }
    for (uint32_t j = 0; j < L->n_outs; j++) {
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

        uint64_t n = cap;
        if (bs->flags & KB_BUF_VARIABLE) {
            if (produced[j] > cap) {
                kb__errf(detail, detail_len,
                         "claimed %llu elements produced in output '%s' of case %s, but the "
                         "buffer holds %llu",
                         (unsigned long long)produced[j], bs->name, cd->cs->name,
                         (unsigned long long)cap);
                return 2;
            }
            if (produced[j] != cd->ref_produced[set][j]) {
                kb__errf(detail, detail_len,
                         "case %s, output '%s': produced %llu elements, expected %llu",
                         cd->cs->name, bs->name, (unsigned long long)produced[j],
                         (unsigned long long)cd->ref_produced[set][j]);
                return 1;
            }
            n = produced[j];
        }
        const uint64_t i = first_mismatch(bs->dtype, cd->ref[set][j], data, n, t->rel_tol);
        if (i < n) {
            char e[48], g[48];
            show(bs->dtype, cd->ref[set][j], i, e, sizeof e);
            show(bs->dtype, data, i, g, sizeof g);
            kb__errf(detail, detail_len, "case %s, output '%s'[%llu]: expected %s, got %s",
                     cd->cs->name, bs->name, (unsigned long long)i, e, g);
            return 1;
        }
    }
    return 0;
}
