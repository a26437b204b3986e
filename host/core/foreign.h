/*
 * foreign.h -- kernels from libraries that know nothing about kbench,
 * called through libffi (`kbench trial --foreign LIB:SYMBOL --sig SIG
 * --target T`).
 *
 * The host parses the signature and binds each parameter by name to one of
 * the target's buffers, a buffer's element count, a case parameter or an
 * output's produced count (kb__foreign_bind), before any of the library's
 * code runs. The result is a plan: fixed-size, no pointers, so it travels to
 * the worker inside the LOAD request. The worker opens the library and turns
 * the plan into an ordinary kb_plugin whose run() makes one ffi_call
 * (kb__foreign_open); from there on the trial cannot tell it from a native
 * plugin.
 */
#ifndef KB_FOREIGN_H
#define KB_FOREIGN_H

#include "kb.h"

#define KB__FMAX_ARGS 16
#define KB__FSYM_MAX  128 /* symbol names, NUL included */

/* Scalar types a signature may declare beyond kb_dtype (no buffer holds
 * them): C's signed char and short, for params and element counts. */
#define KB__FT_I8  0x81
#define KB__FT_I16 0x82

/* What one argument is bound to. */
enum kb__fkind {
    KB__FA_BUF = 1, /* a buffer's data pointer; index: buffer, spec order */
    KB__FA_COUNT,   /* a buffer's element count (capacity for outputs) */
    KB__FA_PARAM,   /* a case parameter; index: kb_target.param_names order */
    KB__FA_PRODUCED /* pointer to a counter the function sets: the output's produced */
};

typedef struct kb__farg {
    uint8_t kind;  /* kb__fkind */
    uint8_t type;  /* kb_dtype (or KB__FT_*) of the scalar, or of what the pointer points to */
    uint8_t index; /* buffer or param, by kind */
    uint8_t pad;
} kb__farg;

typedef struct kb__fplan {
    uint32_t active; /* 0: a kbench plugin, the rest is unused */
    uint32_t n_args;
    /* 0 for void, else KB_DT_U32/U64/I32/I64. With ret_counts the value is
     * the produced count of buffer ret_buf; otherwise it is a status and
     * anything but 0 fails the call. */
    uint8_t ret_type, ret_counts, ret_buf;
    uint8_t n_statics, n_calls, n_outs; /* the target's buffers by role */
    uint8_t pad[2];
    kb__farg args[KB__FMAX_ARGS];
    char symbol[KB__FSYM_MAX];
    char target[64];
} kb__fplan;

/* "path/lib.so:symbol" -> path and symbol (split at the last ':'). */
int kb__foreign_split(const char *spec, char *path, size_t path_len, char *symbol,
                      size_t symbol_len, char *err, size_t err_len);

/* Parses `sig` and binds it against target t for `symbol`. On a mismatch,
 * KB__EABI (KB__EUSAGE for a syntax error) and one line in err that ends
 * with the binding the target expects. Also checks that every case's
 * params and lengths fit the declared scalar types. */
int kb__foreign_bind(const kb_target *t, const char *sig, const char *symbol, kb__fplan *plan,
                     char *err, size_t err_len);

/* Worker side: dlopen(RTLD_NOW|RTLD_LOCAL) load_path, find plan->symbol,
 * ffi_prep_cif once, and fill lib with a synthetic plugin (target =
 * plan->target, name = the symbol) that calls it. One per process. */
int kb__foreign_open(const char *load_path, const char *shown_path, const kb__fplan *plan,
                     kb__lib *lib, char *err, size_t err_len);

#endif /* KB_FOREIGN_H */
