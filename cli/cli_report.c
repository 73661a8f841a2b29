/* cli_report — `syncsim report`, `plot` and `merge`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "an_db.h"
#include "an_html.h"
#include "an_report.h"
#include "cli.h"
#include "sim_runner.h"
#include "syncsim_commit.h"

static const char report_usage[] =
  "usage: syncsim report DB [--scenario NAME] [--target-loss X] [--group-by KEYS]\n"
  "                      [--baseline LABEL] [--format table|csv|json|html] [--out FILE]\n"
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
  "  --format F        table (default), csv, json, or html: one self-contained page (needs\n"
  "                    --out) with the table and its notes, each scenario's loss plot, a\n"
  "                    sweep plot per swept parameter, the workers' time shares (inline SVG\n"
  "                    drawn by gnuplot; a plot that cannot be drawn is a note in the page)\n"
  "                    and every run's provenance and resolved config; it loads nothing\n"
  "                    from elsewhere and shows every name from the database as text\n"
  "  --out FILE        write there instead of standard output (any format); the file is\n"
  "                    replaced only when the whole report is written\n"
  "\n"
  "Notes on stderr explain pooled rows, a baseline chosen among several DDP policies, and\n"
  "rows left without a speedup. The output depends only on the runs, not on the order in\n"
  "which they were stored (--jobs, --shard, merge).\n";

static const char plot_usage[] =
  "usage: syncsim plot DB --out FILE.png|svg|pdf [--kind loss|sweep|timeline|workers]\n"
  "                   [--x NAME] [--run ID] [--target-loss X] [--scenario NAME]\n"
  "                   [--point KEY=VALUE]... [--logy] [--baseline-loss]\n"
  "\n"
  "  loss (default)  held-out loss against simulated time, one curve per policy label (and\n"
  "                  per sweep point, its seed aside): the mean over seeds, with a 95% band\n"
  "                  when there are several; drawn as steps when the runs evaluated at every\n"
  "                  change of their global model (eval.at_sync), else as lines between\n"
  "                  evaluations; log time when it spans a wide range. --target-loss X and\n"
  "                  --baseline-loss draw those levels; --logy a log-scale loss axis\n"
  "  sweep --x NAME  time to the target loss (or final loss, without a target) against the\n"
  "                  swept parameter NAME (e.g. H), one line per policy with 95% intervals\n"
  "                  and its runs per point; unswept policies (DDP) as a reference with its\n"
  "                  own band; points whose runs never reached the target as triangles at\n"
  "                  the top\n"
  "  timeline --run ID   a Gantt chart of one run (needs --set record.timeline=N): compute,\n"
  "                  all-reduces, pushes, pulls, transfers, waiting on a down peer, down\n"
  "  workers         each policy's shares of compute, communication, idle, down and blocked\n"
  "                  time\n"
  "\n"
  "  --point KEY=VALUE  only the runs at that value of a swept parameter (KEY its last name,\n"
  "                  e.g. H; repeatable: all must hold)\n"
  "\n"
  "Finished runs only; --scenario NAME keeps that scenario's runs (series are named\n"
  "'scenario: label' when several scenarios are drawn). A label has the same colour and dash\n"
  "in every plot of a database. Drawn by gnuplot (Debian's gnuplot-nox).\n";

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

/* Whether the output path names the database file (itself, or through a link). */
static int is_the_db(const char *out, const char *db)
{
  struct stat a, b;
  return stat(out, &a) == 0 && stat(db, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int cli_report(int argc, char **argv)
{
  const char *db = NULL, *out_path = NULL;
  an_report_opts o = {.target_loss = NAN, .group_by = NULL, .format = AN_FORMAT_TABLE,
                      .notes = stderr};
  int n;
  const cli_opt opts[] = { /* --format and --kind index their enums (an_report.h) */
    {.name = "--target-loss", .kind = CLI_OPT_POSITIVE, .out = &o.target_loss},
    {.name = "--scenario", .kind = CLI_OPT_STRING, .out = &o.scenario},
    {.name = "--baseline", .kind = CLI_OPT_STRING, .out = &o.baseline},
    {.name = "--group-by", .kind = CLI_OPT_STRING, .out = &o.group_by},
    {.name = "--format", .kind = CLI_OPT_CHOICE, .out = &o.format,
     .choices = "table|csv|json|html"},
    {.name = "--out", .kind = CLI_OPT_STRING, .out = &out_path},
    {0}};
  int rc = cli_parse_args(argc, argv, report_usage, opts, &db, 1, &n);
  if (rc >= 0)
    return rc;
  if (!db || (o.format == AN_FORMAT_HTML && !out_path)) {
    fprintf(stderr, "syncsim: %s\n\n%s", !db ? "a DB file is needed"
            : "--format html needs --out FILE (the page's file)", report_usage);
    return CLI_USAGE;
  }
  if (out_path && is_the_db(out_path, db)) {
    fprintf(stderr, "syncsim: --out %s: is the database itself; expected another file\n",
            out_path);
    return CLI_USAGE;
  }
  char tmp[4096];
  FILE *out = out_path ? cli_out_open(out_path, tmp, sizeof tmp) : stdout;
  if (!out)
    return CLI_USAGE;
  char err[1024];
  wl_status st;
  if (o.format == AN_FORMAT_HTML) {
    char generator[256];
    snprintf(generator, sizeof generator, "syncsim %s (numerics %d, source %s)",
             SYNCSIM_VERSION, SIM_NUMERICS_VERSION, SYNCSIM_SOURCE_COMMIT);
    an_html_opts h = {.report = o, .gnuplot = getenv("SYNCSIM_GNUPLOT"),
                      .generator = generator};
    st = an_html_report(db, &h, out, err, sizeof err);
  } else {
    st = an_report(db, &o, out, err, sizeof err);
  }
  if (st != WL_OK)
    fprintf(stderr, "syncsim: %s\n", err);
  if (out_path && !cli_out_close(out, tmp, out_path, st == WL_OK))
    return st != WL_OK ? CLI_USAGE : CLI_RUN_FAILED;
  if (out_path)
    fprintf(stderr, "wrote %s\n", out_path);
  return st == WL_OK ? CLI_OK : CLI_USAGE;
}

int cli_plot(int argc, char **argv)
{
  const char *db = NULL;
  an_plot_opts o = {.kind = AN_PLOT_LOSS, .target_loss = NAN, .gnuplot = getenv("SYNCSIM_GNUPLOT")};
  long long run = 0;
  int n;
  const cli_opt opts[] = {
    {.name = "--out", .kind = CLI_OPT_STRING, .out = &o.out},
    {.name = "--scenario", .kind = CLI_OPT_STRING, .out = &o.scenario},
    {.name = "--x", .kind = CLI_OPT_STRING, .out = &o.x},
    {.name = "--run", .kind = CLI_OPT_INT, .out = &run, .lo = 1, .hi = INT64_MAX / 2,
     .expect = "a run id (a positive integer)"},
    {.name = "--target-loss", .kind = CLI_OPT_POSITIVE, .out = &o.target_loss},
    {.name = "--kind", .kind = CLI_OPT_CHOICE, .out = &o.kind,
     .choices = "loss|sweep|timeline|workers"},
    {.name = "--point", .kind = CLI_OPT_LIST, .out = (void *)o.points, .max = AN_PLOT_MAX_POINTS,
     .count = &o.n_points},
    {.name = "--logy", .kind = CLI_OPT_FLAG, .out = &o.logy},
    {.name = "--baseline-loss", .kind = CLI_OPT_FLAG, .out = &o.baseline_loss},
    {0}};
  int rc = cli_parse_args(argc, argv, plot_usage, opts, &db, 1, &n);
  if (rc >= 0)
    return rc;
  o.run = run;
  if (!db || !o.out || (o.kind == AN_PLOT_SWEEP && !o.x) || (o.kind == AN_PLOT_TIMELINE && o.run <= 0)) {
    fprintf(stderr, "syncsim: %s\n\n%s",
            !db ? "a DB file is needed" : !o.out ? "--out FILE is needed"
            : o.kind == AN_PLOT_SWEEP ? "--kind sweep needs --x NAME" : "--kind timeline needs --run ID",
            plot_usage);
    return CLI_USAGE;
  }
  static const char *const kinds[] = {"loss", "sweep", "timeline", "workers"};
  const struct {
    const char *opt;
    int given, fits; /* fits: the plot kind uses it */
  } uses[] = {
    {"--x", o.x != NULL, o.kind == AN_PLOT_SWEEP},
    {"--run", o.run > 0, o.kind == AN_PLOT_TIMELINE},
    {"--target-loss", !isnan(o.target_loss), o.kind == AN_PLOT_LOSS || o.kind == AN_PLOT_SWEEP},
    {"--point", o.n_points > 0, o.kind != AN_PLOT_TIMELINE},
    {"--logy", o.logy, o.kind == AN_PLOT_LOSS},
    {"--baseline-loss", o.baseline_loss, o.kind == AN_PLOT_LOSS},
  };
  for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++)
    if (uses[i].given && !uses[i].fits) {
      fprintf(stderr, "syncsim: %s does nothing in a %s plot\n\n%s", uses[i].opt,
              kinds[o.kind], plot_usage);
      return CLI_USAGE;
    }
  if (is_the_db(o.out, db)) {
    fprintf(stderr, "syncsim: --out %s: is the database itself; expected another file\n", o.out);
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
  const char *path = NULL;
  int n;
  int rc = cli_parse_args(argc, argv, migrate_usage, NULL, &path, 1, &n);
  if (rc >= 0)
    return rc;
  if (!n) {
    fprintf(stderr, "syncsim: migrate needs a DB\n\n%s", migrate_usage);
    return CLI_USAGE;
  }
  char err[1024];
  sqlite3 *db;
  int before;
  if (an_db_open_readonly(path, &db, &before, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_USAGE;
  }
  sqlite3_close(db);
  an_store *store;
  if (an_store_open(path, &store, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_RUN_FAILED;
  }
  an_store_close(store);
  if (before == AN_SCHEMA_VERSION)
    printf("%s: already at schema version %d\n", path, AN_SCHEMA_VERSION);
  else
    printf("%s: upgraded from schema version %d to %d\n", path, before, AN_SCHEMA_VERSION);
  return CLI_OK;
}

int cli_merge(int argc, char **argv)
{
  const char **pos = malloc((size_t)argc * sizeof *pos);
  if (!pos) {
    fprintf(stderr, "syncsim: out of memory\n");
    return CLI_RUN_FAILED;
  }
  int n;
  int rc = cli_parse_args(argc, argv, merge_usage, NULL, pos, argc, &n);
  if (rc < 0 && n < 2) {
    fprintf(stderr, "syncsim: merge needs OUT and at least one IN\n\n%s", merge_usage);
    rc = CLI_USAGE;
  }
  long copied, skipped;
  char err[1024];
  if (rc < 0 && an_merge(pos[0], pos + 1, n - 1, &copied, &skipped, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    rc = CLI_USAGE;
  }
  if (rc < 0) {
    printf("merged %d database%s into %s: %ld runs copied, %ld already there\n", n - 1,
           n == 2 ? "" : "s", pos[0], copied, skipped);
    rc = CLI_OK;
  }
  free(pos);
  return rc;
}
