/*
 * fuzz_elf.c -- kb__elf_check on arbitrary bytes: the first thing kbench
 * does with a plugin file, before any of its code runs.
 *
 * Beyond "no crash, no read outside the bytes": a failure says why in one
 * non-empty line, and reading the same bytes through a file descriptor
 * (kb__elf_check_fd, the path trials take) gives the same answer. The
 * dependency reader (kb__elf_deps) walks the same bytes: it either declines
 * (not a well-formed file), refuses in one line, or lists sonames that are
 * plain names.
 */
#include <sys/mman.h>

#include "fuzz.h"
#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"

static void one_line(int rc, const char *err)
{
    FZ_CHECK(rc <= 0, "rc %d", rc);
    if (rc != 0) {
        FZ_CHECK(err[0] != '\0', "rc %d with an empty message", rc);
        FZ_CHECK(!strchr(err, '\n'), "message spans lines: %s", err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = '\0';
    int rc = kb__elf_check(data, size, "fuzz.so", err, sizeof err);
    fz_note("elf_check", rc, err);
    one_line(rc, err);

    /* kb__elf_check_fd maps the file: same verdict expected. A memfd keeps
     * this off the disk. */
    static int fd = -1;
    if (fd < 0) fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
    FZ_CHECK(fd >= 0, "memfd_create");
    FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    FZ_CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite");
    char err2[512];
    err2[0] = '\0';
    int rc2 = kb__elf_check_fd(fd, "fuzz.so", err2, sizeof err2);
    one_line(rc2, err2);
    FZ_CHECK(rc2 == rc, "kb__elf_check says %d (%s), kb__elf_check_fd %d (%s)", rc, err, rc2, err2);
    FZ_CHECK(strcmp(err, err2) == 0, "messages differ: '%s' vs '%s'", err, err2);

    kb__deps deps;
    char err3[512];
    err3[0] = '\0';
    int rc3 = kb__elf_deps(data, size, "fuzz.so", &deps, err3, sizeof err3);
    FZ_CHECK(rc3 == 0 || rc3 == 1 || rc3 == KB__EFORMAT, "kb__elf_deps rc %d", rc3);
    if (rc3 == KB__EFORMAT) one_line(rc3, err3);
    FZ_CHECK(deps.n <= KB__ELF_MAX_DEPS, "%u deps", deps.n);
    for (uint32_t i = 0; rc3 == 0 && i < deps.n; i++)
        FZ_CHECK(deps.name[i][0] && !strchr(deps.name[i], '/'), "dep '%s'", deps.name[i]);
    return 0;
}
