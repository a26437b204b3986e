/*
 * state.c -- the state directory: what kbench remembers between runs.
 *
 * $KBENCH_STATE_DIR, else ./.kbench. Calibration lives here:
 * machine.txt (roofline) and <target>/noise.txt (A/A noise floor). Each is
 * a few "key: value" lines, written to a temporary file and renamed into
 * place, so a crash mid-write leaves the old file, never half a new one.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kb.h"

int kb__state_dir(char *out, size_t out_len, int create, char *err, size_t err_len)
{
    const char *d = getenv("KBENCH_STATE_DIR");
    snprintf(out, out_len, "%s", d && *d ? d : KB__STATE_DIR_DEFAULT);
    if (create && mkdir(out, 0755) != 0 && errno != EEXIST) {
        kb__errf(err, err_len, "cannot create state directory %s: %s; set KBENCH_STATE_DIR", out,
                 strerror(errno));
        return KB__EIO;
    }
    return 0;
}

static void now_iso(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes text to path atomically. */
static int write_atomic(const char *path, const char *text, char *err, size_t err_len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        kb__errf(err, err_len, "cannot write %s: %s", tmp, strerror(errno));
        return KB__EIO;
    }
    int ok = fputs(text, f) >= 0;
    ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        kb__errf(err, err_len, "cannot write %s: %s (disk full?)", path, strerror(errno));
        unlink(tmp);
        return KB__EIO;
    }
    return 0;
}

/* Reads "key: number" from a small state file; NAN when absent. */
static double read_key(const char *path, const char *key, char *sval, size_t sval_len)
{
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    char line[256];
    double v = NAN;
    const size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) || line[kl] != ':') continue;
        char *end;
        double x = strtod(line + kl + 1, &end);
        if (end != line + kl + 1 && isfinite(x)) v = x;
        if (sval) {
            snprintf(sval, sval_len, "%s", line + kl + 1 + (line[kl + 1] == ' '));
            sval[strcspn(sval, "\n")] = 0;
        }
        break;
    }
    fclose(f);
    return v;
}

int kb__machine_load(kb__machine *m)
{
    char dir[4096], path[4200];
    memset(m, 0, sizeof *m);
    kb__state_dir(dir, sizeof dir, 0, NULL, 0);
    snprintf(path, sizeof path, "%s/machine.txt", dir);
    static const char *bw[4] = {"bw_l1_gbps", "bw_l2_gbps", "bw_l3_gbps", "bw_dram_gbps"};
    static const char *sz[4] = {"l1_bytes", "l2_bytes", "l3_bytes", "dram_bytes"};
    for (int i = 0; i < 4; i++) {
        m->bw_gbps[i] = read_key(path, bw[i], NULL, 0);
        m->level_bytes[i] = read_key(path, sz[i], NULL, 0);
        if (!isfinite(m->bw_gbps[i]) || !isfinite(m->level_bytes[i])) return -1;
    }
    m->peak_gflops = read_key(path, "peak_gflops", NULL, 0);
    read_key(path, "calibrated", m->when, sizeof m->when);
    return isfinite(m->peak_gflops) ? 0 : -1;
}

int kb__machine_save(const kb__machine *m, char *err, size_t err_len)
{
    char dir[4096], path[4200], text[1024], when[32];
    if (kb__state_dir(dir, sizeof dir, 1, err, err_len) != 0) return KB__EIO;
    snprintf(path, sizeof path, "%s/machine.txt", dir);
    now_iso(when, sizeof when);
    snprintf(text, sizeof text,
             "calibrated: %s\nbw_l1_gbps: %.2f\nbw_l2_gbps: %.2f\nbw_l3_gbps: %.2f\n"
             "bw_dram_gbps: %.2f\nl1_bytes: %.0f\nl2_bytes: %.0f\nl3_bytes: %.0f\n"
             "dram_bytes: %.0f\npeak_gflops: %.2f\n",
             when, m->bw_gbps[0], m->bw_gbps[1], m->bw_gbps[2], m->bw_gbps[3], m->level_bytes[0],
             m->level_bytes[1], m->level_bytes[2], m->level_bytes[3], m->peak_gflops);
    return write_atomic(path, text, err, err_len);
}

int kb__machine_roof_level(const kb__machine *m, double bytes)
{
    for (int i = 0; i < 3; i++)
        if (bytes <= m->level_bytes[i]) return i;
    return 3;
}

double kb__machine_roof(const kb__machine *m, double bytes)
{
    return m->bw_gbps[kb__machine_roof_level(m, bytes)];
}

int kb__noise_load(const char *target, double *pct, char *when, size_t when_len)
{
    char dir[4096], path[4400];
    kb__state_dir(dir, sizeof dir, 0, NULL, 0);
    snprintf(path, sizeof path, "%s/%s/noise.txt", dir, target);
    if (when && when_len) when[0] = 0; /* a file without "calibrated:" leaves it unset */
    *pct = read_key(path, "noise_pct", NULL, 0);
    if (when) read_key(path, "calibrated", when, when_len);
    return isfinite(*pct) ? 0 : -1;
}

int kb__noise_save(const char *target, double pct, double aa_lo, double aa_hi, int trials,
                   char *err, size_t err_len)
{
    char dir[4096], path[4400], text[512], when[32];
    if (kb__state_dir(dir, sizeof dir, 1, err, err_len) != 0) return KB__EIO;
    snprintf(path, sizeof path, "%s/%s", dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        kb__errf(err, err_len, "cannot create %s: %s", path, strerror(errno));
        return KB__EIO;
    }
    snprintf(path, sizeof path, "%s/%s/noise.txt", dir, target);
    now_iso(when, sizeof when);
    snprintf(text, sizeof text,
             "calibrated: %s\nnoise_pct: %.3f\naa_geomean_min: %.4f\naa_geomean_max: %.4f\n"
             "aa_trials: %d\n",
             when, pct, aa_lo, aa_hi, trials);
    return write_atomic(path, text, err, err_len);
}
