/*
 * openblas.c -- q4-0-matvec contender "openblas": "just use BLAS", as a
 * user without a quantized kernel would: the q4_0 matrix dequantized once to
 * f32 in prepare (each weight (q - 8) * d, exact in f32), and per call the
 * q8_0 vector dequantized to f32 (q * d, exact) and cblas_sgemv on OpenBLAS
 * (Debian libopenblas-dev). It reads 32 bits a weight where the quantized
 * kernels read 4.5: its ratio shows what the q4_0 kernels buy. Information
 * for the agent, not a candidate to tune.
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

static int mv_private(mv_state *st)
{
    float *a = st->host->alloc_aligned(st->host, (size_t)st->rows * st->n * sizeof(float), 64);
    if (!a) return -1;
    const uint64_t blocks = (uint64_t)st->rows * st->nb;
    for (uint64_t k = 0; k < blocks; k++) {
        const uint8_t *b = st->w + k * Q4_BLOCK;
        const float d = mv_fp16(b);
        float *o = a + k * QK;
        for (int j = 0; j < QK / 2; j++) {
            o[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
            o[j + QK / 2] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
    st->priv = a;
    return 0;
}

static void mv_kernel(const mv_state *st, const uint8_t *x, float *y)
{
    float *v = st->scratch;
    for (uint32_t b = 0; b < st->nb; b++) {
        const uint8_t *src = x + (uint64_t)b * Q8_BLOCK;
        const float d = mv_fp16(src);
        for (int j = 0; j < QK; j++) v[b * QK + j] = (float)(int8_t)src[2 + j] * d;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)st->rows, (int)st->n, 1.0f, st->priv,
                (int)st->n, v, 1, 0.0f, y, 1);
}
