/*
 * oracle.c -- the frozen reference for kmeans-assign: the assignment step
 * of k-means (Lloyd) training as Lance's IVF training runs it (lance-linalg
 * src/kmeans.rs KMeans::compute_membership, commit 01e4515e: points in
 * chunks of CHUNK_SIZE = 1024, each point's nearest centroid by squared L2
 * through compute_partitions_l2 / argmin_value_float, kept as
 * cluster_id_and_distances: (u32 index, f32 squared distance)).
 *
 * n points of d floats are assigned to the nearest of k centroids of d
 * floats (KB_ROLE_STATIC: fixed during one assignment pass). Outputs: idx[i]
 * the index of point i's nearest centroid, dist[i] its squared L2 distance.
 * The oracle computes every distance exactly enough to call it exact: in
 * double, which holds each product of two floats exactly and sums d <= 4096
 * of them with a relative error far below float's; the smallest wins, the
 * lowest index on a tie.
 *
 * Correctness is the oracle's own check (ABI 1.2, kb_target.check), not
 * elementwise equality: the direct loop sum (x - c)^2 and the GEMM form
 * |x|^2 - 2 x.c + |c|^2 (the tiled-GEMM assignment of the field) round
 * differently, so near ties go either way and the distances differ in
 * their last bits. A candidate's answer for point i is right when, in
 * double, the distance D to its centroid is within
 *     tol * (|x|^2 + |c|^2)      (tol = rel_tol = 1e-5; c the larger-norm
 *                                 of its centroid and the oracle's)
 * of the distance to the oracle's centroid, and its reported distance is
 * within the same bound of D. The bound scales with |x|^2 + |c|^2 because
 * that is what the GEMM form's cancellation loses: each of its terms is
 * that large before |x - c|^2 is left. A float kernel's error is a few
 * 2^-24 of it times sqrt(d): the float candidates in plugins/kmeans-assign
 * stay within 1e-6 of it on every case (2e-7 fails them at d = 768), and a
 * plain sequential float sum over d = 768 may take a few times more, so
 * 1e-5 is the tightest bound with a margin.
 * The second-nearest centroid is wrong unless it is as near as that
 * (tests/fixtures/wrong/fx_wrong_kmeans.c).
 *
 * Changing anything here that alters the inputs, the outputs or the check
 * invalidates every ledger line recorded against this oracle.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

#define KM_TOL     1e-5
#define KM_CENTRES 64 /* mixture components of the clustered distribution */
#define KM_SPREAD  0.25f

enum { KM_CENTROIDS = 0, KM_POINTS = 1, KM_IDX = 2, KM_DIST = 3, KM_N_BUFFERS = 4 };
enum { KM_N = 0, KM_K = 1, KM_D = 2, KM_N_PARAMS = 3 };

static const char *const km_param_names[KM_N_PARAMS] = {"n", "k", "d"};

