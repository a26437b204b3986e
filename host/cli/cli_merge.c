/*
 * cli_merge.c -- `kbench merge`: the result files of campaigns (any number
 * of folders, shards and machines) as one ledger, one Markdown matrix and
 * one JSON document.
 *
 * What must hold: the outputs depend only on the set of results, not on
 * the order of the folders or how often a result was copied, so merging
 * the same results twice writes the same files (one result per trial id,
 * sorted by it; each ledger line stamped with its trial's end). A result
 * judged by another oracle digest than the others of its target is said on
 * stderr and kept out of the matrix and the ledger, never mixed in.
 */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ledger.h"
#include "merge.h"
#include "options.h"
#include "report.h"

static const char HELP[] =
    "usage: kbench merge DIR... [--ledger FILE] [--markdown FILE] [--json FILE]\n"
    "\n"
    "Combines the result files `kbench campaign` wrote into DIR... (any number of\n"
    "folders, shards and machines): a ledger v2 (results.tsv), a Markdown matrix\n"
    "(a row per build, target and candidate, a column per machine kind, i.e. CPU model;\n"
    "each cell the verdict and the geomean ratio with its 90% CI; the lowest ratio kept\n"
    "in each column of a target in bold) and one JSON document. Results are deduplicated\n"
    "by trial id and written sorted by it, so merging the same results again writes the\n"
    "same files. With no output option, the matrix goes to stdout.\n"
    "\n"
    "options:\n"
    "  --ledger FILE     write the ledger (replaced as a whole, atomically)\n"
    "  --markdown FILE   write the Markdown matrix\n"
    "  --json FILE       write the JSON document\n"
    "  -q, --quiet       say nothing but errors\n"
    "  -h, --help        this text\n"
    "\n"
    "A result judged by another oracle digest than the most of its target is named on\n"
    "stderr and left out of all three (exit 1): rebuild that node's oracle and rerun it.\n"
    "Exit 0, 1 on such a mismatch, 64 on usage errors, 70 when a file cannot be read or\n"
    "written.\n";

typedef struct kb__merge_args {
    const char *ledger, *markdown, *json;
    int quiet;
} kb__merge_args;

static int merge_parse(int argc, char **argv, kb__merge_args *a, int *done)
{
    struct option opts[8];
    kb__longopts("ledger markdown json= quiet help", opts, sizeof opts / sizeof opts[0]);
    const kb__cmdline cl = {"merge", HELP, "qh", opts};
    memset(a, 0, sizeof *a);
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        switch (c) {
        case 'l': a->ledger = optarg; break;
        case 'm': a->markdown = optarg; break;
        case 'J': a->json = optarg; break;
        case 'q': a->quiet = 1; break;
        case 'h': fputs(HELP, stdout); return *done = 1, 0;
        default: return KB__EXIT_USAGE;
        }
    }
    if (optind < argc) return 0;
    fputs("kbench merge: expected one or more result folders, e.g. kbench merge results\n", stderr);
    return kb__usage("merge", HELP);
}

/* One result file read. 0 when it is one, 1 to skip (not a campaign
 * result), -1 with err when it cannot be read. */
static int read_entry(const char *path, kb__mentry *e, char *err, size_t len)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    const json_t *c = json_object_get(doc, "campaign");
    if (!doc) {
        kb__errf(err, len, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    const char *id = json_string_value(json_object_get(c, "trial_id"));
    if (!id || !json_is_true(json_object_get(c, "complete"))) {
        json_decref(doc);
        return 1;
    }
    memset(e, 0, sizeof *e);
    snprintf(e->file, sizeof e->file, "%s", path);
    if (kb__result_from_json(doc, &e->r, NULL, err, len) != 0) {
        json_decref(doc);
        return -1;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    const char *b = json_string_value(json_object_get(c, "build"));
    snprintf(e->build, sizeof e->build, "%s", b ? b : "");
    const char *n = json_string_value(json_object_get(c, "node"));
    snprintf(e->node, sizeof e->node, "%s", n ? n : "");
    const char *j = json_string_value(json_object_get(c, "slurm_job_id"));
    snprintf(e->job, sizeof e->job, "%s", j ? j : "");
    e->when = (time_t)json_integer_value(json_object_get(c, "finished_unix"));
    json_decref(doc);
    return 0;
}

static int json_name(const struct dirent *d)
{
    const size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

/* Every result file of dir appended to set. 0, or -1 (said on stderr). */
static int read_dir(const char *dir, kb__mset *set)
{
    struct dirent **names;
    const int n = scandir(dir, &names, json_name, alphasort);
    if (n < 0) {
        fprintf(stderr, "kbench merge: %s: cannot read the folder; give a campaign's --out\n", dir);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 256], err[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        kb__mentry *e = kb__mset_next(set);
        const int got = e ? read_entry(path, e, err, sizeof err) : -1;
        if (got < 0) {
            fprintf(stderr, "kbench merge: %s\n", e ? err : "out of memory");
            rc = -1;
        }
        if (got == 0) set->n++;
    }
    free(names);
    return rc;
}

int kb__cli_merge(int argc, char **argv)
{
    kb__merge_args a;
    int done = 0, code = merge_parse(argc, argv, &a, &done);
    if (code || done) return code;
    kb__mset set;
    memset(&set, 0, sizeof set);
    for (int i = optind; i < argc; i++)
        if (read_dir(argv[i], &set) != 0) code = KB__EXIT_SOFTWARE;
    if (!code) {
        kb__mset_dedupe(&set);
        const int mismatched = kb__mset_check_digests(&set, stderr);
        const int wrote = kb__merge_write(&set, a.ledger, a.markdown, a.json);
        code = wrote ? KB__EXIT_SOFTWARE : mismatched ? 1 : 0;
        if (!a.quiet && !wrote)
            fprintf(stderr, "kbench merge: %zu results of %zu trials%s\n", set.n_all, set.n,
                    mismatched ? ", some left out for their oracle digest (above)" : "");
    }
    free(set.e);
    return code;
}
