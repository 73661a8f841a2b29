/* Plots through gnuplot: the data are written to files in a temporary directory, with a
 * script that draws them; gnuplot is run on the script. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gsl/gsl_statistics_double.h>

#include "an_db.h"
#include "an_report.h"
#include "opt_policy.h"

enum { MAX_SERIES = 32 };

typedef struct plot_ctx {
  char dir[64];
  char files[MAX_SERIES * 4][128];
  int n_files;
  char *err;
  size_t err_size;
} plot_ctx;

static FILE *data_file(plot_ctx *p, const char *name, char *path, size_t size)
{
  snprintf(path, size, "%s/%s", p->dir, name);
  if (p->n_files < MAX_SERIES * 4)
    snprintf(p->files[p->n_files++], sizeof p->files[0], "%s", path);
  return fopen(path, "w");
}

static void cleanup(plot_ctx *p)
{
  for (int i = 0; i < p->n_files; i++)
    unlink(p->files[i]);
  rmdir(p->dir);
}

static const char *terminal_for(const char *out)
{
  const char *dot = strrchr(out, '.');
  if (!dot)
    return NULL;
  if (strcmp(dot, ".png") == 0)
    return "pngcairo size 960,600 noenhanced font 'sans,11'";
  if (strcmp(dot, ".svg") == 0)
    return "svg size 960,600 noenhanced font 'sans,11' background rgb 'white'";
  if (strcmp(dot, ".pdf") == 0)
    return "pdfcairo size 8in,5in noenhanced font 'sans,10'";
  return NULL;
}

/* s as the inside of a gnuplot single-quoted string (a quote is written twice). */
static const char *gp_str(const char *s, char *buf, size_t size)
{
  size_t n = 0;
  for (; *s && n + 2 < size; s++) {
    if (*s == '\'')
      buf[n++] = '\'';
    buf[n++] = (unsigned char)*s < 0x20 ? ' ' : *s; /* a newline would end gnuplot's line */
  }
  buf[n] = '\0';
  return buf;
}

/* Mean and 95% half-width of x (n); the half-width is 0 below two values. */
static void mean_ci(const double *x, int n, double *mean, double *ci)
{
  *mean = gsl_stats_mean(x, 1, (size_t)n);
  *ci = n < 2 ? 0.0 : an_ci95(x, n);
}

/* The policy types in the registry's order, ",ddp,local_sgd,...,", for TYPE_ORDER's ?1. */
static const char *policy_types(char *buf, size_t size)
{
  snprintf(buf, size, ",");
  for (int k = 0; opt_policy_registry[k]; k++) {
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s,", opt_policy_registry[k]->name);
  }
  return buf;
}

/* An ORDER BY term for a group of runs: its policy type's position in ?1 (unknown types last). */
#define TYPE_ORDER "min(coalesce(nullif(instr(?1, ',' || policy || ','), 0), 1e9))"

/* The distinct labels (with the scenario when there are several), ordered by scenario, policy
 * type (the registry's order: ddp first) and label — as the report's rows, and not by the
 * order the runs were stored in, so that a series keeps its colour whatever --jobs did. */
