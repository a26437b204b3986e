#!/usr/bin/env bash
# scripts/scaffold-target.sh NAME -- a new kbench target that builds and passes its test.
#
# Creates
#   oracles/NAME/oracle.c        spec (params, buffers, cases, tolerance), seeded generator,
#                                scalar reference kernel: a placeholder (y = sum x[i] * w[i])
#                                to replace with the real kernel
#   oracles/NAME/CMakeLists.txt  the oracle plugin
#   oracles/NAME/PIN             the oracle's pin (scripts/check-oracle-drift.sh)
#   plugins/NAME/baseline.c      the reference as a candidate: the copy to start from
#   plugins/NAME/CMakeLists.txt  its candidates
#   plugins/NAME/program.md      the agent's program for this target
#   tests/test_target_NAME.c     cmocka: the baseline verifies and is never kept
# oracles/ and plugins/ pick up every subdirectory with a CMakeLists.txt, and tests/ every
# test_*.c, so nothing else needs editing. Then:
#   cmake -S . -B build && cmake --build build -j2 && (cd build && ctest -R test_target_NAME)
# docs/adding-a-target.md walks through filling it in.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name="${1:-}"
if ! [[ "$name" =~ ^[a-z][a-z0-9-]{0,40}$ ]]; then
  echo "usage: $0 NAME   (NAME: lowercase letters, digits and '-', starting with a letter)" >&2
  exit 64
fi
id="${name//-/_}"
for d in "$root/oracles/$name" "$root/plugins/$name" "$root/tests/test_target_$id.c"; do
  if [ -e "$d" ]; then echo "$0: $d already exists; pick another name" >&2; exit 64; fi
done
mkdir -p "$root/oracles/$name" "$root/plugins/$name"

# ---- oracle ------------------------------------------------------------------------------
sed -e "s/@NAME@/$name/g" -e "s/@ID@/$id/g" > "$root/oracles/$name/oracle.c" <<'EOF'
/*
 * oracle.c -- the @NAME@ target: spec, inputs and reference.
 *
 * SCAFFOLD: the kernel here is a placeholder (y = sum of x[i] * w[i]) so the target builds and
 * its test passes from the first minute. Replace it, in this order (docs/adding-a-target.md):
 *  1. find the real call site and its real input distribution: shapes, sizes, skew, what is
 *     fixed across calls (KB_ROLE_STATIC) and what changes on every call (KB_ROLE_CALL);
 *  2. the cases table: the shapes the call site sees, named "shape/distribution", the
 *     common ones flagged KB_CASE_QUICK;
 *  3. @ID@_generate: inputs with that distribution, from (case, seed, set) only;
 *  4. @ID@_run: the scalar reference, as plain as possible: it defines the answer;
 *  5. .upstream: where it was ported from, and its revision.
 * Then re-pin (scripts/check-oracle-drift.sh --update @NAME@): the build refuses an
 * oracle whose sources differ from oracles/@NAME@/PIN.
 */
#include <stdio.h>
#include <string.h>

#include "kb_gen.h"
#include "kbench.h"

enum { P_N, N_PARAMS };
enum { B_W, B_X, B_Y, N_BUFFERS }; /* statics, then per-call inputs, then outputs */

#define CASE(name, flags, n) {name, flags, 0, {n}, {n, n, 1}, 8.0 * (n), 2.0 * (n)}

static const kb_case_spec @ID@_cases[] = {
    CASE("n=4096/uniform", KB_CASE_QUICK, 4096),
    CASE("n=65536/normal", KB_CASE_QUICK, 65536),
    CASE("n=1048576/uniform", 0, 1048576),
};

static const char *const @ID@_param_names[N_PARAMS] = {"n"};

static const kb_buffer_spec @ID@_buffers[N_BUFFERS] = {
    {"w", KB_DT_F32, KB_ROLE_STATIC, 0, 0},
    {"x", KB_DT_F32, KB_ROLE_CALL, 0, 0},
    {"y", KB_DT_F32, KB_ROLE_OUTPUT, 0, 0},
};

static int @ID@_generate(const kb_case_spec *cs, uint64_t seed, uint32_t set, kb_buffer *bufs,
                         uint32_t n_bufs, char *err, size_t err_len)
{
    if (n_bufs != N_BUFFERS) {
        snprintf(err, err_len, "@NAME@ generate: %u buffers given, %d expected", n_bufs, N_BUFFERS);
        return -1;
    }
    const size_t n = (size_t)cs->params[P_N];
    const int normal = strstr(cs->name, "/normal") != NULL;
    kb_rng r;
    if (set == 0) { /* statics: from (case, seed) only */
        kb_rng_seed(&r, kb_rng_derive(seed, 0, B_W));
        kb_gen_uniform_f32(&r, bufs[B_W].data, n, -1.0f, 1.0f);
    }
    kb_rng_seed(&r, kb_rng_derive(seed, set, B_X));
    if (normal)
        kb_gen_normal_f32(&r, bufs[B_X].data, n, 0.0f, 1.0f);
    else
        kb_gen_uniform_f32(&r, bufs[B_X].data, n, -1.0f, 1.0f);
    return 0;
}

