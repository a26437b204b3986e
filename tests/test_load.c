/*
 * test_load.c -- snapshots, ELF pre-checks, descriptors, target specs,
 * oracle discovery and CPU features, against the fixtures in
 * tests/fixtures/abi (built into build/tests/fixtures).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"
#include "kb_gen.h"

#define FX_DIR       KB_TEST_BUILD_DIR "/tests/fixtures/"
#define ORACLE_PQ_L2 KB_TEST_BUILD_DIR "/oracles/pq-l2/oracle.so"

#define assert_contains(s, sub)                                     \
    do {                                                            \
        if (!strstr((s), (sub))) {                                  \
            print_error("expected \"%s\" in \"%s\"\n", (sub), (s)); \
            fail();                                                 \
        }                                                           \
    } while (0)

static const char *fx(const char *name)
{
    static char bufs[4][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, PATH_MAX, "%s%s", FX_DIR, name);
    return b;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s: %s (build the fixtures first)\n", path, strerror(errno));
        fail();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return b;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- digests and snapshots ------------------------------------------- */

static void test_hash_reference(void **state)
{
    (void)state;
    /* xxHash's published sanity vector: XXH3_64bits of no bytes, seed 0. */
    assert_true(kb__hash("", 0, 0) == UINT64_C(0x2D06800538D394C2));
    const char msg[] = "kbench";
    assert_true(kb__hash(msg, 6, 7) == XXH3_64bits_withSeed(msg, 6, 7));
    assert_true(kb__hash(msg, 6, 0) != kb__hash(msg, 6, 1));
    char hex[17];
    kb__hex64(UINT64_C(0x2D06800538D394C2), hex);
    assert_string_equal(hex, "2d06800538d394c2");
    kb__hex64(1, hex);
    assert_string_equal(hex, "0000000000000001");
    kb__hex64(UINT64_MAX, hex);
    assert_string_equal(hex, "ffffffffffffffff");
}

static void test_snapshot_is_sealed_copy(void **state)
{
    (void)state;
    const char *path = fx("fx_newer_minor.so");
    size_t size;
    unsigned char *bytes = read_all(path, &size);
    kb__snapshot s;
    char err[512] = "";
    assert_int_equal(kb__snapshot_take(path, &s, err, sizeof err), 0);
    assert_true(s.fd >= 0);
    assert_true(s.size == size);
    assert_true(s.digest == XXH3_64bits_withSeed(bytes, size, 0));
    char hex[17];
    kb__hex64(s.digest, hex);
    assert_string_equal(s.digest_hex, hex);

    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    assert_int_equal(pread(s.fd, copy, size, 0), (ssize_t)size);
    assert_memory_equal(copy, bytes, size);

    int seals = fcntl(s.fd, F_GET_SEALS);
    int want = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
    assert_int_equal(seals & want, want);
    assert_int_equal(pwrite(s.fd, "x", 1, 0), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(s.fd, 1), -1);
    assert_int_equal(fcntl(s.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
    assert_int_equal(kb__elf_check_fd(s.fd, path, err, sizeof err), 0);

    kb__snapshot_close(&s);
    assert_int_equal(s.fd, -1);
    free(copy);
    free(bytes);
}

static void test_snapshot_refuses(void **state)
{
    (void)state;
    kb__snapshot s;
    char err[512] = "";
    assert_int_equal(kb__snapshot_take(fx("fx_empty.so"), &s, err, sizeof err), KB__EFORMAT);
    assert_contains(err, "fx_empty.so: empty file (0 bytes); the build did not finish?");
    assert_int_equal(s.fd, -1);
    assert_int_not_equal(kb__snapshot_take(fx("no_such_fixture.so"), &s, err, sizeof err), 0);
    assert_contains(err, "no_such_fixture.so: cannot open");
    assert_int_not_equal(kb__snapshot_take(FX_DIR, &s, err, sizeof err), 0);
    assert_contains(err, "not a regular file");
}

/* ---- ELF pre-checks --------------------------------------------------- */

static void test_elf_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *file, *message; /* message NULL: must pass */
    } cases[] = {
        {"fx_newer_minor.so", NULL},
        {"fx_bad_magic.so", NULL},
        {"fx_wrong_major.so", NULL},
        {"fx_struct_too_small.so", NULL},
        {"fx_null_run.so", NULL},
        {"fx_undefined_symbol.so", NULL},
        {"fx_missing_entry.so",
         "does not export kb_plugin_entry_v1; is it a kbench plugin? declare it with KB_EXPORT"},
        {"fx_not_elf.so", "not an ELF file (starts with \"#!/bin/s\")"},
        {"fx_truncated.so", "truncated"},
#if defined(__x86_64__)
        {"fx_wrong_arch.so", "built for aarch64, this host is x86-64"},
#else
        {"fx_wrong_arch.so", "built for x86-64, this host is aarch64"},
#endif
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = fx(cases[i].file);
        char err[512] = "", err2[512] = "";
        kb__snapshot s;
        assert_int_equal(kb__snapshot_take(path, &s, err, sizeof err), 0);
        int rc = kb__elf_check_fd(s.fd, path, err, sizeof err);
        size_t size;
        unsigned char *bytes = read_all(path, &size);
        assert_int_equal(kb__elf_check(bytes, size, path, err2, sizeof err2), rc);
        if (cases[i].message) {
            assert_true(rc < 0);
            assert_true(strncmp(err, path, strlen(path)) == 0);
            assert_contains(err, cases[i].message);
            assert_string_equal(err, err2);
        } else if (rc != 0) {
            print_error("%s: %s\n", cases[i].file, err);
            fail();
        }
        free(bytes);
        kb__snapshot_close(&s);
    }
    char err[512];
    assert_int_equal(kb__elf_check(NULL, 0, "x.so", err, sizeof err), KB__EFORMAT);
    assert_contains(err, "x.so: not an ELF file (it is empty)");
}

