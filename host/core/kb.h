/*
 * kb.h -- internal interfaces of the kbench host (kb__ names).
 *
 * Nothing here is ABI: plugins see only abi/kbench.h. Functions return 0 or
 * a negative KB__E* code and, on failure, write one line of words into the
 * caller's error buffer (err, err_len): what happened and what to do.
 * Nothing below main() calls exit().
 */
#ifndef KB_H
#define KB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kbench.h"

/* ---- error codes ---------------------------------------------------- */
enum {
    KB__EOK = 0,
    KB__EIO = -1, /* file or system call failed */
    KB__ENOMEM = -2,
    KB__EFORMAT = -3, /* not an ELF, truncated, wrong machine */
    KB__EABI = -4,    /* bad magic, version, struct size, descriptor */
    KB__ESPEC = -5,   /* malformed target spec */
    KB__ENOTFOUND = -6,
    KB__EUSAGE = -7,
    KB__ECHILD = -8,  /* worker died, timed out or misbehaved */
    KB__ECORRUPT = -9 /* a state file or ledger line is damaged */
};

/* Format one line into err (never overflows, always NUL-terminated). */
void kb__errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Async-signal-safe appending for messages written where stdio may not
 * run (a signal handler, a worker after lock-down): s, or v in decimal, at
 * out[n], never past cap - 1 bytes. Returns the new length; the caller
 * writes the NUL. A NULL s appends nothing. */
size_t kb__put_str(char *out, size_t n, size_t cap, const char *s);
size_t kb__put_u64(char *out, size_t n, size_t cap, uint64_t v);

/* What a library without kb_plugin_entry_v1 is told (elf.c, load.c): the
 * library's path goes between A and B. */
#define KB__FOREIGN_HINT_A "to trial a plain function of it, run `kbench trial --foreign "
#define KB__FOREIGN_HINT_B                                                                \
    ":SYMBOL --sig 'RET (TYPE NAME, ...)' --target TARGET` (`kbench trial --help` shows " \
    "how)"

/* ---- "did you mean" (suggest.c) -------------------------------------- */
/* Edit distance between a and b (insert, delete, substitute, swap two
 * neighbours); (size_t)-1 for names over 64 characters. */
size_t kb__edit_distance(const char *a, const char *b);
/* The name of names[0..n) nearest to word when it is near enough to be a
 * typo of it (the first of equals), else NULL. NULL entries are skipped.
 * Every "did you mean" of kbench comes from here. */
const char *kb__suggest(const char *word, const char *const *names, size_t n);

/* ---- verdicts ------------------------------------------------------- */
typedef enum kb__status {
    KB__ST_KEEP = 0,
    KB__ST_DISCARD,
    KB__ST_INCONCLUSIVE,
    KB__ST_INCORRECT,
    KB__ST_CRASH,
    KB__ST_TIMEOUT,
    KB__ST_REJECTED,
    KB__ST_CORRECT /* kbench verify: correct, not timed (exit 0) */
} kb__status;

const char *kb__status_name(kb__status s);
/* 1 for the verdicts of a trial that was timed (keep, discard,
 * inconclusive): only these carry ratios. */
int kb__status_timed(kb__status s);
/* The documented exit codes (`kbench trial --help`): a verdict's, then
 * kbench's own failures, numbered as sysexits.h numbers them. */
#define KB__EXIT_KEEP         0 /* keep, or correct for verify */
#define KB__EXIT_DISCARD      1
#define KB__EXIT_INCORRECT    2
#define KB__EXIT_FAILED       3 /* crash, timeout or rejected */
#define KB__EXIT_INCONCLUSIVE 4
#define KB__EXIT_USAGE        64 /* EX_USAGE: the command line is wrong */
#define KB__EXIT_SOFTWARE     70 /* EX_SOFTWARE: kbench itself failed (memory, files, a server) */
int kb__status_exit_code(kb__status s);

/* Whether this process's timing can be trusted (trust.c): 1 under a
 * user-mode emulator, in a sanitizer build, or with the test hook
 * KB_TIMING_UNTRUSTED set, and *why (when why is not NULL) says which. */
