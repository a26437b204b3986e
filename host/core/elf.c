/*
 * elf.c -- checks a plugin file before any of its code runs.
 *
 * dlopen() of a truncated, foreign or non-plugin file either fails with a
 * terse message or runs constructors first; these checks read the bytes
 * only and say in words what is wrong. The input is untrusted (and fuzzed):
 * every offset is checked against the file size before it is read, with
 * arithmetic that cannot wrap, and multi-byte fields are copied out with
 * memcpy because nothing in the file is known to be aligned.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "kb.h"

#if defined(__x86_64__)
#define KB__EM_HOST EM_X86_64
#elif defined(__aarch64__)
#define KB__EM_HOST EM_AARCH64
#else
#error "kbench hosts are x86-64 or aarch64"
#endif
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ELF reader assumes a little-endian host"
#endif

static const char KB__ENTRY[] = "kb_plugin_entry_v1";

typedef struct elf_file {
    const unsigned char *b;
    uint64_t size;
    Elf64_Ehdr eh;
} elf_file;

/* The dynamic symbols: where the table and its strings sit in the file. */
typedef struct dynsyms {
    uint64_t sym_off, count;
    uint64_t str_off, str_size;
} dynsyms;

static int in_file(const elf_file *f, uint64_t off, uint64_t len)
{
    return off <= f->size && len <= f->size - off;
}

static uint64_t end_of(uint64_t off, uint64_t len)
{
    return len > UINT64_MAX - off ? UINT64_MAX : off + len;
}

static const char *machine_name(unsigned m)
{
    switch (m) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "aarch64";
    case EM_386: return "i386";
    case EM_ARM: return "32-bit arm";
    case EM_RISCV: return "riscv";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390";
    default: return NULL;
    }
}

static int not_elf(const unsigned char *b, size_t size, const char *path, char *err, size_t err_len)
{
    char shown[40] = "";
    size_t o = 0;
    for (size_t i = 0; i < size && i < 8; i++) {
        unsigned char c = b[i];
        int n = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                    ? snprintf(shown + o, sizeof shown - o, "%c", c)
                    : snprintf(shown + o, sizeof shown - o, "\\x%02x", c);
        o += (size_t)n;
    }
    if (size == 0)
        kb__errf(err, err_len,
                 "%s: not an ELF file (it is empty); pass a .so built by kbench_add_plugin", path);
    else
        kb__errf(err, err_len,
                 "%s: not an ELF file (starts with \"%s\"); pass a .so built by "
                 "kbench_add_plugin",
                 path, shown);
    return KB__EFORMAT;
}

/* `what_ends`: "program headers end", "the dynamic section ends", ... */
static int truncated(const char *path, const char *what_ends, uint64_t end, uint64_t size,
                     char *err, size_t err_len)
{
    kb__errf(err, err_len,
             "%s: truncated: %s at byte %" PRIu64 " but the file has %" PRIu64 " bytes; rebuild it",
             path, what_ends, end, size);
    return KB__EFORMAT;
}

static void read_phdr(const elf_file *f, unsigned i, Elf64_Phdr *ph)
{
    /* The whole table was checked to lie inside the file. */
    memcpy(ph, f->b + f->eh.e_phoff + (uint64_t)i * sizeof *ph, sizeof *ph);
}

/* Maps a virtual address to a file offset through the PT_LOAD segments
 * (all checked to lie inside the file); *avail is what the segment holds
 * from there on. */
static int vaddr_off(const elf_file *f, uint64_t va, uint64_t *off, uint64_t *avail)
{
    for (unsigned i = 0; i < f->eh.e_phnum; i++) {
        Elf64_Phdr ph;
        read_phdr(f, i, &ph);
        if (ph.p_type == PT_LOAD && va >= ph.p_vaddr && va - ph.p_vaddr < ph.p_filesz) {
            *off = ph.p_offset + (va - ph.p_vaddr);
            *avail = ph.p_filesz - (va - ph.p_vaddr);
            return 0;
        }
    }
    return -1;
}

static uint32_t u32_at(const elf_file *f, uint64_t off)
{
    uint32_t v;
    memcpy(&v, f->b + off, sizeof v);
    return v;
}

/* Number of dynamic symbols from DT_GNU_HASH: one past the last symbol of
 * the longest-numbered chain (the table stores no count). */
