/*
 * main.c -- kbench: dispatch to a subcommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kb.h"
#include "proto.h"

static const char HELP[] =
    "usage: kbench <command> [options]\n"
    "\n"
    "kbench checks a compute-kernel plugin against its target's frozen oracle and\n"
    "times it against a baseline, in disposable sandboxed worker processes.\n"
    "\n"
    "commands:\n"
    "  trial <candidate.so>   correctness, then timing against the oracle: one verdict\n"
    "  verify <candidate.so>  correctness only\n"
    "  run <candidate.so>     the candidate in a loop in this process, for perf/gdb/valgrind;\n"
    "                         no sandbox, not a verdict\n"
    "  info <plugin.so>       what the plugin's descriptor says, or why it is rejected\n"
    "  list                   targets, their cases, oracles and candidates found\n"
    "  watch <candidate.so>.. a trial on every rebuild, inputs kept warm between trials\n"
    "  serve --socket PATH    a long-lived kbench for `kbench trial --server PATH`\n"
    "  log                    the ledger (results.tsv) as a table, best so far marked\n"
    "  report --plot OUT.png  the experiment history of a target, drawn with gnuplot\n"
    "  calibrate              measure this machine's roofline and A/A noise floor\n"
    "  pick <variant.so>...   trial each ISA variant this machine supports; name the best\n"
    "  campaign MANIFEST      a matrix of trials into one result file each; --shard I/N\n"
    "                         for any scheduler, --slurm submits it as job arrays\n"
    "  merge DIR...           campaign results into one ledger, Markdown matrix and JSON\n"
    "  help                   this text\n"
    "\n"
    "`kbench <command> --help` explains each command. Exit codes: see `kbench trial --help`.\n";

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "__worker")) {
        /* The worker end of the private channel is fd 3 (see spawn.c). */
        return argc == 3 ? kb__worker_main(atoi(argv[2])) : 2;
    }
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        fputs(HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? KB__EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kbench %s (plugin ABI %d.%d)\n", KB_VERSION, KB_ABI_MAJOR, KB_ABI_MINOR);
        return 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "trial")) return kb__cli_trial(argc - 1, argv + 1, 0);
    if (!strcmp(cmd, "verify")) return kb__cli_trial(argc - 1, argv + 1, 1);
    if (!strcmp(cmd, "run")) return kb__cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return kb__cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "list")) return kb__cli_list(argc - 1, argv + 1);
    if (!strcmp(cmd, "watch")) return kb__cli_watch(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return kb__cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "log")) return kb__cli_log(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return kb__cli_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "calibrate")) return kb__cli_calibrate(argc - 1, argv + 1);
    if (!strcmp(cmd, "pick")) return kb__cli_pick(argc - 1, argv + 1);
    if (!strcmp(cmd, "campaign")) return kb__cli_campaign(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge")) return kb__cli_merge(argc - 1, argv + 1);
    fprintf(stderr, "kbench: unknown command '%s'; `kbench help` lists the commands\n", cmd);
    return KB__EXIT_USAGE;
}
