/*
 * cpu.c -- which KB_CPU_* features this machine can run, and how large its
 * last-level cache is.
 *
 * A feature counts only when the CPU has it and the OS saves its register
 * state: AVX code on a kernel that does not enable YMM state faults, so the
 * CPUID bits alone are not enough (Intel SDM vol. 1, 13.3).
 */
#include <stdio.h>
#include <stdlib.h>

#include "kb.h"

#if defined(__x86_64__)
#include <cpuid.h>
#ifndef bit_AVX512VP2INTERSECT           /* older clang's cpuid.h lacks it */
#define bit_AVX512VP2INTERSECT (1u << 8) /* CPUID.(7,0):EDX */
#endif

static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    /* xgetbv by opcode so the file needs no -mxsave. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

uint64_t kb__cpu_features(void)
{
    unsigned a, b, c, d;
    uint64_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    uint64_t xcr = (c & bit_OSXSAVE) ? xcr0() : 0;
    int ymm = (xcr & 0x6) == 0x6;          /* XMM and YMM state */
    int zmm = ymm && (xcr & 0xe0) == 0xe0; /* opmask, ZMM0-15 upper, ZMM16-31 */
    if (c & bit_SSE4_2) f |= KB_CPU_SSE42;
    if (c & bit_POPCNT) f |= KB_CPU_POPCNT;
    if (ymm && (c & bit_AVX)) f |= KB_CPU_AVX;
    if (ymm && (c & bit_FMA)) f |= KB_CPU_FMA;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) /* checks the max leaf too */
        return f;
    if (ymm && (b & bit_AVX2)) f |= KB_CPU_AVX2;
    if (b & bit_BMI2) f |= KB_CPU_BMI2;
    if (zmm && (b & bit_AVX512F)) {
        f |= KB_CPU_AVX512F;
        if (b & bit_AVX512BW) f |= KB_CPU_AVX512BW;
        if (b & bit_AVX512VL) f |= KB_CPU_AVX512VL;
        if (b & bit_AVX512DQ) f |= KB_CPU_AVX512DQ;
        if (c & bit_AVX512VNNI) f |= KB_CPU_AVX512VNNI;
        if (c & bit_AVX512VBMI2) f |= KB_CPU_AVX512VBMI2;
        if (d & bit_AVX512VP2INTERSECT) f |= KB_CPU_AVX512VP2INTERSECT;
    }
    return f;
}

#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>

uint64_t kb__cpu_features(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    uint64_t f = 0;
    if (hw & HWCAP_ASIMD) f |= KB_CPU_NEON;
    if (hw & HWCAP_SVE) f |= KB_CPU_SVE;
    return f;
}

#else
#error "kbench hosts are x86-64 or aarch64"
#endif

static const struct {
    uint64_t bit;
    const char *name;
} kb__cpu_names[] = {
    {KB_CPU_SSE42, "sse4.2"},
    {KB_CPU_POPCNT, "popcnt"},
    {KB_CPU_AVX, "avx"},
    {KB_CPU_AVX2, "avx2"},
    {KB_CPU_FMA, "fma"},
    {KB_CPU_BMI2, "bmi2"},
    {KB_CPU_AVX512F, "avx512f"},
    {KB_CPU_AVX512BW, "avx512bw"},
    {KB_CPU_AVX512VL, "avx512vl"},
    {KB_CPU_AVX512DQ, "avx512dq"},
    {KB_CPU_AVX512VNNI, "avx512vnni"},
    {KB_CPU_AVX512VBMI2, "avx512vbmi2"},
    {KB_CPU_AVX512VP2INTERSECT, "avx512vp2intersect"},
    {KB_CPU_NEON, "neon"},
    {KB_CPU_SVE, "sve"},
};

void kb__cpu_feature_names(uint64_t bits, char *out, size_t out_len)
{
    if (out_len == 0) return;
    out[0] = '\0';
    size_t o = 0;
    for (int i = 0; i < 64 && o < out_len; i++) {
        uint64_t bit = UINT64_C(1) << i;
        if (!(bits & bit)) continue;
        const char *name = NULL;
        for (size_t k = 0; k < sizeof kb__cpu_names / sizeof kb__cpu_names[0]; k++)
            if (kb__cpu_names[k].bit == bit) name = kb__cpu_names[k].name;
        /* A bit this host does not know (a newer plugin's) is still named. */
        int n = name ? snprintf(out + o, out_len - o, "%s%s", o ? " " : "", name)
                     : snprintf(out + o, out_len - o, "%sbit%d", o ? " " : "", i);
        o += n > 0 ? (size_t)n : 0;
    }
}

/* The kernel's cache topology, not sysconf(_SC_LEVEL3_CACHE_SIZE): glibc
 * derives that from CPUID, which on this project's VM says 320 MiB where
 * sysfs and lscpu say 32 MiB; a working set sized by it would be ten times
 * too large. Reads cpu0's cache index i: its level, whether it holds data
 * (not instructions only), and its size; 0 when there is no such index. */
static int cache_index(int i, int *level, int *data, uint64_t *bytes)
{
    static const char *const what[3] = {"level", "type", "size"};
    char vals[3][32];
    for (int k = 0; k < 3; k++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/%s", i, what[k]);
        FILE *f = fopen(path, "r");
        if (!f) return 0;
        const int ok = fgets(vals[k], sizeof vals[k], f) != NULL;
        fclose(f);
        if (!ok) return 0;
    }
    unsigned long long v = 0;
    char unit = 0;
    if (sscanf(vals[2], "%llu%c", &v, &unit) < 1) return 0;
    if (unit == 'K')
        v <<= 10;
    else if (unit == 'M')
        v <<= 20;
    else if (unit == 'G')
        v <<= 30;
    *level = atoi(vals[0]);
    *data = vals[1][0] != 'I'; /* Data, Unified; Instruction */
    *bytes = v;
    return 1;
}

/* The largest cache cpu0 uses is the last level, whatever its number. */
uint64_t kb__llc_bytes(void)
{
    uint64_t best = 0, v;
    int level, data;
    for (int i = 0; i < 16; i++)
        if (cache_index(i, &level, &data, &v) && v > best) best = v;
    return best ? best : KB__LLC_FALLBACK;
}

uint64_t kb__l2_bytes(void)
{
    uint64_t v;
    int level, data;
    for (int i = 0; i < 16; i++)
        if (cache_index(i, &level, &data, &v) && level == 2 && data && v) return v;
    return KB__L2_FALLBACK;
}