/* Every strict prefix of a real plugin is incomplete (the section header
 * table comes last), so each must be refused. Each prefix sits in its own
 * allocation so a sanitizer build catches any read past its end. */
static void test_elf_every_prefix_refused(void **state)
{
    (void)state;
    size_t size;
    unsigned char *bytes = read_all(fx("fx_newer_minor.so"), &size);
    for (size_t len = 0; len < size; len++) {
        unsigned char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, bytes, len);
        char err[256] = "";
        if (kb__elf_check(p, len, "p.so", err, sizeof err) == 0) {
            print_error("a %zu-byte prefix of a %zu-byte plugin was accepted\n", len, size);
            fail();
        }
        assert_true(strncmp(err, "p.so: ", 6) == 0);
        free(p);
    }
    free(bytes);
}

/* Random damage to the headers, dynamic section and symbol tables must
 * give an answer, never a crash or an out-of-bounds read. */
static void test_elf_random_damage(void **state)
{
    (void)state;
    size_t size;
    unsigned char *good = read_all(fx("fx_newer_minor.so"), &size);
    unsigned char *p = malloc(size);
    assert_non_null(p);
    kb_rng r;
    kb_rng_seed(&r, 20240601);
    size_t span = size < 16384 ? size : 16384;
    int refused = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(p, good, size);
        int n = 1 + (int)kb_rng_below(&r, 8);
        for (int k = 0; k < n; k++) {
            size_t at = (size_t)kb_rng_below(&r, span);
            uint64_t v = kb_rng_next(&r);
            if (kb_rng_below(&r, 2) && at + 8 <= size) { /* a whole field, often extreme */
                static const uint64_t extreme[] = {
                    0, 1, 0xffff, 0xffffffffu, UINT64_MAX, UINT64_MAX - 7, UINT64_C(1) << 63};
                uint64_t w = kb_rng_below(&r, 2) ? extreme[kb_rng_below(&r, 7)] : v;
                memcpy(p + at, &w, 8);
            } else {
                p[at] = (unsigned char)v;
            }
        }
        char err[256] = "";
        int rc = kb__elf_check(p, size, "d.so", err, sizeof err);
        assert_true(rc == 0 || rc == KB__EFORMAT || rc == KB__EABI);
        if (rc) {
            refused++;
            assert_true(strncmp(err, "d.so: ", 6) == 0);
        }
    }
    assert_true(refused > 0);
    free(p);
    free(good);
}

typedef struct elf_map {
    unsigned char *b;
    size_t size;
    Elf64_Ehdr *eh;
    size_t dyn_ph; /* offset of the PT_DYNAMIC program header */
} elf_map;

static elf_map elf_open_copy(void)
{
    elf_map m;
    m.b = read_all(fx("fx_newer_minor.so"), &m.size);
    m.eh = (Elf64_Ehdr *)m.b;
    m.dyn_ph = 0;
    for (unsigned i = 0; i < m.eh->e_phnum; i++) {
        size_t at = m.eh->e_phoff + i * sizeof(Elf64_Phdr);
        if (((Elf64_Phdr *)(m.b + at))->p_type == PT_DYNAMIC) m.dyn_ph = at;
    }
    assert_true(m.dyn_ph != 0);
    return m;
}

static Elf64_Dyn *dyn_entry(elf_map *m, int64_t tag)
{
    Elf64_Phdr *ph = (Elf64_Phdr *)(m->b + m->dyn_ph);
    Elf64_Dyn *d = (Elf64_Dyn *)(m->b + ph->p_offset);
    for (; d->d_tag != DT_NULL; d++)
        if (d->d_tag == tag) return d;
    return NULL;
}

static void expect_elf(elf_map *m, int rc, const char *message)
{
    char err[512] = "";
    int got = kb__elf_check(m->b, m->size, "c.so", err, sizeof err);
    if (got != rc) {
        print_error("expected %d, got %d: %s\n", rc, got, err);
        fail();
    }
    if (message) assert_contains(err, message);
    free(m->b);
}

