/*
 * baseline.c -- softmax candidate "baseline": the oracle's kernel unchanged
 * (oracles/softmax/oracle.c sm_rows, ggml's soft_max_f32 scalar path): five
 * passes a row through a work row, libm expf one element at a time, the sum
 * in double. Correct by construction and slow: the copy an agent starts from.
 */
#include <math.h>

#define SM_NAME     "baseline"
#define SM_FEATURES 0
#include "common.h"

#define SM_MAXF(a, b) ((a) > (b) ? (a) : (b))

static void sm_kernel(const sm_state *st, const float *x, const float *mask, float *y)
{
    const float slope = 1.0f;
    for (uint64_t i = 0; i < st->n; i++) {
        const float *sp = x + i * st->d, *mp = mask + i * st->d;
        float *dp = y + i * st->d, *wp = dp; /* y's row is the work row */
        for (uint32_t t = 0; t < st->d; t++) wp[t] = sp[t];
        for (uint32_t t = 0; t < st->d; t++) wp[t] *= SM_SCALE;
        for (uint32_t t = 0; t < st->d; t++) wp[t] += slope * mp[t];
        float max = -INFINITY;
        for (uint32_t t = 0; t < st->d; t++) max = SM_MAXF(max, wp[t]);
        double sum = 0;
        for (uint32_t t = 0; t < st->d; t++) {
            const float val = expf(wp[t] - max);
            sum += (double)val;
            dp[t] = val;
        }
        sum = 1.0 / sum;
        const float v = (float)sum;
        for (uint32_t t = 0; t < st->d; t++) dp[t] *= v;
    }
}
