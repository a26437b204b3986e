/*
 * fuzz_ledger.c -- the ledger as the host finds it on disk: any bytes at all
 * (a hand-edited file, a torn line from a full disk, some other file passed
 * to --ledger), then one kb__ledger_append, then `kbench log` reading it
 * back.
 *
 * Input: a mode byte, the result's description, candidate and target (all
 * free text as far as the ledger is concerned; the description comes from
 * the command line), its status and ratios, then the file's old contents.
 *
 * Properties of the append, checked by reading the file back:
 *  - refused: the file is byte-for-byte what it was;
 *  - accepted: the old contents were empty or a header-first ledger ending
 *    in a newline, and are unchanged; after them (and the header, if the
 *    file was empty) comes exactly one line of KB__LF_N2 tab-separated
 *    fields.
 * Mode bit 2 makes it a trial --against best (bit 3: promoted), bit 3 alone
 * a trial against the candidate's own path, so every baseline is written.
 */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "kb.h"
#include "cli.h"
#include "ledger.h"
#include "session.h"
#include "report.h"

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* kbench log prints a table; nobody needs to see it. */
static void run_log(const char *path, const char *target)
{
    fflush(stdout);
    int saved = dup(1), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    FZ_CHECK(saved >= 0 && null >= 0, "dup");
    dup2(null, 1);
    close(null);
    char *argv[] = {"log", "--ledger", (char *)path, "--target", (char *)target, NULL};
    int argc = target ? 5 : 3;
    if (!target)
        argv[3] = NULL;
    int rc = kb__cli_log(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FZ_CHECK(rc == 0 || rc == KB__EXIT_USAGE, "kbench log returned %d", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kb__result r; /* 15 KB: not on the stack */
    static const char header[] = KB__LEDGER_HEADER;
    fz_in in = {data, size};
    memset(&r, 0, sizeof r);
    uint8_t mode = fz_u8(&in);
    copy_text(r.description, sizeof r.description, fz_str(&in));
    copy_text(r.candidate, sizeof r.candidate, fz_str(&in));
    copy_text(r.target, sizeof r.target, fz_str(&in));
    copy_text(r.cand_digest, sizeof r.cand_digest, "0123456789abcdef");
    r.status = (kb__status)(fz_u8(&in) % (KB__ST_CORRECT + 1));
    r.geomean.est = fz_f64(&in);
    r.geomean.lo = fz_f64(&in);
    r.geomean.hi = fz_f64(&in);
    r.worst.est = fz_f64(&in);
    r.trial_seconds = fz_f64(&in);
    kb__best_info bi = {.used = 1, .had_best = 1, .oracle_ratio = r.worst.est};
    bi.promoted = (mode & 8) != 0;
    if (!(mode & 4) && (mode & 8)) copy_text(r.against, sizeof r.against, r.candidate);

    /* The old contents: what is left, or, with mode bit 0, the header
     * followed by what is left (so the fuzzer reaches past the header
     * check without having to find all 150 bytes of it). */
    size_t old_len = in.n + (mode & 1 ? sizeof header - 1 : 0);
    char *old = fz_keep(malloc(old_len + 1));
    if (mode & 1) {
        memcpy(old, header, sizeof header - 1);
        memcpy(old + sizeof header - 1, in.p, in.n);
    } else {
        memcpy(old, in.p, in.n);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/results.tsv", fz_dir());
    fz_write_file(path, old, old_len);

    char err[512] = "";
    int rc = kb__ledger_append(path, &r, mode & 4 ? &bi : NULL, err, sizeof err);
    fz_note("ledger_append", rc, err);
    size_t new_len;
    char *now = fz_keep(fz_read_file(path, &new_len));
    FZ_CHECK(rc <= 0, "rc %d", rc);
    if (rc != 0) {
        FZ_CHECK(err[0] && !strchr(err, '\n'), "bad message: '%s'", err);
        FZ_CHECK(new_len == old_len && memcmp(now, old, old_len) == 0,
                 "a refused append changed the file (%zu -> %zu bytes): %s", old_len, new_len,
                 err);
    } else {
        size_t hl = sizeof header - 1, start = old_len;
        if (old_len == 0) {
            FZ_CHECK(new_len >= hl && memcmp(now, header, hl) == 0, "no header in a new ledger");
            start = hl;
        } else {
            FZ_CHECK(old_len >= hl && memcmp(old, header, hl) == 0,
                     "appended to a file without the header");
            FZ_CHECK(old[old_len - 1] == '\n', "appended after an incomplete line");
            FZ_CHECK(new_len > old_len && memcmp(now, old, old_len) == 0,
                     "the old contents changed");
        }
        const char *line = now + start;
        size_t len = new_len - start;
        FZ_CHECK(len > 0 && line[len - 1] == '\n', "the line does not end in a newline");
        size_t tabs = 0;
        for (size_t i = 0; i < len; i++) {
            FZ_CHECK(line[i] != '\n' || i == len - 1, "the new line has a newline inside");
            FZ_CHECK(line[i] != '\0', "a NUL in the line");
            tabs += line[i] == '\t';
        }
        FZ_CHECK(tabs == KB__LF_N2 - 1, "%zu fields, not %d: %.*s", tabs + 1, KB__LF_N2, (int)len,
                 line);
    }

    /* The reader, on whatever is there now. */
    run_log(path, mode & 2 ? r.target : NULL);
    fz_free_all();
    return 0;
}
