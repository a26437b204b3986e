/*
 * oracles.c -- every oracle the oracle roots hold, loaded for a listing
 * (`kbench list` and serve's `list`).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "paths.h"

/* Loads one oracle from its sealed copy, checks its sources against their
 * pin when the source tree is there, and hands it to visit. */
static void visit_one(kb__oracle_seen *o, void (*visit)(const kb__oracle_seen *, void *), void *arg)
{
    char err[512] = "", sealed[64], pin_dir[PATH_MAX * 2], msg[1024];
    kb__lib lib;
    kb__snapshot snap = {.fd = -1};
    if (kb__snapshot_take(o->path, &snap, err, sizeof err) == 0)
        snprintf(sealed, sizeof sealed, "/proc/self/fd/%d", snap.fd);
    if (snap.fd < 0 || kb__lib_open(sealed, o->path, 1, &lib, err, sizeof err) != 0) {
        kb__snapshot_close(&snap);
        o->err = err;
        visit(o, arg);
        return;
    }
    o->lib = &lib;
    o->digest_hex = snap.digest_hex;
    const char *src = kb__source_dir();
    if (src) {
        snprintf(pin_dir, sizeof pin_dir, "%s/oracles/%s", src, lib.target->name);
        o->pin = kb__pin_check(pin_dir, msg, sizeof msg);
        o->pin_dir = pin_dir;
        o->pin_msg = msg;
    }
    visit(o, arg);
    kb__lib_close(&lib);
    kb__snapshot_close(&snap);
}

int kb__oracles_each(const kb__oracle_roots *r, void (*visit)(const kb__oracle_seen *o, void *arg),
                     void *arg)
{
    int seen = 0;
    for (int i = 0; i < r->n; i++) {
        /* Resolved, so a listing names <prefix>/lib/kbench/plugins and
         * not <prefix>/lib/kbench/oracles/../plugins. */
        char root[PATH_MAX];
        if (!realpath(r->dir[i], root)) continue;
        DIR *d = opendir(root);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s/oracle.so", root, e->d_name);
            if (access(path, R_OK) != 0) continue;
            seen++;
            kb__oracle_seen o = {.root = root, .name = e->d_name, .path = path};
            visit_one(&o, visit, arg);
        }
        closedir(d);
    }
    return seen;
}