static int gnu_hash_count(const elf_file *f, uint64_t off, uint64_t avail, uint64_t *count)
{
    if (avail < 16) return -1;
    uint32_t nbuckets = u32_at(f, off), symoffset = u32_at(f, off + 4);
    uint32_t bloom_words = u32_at(f, off + 8);
    uint64_t buckets = 16 + (uint64_t)bloom_words * 8;
    uint64_t chains = buckets + (uint64_t)nbuckets * 4;
    if (chains > avail) return -1;
    uint32_t last = 0;
    for (uint64_t i = 0; i < nbuckets; i++) {
        uint32_t b = u32_at(f, off + buckets + i * 4);
        last = b > last ? b : last;
    }
    if (last == 0) {
        *count = symoffset;
        return 0;
    }
    if (last < symoffset) return -1;
    for (uint64_t i = last;; i++) {
        uint64_t at = chains + (i - symoffset) * 4;
        if (at > avail || avail - at < 4) return -1;
        if (u32_at(f, off + at) & 1) {
            *count = i + 1;
            return 0;
        }
    }
}

/* The table the dynamic loader uses: DT_SYMTAB/DT_STRTAB, counted through
 * DT_GNU_HASH or DT_HASH. 1: the file has no such table; -1: damaged. */
static int syms_from_dynamic(const elf_file *f, const Elf64_Phdr *dyn, dynsyms *t)
{
    uint64_t v[5] = {0, 0, 0, 0, 0}; /* symtab, strtab, strsz, gnu_hash, hash */
    uint64_t syment = sizeof(Elf64_Sym);
    for (uint64_t k = 0; k < dyn->p_filesz / sizeof(Elf64_Dyn); k++) {
        Elf64_Dyn d;
        memcpy(&d, f->b + dyn->p_offset + k * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL) break;
        switch (d.d_tag) {
        case DT_SYMTAB: v[0] = d.d_un.d_ptr; break;
        case DT_STRTAB: v[1] = d.d_un.d_ptr; break;
        case DT_STRSZ: v[2] = d.d_un.d_val; break;
        case DT_GNU_HASH: v[3] = d.d_un.d_ptr; break;
        case DT_HASH: v[4] = d.d_un.d_ptr; break;
        case DT_SYMENT: syment = d.d_un.d_val; break;
        }
    }
    if (!v[0] || !v[1] || (!v[3] && !v[4])) return 1;
    uint64_t off, avail;
    if (syment != sizeof(Elf64_Sym)) return -1;
    if (v[3]) {
        if (vaddr_off(f, v[3], &off, &avail) || gnu_hash_count(f, off, avail, &t->count)) return -1;
    } else {
        if (vaddr_off(f, v[4], &off, &avail) || avail < 8) return -1;
        t->count = u32_at(f, off + 4); /* nchain == number of symbols */
    }
    if (vaddr_off(f, v[0], &t->sym_off, &avail) || t->count > avail / sizeof(Elf64_Sym)) return -1;
    if (vaddr_off(f, v[1], &t->str_off, &avail)) return -1;
    t->str_size = v[2] ? v[2] : avail;
    return t->str_size <= avail ? 0 : -1;
}

/* The .dynsym section, for files whose dynamic section has no hash table.
 * The section header table was checked to lie inside the file. */
static int syms_from_sections(const elf_file *f, uint64_t shnum, dynsyms *t)
{
    for (uint64_t i = 0; i < shnum; i++) {
        Elf64_Shdr sh, str;
        memcpy(&sh, f->b + f->eh.e_shoff + i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_DYNSYM) continue;
        if (sh.sh_entsize != sizeof(Elf64_Sym) || !in_file(f, sh.sh_offset, sh.sh_size) ||
            sh.sh_link >= shnum)
            return -1;
        memcpy(&str, f->b + f->eh.e_shoff + (uint64_t)sh.sh_link * sizeof str, sizeof str);
        if (str.sh_type != SHT_STRTAB || !in_file(f, str.sh_offset, str.sh_size)) return -1;
        t->sym_off = sh.sh_offset;
        t->count = sh.sh_size / sizeof(Elf64_Sym);
        t->str_off = str.sh_offset;
        t->str_size = str.sh_size;
        return 0;
    }
    return 1;
}

