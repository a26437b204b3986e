/*
 * cli_info.c -- `kbench info` (one plugin's descriptor) and `kbench list`
 * (targets, cases, oracles and candidates this kbench can find).
 */
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "session.h"
#include "report.h"
#include "trial.h"

/* "key: value" with control bytes in value shown as spaces: a file name
 * with a newline cannot add a "status: ok" line of its own. */
static void kv(const char *key, const char *value)
{
    printf("%s: ", key);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        putchar(*p < 0x20 || *p == 0x7f ? ' ' : *p);
    putchar('\n');
}

/* The command line info and list share: [--oracles DIR] [--help] and
 * `operands` operands. -1 to go on with optind at the first operand, else
 * the exit code (0 after --help, usage with the help on stderr). */
static int oracles_args(int argc, char **argv, const char *help, int operands, const char **oracles)
{
    struct option opts[4];
    kb__longopts("oracles help", opts, sizeof opts / sizeof opts[0]);
    const kb__cmdline cl = {argv[0], help, "h", opts};
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        if (c == 'o')
            *oracles = optarg;
        else if (c == 'h')
            return fputs(help, stdout), 0;
        else
            return KB__EXIT_USAGE;
    }
    if (optind != argc - operands) {
        if (operands)
            fprintf(stderr, "kbench %s: expected exactly one plugin .so\n", argv[0]);
        else
            fprintf(stderr, "kbench %s: takes no operands, got '%s'\n", argv[0], argv[optind]);
        return kb__usage(argv[0], help);
    }
    return -1;
}

static const char INFO_HELP[] =
    "usage: kbench info <plugin.so> [--oracles DIR]\n"
    "\n"
    "Loads the plugin in a sandboxed worker and prints what its descriptor says (target,\n"
    "name, version, ABI, CPU features needed and present, its target's oracle), or the\n"
    "one-line reason it is rejected. Exit 0 (status: ok) if it loads and its target has an\n"
    "oracle; 3 (status: rejected) if it is rejected or no oracle of its target is found,\n"
    "as `kbench trial` would say; 64 on usage errors.\n";

int kb__cli_info(int argc, char **argv)
{
    const char *oracles = NULL;
    int rc = oracles_args(argc, argv, INFO_HELP, 1, &oracles);
    if (rc >= 0) return rc;
    const char *path = argv[optind];
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "kbench: %s: no such file; build it first or check the path\n", path);
        return KB__EXIT_USAGE;
    }
    kb__desc d;
    memset(&d, 0, sizeof d);
    char digest[17] = "";
    kb__failure fail = {KB__ST_REJECTED, ""};
    rc = kb__plugin_probe(path, kb__self_exe(), &d, digest, &fail);
    char oerr[1024] = "";
    const uint64_t have = kb__cpu_features();
    char names[256];
    kv("file", path);
    if (digest[0]) printf("digest: %s\n", digest);
    if (d.magic) {
        printf("abi: %u.%u (this host speaks %d.%d)\n", d.abi_major, d.abi_minor, KB_ABI_MAJOR,
               KB_ABI_MINOR);
        printf("target: %s\nname: %s\nversion: %s\n", d.target, d.name, d.version);
        kb__cpu_feature_names(d.cpu_features, names, sizeof names);
        printf("cpu_features_needed: %s\n", names[0] ? names : "none");
        kb__cpu_feature_names(d.cpu_features & ~have, names, sizeof names);
        printf("cpu_features_missing: %s\n", names[0] ? names : "none");
        printf("self_check: %s\n", d.has_verify ? "yes" : "no");
        char opath[PATH_MAX];
        if (kb__oracle_find(d.target, oracles, opath, sizeof opath, oerr, sizeof oerr) == 0)
            oerr[0] = 0;
        kv("oracle", oerr[0] ? "none" : opath);
    }
    kb__cpu_feature_names(have, names, sizeof names);
    printf("host_cpu_features: %s\n", names);
    if (rc != 0) {
        printf("status: %s\n", kb__status_name(fail.status));
        kv("reason", fail.reason);
        return kb__status_exit_code(fail.status);
    }
    if (oerr[0]) {
        /* It loads, but a trial of it would be rejected for the same reason. */
        printf("status: %s\n", kb__status_name(KB__ST_REJECTED));
        char why[sizeof oerr + 64];
        snprintf(why, sizeof why, "loads, but cannot be trialled: %s", oerr);
        kv("reason", why);
        return kb__status_exit_code(KB__ST_REJECTED);
    }
    printf("status: ok\n");
    return 0;
}