static void test_elf_crafted(void **state)
{
    (void)state;
    elf_map m;
    m = elf_open_copy();
    m.b[EI_CLASS] = ELFCLASS32;
    expect_elf(&m, KB__EFORMAT, "c.so: a 32-bit ELF file");
    m = elf_open_copy();
    m.b[EI_DATA] = ELFDATA2MSB;
    expect_elf(&m, KB__EFORMAT, "big-endian");
    m = elf_open_copy();
    m.eh->e_type = ET_EXEC;
    expect_elf(&m, KB__EFORMAT, "an executable, not a shared object");
    m = elf_open_copy();
    m.eh->e_type = ET_REL;
    expect_elf(&m, KB__EFORMAT, "an object file (.o)");
    m = elf_open_copy();
    m.eh->e_machine = 4242;
    expect_elf(&m, KB__EFORMAT, "built for ELF machine 4242");
    m = elf_open_copy();
    m.eh->e_phentsize = 32;
    expect_elf(&m, KB__EFORMAT, "damaged ELF header");
    m = elf_open_copy();
    m.eh->e_phoff = UINT64_MAX - 16;
    expect_elf(&m, KB__EFORMAT,
               "truncated: program headers end at byte 18446744073709551615 but the file has");
    m = elf_open_copy();
    m.eh->e_shoff = m.size - 10;
    expect_elf(&m, KB__EFORMAT, "truncated: section headers end at byte");
    /* Extended section numbering with an absurd count in section 0. */
    m = elf_open_copy();
    m.eh->e_shnum = 0;
    ((Elf64_Shdr *)(m.b + m.eh->e_shoff))->sh_size = UINT64_MAX / 2;
    expect_elf(&m, KB__EFORMAT, "truncated: section headers end");
    m = elf_open_copy();
    ((Elf64_Phdr *)(m.b + m.dyn_ph))->p_type = PT_NULL;
    expect_elf(&m, KB__EFORMAT, "no dynamic section (PT_DYNAMIC)");
    m = elf_open_copy();
    ((Elf64_Phdr *)(m.b + m.dyn_ph))->p_filesz = m.size;
    expect_elf(&m, KB__EFORMAT, "truncated: the dynamic section ends at byte");
    m = elf_open_copy();
    ((Elf64_Phdr *)(m.b + m.eh->e_phoff))->p_filesz = UINT64_MAX;
    expect_elf(&m, KB__EFORMAT, "truncated: a loadable segment ends");

    /* The name itself: one character changed in the dynamic strings. */
    m = elf_open_copy();
    unsigned char *hit = memmem(m.b, m.size, "kb_plugin_entry_v1", 19);
    assert_non_null(hit);
    hit[17] = '2';
    expect_elf(&m, KB__EABI, "c.so: does not export kb_plugin_entry_v1");

    /* Without a hash table the .dynsym section header is used; without
     * that either, there is no symbol table to trust. */
    m = elf_open_copy();
    Elf64_Dyn *gh = dyn_entry(&m, DT_GNU_HASH);
    assert_non_null(gh);
    assert_null(dyn_entry(&m, DT_HASH));
    gh->d_tag = DT_DEBUG;
    expect_elf(&m, 0, NULL);
    m = elf_open_copy();
    dyn_entry(&m, DT_GNU_HASH)->d_tag = DT_DEBUG;
    m.eh->e_shoff = 0;
    expect_elf(&m, KB__EFORMAT, "no dynamic symbol table");
    /* A GNU hash table whose bucket points past its chains. */
    m = elf_open_copy();
    gh = dyn_entry(&m, DT_GNU_HASH);
    size_t off = gh->d_un.d_ptr; /* first segment: vaddr == offset */
    uint32_t *hdr = (uint32_t *)(m.b + off);
    uint32_t *bucket = hdr + 4 + 2 * hdr[2];
    bucket[0] = 0x7fffffff;
    expect_elf(&m, KB__EFORMAT, "damaged dynamic symbol table");
}

/* ---- descriptors and loading ----------------------------------------- */

static void test_lib_open_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *file, *message;
    } cases[] = {
        {"fx_bad_magic.so",
         "SHOWN: bad magic 0x4b42504c in kb_plugin_entry_v1's descriptor (expected "
         "0x4c50424b); not a kbench plugin or a corrupt build"},
        {"fx_wrong_major.so",
         "SHOWN: built for kbench ABI 2.0, this host speaks 1.x; rebuild against abi/kbench.h"},
        {"fx_struct_too_small.so",
         "SHOWN: struct too small: 40 bytes, ABI 1.0 needs 80; rebuild against abi/kbench.h"},
        {"fx_undefined_symbol.so",
         "undefined symbol: fx_function_defined_nowhere; link every library it needs, or build "
         "with -Wl,--no-undefined"},
        {"fx_missing_entry.so",
         "SHOWN: does not export kb_plugin_entry_v1; is it a kbench plugin? declare it with "
         "KB_EXPORT"},
        {"fx_null_run.so", "SHOWN: vtable incomplete: run is NULL"},
        {"fx_not_elf.so", "SHOWN: cannot load: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kb__lib lib;
        char err[512] = "";
        int rc = kb__lib_open(fx(cases[i].file), "SHOWN", 0, &lib, err, sizeof err);
        assert_true(rc < 0);
        assert_contains(err, cases[i].message);
        assert_true(strncmp(err, "SHOWN: ", 7) == 0);
        assert_null(lib.dl);
        assert_null(lib.plugin);
    }
    /* The descriptor read so far is kept for the report. */
    kb__lib lib;
    char err[512];
    assert_int_not_equal(kb__lib_open(fx("fx_wrong_major.so"), "w", 0, &lib, err, sizeof err), 0);
    assert_int_equal(lib.desc.abi_major, 2);
    assert_string_equal(lib.desc.target, ""); /* another major's layout is never read */
    assert_int_not_equal(kb__lib_open(fx("fx_null_run.so"), "n", 0, &lib, err, sizeof err), 0);
    assert_string_equal(lib.desc.name, "null-run");
}

