/*
 * cli.h -- the kbench subcommands; each returns the process exit code.
 */
#ifndef KB_CLI_H
#define KB_CLI_H

int kb__cli_trial(int argc, char **argv, int verify_only);
int kb__cli_info(int argc, char **argv);
int kb__cli_list(int argc, char **argv);
int kb__cli_calibrate(int argc, char **argv);
int kb__cli_pick(int argc, char **argv);

/* A non-negative number option; on error says so on stderr and sets *bad. */
double kb__parse_num(const char *s, const char *opt, int *bad);

/* Absolute path of the running kbench binary (workers exec it). */
const char *kb__self_exe(void);

#endif