/* NULL when exported as a defined function, else why not ("" if absent). */
static const char *find_entry(const elf_file *f, const dynsyms *t)
{
    const char *why = "";
    for (uint64_t i = 0; i < t->count; i++) {
        Elf64_Sym s;
        memcpy(&s, f->b + t->sym_off + i * sizeof s, sizeof s);
        if (s.st_name >= t->str_size || t->str_size - s.st_name < sizeof KB__ENTRY ||
            memcmp(f->b + t->str_off + s.st_name, KB__ENTRY, sizeof KB__ENTRY) != 0)
            continue;
        unsigned bind = ELF64_ST_BIND(s.st_info), vis = ELF64_ST_VISIBILITY(s.st_other);
        if (s.st_shndx == SHN_UNDEF)
            why = " (it only references it)";
        else if (ELF64_ST_TYPE(s.st_info) != STT_FUNC)
            why = " (the symbol is not a function)";
        else if ((bind != STB_GLOBAL && bind != STB_WEAK) ||
                 (vis != STV_DEFAULT && vis != STV_PROTECTED))
            why = " (the symbol is not visible)";
        else
            return NULL;
    }
    return why;
}

static int check_headers(elf_file *f, const char *path, uint64_t *shnum, char *err, size_t err_len)
{
    const Elf64_Ehdr *eh = &f->eh;
    if (eh->e_machine != KB__EM_HOST) {
        const char *name = machine_name(eh->e_machine);
        char num[32];
        snprintf(num, sizeof num, "ELF machine %u", eh->e_machine);
        kb__errf(err, err_len, "%s: built for %s, this host is %s; rebuild it for this machine",
                 path, name ? name : num, machine_name(KB__EM_HOST));
        return KB__EFORMAT;
    }
    if (eh->e_type != ET_DYN) {
        const char *what = eh->e_type == ET_REL    ? "an object file (.o)"
                           : eh->e_type == ET_EXEC ? "an executable"
                           : eh->e_type == ET_CORE ? "a core dump"
                                                   : "an ELF file of unknown type";
        kb__errf(err, err_len, "%s: %s, not a shared object; build it with kbench_add_plugin", path,
                 what);
        return KB__EFORMAT;
    }
    if (eh->e_phnum == 0 || eh->e_phentsize != sizeof(Elf64_Phdr)) {
        kb__errf(err, err_len,
                 "%s: damaged ELF header (%u program headers of %u bytes); rebuild it", path,
                 eh->e_phnum, eh->e_phentsize);
        return KB__EFORMAT;
    }
    uint64_t ph_len = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
    if (!in_file(f, eh->e_phoff, ph_len))
        return truncated(path, "program headers end", end_of(eh->e_phoff, ph_len), f->size, err,
                         err_len);
    *shnum = 0;
    if (eh->e_shoff == 0) return 0;
    if (eh->e_shentsize != sizeof(Elf64_Shdr)) {
        kb__errf(err, err_len, "%s: damaged ELF header (section headers of %u bytes); rebuild it",
                 path, eh->e_shentsize);
        return KB__EFORMAT;
    }
    *shnum = eh->e_shnum;
    if (*shnum == 0) { /* extended numbering: section 0 holds the count */
        Elf64_Shdr sh0;
        if (!in_file(f, eh->e_shoff, sizeof sh0))
            return truncated(path, "section headers end", end_of(eh->e_shoff, sizeof sh0), f->size,
                             err, err_len);
        memcpy(&sh0, f->b + eh->e_shoff, sizeof sh0);
        *shnum = sh0.sh_size;
    }
    uint64_t sh_len =
        *shnum > UINT64_MAX / sizeof(Elf64_Shdr) ? UINT64_MAX : *shnum * sizeof(Elf64_Shdr);
    if (!in_file(f, eh->e_shoff, sh_len))
        return truncated(path, "section headers end", end_of(eh->e_shoff, sh_len), f->size, err,
                         err_len);
    return 0;
}