int kb__timing_untrusted(const char **why);
/* The verdict a timing-only check (CPU outside timed calls, the fresh
 * probe) gives: st, or where timing cannot be trusted and st is rejected,
 * inconclusive with reason (len bytes) prefixed "timing cannot be trusted
 * here: <why>; ". Never keep; correctness and sandbox checks never call it. */
kb__status kb__timing_verdict(kb__status st, char *reason, size_t len);

/* What a verdict holds of a target's cases (the trial's kb__result): at
 * most this many cases, each named in fewer than KB__CASE_NAME_LEN bytes;
 * kb__spec_check refuses a target with more or longer. */
#define KB__RESULT_MAX_CASES 64
#define KB__CASE_NAME_LEN    96

/* ---- clock and random numbers (clock.c, rng.c) ---------------------- */
/* CLOCK_MONOTONIC in ns. */
uint64_t kb__now_ns(void);

/* The machine-wide timing lock of CPU cpu (cpulock.c): waits, saying so on
 * note, while another trial times there. A descriptor for kb__cpu_unlock,
 * or -1 where no lock could be had (note says why). */
int kb__cpu_lock(int cpu, FILE *note);
void kb__cpu_unlock(int fd);
/* Advances *state and returns the next SplitMix64 output. */
uint64_t kb__splitmix64(uint64_t *state);

/* ---- digests and files (digest.c) ----------------------------------- */
/* XXH3-64 of bytes, and as 16 lowercase hex digits + NUL. */
uint64_t kb__hash(const void *p, size_t n, uint64_t seed);
/* Seals a memfd for good (write, grow, shrink, seal). 0, or -1 with errno. */
int kb__memfd_seal(int fd);
void kb__hex64(uint64_t v, char out[17]);
/* Writes all n bytes, again after EINTR and short writes. 0, or -1. */
int kb__write_all(int fd, const char *p, size_t n);

/* A private, consistent copy of a plugin file: read while checking that
 * size, mtime and inode did not change underneath (a linker rewriting it),
 * stored in a sealed memfd so nothing on disk is left behind. */
typedef struct kb__snapshot {
    int fd; /* memfd, sealed against writes; -1 when empty */
    uint64_t size;
    uint64_t digest; /* kb__hash of the contents, seed 0, with the libraries it
                       * loads folded in (kb__closure_digest) */
    char digest_hex[17];
} kb__snapshot;

/* Only a regular file is opened (a FIFO, device, socket or directory is
 * refused before open), none over KB__SNAPSHOT_MAX_BYTES is copied, and the
 * whole snapshot has a deadline, so no file can hang or exhaust the host. */
#define KB__SNAPSHOT_MAX_BYTES (UINT64_C(256) << 20)
int kb__snapshot_take(const char *path, kb__snapshot *s, char *err, size_t err_len);
void kb__snapshot_close(kb__snapshot *s);

/* ---- ELF pre-checks (elf.c) ----------------------------------------- */
/* Checks, without running any code, that the bytes are a complete 64-bit
 * shared object for this machine: magic, class, byte order, e_machine,
 * e_type ET_DYN, program/section headers inside the file, a dynamic
 * section, and the kb_plugin_entry_v1 symbol exported in .dynsym.
 * `path` is only used in the message. */
int kb__elf_check(const void *bytes, size_t size, const char *path, char *err, size_t err_len);
/* Same, reading the snapshot's memfd. */
int kb__elf_check_fd(int fd, const char *path, char *err, size_t err_len);

/* The libraries a shared object names in DT_NEEDED. A plugin may name
 * libraries only by soname, for the loader's default search: an RPATH, a
 * RUNPATH, a DT_NEEDED with a '/' or '$' (a path, $ORIGIN), a filter
 * (DT_FILTER, DT_AUXILIARY) or an audit library (DT_AUDIT, DT_DEPAUDIT)
 * would load code from wherever its author put it, unhashed. 0 with deps filled;
 * KB__EFORMAT (err names the entry and the fix) for such a file; 1 when the
 * bytes are not a well-formed ELF file (kb__elf_check says why). */
