/*
 * kbench.h -- the kbench plugin ABI, version 1.2.
 *
 * This is the only header a kbench plugin needs. It stands alone: C99 or C++,
 * fixed-width types only, no other kbench header.
 *
 * A plugin is a shared object that exports exactly one symbol:
 *
 *     KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void);
 *
 * An oracle plugin (the frozen reference that defines a target) also exports
 *
 *     KB_EXPORT const kb_target *kb_target_entry_v1(void);
 *
 * Everything else in the .so should be hidden (-fvisibility=hidden).
 *
 * Versioning follows SQLite's and CLAP's rule: structs only grow at the end.
 * Appending a member bumps KB_ABI_MINOR and the host reads the new member only
 * when struct_size says it is present. Removing, reordering or retyping a
 * member bumps KB_ABI_MAJOR, and a host refuses a plugin of another major.
 */
#ifndef KBENCH_H
#define KBENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_ABI_MAGIC 0x4c50424bu /* "KBPL" read as little-endian bytes */
#define KB_ABI_MAJOR 1
#define KB_ABI_MINOR 2

#if defined(_WIN32)
#define KB_EXPORT __declspec(dllexport)
#else
#define KB_EXPORT __attribute__((visibility("default")))
#endif

#if defined(__cplusplus)
#define KB_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define KB_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* Fixed limits. They size arrays inside the ABI structs, so changing one is a
 * major version bump. */
#define KB_MAX_BUFFERS 8 /* inputs and outputs of one target, together */
#define KB_MAX_PARAMS  8 /* named integer parameters of one case */

/* Return codes of prepare/run/verify. Any non-zero value is a failure; the
 * host reports the message the plugin wrote into its error buffer. */
#define KB_OK              0
#define KB_ERR_UNSUPPORTED 1 /* this case's shape is not handled by the plugin */
#define KB_ERR_NOMEM       2
#define KB_ERR_INTERNAL    3

/* Element types of a buffer. Integers compare bitwise, floats within the
 * target's tolerance. */
typedef enum kb_dtype {
    KB_DT_U8 = 1,
    KB_DT_U16 = 2,
    KB_DT_U32 = 3,
    KB_DT_U64 = 4,
    KB_DT_I32 = 5,
    KB_DT_I64 = 6,
    KB_DT_F32 = 7,
    KB_DT_F64 = 8
} kb_dtype;

/* Who sees a buffer, and when. */
typedef enum kb_role {
    /* Given to prepare() once per case (e.g. a codebook). prepare may derive
     * whatever it likes from static inputs. */
    KB_ROLE_STATIC = 1,
    /* Given only to run(), and different on every call in ways the plugin
     * cannot predict, so nothing derived from them can be precomputed. */
    KB_ROLE_CALL = 2,
    /* Written by run(). Poisoned by the host before measurement. */
    KB_ROLE_OUTPUT = 3
} kb_role;

/* CPU features a plugin may require (kb_plugin.cpu_features) and the host
 * reports (kb_host.cpu_features). The host refuses to run a plugin that
 * needs a feature the machine lacks, naming the feature. */
#define KB_CPU_SSE42              (UINT64_C(1) << 0)
#define KB_CPU_POPCNT             (UINT64_C(1) << 1)
#define KB_CPU_AVX                (UINT64_C(1) << 2)
#define KB_CPU_AVX2               (UINT64_C(1) << 3)
#define KB_CPU_FMA                (UINT64_C(1) << 4)
#define KB_CPU_BMI2               (UINT64_C(1) << 5)
#define KB_CPU_AVX512F            (UINT64_C(1) << 6)
#define KB_CPU_AVX512BW           (UINT64_C(1) << 7)
#define KB_CPU_AVX512VL           (UINT64_C(1) << 8)
#define KB_CPU_AVX512DQ           (UINT64_C(1) << 9)
#define KB_CPU_AVX512VNNI         (UINT64_C(1) << 10)
#define KB_CPU_AVX512VBMI2        (UINT64_C(1) << 11)
#define KB_CPU_AVX512VP2INTERSECT (UINT64_C(1) << 12)
#define KB_CPU_NEON               (UINT64_C(1) << 32)
#define KB_CPU_SVE                (UINT64_C(1) << 33)

/* One buffer as a plugin sees it. Output descriptors are rebuilt before
 * every call and input descriptors live in read-only memory, so a plugin
 * that scribbles on them changes nothing but its own results. */
