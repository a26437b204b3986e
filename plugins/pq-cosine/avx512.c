/*
 * avx512.c -- pq-cosine candidate "avx512": AVX-512 F, BW and VBMI, within
 * the oracle's tolerance.
 *
 * The query is normalized first, as the oracle does (d floats, scalar).
 *
 * Table build. prepare() transposes the codebook to [j][t][c], so one zmm
 * holds the t-th coordinate of 16 centroids. Each sub-space's 256 squared
 * distances are built 128 centroids at a time in 8 zmm accumulators that
 * step through t in increasing order with a subtract and one fused
 * multiply-add (a few ulps from the oracle's Lance order; its rel_tol says
 * why that is far inside the rule).
 *
 * Code sums (pq-l2's avx512 lookups, bit-exact). A 16-lane gather costs
 * more than the scalar loop it would replace, so the lookup uses byte shuffles from
 * registers instead. Each sub-space's 256 floats are split into four byte
 * planes (byte b of every float; 256 bytes = 4 zmm per plane). vpermi2b
 * looks 64 codes up in 128 entries at once, so one plane costs two
 * vpermi2b and a blend on the code's top bit, and four planes plus two
 * rounds of unpacks rebuild 64 exact floats: about 20 shuffles per 64
 * lookups, where the shuffle unit does one a cycle.
 *
 * The 64 lanes are 64 vectors reading the same sub-space, so codes are
 * first transposed from [i][j] to [j][i], 64 rows at a time, in log2 of
 * the column count rounds of vpermi2b kept in registers. Blocks of
 * PQ_BLOCK vectors then sweep j in increasing order, adding into the
 * output: every output adds its m terms in the oracle's order, starting
 * from the j = 0 term (0.0f + x == x, and table entries are never -0.0f).
 * The unpacks interleave lanes; the transposition's last round places the
 * rows so that the floats come out in natural order (pq_rho).
 *
 * Shapes: m = 8 and m a multiple of 16 take the fast transposition, any
 * other m a byte-by-byte one; the last n % 64 vectors are summed in scalar
 * code. The sums are the oracle's; only the table entries may differ.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

#define PQ_CENTROIDS 256
/* Vectors per block: the transposed codes of a block (m * PQ_BLOCK bytes)
 * and its outputs stay in L1 while j sweeps the sub-spaces. */
#define PQ_BLOCK 256

typedef struct pq_state {
    const kb_host *host;
    uint64_t n;
    uint32_t d, m, ds;
    float *codebook_t; /* [m][ds][256] */
    float *table;      /* [m][256] floats, for the last n % 64 vectors */
    float *qn;         /* [d], the normalized query */
    uint8_t *planes;   /* [m][4 planes][256 centroids] */
    uint8_t *codes_t;  /* [m][PQ_BLOCK] transposed codes of one block */
    uint8_t *stage;    /* [m / 16][16][64] tiles of 64 rows, when m % 16 == 0 */
    /* vpermi2b indices: the transposition rounds for tiles of 16 and of 8
     * columns (two per round), and the float-to-plane split. */
    _Alignas(64) uint8_t round16[4][2][64];
    _Alignas(64) uint8_t round8[3][2][64];
    _Alignas(64) uint8_t plane_idx[2][64];
} pq_state;

/* The row placed at byte position p of a transposed block: the unpacks in
 * pq_lookup send position 16L + 4r + e to float lane 16r + 4L + e, so
 * swapping the two 2-bit fields makes lane == row. */
static unsigned pq_rho(unsigned p)
{
    return 16 * ((p >> 2) & 3) + 4 * (p >> 4) + (p & 3);
}

/* The query normalized as the oracle does (lance-linalg kernels.rs
 * normalize): squares added in order, square root, each coordinate divided
 * by the norm: d floats, a small part of the call. */
static void pq_normalize(uint32_t d, const float *query, float *qn)
{
    float sq = 0.0f;
    for (uint32_t t = 0; t < d; t++) sq += query[t] * query[t];
    const float norm = __builtin_sqrtf(sq);
    for (uint32_t t = 0; t < d; t++) qn[t] = query[t] / norm;
}