static const char LIST_HELP[] =
    "usage: kbench list [--oracles DIR]\n"
    "\n"
    "Lists every target whose oracle this kbench finds (DIR, then the oracles next to the\n"
    "kbench binary, then the installed ones), with its oracle and whether the oracle's sources\n"
    "match their PIN, its cases (* = in the quick default set) and the candidate plugins built\n"
    "next to it. Paths are printed resolved.\n";

/* The pin line, right under the oracle it vouches for. */
static void list_pin(const kb__oracle_seen *o)
{
    if (!o->pin_dir) {
        printf("  pin: not checked (no pinned sources beside this kbench)\n");
        return;
    }
    if (o->pin == 0)
        printf("  pin: ok (%s/PIN)\n", o->pin_dir);
    else if (o->pin > 0)
        printf("  pin: WARNING: %s\n", o->pin_msg);
    else
        printf("  pin: unknown (%s)\n", o->pin_msg);
    if (o->pin > 0) fprintf(stderr, "kbench list: warning: %s\n", o->pin_msg);
}

/* Candidates built next to the oracles: <root>/../plugins/<target>/, named
 * by its resolved path. */
static void list_candidates(const char *root, const char *target)
{
    char pdir[PATH_MAX * 2], real[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s/../plugins/%s", root, target);
    DIR *pd = realpath(pdir, real) ? opendir(real) : NULL;
    printf("  candidates:%s\n", pd ? "" : " none found");
    for (struct dirent *p; pd && (p = readdir(pd));) {
        size_t n = strlen(p->d_name);
        if (n > 3 && !strcmp(p->d_name + n - 3, ".so")) printf("    %s/%s\n", real, p->d_name);
    }
    if (pd) closedir(pd);
}

static void list_one(const kb__oracle_seen *o, void *arg)
{
    (void)arg;
    if (!o->lib) {
        printf("target %s: oracle %s is broken: %s\n\n", o->name, o->path, o->err);
        return;
    }
    const kb_target *t = o->lib->target;
    printf("target: %s\n  %s\n  upstream: %s\n  oracle: %s (digest %s)\n", t->name, t->description,
           t->upstream ? t->upstream : "", o->path, o->digest_hex);
    list_pin(o);
    printf("  cases:\n");
    for (uint32_t c = 0; c < t->n_cases; c++)
        printf("    %c %s\n", (t->cases[c].flags & KB_CASE_QUICK) ? '*' : ' ', t->cases[c].name);
    char shapes[1024];
    kb__shape_describe(t, shapes, sizeof shapes);
    printf("  any shape (--case 'NAME=VALUE,.../DISTRIBUTION'): %s\n", shapes);
    list_candidates(o->root, t->name);
    printf("\n");
}

int kb__cli_list(int argc, char **argv)
{
    const char *oracles = NULL;
    int rc = oracles_args(argc, argv, LIST_HELP, 0, &oracles);
    if (rc >= 0) return rc;
    kb__oracle_roots roots;
    kb__oracle_roots_get(oracles, &roots);
    if (kb__oracles_each(&roots, list_one, NULL) == 0) {
        char looked[KB__ORACLE_ROOTS_MAX * (PATH_MAX + 36)] = "";
        for (int i = 0, o = 0; i < roots.n && o >= 0 && (size_t)o < sizeof looked; i++)
            o += snprintf(looked + o, sizeof looked - (size_t)o, "%s%s",
                          !i                ? ""
                          : i + 1 < roots.n ? ", "
                                            : " or ",
                          roots.dir[i]);
        fprintf(stderr,
                "kbench: no oracles found in %s; build them (cmake --build build) or pass "
                "--oracles DIR\n",
                looked);
        return 1;
    }
    return 0;
}
