/*
 * cli_campaign.c -- `kbench campaign`: the trials of a manifest (or of one
 * shard of it), one after another, one JSON result file each.
 *
 * Never two trials at once: on one machine they would time each other.
 * A result is written to a temporary file and renamed into place, so a
 * file under its final name is always complete and a rerun (a requeued
 * Slurm task, a second `kbench campaign`) skips it.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "campaign.h"
#include "cli.h"
#include "options.h"
#include "record.h"
#include "report.h"

static const char HELP[] =
    "usage: kbench campaign MANIFEST.json [--out DIR] [--shard I/N] [--build NAME] [--list]\n"
    "       kbench campaign MANIFEST.json --slurm [--out DIR] [-- SBATCH OPTIONS...]\n"
    "\n"
    "Runs the trials a manifest names (targets x candidates per build directory x\n"
    "repeats), one after another, each into its own JSON result in DIR. A trial whose\n"
    "result is already there is skipped, so a rerun finishes what was left.\n"
    "docs/campaign.md describes the manifest.\n"
    "\n"
    "options:\n"
    "  --out DIR        where the results go (default: the manifest's \"out\")\n"
    "  --shard I/N      only the trials k with k mod N == I (0 <= I < N): every trial is\n"
    "                   in exactly one shard; auto/N takes I from $SLURM_ARRAY_TASK_ID,\n"
    "                   else $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)\n"
    "  --build NAME     only the trials of that build of the manifest\n"
    "  --list           print the trials (of the shard) and whether each is done; run none\n"
    "  --slurm          write DIR/campaign-<build>.sbatch, one job array per build (its\n"
    "                   constraint and partition), each task one shard on a whole node,\n"
    "                   submit them with sbatch and print each job id; the words after\n"
    "                   `--` go to sbatch\n"
    "  -q, --quiet      no line per trial\n"
    "  -h, --help       this text\n"
    "\n"
    "Each result records the node, CPU model, ISA features, kbench version and\n"
    "slurm_job_id ($SLURM_ARRAY_JOB_ID_$SLURM_ARRAY_TASK_ID). `kbench merge` combines them.\n"
    "Exit 0 when every trial of the shard has its result, 70 when one could not be run or\n"
    "written (the message says which), 64 on usage errors.\n";

typedef struct kb__camp_args {
    const char *manifest, *out, *build, *shard;
    int list, slurm, quiet;
    unsigned shard_i, shard_n;
    char **sbatch;
    int n_sbatch;
} kb__camp_args;

/* 0, or an exit code (usage, or 0 after --help with *done). */
static int camp_parse(int argc, char **argv, kb__camp_args *a, int *done)
{
    struct option opts[10];
    kb__longopts("out shard build list slurm quiet help", opts, sizeof opts / sizeof opts[0]);
    const kb__cmdline cl = {"campaign", HELP, "qh", opts};
    memset(a, 0, sizeof *a);
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        switch (c) {
        case 'y': a->out = optarg; break;
        case 'H': a->shard = optarg; break;
        case 'B': a->build = optarg; break;
        case 'L': a->list = 1; break;
        case 'W': a->slurm = 1; break;
        case 'q': a->quiet = 1; break;
        case 'h': fputs(HELP, stdout); return *done = 1, 0;
        default: return KB__EXIT_USAGE;
        }
    }
    char err[256];
    if (optind >= argc) {
        fputs("kbench campaign: expected the manifest, e.g. kbench campaign smoke.json\n", stderr);
        return kb__usage("campaign", HELP);
    }
    a->manifest = argv[optind];
    a->sbatch = argv + optind + 1;
    a->n_sbatch = argc - optind - 1;
    if (a->n_sbatch && !a->slurm) {
        fprintf(stderr,
                "kbench campaign: '%s' is not an option; sbatch options go after "
                "--slurm --\n",
                a->sbatch[0]);
        return kb__usage("campaign", HELP);
    }
    if (a->shard && kb__shard_parse(a->shard, &a->shard_i, &a->shard_n, err, sizeof err)) {
        fprintf(stderr, "kbench campaign: %s\n", err);
        return KB__EXIT_USAGE;
    }
    return 0;
}

/* mkdir -p. 0, or -1 with errno. */
static int make_dirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* A result file under its final name that names this trial: done. */
static int result_done(const char *path, const kb__ctrial *t)
{
    json_t *doc = json_load_file(path, 0, NULL);
    const json_t *c = json_object_get(doc, "campaign");
    const char *id = json_string_value(json_object_get(c, "trial_id"));
    const int done = id && !strcmp(id, t->id) && json_is_true(json_object_get(c, "complete")) &&
                     json_is_object(json_object_get(doc, "kbench"));
    json_decref(doc);
    return done;
}

/* $SLURM_ARRAY_JOB_ID_$SLURM_ARRAY_TASK_ID, else $SLURM_JOB_ID; "" off Slurm. */
static void slurm_job_id(char *out, size_t len)
{
    const char *aj = getenv("SLURM_ARRAY_JOB_ID"), *at = getenv("SLURM_ARRAY_TASK_ID");
    const char *j = getenv("SLURM_JOB_ID");
    if (aj && *aj && at && *at)
        snprintf(out, len, "%s_%s", aj, at);
    else
        snprintf(out, len, "%s", j ? j : "");
}

/* The "campaign" member: which trial, where and when it ran. */
static json_t *campaign_json(const kb__manifest *m, const kb__ctrial *t, const kb__camp_args *a)
{
    char node[256] = "", job[128], when[32], shard[32] = "";
    if (gethostname(node, sizeof node) != 0) node[0] = 0;
    node[sizeof node - 1] = 0;
    slurm_job_id(job, sizeof job);
    const time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (a->shard_n) snprintf(shard, sizeof shard, "%u/%u", a->shard_i, a->shard_n);
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s?, s:s?, s:s, s:I, s:b}", "trial_id", t->id,
                     "build", m->builds[t->build].name, "target", t->target, "candidate",
                     t->candidate, "repeat", t->repeat, "node", node, "slurm_job_id",
                     job[0] ? job : NULL, "shard", shard[0] ? shard : NULL, "finished", when,
                     "finished_unix", (json_int_t)now, "complete", 1);
}

