/*
 * load.c -- opens a plugin and checks its descriptor against the ABI.
 *
 * Like PostgreSQL's magic block, the descriptor's header (magic, versions,
 * size) is the same in every ABI version, so it is read and judged first and
 * a mismatch is reported in words before any other member is touched. The
 * descriptor may be garbage: members are read only when struct_size says
 * they exist, and strings are copied with a bound.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kb.h"

/* The v1.0 kb_plugin ends with release; a newer minor only appends. */
#define KB__PLUGIN_V1_0_SIZE  (offsetof(kb_plugin, release) + sizeof(void (*)(void)))
#define KB__COVERS(p, member) ((p)->struct_size >= offsetof(kb_plugin, member) + sizeof(p)->member)
#define KB__STR_MAX           (sizeof((kb__desc *)0)->name - 1)

/* Copies at most KB__STR_MAX chars; 1 when src is longer than that. */
static int copy_str(char *dst, const char *src)
{
    if (!src) return 0;
    size_t n = strnlen(src, KB__STR_MAX);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return src[n] != '\0';
}

/* 0 when present and printable ASCII, 1 when empty, 2 when unprintable or
 * not terminated (a kb__desc may come from a worker over a socket). */
static int field_state(const char *f, size_t size)
{
    if (!memchr(f, '\0', size)) return 2;
    if (!f[0]) return 1;
    for (; *f; f++)
        if (*f < 0x20 || *f > 0x7e) return 2;
    return 0;
}

int kb__desc_check(const kb__desc *d, const char *path, char *err, size_t err_len)
{
    if (d->magic != KB_ABI_MAGIC) {
        kb__errf(err, err_len,
                 "%s: bad magic 0x%08x in kb_plugin_entry_v1's descriptor (expected 0x%08x); "
                 "not a kbench plugin or a corrupt build",
                 path, d->magic, KB_ABI_MAGIC);
        return KB__EABI;
    }
    if (d->abi_major != KB_ABI_MAJOR) {
        kb__errf(err, err_len,
                 "%s: built for kbench ABI %u.%u, this host speaks %d.x; rebuild against "
                 "abi/kbench.h",
                 path, d->abi_major, d->abi_minor, KB_ABI_MAJOR);
        return KB__EABI;
    }
    if (d->struct_size < KB__PLUGIN_V1_0_SIZE) {
        kb__errf(err, err_len,
                 "%s: struct too small: %u bytes, ABI 1.0 needs %zu; rebuild against "
                 "abi/kbench.h",
                 path, d->struct_size, (size_t)KB__PLUGIN_V1_0_SIZE);
        return KB__EABI;
    }
    const struct {
        const char *what, *field;
        int optional;
    } fields[] = {{"target", d->target, 0}, {"name", d->name, 0}, {"version", d->version, 1}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int st = field_state(fields[i].field, sizeof d->name);
        if (st == 1 && !fields[i].optional) {
            kb__errf(err, err_len,
                     "%s: the descriptor's %s is missing or empty; set it (the target is the "
                     "oracle's name, e.g. \"pq-l2\")",
                     path, fields[i].what);
            return KB__EABI;
        }
        if (st == 2) {
            kb__errf(err, err_len,
                     "%s: the descriptor's %s has a non-printable character; use plain ASCII", path,
                     fields[i].what);
            return KB__EABI;
        }
    }
    return 0;
}

int kb__desc_read(const kb_plugin *p, kb__desc *d, const char *path, char *err, size_t err_len)
{
    memset(d, 0, sizeof *d);
    if (!p) {
        kb__errf(err, err_len,
                 "%s: kb_plugin_entry_v1 returned NULL; it must return a static kb_plugin", path);
        return KB__EABI;
    }
    d->magic = p->magic;
    d->abi_major = p->abi_major;
    d->abi_minor = p->abi_minor;
    d->struct_size = p->struct_size;
    /* Another magic or major means another layout: read nothing more. */
    if (d->magic != KB_ABI_MAGIC || d->abi_major != KB_ABI_MAJOR)
        return kb__desc_check(d, path, err, err_len);
    const char *too_long = NULL;
    if (KB__COVERS(p, version) && copy_str(d->version, p->version)) too_long = "version";
    if (KB__COVERS(p, name) && copy_str(d->name, p->name)) too_long = "name";
    if (KB__COVERS(p, target) && copy_str(d->target, p->target)) too_long = "target";
    if (KB__COVERS(p, cpu_features)) d->cpu_features = p->cpu_features;
    if (KB__COVERS(p, verify)) d->has_verify = p->verify != NULL;
    int rc = kb__desc_check(d, path, err, err_len);
    if (rc) return rc;
    if (too_long) {
        kb__errf(err, err_len, "%s: the descriptor's %s is longer than %zu characters", path,
                 too_long, (size_t)KB__STR_MAX);
        return KB__EABI;
    }
    /* desc_check guaranteed struct_size covers the whole v1.0 vtable. */
    const char *missing = !p->prepare   ? "prepare"
                          : !p->run     ? "run"
                          : !p->release ? "release"
                                        : NULL;
    if (missing) {
        kb__errf(err, err_len,
                 "%s: vtable incomplete: %s is NULL; prepare, run and release are required", path,
                 missing);
        return KB__EABI;
    }
    return 0;
}

