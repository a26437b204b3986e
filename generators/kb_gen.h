/*
 * kb_gen.h -- seeded input generators for kbench targets.
 *
 * Static library (kbench_gen) that oracle plugins link to build their
 * inputs. Every function is a pure function of the rng state and its
 * arguments: the same seed gives the same bytes on every platform (x86-64,
 * aarch64, any compiler), because the library uses only integer arithmetic
 * and correctly rounded IEEE operations (+ - * / sqrt), never libm
 * transcendentals, and is compiled with -ffp-contract=off.
 */
#ifndef KB_GEN_H
#define KB_GEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SplitMix64 (Steele, Lea, Flood 2014). */
typedef struct kb_rng {
    uint64_t state;
} kb_rng;

void kb_rng_seed(kb_rng *r, uint64_t seed);
uint64_t kb_rng_next(kb_rng *r);
/* A seed for an independent sub-stream, e.g. per (set, buffer): SipHash-2-4
 * of (a, b) keyed by the seed, so a sub-stream's state (which its output
 * reveals) reveals neither the seed nor any other sub-stream. */
uint64_t kb_rng_derive(uint64_t seed, uint64_t a, uint64_t b);
/* SipHash-2-4 (Aumasson and Bernstein 2012) under the 128-bit key (k0, k1)
 * of the 16-byte message a, b (each little-endian): the reference's output
 * for key bytes 0..15 (k0, k1 read little-endian) and message bytes 0..15. */
uint64_t kb_rng_prf(uint64_t k0, uint64_t k1, uint64_t a, uint64_t b);
/* Uniform integer in [0, n), unbiased (Lemire's method). n > 0. */
uint64_t kb_rng_below(kb_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double kb_rng_unit(kb_rng *r);
/* Standard normal (mean 0, sd 1), deterministic across platforms. */
double kb_rng_normal(kb_rng *r);

/* out[i] uniform in [lo, hi). */
void kb_gen_uniform_f32(kb_rng *r, float *out, size_t n, float lo, float hi);
/* out[i] = mean + sd * normal. */
void kb_gen_normal_f32(kb_rng *r, float *out, size_t n, float mean, float sd);
/* n_vec vectors of dim floats, row-major, drawn around n_clusters centres
 * (centres uniform in [-1, 1), points centre + spread * normal). */
void kb_gen_clustered_f32(kb_rng *r, float *out, size_t n_vec, size_t dim, size_t n_clusters,
                          float spread);
/* out[i] uniform bytes in [0, 256). */
void kb_gen_bytes(kb_rng *r, uint8_t *out, size_t n);
/* out[i] in [0, n_items) with P(k) proportional to 1/(k+1)^s, s > 0
 * (rank 0 most likely). */
void kb_gen_zipf_u32(kb_rng *r, uint32_t *out, size_t n, uint32_t n_items, double s);

/* k sorted, strictly increasing u32 lists drawn from [0, universe), written
 * back to back into out; offsets[0..k] receives the start of each list
 * (offsets[k] = total). lens[i] is the length of list i. A common core of
 * round(overlap * min(lens)) values is present in every list (0 <= overlap
 * <= 1); the rest of each list avoids the core and is otherwise uniform, so
 * the intersection of all k lists is exactly the core unless the uniform
 * parts collide by chance (they may; the oracle computes the true answer).
 * Needs sum(lens) <= universe / 2. Returns 0, or -1 if the request cannot be
 * met. `out` must hold sum(lens) elements. */
int kb_gen_postings(kb_rng *r, uint32_t k, const uint64_t *lens, double overlap, uint32_t universe,
                    uint32_t *out, uint64_t *offsets);

/* Product-quantization inputs (pq-dot, pq-cosine; the streams and laws of
 * pq-l2's generator, which they reproduce at scale 1). m sub-spaces of ds
 * floats, 256 centroids each.
 * Codebook [m][256][ds] from (seed) only: uniform in [-1, 1), or, clustered,
 * each sub-space's centroids around 16 centres (spread 0.1); every value
 * then times scale. */
void kb_gen_pq_codebook(uint64_t seed, uint32_t m, uint32_t ds, int clustered, float scale,
                        float *cb);
/* Query [m * ds] of input set `set`: uniform in [-1, 1) times scale, or,
 * clustered, each sub-vector a random centroid of cb plus normal noise (sd
 * 0.05 times scale), so a few table entries per sub-space stand out. */
void kb_gen_pq_query(uint64_t seed, uint32_t set, uint32_t m, uint32_t ds, int clustered,
                     float scale, const float *cb, float *q);
/* Codes [n][m] of input set `set`: uniform bytes, or, clustered, Zipf (s =
 * 1.1) over 256 ranks through a per-sub-space permutation fixed by the seed
 * (hot centroids, different in each sub-space). 0, or -1 out of memory. */
int kb_gen_pq_codes(uint64_t seed, uint32_t set, uint64_t n, uint32_t m, int clustered,
                    uint8_t *codes);

/* ggml's block formats (ggml.c): a block holds KB_GGML_QK values; block_q8_0
 * is a little-endian fp16 scale then 32 int8, 34 bytes; block_q4_0 the scale
 * then 16 bytes of two 4-bit values (element j in the low nibble of byte j,
 * element j + 16 in its high nibble, each stored + 8), 18 bytes. */
#define KB_GGML_QK       32
#define KB_GGML_Q8_BLOCK 34
#define KB_GGML_Q4_BLOCK 18
/* ggml_compute_fp16_to_fp32 / ggml_compute_fp32_to_fp16 (round to nearest
 * even, NaN kept a NaN). */
float kb_ggml_fp16_to_fp32(uint16_t h);
uint16_t kb_ggml_fp32_to_fp16(float f);
/* The fp16 scale at b (a block's first two bytes). */
uint16_t kb_ggml_half(const uint8_t *b);
/* quantize_row_q8_0_ref / quantize_row_q4_0_ref of one block of 32 floats. */
void kb_ggml_quantize_q8_0(const float *x, uint8_t *out);
void kb_ggml_quantize_q4_0(const float *x, uint8_t *out);
#ifdef __cplusplus
}
#endif
#endif /* KB_GEN_H */