static void test_lib_open_newer_minor(void **state)
{
    (void)state;
    kb__snapshot s;
    char err[512] = "", load[64];
    assert_int_equal(kb__snapshot_take(fx("fx_newer_minor.so"), &s, err, sizeof err), 0);
    snprintf(load, sizeof load, "/proc/self/fd/%d", s.fd);
    kb__lib lib;
    int rc = kb__lib_open(load, "newer.so", 0, &lib, err, sizeof err);
    if (rc) {
        print_error("%s\n", err);
        fail();
    }
    assert_non_null(lib.plugin);
    assert_null(lib.target);
    assert_int_equal(lib.desc.abi_major, KB_ABI_MAJOR);
    assert_int_equal(lib.desc.abi_minor, KB_ABI_MINOR + 1);
    assert_int_equal(lib.desc.struct_size, sizeof(kb_plugin) + sizeof(void *));
    assert_string_equal(lib.desc.target, "pq-l2");
    assert_string_equal(lib.desc.name, "newer-minor");
    assert_string_equal(lib.desc.version, "1.1");
    assert_int_equal(lib.desc.has_verify, 0);
    assert_int_equal(kb__desc_check(&lib.desc, "newer.so", err, sizeof err), 0);
    kb__lib_close(&lib);
    assert_null(lib.dl);

    /* A bare file name means the file here, never a search of the
     * library path. */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(FX_DIR), 0);
    rc = kb__lib_open("fx_null_run.so", "bare", 0, &lib, err, sizeof err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, KB__EABI);
    assert_contains(err, "bare: vtable incomplete: run is NULL");

    /* Not an oracle: asking for its target spec fails in words. */
    rc = kb__lib_open(fx("fx_newer_minor.so"), "newer.so", 1, &lib, err, sizeof err);
    assert_int_equal(rc, KB__EABI);
    assert_contains(err, "newer.so: does not export kb_target_entry_v1");
    kb__snapshot_close(&s);
}

static int noop_prepare(const kb_host *h, const kb_case *c, const kb_buffer *s, uint32_t n,
                        void **st, char *e, size_t el)
{
    (void)h, (void)c, (void)s, (void)n, (void)st, (void)e, (void)el;
    return KB_OK;
}
static int noop_run(void *st, const kb_buffer *i, uint32_t ni, kb_buffer *o, uint32_t no, char *e,
                    size_t el)
{
    (void)st, (void)i, (void)ni, (void)o, (void)no, (void)e, (void)el;
    return KB_OK;
}
static int noop_verify(void *st, char *e, size_t el)
{
    (void)st, (void)e, (void)el;
    return KB_OK;
}
static void noop_release(void *st)
{
    (void)st;
}

static kb_plugin good_plugin(void)
{
    kb_plugin p = {KB_ABI_MAGIC, KB_ABI_MAJOR, KB_ABI_MINOR, sizeof(kb_plugin), 0,
                   "pq-l2",      "crafted",    "2",          KB_CPU_AVX2,       noop_prepare,
                   noop_run,     NULL,         noop_release};
    return p;
}

static void expect_desc(const kb_plugin *p, int rc, const char *message)
{
    kb__desc d;
    char err[512] = "";
    int got = kb__desc_read(p, &d, "d.so", err, sizeof err);
    if (got != rc) {
        print_error("expected %d, got %d: %s\n", rc, got, err);
        fail();
    }
    if (message) {
        assert_true(strncmp(err, "d.so: ", 6) == 0);
        assert_contains(err, message);
    }
}

static void test_desc_read_members(void **state)
{
    (void)state;
    kb_plugin p = good_plugin();
    kb__desc d;
    char err[512];
    p.verify = noop_verify;
    assert_int_equal(kb__desc_read(&p, &d, "d.so", err, sizeof err), 0);
    assert_int_equal(d.has_verify, 1);
    assert_true(d.cpu_features == KB_CPU_AVX2);
    assert_string_equal(d.version, "2");

    char long_name[100];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    p = good_plugin();
    p.name = long_name;
    expect_desc(&p, KB__EABI, "the descriptor's name is longer than 63 characters");
    long_name[63] = '\0'; /* exactly 63 fits */
    expect_desc(&p, 0, NULL);
    p = good_plugin();
    p.target = NULL;
    expect_desc(&p, KB__EABI, "the descriptor's target is missing or empty");
    p = good_plugin();
    p.name = "";
    expect_desc(&p, KB__EABI, "the descriptor's name is missing or empty");
    p = good_plugin();
    p.name = "two\nlines";
    expect_desc(&p, KB__EABI, "the descriptor's name has a non-printable character");
    p = good_plugin();
    p.version = NULL; /* optional */
    expect_desc(&p, 0, NULL);
    p = good_plugin();
    p.prepare = NULL;
    expect_desc(&p, KB__EABI, "vtable incomplete: prepare is NULL");
    p = good_plugin();
    p.release = NULL;
    expect_desc(&p, KB__EABI, "vtable incomplete: release is NULL");
    /* The header is judged first, in order: magic, major, size. */
    p = good_plugin();
    p.magic = 0;
    p.abi_major = 9;
    p.struct_size = 0;
    expect_desc(&p, KB__EABI, "bad magic 0x00000000");
    p = good_plugin();
    p.abi_major = 2, p.abi_minor = 0;
    p.target = NULL;
    expect_desc(&p, KB__EABI, "built for kbench ABI 2.0, this host speaks 1.x");
    expect_desc(NULL, KB__EABI, "returned NULL");

    /* A descriptor from a worker may not be NUL-terminated. */
    memset(&d, 0, sizeof d);
    d.magic = KB_ABI_MAGIC;
    d.abi_major = KB_ABI_MAJOR;
    d.struct_size = sizeof(kb_plugin);
    memset(d.target, 'x', sizeof d.target);
    strcpy(d.name, "n");
    assert_int_equal(kb__desc_check(&d, "w", err, sizeof err), KB__EABI);
    assert_contains(err, "target has a non-printable character");
}

