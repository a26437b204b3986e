/*
 * portable.c -- take candidate "portable": plain C, every CPU.
 *
 * The oracle loads one index, checks it against n, loads the value and stores it. Here:
 *  - eight independent loads and stores a step, no bounds check;
 *  - the values for every other index TK_AHEAD positions ahead are prefetched (GCC/Clang
 *    builtin), so that random rows of a column larger than the caches arrive in time.
 * A scalar run check (eight indices first, first + 1, ...: one 8-value copy) was slower
 * on clustered runs: the branch goes either way about half the time.
 * The bounds check is dropped: the indices are the generator's, each below n.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kbench.h"

enum { P_N, P_M, P_W, N_PARAMS };
#define TK_MAX_N   (INT64_C(1) << 24)
#define TK_MAX_M   (INT64_C(1) << 22)
#define TK_MAX_LEN 32
#define TK_AHEAD   32

typedef struct tk__state {
    const kb_host *host;
    const uint8_t *values;
    uint8_t *slots; /* strings: n slots of 32 bytes, each string zero-padded */
    uint32_t *lens; /* strings: n lengths */
    uint64_t n;
    int64_t w;
} tk__state;

static const char *tk__bad_params(int64_t n, int64_t m, int64_t w)
{
    if (n < 1 || n > TK_MAX_N) return "n must be in [1, 2^24]";
    if (m < 1 || m > TK_MAX_M) return "m must be in [1, 2^22]";
    if (w != 0 && w != 4 && w != 8) return "w (bytes a value) must be 4, 8, or 0 for strings";
    return NULL;
}

static void tk__release(void *state)
{
    tk__state *s = state;
    if (s->slots) s->host->free_aligned(s->host, s->slots);
    if (s->lens) s->host->free_aligned(s->host, s->lens);
    s->host->free_aligned(s->host, s);
}

/* Strings: each into a zero-padded 32-byte slot, its length into a table. */
static int tk__slots(tk__state *s, const uint32_t *offsets, char *err, size_t err_len)
{
    s->slots = s->host->alloc_aligned(s->host, (size_t)s->n * TK_MAX_LEN, 64);
    s->lens = s->host->alloc_aligned(s->host, (size_t)s->n * sizeof(uint32_t), 64);
    if (!s->slots || !s->lens) return KB_ERR_NOMEM;
    memset(s->slots, 0, (size_t)s->n * TK_MAX_LEN);
    for (uint64_t e = 0; e < s->n; e++) {
        const uint32_t a = offsets[e], b = offsets[e + 1];
        if (b < a || b - a > TK_MAX_LEN) {
            snprintf(err, err_len, "take: string %llu is not 0..32 bytes", (unsigned long long)e);
            return KB_ERR_UNSUPPORTED;
        }
        s->lens[e] = b - a;
        memcpy(s->slots + e * TK_MAX_LEN, s->values + a, b - a);
    }
    return KB_OK;
}

static int tk__prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                       uint32_t n_statics, void **state, char *err, size_t err_len)
{
    const char *bad = cs->n_params != N_PARAMS
                          ? "3 parameters expected"
                          : tk__bad_params(cs->params[P_N], cs->params[P_M], cs->params[P_W]);
    if (!bad && n_statics != 2) bad = "2 statics expected";
    if (bad) {
        snprintf(err, err_len, "take: %s", bad);
        return KB_ERR_UNSUPPORTED;
    }
    tk__state *s = host->alloc_aligned(host, sizeof *s, 64);
    if (!s) return KB_ERR_NOMEM;
    memset(s, 0, sizeof *s);
    s->host = host;
    s->values = statics[0].data;
    s->n = (uint64_t)cs->params[P_N];
    s->w = cs->params[P_W];
    if (s->w == 0) {
        const int rc = tk__slots(s, statics[1].data, err, err_len);
        if (rc != KB_OK) {
            tk__release(s);
            return rc;
        }
    }
    *state = s;
    return KB_OK;
}

/* One loop per value type T: eight independent loads and stores a step. */
#define TK_TAKE(fname, T)                                                                          \
    static void fname(const uint8_t *restrict values_b, const uint32_t *restrict idx, uint64_t m,  \
                      uint8_t *restrict out_b)                                                     \
    {                                                                                              \
        const T *values = (const T *)(const void *)values_b;                                       \
        T *out = (T *)(void *)out_b;                                                               \
        uint64_t i = 0;                                                                            \
        for (; i + 8 <= m; i += 8) {                                                               \
            if (i + TK_AHEAD + 8 <= m)                                                             \
                for (int j = 0; j < 8; j += 2) __builtin_prefetch(&values[idx[i + TK_AHEAD + j]]); \
            for (int j = 0; j < 8; j++) out[i + j] = values[idx[i + j]];                           \
        }                                                                                          \
        for (; i < m; i++) out[i] = values[idx[i]];                                                \
    }
TK_TAKE(tk__take_u32, uint32_t)
TK_TAKE(tk__take_u64, uint64_t)

/* Strings: one 32-byte copy of the slot a value (the output holds 32m bytes and the
 * start of value i is at most 32i, so it never passes the end; the next value overwrites
 * the padding), the offset a running sum, in one pass. */
static uint64_t tk__strings(const uint8_t *restrict slots, const uint32_t *restrict lens,
                            const uint32_t *restrict idx, uint64_t m,
                            uint32_t *restrict out_offsets, uint8_t *restrict out)
{
    uint32_t len = 0;
    out_offsets[0] = 0;
    for (uint64_t i = 0; i < m; i++) {
        const uint32_t c = idx[i];
        memcpy(out + len, slots + (size_t)c * TK_MAX_LEN, TK_MAX_LEN);
        len += lens[c];
        out_offsets[i + 1] = len;
    }
    return len;
}

static int tk__run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                   uint32_t n_outputs, char *err, size_t err_len)
{
    const tk__state *s = state;
    if (n_inputs != 1 || n_outputs != 2 ||
        outputs[1].count != inputs[0].count * (uint64_t)(s->w ? s->w : TK_MAX_LEN)) {
        snprintf(err, err_len, "take: need m indices, the offsets and m * w output bytes");
        return KB_ERR_INTERNAL;
    }
    uint32_t *out_offsets = outputs[0].data;
    if (s->w == 0) {
        outputs[1].produced = tk__strings(s->slots, s->lens, inputs[0].data, inputs[0].count,
                                          out_offsets, outputs[1].data);
        return KB_OK;
    }
    out_offsets[0] = 0;
    outputs[1].produced = inputs[0].count * (uint64_t)s->w;
    (s->w == 4 ? tk__take_u32 : tk__take_u64)(s->values, inputs[0].data, inputs[0].count,
                                              outputs[1].data);
    return KB_OK;
}

static const kb_plugin tk__plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "take",
    .name = "portable",
    .version = "1",
    .cpu_features = 0,
    .prepare = tk__prepare,
    .run = tk__run,
    .verify = NULL,
    .release = tk__release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &tk__plugin;
}