#define KB__ELF_MAX_DEPS 32
typedef struct kb__deps {
    uint32_t n;
    char name[KB__ELF_MAX_DEPS][64];
} kb__deps;
int kb__elf_deps(const void *bytes, size_t size, const char *path, kb__deps *deps, char *err,
                 size_t err_len);

/* ---- the libraries a plugin loads (closure.c) ------------------------ */
/* Checks that every library the plugin in `bytes` (sealed in fd) loads comes
 * from the system's library directories, and folds the bytes of each one
 * outside glibc into *digest (the plugin file's hash on entry; unchanged for
 * a plugin that needs glibc alone, or for bytes that are not an ELF file).
 * 0, or KB__EFORMAT with err naming the library and the fix. */
int kb__closure_digest(int fd, const void *bytes, size_t size, const char *path, uint64_t *digest,
                       char *err, size_t err_len);

/* ---- CPU features (cpu.c) ------------------------------------------- */
uint64_t kb__cpu_features(void);
/* "avx2 fma avx512f" for the set bits; writes "" for 0. */
void kb__cpu_feature_names(uint64_t bits, char *out, size_t out_len);
/* Bytes of the largest cache cpu0 uses (sysfs), else KB__LLC_FALLBACK. */
uint64_t kb__llc_bytes(void);
#define KB__LLC_FALLBACK (UINT64_C(32) << 20)
/* Bytes of cpu0's level-2 data cache (sysfs), else KB__L2_FALLBACK: the
 * smallest L2 of the x86-64 and aarch64 cores kbench runs on, so a batch
 * sized by it errs towards fitting. */
uint64_t kb__l2_bytes(void);
#define KB__L2_FALLBACK (UINT64_C(256) << 10)

/* ---- descriptors (load.c) ------------------------------------------- */
/* What the host learns of a plugin's descriptor: copied out of the (possibly
 * hostile) worker into fixed, NUL-terminated fields. */
typedef struct kb__desc {
    uint32_t magic;
    uint16_t abi_major, abi_minor;
    uint32_t struct_size;
    uint32_t has_verify;
    uint64_t cpu_features;
    char target[64];
    char name[64];
    char version[64];
} kb__desc;

/* Validate a descriptor read from a plugin: magic, major version, struct
 * size against the minor, names present and printable, vtable members
 * present. On failure the message starts with `path: ` and says the fix. */
int kb__desc_check(const kb__desc *d, const char *path, char *err, size_t err_len);

/* Read a descriptor from a loaded plugin (in-process; used by the worker and
 * for the trusted oracle). `p` may be garbage: only reads within struct_size
 * and copies strings with a bound. Fills d even when the check fails. */
int kb__desc_read(const kb_plugin *p, kb__desc *d, const char *path, char *err, size_t err_len);

/* dlopen(RTLD_NOW|RTLD_LOCAL) `path` (may be /proc/self/fd/N), find
 * kb_plugin_entry_v1, validate. Runs the plugin's constructors: call it only
 * in a worker, or for the trusted oracle. */
typedef struct kb__lib {
    void *dl;
    const kb_plugin *plugin;
    const kb_target *target; /* NULL unless want_target */
    kb__desc desc;
} kb__lib;
int kb__lib_open(const char *load_path, const char *shown_path, int want_target, kb__lib *lib,
                 char *err, size_t err_len);
void kb__lib_close(kb__lib *lib);

/* ---- target specs (spec.c) ------------------------------------------ */
/* Validate an oracle's spec: magic/version/size, names, buffer roles in
 * order (statics, calls, outputs), dtypes, lengths, params, tolerance,
 * generate present. Message names the oracle file. */
int kb__spec_check(const kb_target *t, const char *path, char *err, size_t err_len);
size_t kb__dtype_size(uint32_t dtype);
const char *kb__dtype_name(uint32_t dtype);
/* One case's lengths and per-call figures against t's buffers (the check
 * kb__spec_check runs on every listed case, and shape.c on a custom one). */
int kb__spec_case_check(const kb_target *t, const kb_case_spec *c, const char *path, char *err,
                        size_t err_len);
