/*
 * paths.c -- names that become paths, and where kbench finds its own files.
 *
 * The target name comes from a plugin's descriptor or the command line and
 * becomes part of a path, so only plain names are accepted: nothing that
 * could climb out of the oracle directories.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb.h"
#include "paths.h"

#ifndef KB_INSTALL_ORACLE_DIR
#define KB_INSTALL_ORACLE_DIR "/usr/local/lib/kbench/oracles"
#endif

int kb__is_target_name(const char *s)
{
    size_t n = strnlen(s, 64);
    if (n == 0 || n == 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

const char *kb__self_exe(void)
{
    static char path[PATH_MAX];
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            snprintf(path, sizeof path, "/proc/self/exe");
        else
            path[n] = 0;
    }
    return path;
}

const char *kb__worker_exe(void)
{
    const char *pre = getenv("KB_WORKER_EXEC_PREFIX");
    if ((!pre || !*pre) && access("/proc/self/exe", X_OK) == 0) return "/proc/self/exe";
    return kb__self_exe();
}

/* The directory of the running binary, so a build tree finds its own
 * oracles (build/kbench looks in build/oracles) and an install finds its
 * oracles wherever the prefix was moved (<prefix>/bin/kbench looks in
 * <prefix>/lib/kbench/oracles). */
static int exe_dir(char *out, size_t out_len)
{
    ssize_t n = readlink("/proc/self/exe", out, out_len - 1);
    if (n <= 0 || (size_t)n >= out_len - 1) return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash) return -1;
    *slash = '\0';
    return 0;
}

void kb__oracle_roots_get(const char *extra_dir, kb__oracle_roots *r)
{
    /* KB_INSTALL_ORACLE_DIR is the prefix given at configure time;
     * `cmake --install --prefix P` may have put the tree elsewhere, so the
     * prefix the binary sits in (the parent of its bin/) comes first. */
    char exe[PATH_MAX];
    r->n = 0;
    if (extra_dir && extra_dir[0]) snprintf(r->dir[r->n++], sizeof r->dir[0], "%s", extra_dir);
    if (exe_dir(exe, sizeof exe) == 0) {
        snprintf(r->dir[r->n++], sizeof r->dir[0], "%s/oracles", exe);
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(r->dir[r->n++], sizeof r->dir[0], "%s/lib/kbench/oracles", exe);
        }
    }
    snprintf(r->dir[r->n++], sizeof r->dir[0], "%s", KB_INSTALL_ORACLE_DIR);
    /* An install at the configured prefix names it twice; search it once. */
    int kept = 0;
    for (int i = 0; i < r->n; i++) {
        int dup = 0;
        for (int j = 0; j < kept && !dup; j++) dup = !strcmp(r->dir[j], r->dir[i]);
        if (!dup && kept != i) memcpy(r->dir[kept], r->dir[i], sizeof r->dir[0]);
        kept += !dup;
    }
    r->n = kept;
}

/* The targets that have an oracle under the roots, each once, for the
 * message of a target that has none: ", "-separated in out, and the one
 * nearest to `target` when one is near. */
#define KB__KNOWN_MAX 32
static void known_targets(const kb__oracle_roots *r, const char *target, char *out, size_t len,
                          char *near, size_t near_len)
{
    static char names[KB__KNOWN_MAX][64];
    const char *list[KB__KNOWN_MAX];
    size_t n = 0;
    for (int i = 0; i < r->n; i++) {
        DIR *d = opendir(r->dir[i]);
        for (struct dirent *e; d && n < KB__KNOWN_MAX && (e = readdir(d));) {
            char p[PATH_MAX + 128];
            struct stat st;
            size_t j = 0;
            while (j < n && strcmp(names[j], e->d_name)) j++;
            if (j < n || !kb__is_target_name(e->d_name)) continue;
            if (snprintf(p, sizeof p, "%s/%s/oracle.so", r->dir[i], e->d_name) >= (int)sizeof p ||
                stat(p, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            memcpy(names[n], e->d_name, strlen(e->d_name) + 1); /* a target name: < 64 */
            list[n] = names[n];
            n++;
        }
        if (d) closedir(d);
    }
    size_t o = 0;
    out[0] = 0;
    for (size_t j = 0; j < n && o < len; j++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", j ? ", " : "", list[j]);
    const char *best = kb__suggest(target, list, n);
    snprintf(near, near_len, "%s", best ? best : "");
}

int kb__oracle_find(const char *target, const char *extra_dir, char *path, size_t path_len,
                    char *err, size_t err_len)
{
    if (!target || !kb__is_target_name(target)) {
        kb__errf(err, err_len,
                 "'%s' is not a target name: use lowercase letters, digits and '-', e.g. pq-l2",
                 target ? target : "");
        return KB__EUSAGE;
    }
    kb__oracle_roots roots;
    kb__oracle_roots_get(extra_dir, &roots);
    char places[KB__ORACLE_ROOTS_MAX][PATH_MAX + 96];
    int n = roots.n;
    for (int i = 0; i < n; i++) {
        int w = snprintf(places[i], sizeof places[i], "%s/%s/oracle.so", roots.dir[i], target);
        struct stat st;
        if (w < 0 || (size_t)w >= sizeof places[i] || stat(places[i], &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if ((size_t)w >= path_len) {
            kb__errf(err, err_len, "%s: path too long", places[i]);
            return KB__EUSAGE;
        }
        memcpy(path, places[i], (size_t)w + 1);
        return 0;
    }
    char looked[KB__ORACLE_ROOTS_MAX * (PATH_MAX + 98)] = "";
    for (int i = 0, o = 0; i < n && o >= 0 && (size_t)o < sizeof looked; i++)
        o += snprintf(looked + o, sizeof looked - (size_t)o, "%s%s", i ? ", " : "", places[i]);
    char known[1024], near[64];
    known_targets(&roots, target, known, sizeof known, near, sizeof near);
    kb__errf(err, err_len,
             "no oracle for target '%s': looked in %s; build it or pass --oracles DIR; %s%s%s%s%s",
             target, looked, near[0] ? "did you mean " : "", near, near[0] ? "? " : "",
             known[0] ? "known targets: " : "no target has an oracle there", known);
    return KB__ENOTFOUND;
}
