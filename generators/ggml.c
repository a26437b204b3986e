/*
 * ggml.c -- ggml's block formats, for the oracles of the quantized LLM
 * targets (q4-0-dot, q8-0-dot, q4-0-matvec) and attn-decode's f16 cache:
 * the fp16 conversions and the two reference quantizers, ported from ggml
 * (github:ggerganov/ggml, commit 9a4acb37):
 *   src/ggml-impl.h     ggml_compute_fp16_to_fp32 / ggml_compute_fp32_to_fp16,
 *                       the portable bit-level versions (every fp16 value is
 *                       exact in f32, so F16C's vcvtph2ps gives the same bits)
 *   src/ggml-quants.c   quantize_row_q8_0_ref, quantize_row_q4_0_ref, one
 *                       block of QK8_0 = 32 values each
 * Integer and correctly rounded float operations only, no libm, so the
 * bytes are the same on every platform (kb_gen.h).
 */
#include <string.h>

#include "kb_gen.h"

static float f32_from_bits(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

static float abs_f32(float f)
{
    return f32_from_bits(f32_bits(f) & UINT32_C(0x7FFFFFFF));
}

float kb_ggml_fp16_to_fp32(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = UINT32_C(0xE0) << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized_value = f32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = UINT32_C(126) << 23;
    const float magic_bias = 0.5f;
    const float denormalized_value = f32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = UINT32_C(1) << 27;
    const uint32_t result = sign | (two_w < denormalized_cutoff ? f32_bits(denormalized_value)
                                                                : f32_bits(normalized_value));
    return f32_from_bits(result);
}

uint16_t kb_ggml_fp32_to_fp16(float f)
{
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (abs_f32(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & UINT32_C(0x80000000);
    uint32_t bias = shl1_w & UINT32_C(0xFF000000);
    if (bias < UINT32_C(0x71000000)) bias = UINT32_C(0x71000000);
    base = f32_from_bits((bias >> 1) + UINT32_C(0x07800000)) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
    const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign));
}

uint16_t kb_ggml_half(const uint8_t *b)
{
    return (uint16_t)(b[0] | (uint16_t)b[1] << 8);
}

/* ggml_half as ggml stores it: little-endian. */
static void put_half(uint8_t *out, uint16_t h)
{
    out[0] = (uint8_t)(h & 0xFF);
    out[1] = (uint8_t)(h >> 8);
}

/* roundf (half away from zero), exact for |v| < 2^23 without libm: the
 * fraction v - trunc(v) of a float is a float. */
static float round_f32(float v)
{
    const float t = (float)(int32_t)v;
    const float f = v - t;
    if (f >= 0.5f) return t + 1.0f;
    if (f <= -0.5f) return t - 1.0f;
    return t;
}

void kb_ggml_quantize_q8_0(const float *x, uint8_t *out)
{
    float amax = 0.0f;
    for (int j = 0; j < KB_GGML_QK; j++) {
        const float v = abs_f32(x[j]);
        amax = amax > v ? amax : v; /* MAX(amax, fabsf(v)) */
    }
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    put_half(out, kb_ggml_fp32_to_fp16(d));
    for (int j = 0; j < KB_GGML_QK; j++) out[2 + j] = (uint8_t)(int8_t)round_f32(x[j] * id);
}

/* x / d lies in [-8, 8] up to a rounding, so the truncation of x / d + 8.5
 * sees [0.5, 16.5] and (int) of it is ggml's (int8_t) of it. */
void kb_ggml_quantize_q4_0(const float *x, uint8_t *out)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < KB_GGML_QK; j++) {
        const float v = x[j];
        if (amax < abs_f32(v)) {
            amax = abs_f32(v);
            max = v;
        }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    put_half(out, kb_ggml_fp32_to_fp16(d));
    for (int j = 0; j < KB_GGML_QK / 2; ++j) {
        const float x0 = x[j] * id, x1 = x[KB_GGML_QK / 2 + j] * id;
        const int i0 = (int)(x0 + 8.5f), i1 = (int)(x1 + 8.5f);
        const uint8_t xi0 = (uint8_t)(i0 < 15 ? i0 : 15), xi1 = (uint8_t)(i1 < 15 ? i1 : 15);
        out[2 + j] = (uint8_t)(xi0 | xi1 << 4);
    }
}
