/*
 * avx512.c -- pq-l2 candidate "avx512": AVX-512 (F, BW, VBMI), bit-exact
 * with the oracle.
 *
 * Table build. prepare() transposes the codebook to [j][t][c], so one zmm
 * holds t-th coordinates of 16 centroids. A sub-space's 256 distances are
 * 16 zmm accumulators stepping through t in increasing order with a
 * separate multiply and add: lane c does exactly the oracle's arithmetic
 * for centroid c (this file is built with -ffp-contract=off; GCC's vector
 * operators would otherwise fuse mul+add).
 *
 * Code sums. Gathers are slow on Zen (about 18 cycles for 16 floats), so
 * the lookup is done with byte shuffles from registers instead: each
 * sub-space's 256 float distances are split into four byte planes (byte b
 * of every float, 256 bytes = 4 zmm per plane). vpermi2b looks up 64 codes
 * at once in 128 entries, so one plane costs two vpermi2b and a blend on
 * the code's top bit; four planes and two rounds of unpacks rebuild 64
 * exact floats. Lanes are 64 vectors, all reading the same sub-space, so
 * codes are first transposed from [i][j] to [j][i] in blocks of 64 rows
 * (log2(m) rounds of vpermi2b), and the per-vector sums are kept in the
 * output while j goes up: every output still adds its m terms in the
 * oracle's order, starting from the j = 0 term (0.0f + x == x, and table
 * entries are never -0.0f).
 *
 * The unpacks interleave lanes; the transposition's last round places the
 * rows so that the floats come out in natural order (pq_rho).
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
#define PQ_MAX_LEVELS 6 /* transposition rounds for m = 64 */

typedef struct pq_state {
    const kb_host *host;
    uint64_t n;
    uint32_t d, m, ds;
    uint32_t levels;  /* log2(m) when m is a power of two in [2, 64], else 0 */
    float *codebook_t; /* [m][ds][256] */
    float *table;      /* [m][256] floats, for the last n % 64 vectors */
    uint8_t *planes;   /* [m][4 planes][256 centroids] */
    uint8_t *codes_t;  /* [m][PQ_BLOCK] transposed codes of one block */
    /* vpermi2b indices: the transposition rounds (two per round) and the
     * float-to-plane split (two). */
    _Alignas(64) uint8_t round_idx[PQ_MAX_LEVELS][2][64];
    _Alignas(64) uint8_t plane_idx[2][64];
} pq_state;

/* The row placed at byte position p of a transposed block: the unpacks in
 * pq_lookup send position 16L + 4r + e to float lane 16r + 4L + e, so
 * swapping the two 2-bit fields makes lane == row. */
static unsigned pq_rho(unsigned p)
{
    return 16 * ((p >> 2) & 3) + 4 * (p >> 4) + (p & 3);
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
    __m512i a23 = _mm512_permutex2var_epi8(_mm512_castps_si512(f2), split_lo,
                                           _mm512_castps_si512(f3));
    __m512i b23 = _mm512_permutex2var_epi8(_mm512_castps_si512(f2), split_hi,
                                           _mm512_castps_si512(f3));
    _mm512_store_si512(pl + 0 * PQ_CENTROIDS, _mm512_shuffle_i64x2(a01, a23, 0x44));
    _mm512_store_si512(pl + 1 * PQ_CENTROIDS, _mm512_shuffle_i64x2(a01, a23, 0xee));
    _mm512_store_si512(pl + 2 * PQ_CENTROIDS, _mm512_shuffle_i64x2(b01, b23, 0x44));
    _mm512_store_si512(pl + 3 * PQ_CENTROIDS, _mm512_shuffle_i64x2(b01, b23, 0xee));
}

