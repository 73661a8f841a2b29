/* cli — the syncsim subcommands. Each returns the process exit status:
 * 0 success, 1 a run failed, 2 bad usage or bad input, 130 interrupted. */
#ifndef CLI_H
#define CLI_H

enum { CLI_OK = 0, CLI_RUN_FAILED = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 };

int cli_run(int argc, char **argv);
int cli_validate(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_bench(int argc, char **argv);

#endif