static const kb_target @ID@_target = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_target),
    .flags = 0,
    .name = "@NAME@",
    .description = "SCAFFOLD placeholder: y = sum of x[i] * w[i]; describe the real kernel in one line",
    .upstream = "SCAFFOLD: where the reference was ported from, and its revision",
    .n_params = N_PARAMS,
    .n_buffers = N_BUFFERS,
    .param_names = @ID@_param_names,
    .buffers = @ID@_buffers,
    .n_cases = sizeof(@ID@_cases) / sizeof(@ID@_cases[0]),
    .cases = @ID@_cases,
    /* Candidates that reassociate the sum (SIMD lanes) differ in the last bits: a float
     * reduction needs a relative tolerance; 0 would demand the scalar order. */
    .rel_tol = 1e-4,
    .generate = @ID@_generate,
};

/* ---- the reference kernel ------------------------------------------- */

typedef struct @ID@_state {
    const kb_host *host;
    const float *w;
} @ID@_state;

static int @ID@_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                        uint32_t n_statics, void **state, char *err, size_t err_len)
{
    if (n_statics != 1 || cs->n_params != N_PARAMS) {
        snprintf(err, err_len, "@NAME@: expected 1 static and %d params", N_PARAMS);
        return KB_ERR_INTERNAL;
    }
    @ID@_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->w = statics[0].data; /* valid until release */
    *state = st;
    return KB_OK;
}

static int @ID@_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                    uint32_t n_outputs, char *err, size_t err_len)
{
    const @ID@_state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || outputs[0].count != 1) {
        snprintf(err, err_len, "@NAME@: need x and a one-element y");
        return KB_ERR_INTERNAL;
    }
    const float *x = inputs[0].data;
    float sum = 0.0f; /* i increasing, multiply then add: the rounding is the contract */
    for (uint64_t i = 0; i < inputs[0].count; i++)
        sum += x[i] * st->w[i];
    ((float *)outputs[0].data)[0] = sum;
    return KB_OK;
}

static void @ID@_release(void *state)
{
    @ID@_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin @ID@_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "@NAME@",
    .name = "oracle",
    .version = "1",
    .cpu_features = 0,
    .prepare = @ID@_prepare,
    .run = @ID@_run,
    .verify = NULL,
    .release = @ID@_release,
};

KB_EXPORT const kb_target *kb_target_entry_v1(void)
{
    return &@ID@_target;
}

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &@ID@_plugin;
}
EOF

cat > "$root/oracles/$name/CMakeLists.txt" <<EOF
# The frozen reference for $name: spec, input generator and scalar kernel.
kbench_add_plugin(${id}_oracle ORACLE TARGET $name FILE_NAME oracle
  SOURCES oracle.c LIBS kbench_gen)
target_compile_options(${id}_oracle PRIVATE -ffp-contract=off)
EOF

# ---- candidates ----------------------------------------------------------------------------
sed -e "s/@NAME@/$name/g" -e "s/@ID@/$id/g" > "$root/plugins/$name/baseline.c" <<'EOF'
/*
 * baseline.c -- @NAME@, the oracle's algorithm as a candidate.
 *
 * The same scalar loop as oracles/@NAME@/oracle.c. Timed against the oracle it shows the
 * harness's noise floor (its ratio sits at 1, and it must never be kept); it is also the
 * file to copy when starting a candidate.
 */
#include <stdio.h>

#include "kbench.h"

typedef struct @ID@_state {
    const kb_host *host;
    const float *w;
} @ID@_state;

static int @ID@_prepare(const kb_host *host, const kb_case *cs, const kb_buffer *statics,
                        uint32_t n_statics, void **state, char *err, size_t err_len)
{
    (void)cs;
    if (n_statics != 1) {
        snprintf(err, err_len, "@NAME@: expected 1 static input");
        return KB_ERR_INTERNAL;
    }
    @ID@_state *st = host->alloc_aligned(host, sizeof(*st), 64);
    if (!st) {
        snprintf(err, err_len, "out of memory for the state");
        return KB_ERR_NOMEM;
    }
    st->host = host;
    st->w = statics[0].data;
    *state = st;
    return KB_OK;
}

static int @ID@_run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
                    uint32_t n_outputs, char *err, size_t err_len)
{
    const @ID@_state *st = state;
    if (n_inputs != 1 || n_outputs != 1 || outputs[0].count != 1) {
        snprintf(err, err_len, "@NAME@: need x and a one-element y");
        return KB_ERR_INTERNAL;
    }
    const float *x = inputs[0].data;
    float sum = 0.0f; /* i increasing, multiply then add: the rounding is the contract */
    for (uint64_t i = 0; i < inputs[0].count; i++)
        sum += x[i] * st->w[i];
    ((float *)outputs[0].data)[0] = sum;
    return KB_OK;
}

static void @ID@_release(void *state)
{
    @ID@_state *st = state;
    st->host->free_aligned(st->host, st);
}

