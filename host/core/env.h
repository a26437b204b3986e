/*
 * env.h -- the machine a trial ran on (env.c): what every verdict carries
 * so that two verdicts can be told apart by their machine, and so that a
 * verdict timed on a busy or stolen-from CPU says so.
 */
#ifndef KB_ENV_H
#define KB_ENV_H

#include <stddef.h>
#include <stdint.h>

/* A trial whose CPU time was stolen by the hypervisor this much or more
 * (percent of all CPU time, /proc/stat) has its reason say that its timing
 * is noisy; so has one that started with a load average at or above the
 * number of online CPUs. */
#define KB__ENV_STEAL_NOISY_PCT 5.0

typedef struct kb__env {
    char cpu_model[128];     /* "model name" of /proc/cpuinfo, else the architecture */
    char isa[256];           /* the KB_CPU_* features present, kb__cpu_feature_names */
    char kernel[96];         /* uname's release */
    char governor[32];       /* cpu0's cpufreq governor, or "n/a" */
    char boost[16];          /* "on", "off" or "n/a" */
    char smt[16];            /* "on", "off" or "n/a" */
    char cpu_quota[64];      /* the cgroup's CPU quota, or "none" */
    char hypervisor[64];     /* "none", or who: "KVM", "Hyper-V", ... */
    char pti[64];            /* page-table isolation, kb__env_parse_pti */
    char version[32];        /* this kbench */
    double load_avg;         /* 1-minute load average at the start; NAN unknown */
    long cpus;               /* online CPUs */
    double steal_pct;        /* steal over the trial, % of all CPU time; NAN unknown */
    uint64_t steal0, total0; /* /proc/stat at the start (kb__env_begin) */
    int stat0_ok;
} kb__env;

/* At the start of a trial: everything but steal_pct, and the /proc/stat
 * reading steal_pct starts from. */
void kb__env_begin(kb__env *e);
/* At its end: steal_pct since kb__env_begin. */
void kb__env_end(kb__env *e);
/* "; steal 12% during the trial: timing noisy" and/or the same for the
 * load average, for a verdict's reason; "" when neither reaches its
 * threshold. */
void kb__env_noise_note(const kb__env *e, char *out, size_t len);
/* The CPU model (also the ledger's `machine` column). */
void kb__env_cpu_model(char *out, size_t len);

/* ---- parsers of the kernel's text, apart for tests ------------------ */
/* The aggregate "cpu " line of /proc/stat's text: steal ticks and all
 * ticks (user nice system idle iowait irq softirq steal; guest time is
 * already in user). 0, or -1 when the text has no such line. */
int kb__env_parse_stat(const char *text, uint64_t *steal, uint64_t *total);
/* Steal as % of all ticks between two readings; NAN when no tick passed
 * or the counters went backwards. */
double kb__env_steal_pct(uint64_t steal0, uint64_t total0, uint64_t steal1, uint64_t total1);
/* A cgroup v2 cpu.max's text ("max 100000", "150000 100000") as the
 * verdict shows it: "none", or "1.50 CPUs (150000/100000)". -1 when the
 * text is not one. */
int kb__env_parse_cpu_max(const char *text, char *out, size_t len);
/* Page-table isolation from the kernel's meltdown line
 * (/sys/devices/system/cpu/vulnerabilities/meltdown; NULL when absent) and
 * whether the CPU flags list pcid: "off", "on", or, where every system
 * call then empties the TLB, KB__ENV_PTI_FLUSH; "n/a" without the line. */
#define KB__ENV_PTI_FLUSH "on, no PCID: every system call empties the TLB"
void kb__env_parse_pti(const char *meltdown, int pcid, char *out, size_t len);

#endif /* KB_ENV_H */
