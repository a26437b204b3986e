/*
 * env.c -- the machine a trial ran on: CPU, features, kernel, frequency
 * policy, SMT, load, hypervisor steal, cgroup quota, hypervisor and
 * page-table isolation.
 *
 * Everything is read from files the kernel exports (and CPUID); what is
 * missing reads "n/a" or "none", never an error: a verdict is given on any
 * machine. Steal is the one figure taken over the trial, because it is the
 * noise a VM hides best: the hypervisor takes the CPU away and the guest
 * only sees its clock jump.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "env.h"
#include "kb.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#ifndef KB_VERSION
#define KB_VERSION "unknown"
#endif

/* The first line of a small file, without its newline; -1 when unreadable
 * or empty. */
static int first_line(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    const int ok = fgets(out, (int)len, f) != NULL;
    fclose(f);
    if (!ok) return -1;
    out[strcspn(out, "\n")] = 0;
    return out[0] ? 0 : -1;
}

/* Up to len - 1 bytes of a file, NUL-terminated; -1 when unreadable. */
static int slurp(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    const size_t n = fread(out, 1, len - 1, f);
    fclose(f);
    out[n] = 0;
    return 0;
}

void kb__env_cpu_model(char *out, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[512];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (!colon || strncmp(line, "model name", 10)) continue;
        colon += 1 + strspn(colon + 1, " \t");
        snprintf(out, len, "%.*s", (int)strcspn(colon, "\n"), colon);
        break;
    }
    if (f) fclose(f);
    struct utsname u;
    if (!out[0] && uname(&u) == 0) snprintf(out, len, "%s", u.machine);
}

/* A 0/1 file read as on/off (inverted: 1 means off), else "n/a". */
static int on_off(const char *path, int inverted, char *out, size_t len)
{
    char v[16];
    if (first_line(path, v, sizeof v) != 0 || (v[0] != '0' && v[0] != '1')) return -1;
    snprintf(out, len, "%s", (v[0] == '1') != inverted ? "on" : "off");
    return 0;
}

static void freq_policy(kb__env *e)
{
    if (first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", e->governor,
                   sizeof e->governor) != 0)
        snprintf(e->governor, sizeof e->governor, "n/a");
    if (on_off("/sys/devices/system/cpu/cpufreq/boost", 0, e->boost, sizeof e->boost) != 0 &&
        on_off("/sys/devices/system/cpu/intel_pstate/no_turbo", 1, e->boost, sizeof e->boost) != 0)
        snprintf(e->boost, sizeof e->boost, "n/a");
    if (on_off("/sys/devices/system/cpu/smt/active", 0, e->smt, sizeof e->smt) != 0)
        snprintf(e->smt, sizeof e->smt, "n/a");
}

int kb__env_parse_stat(const char *text, uint64_t *steal, uint64_t *total)
{
    const char *p = text;
    while (p && strncmp(p, "cpu ", 4)) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p) return -1;
    unsigned long long v[8] = {0};
    const int n = sscanf(p + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                         &v[3], &v[4], &v[5], &v[6], &v[7]);
    if (n < 4) return -1;
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    *steal = v[7];
    return 0;
}

double kb__env_steal_pct(uint64_t steal0, uint64_t total0, uint64_t steal1, uint64_t total1)
{
    if (total1 <= total0 || steal1 < steal0) return NAN;
    return 100.0 * (double)(steal1 - steal0) / (double)(total1 - total0);
}

static int read_stat(uint64_t *steal, uint64_t *total)
{
    char text[4096];
    if (slurp("/proc/stat", text, sizeof text) != 0) return -1;
    return kb__env_parse_stat(text, steal, total);
}

/* cpu.max's numbers: *cpus is quota / period, INFINITY for "max". */
static int cpu_max(const char *text, double *quota, double *period, double *cpus)
{
    char q[32];
    if (sscanf(text, "%31s %lf", q, period) != 2 || !(*period > 0)) return -1;
    if (!strcmp(q, "max")) {
        *quota = -1;
        *cpus = INFINITY;
        return 0;
    }
    char *end;
    *quota = strtod(q, &end);
    if (*end || !(*quota > 0)) return -1;
    *cpus = *quota / *period;
    return 0;
}

int kb__env_parse_cpu_max(const char *text, char *out, size_t len)
{
    double quota, period, cpus;
    if (cpu_max(text, &quota, &period, &cpus) != 0) return -1;
    if (isinf(cpus))
        snprintf(out, len, "none");
    else
        snprintf(out, len, "%.2f CPUs (%.0f/%.0f)", cpus, quota, period);
    return 0;
}

/* The tightest cpu.max from this process's cgroup (v2) up to the root; a
 * parent's quota bounds every child. 0 when one was found. */
static int quota_v2(char *out, size_t len)
{
    char cg[1024], path[1200], text[128], best[64] = "";
    double best_cpus = INFINITY;
    if (slurp("/proc/self/cgroup", cg, sizeof cg) != 0) return -1;
    const char *p = strstr(cg, "0::");
    if (p != cg && (!p || p[-1] != '\n')) p = NULL;
    char rel[1024] = "";
    if (p) snprintf(rel, sizeof rel, "%.*s", (int)strcspn(p + 3, "\n"), p + 3);
    for (int found = 0;;) {
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", rel);
        double q, per, cpus;
        if (first_line(path, text, sizeof text) == 0 && cpu_max(text, &q, &per, &cpus) == 0) {
            found = 1;
            if (cpus < best_cpus) {
                best_cpus = cpus;
                kb__env_parse_cpu_max(text, best, sizeof best);
            }
        }
        char *slash = strrchr(rel, '/');
        if (!slash) {
            if (found) snprintf(out, len, "%s", best[0] ? best : "none");
            return found ? 0 : -1;
        }
        *slash = 0;
    }
}

