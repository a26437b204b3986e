/*
 * paths.h -- names that become paths, and where kbench finds its own files
 * (paths.c): target names, the oracle search roots, the running binary.
 */
#ifndef KB_PATHS_H
#define KB_PATHS_H

#include <limits.h>
#include <stddef.h>

#include "kb.h"

/* 1 when s is a target name: [a-z0-9-]+, shorter than a descriptor's target
 * field. A target name becomes part of a path, so nothing that could climb
 * out of a directory passes. */
int kb__is_target_name(const char *s);

/* The directories holding <target>/oracle.so, in the order they are
 * searched: extra_dir (when non-NULL and non-empty), <exe dir>/oracles (a
 * build tree), <exe dir>/../lib/kbench/oracles (an install moved to another
 * prefix), then KB_INSTALL_ORACLE_DIR (the configured prefix), each once.
 * `kbench list`, serve's `list` and kb__oracle_find all search these. */
#define KB__ORACLE_ROOTS_MAX 4
typedef struct kb__oracle_roots {
    int n;
    char dir[KB__ORACLE_ROOTS_MAX][PATH_MAX + 32];
} kb__oracle_roots;
void kb__oracle_roots_get(const char *extra_dir, kb__oracle_roots *r);

/* One <root>/<name>/oracle.so that kb__oracles_each found (oracles.c). It
 * is loaded from its sealed copy, as a trial loads it, so a FIFO or a file
 * being rewritten under that name cannot hang or confuse a listing. */
typedef struct kb__oracle_seen {
    const char *root, *name; /* the root it is in, its directory's name */
    const char *path;        /* <root>/<name>/oracle.so */
    const kb__lib *lib;      /* NULL when it did not load: err says why */
    const char *err;
    const char *digest_hex; /* of the sealed copy, when lib is set */
    /* With lib set, when this kbench was built from a source tree that is
     * still there: the oracle's sources (<src>/oracles/<target>) in pin_dir
     * and what kb__pin_check says of them in pin and pin_msg. pin_dir is
     * NULL otherwise. */
    const char *pin_dir;
    int pin;
    const char *pin_msg;
} kb__oracle_seen;
/* Calls visit for every readable <root>/<name>/oracle.so under the roots
 * (names starting with '.' skipped), in the roots' order; the pointers in
 * *o live for that call only. Returns how many it found. `kbench list` and
 * serve's `list` both list through this. */
int kb__oracles_each(const kb__oracle_roots *r, void (*visit)(const kb__oracle_seen *o, void *arg),
                     void *arg);

/* Finds <root>/<target>/oracle.so in the roots above. Writes the path;
 * KB__EUSAGE for a bad target name, KB__ENOTFOUND with the places searched
 * otherwise. */
int kb__oracle_find(const char *target, const char *extra_dir, char *path, size_t path_len,
                    char *err, size_t err_len);

/* Absolute path of the running kbench binary ("/proc/self/exe" when it
 * cannot be resolved). */
const char *kb__self_exe(void);

/* The program long-lived commands (watch, serve) start their workers with:
 * /proc/self/exe, which in the forked child still names the binary this
 * process runs even after a rebuild replaced the file, so a server never
 * pairs itself with workers of another build. The resolved path when
 * KB_WORKER_EXEC_PREFIX (qemu) needs a real file name. */
const char *kb__worker_exe(void);

#endif /* KB_PATHS_H */
