/*
 * campaign.h -- a campaign: a matrix of trials named by a JSON manifest
 * (manifest.c), run one after another into one result file each
 * (cli_campaign.c), split into shards for a scheduler, submitted to Slurm
 * (campaign_slurm.c), and merged afterwards (cli_merge.c). docs/campaign.md
 * is the user's page.
 */
#ifndef KB_CAMPAIGN_H
#define KB_CAMPAIGN_H

#include <limits.h>
#include <stddef.h>

#define KB__CAMPAIGN_BUILDS_MAX 32
#define KB__CAMPAIGN_NAME_MAX   64

/* One build directory of the manifest: its candidates are found in it and
 * its Slurm tasks may be confined to nodes with a feature or a partition. */
typedef struct kb__cbuild {
    char name[KB__CAMPAIGN_NAME_MAX];
    char dir[PATH_MAX]; /* absolute, or relative to the manifest's folder */
    char constraint[128], partition[128];
} kb__cbuild;

/* One trial of the matrix. Its id names it across runs, shards and
 * machines ("build/target/candidate#repeat", the candidate as the manifest's
 * build-relative path), so a result file is found again and a merge
 * deduplicates by it. */
typedef struct kb__ctrial {
    char id[PATH_MAX + 192];
    char file[96]; /* the result's file name in the output folder */
    int build;     /* index into builds */
    char target[KB__CAMPAIGN_NAME_MAX];
    char candidate[PATH_MAX];
    char against[PATH_MAX]; /* "oracle" or a path */
    char cases[512];        /* the manifest's "cases" for this target */
    int repeat;
} kb__ctrial;

typedef struct kb__manifest {
    char path[PATH_MAX], dir[PATH_MAX]; /* the file, its folder */
    char out[PATH_MAX];                 /* "out", resolved; "" when not given */
    char oracles[PATH_MAX];             /* "oracles", resolved; "" for the default search */
    double budget;
    int repeats, max_parallel;
    kb__cbuild builds[KB__CAMPAIGN_BUILDS_MAX];
    int n_builds;
    kb__ctrial *trials; /* the whole matrix, in its one order */
    size_t n_trials;
} kb__manifest;

/* Reads and expands the manifest at path: every trial, in the order
 * builds x targets x candidates (each glob's matches sorted) x repeats.
 * 0, or a KB__E* code with err naming the file and the member at fault. */
int kb__manifest_load(const char *path, kb__manifest *m, char *err, size_t err_len);
void kb__manifest_free(kb__manifest *m);

/* Whether trial k belongs to shard i of n: k mod n == i, so every trial is
 * in exactly one shard and the split depends only on the manifest. */
int kb__shard_has(size_t k, unsigned i, unsigned n);
/* "--shard I/N": I may be "auto" ($SLURM_ARRAY_TASK_ID, else
 * $JOB_COMPLETION_INDEX). 0, or -1 with err saying what is wrong. */
int kb__shard_parse(const char *s, unsigned *i, unsigned *n, char *err, size_t err_len);

/* Writes the sbatch script of each build (only `build` when not NULL)
 * into out/ and submits it with the extra sbatch options; prints each job
 * id. An exit code. */
int kb__campaign_slurm(const kb__manifest *m, const char *build, const char *out,
                       char **sbatch_opts, int n_opts);

#endif /* KB_CAMPAIGN_H */