int kb__elf_check(const void *bytes, size_t size, const char *path, char *err, size_t err_len)
{
    elf_file f = {.b = bytes, .size = size};
    if (size < SELFMAG || memcmp(bytes, ELFMAG, SELFMAG) != 0)
        return not_elf(bytes, size, path, err, err_len);
    if (size > EI_CLASS && f.b[EI_CLASS] != ELFCLASS64) {
        kb__errf(err, err_len, "%s: a 32-bit ELF file; kbench plugins are 64-bit, rebuild it",
                 path);
        return KB__EFORMAT;
    }
    if (size > EI_DATA && f.b[EI_DATA] != ELFDATA2LSB) {
        kb__errf(err, err_len, "%s: a big-endian ELF file; this host is little-endian", path);
        return KB__EFORMAT;
    }
    if (size < sizeof(Elf64_Ehdr))
        return truncated(path, "the ELF header ends", sizeof(Elf64_Ehdr), size, err, err_len);
    memcpy(&f.eh, bytes, sizeof f.eh);

    uint64_t shnum;
    int rc = check_headers(&f, path, &shnum, err, err_len);
    if (rc) return rc;

    Elf64_Phdr dyn = {0};
    int have_dyn = 0;
    for (unsigned i = 0; i < f.eh.e_phnum; i++) {
        Elf64_Phdr ph;
        read_phdr(&f, i, &ph);
        if (ph.p_type != PT_LOAD && ph.p_type != PT_DYNAMIC) continue;
        if (!in_file(&f, ph.p_offset, ph.p_filesz))
            return truncated(
                path, ph.p_type == PT_LOAD ? "a loadable segment ends" : "the dynamic section ends",
                end_of(ph.p_offset, ph.p_filesz), size, err, err_len);
        if (ph.p_type == PT_DYNAMIC && !have_dyn) {
            dyn = ph;
            have_dyn = 1;
        }
    }
    if (!have_dyn) {
        kb__errf(err, err_len,
                 "%s: no dynamic section (PT_DYNAMIC), so not a shared library; build it with "
                 "kbench_add_plugin",
                 path);
        return KB__EFORMAT;
    }

    dynsyms t;
    rc = syms_from_dynamic(&f, &dyn, &t);
    if (rc == 1) rc = syms_from_sections(&f, shnum, &t);
    if (rc != 0) {
        kb__errf(err, err_len, "%s: %s dynamic symbol table; rebuild it with kbench_add_plugin",
                 path, rc < 0 ? "damaged" : "no");
        return KB__EFORMAT;
    }
    const char *why = find_entry(&f, &t);
    if (why) {
        /* A library without the entry at all is most often a plain library
         * its user wants timed: --foreign is the way, and says so. */
        kb__errf(err, err_len,
                 "%s: does not export %s%s; is it a kbench plugin? declare it with KB_EXPORT%s%s%s",
                 path, KB__ENTRY, why, *why ? "" : "; " KB__FOREIGN_HINT_A, *why ? "" : path,
                 *why ? "" : KB__FOREIGN_HINT_B);
        return KB__EABI;
    }
    return 0;
}

/* ---- what the plugin asks the loader for (kb__elf_deps) ----------------- */

/* The NUL-terminated string at offset `at` of the dynamic string table, or
 * NULL when it runs off the table. */
static const char *dyn_str(const elf_file *f, uint64_t str_off, uint64_t str_size, uint64_t at)
{
    if (at >= str_size || !memchr(f->b + str_off + at, '\0', str_size - at)) return NULL;
    return (const char *)f->b + str_off + at;
}

static int dep_refused(const char *path, const char *what, const char *value, char *err,
                       size_t err_len)
{
    char shown[96];
    size_t i = 0;
    for (; value[i] && i + 1 < sizeof shown; i++)
        shown[i] = value[i] < 0x20 || value[i] > 0x7e ? '?' : value[i];
    shown[i] = '\0';
    kb__errf(err, err_len,
             "%s: %s \"%s\": kbench loads a plugin's libraries only from the system's library "
             "directories, so the code it measures is the code it hashed; link that library "
             "statically, or install it system-wide and link it by name without -rpath",
             path, what, shown);
    return KB__EFORMAT;
}

static int dyn_table(const elf_file *f, const Elf64_Phdr *dyn, uint64_t *str_off,
                     uint64_t *str_size)
{
    uint64_t strtab = 0, strsz = 0, avail;
    for (uint64_t k = 0; k < dyn->p_filesz / sizeof(Elf64_Dyn); k++) {
        Elf64_Dyn d;
        memcpy(&d, f->b + dyn->p_offset + k * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL) break;
        if (d.d_tag == DT_STRTAB)
            strtab = d.d_un.d_ptr;
        else if (d.d_tag == DT_STRSZ)
            strsz = d.d_un.d_val;
    }
    if (!strtab || vaddr_off(f, strtab, str_off, &avail) != 0) return -1;
    *str_size = strsz && strsz <= avail ? strsz : avail;
    return 0;
}

