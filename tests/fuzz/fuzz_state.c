/*
 * fuzz_state.c -- the state directory's files as the host finds them: any
 * bytes in machine.txt (kb__machine_load), <target>/noise.txt
 * (kb__noise_load) and <target>/best.tsv (kb__best_load). They are written
 * by kbench, but a crash, a full disk or a hand edit can leave anything.
 *
 * Input: a mode byte (bits 0-1: best.so is absent, the input bytes, or
 * BEST_SO, whose digest a seed can name so the fuzzer reaches an accepted
 * best; the rest sizes the caller's `when` buffer, which is exactly that big
 * so a write past it is an ASan error), then the contents given to all
 * three files.
 *
 * Properties: a load that succeeds yields finite numbers and terminated
 * strings; best.tsv is accepted only with a 16-character digest that
 * matches best.so.
 */
#include <math.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "kb.h"
#include "cli.h"
#include "report.h"
#include "session.h"

static const char TARGET[] = "fz";
/* A best.so a seed can name: its digest is BEST_SO_DIGEST (checked). */
static const char BEST_SO[] = "kbench fuzz best.so\n";
#define BEST_SO_DIGEST "85497d51eee76924"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[512], tdir[600];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", fz_dir());
        setenv("KBENCH_STATE_DIR", dir, 1);
        snprintf(tdir, sizeof tdir, "%s/%s", dir, TARGET);
        FZ_CHECK(mkdir(tdir, 0755) == 0, "mkdir %s", tdir);
        char lock[700];
        snprintf(lock, sizeof lock, "%s/.lock", tdir);
        fz_write_file(lock, "", 0);
        char hex[17];
        kb__hex64(kb__hash(BEST_SO, sizeof BEST_SO - 1, 0), hex);
        FZ_CHECK(strcmp(hex, BEST_SO_DIGEST) == 0, "BEST_SO's digest is %s", hex);
    }
    fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    char path[700];
    snprintf(path, sizeof path, "%s/machine.txt", dir);
    fz_write_file(path, in.p, in.n);
    snprintf(path, sizeof path, "%s/noise.txt", tdir);
    fz_write_file(path, in.p, in.n);
    snprintf(path, sizeof path, "%s/best.tsv", tdir);
    fz_write_file(path, in.p, in.n);
    snprintf(path, sizeof path, "%s/best.so", tdir);
    if ((mode & 3) == 0)
        unlink(path);
    else if ((mode & 3) == 1)
        fz_write_file(path, in.p, in.n);
    else
        fz_write_file(path, BEST_SO, sizeof BEST_SO - 1);

    kb__machine m;
    int mrc = kb__machine_load(&m);
    fz_note("machine_load", mrc, NULL);
    if (mrc == 0) {
        for (int i = 0; i < 4; i++)
            FZ_CHECK(isfinite(m.bw_gbps[i]) && isfinite(m.level_bytes[i]), "level %d", i);
        FZ_CHECK(isfinite(m.peak_gflops), "peak_gflops");
        FZ_CHECK(memchr(m.when, '\0', sizeof m.when), "when not terminated");
        double roof = kb__machine_roof(&m, (double)(mode * 4096));
        FZ_CHECK(isfinite(roof), "roof %g", roof);
    }

    size_t when_len = 1 + (mode >> 2) % 40;
    char *when = fz_keep(malloc(when_len));
    memset(when, 'X', when_len); /* so an unset `when` shows without MSan */
    double pct = 0;
    int nrc = kb__noise_load(TARGET, &pct, when, when_len);
    fz_note("noise_load", nrc, NULL);
    if (nrc == 0) {
        FZ_CHECK(isfinite(pct), "noise %g", pct);
        FZ_CHECK(memchr(when, '\0', when_len), "when not terminated");
    }
    if (kb__noise_load(TARGET, &pct, NULL, 0) == 0) FZ_CHECK(isfinite(pct), "noise %g", pct);

    static kb__best b;
    char err[512] = "";
    int rc = kb__best_load(dir, TARGET, &b, err, sizeof err);
    fz_note(b.exists ? "best_load (a best)" : "best_load", rc, err);
    FZ_CHECK(rc <= 0, "rc %d", rc);
    if (rc)
        FZ_CHECK(err[0] && !strchr(err, '\n'), "bad message: '%s'", err);
    else if (b.exists) {
        FZ_CHECK(strlen(b.digest) == 16, "digest '%s'", b.digest);
        FZ_CHECK(mode & 3, "a best without best.so");
        FZ_CHECK(memchr(b.line, '\0', sizeof b.line) && memchr(b.source, '\0', sizeof b.source),
                 "strings not terminated");
    }
    fz_free_all();
    return 0;
}