/* The ABI 1.1 members, or NULL when the oracle's struct_size stops short
 * of them or it declares no ranges: then it has fixed cases only. */
const kb_param_range *kb__spec_ranges(const kb_target *t);
/* The oracle's output check (ABI 1.2), or NULL when its struct_size stops
 * short of it or it has none: then outputs compare elementwise. */
typedef int (*kb__check_fn)(const kb_case_spec *cs, double tol, const kb_buffer *inputs,
                            uint32_t n_inputs, const kb_buffer *expected, const kb_buffer *got,
                            uint32_t n_outputs, char *reason, size_t reason_len);
kb__check_fn kb__spec_outcheck(const kb_target *t);

/* ---- cases of any shape (shape.c) ------------------------------------ */
/* A case named by its shape, "n=100000,d=128,m=16/uniform": its spec and
 * the storage of its name, which is canonical (parameters in the target's
 * order), so one shape always has one name in the output and the ledger. */
typedef struct kb__shape {
    kb_case_spec cs;
    char name[KB__CASE_NAME_LEN];
} kb__shape;

/* Whether a case selector names a shape ("name=value,.../distribution")
 * rather than a listed case or "quick"/"all". */
int kb__shape_is_spec(const char *sel);
/* Parses `spec` against target t (checked by kb__spec_check) into *out:
 * every parameter by name within its range, a listed distribution, lengths
 * from the oracle's shape() and one input set within its max_case_bytes.
 * KB__EUSAGE with one line in err saying what is wrong and what is
 * allowed (the range, the parameters, the distributions, the cap);
 * KB__ESPEC when the oracle's shape() breaks its own ranges or limits. */
/* Bytes of one input set of a case: every buffer, outputs included
 * (UINT64_MAX when that overflows). */
uint64_t kb__shape_bytes(const kb_target *t, const kb_case_spec *cs);
/* One line for `kbench list`: each parameter's range, the distributions
 * and the cap; or that the oracle has listed cases only. */
void kb__shape_describe(const kb_target *t, char *out, size_t len);
int kb__shape_parse(const kb_target *t, const char *spec, kb__shape *out, char *err,
                    size_t err_len);

/* ---- statistics (stats.c) ------------------------------------------- */
typedef struct kb__ci {
    double est; /* point estimate */
    double lo;  /* 90% CI low */
    double hi;  /* 90% CI high */
} kb__ci;

/* Median of x (n >= 1). Does not modify x. */
double kb__median(const double *x, size_t n);
/* c stretched about its estimate by factor f >= 1 in log space; c unchanged
 * when f < 1 or a bound is not positive. */
kb__ci kb__ci_widen(kb__ci c, double f);
/* c with a further source of error of half-width h (in log space, at c's
 * level) added to each half in quadrature; c unchanged when h <= 0 or a
 * bound is not positive. */
kb__ci kb__ci_add(kb__ci c, double h);
/* What to subtract from every batch of both sides (stats.c says why):
 * min of the sides' median gaps (host interval minus worker reading),
 * within [0, 1% of the faster side's median batch]. gaps[] gets both
 * medians, *batch_ns that batch. */
double kb__batch_overhead(const double *gap_a, const double *gap_b, const double *ns_a,
                          const double *ns_b, size_t n, double gaps[2], double *batch_ns);
/* Median of x with a seeded percentile-bootstrap 90% CI. */
kb__ci kb__bootstrap_median(const double *x, size_t n, uint64_t seed, int resamples);
/* For k groups of log-ratios: the mean of per-group medians (log of the
 * geometric mean ratio) with a bootstrap CI, resampling within each group. */
kb__ci kb__bootstrap_mean_of_medians(const double *const *x, const size_t *n, size_t k,
                                     uint64_t seed, int resamples);

/* The verdict rule's and the trial's defaults, defined once: the commands'
 * options (cli/options.h) and their help text, and kb__decide without a
 * rule, all read these. */
