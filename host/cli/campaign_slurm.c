/*
 * campaign_slurm.c -- `kbench campaign --slurm`: one sbatch job array per
 * build of the manifest, each task one shard of that build's trials on a
 * node of its own.
 *
 * One array per build, because a build's constraint or partition (the
 * AVX-512 build only on AVX-512 nodes) is a property of a whole job. A
 * task asks for the whole node (--exclusive): a trial's two sides are
 * timed against each other on one node, and another job on that node would
 * time them both. The script names every path absolutely: a task starts on
 * another node, in whatever folder Slurm gives it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "campaign.h"
#include "kb.h"
#include "paths.h"

/* s as one word of a POSIX shell: in single quotes, each ' as '\''. */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static size_t build_trials(const kb__manifest *m, int bi)
{
    size_t n = 0;
    for (size_t k = 0; k < m->n_trials; k++) n += m->trials[k].build == bi;
    return n;
}

/* The sbatch script of build bi, n tasks. 0, or -1 with errno. */
static int write_script(const kb__manifest *m, int bi, size_t n, const char *out,
                        const char *script)
{
    const kb__cbuild *b = &m->builds[bi];
    FILE *f = fopen(script, "w");
    if (!f) return -1;
    fprintf(f, "#!/bin/sh\n# kbench campaign %s, build %s: %zu trials, one per task.\n", m->path,
            b->name, n);
    fprintf(f, "#SBATCH --job-name=kbench-%s\n#SBATCH --array=0-%zu%%%d\n", b->name, n - 1,
            m->max_parallel);
    fprintf(f, "#SBATCH --nodes=1\n#SBATCH --ntasks=1\n#SBATCH --exclusive\n");
    fprintf(f, "#SBATCH --output=%s/slurm-%%A_%%a.out\n", out);
    if (b->constraint[0]) fprintf(f, "#SBATCH --constraint=%s\n", b->constraint);
    if (b->partition[0]) fprintf(f, "#SBATCH --partition=%s\n", b->partition);
    fputs("exec ", f);
    sh_quote(f, kb__self_exe());
    fputs(" campaign ", f);
    sh_quote(f, m->path);
    fputs(" --out ", f);
    sh_quote(f, out);
    fputs(" --build ", f);
    sh_quote(f, b->name);
    fprintf(f, " --shard \"$SLURM_ARRAY_TASK_ID/%zu\"\n", n);
    return fclose(f) == 0 ? 0 : -1;
}

/* `sbatch --parsable OPTS... script`; its first line into id. 0, or -1
 * with the reason on stderr. */
static int submit(const char *script, char **opts, int n_opts, char *id, size_t len)
{
    int fd[2];
    if (pipe(fd) != 0) return -1;
    char **argv = calloc((size_t)n_opts + 4, sizeof *argv);
    if (!argv) return -1;
    argv[0] = "sbatch";
    argv[1] = "--parsable";
    for (int i = 0; i < n_opts; i++) argv[2 + i] = opts[i];
    argv[2 + n_opts] = (char *)script;
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execvp("sbatch", argv);
        fprintf(stderr,
                "kbench campaign: cannot run sbatch (%s); is Slurm installed and on "
                "PATH?\n",
                strerror(errno));
        _exit(127);
    }
    free(argv);
    close(fd[1]);
    FILE *f = pid > 0 ? fdopen(fd[0], "r") : NULL;
    if (!f || !fgets(id, (int)len, f)) id[0] = 0;
    if (f)
        fclose(f);
    else
        close(fd[0]);
    int st = 0;
    if (pid > 0) waitpid(pid, &st, 0);
    id[strcspn(id, ";\n")] = 0;
    return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && id[0] ? 0 : -1;
}

int kb__campaign_slurm(const kb__manifest *m, const char *build, const char *out,
                       char **sbatch_opts, int n_opts)
{
    char abs_out[PATH_MAX];
    if (!realpath(out, abs_out)) {
        fprintf(stderr, "kbench campaign: %s: %s\n", out, strerror(errno));
        return KB__EXIT_SOFTWARE;
    }
    for (int bi = 0; bi < m->n_builds; bi++) {
        const size_t n = build_trials(m, bi);
        if ((build && strcmp(build, m->builds[bi].name)) || !n) continue;
        char script[PATH_MAX + 128], id[128];
        snprintf(script, sizeof script, "%s/campaign-%s.sbatch", abs_out, m->builds[bi].name);
        for (char *p = strrchr(script, '/') + 1; *p; p++)
            if (*p == '/') *p = '_';
        if (write_script(m, bi, n, abs_out, script) != 0) {
            fprintf(stderr, "kbench campaign: %s: %s; give a writable --out\n", script,
                    strerror(errno));
            return KB__EXIT_SOFTWARE;
        }
        if (submit(script, sbatch_opts, n_opts, id, sizeof id) != 0) {
            fprintf(stderr,
                    "kbench campaign: sbatch refused %s (its message is above); the "
                    "script is kept to run by hand\n",
                    script);
            return KB__EXIT_SOFTWARE;
        }
        printf("job\t%s\tbuild\t%s\ttasks\t%zu\tscript\t%s\n", id, m->builds[bi].name, n, script);
        fflush(stdout);
    }
    return 0;
}
