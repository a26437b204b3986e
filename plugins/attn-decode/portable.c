/*
 * portable.c -- attn-decode in plain C (common.h: transposed key blocks,
 * a three-pass softmax, value rows of negligible weight skipped). The
 * block loops run over AD_BLK independent sums, which the compiler
 * vectorizes at -O3 without reassociating anything; expf is libm's.
 */
#define AD_NAME     "portable"
#define AD_FEATURES 0
#include "common.h"

static void ad_scores(const ad_state *st, const float *qs, float *p)
{
    const uint32_t d = st->d;
    for (uint32_t b = 0; b < st->nb; b++) {
        const float *kb = st->kt + (uint64_t)b * d * AD_BLK;
        float acc[AD_BLK] = {0};
        for (uint32_t t = 0; t < d; t++)
            for (uint32_t j = 0; j < AD_BLK; j++) acc[j] += qs[t] * kb[t * AD_BLK + j];
        memcpy(p + (uint64_t)b * AD_BLK, acc, sizeof acc);
    }
}

static float ad_max(const float *p, uint32_t n)
{
    float m = p[0];
    for (uint32_t i = 1; i < n; i++) m = p[i] > m ? p[i] : m;
    return m;
}

static float ad_expsum(float *p, uint32_t n, float m)
{
    float s = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        p[i] = expf(p[i] - m);
        s += p[i];
    }
    return s;
}

static void ad_vacc(const ad_state *st, const float *p, float thr, float *o)
{
    const uint32_t d = st->d;
    for (uint32_t t = 0; t < d; t++) o[t] = 0.0f;
    for (uint32_t i = 0; i < st->n; i++) {
        if (p[i] < thr) continue;
        const float *v = st->v + (uint64_t)i * d, w = p[i];
        for (uint32_t t = 0; t < d; t++) o[t] += w * v[t];
    }
}