#define KB__BUDGET_DEFAULT_S       2 /* seconds of timing */
#define KB__MIN_GAIN_DEFAULT_PCT   1 /* keep needs the geomean CI below 1 - this */
#define KB__WORST_CASE_DEFAULT_PCT 5 /* keep needs every case within 1 + this */
/* Where kbench remembers between runs (best-so-far, calibration), unless
 * KBENCH_STATE_DIR or --state says otherwise. */
#define KB__STATE_DIR_DEFAULT ".kbench"

typedef struct kb__rule {
    double min_gain;   /* keep needs geomean CI high < 1 - min_gain */
    double worst_case; /* keep needs worst case ratio <= 1 + worst_case */
} kb__rule;

/* keep, discard or inconclusive from ratio CIs (candidate / baseline,
 * below 1 is faster). Writes a one-line reason. */
kb__status kb__decide(const kb__rule *rule, kb__ci geomean, kb__ci worst, char *reason,
                      size_t reason_len);
/* Whether a keep may end a trial at a look before its budget: it must
 * still be a keep with the trial's own CIs (geomean, worst) at one-sided
 * 99%, each then with a further error of half-width g_add, w_add added
 * (kb__ci_add; the spread between trials, which looks do not change)
 * (stats.c says why). 0 for anything that is not a keep. */
int kb__keep_holds_early(const kb__rule *rule, kb__ci geomean, kb__ci worst, double g_add,
                         double w_add);

/* ---- state directory and calibration (state.c, roofline.c) ------------ */
/* $KBENCH_STATE_DIR, else ./.kbench; created on demand. */
int kb__state_dir(char *out, size_t out_len, int create, char *err, size_t err_len);

typedef struct kb__machine {
    double bw_gbps[4];     /* STREAM-triad-like bandwidth: L1, L2, L3-ish, DRAM */
    double level_bytes[4]; /* the largest working set each figure is the roof for */
    double peak_gflops;    /* single-core float FMA peak */
    char when[32];
} kb__machine;

int kb__machine_load(kb__machine *m); /* 0, or -1 if never calibrated */
int kb__machine_save(const kb__machine *m, char *err, size_t err_len);
void kb__roofline_measure(kb__machine *m);
/* The level (0 L1, 1 L2, 2 L3, 3 DRAM) a working set of `bytes` fits in:
 * the first whose level_bytes holds it, DRAM past L3. */
int kb__machine_roof_level(const kb__machine *m, double bytes);
/* The memory roof for a working set of `bytes`: that level's bandwidth. */
double kb__machine_roof(const kb__machine *m, double bytes);

int kb__noise_load(const char *target, double *pct, char *when, size_t when_len);
int kb__noise_save(const char *target, double pct, double aa_lo, double aa_hi, int trials,
                   char *err, size_t err_len);

/* ---- oracle pins (pin.c) -------------------------------------------- */
/* oracles/<t>/PIN records the XXH3-64 of every source file of the oracle
 * (every regular file in its directory but PIN) and the upstream revision it
 * was ported from. */
#define KB__PIN_MISMATCH 1
/* 0: sources match the PIN. KB__PIN_MISMATCH: they do not, msg says which
 * file and the command that re-pins. Negative: no PIN or unreadable (msg). */
int kb__pin_check(const char *oracle_src_dir, char *msg, size_t msg_len);
/* Writes <dir>/PIN for the sources as they are now; `upstream` NULL keeps the
 * recorded one. */
int kb__pin_write(const char *oracle_src_dir, const char *upstream, char *msg, size_t msg_len);
/* The tree whose oracles/<target>/PIN `kbench list` checks: the source tree
 * this kbench was built from when it runs from its build dir, else the
 * pinned sources installed beside it (<prefix>/share/kbench/src), else NULL.
 * An installed kbench never reads the source checkout. */
const char *kb__source_dir(void);

/* ---- version control (git.c) ---------------------------------------- */
/* The git commit of the candidate's directory ("" when not in a work tree). */
void kb__git_commit(const char *path, char *out, size_t n);

/* kb_host's alloc and free for a plugin run in the host process (the
 * oracle, `kbench run`): aligned heap memory. */
void *kb__host_alloc(const kb_host *h, size_t size, size_t align);
void kb__host_free(const kb_host *h, void *p);

#endif /* KB_H */
