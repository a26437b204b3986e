/*
 * openblas.c -- kmeans-assign contender "openblas": the assignment as a user
 * of the tiled-GEMM approach writes it on OpenBLAS (Debian libopenblas-dev):
 * per block of points, S = X C^T by cblas_sgemm, then per row the argmin
 * of |c|^2 - 2 S, plus |x|^2. Information for the agent, not a candidate to
 * tune: it shows what "just call BLAS" gets.
 *
 * The target is single-threaded, so OpenBLAS must not start its thread
 * pool: OPENBLAS_NUM_THREADS=1 is set by a constructor that runs before
 * OpenBLAS's own (priority 101; OpenBLAS is linked statically into this
 * .so), as a user pins a single-threaded BLAS.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <cblas.h>
#include <stdlib.h>

#define KM_NAME     "openblas"
#define KM_FEATURES 0
#include "common.h"

#define KM_ROWS 256 /* points per GEMM block */

__attribute__((constructor(101))) static void km_one_thread(void)
{
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
}

static void km_kernel(const km_state *st, const float *pts, uint32_t *idx, float *dist)
{
    static float s[KM_ROWS * 4096];
    const uint32_t d = st->d, k = st->k;
    const uint32_t rows = k > 4096 ? 1 : KM_ROWS;
    for (uint64_t i0 = 0; i0 < st->n; i0 += rows) {
        const uint32_t m = st->n - i0 < rows ? (uint32_t)(st->n - i0) : rows;
        const float *x = pts + i0 * d;
        if (k <= 4096)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)d, 1.0f, x,
                        (int)d, st->cent, (int)d, 0.0f, s, (int)k);
        for (uint32_t r = 0; r < m; r++) {
            const float *row = x + (uint64_t)r * d;
            float best = 0;
            uint32_t arg = UINT32_MAX;
            for (uint32_t j = 0; j < k; j++) {
                const float sj = k <= 4096
                                     ? s[(uint64_t)r * k + j]
                                     : cblas_sdot((int)d, row, 1, st->cent + (uint64_t)j * d, 1);
                const float v = st->norms[j] - 2 * sj;
                if (arg == UINT32_MAX || v < best) best = v, arg = j;
            }
            const float nx = cblas_sdot((int)d, row, 1, row, 1);
            idx[i0 + r] = arg;
            dist[i0 + r] = nx + best > 0 ? nx + best : 0;
        }
    }
}