/* ---- table build ----------------------------------------------------- */

/* Centroids 64h..64h+63 (four zmm of floats) -> their four byte planes:
 * each vpermi2b takes 32 floats and yields two planes of them; a lane
 * shuffle joins the halves. */
static void pq_split_planes(__m512 f0, __m512 f1, __m512 f2, __m512 f3, __m512i split_lo,
                            __m512i split_hi, uint8_t *pl)
{
    __m512i a01 = _mm512_permutex2var_epi8(_mm512_castps_si512(f0), split_lo,
                                           _mm512_castps_si512(f1)); /* planes 0, 1 */
    __m512i b01 = _mm512_permutex2var_epi8(_mm512_castps_si512(f0), split_hi,
                                           _mm512_castps_si512(f1)); /* planes 2, 3 */
    __m512i a23 =
        _mm512_permutex2var_epi8(_mm512_castps_si512(f2), split_lo, _mm512_castps_si512(f3));
    __m512i b23 =
        _mm512_permutex2var_epi8(_mm512_castps_si512(f2), split_hi, _mm512_castps_si512(f3));
    _mm512_store_si512(pl + 0 * PQ_CENTROIDS, _mm512_shuffle_i64x2(a01, a23, 0x44));
    _mm512_store_si512(pl + 1 * PQ_CENTROIDS, _mm512_shuffle_i64x2(a01, a23, 0xee));
    _mm512_store_si512(pl + 2 * PQ_CENTROIDS, _mm512_shuffle_i64x2(b01, b23, 0x44));
    _mm512_store_si512(pl + 3 * PQ_CENTROIDS, _mm512_shuffle_i64x2(b01, b23, 0xee));
}

/* One step of t for 16 centroids: acc += (q - x)^2, fused. */
#define PQ_STEP(acc, k)                                                \
    do {                                                               \
        __m512 diff_ = _mm512_sub_ps(q, _mm512_load_ps(x + 16 * (k))); \
        acc = _mm512_fmadd_ps(diff_, diff_, acc);                      \
    } while (0)

/* Written with named accumulators, not arrays: at -O2 GCC keeps small
 * arrays of vectors in memory. */
static void pq_build_tables(const pq_state *st, const float *query)
{
    const __m512i split_lo = _mm512_load_si512(st->plane_idx[0]);
    const __m512i split_hi = _mm512_load_si512(st->plane_idx[1]);
    for (uint32_t j = 0; j < st->m; j++) {
        const float *qj = query + (size_t)j * st->ds;
        float *row = st->table + (size_t)j * PQ_CENTROIDS;
        uint8_t *pl = st->planes + (size_t)j * 4 * PQ_CENTROIDS;
        for (uint32_t c0 = 0; c0 < PQ_CENTROIDS; c0 += 128) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            __m512 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            const float *x = st->codebook_t + (size_t)j * st->ds * PQ_CENTROIDS + c0;
            for (uint32_t t = 0; t < st->ds; t++, x += PQ_CENTROIDS) {
                const __m512 q = _mm512_set1_ps(qj[t]);
                PQ_STEP(a0, 0);
                PQ_STEP(a1, 1);
                PQ_STEP(a2, 2);
                PQ_STEP(a3, 3);
                PQ_STEP(a4, 4);
                PQ_STEP(a5, 5);
                PQ_STEP(a6, 6);
                PQ_STEP(a7, 7);
            }
            _mm512_store_ps(row + c0 + 0, a0);
            _mm512_store_ps(row + c0 + 16, a1);
            _mm512_store_ps(row + c0 + 32, a2);
            _mm512_store_ps(row + c0 + 48, a3);
            _mm512_store_ps(row + c0 + 64, a4);
            _mm512_store_ps(row + c0 + 80, a5);
            _mm512_store_ps(row + c0 + 96, a6);
            _mm512_store_ps(row + c0 + 112, a7);
            pq_split_planes(a0, a1, a2, a3, split_lo, split_hi, pl + c0);
            pq_split_planes(a4, a5, a6, a7, split_lo, split_hi, pl + c0 + 64);
        }
    }
}

/* ---- code transposition ---------------------------------------------- */

