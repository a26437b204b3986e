/*
 * ledger.h -- results.tsv (ledger.c): one line per trial, appended, never
 * rewritten; how its columns grow is in docs/results.md.
 */
#ifndef KB_LEDGER_H
#define KB_LEDGER_H

#include <time.h>

#include "session.h"

/* The first 13 columns, all a v1 ledger has. */
#define KB__LEDGER_COLUMNS_V1                                                            \
    "timestamp\ttarget\tcandidate\tdigest\toracle_digest\tcommit\tstatus\tgeomean_ratio" \
    "\tci90_low\tci90_high\tworst_ratio\ttrial_seconds\tdescription"
#define KB__LEDGER_HEADER_V1 KB__LEDGER_COLUMNS_V1 "\n"
/* v2 appends its columns after v1's; the last one, ledger_version, is the
 * version marker: the header names it and every v2 line holds 2 there. A
 * later version appends after it, so a reader finds every column it knows
 * at the same place in any newer file. */
#define KB__LEDGER_COLUMNS_V2                                                                 \
    KB__LEDGER_COLUMNS_V1 "\tagainst\tagainst_digest\toracle_ratio\tpromoted\tkbench_version" \
                          "\tmachine\tledger_version"
/* One more v2 column, env: the machine beyond `machine` (docs/results.md).
 * A v2 file whose header ends at ledger_version (an earlier kbench wrote
 * it) is still appended to, with lines that end there too. */
#define KB__LEDGER_COLUMNS_V2_ENV KB__LEDGER_COLUMNS_V2 "\tenv"
#define KB__LEDGER_HEADER         KB__LEDGER_COLUMNS_V2_ENV "\n"
#define KB__LEDGER_VERSION        2

enum {
    KB__LF_TS,
    KB__LF_TARGET,
    KB__LF_CAND,
    KB__LF_DIGEST,
    KB__LF_ODIGEST,
    KB__LF_COMMIT,
    KB__LF_STATUS,
    KB__LF_GEO,
    KB__LF_LO,
    KB__LF_HI,
    KB__LF_WORST,
    KB__LF_SECS,
    KB__LF_DESC,
    KB__LF_N1, /* fields of a v1 line */
    KB__LF_AGAINST = KB__LF_N1,
    KB__LF_AGAINST_DIGEST,
    KB__LF_ORACLE_RATIO,
    KB__LF_PROMOTED,
    KB__LF_VERSION,
    KB__LF_MACHINE,
    KB__LF_LEDGER_VERSION,
    KB__LF_ENV, /* absent under a header without it */
    KB__LF_N2   /* fields of a v2 line */
};
/* Fields of a v2 line under a header without env. */
#define KB__LF_N2_MIN KB__LF_ENV

/* The version a ledger's first line (with its '\n') names: 1, 2, or 0 when
 * it is no kbench ledger. A header that starts with the v2 columns and
 * appends more is read as v2. */
int kb__ledger_header_version(const char *first_line);

/* The ledger line of a finished trial, '\n' included: the one format,
 * whoever appends it. bi may be NULL (a trial not --against best). Paths
 * are written canonical and absolute (realpath; a path that no longer
 * resolves is joined to the working directory), so a line reads the same
 * whichever command or process wrote it. The line's length, or -1 when it
 * does not fit in buf_len. */
int kb__ledger_format(const kb__result *r, const kb__best_info *bi, char *buf, size_t buf_len);
/* The same line stamped with `when` instead of now: `kbench merge` writes a
 * trial's line with the time it ended, so merging twice writes one file. */
int kb__ledger_format_at(const kb__result *r, const kb__best_info *bi, time_t when, char *buf,
                         size_t buf_len);

/* Appends kb__ledger_format's line to the results.tsv at `path`, writing
 * the header if the file is new. O_APPEND, an exclusive flock, one
 * write(2) per line: concurrent trials never interleave or tear lines. A
 * file with an older header is refused (KB__ECORRUPT, err says to start a
 * new file): its lines could not say what a v2 line says. */
/* Before a trial: an existing file at path is a ledger this kbench can
 * append to (0), else err says what it is and what to do, so no trial
 * runs only to find its line cannot be written. */
int kb__ledger_check(const char *path, char *err, size_t err_len);
int kb__ledger_append(const char *path, const kb__result *r, const kb__best_info *bi, char *err,
                      size_t err_len);

#endif /* KB_LEDGER_H */
