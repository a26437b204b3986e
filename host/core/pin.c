/*
 * pin.c -- oracle pins: oracles/<target>/PIN holds the XXH3-64 of every
 * source file of the oracle and the upstream it was ported from.
 *
 * The oracle is the fixed point every ledger line is measured against: an
 * unnoticed edit to it (or to its input generator's case table) silently
 * turns old results into numbers about another problem. The pin makes such
 * an edit loud: the build fails (oracles/CMakeLists.txt runs the check before
 * each oracle is built), `kbench list` warns, and
 * scripts/check-oracle-drift.sh reports every oracle. Re-pinning is one
 * command and shows up in review as a changed PIN.
 *
 * PIN format (text, one record a line, '#' comments):
 *   upstream<TAB>where the reference was ported from, and its revision
 *   xxh3<TAB>FILE<TAB>16 hex digits          one per source file, sorted
 * The sources are every regular file in the oracle's directory except PIN
 * and dot files, and every regular file of the generator library the oracle
 * builds its inputs with (../../generators, pinned as "generators/FILE"):
 * a generator edit changes every input a target is judged on as surely as
 * an edit to the oracle's own code.
 *
 * Built twice: into kbench (kbench list) and, with KB_PIN_TOOL, as the small
 * `kbench_pin` program the build and the drift script run, so checking a pin
 * never needs a built kbench.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef KB_PIN_TOOL
#include "kb.h"
#else
#include <limits.h>
#define KB__PIN_MISMATCH 1
int kb__pin_check(const char *oracle_src_dir, char *msg, size_t msg_len);
int kb__pin_write(const char *oracle_src_dir, const char *upstream, char *msg, size_t msg_len);
#endif

#define KB__PIN_MAX_FILES 64
#define KB__PIN_MAX_BYTES (64u << 20)

typedef struct kb__pin_file {
    char name[256];
    unsigned long long hash;
} kb__pin_file;

/* The index of the file called `name` in files[0..n), or n. */
static int find_name(const kb__pin_file *files, int n, const char *name)
{
    int i = 0;
    while (i < n && strcmp(files[i].name, name)) i++;
    return i;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const kb__pin_file *)a)->name, ((const kb__pin_file *)b)->name);
}

/* The target name for messages: the directory's last component. */
static void target_of(const char *dir, char *out, size_t n)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = 0;
    const char *s = strrchr(buf, '/');
    snprintf(out, n, "%s", s ? s + 1 : buf);
}

static int hash_file(const char *path, unsigned long long *h)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        fclose(f);
        return -1;
    }
    XXH3_64bits_reset(st);
    char buf[65536];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && total <= KB__PIN_MAX_BYTES) {
        XXH3_64bits_update(st, buf, n);
        total += n;
    }
    int bad = ferror(f) || total > KB__PIN_MAX_BYTES;
    fclose(f);
    *h = (unsigned long long)XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return bad ? -1 : 0;
}

/* Adds the regular files of dir (but PIN and dot files) to files[*n..],
 * named prefix + name. */
static int scan_dir(const char *dir, const char *prefix, kb__pin_file *files, int *n, char *msg,
                    size_t msg_len)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(msg, msg_len, "%s: %s", dir, strerror(errno));
        return -1;
    }
    for (struct dirent *e; (e = readdir(d));) {
        char path[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "PIN")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (*n == KB__PIN_MAX_FILES || strlen(prefix) + strlen(e->d_name) >= sizeof files[0].name) {
            snprintf(msg, msg_len, "%s: more than %d files or a name too long to pin", dir,
                     KB__PIN_MAX_FILES);
            closedir(d);
            return -1;
        }
        strcat(strcpy(files[*n].name, prefix), e->d_name); /* length checked above */
        if (hash_file(path, &files[*n].hash) != 0) {
            snprintf(msg, msg_len, "%s: cannot read", path);
            closedir(d);
            return -1;
        }
        (*n)++;
    }
    closedir(d);
    return 0;
}

/* The sources as they are now, sorted by name: the oracle's directory and
 * the generator library beside it (oracles/T/../../generators). */