static const char *load_hint(const char *msg)
{
    if (strstr(msg, "undefined symbol"))
        return "link every library it needs, or build with -Wl,--no-undefined";
    if (strstr(msg, "cannot open shared object file"))
        return "a library it needs is not installed or not on the loader's path (see ldd)";
    if (strstr(msg, "version `"))
        return "it needs a newer library than this machine has (see ldd -v)";
    return "rebuild it with kbench_add_plugin";
}

/* Finds the exported function `name` and stores it in the function pointer
 * at fn (fn_size bytes: a data pointer becomes a function pointer only by
 * copying). 0, or KB__EABI with err naming the missing export and `fix`. */
static int entry_point(void *dl, const char *name, void *fn, size_t fn_size, const char *fix,
                       const char *shown_path, char *err, size_t err_len)
{
    dlerror();
    void *sym = dlsym(dl, name);
    if (!sym) {
        kb__errf(err, err_len, "%s: does not export %s; %s", shown_path, name, fix);
        return KB__EABI;
    }
    memcpy(fn, &sym, fn_size);
    return 0;
}

static int open_fail(kb__lib *lib, int rc)
{
    if (lib->dl) dlclose(lib->dl);
    lib->dl = NULL;
    lib->plugin = NULL;
    lib->target = NULL;
    return rc;
}

int kb__lib_open(const char *load_path, const char *shown_path, int want_target, kb__lib *lib,
                 char *err, size_t err_len)
{
    memset(lib, 0, sizeof *lib);
    /* A name without a slash would make dlopen search the library path
     * and perhaps load some other file of that name. */
    char local[PATH_MAX];
    if (!strchr(load_path, '/')) {
        if (snprintf(local, sizeof local, "./%s", load_path) >= (int)sizeof local) {
            kb__errf(err, err_len, "%s: path too long", shown_path);
            return KB__EUSAGE;
        }
        load_path = local;
    }
    lib->dl = dlopen(load_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->dl) {
        const char *msg = dlerror();
        msg = msg ? msg : "unknown error";
        /* glibc prefixes the path it was given; the user knows the file by
         * shown_path (load_path may be /proc/self/fd/N). */
        size_t n = strlen(load_path);
        if (strncmp(msg, load_path, n) == 0 && strncmp(msg + n, ": ", 2) == 0) msg += n + 2;
        kb__errf(err, err_len, "%s: cannot load: %s; %s", shown_path, msg, load_hint(msg));
        return KB__EFORMAT;
    }
    kb_plugin_entry_fn entry;
    int rc = entry_point(lib->dl, "kb_plugin_entry_v1", &entry, sizeof entry,
                         "is it a kbench plugin? declare it with KB_EXPORT; " KB__FOREIGN_HINT_A
                         "LIB.so" KB__FOREIGN_HINT_B,
                         shown_path, err, err_len);
    if (rc) return open_fail(lib, rc);
    lib->plugin = entry();
    rc = kb__desc_read(lib->plugin, &lib->desc, shown_path, err, err_len);
    if (rc) return open_fail(lib, rc);
    if (!want_target) return 0;

    kb_target_entry_fn tentry;
    rc = entry_point(lib->dl, "kb_target_entry_v1", &tentry, sizeof tentry,
                     "an oracle must declare it with KB_EXPORT", shown_path, err, err_len);
    if (rc) return open_fail(lib, rc);
    lib->target = tentry();
    rc = kb__spec_check(lib->target, shown_path, err, err_len);
    if (rc) return open_fail(lib, rc);
    if (strcmp(lib->target->name, lib->desc.target) != 0) {
        kb__errf(err, err_len,
                 "%s: the descriptor's target is '%s' but the spec is named '%s'; they must "
                 "match",
                 shown_path, lib->desc.target, lib->target->name);
        return open_fail(lib, KB__ESPEC);
    }
    return 0;
}

void kb__lib_close(kb__lib *lib)
{
    if (lib->dl) dlclose(lib->dl);
    memset(lib, 0, sizeof *lib);
}