/* doc written to dir/name through a temporary file and a rename. */
static int write_atomic(const char *dir, const char *name, json_t *doc, char *err, size_t len)
{
    char path[PATH_MAX + 128], tmp[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", dir, name, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int bad = !f || json_dumpf(doc, f,
                               JSON_INDENT(2) | JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER) != 0;
    if (f) bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (f) bad |= fclose(f) != 0;
    if (!bad && rename(tmp, path) == 0) return 0;
    kb__errf(err, len, "%s: cannot write (%s); check the --out folder", path, strerror(errno));
    unlink(tmp);
    return -1;
}

/* One trial run and its result written. 0, or -1 with err. */
static int run_one(const kb__manifest *m, const kb__ctrial *t, const kb__camp_args *a,
                   const char *out, kb__ctx_cache *cache, kb__result *r, char *err, size_t len)
{
    kb__trial_opts o;
    kb__trial_opts_init(&o);
    o.candidate = t->candidate;
    o.against = strcmp(t->against, "oracle") ? t->against : NULL;
    o.budget = m->budget;
    o.cases = t->cases;
    o.oracles_dir = m->oracles[0] ? m->oracles : NULL;
    o.exe = kb__self_exe();
    kb__best_info bi;
    char lerr[256];
    kb__record rec = {.cache = cache, .description = t->id};
    memset(r, 0, sizeof *r);
    if (kb__trial_record(&o, &rec, r, &bi, err, len, lerr, sizeof lerr) != 0) return -1;
    json_t *doc = kb__result_to_json(r, &bi);
    json_t *c = campaign_json(m, t, a);
    int rc = !doc || !c || json_object_set_new(doc, "campaign", c) != 0 ? -1 : 0;
    if (rc)
        kb__errf(err, len, "out of memory writing the result of %s", t->id);
    else
        rc = write_atomic(out, t->file, doc, err, len);
    json_decref(doc);
    return rc;
}

/* Whether trial k, the pos-th of those --build keeps, is one of this
 * invocation's; *pos counts it in. */
static int selected(const kb__manifest *m, size_t k, const kb__camp_args *a, size_t *pos)
{
    if (a->build && strcmp(m->builds[m->trials[k].build].name, a->build)) return 0;
    return kb__shard_has((*pos)++, a->shard_i, a->shard_n);
}

static int run_all(const kb__manifest *m, const kb__camp_args *a, const char *out)
{
    kb__ctx_cache cache;
    memset(&cache, 0, sizeof cache);
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return KB__EXIT_SOFTWARE;
    int code = 0;
    size_t n = 0, k_of = 0, pos = 0;
    for (size_t k = 0; k < m->n_trials; k++) k_of += selected(m, k, a, &pos);
    pos = 0;
    for (size_t k = 0; k < m->n_trials; k++) {
        if (!selected(m, k, a, &pos)) continue;
        const kb__ctrial *t = &m->trials[k];
        char path[PATH_MAX + 128], err[1024];
        snprintf(path, sizeof path, "%s/%s", out, t->file);
        const int done = result_done(path, t);
        ++n;
        if (a->list || done) {
            printf("%s\t%s\t%s\n", done ? "done" : "todo", t->id, path);
            continue;
        }
        if (run_one(m, t, a, out, &cache, r, err, sizeof err) != 0) {
            fprintf(stderr, "kbench campaign: %s: %s\n", t->id, err);
            code = KB__EXIT_SOFTWARE;
            continue;
        }
        if (!a->quiet)
            printf("ran\t%s\t%s\t%s\t%.4f [%.4f, %.4f]\t(%zu/%zu)\n", t->id, path,
                   kb__status_name(r->status), r->geomean.est, r->geomean.lo, r->geomean.hi, n,
                   k_of);
        fflush(stdout);
    }
    kb__ctx_cache_free(&cache);
    free(r);
    return code;
}

int kb__cli_campaign(int argc, char **argv)
{
    kb__camp_args a;
    int done = 0, code = camp_parse(argc, argv, &a, &done);
    if (code || done) return code;
    kb__manifest m;
    char err[PATH_MAX + 512];
    if (kb__manifest_load(a.manifest, &m, err, sizeof err) != 0) {
        fprintf(stderr, "kbench campaign: %s\n", err);
        return KB__EXIT_USAGE;
    }
    const char *out = a.out ? a.out : m.out;
    int bi = -1;
    for (int i = 0; a.build && i < m.n_builds; i++)
        if (!strcmp(m.builds[i].name, a.build)) bi = i;
    if (!out[0] || (a.build && bi < 0)) {
        if (!out[0])
            fprintf(stderr, "kbench campaign: no output folder; give --out DIR or \"out\" in %s\n",
                    a.manifest);
        else
            fprintf(stderr, "kbench campaign: --build %s: %s has no such build\n", a.build,
                    a.manifest);
        code = KB__EXIT_USAGE;
    } else if (make_dirs(out) != 0) {
        fprintf(stderr, "kbench campaign: %s: %s; give a writable --out\n", out, strerror(errno));
        code = KB__EXIT_SOFTWARE;
    } else if (a.slurm) {
        code = kb__campaign_slurm(&m, a.build, out, a.sbatch, a.n_sbatch);
    } else {
        code = run_all(&m, &a, out);
    }
    kb__manifest_free(&m);
    return code;
}
