/*
 * fuzz_json.c -- the client of `kbench serve` reading the server's verdict:
 * any bytes through json_loadb and kb__result_from_json, then printed the
 * ways the client prints it (block + best lines, JSON, Markdown, table).
 *
 * Properties: the verdict block stays grep-able (after "---", every line is
 * "key: value" with a lowercase key), the table has one line per case plus
 * its header, and a result read back prints as JSON that parses and reads
 * back again to the same status and case count (what a client relaying a
 * relayed verdict would see).
 */
#include <ctype.h>

#include "fuzz.h"
#include "kb.h"
#include "cli.h"
#include "report.h"
#include "session.h"

/* Runs print into a memory buffer; the caller frees it. */
#define CAPTURE(buf, len, call)                     \
    do {                                            \
        FILE *mf_ = open_memstream(&(buf), &(len)); \
        FZ_CHECK(mf_, "open_memstream");            \
        void *file = mf_;                           \
        call;                                       \
        FZ_CHECK(fclose(mf_) == 0, "fclose");       \
    } while (0)

static void check_block(const char *text)
{
    FZ_CHECK(strncmp(text, "---\n", 4) == 0, "no '---' opening the block");
    for (const char *line = text + 4; *line;) {
        const char *nl = strchr(line, '\n');
        FZ_CHECK(nl, "the block ends without a newline");
        const char *p = line;
        while (p < nl && (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            p++;
        FZ_CHECK(p > line && p + 1 < nl && p[0] == ':' && p[1] == ' ',
                 "not a 'key: value' line: '%.*s'", (int)(nl - line), line);
        line = nl + 1;
    }
}

/* The header, one line per case and, for a timed verdict, a blank line, the
 * four lines of notes and one line per case over 100% of its roof: nothing
 * a string in the document can add to. */
static void check_table(const char *text, const kb__result *r)
{
    size_t lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    const uint32_t n = r->n_cases < 64 ? r->n_cases : 64;
    size_t want = n ? n + 1 : 0;
    if (n && kb__status_timed(r->status)) {
        want += 5;
        for (uint32_t i = 0; i < n; i++) {
            char cell[32];
            want += (size_t)kb__result_roof_cell(&r->cases[i], cell, sizeof cell);
        }
    }
    FZ_CHECK(lines == want, "table has %zu lines for %u cases", lines, r->n_cases);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kb__result r, r2;
    json_error_t je;
    json_t *doc = json_loadb((const char *)data, size, 0, &je);
    if (!doc) return 0;
    kb__best_info bi;
    char err[512] = "";
    int rc = kb__result_from_json(doc, &r, &bi, err, sizeof err);
    json_decref(doc);
    fz_note("result_from_json", rc, err);
    if (rc != 0) {
        FZ_CHECK(rc < 0 && err[0] && !strchr(err, '\n'), "bad message: '%s'", err);
        return 0;
    }

    char *buf = NULL;
    size_t len = 0;
    CAPTURE(buf, len, (kb__result_print_block(&r, file), kb__best_print(&bi, file)));
    check_block(buf);
    free(buf);
    CAPTURE(buf, len, kb__result_print_table(&r, file));
    check_table(buf, &r);
    free(buf);
    CAPTURE(buf, len, kb__result_print_md(&r, file));
    free(buf);
    CAPTURE(buf, len, kb__result_print_json_ext(&r, &bi, file));
    json_t *again = json_loadb(buf, len, 0, &je);
    FZ_CHECK(again, "printed JSON does not parse: %s (line %d): %s", je.text, je.line, buf);
    free(buf);

    kb__best_info bi2;
    rc = kb__result_from_json(again, &r2, &bi2, err, sizeof err);
    json_decref(again);
    FZ_CHECK(rc == 0, "printed JSON does not read back: %s", err);
    FZ_CHECK(r2.status == r.status, "status %d became %d", r.status, r2.status);
    FZ_CHECK(r2.n_cases == r.n_cases, "%u cases became %u", r.n_cases, r2.n_cases);
    FZ_CHECK(bi2.used == bi.used, "best info lost");
    return 0;
}
