/*
 * cli.h -- the kbench subcommands; each returns the process exit code.
 */
#ifndef KB_CLI_H
#define KB_CLI_H

#include "paths.h"
#include "trial.h"

int kb__cli_trial(int argc, char **argv, int verify_only);
int kb__cli_info(int argc, char **argv);
int kb__cli_run(int argc, char **argv);
int kb__cli_list(int argc, char **argv);
int kb__cli_calibrate(int argc, char **argv);
int kb__cli_pick(int argc, char **argv);
int kb__cli_watch(int argc, char **argv);
int kb__cli_serve(int argc, char **argv);
int kb__cli_log(int argc, char **argv);
int kb__cli_report(int argc, char **argv);
int kb__cli_campaign(int argc, char **argv);
int kb__cli_merge(int argc, char **argv);

/* ---- the client of `kbench serve` (cli_serve.c) --------------------- */
/* Sends one trial/verify request to the server at `socket_path`, prints the
 * verdict like a local trial (table + block, or JSON) and returns the same
 * exit code. Paths are made absolute here: the server has its own cwd. */
typedef struct kb__remote_req {
    const char *socket_path;
    const kb__trial_opts *o;
    const char *ledger, *description, *state_dir;
    int json, quiet;
} kb__remote_req;
int kb__trial_remote(const kb__remote_req *q);

/* A non-negative number option; on error says so on stderr and sets *bad. */
double kb__parse_num(const char *s, const char *opt, int *bad);

#endif