typedef struct kb_buffer {
    /* Inputs: read-only memory; a write faults and the trial is rejected.
     * Outputs: writable, exactly `count` elements, guarded on both sides.
     * Valid only for the duration of the call it was passed to. */
    void *data;
    /* Elements (not bytes). For outputs this is the capacity. */
    uint64_t count;
    /* Outputs whose spec has KB_BUF_VARIABLE: run() stores how many elements
     * it produced (<= count). Ignored for everything else. */
    uint64_t produced;
    uint32_t dtype; /* kb_dtype */
    uint32_t reserved;
} kb_buffer;

/* Services the host passes in; plugins never link against the host.
 * Valid from prepare() until release() returns. Callable from the thread
 * that called prepare/run only. */
typedef struct kb_host {
    uint32_t struct_size;
    uint32_t reserved;
    /* Bits of KB_CPU_* this machine has (and the OS has enabled). */
    uint64_t cpu_features;
    /* Diagnostic message, captured by the host apart from the verdict. */
    void (*log)(const struct kb_host *host, const char *msg);
    /* Memory aligned to `align` (a power of two, >= sizeof(void *)).
     * NULL on failure. Free with free_aligned, before release() returns. */
    void *(*alloc_aligned)(const struct kb_host *host, size_t size, size_t align);
    void (*free_aligned)(const struct kb_host *host, void *p);
} kb_host;

/* The case a plugin is being prepared for. */
typedef struct kb_case {
    const char *name;  /* e.g. "n=65536,d=128,m=16/clustered" */
    uint32_t n_params; /* == the target's n_params */
    uint32_t reserved;
    const int64_t *params; /* values, in the order of kb_target.param_names */
    const char *const *param_names;
} kb_case;

/* The descriptor every plugin returns from kb_plugin_entry_v1(). It must stay
 * valid and unchanged for as long as the .so is loaded. */
typedef struct kb_plugin {
    uint32_t magic;        /* KB_ABI_MAGIC */
    uint16_t abi_major;    /* KB_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;    /* KB_ABI_MINOR the plugin was built against */
    uint32_t struct_size;  /* sizeof(kb_plugin) as the plugin saw it */
    uint32_t flags;        /* reserved, 0 */
    const char *target;    /* target name, e.g. "pq-l2"; selects the oracle */
    const char *name;      /* plugin name, e.g. "avx512" */
    const char *version;   /* free-form, e.g. "1.2" or a git commit */
    uint64_t cpu_features; /* KB_CPU_* bits the plugin needs */

    /* Called once per case, untimed, before any run() of that case, in the
     * worker process that will time it. `statics` holds the target's
     * KB_ROLE_STATIC buffers in spec order (read-only; valid until release).
     * May precompute anything derived from the case and the static inputs;
     * must not assume anything about per-call inputs. On success stores an
     * opaque state in *state and returns KB_OK. On failure returns non-zero
     * and writes a NUL-terminated reason into err (err_len bytes). */
    int (*prepare)(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                   uint32_t n_statics, void **state, char *err, size_t err_len);

    /* The timed call. `inputs` holds the target's KB_ROLE_CALL buffers in
     * spec order, `outputs` its KB_ROLE_OUTPUT buffers in spec order. Must
     * compute every output from the inputs of this call: output memory is
     * poisoned and input contents change between calls. Single-threaded
     * unless the target says otherwise; must not keep pointers to the
     * buffers past return. Returns KB_OK, or non-zero with a reason in err. */
    int (*run)(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
               uint32_t n_outputs, char *err, size_t err_len);

    /* Optional (may be NULL): the plugin's own self-check, run untimed after
     * prepare. Only informative: correctness is judged by the host against
     * the oracle, never by this. */
    int (*verify)(void *state, char *err, size_t err_len);

    /* Frees everything prepare allocated. Called once per successful
     * prepare. A crash or exit here fails the trial. */
    void (*release)(void *state);
} kb_plugin;

/* Flags of a buffer spec. */
#define KB_BUF_VARIABLE 1u /* output: run() sets produced (<= count) */

typedef struct kb_buffer_spec {
    const char *name; /* e.g. "codebook", "codes", "dist" */
    uint32_t dtype;   /* kb_dtype */
    uint32_t role;    /* kb_role */
    uint32_t flags;   /* KB_BUF_* */
    uint32_t reserved;
} kb_buffer_spec;

/* Flags of a case. */
#define KB_CASE_QUICK 1u /* part of the default (quick) trial */