/* A descriptor that ends at a page boundary: the reader must stay within
 * what struct_size (or the fixed 12-byte header) promises. */
static void test_desc_read_stays_in_bounds(void **state)
{
    (void)state;
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *m =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
    kb_plugin full = good_plugin();

    /* Only the 16-byte header exists: another major's, a bad magic, or
     * one whose struct_size says so. */
    kb_plugin *p = (kb_plugin *)(m + page - 16);
    memcpy(p, &full, 16);
    p->abi_major = 2, p->abi_minor = 0;
    expect_desc(p, KB__EABI, "built for kbench ABI 2.0");
    p->abi_major = KB_ABI_MAJOR;
    p->magic = 0x12345678;
    expect_desc(p, KB__EABI, "bad magic 0x12345678");
    p->magic = KB_ABI_MAGIC;
    p->struct_size = 16;
    expect_desc(p, KB__EABI, "struct too small: 16 bytes, ABI 1.0 needs 80");
    /* 40 bytes: strings, no vtable. */
    p = (kb_plugin *)(m + page - 40);
    memcpy(p, &full, 40);
    p->struct_size = 40;
    kb__desc d;
    char err[512];
    assert_int_equal(kb__desc_read(p, &d, "d.so", err, sizeof err), KB__EABI);
    assert_contains(err, "struct too small: 40 bytes");
    assert_string_equal(d.name, "crafted");
    assert_true(d.cpu_features == 0);
    munmap(m, 2 * (size_t)page);
}

/* ---- target specs ----------------------------------------------------- */

static int fake_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *b,
                         uint32_t n, char *e, size_t el)
{
    (void)cs, (void)seed, (void)set, (void)b, (void)n, (void)e, (void)el;
    return 0;
}

typedef struct spec_fixture {
    kb_target t;
    kb_buffer_spec bufs[KB_MAX_BUFFERS];
    kb_case_spec cases[70];
    char case_names[70][100];
    const char *params[KB_MAX_PARAMS + 2];
} spec_fixture;

