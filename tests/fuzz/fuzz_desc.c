/*
 * fuzz_desc.c -- the plugin descriptor, both ways the host meets it:
 *
 *  - kb__desc_read on a kb_plugin built from fuzz bytes: header fields
 *    chosen by the input (often the right magic and major, so the fuzzer
 *    gets past them), strings as exactly-sized heap copies of input bytes,
 *    vtable members NULL or not. The struct lives in a heap block of
 *    exactly struct_size bytes (at least the 12-byte header every version
 *    has), so reading a member the plugin did not declare is an ASan error.
 *  - kb__desc_check on a kb__desc that is raw input bytes, as if a hostile
 *    worker had sent it over its socket: unterminated and unprintable
 *    fields included.
 *
 * Properties: an accepted descriptor has printable, terminated, non-empty
 * target and name, matches what the plugin declared, and passes the check
 * again; a refusal says why in one line.
 */
#include <stddef.h>

#include "fuzz.h"
#include "cli.h"
#include "kb.h"
#include "report.h"
#include "session.h"

static int dummy_prepare(const kb_host *h, const kb_case *c, const kb_buffer *s, uint32_t n,
                         void **st, char *e, size_t el)
{
    (void)h, (void)c, (void)s, (void)n, (void)st, (void)e, (void)el;
    return 0;
}
static int dummy_run(void *st, const kb_buffer *i, uint32_t ni, kb_buffer *o, uint32_t no, char *e,
                     size_t el)
{
    (void)st, (void)i, (void)ni, (void)o, (void)no, (void)e, (void)el;
    return 0;
}
static int dummy_verify(void *st, char *e, size_t el)
{
    (void)st, (void)e, (void)el;
    return 0;
}
static void dummy_release(void *st)
{
    (void)st;
}

#define HEADER_SIZE 12 /* magic, abi_major, abi_minor, struct_size */
#define V1_0_SIZE   sizeof(kb_plugin)

static void check_message(int rc, const char *err)
{
    FZ_CHECK(rc <= 0, "rc %d", rc);
    if (rc) FZ_CHECK(err[0] && !strchr(err, '\n'), "bad message for rc %d: '%s'", rc, err);
}

static int printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e) return 0;
    return 1;
}

static char *maybe_str(fz_in *in)
{
    return fz_u8(in) % 4 == 0 ? NULL : fz_str(in);
}

static void from_plugin(fz_in *in)
{
    kb_plugin p;
    memset(&p, 0, sizeof p);
    uint8_t sel = fz_u8(in);
    p.magic = sel & 1 ? KB_ABI_MAGIC : fz_u32(in);
    p.abi_major = sel & 2 ? KB_ABI_MAJOR : fz_u16(in);
    p.abi_minor = fz_u16(in);
    uint8_t sz = fz_u8(in);
    p.struct_size = sz < 0xf0 ? sz : fz_u32(in);
    p.flags = fz_u32(in);
    p.target = maybe_str(in);
    p.name = maybe_str(in);
    p.version = maybe_str(in);
    p.cpu_features = fz_u64(in);
    uint8_t fns = fz_u8(in);
    p.prepare = fns & 1 ? dummy_prepare : NULL;
    p.run = fns & 2 ? dummy_run : NULL;
    p.verify = fns & 4 ? dummy_verify : NULL;
    p.release = fns & 8 ? dummy_release : NULL;

    /* What the plugin declared is all it has. A newer minor (struct_size
     * past v1.0) gets a zeroed tail of up to 64 bytes the host must not
     * need. */
    size_t have = p.struct_size < HEADER_SIZE ? HEADER_SIZE : p.struct_size;
    if (have > V1_0_SIZE + 64) have = V1_0_SIZE + 64;
    unsigned char *block = calloc(1, have);
    FZ_CHECK(block, "out of memory");
    memcpy(block, &p, have < sizeof p ? have : sizeof p);

    kb__desc d;
    char err[512] = "";
    int rc = kb__desc_read((const kb_plugin *)(void *)block, &d, "fuzz.so", err, sizeof err);
    fz_note("desc_read", rc, err);
    check_message(rc, err);
    if (rc == 0) {
        FZ_CHECK(p.magic == KB_ABI_MAGIC && p.abi_major == KB_ABI_MAJOR, "bad header accepted");
        FZ_CHECK(p.struct_size >= V1_0_SIZE, "struct_size %u accepted", p.struct_size);
        FZ_CHECK(p.prepare && p.run && p.release, "incomplete vtable accepted");
        FZ_CHECK(p.target && p.name && strcmp(d.target, p.target) == 0 &&
                     strcmp(d.name, p.name) == 0,
                 "names not copied faithfully");
        FZ_CHECK(p.version ? strcmp(d.version, p.version) == 0 : d.version[0] == '\0',
                 "version not copied faithfully");
        FZ_CHECK(d.cpu_features == p.cpu_features, "cpu_features");
        FZ_CHECK(d.has_verify == (p.verify != NULL), "has_verify");
        FZ_CHECK(printable(d.target, sizeof d.target) && d.target[0], "target");
        FZ_CHECK(printable(d.name, sizeof d.name) && d.name[0], "name");
        FZ_CHECK(printable(d.version, sizeof d.version), "version");
        char err2[512] = "";
        FZ_CHECK(kb__desc_check(&d, "fuzz.so", err2, sizeof err2) == 0,
                 "read accepts what check refuses: %s", err2);
    }
    free(block);
}

static void from_wire(fz_in *in)
{
    kb__desc *d = malloc(sizeof *d);
    FZ_CHECK(d, "out of memory");
    fz_bytes(in, d, sizeof *d);
    char err[512] = "";
    int rc = kb__desc_check(d, "fuzz.so", err, sizeof err);
    fz_note("desc_check", rc, err);
    check_message(rc, err);
    if (rc == 0) {
        FZ_CHECK(d->magic == KB_ABI_MAGIC && d->abi_major == KB_ABI_MAJOR &&
                     d->struct_size >= V1_0_SIZE,
                 "bad header accepted");
        FZ_CHECK(printable(d->target, sizeof d->target) && d->target[0], "target");
        FZ_CHECK(printable(d->name, sizeof d->name) && d->name[0], "name");
        FZ_CHECK(printable(d->version, sizeof d->version), "version");
    }
    free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    if (fz_u8(&in) & 1)
        from_wire(&in);
    else
        from_plugin(&in);
    fz_free_all();
    return 0;
}