/*
 * A tile is one zmm holding some columns of some rows of a 64-row block.
 * The codes as loaded are row-major tiles of 16 columns x 4 rows (m = 16,
 * or one 16-column group when m is a multiple of 16) or 8 x 8 (m = 8).
 * A round pairs the tiles 2k and 2k+1, which hold the same columns of
 * adjacent row ranges, and splits their columns in two: tile k gets the
 * first half, tile k + tiles/2 the second, both column-major. After log2
 * of the column count rounds, tile i is one column of 64 rows: column
 * bitrev(i), since every round pushed one column bit in at the top. All of
 * it stays in registers; named variables, not arrays, because at -O2 GCC
 * keeps small arrays of vectors in memory.
 */
#define PQ_PAIR(lo, hi, a, b)                    \
    do {                                         \
        lo = _mm512_permutex2var_epi8(a, i0, b); \
        hi = _mm512_permutex2var_epi8(a, i1, b); \
    } while (0)

#define PQ_ROUND8(o, t, idx)                                                              \
    do {                                                                                  \
        const __m512i i0 = _mm512_load_si512((idx)[0]), i1 = _mm512_load_si512((idx)[1]); \
        PQ_PAIR(o##0, o##4, t##0, t##1);                                                  \
        PQ_PAIR(o##1, o##5, t##2, t##3);                                                  \
        PQ_PAIR(o##2, o##6, t##4, t##5);                                                  \
        PQ_PAIR(o##3, o##7, t##6, t##7);                                                  \
    } while (0)

#define PQ_ROUND16(o, t, idx)                                                             \
    do {                                                                                  \
        const __m512i i0 = _mm512_load_si512((idx)[0]), i1 = _mm512_load_si512((idx)[1]); \
        PQ_PAIR(o##0, o##8, t##0, t##1);                                                  \
        PQ_PAIR(o##1, o##9, t##2, t##3);                                                  \
        PQ_PAIR(o##2, o##10, t##4, t##5);                                                 \
        PQ_PAIR(o##3, o##11, t##6, t##7);                                                 \
        PQ_PAIR(o##4, o##12, t##8, t##9);                                                 \
        PQ_PAIR(o##5, o##13, t##10, t##11);                                               \
        PQ_PAIR(o##6, o##14, t##12, t##13);                                               \
        PQ_PAIR(o##7, o##15, t##14, t##15);                                               \
    } while (0)

#define PQ_STORE(out, stride, col, v) _mm512_store_si512((out) + (size_t)(col) * (stride), v)

/* m = 8: 64 rows are 8 tiles of 8 rows, loaded as they lie. */
static void pq_transpose_8(const pq_state *st, const uint8_t *src, uint8_t *out, size_t stride)
{
    __m512i t0 = _mm512_loadu_si512(src + 0 * 64), t1 = _mm512_loadu_si512(src + 1 * 64);
    __m512i t2 = _mm512_loadu_si512(src + 2 * 64), t3 = _mm512_loadu_si512(src + 3 * 64);
    __m512i t4 = _mm512_loadu_si512(src + 4 * 64), t5 = _mm512_loadu_si512(src + 5 * 64);
    __m512i t6 = _mm512_loadu_si512(src + 6 * 64), t7 = _mm512_loadu_si512(src + 7 * 64);
    __m512i u0, u1, u2, u3, u4, u5, u6, u7;
    PQ_ROUND8(u, t, st->round8[0]);
    PQ_ROUND8(t, u, st->round8[1]);
    PQ_ROUND8(u, t, st->round8[2]);
    PQ_STORE(out, stride, 0, u0);
    PQ_STORE(out, stride, 4, u1);
    PQ_STORE(out, stride, 2, u2);
    PQ_STORE(out, stride, 6, u3);
    PQ_STORE(out, stride, 1, u4);
    PQ_STORE(out, stride, 5, u5);
    PQ_STORE(out, stride, 3, u6);
    PQ_STORE(out, stride, 7, u7);
}

/*
 * For m a multiple of 16 other than 16, the 64 rows are first cut into the
 * 16 x 4 row-major tiles the rounds start from, tile (g, L) = columns
 * 16g..16g+15 of rows 4L..4L+3, stored at stage + (16g + L) * 64. Rows are
 * read a full zmm at a time where they allow it and their 16-byte pieces
 * regrouped with lane shuffles (a 4 x 4 transpose of 128-bit lanes).
 */
static void pq_stage_tiles(const uint8_t *src, size_t m, uint8_t *stage)
{
#define PQ_TILE(g, L) (stage + (16 * (size_t)(g) + (L)) * 64)
    for (unsigned L = 0; L < 16; L++) {
        const uint8_t *r = src + 4 * L * m;
        if (m % 64 == 0) {
            for (size_t c = 0; c < m / 64; c++) {
                __m512i z0 = _mm512_loadu_si512(r + 64 * c);
                __m512i z1 = _mm512_loadu_si512(r + m + 64 * c);
                __m512i z2 = _mm512_loadu_si512(r + 2 * m + 64 * c);
                __m512i z3 = _mm512_loadu_si512(r + 3 * m + 64 * c);
                __m512i lo01 = _mm512_shuffle_i64x2(z0, z1, 0x44);
                __m512i lo23 = _mm512_shuffle_i64x2(z2, z3, 0x44);
                __m512i hi01 = _mm512_shuffle_i64x2(z0, z1, 0xee);
                __m512i hi23 = _mm512_shuffle_i64x2(z2, z3, 0xee);
                _mm512_store_si512(PQ_TILE(4 * c + 0, L), _mm512_shuffle_i64x2(lo01, lo23, 0x88));
                _mm512_store_si512(PQ_TILE(4 * c + 1, L), _mm512_shuffle_i64x2(lo01, lo23, 0xdd));
                _mm512_store_si512(PQ_TILE(4 * c + 2, L), _mm512_shuffle_i64x2(hi01, hi23, 0x88));
                _mm512_store_si512(PQ_TILE(4 * c + 3, L), _mm512_shuffle_i64x2(hi01, hi23, 0xdd));
            }
        } else if (m == 32) {
            __m512i z0 = _mm512_loadu_si512(r);      /* rows 4L, 4L+1 */
            __m512i z1 = _mm512_loadu_si512(r + 64); /* rows 4L+2, 4L+3 */
            _mm512_store_si512(PQ_TILE(0, L), _mm512_shuffle_i64x2(z0, z1, 0x88));
            _mm512_store_si512(PQ_TILE(1, L), _mm512_shuffle_i64x2(z0, z1, 0xdd));
        } else {
            for (size_t g = 0; g < m / 16; g++) {
                __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(r + 16 * g)));
                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(r + m + 16 * g)), 1);
                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(r + 2 * m + 16 * g)),
                                       2);
                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(r + 3 * m + 16 * g)),
                                       3);
                _mm512_store_si512(PQ_TILE(g, L), v);
            }
        }
    }
#undef PQ_TILE
}

/* m a multiple of 16: one 16-column group at a time. With m = 16 the rows
 * as they lie are already the tiles. */
static void pq_transpose_16(const pq_state *st, const uint8_t *src, uint8_t *out, size_t stride)
{
    const size_t m = st->m;
    const uint8_t *tiles = src;
    if (m != 16) {
        pq_stage_tiles(src, m, st->stage);
        tiles = st->stage;
    }
    for (size_t g = 0; g < m; g += 16) {
        const uint8_t *p = tiles + g * 64;
        __m512i t0 = _mm512_loadu_si512(p + 0 * 64), t1 = _mm512_loadu_si512(p + 1 * 64);
        __m512i t2 = _mm512_loadu_si512(p + 2 * 64), t3 = _mm512_loadu_si512(p + 3 * 64);
        __m512i t4 = _mm512_loadu_si512(p + 4 * 64), t5 = _mm512_loadu_si512(p + 5 * 64);
        __m512i t6 = _mm512_loadu_si512(p + 6 * 64), t7 = _mm512_loadu_si512(p + 7 * 64);
        __m512i t8 = _mm512_loadu_si512(p + 8 * 64), t9 = _mm512_loadu_si512(p + 9 * 64);
        __m512i t10 = _mm512_loadu_si512(p + 10 * 64), t11 = _mm512_loadu_si512(p + 11 * 64);
        __m512i t12 = _mm512_loadu_si512(p + 12 * 64), t13 = _mm512_loadu_si512(p + 13 * 64);
        __m512i t14 = _mm512_loadu_si512(p + 14 * 64), t15 = _mm512_loadu_si512(p + 15 * 64);
        __m512i u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12, u13, u14, u15;
        PQ_ROUND16(u, t, st->round16[0]);
        PQ_ROUND16(t, u, st->round16[1]);
        PQ_ROUND16(u, t, st->round16[2]);
        PQ_ROUND16(t, u, st->round16[3]);
        uint8_t *o = out + g * stride;
        PQ_STORE(o, stride, 0, t0);
        PQ_STORE(o, stride, 8, t1);
        PQ_STORE(o, stride, 4, t2);
        PQ_STORE(o, stride, 12, t3);
        PQ_STORE(o, stride, 2, t4);
        PQ_STORE(o, stride, 10, t5);
        PQ_STORE(o, stride, 6, t6);
        PQ_STORE(o, stride, 14, t7);
        PQ_STORE(o, stride, 1, t8);
        PQ_STORE(o, stride, 9, t9);
        PQ_STORE(o, stride, 5, t10);
        PQ_STORE(o, stride, 13, t11);
        PQ_STORE(o, stride, 3, t12);
        PQ_STORE(o, stride, 11, t13);
        PQ_STORE(o, stride, 7, t14);
        PQ_STORE(o, stride, 15, t15);
    }
}

/* Any other m: byte by byte. Correct, not fast; no case uses it. */
static void pq_transpose_any(const pq_state *st, const uint8_t *src, uint8_t *out, size_t stride)
{
    for (unsigned p = 0; p < 64; p++)
        for (size_t j = 0; j < st->m; j++) out[j * stride + p] = src[(size_t)pq_rho(p) * st->m + j];
}

/* The vpermi2b indices of the rounds for tiles of `cols` columns (rows =
 * 64 / cols), two per round: output position q of half h takes, from the
 * pair (A, B), the byte at local column q / rows_out + h * cols_out and
 * row q % rows_out (rows past A's are B's, index + 64). The last round
 * places rows in pq_rho order. */
static void pq_make_rounds(uint8_t (*idx)[2][64], unsigned cols)
{
    for (unsigned l = 0; cols >> l > 1; l++) {
        const unsigned c_in = cols >> l, r_in = 64 / c_in;
        const unsigned r_out = 2 * r_in, c_out = c_in / 2;
        const int last = c_out == 1;
        for (unsigned h = 0; h < 2; h++) {
            for (unsigned q = 0; q < 64; q++) {
                unsigned c = q / r_out + h * c_out;
                unsigned r = last ? pq_rho(q) : q % r_out;
                unsigned from_b = r >= r_in, rl = r % r_in;
                /* Loaded tiles are row-major; the rounds write column-major. */
                unsigned pos = l == 0 ? rl * c_in + c : c * r_in + rl;
                idx[l][h][q] = (uint8_t)(pos + 64 * from_b);
            }
        }
    }
}

/* ---- lookups ----------------------------------------------------------- */

/* Sums for nb vectors (a multiple of 64) whose transposed codes are at
 * codes_t (column j at codes_t + j * PQ_BLOCK). */
/* One byte plane of 64 lookups: low half of the centroids or high half,
 * by the code's top bit. */
#define PQ_PLANE(b)                                                                \
    _mm512_mask_blend_epi8(upper, _mm512_permutex2var_epi8(p##b##0, idx, p##b##1), \
                           _mm512_permutex2var_epi8(p##b##2, idx, p##b##3))

/* Sums for nb vectors (a multiple of 64) whose transposed codes are at
 * codes_t (column j at codes_t + j * PQ_BLOCK). */
static void pq_lookup(const pq_state *st, const uint8_t *codes_t, size_t nb, float *dist)
{
    for (uint32_t j = 0; j < st->m; j++) {
        const uint8_t *pl = st->planes + (size_t)j * 4 * PQ_CENTROIDS;
        const __m512i p00 = _mm512_load_si512(pl + 0), p01 = _mm512_load_si512(pl + 64);
        const __m512i p02 = _mm512_load_si512(pl + 128), p03 = _mm512_load_si512(pl + 192);
        const __m512i p10 = _mm512_load_si512(pl + 256), p11 = _mm512_load_si512(pl + 320);
        const __m512i p12 = _mm512_load_si512(pl + 384), p13 = _mm512_load_si512(pl + 448);
        const __m512i p20 = _mm512_load_si512(pl + 512), p21 = _mm512_load_si512(pl + 576);
        const __m512i p22 = _mm512_load_si512(pl + 640), p23 = _mm512_load_si512(pl + 704);
        const __m512i p30 = _mm512_load_si512(pl + 768), p31 = _mm512_load_si512(pl + 832);
        const __m512i p32 = _mm512_load_si512(pl + 896), p33 = _mm512_load_si512(pl + 960);
        const uint8_t *cj = codes_t + (size_t)j * PQ_BLOCK;
        for (size_t sb = 0; sb < nb; sb += 64) {
            const __m512i idx = _mm512_load_si512(cj + sb);
            const __mmask64 upper = _mm512_movepi8_mask(idx); /* code >= 128 */
            const __m512i b0 = PQ_PLANE(0), b1 = PQ_PLANE(1), b2 = PQ_PLANE(2), b3 = PQ_PLANE(3);
            const __m512i w0 = _mm512_unpacklo_epi8(b0, b1), w1 = _mm512_unpackhi_epi8(b0, b1);
            const __m512i w2 = _mm512_unpacklo_epi8(b2, b3), w3 = _mm512_unpackhi_epi8(b2, b3);
            const __m512 f0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w0, w2));
            const __m512 f1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w0, w2));
            const __m512 f2 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w1, w3));
            const __m512 f3 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w1, w3));
            float *d = dist + sb;
            if (j == 0) {
                _mm512_storeu_ps(d + 0, f0);
                _mm512_storeu_ps(d + 16, f1);
                _mm512_storeu_ps(d + 32, f2);
                _mm512_storeu_ps(d + 48, f3);
            } else {
                _mm512_storeu_ps(d + 0, _mm512_add_ps(_mm512_loadu_ps(d + 0), f0));
                _mm512_storeu_ps(d + 16, _mm512_add_ps(_mm512_loadu_ps(d + 16), f1));
                _mm512_storeu_ps(d + 32, _mm512_add_ps(_mm512_loadu_ps(d + 32), f2));
                _mm512_storeu_ps(d + 48, _mm512_add_ps(_mm512_loadu_ps(d + 48), f3));
            }
        }
    }
}

