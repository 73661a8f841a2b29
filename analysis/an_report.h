/* an_report — tables and plots from a results database.
 *
 * The report groups the database's runs (by default: scenario, policy label and every swept
 * parameter but the seed; a --group-by always keeps scenario, and label unless it names
 * policy) and gives, in an order fixed by the data (scenario, point, policy type, label),
 * per group: the number of distinct finished runs (a run repeating another's config, numerics
 * version and inputs has the same numbers and counts once), and how many diverged or failed;
 * the final held-out loss, mean with a 95% confidence interval (Student's t over the runs,
 * i.e. the seeds); the simulated time to the target loss over the runs — a run that never
 * reached it counts at its stop time, and the mean is then a lower bound (printed "> x") —
 * with its interval when every run reached it,
 * and how many never did (empty without a target); the speedup against a baseline (the DDP
 * policy, or --baseline's label): the baseline's mean time to target at the same values of
 * every axis both have (and the same seed when grouping by seed) divided by the group's — none
 * when the baseline has runs at several values of an axis the group lacks — a bound when
 * either side is censored, with a 95% percentile-bootstrap interval over seeds
 * (2000 resamples of each side, drawn from a generator seeded by the data, so the report is
 * deterministic); bytes communicated; and the shares of the workers' time spent computing,
 * communicating, waiting, down and blocked. CSV is RFC 4180; JSON is valid for any names.
 *
 * Plots are drawn by gnuplot from data files written to a temporary directory. */
#ifndef AN_REPORT_H
#define AN_REPORT_H

#include <stdio.h>

#include "wl_status.h"

/* HTML: the table as one <table class="report"> element, the same cells as the text table's,
 * every text escaped (an_html_text); an_html_report() builds a whole page around it. */
enum { AN_FORMAT_TABLE = 0, AN_FORMAT_CSV, AN_FORMAT_JSON, AN_FORMAT_HTML };
enum { AN_PLOT_LOSS = 0, AN_PLOT_SWEEP, AN_PLOT_TIMELINE, AN_PLOT_WORKERS };

typedef struct an_report_opts {
  double target_loss;   /* NaN: each run's scenario eval.target_loss */
  const char *group_by; /* comma-separated keys (scenario, label, policy, seed, or an axis's
                           last name such as H); NULL: the default */
  int format;           /* AN_FORMAT_* */
  const char *scenario; /* only this scenario's runs; NULL: all */
  const char *baseline; /* the speedup's reference label; NULL: the DDP policy's */
  FILE *notes;          /* where to explain pooled rows and missing speedups; NULL: nowhere */
} an_report_opts;

wl_status an_report(const char *db_path, const an_report_opts *o, FILE *out, char *err,
                    size_t err_size);

enum { AN_PLOT_MAX_POINTS = 16 };

typedef struct an_plot_opts {
  int kind;             /* AN_PLOT_* */
  const char *out;      /* .png, .svg or .pdf */
  const char *x;        /* sweep: the axis on the x axis (its last name, e.g. H) */
  long long run;        /* timeline: the run */
  double target_loss;   /* sweep: NaN = the scenarios'; the y axis is time to it. loss: NaN =
                           none, else a line at it */
  const char *gnuplot;  /* the gnuplot program (NULL: "gnuplot") */
  const char *scenario; /* only this scenario's runs; NULL: all */
  const char *points[AN_PLOT_MAX_POINTS]; /* loss, sweep: only runs at these sweep values,
                                             "KEY=VALUE" (KEY an axis's last name) */
  int n_points;
  int logy;             /* loss: a log-scale y axis */
  int baseline_loss;    /* loss: a line at runs.baseline_loss */
} an_plot_opts;

wl_status an_plot(const char *db_path, const an_plot_opts *o, char *err, size_t err_size);

/* Copy every run of the databases in (n) into out (created if needed), with their rows in
 * every table, skipping runs whose config hash is already done in out; refuses databases of
 * another schema version. *copied and *skipped count runs. */
wl_status an_merge(const char *out, const char *const *in, int n, long *copied, long *skipped,
                   char *err, size_t err_size);

/* The length of the valid UTF-8 sequence at c (1 to 4; shortest form, no surrogates, at
 * most U+10FFFF), 0 when the byte at c does not start one. */
int an_utf8_len(const unsigned char *c);

/* in for a terminal (size bytes of out): control characters (C0, DEL and C1, which a terminal
 * could take as commands) shown as escapes, \xNN or \uNNNN. */
void an_printable(const char *in, char *out, size_t size);

#endif
