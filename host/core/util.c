/*
 * util.c -- error lines, signal-safe message text and verdict names
 * shared by the whole host.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "kb.h"

void kb__errf(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        err[0] = '\0';
        return;
    }
    /* Messages quote file names and plugin-written text; a newline or an
     * escape sequence in either must not break the one-line contract or
     * drive the user's terminal. */
    for (char *p = err; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) *p = ' ';
    }
}

size_t kb__put_str(char *out, size_t n, size_t cap, const char *s)
{
    while (s && *s && n + 1 < cap) out[n++] = *s++;
    return n;
}

size_t kb__put_u64(char *out, size_t n, size_t cap, uint64_t v)
{
    char num[24];
    int k = (int)sizeof num - 1;
    num[k] = 0;
    do {
        num[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v && k > 0);
    return kb__put_str(out, n, cap, num + k);
}

const char *kb__status_name(kb__status s)
{
    switch (s) {
    case KB__ST_KEEP: return "keep";
    case KB__ST_DISCARD: return "discard";
    case KB__ST_INCONCLUSIVE: return "inconclusive";
    case KB__ST_INCORRECT: return "incorrect";
    case KB__ST_CRASH: return "crash";
    case KB__ST_TIMEOUT: return "timeout";
    case KB__ST_REJECTED: return "rejected";
    case KB__ST_CORRECT: return "correct";
    }
    return "unknown";
}

int kb__status_timed(kb__status s)
{
    return s == KB__ST_KEEP || s == KB__ST_DISCARD || s == KB__ST_INCONCLUSIVE;
}

int kb__status_exit_code(kb__status s)
{
    switch (s) {
    case KB__ST_KEEP:
    case KB__ST_CORRECT: return KB__EXIT_KEEP;
    case KB__ST_DISCARD: return KB__EXIT_DISCARD;
    case KB__ST_INCORRECT: return KB__EXIT_INCORRECT;
    case KB__ST_CRASH:
    case KB__ST_TIMEOUT:
    case KB__ST_REJECTED: return KB__EXIT_FAILED;
    case KB__ST_INCONCLUSIVE: return KB__EXIT_INCONCLUSIVE;
    }
    /* An unknown status is a host bug; report it as a failed trial, never
     * as a keep. */
    return KB__EXIT_FAILED;
}

void *kb__host_alloc(const kb_host *h, size_t size, size_t align)
{
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1) == 0
               ? p
               : NULL;
}

void kb__host_free(const kb_host *h, void *p)
{
    (void)h;
    free(p);
}
