/*
 * maps.c -- the host's look at a worker's memory map and filters.
 *
 * After loading, what the worker may execute is final: the worker stacks a
 * second seccomp filter (seccomp.c, kb__seccomp_harden) that refuses new
 * executable memory and MAP_FIXED. Both rules live in the worker, which the
 * plugin shares, so the host checks from outside, in /proc: right after
 * loading, that every thread carries both filters and that nothing
 * executable is anonymous or writable; after every batch, that the
 * executable mappings are the same set as after loading and that every
 * mapping of a file or of the kernel ([vdso], [vvar]) that was there after
 * loading still is, unchanged. The plugin's own memory (anonymous, and the
 * per-case memfds mapped later) may come and go.
 *
 * Reading maps costs the host about 0.5 ms for a worker with a small case
 * mapped and 27 ms with 11,800 mappings (a case's output lanes, each
 * between guard pages), so after every batch the host reads only the
 * worker's /proc/<pid>/status: the size of its executable memory (VmExe +
 * VmLib, the kernel's exec_vm) and its filter count, 14-25 us; and the
 * first lines of its maps, which hold the harness's own image.
 * The whole map is compared after loading and at the end of timing. A user
 * other than root cannot read the maps of a worker that is not dumpable;
 * there only the status check runs.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

#define KB__MAPS_MAX (256u << 20) /* 2.4 million mappings; a worker has at most 65530 */