/* One step of t for 16 centroids: the oracle's diff, square, add. */
#define PQ_STEP(acc, k)                                                                     \
    do {                                                                                    \
        __m512 diff_ = _mm512_sub_ps(q, _mm512_load_ps(x + 16 * (k)));                    \
        acc = _mm512_add_ps(acc, _mm512_mul_ps(diff_, diff_));                              \
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
 * 64 rows of m codes (row-major, 64 * m bytes = m zmm) -> m rows of 64
 * (column j at out + j * stride, rows in pq_rho order). Round l pairs tiles
 * holding the same columns of adjacent row ranges and splits the columns in
 * two, so after log2(m) rounds each tile is one column of 64 rows.
 */
static void pq_transpose64(const pq_state *st, const uint8_t *src, uint8_t *out, size_t stride)
{
    _Alignas(64) uint8_t buf[2][64 * 64];
    const uint32_t m = st->m;
    if (st->levels == 0) {
        for (unsigned p = 0; p < 64; p++)
            for (uint32_t j = 0; j < m; j++)
                out[j * stride + p] = src[(size_t)pq_rho(p) * m + j];
        return;
    }
    const uint8_t *in = src;
    for (uint32_t l = 0; l < st->levels; l++) {
        const __m512i idx0 = _mm512_load_si512(st->round_idx[l][0]);
        const __m512i idx1 = _mm512_load_si512(st->round_idx[l][1]);
        const uint32_t nrb = m >> l, ncb = 1u << l, half = nrb / 2;
        const int last = l + 1 == st->levels;
        uint8_t *dst = buf[l & 1];
        for (uint32_t cb = 0; cb < ncb; cb++) {
            for (uint32_t a = 0; a < half; a++) {
                __m512i A = _mm512_loadu_si512(in + ((size_t)cb * nrb + 2 * a) * 64);
                __m512i B = _mm512_loadu_si512(in + ((size_t)cb * nrb + 2 * a + 1) * 64);
                __m512i o0 = _mm512_permutex2var_epi8(A, idx0, B);
                __m512i o1 = _mm512_permutex2var_epi8(A, idx1, B);
                if (last) {
                    _mm512_storeu_si512(out + (size_t)(2 * cb) * stride, o0);
                    _mm512_storeu_si512(out + (size_t)(2 * cb + 1) * stride, o1);
                } else {
                    _mm512_store_si512(dst + ((size_t)(2 * cb) * half + a) * 64, o0);
                    _mm512_store_si512(dst + ((size_t)(2 * cb + 1) * half + a) * 64, o1);
                }
            }
        }
        in = dst;
    }
}

/* ---- lookups ----------------------------------------------------------- */

/* Sums for nb vectors (a multiple of 64) whose transposed codes are at
 * codes_t (column j at codes_t + j * PQ_BLOCK). */
/* One byte plane of 64 lookups: low half of the centroids or high half,
 * by the code's top bit. */
#define PQ_PLANE(b)                                                                         \
    _mm512_mask_blend_epi8(upper, _mm512_permutex2var_epi8(p##b##0, idx, p##b##1),        \
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
        for (size_t sb = 0; sb < nb; sb += 64)
            pq_transpose64(st, codes + (i + sb) * m, st->codes_t + sb, PQ_BLOCK);
        pq_lookup(st, st->codes_t, nb, dist + i);
        i += nb;
    }
    for (; i < st->n; i++) {
        const uint8_t *row = codes + i * m;
        float acc = 0.0f;
        for (size_t j = 0; j < m; j++)
            acc += st->table[j * PQ_CENTROIDS + row[j]];
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
    const uint32_t m = st->m;
    for (uint32_t l = 0; l < st->levels; l++) {
        const unsigned c_in = m >> l, r_in = 64 / c_in; /* tile shape before the round */
        const unsigned r_out = 2 * r_in, c_out = c_in / 2;
        const int last = l + 1 == st->levels;
        for (unsigned hsel = 0; hsel < 2; hsel++) {
            for (unsigned q = 0; q < 64; q++) {
                unsigned c = q / r_out + hsel * c_out;
                unsigned r = last ? pq_rho(q) : q % r_out;
                unsigned from_b = r >= r_in, rl = r % r_in;
                /* The codes as loaded are row-major; later tiles are
                 * column-major. */
                unsigned pos = l == 0 ? rl * c_in + c : c * r_in + rl;
                st->round_idx[l][hsel][q] = (uint8_t)(pos + 64 * from_b);
            }
        }
    }
}

static int pq_has_vbmi(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (c >> 1) & 1; /* CPUID.(EAX=7,ECX=0):ECX[1] = AVX512_VBMI */
}

static void pq_release(void *state);

static int pq_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (!pq_has_vbmi()) {
        snprintf(err, err_len, "avx512: this CPU lacks AVX512_VBMI (vpermi2b), which the "
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
    for (uint32_t l = 1; l <= PQ_MAX_LEVELS; l++)
        if (st->m == 1u << l)
            st->levels = l;
    st->codebook_t = host->alloc_aligned(host, (size_t)d * PQ_CENTROIDS * sizeof(float), 64);
    st->table = host->alloc_aligned(host, (size_t)m * PQ_CENTROIDS * sizeof(float), 64);
    st->planes = host->alloc_aligned(host, (size_t)m * 4 * PQ_CENTROIDS, 64);
    st->codes_t = host->alloc_aligned(host, (size_t)m * PQ_BLOCK, 64);
    if (!st->codebook_t || !st->table || !st->planes || !st->codes_t) {
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
    pq_build_tables(st, inputs[0].data);
    pq_sum_codes(st, inputs[1].data, outputs[0].data);
    return KB_OK;
}

static void pq_release(void *state)
{
    pq_state *st = state;
    const kb_host *host = st->host;
    void *owned[] = {st->codebook_t, st->table, st->planes, st->codes_t};
    for (size_t k = 0; k < sizeof owned / sizeof owned[0]; k++)
        if (owned[k])
            host->free_aligned(host, owned[k]);
    host->free_aligned(host, st);
}

static const kb_plugin pq_avx512 = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "pq-l2",
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