static void pq_sum_codes(const pq_state *st, const uint8_t *codes, float *dist)
{
    const size_t m = st->m;
    uint64_t i = 0;
    while (st->n - i >= 64) {
        size_t nb = st->n - i >= PQ_BLOCK ? PQ_BLOCK : (size_t)(st->n - i) / 64 * 64;
        for (size_t sb = 0; sb < nb; sb += 64) {
            const uint8_t *src = codes + (i + sb) * m;
            if (m % 16 == 0)
                pq_transpose_16(st, src, st->codes_t + sb, PQ_BLOCK);
            else if (m == 8)
                pq_transpose_8(st, src, st->codes_t + sb, PQ_BLOCK);
            else
                pq_transpose_any(st, src, st->codes_t + sb, PQ_BLOCK);
        }
        pq_lookup(st, st->codes_t, nb, dist + i);
        i += nb;
    }
    for (; i < st->n; i++) {
        const uint8_t *row = codes + i * m;
        float acc = 0.0f;
        for (size_t j = 0; j < m; j++) acc += st->table[j * PQ_CENTROIDS + row[j]];
        dist[i] = acc;
    }
}

/* ---- plugin ------------------------------------------------------------ */

static void pq_make_indices(pq_state *st)
{
    /* Float-to-plane split: output byte o of the "lo" index holds plane
     * o / 32 of float o % 32 (of the two sources' 32 floats); "hi" holds
     * planes 2 and 3. */
    for (unsigned o = 0; o < 64; o++) {
        st->plane_idx[0][o] = (uint8_t)(4 * (o & 31) + (o >> 5));
        st->plane_idx[1][o] = (uint8_t)(4 * (o & 31) + 2 + (o >> 5));
    }
    pq_make_rounds(st->round16, 16);
    pq_make_rounds(st->round8, 8);
}