/* /proc/<pid>/maps, whole, NUL-terminated; NULL when unreadable. */
static char *read_maps(pid_t pid, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 64 << 10, n = 0;
    char *buf = malloc(cap);
    for (ssize_t r; buf; n += (size_t)r) {
        if (n + 1 == cap) {
            char *b = cap < KB__MAPS_MAX ? realloc(buf, cap * 2) : NULL;
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
    }
    close(fd);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* The fields of a maps line: perms at +1 after the range, the path after
 * the inode (may be empty). */
static const char *perms_of(const char *line)
{
    const char *sp = strchr(line, ' ');
    return sp ? sp + 1 : "";
}

static const char *path_of(const char *line, const char *end)
{
    const char *p = line;
    for (int f = 0; f < 5 && p < end; f++) { /* range perms offset dev inode */
        while (p < end && *p != ' ') p++;
        while (p < end && *p == ' ') p++;
    }
    return p;
}

static int is_exec(const char *line)
{
    return perms_of(line)[2] == 'x';
}

/* Kept: executable, or a file's ([path] with a '/'), or the kernel's
 * ([vdso], [vvar], [vvar_vclock], [vsyscall]). Not [heap], [stack] or
 * anonymous memory, which the plugin's own allocations change. */
static int is_kept(const char *line, const char *end)
{
    const char *p = path_of(line, end);
    if (is_exec(line) || *p == '/') return 1;
    return !strncmp(p, "[vdso]", 6) || !strncmp(p, "[vvar", 5) || !strncmp(p, "[vsyscall]", 10);
}

/* Whether `line` (n bytes, without its newline) is a whole line of maps. */
static int has_line(const char *maps, const char *line, size_t n)
{
    char key[256];
    if (n == 0 || n >= sizeof key) return 0;
    memcpy(key, line, n);
    key[n] = 0;
    for (const char *p = maps; (p = strstr(p, key)); p += n)
        if ((p == maps || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0)) return 1;
    return 0;
}

static void line_copy(char *out, size_t len, const char *line, size_t n)
{
    snprintf(out, len, "%.*s", (int)(n > 200 ? 200 : n), line);
}

/* VmExe + VmLib and Seccomp_filters from /proc/<pid>/status; 0 when read. */
static int read_status(pid_t pid, int64_t *exec_kb, int *filters)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return KB__EIO;
    long long exe = -1, lib = -1;
    *filters = -1;
    while (fgets(buf, sizeof buf, f)) {
        if (sscanf(buf, "VmExe: %lld", &exe) == 1 || sscanf(buf, "VmLib: %lld", &lib) == 1)
            continue;
        if (sscanf(buf, "Seccomp_filters: %d", filters) == 1) break;
    }
    fclose(f);
    *exec_kb = exe >= 0 && lib >= 0 ? exe + lib : -1;
    return 0;
}

/* The harness's own image (its code, its -z now GOT, its data) is the
 * lowest mapping, so its lines come first in /proc/<pid>/maps: one read of
 * 4 KiB, which the kernel fills without walking the rest (20-60 us with
 * 15,000 mappings, against 10-30 ms for the whole map), shows whether a
 * page of it was swapped for another. */
static int image_changed(pid_t pid, const kb__maps *m, char *why, size_t why_len)
{
    if (!m->text || !m->image_len) return 0;
    char path[64], head[4097];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const ssize_t n = read(fd, head, sizeof head - 1);
    close(fd);
    head[n > 0 ? n : 0] = 0;
    for (const char *s = m->text; s < m->text + m->image_len;) {
        const char *e = strchr(s, '\n');
        if (!has_line(head, s, (size_t)(e - s))) {
            char line[208];
            line_copy(line, sizeof line, s, (size_t)(e - s));
            kb__errf(why, why_len,
                     "changed a mapping of the harness's own image (gone or "
                     "altered: %s)",
                     line);
            return 1;
        }
        s = e + 1;
    }
    return 0;
}

int kb__maps_quick_changed(pid_t pid, const kb__maps *m, char *why, size_t why_len)
{
    int64_t kb;
    int filters;
    if (!m->taken) return 0;
    if (read_status(pid, &kb, &filters) != 0) return 0; /* gone: reported elsewhere */
    if (kb != m->exec_kb) {
        kb__errf(why, why_len, "changed its executable memory after loading (%lld KiB, was %lld)",
                 (long long)kb, (long long)m->exec_kb);
        return 1;
    }
    if (filters != m->filters) {
        kb__errf(why, why_len, "changed its system-call filters after loading (%d, was %d)",
                 filters, m->filters);
        return 1;
    }
    return image_changed(pid, m, why, why_len);
}

int kb__maps_snapshot(pid_t pid, kb__maps *m, char *why, size_t why_len)
{
    free(m->text);
    m->text = NULL;
    if (read_status(pid, &m->exec_kb, &m->filters) != 0) {
        kb__errf(why, why_len, "cannot read the worker's status");
        return KB__EIO;
    }
    m->taken = 1;
    size_t n = 0;
    char *all = read_maps(pid, &n);
    if (!all) return 0; /* not root: the status check alone */
    char *out = malloc(n + 1);
    size_t k = 0;
    for (const char *s = all; out && *s;) {
        const char *e = strchr(s, '\n');
        if (!e) e = s + strlen(s);
        const size_t len = (size_t)(e - s);
        if (is_exec(s) && (perms_of(s)[1] == 'w' || *path_of(s, e) == 0)) {
            char line[208];
            line_copy(line, sizeof line, s, len);
            free(out);
            free(all);
            kb__errf(why, why_len,
                     "has executable memory that is writable or belongs to no "
                     "file after loading (%s)",
                     line);
            return KB__EFORMAT;
        }
        if (is_kept(s, e)) {
            memcpy(out + k, s, len);
            k += len;
            out[k++] = '\n';
        }
        s = *e ? e + 1 : e;
    }
    free(all);
    if (!out) return KB__ENOMEM;
    out[k] = 0;
    m->text = out;
    /* the image: the leading lines of the first line's file */
    const char *e1 = strchr(out, '\n');
    const char *p1 = e1 ? path_of(out, e1) : NULL;
    m->image_len = 0;
    for (const char *s = out; p1 && *p1 == '/' && *s;) {
        const char *e = strchr(s, '\n');
        const char *p = path_of(s, e);
        if ((size_t)(e - p) != (size_t)(e1 - p1) || strncmp(p, p1, (size_t)(e1 - p1))) break;
        s = e + 1;
        m->image_len = (size_t)(s - out);
    }
    return 0;
}

int kb__maps_changed(pid_t pid, const kb__maps *m, char *why, size_t why_len)
{
    if (kb__maps_quick_changed(pid, m, why, why_len)) return 1;
    if (!m->text) return 0;
    size_t n = 0;
    char *now = read_maps(pid, &n);
    if (!now) return 0; /* gone: its death is reported elsewhere */
    int rc = 0;
    char line[208];
    for (const char *s = m->text; !rc && *s;) { /* what was there is still there */
        const char *e = strchr(s, '\n');
        if (!has_line(now, s, (size_t)(e - s))) {
            line_copy(line, sizeof line, s, (size_t)(e - s));
            kb__errf(why, why_len,
                     "changed a mapping the harness, a library or the kernel owns "
                     "(gone or altered: %s)",
                     line);
            rc = 1;
        }
        s = e + 1;
    }
    for (const char *s = now; !rc && *s;) { /* nothing new is executable */
        const char *e = strchr(s, '\n');
        if (!e) e = s + strlen(s);
        if (is_exec(s) && !has_line(m->text, s, (size_t)(e - s))) {
            line_copy(line, sizeof line, s, (size_t)(e - s));
            kb__errf(why, why_len, "made memory executable after loading (%s)", line);
            rc = 1;
        }
        s = *e ? e + 1 : e;
    }
    free(now);
    return rc;
}

void kb__maps_free(kb__maps *m)
{
    free(m->text);
    memset(m, 0, sizeof *m);
}

/* Seccomp_filters of every thread (Linux 5.9 on): the lowest and highest
 * count; -1 when the kernel does not say. */
int kb__worker_filters(pid_t pid, int *lo, int *hi)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    *lo = *hi = -1;
    if (!d) return KB__EIO;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char sp[300], buf[256];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/status", (int)pid, e->d_name);
        FILE *f = fopen(sp, "r");
        int v = -1;
        while (f && fgets(buf, sizeof buf, f))
            if (sscanf(buf, "Seccomp_filters: %d", &v) == 1) break;
        if (f) fclose(f);
        if (v < 0) continue;
        if (*lo < 0 || v < *lo) *lo = v;
        if (v > *hi) *hi = v;
    }
    closedir(d);
    return 0;
}
