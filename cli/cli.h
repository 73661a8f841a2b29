/* cli — the syncsim subcommands. Each returns the process exit status:
 * 0 success, 1 a run failed, 2 bad usage or bad input, 130 interrupted. */
#ifndef CLI_H
#define CLI_H

#include <signal.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_RUN_FAILED = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 };

int cli_run(int argc, char **argv);
int cli_validate(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_sweep(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_plot(int argc, char **argv);
int cli_merge(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_calibrate(int argc, char **argv);

/* `calibrate compute` (cli_calibrate_compute.c), argv[0] being "compute". */
int cli_calibrate_compute(int argc, char **argv, const char *usage);

/* Shared by run and sweep. */
#include "an_store.h"
#include "scn_load.h"
#include "sim_runner.h"

/* Run policy i of s into store, print its summary line; returns the run's status.
 * inputs_json: the run's input files and hashes (scn_inputs_json), NULL to compute them.
 * cache (may be NULL): datasets shared with the runs before and after (sim_run_opts).
 * A sweep's run (sweep_id > 0) claims its config first: when another process has it done or
 * running, nothing runs and WL_OK is returned, with *skipped set (skipped may be NULL). */
wl_status cli_run_policy(const scn_scenario *s, int i, an_store *store, int quiet, int threads,
                         long long sweep_id, const char *sweep_point, const char *inputs_json,
                         int *skipped, sim_check_cache *cache);

/* Where cli_run_policy_to records a run: a store (cli_run_policy), or a recorder built from
 * the run's meta by someone else (an MPI sweep's worker rank forwards it to rank 0). */
typedef struct cli_sink {
  void *ctx;
  /* make rec record the run meta describes (as an_store_recorder) */
  wl_status (*recorder)(void *ctx, const an_run_meta *meta, sim_recorder *rec);
  int (*claim_taken)(void *ctx);    /* after begin: the config was taken, nothing ran */
  long long (*run_id)(void *ctx);   /* the run's id, after begin */
  const char *(*errmsg)(void *ctx); /* why the last recording call failed */
  void (*poll)(void *ctx);          /* called about every 0.5 s of host time during a run;
                                       may be NULL */
  int summary;                      /* print the summary line (and a recording error) */
} cli_sink;

/* cli_run_policy into any sink. */
wl_status cli_run_policy_to(const scn_scenario *s, int i, const cli_sink *sink, int quiet,
                            int threads, long long sweep_id, const char *sweep_point,
                            const char *inputs_json, int *skipped, sim_check_cache *cache);

/* A finished run's summary line on stdout. */
void cli_print_summary(long long id, const char *label, const char *sweep_point,
                       int timing_only, const sim_result *r);

/* Remember the command line, for runs.command (main calls it first). */
void cli_set_command_line(int argc, char **argv);
/* The provenance fields of meta: source commit, kernels, CPU, host, command line. */
void cli_fill_provenance(an_run_meta *meta);

/* SIGINT and SIGTERM set cli_interrupted; runs stop at their next event. */
void cli_install_signals(void);

/* `syncsim bench --engine`: timing-only runs measured for budget_s host seconds each, of the
 * policies whose name contains `only` (cli_bench_engine.c). */
int cli_bench_engine(double budget_s, const char *only);

/* `syncsim bench --threads`: the wall time of 8-worker training runs with 2 threads against
 * 1 (cli_bench_engine.c). */
int cli_bench_threads(int quick, const char *only);

/* This core's GFLOP/s for the matrix product's inner step with a separate multiply and add
 * and with a fused multiply-add, register-only, at the widest vectors it runs (width names
 * them). 0 when the core has neither AVX-512 nor AVX2 with FMA (cli_bench_peak.c). */
int cli_bench_peak(double *separate, double *fused, const char **width);

/* s as a decimal integer in [lo, hi], written plainly (digits, a '-' only for a negative
 * value, no sign, space or leading zero otherwise): 1 and *out, or 0. */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);

/* A subcommand's option, for cli_parse_args (cli_args.c). */
typedef enum cli_opt_kind {
  CLI_OPT_FLAG,     /* int at out set to 1; takes no value */
  CLI_OPT_STRING,   /* const char * at out */
  CLI_OPT_INT,      /* long long at out, an integer in [lo, hi] (cli_parse_int) */
  CLI_OPT_POSITIVE, /* double at out, a finite number above 0 */
  CLI_OPT_CHOICE,   /* int at out: the index of the value among `choices` ("a|b|c") */
  CLI_OPT_LIST,     /* repeatable: const char *[max] at out, the count at *count */
  CLI_OPT_CUSTOM    /* parse(value, out) says whether the value is good; `expect` says what
                       a good one is */
} cli_opt_kind;

typedef struct cli_opt {
  const char *name; /* "--db"; NULL ends a table */
  cli_opt_kind kind;
  void *out;
  long long lo, hi;
  const char *choices;
  int max;
  int *count;
  int (*parse)(const char *value, void *out);
  const char *expect; /* what a good value is, for the error message (CUSTOM: required;
                         others: NULL for the kind's own words) */
} cli_opt;

/* Parses argv[1..argc-1] against opts: `--name value` or `--name=value` (a flag takes no
 * value; a string is not empty), in any order, positional arguments into pos (at most
 * max_pos, none empty; their count in *n_pos); after `--`, every argument is positional.
 * --help or -h prints usage. Returns -1 to go on, or the exit status (CLI_OK after
 * --help; CLI_USAGE after saying what is wrong: an unknown option, a missing or bad value, an
 * argument too many). */
int cli_parse_args(int argc, char **argv, const char *usage, const cli_opt *opts,
                   const char **pos, int max_pos, int *n_pos);

/* Print a scenario error on stderr ("syncsim: FILE: PATH: message"); returns CLI_USAGE. */
int cli_scn_error(const scn_error *err);

/* sim_check policy i of s (every policy when i < 0) with `threads` job threads, as run would
 * before its first event; on
 * a failure, print "syncsim: FILE: why" (with the sweep point, when given) and return
 * CLI_USAGE, else CLI_OK. cache may be NULL. */
int cli_check_runs(const scn_scenario *s, int i, int threads, sim_check_cache *cache,
                   const char *file, const char *point_json);
extern volatile sig_atomic_t cli_interrupted;
/* Set once runs are being recorded: a signal then stops them (cli_interrupted) instead of
 * ending the process. */
extern volatile sig_atomic_t cli_recording;

/* JSON helpers of calibrate (cli_calibrate.c): read a file that holds a JSON object (NULL
 * with a message otherwise); set root.a.b.key to v, taking v (objects made as needed; 0 when
 * a step is not an object); write root to out, replacing it only once complete (0 with a
 * message on failure). */
/* An output file written whole or not at all: cli_out_open makes a temporary file beside
 * path (tmp gets its name; NULL, saying why, when it cannot be made, or path is a
 * directory); cli_out_close closes it and renames it to path when ok and every write
 * succeeded, else removes it, and returns whether path now holds it. */
FILE *cli_out_open(const char *path, char *tmp, size_t size);
int cli_out_close(FILE *f, const char *tmp, const char *path, int ok);

typedef struct cJSON cJSON;
cJSON *cli_read_json_object(const char *path);
/* cli_read_json_object of a scenario, its relative paths made absolute (for a copy written
 * elsewhere) */
cJSON *cli_read_scenario_for_out(const char *path);
int cli_json_set(cJSON *root, const char *a, const char *b, const char *key, cJSON *v);
int cli_write_json(const cJSON *root, const char *out);

#endif