static int scan(const char *dir, kb__pin_file *files, int *n, char *msg, size_t msg_len)
{
    char gen[PATH_MAX];
    *n = 0;
    snprintf(gen, sizeof gen, "%s/../../generators", dir);
    struct stat st;
    if (scan_dir(dir, "", files, n, msg, msg_len) != 0) return -1;
    /* An oracle outside a source tree has no generator library beside it;
     * a PIN that names one then reports its files missing. */
    if (stat(gen, &st) == 0 && scan_dir(gen, "generators/", files, n, msg, msg_len) != 0) return -1;
    qsort(files, (size_t)*n, sizeof files[0], cmp_name);
    return 0;
}

/* Where a pinned name lives: dir/NAME, or for "generators/F" the generator
 * library two levels up. */
static const char *src_path(const char *dir, const char *name, char *out, size_t len)
{
    snprintf(out, len, strncmp(name, "generators/", 11) ? "%s/%s" : "%s/../../%s", dir, name);
    return out;
}

/* Reads PIN: the pinned files and the upstream line. */
static int read_pin(const char *dir, kb__pin_file *files, int *n, char *upstream, size_t up_len,
                    char *msg, size_t msg_len)
{
    char path[PATH_MAX], line[1024];
    snprintf(path, sizeof path, "%s/PIN", dir);
    FILE *f = fopen(path, "r");
    *n = 0;
    if (upstream) upstream[0] = 0;
    if (!f) {
        char t[128];
        target_of(dir, t, sizeof t);
        snprintf(msg, msg_len,
                 "%s: %s; pin the oracle with `scripts/check-oracle-drift.sh --update %s`", path,
                 strerror(errno), t);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *t1 = strchr(line, '\t');
        if (!t1) continue;
        *t1++ = 0;
        if (!strcmp(line, "upstream")) {
            if (upstream) snprintf(upstream, up_len, "%s", t1);
        } else if (!strcmp(line, "xxh3")) {
            char *t2 = strchr(t1, '\t');
            if (!t2 || *n == KB__PIN_MAX_FILES) continue;
            *t2++ = 0;
            snprintf(files[*n].name, sizeof files[*n].name, "%s", t1);
            files[*n].hash = strtoull(t2, NULL, 16);
            (*n)++;
        }
    }
    fclose(f);
    return 0;
}