int kb__elf_deps(const void *bytes, size_t size, const char *path, kb__deps *deps, char *err,
                 size_t err_len)
{
    memset(deps, 0, sizeof *deps);
    elf_file f = {.b = bytes, .size = size};
    char e2[8];
    uint64_t shnum;
    if (size < sizeof(Elf64_Ehdr) || memcmp(bytes, ELFMAG, SELFMAG) != 0 ||
        f.b[EI_CLASS] != ELFCLASS64 || f.b[EI_DATA] != ELFDATA2LSB)
        return 1;
    memcpy(&f.eh, bytes, sizeof f.eh);
    if (check_headers(&f, path, &shnum, e2, sizeof e2) != 0) return 1;
    /* vaddr_off trusts every PT_LOAD to lie inside the file */
    Elf64_Phdr dyn = {0}, ph;
    int have = 0;
    for (unsigned i = 0; i < f.eh.e_phnum; i++) {
        read_phdr(&f, i, &ph);
        if ((ph.p_type == PT_LOAD || ph.p_type == PT_DYNAMIC) &&
            !in_file(&f, ph.p_offset, ph.p_filesz))
            return 1;
        if (ph.p_type == PT_DYNAMIC && !have) {
            dyn = ph;
            have = 1;
        }
    }
    uint64_t str_off, str_size;
    if (!have || dyn_table(&f, &dyn, &str_off, &str_size) != 0) return 1;
    for (uint64_t k = 0; k < dyn.p_filesz / sizeof(Elf64_Dyn); k++) {
        Elf64_Dyn d;
        memcpy(&d, f.b + dyn.p_offset + k * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL) break;
        /* Filters and audit libraries are loaded by the loader too, by any
         * name or path: "filtee" symbols take precedence over the plugin's. */
        const char *other = d.d_tag == DT_FILTER ? "has a filter library (DT_FILTER)"
                            : d.d_tag == DT_AUXILIARY
                                ? "has an auxiliary filter library (DT_AUXILIARY)"
                            : d.d_tag == DT_AUDIT    ? "names an audit library (DT_AUDIT)"
                            : d.d_tag == DT_DEPAUDIT ? "names an audit library (DT_DEPAUDIT)"
                                                     : NULL;
        if (other) {
            const char *s = dyn_str(&f, str_off, str_size, d.d_un.d_val);
            return dep_refused(path, other, s ? s : "", err, err_len);
        }
        if (d.d_tag != DT_NEEDED && d.d_tag != DT_RPATH && d.d_tag != DT_RUNPATH) continue;
        const char *s = dyn_str(&f, str_off, str_size, d.d_un.d_val);
        if (!s)
            return dep_refused(path, "a dynamic entry points outside its string table", "", err,
                               err_len);
        if (d.d_tag == DT_RPATH) return dep_refused(path, "has an RPATH", s, err, err_len);
        if (d.d_tag == DT_RUNPATH) return dep_refused(path, "has a RUNPATH", s, err, err_len);
        if (!*s || strchr(s, '/') || strchr(s, '$') || strlen(s) >= sizeof deps->name[0])
            return dep_refused(path, "needs a library by path", s, err, err_len);
        for (const char *c = s; *c; c++)
            if (*c < 0x21 || *c > 0x7e)
                return dep_refused(path, "needs a library with an odd name", s, err, err_len);
        if (deps->n == KB__ELF_MAX_DEPS)
            return dep_refused(path, "needs too many libraries, at", s, err, err_len);
        snprintf(deps->name[deps->n++], sizeof deps->name[0], "%s", s);
    }
    return 0;
}

int kb__elf_check_fd(int fd, const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kb__errf(err, err_len, "%s: cannot read the plugin file", path);
        return KB__EIO;
    }
    if (st.st_size == 0) return kb__elf_check(NULL, 0, path, err, err_len);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        kb__errf(err, err_len, "%s: cannot map the plugin file", path);
        return KB__EIO;
    }
    int rc = kb__elf_check(map, (size_t)st.st_size, path, err, err_len);
    munmap(map, (size_t)st.st_size);
    return rc;
}
