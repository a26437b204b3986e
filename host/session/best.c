/*
 * best.c -- the best-so-far of a target, and trials `--against best`.
 *
 * An agent climbs by timing each new build against the best one so far, not
 * against the oracle: a 3% step is visible against a neighbour and lost in
 * the noise of a 5x gap. The best lives in a state directory:
 *
 *   <state>/<target>/best.so    a copy of the bytes that were measured
 *   <state>/<target>/best.tsv   key<TAB>value: its digest, its ratio against
 *                               the oracle, the oracle's digest, where it came
 *                               from and the ledger line that made it best
 *   <state>/<target>/.lock      flock: shared to read, exclusive to promote
 *
 * A keep promotes the candidate: its bytes are copied (and re-hashed, so a
 * file rebuilt since it was measured is never promoted) to a temporary file
 * that is renamed over best.so, under the exclusive lock, and only if the
 * best it was timed against is still the best. Every verdict also gets a
 * ratio against the oracle: chained (ratio to best x best's ratio to the
 * oracle, both measured on this oracle) for a trial against the best, and
 * measured by one more trial against the oracle when a keep makes a new best,
 * so the chain never runs through more than one estimate.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"
#include "paths.h"

/* --state DIR, else $KBENCH_STATE_DIR, else ./.kbench (state.c). */
static const char *state_root(const char *state_dir, char *buf, size_t len)
{
    char e[256];
    if (state_dir && *state_dir) return state_dir;
    if (kb__state_dir(buf, len, 0, e, sizeof e) != 0)
        snprintf(buf, len, "%s", KB__STATE_DIR_DEFAULT);
    return buf;
}

static int best_paths(const char *state_dir, const char *target, kb__best *b, char *err,
                      size_t err_len)
{
    if (!kb__is_target_name(target)) {
        kb__errf(err, err_len, "target name '%s' cannot name a state directory", target);
        return KB__EUSAGE;
    }
    char root[PATH_MAX];
    const char *sd = state_root(state_dir, root, sizeof root);
    if ((size_t)snprintf(b->dir, sizeof b->dir, "%s/%s", sd, target) >= sizeof b->dir ||
        (size_t)snprintf(b->so, sizeof b->so, "%s/best.so", b->dir) >= sizeof b->so) {
        kb__errf(err, err_len, "state directory path too long: %s", sd);
        return KB__EUSAGE;
    }
    return 0;
}

/* Opens (creating the directories when `create`) and locks <dir>/.lock.
 * Returns the fd, -1 when it does not exist and !create, -2 on error. */
static int lock_dir(const char *state_dir, const kb__best *b, int create, int how, char *err,
                    size_t err_len)
{
    char path[PATH_MAX + 8];
    if (create) {
        char root[PATH_MAX];
        const char *sd = state_root(state_dir, root, sizeof root);
        if ((mkdir(sd, 0755) != 0 && errno != EEXIST) ||
            (mkdir(b->dir, 0755) != 0 && errno != EEXIST)) {
            kb__errf(err, err_len, "%s: cannot create the state directory: %s", b->dir,
                     strerror(errno));
            return -2;
        }
    }
    snprintf(path, sizeof path, "%s/.lock", b->dir);
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) {
        if (!create && errno == ENOENT) return -1;
        kb__errf(err, err_len, "%s: %s", path, strerror(errno));
        return -2;
    }
    while (flock(fd, how) != 0) {
        if (errno == EINTR) continue;
        kb__errf(err, err_len, "%s: cannot lock: %s", path, strerror(errno));
        close(fd);
        return -2;
    }
    return fd;
}

/* Reads a regular file whole; a FIFO or device put at the path is never
 * opened (stat first) or, swapped in after the stat, never blocks. */
static int read_file(const char *path, char **out, size_t *len, uint64_t max)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(fd);
    if (!buf || n != (size_t)st.st_size) {
        free(buf);
        errno = EIO;
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* Whether the snapshot's file bytes alone hash to `hex` (the digest of a
 * best recorded before the digest took in the libraries it loads). */
