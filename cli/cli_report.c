/* cli_report — `syncsim report`, `plot` and `merge`. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "an_db.h"
#include "an_report.h"
#include "cli.h"

static const char report_usage[] =
  "usage: syncsim report DB [--scenario NAME] [--target-loss X] [--group-by KEYS]\n"
  "                      [--baseline LABEL] [--format table|csv|json]\n"
  "\n"
  "One row per group of runs (default: scenario, policy label and every swept parameter but\n"
  "the seed), ordered by scenario, swept values, policy type and label:\n"
  "  runs, diverged, failed  distinct finished runs (identical configs count once), and the\n"
  "                    runs that diverged or failed\n"
  "  final_loss        held-out loss at the end, mean ± 95% confidence interval over the\n"
  "                    runs (Student's t)\n"
  "  time_to_target_s  simulated time to first reach the target loss, mean ± interval; a run\n"
  "                    that never reached it counts at its stop time and the mean is then a\n"
  "                    lower bound, printed \"> x\" (never: how many; empty without a target)\n"
  "  speedup           the baseline's mean time to target at the same values of every axis\n"
  "                    both have, divided by the group's (\"> x\" or \"< x\" when a side is\n"
  "                    a bound, \"?\" when both are), with a 95% percentile-bootstrap\n"
  "                    interval over seeds (2000 resamples, deterministic); none where the\n"
  "                    baseline has runs at several values of an axis the group lacks\n"
  "  bytes, shares     bytes sent per run; shares of the workers' time computing,\n"
  "                    communicating, idle, down and blocked on a down peer\n"
  "\n"
  "  --scenario NAME   only that scenario's runs (runs.scenario)\n"
  "  --target-loss X   the target, above 0 (default: each scenario's eval.target_loss)\n"
  "  --baseline LABEL  the speedup's reference policy label (default: the DDP policy)\n"
  "  --group-by KEYS   comma-separated: scenario, label, policy, seed, or a swept parameter's\n"
  "                    last name (H for policies.diloco.H); scenario is always a key, and\n"
  "                    label unless policy is given; swept parameters left out are pooled\n"
  "                    (a note on stderr says so); grouped by seed, each seed's speedup is\n"
  "                    against the baseline's run with the same seed\n"
  "  --format F        table (default), csv or json\n"
  "\n"
  "Notes on stderr explain pooled rows, a baseline chosen among several DDP policies, and\n"
  "rows left without a speedup. The output depends only on the runs, not on the order in\n"
  "which they were stored (--jobs, --shard, merge).\n";

static const char plot_usage[] =
  "usage: syncsim plot DB --out FILE.png|svg|pdf [--kind loss|sweep|timeline|workers]\n"
  "                   [--x NAME] [--run ID] [--target-loss X] [--scenario NAME]\n"
  "\n"
  "  loss (default)  held-out loss against simulated time, one line per policy label: the\n"
  "                  mean over seeds with a 95% band; log time when it spans a wide range\n"
  "  sweep --x NAME  time to the target loss (or final loss, without a target) against the\n"
  "                  swept parameter NAME (e.g. H), one line per policy; unswept policies\n"
  "                  (DDP) as a dashed reference\n"
  "  timeline --run ID   a Gantt chart of one run (needs --set record.timeline=N)\n"
  "  workers         each policy's shares of compute, communication, idle and down time\n"
  "\n"
  "\n"
  "Finished runs only; --scenario NAME keeps that scenario's runs (series are named\n"
  "'scenario: label' when several scenarios are drawn). Drawn by gnuplot (Debian's\n"
  "gnuplot-nox).\n";

static const char merge_usage[] =
  "usage: syncsim merge OUT IN...\n"
  "\n"
  "Copy every run of the IN databases, with all its rows, into OUT (created if missing),\n"
  "without duplicating runs: a run already in OUT, or whose config is done there with the\n"
  "same numerics version and inputs, is skipped. Version-1 databases (before the\n"
  "provenance columns) are read as they are, and a version-1 OUT is upgraded. The merge is\n"
  "one transaction: all of it or nothing. Refuses, writing nothing, databases of another\n"
  "schema version or damaged, an IN that is OUT or given twice, and more than 9 INs (merge\n"
  "more in steps into the same OUT).\n";

static const char migrate_usage[] =
  "usage: syncsim migrate DB\n"
  "\n"
  "Upgrade a results database to the current schema (3) in place: from version 1, the\n"
  "provenance columns of runs (existing runs keep every row, with numerics_version 1 and\n"
  "the rest NULL); from version 2, runs.pid. Writing commands (run, sweep, merge) do this\n"
  "by themselves; report and plot read an older database as it is.\n";

/* A target loss: a finite number above 0 (a cross-entropy never goes below it). */
static int parse_target(const char *text, double *out)
{
  char *end;
  *out = strtod(text, &end);
  return *text && !*end && isfinite(*out) && *out > 0;
}

