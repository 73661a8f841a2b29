/* an_report — tables and plots from a results database.
 *
 * The report groups the database's finished runs (by default: scenario, policy label and
 * every swept parameter but the seed) and gives, per group: the number of runs; the final
 * held-out loss, mean with a 95% confidence interval (Student's t over the runs, i.e. the
 * seeds); the simulated time to the target loss, mean and interval over the runs that reached
 * it, and how many never did; the speedup against DDP at the same sweep point (DDP's mean
 * time to target divided by the group's; pooled over DDP's runs of the scenario when no DDP
 * group has the same point, as when no axis touches DDP); bytes communicated; and the shares
 * of the workers' time spent computing, communicating and waiting.
 *
 * Plots are drawn by gnuplot from data files written to a temporary directory. */
#ifndef AN_REPORT_H
#define AN_REPORT_H

#include <stdio.h>

#include "wl_status.h"

enum { AN_FORMAT_TABLE = 0, AN_FORMAT_CSV, AN_FORMAT_JSON };
enum { AN_PLOT_LOSS = 0, AN_PLOT_SWEEP, AN_PLOT_TIMELINE, AN_PLOT_WORKERS };

typedef struct an_report_opts {
  double target_loss;   /* NaN: each run's scenario eval.target_loss */
  const char *group_by; /* comma-separated keys (scenario, label, policy, seed, or an axis's
                           last name such as H); NULL: the default */
  int format;           /* AN_FORMAT_* */
  const char *scenario; /* only this scenario's runs; NULL: all */
} an_report_opts;

wl_status an_report(const char *db_path, const an_report_opts *o, FILE *out, char *err,
                    size_t err_size);

typedef struct an_plot_opts {
  int kind;             /* AN_PLOT_* */
  const char *out;      /* .png, .svg or .pdf */
  const char *x;        /* sweep: the axis on the x axis (its last name, e.g. H) */
  long long run;        /* timeline: the run */
  double target_loss;   /* sweep: NaN = the scenarios'; the y axis is time to it */
  const char *gnuplot;  /* the gnuplot program (NULL: "gnuplot") */
  const char *scenario; /* only this scenario's runs; NULL: all */
} an_plot_opts;

wl_status an_plot(const char *db_path, const an_plot_opts *o, char *err, size_t err_size);

/* Copy every run of the databases in (n) into out (created if needed), with their rows in
 * every table, skipping runs whose config hash is already done in out; refuses databases of
 * another schema version. *copied and *skipped count runs. */
wl_status an_merge(const char *out, const char *const *in, int n, long *copied, long *skipped,
                   char *err, size_t err_size);

#endif