/* cgroup v1's cpu controller, as this process's mount namespace shows it. */
static int quota_v1(char *out, size_t len)
{
    static const char *const dirs[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[96], q[32], per[32], text[80];
        snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dirs[i]);
        if (first_line(path, q, sizeof q) != 0) continue;
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dirs[i]);
        if (first_line(path, per, sizeof per) != 0) continue;
        snprintf(text, sizeof text, "%s %s", q[0] == '-' ? "max" : q, per);
        if (kb__env_parse_cpu_max(text, out, len) == 0) return 0;
    }
    return -1;
}

static void hypervisor(char *out, size_t len)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 31))) {
        static const struct {
            const char *sig, *name;
        } known[] = {{"KVMKVMKVM", "KVM"},         {"Microsoft Hv", "Hyper-V"},
                     {"VMwareVMware", "VMware"},   {"XenVMMXenVMM", "Xen"},
                     {"TCGTCGTCGTCG", "QEMU TCG"}, {"ACRNACRNACRN", "ACRN"},
                     {"bhyve bhyve ", "bhyve"},    {" lrpepyh  vr", "Parallels"}};
        char sig[13];
        /* leaf 0x40000000 is the hypervisor's, present when bit 31 is set;
         * __get_cpuid would refuse it as above the basic leaves */
        __cpuid(0x40000000, a, b, c, d);
        memcpy(sig, &b, 4);
        memcpy(sig + 4, &c, 4);
        memcpy(sig + 8, &d, 4);
        sig[12] = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcmp(sig, known[i].sig)) {
                snprintf(out, len, "%s", known[i].name);
                return;
            }
        for (char *s = sig; *s; s++)
            if (*s < 0x20 || *s > 0x7e) *s = '?';
        snprintf(out, len, "%s", sig[0] ? sig : "unknown");
        return;
    }
#endif
    if (first_line("/sys/hypervisor/type", out, len) != 0) snprintf(out, len, "none");
}

void kb__env_parse_pti(const char *meltdown, int pcid, char *out, size_t len)
{
    if (!meltdown)
        snprintf(out, len, "n/a");
    else if (!strstr(meltdown, "PTI"))
        snprintf(out, len, "off");
    else
        snprintf(out, len, "%s", pcid ? "on" : KB__ENV_PTI_FLUSH);
}

/* Whether the first "flags" line of /proc/cpuinfo lists pcid. */
static int has_pcid(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[8192];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5)) continue;
        found = strstr(line, " pcid ") != NULL || strstr(line, " pcid\n") != NULL;
        break;
    }
    if (f) fclose(f);
    return found;
}

/* A kernel that isolates page tables switches them at every entry; without
 * PCID that empties the TLB, so code that runs right after a system call
 * walks the page tables again (docs/lab/fresh-probe.md has a figure). */
static void pti(char *out, size_t len)
{
    char line[160];
    const int ok =
        first_line("/sys/devices/system/cpu/vulnerabilities/meltdown", line, sizeof line) == 0;
    kb__env_parse_pti(ok ? line : NULL, ok && has_pcid(), out, len);
}

void kb__env_begin(kb__env *e)
{
    memset(e, 0, sizeof *e);
    kb__env_cpu_model(e->cpu_model, sizeof e->cpu_model);
    kb__cpu_feature_names(kb__cpu_features(), e->isa, sizeof e->isa);
    if (!e->isa[0]) snprintf(e->isa, sizeof e->isa, "none");
    struct utsname u;
    snprintf(e->kernel, sizeof e->kernel, "%s", uname(&u) == 0 ? u.release : "n/a");
    freq_policy(e);
    if (quota_v2(e->cpu_quota, sizeof e->cpu_quota) != 0 &&
        quota_v1(e->cpu_quota, sizeof e->cpu_quota) != 0)
        snprintf(e->cpu_quota, sizeof e->cpu_quota, "none");
    hypervisor(e->hypervisor, sizeof e->hypervisor);
    pti(e->pti, sizeof e->pti);
    snprintf(e->version, sizeof e->version, "%s", KB_VERSION);
    double l[1];
    e->load_avg = getloadavg(l, 1) == 1 ? l[0] : NAN;
    e->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    e->steal_pct = NAN;
    e->stat0_ok = read_stat(&e->steal0, &e->total0) == 0;
}

void kb__env_end(kb__env *e)
{
    uint64_t steal, total;
    if (e->stat0_ok && read_stat(&steal, &total) == 0)
        e->steal_pct = kb__env_steal_pct(e->steal0, e->total0, steal, total);
}

void kb__env_noise_note(const kb__env *e, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    if (e->steal_pct >= KB__ENV_STEAL_NOISY_PCT)
        n += (size_t)snprintf(out, len, "; steal %.0f%% during the trial: timing noisy",
                              e->steal_pct);
    if (n < len && e->cpus > 0 && e->load_avg >= (double)e->cpus)
        snprintf(out + n, len - n, "; load average %.1f on %ld CPUs at the start: timing noisy",
                 e->load_avg, e->cpus);
}
