/*
 * roofline.c -- this machine's roofs: memory bandwidth per cache level and
 * single-core floating-point peak, measured by `kbench calibrate` so that
 * verdicts can say how close a kernel is to what the machine can do.
 *
 * Bandwidth is STREAM's triad (a = b + s*c, 24 bytes per element) once per
 * level, L1, L2, L3 and DRAM, best of several timed repetitions. Each
 * level's roof applies to working sets up to that cache's size (sysconf),
 * and is measured at half of it so the triad's arrays surely fit; DRAM at
 * eight times L3 (at least 384 MB). Peak is a loop of
 * independent fused multiply-adds, 12 accumulators deep to cover latency,
 * at the widest vector width the CPU and OS support.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kb.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double triad_gbps(size_t total_bytes)
{
    const size_t n = total_bytes / (3 * sizeof(double));
    double *a = NULL, *b = NULL, *c = NULL;
    if (posix_memalign((void **)&a, 64, n * sizeof *a) ||
        posix_memalign((void **)&b, 64, n * sizeof *b) ||
        posix_memalign((void **)&c, 64, n * sizeof *c)) {
        free(a);
        free(b);
        return NAN;
    }
    for (size_t i = 0; i < n; i++) a[i] = 0, b[i] = (double)i, c[i] = 1.0;
    const double s = 3.0;
    size_t reps = 1;
    double best = INFINITY;
    for (int trial = 0; trial < 7; trial++) {
        double t0 = now_s();
        for (size_t r = 0; r < reps; r++) {
            for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
            /* keep the compiler from dropping repetitions */
            __asm__ volatile("" : : "r"(a) : "memory");
        }
        double dt = (now_s() - t0) / (double)reps;
        if (dt < best) best = dt;
        if (trial == 0) { /* size the repetitions to ~10 ms */
            double want = 0.01 / (dt > 1e-9 ? dt : 1e-9);
            reps = want < 1 ? 1 : (size_t)want;
        }
    }
    free(a);
    free(b);
    free(c);
    return 3.0 * (double)n * sizeof(double) / best / 1e9;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma_avx512(long iters)
{
    __m512 acc[12], m = _mm512_set1_ps(1.0000001f), x = _mm512_set1_ps(0.999999f);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, x);
    float sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return 12.0 * 16 * 2 * (double)iters;
}
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters)
{
    __m256 acc[12], m = _mm256_set1_ps(1.0000001f), x = _mm256_set1_ps(0.999999f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, x);
    float buf[8], sink = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(buf, acc[i]);
        sink += buf[0];
    }
    __asm__ volatile("" : : "x"(sink));
    return 12.0 * 8 * 2 * (double)iters;
}
#endif

static double fma_scalar(long iters)
{
    float acc[12];
    for (int i = 0; i < 12; i++) acc[i] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = fmaf(acc[i], 1.0000001f, 0.999999f);
    float sink = 0;
    for (int i = 0; i < 12; i++) sink += acc[i];
    __asm__ volatile("" : : "r"(sink));
    return 12.0 * 2 * (double)iters;
}

static double peak_gflops(void)
{
    const uint64_t f = kb__cpu_features();
    double (*fn)(long) = fma_scalar;
#if defined(__x86_64__)
    if (f & KB_CPU_AVX512F)
        fn = fma_avx512;
    else if ((f & KB_CPU_AVX2) && (f & KB_CPU_FMA))
        fn = fma_avx2;
#endif
    (void)f;
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        const long iters = 2000000;
        double t0 = now_s();
        double flops = fn(iters);
        double g = flops / (now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

/* This machine's data cache sizes, with common sizes where sysconf does
 * not know them, each at least its predecessor's. L3 is capped at 64 MB:
 * a VM or a many-die CPU may report the sum of every die's L3, more than
 * one core reaches (and a triad at 8x that would not fit in memory). */
static void cache_sizes(double out[3])
{
    static const double fallback[3] = {32e3, 1e6, 16e6};
#ifdef _SC_LEVEL1_DCACHE_SIZE
    const long got[3] = {sysconf(_SC_LEVEL1_DCACHE_SIZE), sysconf(_SC_LEVEL2_CACHE_SIZE),
                         sysconf(_SC_LEVEL3_CACHE_SIZE)};
#else
    const long got[3] = {0, 0, 0};
#endif
    for (int i = 0; i < 3; i++) {
        out[i] = got[i] > 0 ? (double)got[i] : fallback[i];
        if (i && out[i] < out[i - 1]) out[i] = out[i - 1];
    }
    if (out[2] > 64e6) out[2] = 64e6;
    if (out[1] > out[2]) out[1] = out[2];
    if (out[0] > out[1]) out[0] = out[1];
}

void kb__roofline_measure(kb__machine *m)
{
    double caches[3];
    cache_sizes(caches);
    for (int i = 0; i < 3; i++) {
        m->level_bytes[i] = caches[i];
        m->bw_gbps[i] = triad_gbps((size_t)(caches[i] / 2));
    }
    /* well past any L3 above, and within a small machine's memory */
    m->level_bytes[3] = 8 * caches[2] > 384e6 ? 8 * caches[2] : 384e6;
    m->bw_gbps[3] = triad_gbps((size_t)m->level_bytes[3]);
    m->peak_gflops = peak_gflops();
}