static void spec_init(spec_fixture *f)
{
    memset(f, 0, sizeof *f);
    static const kb_buffer_spec bufs[4] = {
        {"codebook", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
        {"query", KB_DT_F32, KB_ROLE_CALL, 0, 0},
        {"codes", KB_DT_U8, KB_ROLE_CALL, 0, 0},
        {"dist", KB_DT_F32, KB_ROLE_OUTPUT, KB_BUF_VARIABLE, 0},
    };
    memcpy(f->bufs, bufs, sizeof bufs);
    for (int i = 0; i < KB_MAX_PARAMS + 2; i++)
        f->params[i] = (const char *[]){"n", "d", "m", "p3", "p4", "p5", "p6", "p7", "p8", "p9"}[i];
    for (int i = 0; i < 70; i++) {
        snprintf(f->case_names[i], sizeof f->case_names[i], "n=%d,d=8,m=2/uniform", i + 1);
        kb_case_spec c = {f->case_names[i],
                          KB_CASE_QUICK,
                          0,
                          {i + 1, 8, 2},
                          {256 * 8, 8, (uint64_t)(i + 1) * 2, (uint64_t)i + 1},
                          100,
                          10};
        f->cases[i] = c;
    }
    kb_target t = {KB_ABI_MAGIC,
                   KB_ABI_MAJOR,
                   KB_ABI_MINOR,
                   sizeof(kb_target),
                   KB_TARGET_COLD_INPUTS,
                   "pq-l2",
                   "a test spec",
                   "nowhere",
                   3,
                   4,
                   f->params,
                   f->bufs,
                   2,
                   0,
                   f->cases,
                   1e-4,
                   fake_generate,
                   NULL,
                   NULL,
                   0,
                   0,
                   0,
                   NULL,
                   NULL};
    f->t = t;
}

static void test_spec_crafted(void **state)
{
    (void)state;
    static spec_fixture f;
    char err[512];
    spec_init(&f);
    if (kb__spec_check(&f.t, "spec.so", err, sizeof err) != 0) {
        print_error("the base spec was refused: %s\n", err);
        fail();
    }
    static const struct {
        const char *message;
    } variants[] = {
        {"buffer 'codebook' (static input) is listed after 'query' (per-call input); list "
         "static inputs, then per-call inputs, then outputs"},
        {"n_cases 0 must be 1..64"},
        {"n_cases 65 must be 1..64"},
        {"case 1: name 'n=1,d=8,m=2/uniform' is already case 0's"},
        {"rel_tol nan must be finite, >= 0 and < 1"},
        {"rel_tol 1 must be finite"},
        {"rel_tol -0.5 must be finite"},
        {"rel_tol inf must be finite"},
        {"case 'n=1,d=8,m=2/uniform': buffer 'codes' has length 0"},
        {"buffer 'codebook' has 274877906945 elements of 4 bytes, over the 2^40-byte limit"},
        {"buffer 'query': KB_BUF_VARIABLE is only for outputs"},
        {"no output buffer"},
        {"no per-call input"},
        {"buffer 'codes': unknown dtype 9"},
        {"buffer 'codes': unknown dtype 0"},
        {"target name \"pq/l2\" must be"},
        {"generate is NULL"},
        {"n_params 9 is over KB_MAX_PARAMS"},
        {"bad magic 0x00000001 in kb_target_entry_v1's spec"},
        {"target spec built for kbench ABI 2.0, this host speaks 1.x"},
        {"kb_target struct too small: 64 bytes, ABI 1.0 needs 96"},
        {"case 0: name must be one line of 1-95 characters"},
        {"case 0: name must be one line"},
        {"buffer name 'query' is used twice"},
        {"parameter name \"n\" is used twice"},
        {"buffer 2: name \"co des\" must be"},
        {"description must be one line"},
        {"buffer 'query': unknown role 4"},
        {"bytes_per_call and flops_per_call must be finite"},
    };
    static char long_name[97];
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        spec_init(&f);
        kb_target *t = &f.t;
        switch (v) {
        case 0:
            f.bufs[0].role = KB_ROLE_CALL, f.bufs[1].role = KB_ROLE_STATIC;
            f.bufs[0].name = "query", f.bufs[1].name = "codebook";
            break;
        case 1: t->n_cases = 0; break;
        case 2: t->n_cases = 65; break;
        case 3: f.cases[1].name = f.cases[0].name; break;
        case 4: t->rel_tol = NAN; break;
        case 5: t->rel_tol = 1.0; break;
        case 6: t->rel_tol = -0.5; break;
        case 7: t->rel_tol = INFINITY; break;
        case 8: f.cases[0].lengths[2] = 0; break;
        case 9: f.cases[1].lengths[0] = (UINT64_C(1) << 38) + 1; break;
        case 10: f.bufs[1].flags = KB_BUF_VARIABLE; break;
        case 11: t->n_buffers = 3; break;
        case 12: f.bufs[1].role = KB_ROLE_STATIC, f.bufs[2].role = KB_ROLE_STATIC; break;
        case 13: f.bufs[2].dtype = 9; break;
        case 14: f.bufs[2].dtype = 0; break;
        case 15: t->name = "pq/l2"; break;
        case 16: t->generate = NULL; break;
        case 17: t->n_params = 9; break;
        case 18: t->magic = 1; break;
        case 19: t->abi_major = 2, t->abi_minor = 0; break;
        case 20: t->struct_size = 64; break;
        case 21: memset(long_name, 'c', 96), f.cases[0].name = long_name; break;
        case 22: f.cases[0].name = "tab\there"; break;
        case 23: f.bufs[2].name = "query"; break;
        case 24: f.params[2] = "n"; break;
        case 25: f.bufs[2].name = "co des"; break;
        case 26: t->description = ""; break;
        case 27: f.bufs[1].role = 4; break;
        case 28: f.cases[0].flops_per_call = NAN; break;
        }
        int rc = kb__spec_check(t, "spec.so", err, sizeof err);
        if (rc == 0) {
            print_error("variant %zu was accepted; expected \"%s\"\n", v, variants[v].message);
            fail();
        }
        assert_true(strncmp(err, "spec.so: ", 9) == 0);
        assert_contains(err, variants[v].message);
    }
    /* The limits themselves are allowed. */
    spec_init(&f);
    f.cases[1].lengths[0] = UINT64_C(1) << 38; /* 2^40 bytes of f32 */
    f.t.n_cases = 64;
    f.t.n_params = KB_MAX_PARAMS;
    f.t.rel_tol = 0;
    memset(long_name, 'c', 95);
    long_name[95] = '\0';
    f.cases[5].name = long_name;
    assert_int_equal(kb__spec_check(&f.t, "spec.so", err, sizeof err), 0);
    assert_int_equal(kb__spec_check(NULL, "spec.so", err, sizeof err), KB__EABI);
}

static void test_spec_real_oracle(void **state)
{
    (void)state;
    if (!exists(ORACLE_PQ_L2)) skip();
    kb__lib lib;
    char err[512] = "";
    int rc = kb__lib_open(ORACLE_PQ_L2, "oracle.so", 1, &lib, err, sizeof err);
    if (rc) {
        print_error("%s\n", err);
        fail();
    }
    assert_non_null(lib.target);
    assert_int_equal(kb__spec_check(lib.target, "oracle.so", err, sizeof err), 0);
    assert_string_equal(lib.target->name, "pq-l2");
    assert_string_equal(lib.desc.target, "pq-l2");
    kb__lib_close(&lib);
}

static void test_dtypes(void **state)
{
    (void)state;
    static const struct {
        uint32_t dt;
        size_t size;
        const char *name;
    } t[] = {
        {KB_DT_U8, sizeof(uint8_t), "u8"},    {KB_DT_U16, sizeof(uint16_t), "u16"},
        {KB_DT_U32, sizeof(uint32_t), "u32"}, {KB_DT_U64, sizeof(uint64_t), "u64"},
        {KB_DT_I32, sizeof(int32_t), "i32"},  {KB_DT_I64, sizeof(int64_t), "i64"},
        {KB_DT_F32, sizeof(float), "f32"},    {KB_DT_F64, sizeof(double), "f64"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(kb__dtype_size(t[i].dt), t[i].size);
        assert_string_equal(kb__dtype_name(t[i].dt), t[i].name);
    }
    assert_int_equal(kb__dtype_size(0), 0);
    assert_int_equal(kb__dtype_size(9), 0);
    assert_string_equal(kb__dtype_name(9), "?");
    assert_string_equal(kb__dtype_name(UINT32_MAX), "?");
}

/* ---- the newer-minor fixture is a working candidate ------------------- */

static void *host_alloc(const kb_host *h, size_t size, size_t align)
{
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) ? NULL : p;
}
static void host_free(const kb_host *h, void *p)
{
    (void)h;
    free(p);
}
static void host_log(const kb_host *h, const char *msg)
{
    (void)h, (void)msg;
}

