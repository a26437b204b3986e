/*
 * describe.h -- the description of one `kbench watch` round (describe.c):
 * what changed in this build, in words, for its ledger line.
 */
#ifndef KB_DESCRIBE_H
#define KB_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

/* Seconds a --describe-cmd (or git) may take before it is killed. */
#define KB__DESCRIBE_TIMEOUT_S   3
#define KB__DESCRIBE_TIMEOUT_TXT "3"

/* Describes round `round` of the candidate at `cand`:
 *   - `cmd` (--describe-cmd; may be NULL): run as `sh -c CMD` in the
 *     candidate's directory with $KBENCH_CANDIDATE set to its path; the
 *     first line of its stdout. A command that fails, times out or prints
 *     nothing leaves a one-line reason in err (else err is "") and the
 *     round falls back to the next way;
 *   - in a git work tree: "<HEAD's subject> (<diff --shortstat HEAD>, or
 *     no uncommitted change); round N";
 *   - else "round N".
 * `prefix` (--description; NULL or "" for none) goes before it as
 * "PREFIX: ...". Never fails: out always holds a description. */
void kb__describe_round(const char *cand, const char *cmd, const char *prefix, uint64_t round,
                        char *out, size_t out_len, char *err, size_t err_len);

#endif /* KB_DESCRIBE_H */
