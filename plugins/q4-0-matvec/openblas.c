/*
 * openblas.c -- q4-0-matvec contender "openblas": "just use BLAS", as
 * ggml's own BLAS backend runs a mul_mat whose weights are quantized
 * (ggml 9a4acb37 src/ggml-blas/ggml-blas.cpp ggml_backend_blas_mul_mat: the
 * matrix converted to f32 by the type's to_float into a work buffer on
 * every call, then cblas_sgemm; one column here, so cblas_sgemv): per call
 * the q4_0 matrix dequantized into a work buffer allocated in prepare (each
 * weight (q - 8) * d, exact in f32), the q8_0 vector likewise (q * d,
 * exact), then cblas_sgemv on OpenBLAS (Debian libopenblas-dev). Its ratio
 * shows what the quantized kernels buy over dequantize-then-BLAS.
 * Information for the agent, not a candidate to tune.
 *
 * Dequantizing once in prepare and keeping the f32 matrix instead (sgemv
 * alone, 32 bits a weight read where the quantized kernels read 4.5) was
 * tried: the trial's fresh probe, where each call follows the oracle's,
 * finds that private copy cold in the cache and calls the timed win a
 * replay (`rejected`) in about one trial of three on this machine, so the
 * contender's verdict would be noise.
 *
 * The target is single-threaded, so OpenBLAS must not start its thread
 * pool: OPENBLAS_NUM_THREADS=1 is set by a constructor that runs before
 * OpenBLAS's own (priority 101; OpenBLAS is linked statically into this
 * .so), as a user pins a single-threaded BLAS.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <cblas.h>
#include <stdlib.h>

#define MV_NAME     "openblas"
#define MV_FEATURES 0
#define MV_PRIVATE
#include "common.h"

__attribute__((constructor(101))) static void mv_one_thread(void)
{
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
}

/* The work buffer: rows * n floats. */
static int mv_private(mv_state *st)
{
    st->priv = st->host->alloc_aligned(st->host, (size_t)st->rows * st->n * sizeof(float), 64);
    return st->priv ? 0 : -1;
}

/* dequantize_row_q4_0 (src/ggml-quants.c). */
static void mv_to_float(const uint8_t *w, uint64_t blocks, float *a)
{
    for (uint64_t k = 0; k < blocks; k++) {
        const uint8_t *b = w + k * Q4_BLOCK;
        const float d = mv_fp16(b);
        float *o = a + k * QK;
        for (int j = 0; j < QK / 2; j++) {
            o[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
            o[j + QK / 2] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    mv_to_float(st->w, (uint64_t)st->rows * st->nb, st->priv);
    float *v = st->scratch;
    for (uint32_t b = 0; b < st->nb; b++) {
        const uint8_t *src = x + (uint64_t)b * Q8_BLOCK;
        const float d = mv_fp16(src);
        for (int j = 0; j < QK; j++) v[b * QK + j] = (float)(int8_t)src[2 + j] * d;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)st->rows, (int)st->n, 1.0f, st->priv, (int)st->n,
                v, 1, 0.0f, y, 1);
}
