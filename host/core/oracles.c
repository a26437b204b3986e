/*
 * oracles.c -- finds the oracle plugin that defines a target.
 *
 * The target name comes from a plugin's descriptor or the command line and
 * becomes part of a path, so only plain names are accepted: nothing that
 * could climb out of the oracle directories.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb.h"

#ifndef KB_INSTALL_ORACLE_DIR
#define KB_INSTALL_ORACLE_DIR "/usr/local/lib/kbench/oracles"
#endif

/* [a-z0-9-]+, shorter than a descriptor's target field. */
static int is_target_name(const char *s)
{
    size_t n = strnlen(s, 64);
    if (n == 0 || n == 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
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

int kb__oracle_find(const char *target, const char *extra_dir, char *path, size_t path_len,
                    char *err, size_t err_len)
{
    if (!target || !is_target_name(target)) {
        kb__errf(err, err_len,
                 "'%s' is not a target name: use lowercase letters, digits and '-', e.g. pq-l2",
                 target ? target : "");
        return KB__EUSAGE;
    }
    /* KB_INSTALL_ORACLE_DIR is the prefix given at configure time;
     * `cmake --install --prefix P` may have put the tree elsewhere, so the
     * prefix the binary sits in (the parent of its bin/) comes first. */
    char exe[PATH_MAX], in_build[PATH_MAX + 16], in_prefix[PATH_MAX + 32];
    const char *dirs[4];
    char places[4][PATH_MAX + 96];
    int n = 0;
    if (extra_dir && extra_dir[0]) dirs[n++] = extra_dir;
    if (exe_dir(exe, sizeof exe) == 0) {
        snprintf(in_build, sizeof in_build, "%s/oracles", exe);
        dirs[n++] = in_build;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(in_prefix, sizeof in_prefix, "%s/lib/kbench/oracles", exe);
            dirs[n++] = in_prefix;
        }
    }
    dirs[n++] = KB_INSTALL_ORACLE_DIR;
    for (int i = 0; i < n; i++) {
        int w = snprintf(places[i], sizeof places[i], "%s/%s/oracle.so", dirs[i], target);
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
    char looked[4 * (PATH_MAX + 98)] = "";
    for (int i = 0, o = 0; i < n && o >= 0 && (size_t)o < sizeof looked; i++)
        o += snprintf(looked + o, sizeof looked - (size_t)o, "%s%s", i ? ", " : "", places[i]);
    kb__errf(err, err_len,
             "no oracle for target '%s': looked in %s; build it or pass --oracles DIR", target,
             looked);
    return KB__ENOTFOUND;
}