static float *run_kernel(const kb_plugin *p, const kb_target *t, const kb_case_spec *cs,
                         kb_buffer *bufs)
{
    kb_host host = {sizeof(kb_host), 0, kb__cpu_features(), host_log, host_alloc, host_free};
    kb_case c = {cs->name, t->n_params, 0, cs->params, t->param_names};
    kb_buffer in[KB_MAX_BUFFERS], out[KB_MAX_BUFFERS], statics[KB_MAX_BUFFERS];
    uint32_t ns = 0, ni = 0, no = 0;
    float *dist = NULL;
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        if (t->buffers[b].role == KB_ROLE_OUTPUT) {
            dist = malloc(cs->lengths[b] * sizeof(float));
            assert_non_null(dist);
            for (uint64_t i = 0; i < cs->lengths[b]; i++)
                dist[i] = NAN; /* poison: every element must be written */
            out[no] = bufs[b];
            out[no++].data = dist;
        } else if (t->buffers[b].role == KB_ROLE_CALL) {
            in[ni++] = bufs[b];
        } else {
            statics[ns++] = bufs[b];
        }
    }
    void *st = NULL;
    char err[256] = "";
    int rc = p->prepare(&host, &c, statics, ns, &st, err, sizeof err);
    if (rc == KB_OK) rc = p->run(st, in, ni, out, no, err, sizeof err);
    if (rc != KB_OK) {
        print_error("%s: %s\n", p->name, err);
        fail();
    }
    p->release(st);
    return dist;
}

static void test_newer_minor_matches_oracle(void **state)
{
    (void)state;
    if (!exists(ORACLE_PQ_L2)) skip();
    kb__lib oracle, cand;
    char err[512] = "";
    assert_int_equal(kb__lib_open(ORACLE_PQ_L2, "oracle.so", 1, &oracle, err, sizeof err), 0);
    assert_int_equal(kb__lib_open(fx("fx_newer_minor.so"), "newer.so", 0, &cand, err, sizeof err),
                     0);
    const kb_target *t = oracle.target;
    /* The smallest case keeps the test fast. */
    const kb_case_spec *cs = &t->cases[0];
    double best = INFINITY;
    for (uint32_t i = 0; i < t->n_cases; i++) {
        double bytes = 0;
        for (uint32_t b = 0; b < t->n_buffers; b++)
            bytes += (double)t->cases[i].lengths[b] * kb__dtype_size(t->buffers[b].dtype);
        if (bytes < best) best = bytes, cs = &t->cases[i];
    }
    kb_buffer bufs[KB_MAX_BUFFERS];
    memset(bufs, 0, sizeof bufs);
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        bufs[b].count = cs->lengths[b];
        bufs[b].dtype = t->buffers[b].dtype;
        if (t->buffers[b].role != KB_ROLE_OUTPUT) {
            bufs[b].data = calloc(cs->lengths[b], kb__dtype_size(bufs[b].dtype));
            assert_non_null(bufs[b].data);
        }
    }
    uint64_t n_out = 0;
    for (uint32_t set = 0; set < 2; set++) {
        assert_int_equal(t->generate(cs, 42, set, bufs, t->n_buffers, err, sizeof err), 0);
        float *want = run_kernel(oracle.plugin, t, cs, bufs);
        float *got = run_kernel(cand.plugin, t, cs, bufs);
        for (uint32_t b = 0; b < t->n_buffers; b++)
            if (t->buffers[b].role == KB_ROLE_OUTPUT) n_out = cs->lengths[b];
        assert_true(n_out > 0);
        for (uint64_t i = 0; i < n_out; i++) assert_false(isnan(want[i]));
        /* Same arithmetic order as the oracle: bit-exact. */
        assert_memory_equal(got, want, n_out * sizeof(float));
        free(want);
        free(got);
    }
    for (uint32_t b = 0; b < t->n_buffers; b++) free(bufs[b].data);
    kb__lib_close(&cand);
    kb__lib_close(&oracle);
}

/* ---- oracle discovery ------------------------------------------------- */

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void test_oracle_find(void **state)
{
    (void)state;
    char dir[] = "/tmp/kb-test-load-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX], path[PATH_MAX], err[1024];
    snprintf(p1, sizeof p1, "%s/pq-l2", dir);
    snprintf(p2, sizeof p2, "%s/pq-l2/oracle.so", dir);
    snprintf(p3, sizeof p3, "%s/dir-only", dir);
    assert_int_equal(mkdir(p1, 0755), 0);
    touch(p2);
    assert_int_equal(kb__oracle_find("pq-l2", dir, path, sizeof path, err, sizeof err), 0);
    assert_string_equal(path, p2);
    assert_int_equal(kb__oracle_find("pq-l2", dir, path, 8, err, sizeof err), KB__EUSAGE);

    /* A directory named oracle.so is not an oracle. */
    char p4[PATH_MAX];
    snprintf(p4, sizeof p4, "%s/dir-only/oracle.so", dir);
    assert_int_equal(mkdir(p3, 0755), 0);
    assert_int_equal(mkdir(p4, 0755), 0);
    assert_int_equal(kb__oracle_find("dir-only", dir, path, sizeof path, err, sizeof err),
                     KB__ENOTFOUND);
    assert_contains(err, "no oracle for target 'dir-only': looked in ");
    assert_contains(err, p4);
    char build[PATH_MAX], want[PATH_MAX + 64];
    assert_non_null(realpath(KB_TEST_BUILD_DIR, build));
    snprintf(want, sizeof want, "%s/oracles/dir-only/oracle.so", build);
    assert_contains(err, want);
    assert_contains(err, KB_INSTALL_ORACLE_DIR "/dir-only/oracle.so");
    assert_contains(err, "; build it or pass --oracles DIR");

    static const char *const bad[] = {"../pq-l2", "pq-l2/..", "a/b", "", "PQ-L2", "..", "pq l2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kb__oracle_find(bad[i], dir, path, sizeof path, err, sizeof err),
                         KB__EUSAGE);
        assert_contains(err, "is not a target name");
    }

    /* Next to the binary: the test runs from the build dir. */
    if (exists(ORACLE_PQ_L2)) {
        assert_int_equal(kb__oracle_find("pq-l2", NULL, path, sizeof path, err, sizeof err), 0);
        snprintf(want, sizeof want, "%s/oracles/pq-l2/oracle.so", build);
        assert_string_equal(path, want);
    }
    rmdir(p4);
    rmdir(p3);
    unlink(p2);
    rmdir(p1);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- CPU features ----------------------------------------------------- */