static int pq_has_vbmi(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 1) & 1; /* CPUID.(EAX=7,ECX=0):ECX[1] = AVX512_VBMI */
}

static void pq_release(void *state);

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (!pq_has_vbmi()) {
        snprintf(err, err_len,
                 "avx512: this CPU lacks AVX512_VBMI (vpermi2b), which the "
                 "lookups need; use the portable plugin here");
        return KB_ERR_UNSUPPORTED;
    }
    if (cs->n_params != 3 || n_statics != 1) {
        snprintf(err, err_len, "avx512: expected 3 params and 1 static buffer, got %u and %u",
                 cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].count != (uint64_t)PQ_CENTROIDS * (uint64_t)d) {
        snprintf(err, err_len, "avx512: unsupported shape n=%lld d=%lld m=%lld", (long long)n,
                 (long long)d, (long long)m);
        return KB_ERR_UNSUPPORTED;
    }
    pq_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) {
        snprintf(err, err_len, "avx512: out of memory");
        return KB_ERR_NOMEM;
    }
    memset(st, 0, sizeof *st);
    st->host = host;
    st->n = (uint64_t)n;
    st->d = (uint32_t)d;
    st->m = (uint32_t)m;
    st->ds = (uint32_t)(d / m);
    st->codebook_t = host->alloc_aligned(host, (size_t)d * PQ_CENTROIDS * sizeof(float), 64);
    st->table = host->alloc_aligned(host, (size_t)m * PQ_CENTROIDS * sizeof(float), 64);
    st->qn = host->alloc_aligned(host, (size_t)d * sizeof(float), 64);
    st->planes = host->alloc_aligned(host, (size_t)m * 4 * PQ_CENTROIDS, 64);
    st->codes_t = host->alloc_aligned(host, (size_t)m * PQ_BLOCK, 64);
    st->stage = host->alloc_aligned(host, (size_t)m * 64, 64);
    if (!st->codebook_t || !st->table || !st->qn || !st->planes || !st->codes_t || !st->stage) {
        pq_release(st);
        snprintf(err, err_len, "avx512: out of memory for the transposed codebook and tables");
        return KB_ERR_NOMEM;
    }
    const float *cb = statics[0].data;
    for (uint32_t j = 0; j < st->m; j++)
        for (uint32_t c = 0; c < PQ_CENTROIDS; c++)
            for (uint32_t t = 0; t < st->ds; t++)
                st->codebook_t[((size_t)j * st->ds + t) * PQ_CENTROIDS + c] =
                    cb[((size_t)j * PQ_CENTROIDS + c) * st->ds + t];
    pq_make_indices(st);
    *state = st;
    return KB_OK;
}

static int pq_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    pq_state *st = state;
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->d ||
        inputs[1].count != st->n * st->m || outputs[0].count != st->n) {
        snprintf(err, err_len, "avx512: buffers do not match the prepared case");
        return KB_ERR_INTERNAL;
    }
    pq_normalize(st->d, inputs[0].data, st->qn);
    pq_build_tables(st, st->qn);
    pq_sum_codes(st, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    void *owned[] = {st->codebook_t, st->table, st->qn, st->planes, st->codes_t, st->stage};
    for (size_t k = 0; k < sizeof owned / sizeof owned[0]; k++)
        if (owned[k]) host->free_aligned(host, owned[k]);
    host->free_aligned(host, st);
}

static const kb_plugin pq_avx512 = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "pq-cosine",
    .name = "avx512",
    .version = "1",
    /* AVX512_VBMI has no KB_CPU_ bit in ABI 1.0; prepare() checks it. */
    .cpu_features = KB_CPU_AVX512F | KB_CPU_AVX512BW,
    .prepare = pq_prepare,
    .run = pq_run,
    .verify = NULL,
    .release = pq_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &pq_avx512;
}