int kb__pin_check(const char *dir, char *msg, size_t msg_len)
{
    kb__pin_file *now = calloc(2 * KB__PIN_MAX_FILES, sizeof *now), *pin = now + KB__PIN_MAX_FILES;
    int nn = 0, np = 0, rc = 0;
    char t[128], where[PATH_MAX + 16];
    target_of(dir, t, sizeof t);
    msg[0] = 0;
    if (!now) {
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    if (read_pin(dir, pin, &np, NULL, 0, msg, msg_len) != 0 ||
        scan(dir, now, &nn, msg, msg_len) != 0) {
        free(now);
        return -1;
    }
    for (int i = 0; i < np && !rc; i++) {
        const int j = find_name(now, nn, pin[i].name);
        if (j == nn) {
            snprintf(msg, msg_len, "%s is pinned in %s/PIN but missing",
                     src_path(dir, pin[i].name, where, sizeof where), dir);
            rc = KB__PIN_MISMATCH;
        } else if (now[j].hash != pin[i].hash) {
            snprintf(msg, msg_len,
                     "%s changed since the oracle was pinned (xxh3 %016llx, PIN says %016llx)",
                     src_path(dir, pin[i].name, where, sizeof where), now[j].hash, pin[i].hash);
            rc = KB__PIN_MISMATCH;
        }
    }
    for (int j = 0; j < nn && !rc; j++) {
        const int i = find_name(pin, np, now[j].name);
        if (i == np) {
            snprintf(msg, msg_len, "%s is not in %s/PIN",
                     src_path(dir, now[j].name, where, sizeof where), dir);
            rc = KB__PIN_MISMATCH;
        }
    }
    if (rc) {
        size_t l = strlen(msg);
        snprintf(msg + l, msg_len - l,
                 ". Results measured against the old oracle are not comparable with new ones: if "
                 "the change is intended, re-pin with `scripts/check-oracle-drift.sh --update %s` "
                 "and say why in the commit; otherwise restore the file",
                 t);
    }
    free(now);
    return rc;
}

int kb__pin_write(const char *dir, const char *upstream, char *msg, size_t msg_len)
{
    kb__pin_file *now = calloc(2 * KB__PIN_MAX_FILES, sizeof *now), *old = now + KB__PIN_MAX_FILES;
    int nn = 0, no = 0;
    char up[1024] = "", path[PATH_MAX], tmp[PATH_MAX + 16], t[128];
    if (!now) {
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    target_of(dir, t, sizeof t);
    char ignore[512];
    read_pin(dir, old, &no, up, sizeof up, ignore, sizeof ignore);
    if (upstream) snprintf(up, sizeof up, "%s", upstream);
    if (!up[0])
        snprintf(up, sizeof up,
                 "unknown: say where this oracle was ported from, and at which revision");
    for (char *p = up; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r') *p = ' ';
    if (scan(dir, now, &nn, msg, msg_len) != 0) {
        free(now);
        return -1;
    }
    snprintf(path, sizeof path, "%s/PIN", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(msg, msg_len, "%s: %s", tmp, strerror(errno));
        free(now);
        return -1;
    }
    fprintf(f,
            "# The pin of the %s oracle: XXH3-64 of each of its source files and of the\n"
            "# generator library its inputs come from (generators/). The build fails\n"
            "# and `kbench list` warns when a file differs. After an intended change:\n"
            "#   scripts/check-oracle-drift.sh --update %s\n"
            "upstream\t%s\n",
            t, t, up);
    for (int i = 0; i < nn; i++) fprintf(f, "xxh3\t%s\t%016llx\n", now[i].name, now[i].hash);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(msg, msg_len, "%s: %s", path, strerror(errno));
        unlink(tmp);
        free(now);
        return -1;
    }
    snprintf(msg, msg_len, "%s: pinned %d file(s)", path, nn);
    free(now);
    return 0;
}

#ifndef KB_PIN_TOOL
/* 1 when dir/oracles is a directory. */
static int has_oracles(const char *dir)
{
    char probe[PATH_MAX + 16];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/oracles", dir);
    return dir[0] == '/' && stat(probe, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory of the running binary, resolved. */
static int self_dir(char *out)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *s = strrchr(exe, '/');
    if (s) *s = 0;
    return realpath(exe, out) ? 0 : -1;
}

/* Only the binary the build tree holds reads the source tree: an installed
 * kbench must not depend on a checkout that may have moved on or gone, so
 * it reads the copy installed beside it. */
const char *kb__source_dir(void)
{
    static char dir[PATH_MAX];
    static int done;
    if (done) return dir[0] ? dir : NULL;
    done = 1;
    char here[PATH_MAX], probe[PATH_MAX + 32];
    if (self_dir(here) != 0) return NULL;
#if defined(KB_SOURCE_DIR) && defined(KB_BUILD_DIR)
    char build[PATH_MAX];
    if (realpath(KB_BUILD_DIR, build) && !strcmp(here, build) && has_oracles(KB_SOURCE_DIR) &&
        realpath(KB_SOURCE_DIR, dir))
        return dir;
#endif
    snprintf(probe, sizeof probe, "%s/../share/kbench/src", here);
    if (realpath(probe, dir) && has_oracles(dir)) return dir;
    dir[0] = 0;
    return NULL;
}
#else
int main(int argc, char **argv)
{
    char msg[2048];
    if (argc >= 3 && !strcmp(argv[1], "check")) {
        int bad = 0;
        for (int i = 2; i < argc; i++) {
            int rc = kb__pin_check(argv[i], msg, sizeof msg);
            if (rc != 0) fprintf(stderr, "kbench pin: %s\n", msg);
            bad |= rc < 0 ? 2 : rc;
        }
        return bad;
    }
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "update")) {
        int rc = kb__pin_write(argv[2], argc == 4 ? argv[3] : NULL, msg, sizeof msg);
        fprintf(rc ? stderr : stdout, "kbench pin: %s\n", msg);
        return rc ? 2 : 0;
    }
    fprintf(stderr,
            "usage: kbench_pin check ORACLE_DIR...        exit 0 pinned, 1 changed, 2 error\n"
            "       kbench_pin update ORACLE_DIR [UPSTREAM]  (re)write ORACLE_DIR/PIN\n");
    return 2;
}
#endif