int cli_report(int argc, char **argv)
{
  const char *db = NULL;
  an_report_opts o = {.target_loss = NAN, .group_by = NULL, .format = AN_FORMAT_TABLE,
                      .notes = stderr};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(report_usage, stdout);
      return CLI_OK;
    } else if (v && strcmp(a, "--target-loss") == 0) {
      if (!parse_target(v, &o.target_loss)) {
        fprintf(stderr, "syncsim: --target-loss: expected a number above 0, got '%s'\n", v);
        return CLI_USAGE;
      }
      i++;
    } else if (v && strcmp(a, "--scenario") == 0) {
      o.scenario = v;
      i++;
    } else if (v && strcmp(a, "--baseline") == 0) {
      o.baseline = v;
      i++;
    } else if (v && strcmp(a, "--group-by") == 0) {
      o.group_by = v;
      i++;
    } else if (v && strcmp(a, "--format") == 0) {
      if (strcmp(v, "table") == 0)
        o.format = AN_FORMAT_TABLE;
      else if (strcmp(v, "csv") == 0)
        o.format = AN_FORMAT_CSV;
      else if (strcmp(v, "json") == 0)
        o.format = AN_FORMAT_JSON;
      else {
        fprintf(stderr, "syncsim: --format: expected table, csv or json, got '%s'\n", v);
        return CLI_USAGE;
      }
      i++;
    } else if (a[0] == '-' || db) {
      fprintf(stderr, "syncsim: unexpected argument '%s'\n\n%s", a, report_usage);
      return CLI_USAGE;
    } else {
      db = a;
    }
  }
  if (!db) {
    fprintf(stderr, "syncsim: a DB file is needed\n\n%s", report_usage);
    return CLI_USAGE;
  }
  char err[1024];
  if (an_report(db, &o, stdout, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_USAGE;
  }
  return CLI_OK;
}

int cli_plot(int argc, char **argv)
{
  const char *db = NULL;
  an_plot_opts o = {.kind = AN_PLOT_LOSS, .target_loss = NAN, .gnuplot = getenv("SYNCSIM_GNUPLOT")};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(plot_usage, stdout);
      return CLI_OK;
    } else if (v && strcmp(a, "--out") == 0) {
      o.out = v;
      i++;
    } else if (v && strcmp(a, "--scenario") == 0) {
      o.scenario = v;
      i++;
    } else if (v && strcmp(a, "--x") == 0) {
      o.x = v;
      i++;
    } else if (v && strcmp(a, "--run") == 0) {
      long long id;
      if (!cli_parse_int(v, 1, INT64_MAX / 2, &id)) {
        fprintf(stderr, "syncsim: --run: expected a run id (a positive integer), got '%s'\n", v);
        return CLI_USAGE;
      }
      o.run = id;
      i++;
    } else if (v && strcmp(a, "--target-loss") == 0) {
      if (!parse_target(v, &o.target_loss)) {
        fprintf(stderr, "syncsim: --target-loss: expected a number above 0, got '%s'\n", v);
        return CLI_USAGE;
      }
      i++;
    } else if (v && strcmp(a, "--kind") == 0) {
      const char *kinds[] = {"loss", "sweep", "timeline", "workers"};
      o.kind = -1;
      for (int k = 0; k < 4; k++)
        if (strcmp(v, kinds[k]) == 0)
          o.kind = k;
      if (o.kind < 0) {
        fprintf(stderr, "syncsim: --kind: expected loss, sweep, timeline or workers, got '%s'\n", v);
        return CLI_USAGE;
      }
      i++;
    } else if (a[0] == '-' || db) {
      fprintf(stderr, "syncsim: unexpected argument '%s'\n\n%s", a, plot_usage);
      return CLI_USAGE;
    } else {
      db = a;
    }
  }
  if (!db || !o.out || (o.kind == AN_PLOT_SWEEP && !o.x) || (o.kind == AN_PLOT_TIMELINE && o.run <= 0)) {
    fprintf(stderr, "syncsim: %s\n\n%s",
            !db ? "a DB file is needed" : !o.out ? "--out FILE is needed"
            : o.kind == AN_PLOT_SWEEP ? "--kind sweep needs --x NAME" : "--kind timeline needs --run ID",
            plot_usage);
    return CLI_USAGE;
  }
  char err[1024];
  wl_status st = an_plot(db, &o, err, sizeof err);
  if (st != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return st == WL_EIO ? CLI_RUN_FAILED : CLI_USAGE;
  }
  fprintf(stderr, "wrote %s\n", o.out);
  return CLI_OK;
}

int cli_migrate(int argc, char **argv)
{
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(migrate_usage, stdout);
    return CLI_OK;
  }
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "syncsim: migrate needs exactly one DB\n\n%s", migrate_usage);
    return CLI_USAGE;
  }
  char err[1024];
  sqlite3 *db;
  int before;
  if (an_db_open_readonly(argv[1], &db, &before, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_USAGE;
  }
  sqlite3_close(db);
  an_store *store;
  if (an_store_open(argv[1], &store, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_RUN_FAILED;
  }
  an_store_close(store);
  if (before == AN_SCHEMA_VERSION)
    printf("%s: already at schema version %d\n", argv[1], AN_SCHEMA_VERSION);
  else
    printf("%s: upgraded from schema version %d to %d\n", argv[1], before, AN_SCHEMA_VERSION);
  return CLI_OK;
}

int cli_merge(int argc, char **argv)
{
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(merge_usage, stdout);
    return CLI_OK;
  }
  if (argc < 3) {
    fprintf(stderr, "syncsim: merge needs OUT and at least one IN\n\n%s", merge_usage);
    return CLI_USAGE;
  }
  long copied, skipped;
  char err[1024];
  if (an_merge(argv[1], (const char *const *)argv + 2, argc - 2, &copied, &skipped, err,
               sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_USAGE;
  }
  printf("merged %d database%s into %s: %ld runs copied, %ld already there\n", argc - 2,
         argc == 3 ? "" : "s", argv[1], copied, skipped);
  return CLI_OK;
}
