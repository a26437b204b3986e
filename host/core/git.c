/*
 * git.c -- the commit a candidate was built from, for the ledger.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kb.h"

void kb__git_commit(const char *path, char *out, size_t n)
{
    out[0] = 0;
    char dir[PATH_MAX], cmd[PATH_MAX + 96];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if (strchr(dir, '\'')) return;
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse --short=12 HEAD 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(out, (int)n, p))
        out[strcspn(out, "\r\n")] = 0;
    else
        out[0] = 0;
    pclose(p);
}
