/*
 * report.h -- a trial's verdict for people and programs: the grep-able
 * block, the per-case table, Markdown (result.c) and JSON (result_json.c).
 */
#ifndef KB_REPORT_H
#define KB_REPORT_H

#include <jansson.h>

#include "verdict.h"

/* The grep-able block: "---" then "key: value" lines. */
void kb__result_print_block(const kb__result *r, void *file /* FILE* */);
/* The per-case table shown above the block on a terminal, with a note on
 * what its columns are and one line for each roof% over 100 saying why. */
void kb__result_print_table(const kb__result *r, void *file);
/* The table's roof% cell: percent of the roof that bounds the case, then
 * the roof's name (L1, L2, L3, DRAM: the level its bytes_per_call fits in;
 * FP: the FMA peak), then '*' when over 100 ("113 L2*"); "-" when
 * uncalibrated. Returns 1 when over 100. */
int kb__result_roof_cell(const kb__case_result *c, char *out, size_t n);
/* JSON (Google Benchmark shaped: context + benchmarks[], plus kbench fields),
 * built once as a jansson value (result.c); --json and `kbench serve` send
 * the same document. NULL on out of memory. */
json_t *kb__result_json(const kb__result *r);
/* s as a JSON string, each byte that is not valid UTF-8 as U+FFFD (paths,
 * plugin text and strings cut at a buffer's end can hold such bytes, which
 * jansson refuses). NULL on out of memory. */
json_t *kb__json_str(const char *s);
/* That document as text: --json output. */
void kb__result_print_json(const kb__result *r, void *file);
/* A Markdown table that pastes into a pull request. */
void kb__result_print_md(const kb__result *r, void *file);

/* ---- results as JSON (result_json.c) --------------------------------- */
/* kb__result_json's document with "oracle_ratio" and friends added to its
 * "kbench" object when bi->used (bi may be NULL). NULL on out of memory. */
json_t *kb__result_to_json(const kb__result *r, const kb__best_info *bi);
/* The other way: fills r (and bi, may be NULL) from such a document. 0, or
 * KB__EFORMAT with err naming the missing or mistyped member. */
int kb__result_from_json(const json_t *doc, kb__result *r, kb__best_info *bi, char *err,
                         size_t err_len);
/* The machine's keys (env.h; the block's names) into a result's "kbench"
 * object, and back. 0, or -1 when out of memory. */
int kb__env_to_json(json_t *kb, const kb__env *e);
void kb__env_from_json(const json_t *kb, kb__env *e);
/* --json output, with the best-so-far fields when bi->used. */
void kb__result_print_json_ext(const kb__result *r, const kb__best_info *bi, void *file);

#endif /* KB_REPORT_H */