static const kb_buffer_spec km_buffers[KM_N_BUFFERS] = {
    {"centroids", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
    {"points", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"idx", KB_DT_U32, KB_ROLE_OUTPUT, 0, 0},
    {"dist", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

/* Lengths in spec order; a call moves the points, the centroids and the
 * two outputs; 2 flops (mul, add) per point, centroid and dimension. */
#define KM_CASE(nm, fl, n, k, d)                                                    \
    {                                                                               \
        nm, fl, 0, {n, k, d}, {(uint64_t)(k) * (d), (uint64_t)(n) * (d), (n), (n)}, \
            4.0 * ((double)(k) * (d) + (double)(n) * (d) + 2.0 * (n)),              \
            2.0 * (double)(n) * (k) * (d)                                           \
    }

/* n = 1024 is Lance's chunk (smaller n: the last, partial chunk); k the
 * partitions of an IVF index (the PR's benchmark: n_lists = 512, d = 128);
 * d 128 (SIFT-like) and 768 (sentence embeddings). The quick subset is
 * small because the exact oracle runs on all 32 input sets of a case and is
 * timed against: it keeps a default trial near two seconds. */
static const kb_case_spec km_cases[] = {
    KM_CASE("n=1024,k=64,d=128/uniform", KB_CASE_QUICK, 1024, 64, 128),
    KM_CASE("n=512,k=256,d=128/clustered", KB_CASE_QUICK, 512, 256, 128),
    KM_CASE("n=1024,k=256,d=128/clustered", 0, 1024, 256, 128),
    KM_CASE("n=128,k=256,d=768/clustered", KB_CASE_QUICK, 128, 256, 768),
    KM_CASE("n=256,k=256,d=768/clustered", 0, 256, 256, 768),
    KM_CASE("n=1024,k=512,d=128/clustered", 0, 1024, 512, 128),
    KM_CASE("n=1024,k=1024,d=128/uniform", 0, 1024, 1024, 128),
    KM_CASE("n=4096,k=512,d=128/clustered", 0, 4096, 512, 128),
    KM_CASE("n=256,k=4096,d=128/clustered", 0, 256, 4096, 128),
    KM_CASE("n=1024,k=256,d=768/uniform", 0, 1024, 256, 768),
    KM_CASE("n=1024,k=256,d=768/clustered", 0, 1024, 256, 768),
    KM_CASE("n=256,k=1024,d=768/clustered", 0, 256, 1024, 768),
};
#define KM_N_CASES (sizeof km_cases / sizeof km_cases[0])

typedef struct km_shape {
    uint64_t n;
    uint32_t k, d;
} km_shape;

static int km_shape_from(const int64_t *p, km_shape *s, char *err, size_t err_len)
{
    if (p[KM_N] < 1 || p[KM_N] > INT64_C(1) << 24 || p[KM_K] < 1 || p[KM_K] > 1 << 20 ||
        p[KM_D] < 16 || p[KM_D] > 4096 || p[KM_D] % 16 != 0) {
        snprintf(err, err_len,
                 "kmeans-assign: bad shape n=%lld k=%lld d=%lld (need 1 <= n <= 2^24, 1 <= k "
                 "<= 2^20, d a multiple of 16 in [16, 4096])",
                 (long long)p[KM_N], (long long)p[KM_K], (long long)p[KM_D]);
        return -1;
    }
    s->n = (uint64_t)p[KM_N];
    s->k = (uint32_t)p[KM_K];
    s->d = (uint32_t)p[KM_D];
    return 0;
}

/* ---- generator ------------------------------------------------------- */

/* Uniform: coordinates uniform in [-1, 1). Clustered, as k-means meets
 * real embeddings: KM_CENTRES mixture centres uniform in [-1, 1) (from the
 * seed alone), each point a random centre plus KM_SPREAD * normal noise,
 * and the centroids drawn the same way (Lance's random init picks data
 * points), so several centroids crowd each centre and a point's nearest
 * two are often close. */
static void km_vectors(uint64_t seed, uint64_t stream, int clustered, uint64_t count, uint32_t d,
                       float *out)
{
    kb_rng r;
    kb_rng_seed(&r, kb_rng_derive(seed, 0x6b6d, stream));
    if (!clustered) {
        kb_gen_uniform_f32(&r, out, count * d, -1.0f, 1.0f);
        return;
    }
    kb_rng rc;
    float centre[4096];
    for (uint64_t i = 0; i < count; i++) {
        const uint64_t c = kb_rng_below(&r, KM_CENTRES);
        kb_rng_seed(&rc, kb_rng_derive(seed, 0x6b6d63, c));
        kb_gen_uniform_f32(&rc, centre, d, -1.0f, 1.0f);
        kb_gen_normal_f32(&r, out + i * d, d, 0.0f, KM_SPREAD);
        for (uint32_t t = 0; t < d; t++) out[i * d + t] += centre[t];
    }
}

static int km_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                       uint32_t n_bufs, char *err, size_t err_len)
{
    km_shape s;
    if (km_shape_from(cs->params, &s, err, err_len) != 0) return -1;
    if (n_bufs != KM_N_BUFFERS || bufs[KM_CENTROIDS].count != (uint64_t)s.k * s.d ||
        bufs[KM_POINTS].count != s.n * s.d || !bufs[KM_CENTROIDS].data || !bufs[KM_POINTS].data) {
        snprintf(err, err_len, "kmeans-assign: generate got the wrong buffers");
        return -1;
    }
    const char *slash = strrchr(cs->name, '/');
    const int clustered = slash && strcmp(slash + 1, "clustered") == 0;
    if (set == 0) km_vectors(seed, 0, clustered, s.k, s.d, bufs[KM_CENTROIDS].data);
    km_vectors(seed, 1 + (uint64_t)set, clustered, s.n, s.d, bufs[KM_POINTS].data);
    return 0;
}

/* ---- the exact kernel ------------------------------------------------ */

/* Squared L2 distance in double: each difference and square of floats is
 * exact in double, and the sum of d of them is off by far less than a
 * float ulp of the result. */
static double km_l2(const float *x, const float *c, uint32_t d)
{
    double s = 0;
    for (uint32_t t = 0; t < d; t++) {
        const double v = (double)x[t] - (double)c[t];
        s += v * v;
    }
    return s;
}

static double km_norm(const float *x, uint32_t d)
{
    double s = 0;
    for (uint32_t t = 0; t < d; t++) s += (double)x[t] * (double)x[t];
    return s;
}

/* km_l2 of x and four centroids from c (rows of d): the same four sums,
 * interleaved so that they do not wait on each other. */
static void km_l2x4(const float *x, const float *c, uint32_t d, double *out)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (uint32_t t = 0; t < d; t++) {
        const double xt = x[t];
        const double v0 = xt - (double)c[t], v1 = xt - (double)c[d + t];
        const double v2 = xt - (double)c[2 * d + t], v3 = xt - (double)c[3 * d + t];
        s0 += v0 * v0, s1 += v1 * v1, s2 += v2 * v2, s3 += v3 * v3;
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static void km_assign(const km_shape *s, const float *cent, const float *pts, uint32_t *idx,
                      float *dist)
{
    for (uint64_t i = 0; i < s->n; i++) {
        const float *x = pts + i * s->d;
        double best = 0, v[4];
        uint32_t arg = UINT32_MAX, j = 0;
        for (; j + 4 <= s->k; j += 4) {
            km_l2x4(x, cent + (uint64_t)j * s->d, s->d, v);
            for (uint32_t q = 0; q < 4; q++)
                if (arg == UINT32_MAX || v[q] < best) best = v[q], arg = j + q;
        }
        for (; j < s->k; j++) {
            const double w = km_l2(x, cent + (uint64_t)j * s->d, s->d);
            if (arg == UINT32_MAX || w < best) best = w, arg = j;
        }
        idx[i] = arg;
        dist[i] = (float)best;
    }
}

/* ---- the check ------------------------------------------------------- */

static int km_check(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                    const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs,
                    char *reason, size_t reason_len)
{
    km_shape s;
    if (km_shape_from(cs->params, &s, reason, reason_len) != 0) return 1;
    if (n_inputs != 2 || n_outputs != 2 || got[0].count != s.n || got[1].count != s.n) {
        snprintf(reason, reason_len, "kmeans-assign: the check got the wrong buffers");
        return 1;
    }
    const float *cent = inputs[0].data, *pts = inputs[1].data;
    const uint32_t *ref = expected[0].data, *gi = got[0].data;
    const float *gd = got[1].data;
    for (uint64_t i = 0; i < s.n; i++) {
        const float *x = pts + i * s.d;
        const uint32_t j = gi[i], r = ref[i];
        if (j >= s.k) {
            snprintf(reason, reason_len, "idx[%llu]: centroid %u does not exist (k = %u)",
                     (unsigned long long)i, j, s.k);
            return 1;
        }
        const float *cj = cent + (uint64_t)j * s.d, *cr = cent + (uint64_t)r * s.d;
        const double dj = km_l2(x, cj, s.d), dr = j == r ? dj : km_l2(x, cr, s.d);
        const double nj = km_norm(cj, s.d), nr = km_norm(cr, s.d);
        const double bound = tol * (km_norm(x, s.d) + (nj > nr ? nj : nr));
        if (dj - dr > bound) {
            snprintf(reason, reason_len,
                     "idx[%llu]: expected centroid %u at %.9g, got centroid %u at %.9g, %.3g "
                     "farther (tolerance %.3g: %g of |x|^2 + |c|^2)",
                     (unsigned long long)i, r, dr, j, dj, dj - dr, bound, tol);
            return 1;
        }
        const double g = gd[i];
        if (!(g - dj <= bound && dj - g <= bound)) {
            snprintf(reason, reason_len,
                     "dist[%llu]: expected %.9g (point to centroid %u), got %.9g (tolerance "
                     "%.3g: %g of |x|^2 + |c|^2)",
                     (unsigned long long)i, dj, j, g, bound, tol);
            return 1;
        }
    }
    return 0;
}

/* ---- plugin ---------------------------------------------------------- */

typedef struct km_state {
    const kb_host *host;
    km_shape s;
    const float *cent;
} km_state;

static int km_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                      uint32_t n_statics, void **state, char *err, size_t err_len)
{
    km_shape s;
    if (km_shape_from(cs->params, &s, err, err_len) != 0) return KB_ERR_UNSUPPORTED;
    if (n_statics != 1 || statics[0].count != (uint64_t)s.k * s.d) {
        snprintf(err, err_len, "kmeans-assign: prepare got the wrong centroids");
        return KB_ERR_INTERNAL;
    }
    km_state *st = host->alloc_aligned(host, sizeof *st, 64);
    if (!st) return KB_ERR_NOMEM;
    st->host = host;
    st->s = s;
    st->cent = statics[0].data;
    *state = st;
    return KB_OK;
}

static int km_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                  uint32_t n_outputs, char *err, size_t err_len)
{
    km_state *st = state;
    if (n_inputs != 1 || n_outputs != 2 || inputs[0].count != st->s.n * st->s.d ||
        outputs[0].count != st->s.n || outputs[1].count != st->s.n) {
        snprintf(err, err_len, "kmeans-assign: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    km_assign(&st->s, st->cent, inputs[0].data, outputs[0].data, outputs[1].data);
    return KB_OK;
}

static void km_release(void *state)
{
    km_state *st = state;
    st->host->free_aligned(st->host, st);
}

/* ---- descriptors ----------------------------------------------------- */

static const kb_target km_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "kmeans-assign",
    .description = "k-means assignment: each point's nearest of k centroids by squared L2, "
                   "and that distance",
    .upstream = "lance 01e4515e rust/lance-linalg/src/kmeans.rs KMeans::compute_membership "
                "(CHUNK_SIZE 1024, compute_partitions_l2: argmin of l2 to every centroid)",
    .n_params = KM_N_PARAMS,
    .n_buffers = KM_N_BUFFERS,
    .param_names = km_param_names,
    .buffers = km_buffers,
    .n_cases = KM_N_CASES,
    .cases = km_cases,
    .rel_tol = KM_TOL,
    .generate = km_generate,
    .check = km_check,
};

static const kb_plugin km_oracle = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .target = "kmeans-assign",
    .name = "oracle",
    .version = "1",
    .prepare = km_prepare,
    .run = km_run,
    .release = km_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &km_oracle;
}

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &km_target;
}