typedef struct kb_case_spec {
    const char *name; /* stable: shape "/" distribution */
    uint32_t flags;   /* KB_CASE_* */
    uint32_t reserved;
    int64_t params[KB_MAX_PARAMS];    /* in the order of kb_target.param_names */
    uint64_t lengths[KB_MAX_BUFFERS]; /* elements per buffer (capacity for outputs) */
    double bytes_per_call;            /* bytes a call must move, for roofline figures */
    double flops_per_call;            /* floating-point operations per call (0 if none) */
} kb_case_spec;

/* Flags of a parameter range. */
#define KB_PARAM_POW2    1u /* the value must also be a power of two */
#define KB_PARAM_DEFAULT 2u /* may be left out of a shape: see kb_target.shape */

/* The value of a parameter a shape left out (KB_PARAM_DEFAULT), as
 * kb_target.shape receives it. */
#define KB_PARAM_UNSET INT64_MIN

/* The values one parameter may take in a case the user asks for by shape
 * (`--case 'n=100000,d=128,m=16/uniform'`, ABI 1.1): min <= v <= max,
 * v a multiple of multiple_of (0 or 1: any), and a power of two with
 * KB_PARAM_POW2. Rules that tie parameters together (m divides d) belong in
 * kb_target.shape. */
typedef struct kb_param_range {
    int64_t min;
    int64_t max;
    int64_t multiple_of;
    uint32_t flags; /* KB_PARAM_* */
    uint32_t reserved;
} kb_param_range;

/* Flags of a target. */
#define KB_TARGET_MULTITHREADED 1u /* plugins may start threads */
#define KB_TARGET_FPENV_FREE    2u /* plugins may change FP control state */
#define KB_TARGET_COLD_INPUTS   4u /* rotate inputs through > LLC working set */

/* The spec of a target, returned by an oracle's kb_target_entry_v1(). */
typedef struct kb_target {
    uint32_t magic; /* KB_ABI_MAGIC */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size;    /* sizeof(kb_target) as the oracle saw it */
    uint32_t flags;          /* KB_TARGET_* */
    const char *name;        /* == the oracle plugin's target */
    const char *description; /* one line */
    const char *upstream;    /* where the reference kernel was ported from */

    uint32_t n_params;
    uint32_t n_buffers;
    const char *const *param_names; /* n_params names, e.g. "n", "d", "m" */
    const kb_buffer_spec *buffers;  /* n_buffers, statics, then calls, then outputs */

    uint32_t n_cases;
    uint32_t reserved;
    const kb_case_spec *cases;

    /* Float outputs match when |got - ref| <= rel_tol * max(1, |ref|).
     * 0 means bitwise, like integers. NaN never matches. */
    double rel_tol;

    /* Fills the input buffers of one input set of a case. bufs has n_buffers
     * entries in spec order, sized by the case's lengths; outputs have NULL
     * data. The host calls it for set = 0, 1, ... with one seed per trial:
     * statics must depend only on (case, seed) and are filled for set 0
     * only (later sets see them filled and must not write them); per-call
     * inputs depend on (case, seed, set). Deterministic on every platform.
     * Returns 0, or non-zero with a reason in err. */
    int (*generate)(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                    uint32_t n_bufs, char *err, size_t err_len);

    /* ---- ABI 1.1: cases of any shape. The host reads these members only
     * when struct_size covers them; an oracle built against 1.0, or one
     * that leaves param_ranges NULL, offers its fixed cases only. ---- */

    /* n_params ranges in the order of param_names, or NULL: fixed cases
     * only. Read-only, valid while the oracle is loaded. */
    const kb_param_range *param_ranges;
    /* n_distributions names (1-31 of [a-z0-9_-]) the generator knows, e.g.
     * "uniform", "clustered": the part of a case name after its '/'. */
    const char *const *distributions;
    uint32_t n_distributions;
    uint32_t reserved2;
    /* The most bytes one input set of the custom cases of one trial may
     * take together: every buffer's length times its element size, summed
     * over buffers and cases. The host holds every input set of a trial in
     * memory, with the oracle's outputs for each, so this bounds what the
     * shapes a user names can cost. Non-zero when param_ranges is set. */
    uint64_t max_case_bytes;
    /* Fills lengths[], bytes_per_call and flops_per_call of a custom case
     * whose name ("n=100000,d=128,m=16/uniform": parameters in
     * param_names order, then '/' and a listed distribution) and params
     * the host has set, every param within its range. A KB_PARAM_DEFAULT
     * parameter the user left out is KB_PARAM_UNSET here (and absent from
     * the name): shape sets it, from the distribution or the other
     * parameters, so a listed case's name asks for that very case, and the
     * host then checks it against its range. Called in the host
     * process (never in a worker), for each custom case, before generate;
     * must be a pure function of the case. Returns 0, or non-zero with a one-line reason
     * in err when the combination is refused (e.g. "m must divide d").
     * Required when param_ranges is set. */
    int (*shape)(kb_case_spec *cs, char *err, size_t err_len);

    /* ---- ABI 1.2: an output check of the oracle's own. The host reads
     * it only when struct_size covers it; NULL, or an oracle built against
     * 1.0 or 1.1, keeps the elementwise rule of rel_tol above. ---- */

    /* Optional: decides whether a candidate's outputs for one input set are
     * right, in place of the elementwise rule, for a target where correct
     * kernels differ from the oracle element by element (an argmin whose
     * near ties round either way, a long float reduction summed in another
     * order). The host calls it in its own process, untimed, for every
     * input set it judges (timed, fresh and held-out alike) and for every
     * candidate output it checks, once it has found the bytes around each
     * output intact, each variable output's produced count equal to the
     * oracle's, and no NaN in any float output (NaN never matches).
     *   cs        the case (params, lengths).
     *   tol       the target's rel_tol: the bound the check states, in the
     *             check's own terms (e.g. a normalized mean squared error).
     *   inputs    the set's n_inputs input buffers: statics, then per-call,
     *             in spec order.
     *   expected  the oracle's n_outputs outputs for this set.
     *   got       the candidate's n_outputs outputs for this set; count is
     *             the elements produced.
     * Everything is read-only. `got` comes from a hostile plugin: check
     * every value (range of an index, infinities) before using it. Must be a
     * deterministic function of its arguments. Returns 0 when the outputs
     * are right; otherwise non-zero and one line in reason, naming the
     * element, what was expected, what came, and why that is wrong
     * ("point 17: centroid 3 is 0.25 farther than centroid 9 (tolerance
     * 1e-05)"). */
    int (*check)(const kb_case_spec *cs, double tol, const kb_buffer *inputs, uint32_t n_inputs,
                 const kb_buffer *expected, const kb_buffer *got, uint32_t n_outputs, char *reason,
                 size_t reason_len);
} kb_target;