static int file_only_digest(const kb__snapshot *s, const char *hex)
{
    void *map = mmap(NULL, (size_t)s->size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (map == MAP_FAILED) return 0;
    char h[17];
    kb__hex64(kb__hash(map, (size_t)s->size, 0), h);
    munmap(map, (size_t)s->size);
    return !strcmp(h, hex);
}

/* Parses best.tsv and checks best.so; the caller holds the lock. */
static int load_locked(kb__best *b, char *err, size_t err_len)
{
    char tsv[PATH_MAX + 16], *text = NULL;
    size_t len = 0;
    snprintf(tsv, sizeof tsv, "%s/best.tsv", b->dir);
    if (read_file(tsv, &text, &len, 1 << 20) != 0) {
        if (errno == ENOENT) return 0;
        kb__errf(err, err_len, "%s: cannot read: %s", tsv, strerror(errno));
        return KB__EIO;
    }
    b->oracle_ratio = NAN;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab) continue;
        *tab = 0;
        const char *v = tab + 1;
        if (!strcmp(line, "digest"))
            snprintf(b->digest, sizeof b->digest, "%s", v);
        else if (!strcmp(line, "oracle_digest"))
            snprintf(b->oracle_digest, sizeof b->oracle_digest, "%s", v);
        else if (!strcmp(line, "oracle_ratio"))
            b->oracle_ratio = strtod(v, NULL);
        else if (!strcmp(line, "source"))
            snprintf(b->source, sizeof b->source, "%s", v);
        else if (!strcmp(line, "ledger"))
            snprintf(b->line, sizeof b->line, "%s", v);
    }
    free(text);
    if (strlen(b->digest) != 16) {
        kb__errf(err, err_len, "%s has no digest line; remove %s to start the best-so-far over",
                 tsv, b->dir);
        return KB__ECORRUPT;
    }
    kb__snapshot s = {.fd = -1};
    char e2[512];
    if (kb__snapshot_take(b->so, &s, e2, sizeof e2) != 0) {
        kb__errf(err, err_len,
                 "%s is recorded in %s but cannot be read (%s); remove %s to start over", b->so,
                 tsv, e2, b->dir);
        return KB__ECORRUPT;
    }
    int same = !strcmp(s.digest_hex, b->digest);
    char got[17];
    snprintf(got, sizeof got, "%s", s.digest_hex);
    if (!same && file_only_digest(&s, b->digest)) {
        /* recorded before digests covered a plugin's libraries: same bytes */
        snprintf(b->digest, sizeof b->digest, "%s", got);
        same = 1;
    }
    kb__snapshot_close(&s);
    if (!same) {
        kb__errf(err, err_len,
                 "%s has digest %s but %s records %s: it was changed by hand; remove %s to start "
                 "the best-so-far over",
                 b->so, got, tsv, b->digest, b->dir);
        return KB__ECORRUPT;
    }
    b->exists = 1;
    return 0;
}

int kb__best_load(const char *state_dir, const char *target, kb__best *b, char *err, size_t err_len)
{
    memset(b, 0, sizeof *b);
    b->oracle_ratio = NAN;
    int rc = best_paths(state_dir, target, b, err, err_len);
    if (rc) return rc;
    int fd = lock_dir(state_dir, b, 0, LOCK_SH, err, err_len);
    if (fd == -1) return 0;
    if (fd < 0) return KB__EIO;
    rc = load_locked(b, err, err_len);
    close(fd);
    return rc;
}