static void test_cpu_features(void **state)
{
    (void)state;
    uint64_t f = kb__cpu_features();
    assert_true(f == kb__cpu_features());
#if defined(__x86_64__)
    /* GCC's own detection (libgcc), which also checks XCR0. */
    __builtin_cpu_init();
    const struct {
        uint64_t bit;
        int has;
    } t[] = {
        {KB_CPU_SSE42, __builtin_cpu_supports("sse4.2")},
        {KB_CPU_POPCNT, __builtin_cpu_supports("popcnt")},
        {KB_CPU_AVX, __builtin_cpu_supports("avx")},
        {KB_CPU_AVX2, __builtin_cpu_supports("avx2")},
        {KB_CPU_FMA, __builtin_cpu_supports("fma")},
        {KB_CPU_BMI2, __builtin_cpu_supports("bmi2")},
        {KB_CPU_AVX512F, __builtin_cpu_supports("avx512f")},
        {KB_CPU_AVX512BW, __builtin_cpu_supports("avx512bw")},
        {KB_CPU_AVX512VL, __builtin_cpu_supports("avx512vl")},
        {KB_CPU_AVX512DQ, __builtin_cpu_supports("avx512dq")},
        {KB_CPU_AVX512VNNI, __builtin_cpu_supports("avx512vnni")},
        {KB_CPU_AVX512VBMI2, __builtin_cpu_supports("avx512vbmi2")},
        {KB_CPU_AVX512VP2INTERSECT, __builtin_cpu_supports("avx512vp2intersect")},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char name[32];
        kb__cpu_feature_names(t[i].bit, name, sizeof name);
        if (!!(f & t[i].bit) != !!t[i].has) {
            print_error("%s: kbench says %d, libgcc says %d\n", name, !!(f & t[i].bit), !!t[i].has);
            fail();
        }
    }
    assert_true((f & (KB_CPU_NEON | KB_CPU_SVE)) == 0);
#elif defined(__aarch64__)
    assert_true(f & KB_CPU_NEON); /* ASIMD is mandatory on aarch64 Linux */
    assert_true((f & KB_CPU_AVX) == 0);
#endif
}

static void test_cpu_feature_names(void **state)
{
    (void)state;
    char out[512];
    kb__cpu_feature_names(KB_CPU_AVX2 | KB_CPU_FMA, out, sizeof out);
    assert_string_equal(out, "avx2 fma");
    kb__cpu_feature_names(0, out, sizeof out);
    assert_string_equal(out, "");
    kb__cpu_feature_names(UINT64_C(0x300001fff), out, sizeof out);
    assert_string_equal(out, "sse4.2 popcnt avx avx2 fma bmi2 avx512f avx512bw avx512vl "
                             "avx512dq avx512vnni avx512vbmi2 avx512vp2intersect neon sve");
    kb__cpu_feature_names(KB_CPU_AVX | (UINT64_C(1) << 20), out, sizeof out);
    assert_string_equal(out, "avx bit20");
    /* Bounded: never writes past out_len, always terminated. */
    memset(out, '#', sizeof out);
    kb__cpu_feature_names(KB_CPU_AVX2 | KB_CPU_FMA, out, 6);
    assert_string_equal(out, "avx2 ");
    assert_int_equal(out[6], '#');
    kb__cpu_feature_names(KB_CPU_AVX2, out, 0);
    assert_int_equal(out[0], 'a');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_reference),
        cmocka_unit_test(test_snapshot_is_sealed_copy),
        cmocka_unit_test(test_snapshot_refuses),
        cmocka_unit_test(test_elf_fixtures),
        cmocka_unit_test(test_elf_every_prefix_refused),
        cmocka_unit_test(test_elf_random_damage),
        cmocka_unit_test(test_elf_crafted),
        cmocka_unit_test(test_lib_open_fixtures),
        cmocka_unit_test(test_lib_open_newer_minor),
        cmocka_unit_test(test_desc_read_members),
        cmocka_unit_test(test_desc_read_stays_in_bounds),
        cmocka_unit_test(test_spec_crafted),
        cmocka_unit_test(test_spec_real_oracle),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_newer_minor_matches_oracle),
        cmocka_unit_test(test_oracle_find),
        cmocka_unit_test(test_cpu_features),
        cmocka_unit_test(test_cpu_feature_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