static int series_names(sqlite3 *db, char names[][96])
{
  sqlite3_stmt *st;
  int n = 0, scenarios = 0;
  if (sqlite3_prepare_v2(db, "SELECT count(DISTINCT scenario) FROM runs WHERE status = 'done'", -1,
                         &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    scenarios = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  char sql[512], types[512];
  snprintf(sql, sizeof sql, "SELECT %s FROM runs WHERE status = 'done' GROUP BY 1 ORDER BY "
           "min(scenario), %s, min(label)", scenarios > 1 ? "scenario || ': ' || label" : "label",
           TYPE_ORDER);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, policy_types(types, sizeof types), -1, SQLITE_TRANSIENT);
  while (n < MAX_SERIES && sqlite3_step(st) == SQLITE_ROW)
    snprintf(names[n++], 96, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return n;
}

static const char *series_expr(sqlite3 *db)
{
  sqlite3_stmt *st;
  int scenarios = 0;
  if (sqlite3_prepare_v2(db, "SELECT count(DISTINCT scenario) FROM runs WHERE status = 'done'", -1,
                         &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    scenarios = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return scenarios > 1 ? "r.scenario || ': ' || r.label" : "r.label";
}

/* loss: held-out loss against simulated time, per series: the mean over its runs at each
 * evaluation time, with a 95% band. */
static wl_status write_loss(sqlite3 *db, plot_ctx *p, FILE *gp)
{
  char names[MAX_SERIES][96], sql[512], path[160], title[200];
  int ns = series_names(db, names);
  if (ns == 0) {
    snprintf(p->err, p->err_size, "no finished runs to plot");
    return WL_ECONFIG;
  }
  snprintf(sql, sizeof sql,
           "SELECT m.sim_time_s, m.loss FROM metrics m JOIN runs r ON r.id = m.run_id"
           " WHERE r.status = 'done' AND m.kind = 'eval' AND m.loss IS NOT NULL AND %s = ?1"
           " ORDER BY m.sim_time_s, r.id", series_expr(db));
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(p->err, p->err_size, "%s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  double tmin = INFINITY, tmax = 0, vals[4096];
  fprintf(gp, "set xlabel 'simulated time (s)'\nset ylabel 'held-out loss (nats)'\n"
              "set title 'Held-out loss against simulated time (mean over seeds, 95%% band)'\n"
              "set key top right opaque\nset grid\n");
  char plot[8192] = "plot ";
  for (int s = 0; s < ns; s++) {
    char name[32];
    snprintf(name, sizeof name, "loss%d.dat", s);
    FILE *f = data_file(p, name, path, sizeof path);
    if (!f)
      return WL_EIO;
    sqlite3_bind_text(st, 1, names[s], -1, SQLITE_STATIC);
    int n = 0;
    double t_cur = NAN;
    int more = sqlite3_step(st) == SQLITE_ROW;
    while (more) {
      double t = sqlite3_column_double(st, 0), v = sqlite3_column_double(st, 1);
      if (n > 0 && t != t_cur) {
        double m, ci;
        mean_ci(vals, n, &m, &ci);
        fprintf(f, "%.9g %.9g %.9g %.9g\n", t_cur, m, m - ci, m + ci);
        n = 0;
      }
      t_cur = t;
      if (n < 4096)
        vals[n++] = v;
      if (t > 0)
        tmin = fmin(tmin, t);
      tmax = fmax(tmax, t);
      more = sqlite3_step(st) == SQLITE_ROW;
    }
    if (n > 0) {
      double m, ci;
      mean_ci(vals, n, &m, &ci);
      fprintf(f, "%.9g %.9g %.9g %.9g\n", t_cur, m, m - ci, m + ci);
    }
    sqlite3_reset(st);
    fclose(f);
    size_t len = strlen(plot);
    snprintf(plot + len, sizeof plot - len,
             "%s'%s' using 1:3:4 with filledcurves fs transparent solid 0.15 lc %d notitle, "
             "'' using 1:2 with lines lw 2 lc %d title '%s'",
             s ? ", " : "", path, s + 1, s + 1, gp_str(names[s], title, sizeof title));
  }
  sqlite3_finalize(st);
  if (tmin < INFINITY && tmax / tmin > 200) /* a wide range of times: log scale */
    fprintf(gp, "set logscale x\nset xrange [%g:%g]\n", tmin, tmax);
  fprintf(gp, "%s\n", plot);
  return WL_OK;
}

/* The value of the axis whose last name is x in a sweep point, or NaN. */
static double axis_value(sqlite3_stmt *each, const char *point, const char *x)
{
  double v = NAN;
  sqlite3_bind_text(each, 1, point, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(each) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(each, 0);
    const char *comma = strrchr(key, ','), *path = comma ? comma + 1 : key;
    const char *dot = strrchr(path, '.'), *name = dot ? dot + 1 : path;
    if (strcmp(name, x) == 0 && sqlite3_column_type(each, 1) != SQLITE_NULL)
      v = sqlite3_column_double(each, 1);
  }
  sqlite3_reset(each);
  return v;
}

typedef struct xy {
  double x, y;
} xy;

static int cmp_xy(const void *a, const void *b)
{
  const xy *p = a, *q = b;
  return (p->x > q->x) - (p->x < q->x);
}

/* sweep: time to target (or final loss) against one swept parameter, per series. A series
 * that the axis does not touch (DDP, say) is drawn as a flat line at its mean. */
static wl_status write_sweep(sqlite3 *db, plot_ctx *p, const an_plot_opts *o, FILE *gp)
{
  char names[MAX_SERIES][96], sql[1024], path[160], title[200];
  int ns = series_names(db, names);
  snprintf(sql, sizeof sql,
           "SELECT coalesce(r.sweep_point, '{}'),"
           " (SELECT min(m.sim_time_s) FROM metrics m WHERE m.run_id = r.id AND m.kind = 'eval'"
           "   AND m.loss <= coalesce(?2, json_extract(r.config_json, '$.eval.target_loss'))),"
           " r.final_loss, coalesce(?2, json_extract(r.config_json, '$.eval.target_loss'))"
           " FROM runs r WHERE r.status = 'done' AND %s = ?1 ORDER BY r.id", series_expr(db));
  sqlite3_stmt *st, *each;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT key, value FROM json_each(?1)", -1, &each, NULL) != SQLITE_OK) {
    snprintf(p->err, p->err_size, "%s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  if (!isnan(o->target_loss))
    sqlite3_bind_double(st, 2, o->target_loss);
  static xy pts[65536];
  double target = NAN, xmin = INFINITY, xmax = -INFINITY;
  int any_x = 0, never = 0;
  char plot[8192] = "plot ";
  for (int s = 0; s < ns; s++) {
    sqlite3_bind_text(st, 1, names[s], -1, SQLITE_STATIC);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 65536) {
      double x = axis_value(each, (const char *)sqlite3_column_text(st, 0), o->x);
      double ttt = an_db_real(st, 1);
      target = an_db_real(st, 3);
      double y = isnan(target) ? an_db_real(st, 2) : ttt;
      never += !isnan(target) && isnan(ttt);
      if (isnan(y))
        continue;
      pts[n++] = (xy){x, y};
    }
    sqlite3_reset(st);
    if (n == 0)
      continue;
    qsort(pts, (size_t)n, sizeof pts[0], cmp_xy);
    char name[32];
    snprintf(name, sizeof name, "sweep%d.dat", s);
    FILE *f = data_file(p, name, path, sizeof path);
    if (!f)
      return WL_EIO;
    int flat = isnan(pts[0].x);
    for (int i = 0; i < n;) {
      int j = i;
      double y[65536 / 16];
      int m = 0;
      while (j < n && (pts[j].x == pts[i].x || (flat && isnan(pts[j].x)))) {
        if (m < 65536 / 16)
          y[m++] = pts[j].y;
        j++;
      }
      double mean, ci;
      mean_ci(y, m, &mean, &ci);
      if (flat)
        fprintf(f, "%.9g %.9g\n", mean, ci);
      else {
        fprintf(f, "%.9g %.9g %.9g\n", pts[i].x, mean, ci);
        any_x = 1;
        xmin = fmin(xmin, pts[i].x);
        xmax = fmax(xmax, pts[i].x);
      }
      i = j;
    }
    fclose(f);
    size_t len = strlen(plot);
    if (flat)
      snprintf(plot + len, sizeof plot - len, "%s'%s' using (x0):1:(x1-x0):(0) with vectors "
               "nohead lw 2 dt 2 lc %d title '%s (not swept)'", len > 5 ? ", " : "", path, s + 1,
               gp_str(names[s], title, sizeof title));
    else
      snprintf(plot + len, sizeof plot - len, "%s'%s' using 1:2:3 with yerrorlines lw 2 pt 7 "
               "lc %d title '%s'", len > 5 ? ", " : "", path, s + 1,
               gp_str(names[s], title, sizeof title));
  }
  sqlite3_finalize(st);
  sqlite3_finalize(each);
  if (!any_x) {
    snprintf(p->err, p->err_size, "no finished run has a swept parameter named '%s' (see "
             "runs.sweep_point)", o->x);
    return WL_ECONFIG;
  }
  fprintf(gp, "x0 = %g\nx1 = %g\n", xmin, xmax);
  if (xmin > 0 && xmax / xmin >= 8)
    fprintf(gp, "set logscale x 2\n");
  char x[200];
  gp_str(o->x, x, sizeof x);
  fprintf(gp, "set yrange [0:*]\nset xrange [%g:%g]\nset xlabel '%s'\nset grid\nset key outside right top\n",
          xmin / (xmin > 0 && xmax / xmin >= 8 ? 1.3 : 1), xmax * (xmin > 0 && xmax / xmin >= 8 ? 1.3 : 1),
          x);
  if (isnan(target))
    fprintf(gp, "set ylabel 'final held-out loss (nats)'\n"
                "set title 'Final held-out loss against %s (mean over seeds, 95%% interval)'\n", x);
  else
    fprintf(gp, "set ylabel 'simulated time to loss ≤ %g (s)'\n"
                "set title 'Time to target loss against %s (mean over seeds, 95%% interval%s)'\n",
            target, x, never ? "; runs that never reached it left out" : "");
  fprintf(gp, "%s\n", plot);
  return WL_OK;
}

/* timeline: a Gantt chart of one run's logged intervals. */
static wl_status write_timeline(sqlite3 *db, plot_ctx *p, const an_plot_opts *o, FILE *gp)
{
  static const char *const kinds[] = {"compute", "comm", "down"};
  static const char *const colors[] = {"#4477aa", "#ee6677", "#555555"};
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT worker, start_s, end_s FROM timeline WHERE run_id = ?1 AND kind = ?2",
                         -1, &st, NULL) != SQLITE_OK) {
    snprintf(p->err, p->err_size, "%s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  char plot[4096] = "plot ", path[160];
  int rows = 0, max_worker = 0;
  for (int k = 0; k < 3; k++) {
    char name[32];
    snprintf(name, sizeof name, "%s.dat", kinds[k]);
    FILE *f = data_file(p, name, path, sizeof path);
    if (!f)
      return WL_EIO;
    sqlite3_bind_int64(st, 1, o->run);
    sqlite3_bind_text(st, 2, kinds[k], -1, SQLITE_STATIC);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      int w = sqlite3_column_int(st, 0);
      max_worker = w > max_worker ? w : max_worker;
      fprintf(f, "%d %.9g %.9g\n", w, sqlite3_column_double(st, 1), sqlite3_column_double(st, 2));
      n++;
    }
    sqlite3_reset(st);
    fclose(f);
    rows += n;
    if (n == 0)
      continue;
    size_t len = strlen(plot);
    snprintf(plot + len, sizeof plot - len, "%s'%s' using (($2+$3)/2):1:(($3-$2)/2):(0.38) with "
             "boxxyerror fs solid 0.85 noborder lc rgb '%s' title '%s'", len > 5 ? ", " : "", path,
             colors[k], kinds[k]);
  }
  sqlite3_finalize(st);
  if (rows == 0) {
    snprintf(p->err, p->err_size, "run %lld has no timeline: run it with --set record.timeline=N "
             "(intervals to log)", o->run);
    return WL_ECONFIG;
  }
  fprintf(gp, "set xlabel 'simulated time (s)'\nset ylabel 'worker'\nset yrange [-0.7:%g]\n"
              "set ytics 1\nset title 'Run %lld: what each worker does (blank: waiting)'\n"
              "set key outside top center horizontal\n%s\n", max_worker + 0.7, o->run, plot);
  return WL_OK;
}

/* workers: each series' mean shares of the workers' time, as stacked bars. */
static wl_status write_workers(sqlite3 *db, plot_ctx *p, FILE *gp)
{
  char sql[768], path[160];
  snprintf(sql, sizeof sql,
           "SELECT %s, sum(w.compute_s) / sum(r.sim_time_s), sum(w.comm_s) / sum(r.sim_time_s),"
           " sum(w.idle_s) / sum(r.sim_time_s), sum(w.down_s) / sum(r.sim_time_s),"
           " sum(w.blocked_s) / sum(r.sim_time_s)"
           " FROM workers w JOIN runs r ON r.id = w.run_id WHERE r.status = 'done'"
           " GROUP BY 1 ORDER BY min(r.scenario), %s, min(r.label)", series_expr(db), TYPE_ORDER);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(p->err, p->err_size, "%s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  char types[512];
  sqlite3_bind_text(st, 1, policy_types(types, sizeof types), -1, SQLITE_TRANSIENT);
  FILE *f = data_file(p, "shares.dat", path, sizeof path);
  if (!f) {
    sqlite3_finalize(st);
    return WL_EIO;
  }
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    char label[200]; /* a data file's string is double-quoted: no double quote inside */
    snprintf(label, sizeof label, "%s", (const char *)sqlite3_column_text(st, 0));
    for (char *c = label; *c; c++) /* and no line break */
      *c = *c == '"' ? '\'' : (unsigned char)*c < 0x20 ? ' ' : *c;
    fprintf(f, "\"%s\" %.6g %.6g %.6g %.6g %.6g\n", label,
            sqlite3_column_double(st, 1), sqlite3_column_double(st, 2),
            sqlite3_column_double(st, 3), sqlite3_column_double(st, 4),
            sqlite3_column_double(st, 5));
    n++;
  }
  sqlite3_finalize(st);
  fclose(f);
  if (n == 0) {
    snprintf(p->err, p->err_size, "no finished runs to plot");
    return WL_ECONFIG;
  }
  fprintf(gp, "set style data histograms\nset style histogram rowstacked\nset boxwidth 0.6\n"
              "set style fill solid 0.85 noborder\nset yrange [0:1]\nset grid y\n"
              "set ylabel 'share of the workers'' time'\nset key outside right\n"
              "set title 'Where the time goes: compute, communication, waiting, down, blocked'\n"
              "plot '%s' using 2:xtic(1) lc rgb '#4477aa' title 'compute', '' using 3 lc rgb "
              "'#ee6677' title 'communication', '' using 4 lc rgb '#cccccc' title 'idle', '' "
              "using 5 lc rgb '#555555' title 'down', '' using 6 lc rgb '#ccbb44' "
              "title 'blocked'\n", path);
  return WL_OK;
}

static wl_status run_gnuplot(const char *program, const char *script, char *err, size_t err_size)
{
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, err_size, "fork: %s", strerror(errno));
    return WL_EIO;
  }
  if (pid == 0) {
    execlp(program, program, script, (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    snprintf(err, err_size, "%s: not found; plots need gnuplot (Debian: apt-get install "
             "gnuplot-nox; ./setup.sh installs it)", program);
    return WL_EIO;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    snprintf(err, err_size, "%s failed on %s", program, script);
    return WL_EIO;
  }
  return WL_OK;
}

wl_status an_plot(const char *db_path, const an_plot_opts *o, char *err, size_t err_size)
{
  const char *term = terminal_for(o->out);
  if (!term) {
    snprintf(err, err_size, "--out %s: expected a file name ending in .png, .svg or .pdf", o->out);
    return WL_ECONFIG;
  }
  for (const char *c = o->out; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) { /* a gnuplot string cannot hold one */
      snprintf(err, err_size, "--out: expected a path without control characters");
      return WL_ECONFIG;
    }
  enum { OUT_MAX = 1024 }; /* passed whole or not at all: a cut path names another file */
  if (strlen(o->out) > OUT_MAX) {
    snprintf(err, err_size, "--out: expected a path of at most %d bytes, got %zu", OUT_MAX,
             strlen(o->out));
    return WL_ECONFIG;
  }
  char dir[OUT_MAX + 2]; /* the output's directory must be writable: say so before gnuplot would */
  const char *slash = strrchr(o->out, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - o->out) + 1 : 1, slash ? o->out : ".");
  if (access(dir, W_OK) != 0) {
    snprintf(err, err_size, "--out %s: cannot write in %s: %s", o->out, dir, strerror(errno));
    return WL_ECONFIG;
  }
  sqlite3 *db;
  wl_status rc = an_db_open_runs(db_path, o->scenario, &db, err, err_size);
  if (rc != WL_OK)
    return rc;
  plot_ctx p = {.err = err, .err_size = err_size};
  snprintf(p.dir, sizeof p.dir, "/tmp/syncsim_plot_XXXXXX");
  if (!mkdtemp(p.dir)) {
    snprintf(err, err_size, "a temporary directory: %s", strerror(errno));
    sqlite3_close(db);
    return WL_EIO;
  }
  char script[160];
  FILE *gp = data_file(&p, "plot.gp", script, sizeof script);
  if (!gp) {
    cleanup(&p);
    sqlite3_close(db);
    return WL_EIO;
  }
  char out[2 * OUT_MAX + 2]; /* (every quote doubled) */
  fprintf(gp, "set terminal %s\nset output '%s'\nset encoding utf8\n", term,
          gp_str(o->out, out, sizeof out));
  switch (o->kind) {
  case AN_PLOT_SWEEP: rc = write_sweep(db, &p, o, gp); break;
  case AN_PLOT_TIMELINE: rc = write_timeline(db, &p, o, gp); break;
  case AN_PLOT_WORKERS: rc = write_workers(db, &p, gp); break;
  default: rc = write_loss(db, &p, gp); break;
  }
  fclose(gp);
  sqlite3_close(db);
  if (rc == WL_OK)
    rc = run_gnuplot(o->gnuplot ? o->gnuplot : "gnuplot", script, err, err_size);
  struct stat sb;
  if (rc == WL_OK && (stat(o->out, &sb) != 0 || sb.st_size == 0)) {
    snprintf(err, err_size, "gnuplot wrote no %s", o->out);
    rc = WL_EIO;
  }
  cleanup(&p);
  return rc;
}