/* Writes `len` bytes to <dir>/<name> through a temporary file and a rename. */
static int put_file(const char *dir, const char *name, const char *data, size_t len, char *err,
                    size_t err_len)
{
    char tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || kb__write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        kb__errf(err, err_len, "%s: cannot write: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        return KB__EIO;
    }
    close(fd);
    if (rename(tmp, dst) != 0) {
        kb__errf(err, err_len, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
        unlink(tmp);
        return KB__EIO;
    }
    return 0;
}

/* Makes the candidate of r the best, if the best is still `expect` ("" for
 * none). 0 promoted; 1 not (note says why); negative on an error. */
static int promote(const char *state_dir, const kb__result *r, const char *expect,
                   double oracle_ratio, kb__best_info *bi, char *err, size_t err_len)
{
    kb__best b;
    memset(&b, 0, sizeof b);
    int rc = best_paths(state_dir, r->target, &b, err, err_len);
    if (rc) return rc;
    int lfd = lock_dir(state_dir, &b, 1, LOCK_EX, err, err_len);
    if (lfd < 0) return KB__EIO;
    char *bytes = NULL;
    size_t len = 0;
    kb__best cur = b;
    if ((rc = load_locked(&cur, err, err_len)) != 0) goto out;
    if (strcmp(cur.exists ? cur.digest : "", expect)) {
        kb__errf(bi->note, sizeof bi->note,
                 "not promoted: another trial made %s the best while this one ran; time against "
                 "it again",
                 cur.exists ? cur.digest : "(none)");
        rc = 1;
        goto out;
    }
    /* The digest covers the libraries the plugin loads (closure.c): take it
     * the way the trial did, and keep the bytes of that very snapshot. */
    kb__snapshot snap = {.fd = -1};
    char e2[512];
    if (kb__snapshot_take(r->candidate, &snap, e2, sizeof e2) != 0 ||
        !(bytes = malloc(snap.size ? snap.size : 1)) ||
        pread(snap.fd, bytes, snap.size, 0) != (ssize_t)snap.size) {
        kb__errf(bi->note, sizeof bi->note, "not promoted: cannot read %s again: %s", r->candidate,
                 snap.fd < 0 ? e2 : strerror(errno));
        kb__snapshot_close(&snap);
        rc = 1;
        goto out;
    }
    len = snap.size;
    char hex[17];
    snprintf(hex, sizeof hex, "%s", snap.digest_hex);
    kb__snapshot_close(&snap);
    if (strcmp(hex, r->cand_digest)) {
        kb__errf(bi->note, sizeof bi->note,
                 "not promoted: %s changed since it was measured (now %s, measured %s)",
                 r->candidate, hex, r->cand_digest);
        rc = 1;
        goto out;
    }
    char line[4 * PATH_MAX], tsv[6 * PATH_MAX];
    kb__best_info made = *bi;
    made.promoted = 1;
    if (kb__ledger_format(r, &made, line, sizeof line) < 0) line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    int n = snprintf(
        tsv, sizeof tsv,
        "# kbench best-so-far of %s; written by `kbench trial --against best`, do not edit\n"
        "target\t%s\ndigest\t%s\noracle_digest\t%s\noracle_ratio\t%.6f\nsource\t%s\nledger\t%s\n",
        r->target, r->target, hex, r->oracle_digest, oracle_ratio, r->candidate, line);
    if (n < 0 || (size_t)n >= sizeof tsv) n = (int)strlen(tsv);
    /* best.so first: a reader holding the shared lock sees both or neither,
     * and one that ignores the lock sees a digest mismatch, never a silent
     * mix of one candidate's bytes and another's record. */
    if ((rc = put_file(b.dir, "best.so", bytes, len, err, err_len)) != 0 ||
        (rc = put_file(b.dir, "best.tsv", tsv, (size_t)n, err, err_len)) != 0)
        goto out;
    bi->promoted = 1;
    kb__errf(bi->note, sizeof bi->note, "promoted: %s (digest %s) is the new best", b.so, hex);
out:
    free(bytes);
    close(lfd);
    return rc;
}

/* The baseline of a trial --against best, picked once the candidate's
 * worker has named its target (kb__trial_opts.baseline_for): no worker of
 * its own, and the candidate is never loaded in this process. */
typedef struct kb__best_pick {
    const char *state_dir;
    int asked; /* the candidate named its target */
    kb__best b;
} kb__best_pick;

static int pick_baseline(void *arg, const char *target, const char **path, char *err,
                         size_t err_len)
{
    kb__best_pick *p = arg;
    p->asked = 1;
    int rc = kb__best_load(p->state_dir, target, &p->b, err, err_len);
    *path = rc == 0 && p->b.exists ? p->b.so : NULL;
    return rc;
}

/* A keep against the best, timed once more against the oracle itself:
 * 0 with bi's ratio measured, or -1 with bi->note saying why it may not be
 * promoted. A new best must pass that trial too: one that ends incorrect,
 * crashed or untimed there (or measured another file) is not promoted on
 * a chained ratio. */
static int against_oracle(const kb__trial_opts *o, kb__ctx_cache *cache, const kb__result *r,
                          kb__best_info *bi, char *err, size_t err_len)
{
    kb__result *r2 = calloc(1, sizeof *r2);
    kb__trial_opts o2 = *o;
    o2.against = NULL;
    const int rc2 = r2 ? kb__trial_run(&o2, cache, r2, err, err_len) : KB__ENOMEM;
    int rc = -1;
    if (rc2 == 0 && kb__status_timed(r2->status) && !strcmp(r2->cand_digest, r->cand_digest)) {
        bi->oracle_ratio = r2->geomean.est;
        bi->oracle_ratio_source = "measured";
        rc = 0;
    } else if (rc2 != 0) {
        snprintf(bi->note, sizeof bi->note,
                 "not promoted: its trial against the oracle could not run: %.200s",
                 r2 ? err : "out of memory");
    } else if (!kb__status_timed(r2->status)) {
        snprintf(bi->note, sizeof bi->note,
                 "not promoted: its trial against the oracle ended %s: %.200s",
                 kb__status_name(r2->status), r2->reason);
    } else {
        snprintf(bi->note, sizeof bi->note,
                 "not promoted: the file changed between its two trials");
    }
    free(r2);
    return rc;
}

int kb__trial_best(const kb__trial_opts *o, const char *state_dir, kb__ctx_cache *cache,
                   kb__result *r, kb__best_info *bi, char *err, size_t err_len)
{
    memset(bi, 0, sizeof *bi);
    bi->used = 1;
    bi->oracle_ratio = NAN;
    bi->oracle_ratio_source = "n/a";
    kb__ctx_cache local;
    memset(&local, 0, sizeof local);
    if (!cache) cache = &local; /* both trials below share inputs and oracle outputs */
    kb__best_pick *pick = calloc(1, sizeof *pick);
    const kb__best *b = pick ? &pick->b : NULL;
    kb__trial_opts oo = *o;
    oo.against = NULL;
    oo.baseline_for = pick_baseline;
    oo.baseline_arg = pick;
    char desc[sizeof r->description];
    snprintf(desc, sizeof desc, "%s", r->description);
    int rc = KB__ENOMEM;
    if (!pick) goto out;
    pick->state_dir = state_dir;
    if ((rc = kb__trial_run(&oo, cache, r, err, err_len)) != 0) goto out;
    snprintf(r->description, sizeof r->description, "%s", desc);
    if (!pick->asked) {
        snprintf(bi->note, sizeof bi->note, "the candidate did not load; the best is unchanged");
        goto out;
    }
    bi->had_best = b->exists;
    if (b->exists) snprintf(bi->best_digest, sizeof bi->best_digest, "%s", b->digest);
    if (!kb__status_timed(r->status)) {
        snprintf(bi->note, sizeof bi->note, "%s: the best is unchanged",
                 kb__status_name(r->status));
        goto out;
    }
    if (!b->exists) {
        bi->oracle_ratio = r->geomean.est;
        bi->oracle_ratio_source = "measured";
    } else if (!strcmp(r->against_digest, b->digest) &&
               !strcmp(r->oracle_digest, b->oracle_digest) && isfinite(b->oracle_ratio)) {
        bi->oracle_ratio = r->geomean.est * b->oracle_ratio;
        bi->oracle_ratio_source = "chained";
    }
    if (r->status != KB__ST_KEEP) {
        snprintf(bi->note, sizeof bi->note, "%s: the best is unchanged%s",
                 kb__status_name(r->status),
                 b->exists && strcmp(r->oracle_digest, b->oracle_digest)
                     ? " (it was measured against another oracle build: no oracle_ratio)"
                     : "");
        goto out;
    }
    if (o->seed) {
        snprintf(bi->note, sizeof bi->note,
                 "not promoted: the inputs' seed was chosen (--seed or a client's \"seed\"); "
                 "only a trial on a secret seed can make a best");
        goto out;
    }
    /* A new best: measure it against the oracle itself. */
    if (b->exists && against_oracle(o, cache, r, bi, err, err_len) != 0) goto out;
    if (!isfinite(bi->oracle_ratio)) {
        snprintf(bi->note, sizeof bi->note,
                 "not promoted: no ratio against the oracle could be measured");
        goto out;
    }
    /* A keep against the best is one estimate, its ratio to the oracle
     * another: both must say it is faster before it replaces the best. */
    if (b->exists && isfinite(b->oracle_ratio) && !strcmp(r->oracle_digest, b->oracle_digest) &&
        !(bi->oracle_ratio < b->oracle_ratio)) {
        snprintf(bi->note, sizeof bi->note,
                 "not promoted: measured against the oracle it is %.4f, the best's is %.4f; "
                 "a keep against the best must also beat it there (time it again)",
                 bi->oracle_ratio, b->oracle_ratio);
        goto out;
    }
    rc = promote(state_dir, r, b->exists ? b->digest : "", bi->oracle_ratio, bi, err, err_len);
    if (rc > 0) rc = 0;
out:
    free(pick);
    kb__ctx_cache_free(&local);
    return rc;
}

static int trial_any(const kb__trial_opts *o, const char *state_dir, kb__ctx_cache *cache,
                     kb__result *r, kb__best_info *bi, char *err, size_t err_len)
{
    if (o->against && !strcmp(o->against, "best") && !o->verify_only)
        return kb__trial_best(o, state_dir, cache, r, bi, err, err_len);
    memset(bi, 0, sizeof *bi);
    bi->oracle_ratio = NAN;
    bi->oracle_ratio_source = "n/a";
    if (o->against && !strcmp(o->against, "best")) { /* verify: correctness has no baseline */
        kb__trial_opts v = *o;
        v.against = NULL;
        return kb__trial_run(&v, cache, r, err, err_len);
    }
    return kb__trial_run(o, cache, r, err, err_len);
}

int kb__trial_any(const kb__trial_opts *o, const char *state_dir, kb__ctx_cache *cache,
                  kb__result *r, kb__best_info *bi, char *err, size_t err_len)
{
    int rc = trial_any(o, state_dir, cache, r, bi, err, err_len);
    r->seed_chosen = bi->seed_chosen = o->seed != 0;
    if (o->seed) r->seed = o->seed; /* the caller's, so no secret to keep */
    return rc;
}

void kb__best_print(const kb__best_info *bi, void *file)
{
    FILE *f = file;
    if (!bi->used) return;
    if (isfinite(bi->oracle_ratio))
        fprintf(f, "oracle_ratio: %.4f\n", bi->oracle_ratio);
    else
        fputs("oracle_ratio: n/a\n", f);
    fprintf(f, "oracle_ratio_source: %s\n",
            bi->oracle_ratio_source ? bi->oracle_ratio_source : "n/a");
    /* best_digest may come from a server's JSON: keep the block one line per key */
    fputs("best_digest: ", f);
    for (const unsigned char *p = (const unsigned char *)(bi->had_best ? bi->best_digest : "n/a");
         *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
    fputc('\n', f);
    fprintf(f, "promoted: %s\n", bi->promoted ? "yes" : "no");
    fputs("best_note: ", f);
    for (const unsigned char *p = (const unsigned char *)bi->note; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
    fputs(bi->note[0] ? "\n" : "n/a\n", f);
}

void kb__best_describe(const kb__best_info *bi, const char *desc, char *out, size_t out_len)
{
    char user[512];
    size_t i = 0;
    for (; desc && desc[i] && i + 1 < sizeof user; i++)
        user[i] = desc[i] == '[' ? '(' : desc[i] == ']' ? ')' : desc[i];
    user[i] = 0;
    /* the tag goes first: a long description is cut at the end, never a tag */
    snprintf(out, out_len, "%s%s", bi->seed_chosen ? "[seed chosen] " : "", user);
}