static const kb_plugin @ID@_plugin = {
    .magic = KB_ABI_MAGIC,
    .abi_major = KB_ABI_MAJOR,
    .abi_minor = KB_ABI_MINOR,
    .struct_size = sizeof(kb_plugin),
    .flags = 0,
    .target = "@NAME@",
    .name = "baseline",
    .version = "1",
    .cpu_features = 0,
    .prepare = @ID@_prepare,
    .run = @ID@_run,
    .verify = NULL,
    .release = @ID@_release,
};

KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &@ID@_plugin;
}
EOF

cat > "$root/plugins/$name/CMakeLists.txt" <<EOF
# Candidates for $name, built into build/plugins/$name/.
kbench_add_plugin(${id}_baseline TARGET $name FILE_NAME baseline SOURCES baseline.c)
target_compile_options(${id}_baseline PRIVATE -ffp-contract=off)
EOF

sed -e "s/@NAME@/$name/g" > "$root/plugins/$name/program.md" <<'EOF'
# @NAME@: program for an optimizing agent

SCAFFOLD: fill in the kernel, the goal figures and the ideas once the oracle is real.

You are improving one kernel. Work in a loop: edit one file, build, run a trial, keep the
change if the trial says `keep`, revert it otherwise, repeat. Every trial is logged.

## Goal

The placeholder kernel is y = sum of x[i] * w[i] (f32). Lower `geomean_ratio` against the best kept candidate so far (`--against best`); each verdict
also prints `oracle_ratio`, the same candidate against the oracle.

## The one file

`plugins/@NAME@/fast.c` (start with `cp plugins/@NAME@/baseline.c plugins/@NAME@/fast.c`, set
`.name = "fast"`, add `kbench_add_plugin(<id>_fast TARGET @NAME@ FILE_NAME fast SOURCES fast.c)` to
`plugins/@NAME@/CMakeLists.txt`).

## The loop

```sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2
build/kbench serve --socket /tmp/kb.sock &          # once: keeps inputs warm
# each experiment:
cmake --build build -j2 --target <id>_fast && build/kbench trial --server /tmp/kb.sock \
    build/plugins/@NAME@/fast.so --against best --ledger results.tsv --description "what changed"
```

- exit 0 `keep`: commit the file (`git commit -am "..."`); the build is now the best
  (`.kbench/@NAME@/best.so`).
- exit 1 `discard`, 4 `inconclusive`: `git checkout -- plugins/@NAME@/fast.c`.
- exit 2 `incorrect`: `reason` names case, index, expected, got. Fix or revert.
- exit 3 `crash`/`timeout`/`rejected`: read `reason`, revert.

Equal speed, less code wins: a simplification that is not slower is a keep in spirit; commit it.

## Off limits

`oracles/`, `abi/`, `host/`, `generators/`, the case list and the tolerance. No threads, no
caching across calls, declare every CPU feature used.

## Ideas

1. (fill in)
EOF

sed -e "s/@NAME@/$name/g" -e "s/@ID@/$id/g" > "$root/tests/test_target_$id.c" <<'EOF'
/*
 * test_target_@ID@.c -- the @NAME@ target end to end (made by scripts/scaffold-target.sh):
 * its oracle loads and passes the spec checks, the baseline matches the oracle on every
 * case, and a trial of the baseline against the oracle is never a keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kb_run.h"

static void test_baseline_verifies(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "verify", (char *)kb_path("plugins/@NAME@/baseline.so"), "--cases", "all");
    if (r.code != 0) print_error("%s\n%s\n", r.out, r.err);
    assert_int_equal(r.code, 0);
    assert_string_equal(kb_field(&r, "status"), "correct");
    assert_string_equal(kb_field(&r, "target"), "@NAME@");
}

static void test_baseline_is_not_kept(void **s)
{
    (void)s;
    kb_run r;
    KB_RUN(&r, "trial", (char *)kb_path("plugins/@NAME@/baseline.so"), "--budget", "1");
    /* discard or inconclusive; on a loaded machine the harness may also reject a side for
     * work between calls, which is still not a keep (test_baseline_verifies covers crashes) */
    if (r.code != 1 && r.code != 4) print_message("%s: %s\n", kb_field(&r, "status"), kb_field(&r, "reason"));
    assert_string_not_equal(kb_field(&r, "status"), "keep");
    assert_true(r.code != 0 && r.code != 64 && r.code != 70);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baseline_verifies),
        cmocka_unit_test(test_baseline_is_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
EOF

"$root/scripts/check-oracle-drift.sh" --update "$name" \
  "SCAFFOLD: where the reference was ported from, and its revision"
cat <<EOF
created oracles/$name/{oracle.c,CMakeLists.txt,PIN}, plugins/$name/{baseline.c,CMakeLists.txt,program.md},
tests/test_target_$id.c. Build and test:
  cmake -S . -B build && cmake --build build -j2 && (cd build && ctest -R test_target_$id)
then follow docs/adding-a-target.md, starting with the real call site and its inputs.
EOF
