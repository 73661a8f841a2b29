/* syncsim — command-line entry point: picks the subcommand; cli_*.c do the work. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sim_runner.h"
#include "syncsim_commit.h"
#include "wl_kernels.h"

static const char usage[] =
  "usage: syncsim COMMAND [ARGS]\n"
  "\n"
  "Simulate data-parallel training: real models trained by simulated workers, timed on a\n"
  "simulated cluster, results in SQLite.\n"
  "\n"
  "commands:\n"
  "  run SCENARIO [--db PATH] [--set PATH=VALUE]...   run every policy of a scenario\n"
  "  sweep SCENARIO [--jobs N] [--shard K/N] [--db PATH] ...\n"
  "                                                   every sweep point x policy, resumable\n"
  "  validate SCENARIO [--set PATH=VALUE]...          check a scenario; run nothing\n"
  "  report DB [--scenario NAME] [--target-loss X] [--group-by K] [--baseline LABEL]\n"
  "            [--format table|csv|json]              a table of the runs, grouped\n"
  "  plot DB --out FILE [--kind loss|sweep|timeline|workers] ...\n"
  "                                                   a plot through gnuplot\n"
  "  merge OUT IN...                                  combine databases (shards)\n"
  "  migrate DB                                       upgrade a database's schema in place\n"
  "  list policies|models|datasets|distributions|keys  what exists, with parameters\n"
  "  bench [--opt sgd|adamw] [--quick]                step time against matmul time\n"
  "  calibrate network FILE | compute SCENARIO        scenario keys fitted to measurements\n"
  "\n"
  "options:\n"
  "  --help       this text; COMMAND --help for a command's own\n"
  "  --version    print the version\n"
  "A command's options go anywhere among its arguments, as --name value or --name=value (a\n"
  "value that starts with -- only the second way); after --, every argument is a file.\n"
  "\n"
  "exit status: 0 success, 1 a run failed, 2 bad usage or input, 130 interrupted.\n"
  "Scenario keys: scenarios/README.md. Results database: analysis/README.md.\n";

int main(int argc, char **argv)
{
  if (argc < 2) {
    fputs(usage, stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  cli_set_command_line(argc, argv);
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return CLI_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("syncsim %s (numerics %d, source %s, kernels %s)\n", SYNCSIM_VERSION,
           SIM_NUMERICS_VERSION, SYNCSIM_SOURCE_COMMIT, wl_isa_name(wl_isa_current()));
    return CLI_OK;
  }
  char err[200];
  if (wl_isa_from_env(err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_USAGE;
  }
  if (strcmp(cmd, "run") == 0)
    return cli_run(argc - 1, argv + 1);
  if (strcmp(cmd, "sweep") == 0)
    return cli_sweep(argc - 1, argv + 1);
  if (strcmp(cmd, "report") == 0)
    return cli_report(argc - 1, argv + 1);
  if (strcmp(cmd, "plot") == 0)
    return cli_plot(argc - 1, argv + 1);
  if (strcmp(cmd, "merge") == 0)
    return cli_merge(argc - 1, argv + 1);
  if (strcmp(cmd, "migrate") == 0)
    return cli_migrate(argc - 1, argv + 1);
  if (strcmp(cmd, "validate") == 0)
    return cli_validate(argc - 1, argv + 1);
  if (strcmp(cmd, "list") == 0)
    return cli_list(argc - 1, argv + 1);
  if (strcmp(cmd, "calibrate") == 0)
    return cli_calibrate(argc - 1, argv + 1);
  if (strcmp(cmd, "bench") == 0)
    return cli_bench(argc - 1, argv + 1);
  fprintf(stderr, "syncsim: unknown command '%s'\n\n%s", cmd, usage);
  return CLI_USAGE;
}