typedef const kb_plugin *(*kb_plugin_entry_fn)(void);
typedef const kb_target *(*kb_target_entry_fn)(void);

KB_STATIC_ASSERT(sizeof(void *) == 8, "kbench ABI v1 is defined for 64-bit targets");
KB_STATIC_ASSERT(sizeof(kb_buffer) == 32, "kb_buffer layout");
KB_STATIC_ASSERT(offsetof(kb_buffer, produced) == 16, "kb_buffer layout");
KB_STATIC_ASSERT(sizeof(kb_host) == 40, "kb_host layout");
KB_STATIC_ASSERT(sizeof(kb_case) == 32, "kb_case layout");
KB_STATIC_ASSERT(offsetof(kb_plugin, target) == 16, "kb_plugin layout");
KB_STATIC_ASSERT(offsetof(kb_plugin, prepare) == 48, "kb_plugin layout");
KB_STATIC_ASSERT(sizeof(kb_plugin) == 80, "kb_plugin layout");
KB_STATIC_ASSERT(sizeof(kb_buffer_spec) == 24, "kb_buffer_spec layout");
KB_STATIC_ASSERT(sizeof(kb_case_spec) == 16 + 8 * KB_MAX_PARAMS + 8 * KB_MAX_BUFFERS + 16,
                 "kb_case_spec layout");
KB_STATIC_ASSERT(offsetof(kb_target, n_params) == 40, "kb_target layout");
KB_STATIC_ASSERT(offsetof(kb_target, param_ranges) == 96, "kb_target layout (1.0 ends here)");
KB_STATIC_ASSERT(sizeof(kb_param_range) == 32, "kb_param_range layout");
KB_STATIC_ASSERT(offsetof(kb_target, check) == 136, "kb_target layout (1.1 ends here)");
KB_STATIC_ASSERT(sizeof(kb_target) == 144, "kb_target layout");

#ifdef __cplusplus
}
#endif
#endif /* KBENCH_H */
