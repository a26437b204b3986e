/*
 * cli_calibrate.c -- `kbench calibrate`: this machine's roofs and, per
 * target, its noise floor from A/A trials (the oracle timed against a copy
 * of itself), stored in the state directory for every later verdict.
 */
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"

static const char HELP[] =
    "usage: kbench calibrate [--target T] [--trials N] [--budget S] [--oracles DIR]\n"
    "                        [--no-roofline]\n"
    "\n"
    "Measures this machine's memory bandwidth (STREAM triad at L1, L2, L3 and DRAM sizes)\n"
    "and single-core floating-point peak, then runs N A/A trials per target (the oracle\n"
    "against itself; default 5 of --budget 1 s) and stores the per-sample noise as the\n"
    "target's noise floor. Results go to $KBENCH_STATE_DIR (default ./.kbench): every\n"
    "verdict then reports roofline fractions and is inconclusive when, measured on a\n"
    "machine over 3x noisier than calibrated, it does not hold with its CI widened by\n"
    "that factor. Exit 0, or 1 if an A/A trial was kept (the machine cannot be\n"
    "trusted), 64 on usage errors.\n";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int calibrate_target(const char *target, const char *oracles, int trials, double budget)
{
    char opath[PATH_MAX], err[1024];
    if (kb__oracle_find(target, oracles, opath, sizeof opath, err, sizeof err) != 0) {
        fprintf(stderr, "kbench: %s\n", err);
        return KB__EXIT_USAGE;
    }
    kb__ctx_cache cache;
    memset(&cache, 0, sizeof cache);
    kb__result *r = calloc(1, sizeof *r);
    double noise[64], geo[64];
    int n = 0, kept = 0;
    for (int i = 0; i < trials && i < 64; i++) {
        kb__trial_opts o;
        kb__trial_opts_init(&o);
        o.candidate = opath;
        o.oracles_dir = oracles;
        o.budget = budget;
        o.exe = kb__self_exe();
        memset(r, 0, sizeof *r);
        if (kb__trial_run(&o, &cache, r, err, sizeof err) != 0) {
            fprintf(stderr, "kbench: %s\n", err);
            break;
        }
        if (r->status == KB__ST_KEEP) kept++;
        if (isfinite(r->noise_pct) && isfinite(r->geomean.est)) {
            noise[n] = r->noise_pct;
            geo[n++] = r->geomean.est;
        }
        fprintf(stderr, "  A/A %d/%d: %s, geomean %.4f, noise %.2f%%\n", i + 1, trials,
                kb__status_name(r->status), r->geomean.est, r->noise_pct);
    }
    kb__ctx_cache_free(&cache);
    free(r);
    if (n == 0) {
        fprintf(stderr, "kbench: no A/A trial of %s finished; nothing stored\n", target);
        return 3;
    }
    qsort(noise, (size_t)n, sizeof *noise, cmp_double);
    qsort(geo, (size_t)n, sizeof *geo, cmp_double);
    const double floor_pct = n % 2 ? noise[n / 2] : 0.5 * (noise[n / 2 - 1] + noise[n / 2]);
    if (kb__noise_save(target, floor_pct, geo[0], geo[n - 1], n, err, sizeof err) != 0) {
        fprintf(stderr, "kbench: %s\n", err);
        return KB__EXIT_SOFTWARE;
    }
    printf("---\ntarget: %s\naa_trials: %d\naa_kept: %d\naa_geomean_min: %.4f\n"
           "aa_geomean_max: %.4f\nnoise_floor_pct: %.3f\n",
           target, n, kept, geo[0], geo[n - 1], floor_pct);
    return kept ? 1 : 0;
}

int kb__cli_calibrate(int argc, char **argv)
{
    struct option opts[8];
    kb__longopts("target trials budget oracles no-roofline help", opts,
                 sizeof opts / sizeof opts[0]);
    const char *target = NULL, *oracles = NULL;
    int trials = 5, roof = 1;
    double budget = 1.0;
    const kb__cmdline cl = {"calibrate", HELP, "h", opts};
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        switch (c) {
        case 't': target = optarg; break;
        case 'n': trials = atoi(optarg); break;
        case 'b': budget = atof(optarg); break;
        case 'o': oracles = optarg; break;
        case 'r': roof = 0; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: return KB__EXIT_USAGE;
        }
    }
    if (optind != argc || trials < 1 || trials > 64 || !(budget > 0 && budget <= 600)) {
        fputs("kbench calibrate: --trials must be 1..64 and --budget in (0, 600]\n", stderr);
        return kb__usage("calibrate", HELP);
    }
    char err[512];
    if (roof) {
        kb__machine m;
        memset(&m, 0, sizeof m);
        kb__roofline_measure(&m);
        if (kb__machine_save(&m, err, sizeof err) != 0) {
            fprintf(stderr, "kbench: %s\n", err);
            return KB__EXIT_SOFTWARE;
        }
        printf("---\nmachine: roofline\nbw_l1_gbps: %.1f\nbw_l2_gbps: %.1f\nbw_l3_gbps: %.1f\n"
               "bw_dram_gbps: %.1f\npeak_gflops: %.1f\n"
               "l1_bytes: %.0f\nl2_bytes: %.0f\nl3_bytes: %.0f\ndram_bytes: %.0f\n",
               m.bw_gbps[0], m.bw_gbps[1], m.bw_gbps[2], m.bw_gbps[3], m.peak_gflops,
               m.level_bytes[0], m.level_bytes[1], m.level_bytes[2], m.level_bytes[3]);
    }
    if (target) return calibrate_target(target, oracles, trials, budget);
    /* Every target built next to this kbench. */
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", kb__self_exe());
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    strncat(dir, "/oracles", sizeof dir - strlen(dir) - 1);
    DIR *d = opendir(oracles ? oracles : dir);
    if (!d) {
        fprintf(stderr, "kbench: no oracles in %s; pass --target T or --oracles DIR\n",
                oracles ? oracles : dir);
        return KB__EXIT_USAGE;
    }
    int worst = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char probe[PATH_MAX * 2];
        snprintf(probe, sizeof probe, "%s/%s/oracle.so", oracles ? oracles : dir, e->d_name);
        if (access(probe, R_OK) != 0) continue;
        int rc = calibrate_target(e->d_name, oracles, trials, budget);
        if (rc > worst) worst = rc;
    }
    closedir(d);
    return worst;
}
