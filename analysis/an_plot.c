/* Plots through gnuplot: the data are written to files in a temporary directory, with a
 * script that draws them; gnuplot is run on the script.
 *
 * Every plot of a database draws a policy label in the same colour and dash (its rank among
 * the database's labels, by policy type then name), from the Okabe–Ito palette, which stays
 * distinct under the common colour-vision deficiencies (its yellow left out: too light on
 * white). */
#include <errno.h>
#include <ctype.h>
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

enum { MAX_SERIES = 64, MAX_FILES = MAX_SERIES * 4 + 16 };

typedef struct plot_ctx {
  char dir[64];
  char files[MAX_FILES][128];
  int n_files;
  char *err;
  size_t err_size;
  sqlite3 *db;
  const an_plot_opts *o;
  int several_scenarios; /* series are named "scenario: label" */
} plot_ctx;

static FILE *data_file(plot_ctx *p, const char *name, char *path, size_t size)
{
  snprintf(path, size, "%s/%s", p->dir, name);
  if (p->n_files < MAX_FILES)
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

/* Appends to a plot command (the first term without a comma). */
static void add_term(char *plot, size_t size, const char *fmt, ...)
{
  size_t len = strlen(plot);
  if (len > 5 && len + 2 < size) /* past "plot " */
    len += (size_t)snprintf(plot + len, size - len, ", ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(plot + len, size - len, fmt, ap);
  va_end(ap);
}

/* Mean and 95% half-width of x (n); the half-width is 0 below two values. */
static void mean_ci(const double *x, int n, double *mean, double *ci)
{
  *mean = gsl_stats_mean(x, 1, (size_t)n);
  *ci = n < 2 ? 0.0 : an_ci95(x, n);
}

static wl_status db_fail(plot_ctx *p)
{
  snprintf(p->err, p->err_size, "%s", sqlite3_errmsg(p->db));
  return WL_EDB;
}

/* ---- a label's style -------------------------------------------------------------------- */

static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000"};
enum { N_COLOURS = sizeof palette / sizeof palette[0] };

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

/* The rank of `value` among the rows of sql (one text column; ?1 bound to the policy types),
 * or 0 when it is not among them. */
static int rank_in(sqlite3 *db, const char *sql, const char *value)
{
  sqlite3_stmt *st;
  char types[1024];
  int rank = 0, i = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return 0;
  if (sqlite3_bind_parameter_count(st) > 0)
    sqlite3_bind_text(st, 1, policy_types(types, sizeof types), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    if (v && strcmp(v, value) == 0) {
      rank = i;
      break;
    }
    i++;
  }
  sqlite3_finalize(st);
  return rank;
}

/* The database's labels and scenarios (every finished run, whatever this plot selects). */
static int label_rank(sqlite3 *db, const char *label)
{
  return rank_in(db, "SELECT label FROM main.runs WHERE status = 'done' GROUP BY label "
                     "ORDER BY " TYPE_ORDER ", label", label);
}

static int scenario_rank(sqlite3 *db, const char *scenario)
{
  return rank_in(db, "SELECT DISTINCT scenario FROM main.runs WHERE status = 'done' "
                     "ORDER BY scenario", scenario);
}

/* "lc rgb '#...' dt N" for a label (the same in every plot); with text (labels), only the
 * colour ("tc rgb '#...'"). */
static const char *style(sqlite3 *db, const char *label, int text, char *buf, size_t size)
{
  int lr = label_rank(db, label);
  if (text)
    snprintf(buf, size, "tc rgb '%s'", palette[lr % N_COLOURS]);
  else
    snprintf(buf, size, "lc rgb '%s' dt %d", palette[lr % N_COLOURS], 1 + (lr / N_COLOURS) % 5);
  return buf;
}

/* The marker that tells apart one label's curves in several scenarios of a plot (0: none). */
static int scenario_marker(const plot_ctx *p, const char *scenario)
{
  return p->several_scenarios ? 1 + scenario_rank(p->db, scenario) % 14 : 0;
}

/* ---- series: the runs one curve or one bar stands for ------------------------------------- */

typedef struct series {
  char scenario[96], label[96];
  char point[512]; /* the sweep point without its seed ("" when none) */
  char name[400];  /* as the key shows it */
  int n_runs;
  long long *runs; /* (n_runs) ids */
} series;

static void free_series(series *s, int n)
{
  for (int i = 0; i < n; i++)
    free(s[i].runs);
}

/* Whether the point JSON matches every --point KEY=VALUE (KEY an axis's last name, or its
 * whole path; VALUE compared as a number when both are numbers, else as text). A run whose
 * point lacks KEY matches (the axis does not touch its config: DDP under an H axis); seen[i]
 * records that some run has KEY i, hit[i] that some run has it at VALUE. */
static int point_matches(sqlite3_stmt *each, const char *point, const an_plot_opts *o,
                         int *seen, int *hit)
{
  for (int i = 0; i < o->n_points; i++) {
    const char *eq = strchr(o->points[i], '=');
    size_t klen = (size_t)(eq - o->points[i]);
    const char *want = eq + 1;
    int found = 0, has = 0;
    sqlite3_bind_text(each, 1, point, -1, SQLITE_TRANSIENT);
    while (!found && sqlite3_step(each) == SQLITE_ROW) {
      const char *key = (const char *)sqlite3_column_text(each, 0);
      const char *val = (const char *)sqlite3_column_text(each, 1);
      if (!key || !val)
        continue;
      int key_ok = strlen(key) == klen && strncmp(key, o->points[i], klen) == 0;
      for (const char *k = key; !key_ok && k;) { /* each path of the axis: its last name */
        const char *comma = strchr(k, ','), *end = comma ? comma : k + strlen(k);
        const char *name = end;
        while (name > k && name[-1] != '.')
          name--;
        key_ok = (size_t)(end - name) == klen && strncmp(name, o->points[i], klen) == 0;
        k = comma ? comma + 1 : NULL;
      }
      if (!key_ok)
        continue;
      has = seen[i] = 1;
      char *e1, *e2;
      double a = strtod(val, &e1), b = strtod(want, &e2);
      found = (*val && *e1 == '\0' && *want && *e2 == '\0') ? a == b : strcmp(val, want) == 0;
    }
    sqlite3_reset(each);
    hit[i] |= found;
    if (has && !found)
      return 0;
  }
  return 1;
}

/* "H=8, lr=0.1" from a point's JSON (its axes' last names). */
static void point_name(sqlite3_stmt *each, const char *point, char *out, size_t size)
{
  out[0] = '\0';
  sqlite3_bind_text(each, 1, point, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(each) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(each, 0);
    const char *val = (const char *)sqlite3_column_text(each, 1);
    if (!key)
      continue;
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s%s=%s", len ? ", " : "", an_axis_name(key),
             val ? val : "null");
  }
  sqlite3_reset(each);
}

/* Text order with numbers compared as numbers ("H=8" before "H=16"). */
static int natural_cmp(const char *a, const char *b)
{
  while (*a && *b) {
    char *ea, *eb;
    if ((*a >= '0' && *a <= '9') || ((*a == '-' || *a == '.') && a[1] >= '0' && a[1] <= '9')) {
      double x = strtod(a, &ea), y = strtod(b, &eb);
      if (eb != b && x != y)
        return (x > y) - (x < y);
      if (eb != b) {
        a = ea, b = eb;
        continue;
      }
    }
    if (*a != *b)
      return (unsigned char)*a - (unsigned char)*b;
    a++, b++;
  }
  return (unsigned char)*a - (unsigned char)*b;
}

static int cmp_series_point(const void *x, const void *y)
{
  return natural_cmp(((const series *)x)->name, ((const series *)y)->name);
}

/* The finished runs grouped into series: by scenario and label, and by sweep point (its seed
 * left out) when by_point; in the order of the report's rows (scenario, policy type, label,
 * point), which does not depend on the order the runs were stored in. Runs outside --point
 * are left out. Returns the number of series; 0 with err set and *rc the status when none. */
static int collect_series(plot_ctx *p, int by_point, series *out, wl_status *rc)
{
  *rc = WL_ECONFIG;
  const char *sql =
    "SELECT r.scenario, r.label, coalesce(r.sweep_point, '{}'),"
    " coalesce(nullif(json_remove(coalesce(r.sweep_point, '{}'), '$.seed'), '{}'), ''), r.id"
    " FROM runs r WHERE r.status = 'done' ORDER BY r.scenario,"
    " coalesce(nullif(instr(?1, ',' || r.policy || ','), 0), 1e9), r.label, 4, r.id";
  sqlite3_stmt *st, *each;
  char types[1024];
  if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(p->db, "SELECT key, value FROM json_each(?1)", -1, &each, NULL) !=
        SQLITE_OK) {
    *rc = db_fail(p);
    return 0;
  }
  sqlite3_bind_text(st, 1, policy_types(types, sizeof types), -1, SQLITE_TRANSIENT);
  int n = 0, matched = 0, any = 0, too_many = 0, seen[AN_PLOT_MAX_POINTS] = {0},
      hit[AN_PLOT_MAX_POINTS] = {0};
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *scen = (const char *)sqlite3_column_text(st, 0);
    const char *label = (const char *)sqlite3_column_text(st, 1);
    const char *full = (const char *)sqlite3_column_text(st, 2);
    const char *point = by_point ? (const char *)sqlite3_column_text(st, 3) : "";
    any = 1;
    if (!point_matches(each, full, p->o, seen, hit))
      continue;
    matched = 1;
    series *s = NULL;
    for (int i = n - 1; i >= 0 && !s; i--)
      if (strcmp(out[i].scenario, scen) == 0 && strcmp(out[i].label, label) == 0 &&
          strcmp(out[i].point, point) == 0)
        s = &out[i];
    if (!s) {
      if (n == MAX_SERIES) {
        too_many = 1;
        continue;
      }
      s = &out[n++];
      memset(s, 0, sizeof *s);
      snprintf(s->scenario, sizeof s->scenario, "%s", scen);
      snprintf(s->label, sizeof s->label, "%s", label);
      snprintf(s->point, sizeof s->point, "%s", point);
      char pn[300] = "";
      if (*point)
        point_name(each, point, pn, sizeof pn);
      snprintf(s->name, sizeof s->name, "%s%s%s%s%s%s", p->several_scenarios ? scen : "",
               p->several_scenarios ? ": " : "", label, *pn ? " (" : "", pn, *pn ? ")" : "");
    }
    long long *grown = realloc(s->runs, (size_t)(s->n_runs + 1) * sizeof *grown);
    if (!grown) {
      snprintf(p->err, p->err_size, "out of memory");
      *rc = WL_ENOMEM;
      free_series(out, n);
      n = 0;
      break;
    }
    s->runs = grown;
    s->runs[s->n_runs++] = sqlite3_column_int64(st, 4);
  }
  sqlite3_finalize(st);
  sqlite3_finalize(each);
  for (int i = 0; i < p->o->n_points && any; i++)
    if (!seen[i] || !hit[i]) {
      snprintf(p->err, p->err_size, !seen[i] ? "--point %s: no finished run has a swept "
               "parameter of that name (see runs.sweep_point)" : "--point %s: no finished run "
               "is at that value (see runs.sweep_point)", p->o->points[i]);
      free_series(out, n);
      return 0;
    }
  if (too_many && n > 0) {
    snprintf(p->err, p->err_size, "more than %d curves to draw: select some with --scenario or "
             "--point KEY=VALUE", MAX_SERIES);
    free_series(out, n);
    return 0;
  }
  if (n == 0 && !p->err[0])
    snprintf(p->err, p->err_size, "%s", !any ? "no finished runs to plot"
             : !matched ? "no finished run is at the sweep point given by --point" : "");
  for (int i = 0; i < n;) { /* one label's points in the order of their values */
    int j = i + 1;
    while (j < n && strcmp(out[j].scenario, out[i].scenario) == 0 &&
           strcmp(out[j].label, out[i].label) == 0)
      j++;
    qsort(out + i, (size_t)(j - i), sizeof *out, cmp_series_point);
    i = j;
  }
  return n;
}

/* ---- loss ----------------------------------------------------------------------------- */

typedef struct curve {
  int n;
  double *t, *v; /* (n) evaluation times and losses */
  double end;    /* the run's simulated end */
} curve;

/* One run's value at time t: its last evaluation at or before t (steps), or the line
 * between the evaluations around t; NaN outside the run. */
static double value_at(const curve *c, double t, int steps)
{
  if (c->n == 0 || t < c->t[0] || t > (steps ? c->end : c->t[c->n - 1]))
    return NAN;
  int lo = 0, hi = c->n - 1; /* the last index with t[i] <= t */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (c->t[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  if (steps || lo == c->n - 1 || c->t[lo] == t)
    return c->v[lo];
  double f = (t - c->t[lo]) / (c->t[lo + 1] - c->t[lo]);
  return c->v[lo] + f * (c->v[lo + 1] - c->v[lo]);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A series' runs' evaluations; whether all of them evaluated at every change of the global
 * model (eval.at_sync: the curve is then drawn as steps at those times). */
static wl_status load_curves(plot_ctx *p, const series *s, curve *c, int *steps)
{
  sqlite3_stmt *ev, *run;
  if (sqlite3_prepare_v2(p->db, "SELECT sim_time_s, loss FROM metrics WHERE run_id = ?1 AND "
                         "kind = 'eval' AND loss IS NOT NULL ORDER BY sim_time_s, rowid", -1,
                         &ev, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(p->db, "SELECT sim_time_s, coalesce(json_extract(config_json, "
                         "'$.eval.at_sync'), 0) FROM runs WHERE id = ?1", -1, &run, NULL) !=
        SQLITE_OK)
    return db_fail(p);
  *steps = 1;
  wl_status rc = WL_OK;
  for (int i = 0; i < s->n_runs && rc == WL_OK; i++) {
    curve *ci = &c[i];
    sqlite3_bind_int64(run, 1, s->runs[i]);
    if (sqlite3_step(run) == SQLITE_ROW) {
      ci->end = sqlite3_column_double(run, 0);
      *steps &= sqlite3_column_int(run, 1) != 0;
    }
    sqlite3_reset(run);
    sqlite3_bind_int64(ev, 1, s->runs[i]);
    int cap = 0;
    while (sqlite3_step(ev) == SQLITE_ROW) {
      double t = sqlite3_column_double(ev, 0), v = sqlite3_column_double(ev, 1);
      if (!isfinite(v))
        continue;
      if (ci->n > 0 && ci->t[ci->n - 1] == t) { /* two evaluations at once: the later */
        ci->v[ci->n - 1] = v;
        continue;
      }
      if (ci->n == cap) {
        cap = cap ? 2 * cap : 256;
        double *t2 = realloc(ci->t, (size_t)cap * sizeof *t2);
        if (t2)
          ci->t = t2;
        double *v2 = realloc(ci->v, (size_t)cap * sizeof *v2);
        if (v2)
          ci->v = v2;
        if (!t2 || !v2) {
          rc = WL_ENOMEM;
          break;
        }
      }
      ci->t[ci->n] = t;
      ci->v[ci->n++] = v;
    }
    sqlite3_reset(ev);
  }
  sqlite3_finalize(ev);
  sqlite3_finalize(run);
  if (rc != WL_OK)
    snprintf(p->err, p->err_size, "out of memory");
  return rc;
}

/* Writes one series' curve: at every evaluation time of its runs, the mean over the runs that
 * cover it, with its 95% interval; as steps, each change drawn as a vertical jump. Returns the
 * rows written; *tmin (the first time above 0) and *tmax grow, and y[0], y[1] to the means'
 * range. */
static int write_curve(FILE *f, curve *c, int n_runs, int steps, double *tmin, double *tmax,
                       double *y)
{
  int total = 0;
  for (int i = 0; i < n_runs; i++)
    total += c[i].n;
  double *times = malloc((size_t)(total + 1) * sizeof *times);
  double *vals = malloc((size_t)(n_runs + 1) * sizeof *vals);
  if (!times || !vals) {
    free(times);
    free(vals);
    return -1;
  }
  int nt = 0;
  for (int i = 0; i < n_runs; i++)
    for (int j = 0; j < c[i].n; j++)
      times[nt++] = c[i].t[j];
  qsort(times, (size_t)nt, sizeof *times, cmp_double);
  int rows = 0;
  double prev[3] = {NAN, NAN, NAN};
  for (int k = 0; k < nt; k++) {
    if (k > 0 && times[k] == times[k - 1])
      continue;
    int m = 0;
    for (int i = 0; i < n_runs; i++) {
      double v = value_at(&c[i], times[k], steps);
      if (!isnan(v))
        vals[m++] = v;
    }
    if (m == 0)
      continue;
    double mean, ci;
    mean_ci(vals, m, &mean, &ci);
    if (steps && rows > 0) /* the value held until now, then the jump */
      fprintf(f, "%.9g %.9g %.9g %.9g\n", times[k], prev[0], prev[1], prev[2]);
    /* (a loss is not negative: the band stops at 0) */
    fprintf(f, "%.9g %.9g %.9g %.9g\n", times[k], mean, fmax(mean - ci, 0.0), mean + ci);
    prev[0] = mean, prev[1] = fmax(mean - ci, 0.0), prev[2] = mean + ci;
    y[0] = fmin(y[0], mean);
    y[1] = fmax(y[1], mean);
    rows++;
    if (times[k] > 0)
      *tmin = fmin(*tmin, times[k]);
    *tmax = fmax(*tmax, times[k]);
  }
  if (steps && rows > 0) { /* held to the end of the longest run */
    double end = 0;
    for (int i = 0; i < n_runs; i++)
      end = fmax(end, c[i].n ? c[i].end : 0);
    if (end > *tmax) {
      fprintf(f, "%.9g %.9g %.9g %.9g\n", end, prev[0], prev[1], prev[2]);
      *tmax = end;
    }
  }
  free(times);
  free(vals);
  return rows;
}

/* Horizontal reference lines: the target (--target-loss) and the runs' baseline losses. */
static void reference_lines(plot_ctx *p, const series *s, int ns, char *plot, size_t size)
{
  char title[160];
  if (!isnan(p->o->target_loss))
  {
    char t[64];
    snprintf(t, sizeof t, "target loss, %.4g", p->o->target_loss);
    add_term(plot, size, "%.9g with lines lw 1.5 dt 2 lc rgb '#444444' title '%s'",
             p->o->target_loss, gp_str(t, title, sizeof title));
  }
  if (!p->o->baseline_loss)
    return;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(p->db, "SELECT baseline_loss FROM runs WHERE id = ?1", -1, &st, NULL) !=
      SQLITE_OK)
    return;
  double seen[8];
  int n_seen = 0;
  for (int i = 0; i < ns; i++)
    for (int j = 0; j < s[i].n_runs; j++) {
      sqlite3_bind_int64(st, 1, s[i].runs[j]);
      double b = sqlite3_step(st) == SQLITE_ROW ? an_db_real(st, 0) : NAN;
      sqlite3_reset(st);
      int known = isnan(b);
      for (int k = 0; k < n_seen && !known; k++)
        known = fabs(seen[k] - b) <= 1e-9 * fabs(b);
      if (known || n_seen == 8)
        continue;
      seen[n_seen++] = b;
      snprintf(title, sizeof title, "baseline (constant prediction), %.4g", b);
      add_term(plot, size, "%.9g with lines lw 1.5 dt 3 lc rgb '#888888' title '%s'", b, title);
    }
  sqlite3_finalize(st);
}

/* loss: held-out loss against simulated time, one curve per series: the mean over its runs
 * (the seeds) with a 95% band where there are several; steps when the runs evaluated at every
 * change of their global model, lines between evaluations otherwise. */
static wl_status write_loss(plot_ctx *p, FILE *gp)
{
  static series s[MAX_SERIES];
  wl_status rc;
  int ns = collect_series(p, 1, s, &rc);
  if (ns == 0)
    return rc;
  double tmin = INFINITY, tmax = 0, y[2] = {INFINITY, -INFINITY};
  int max_runs = 0, min_runs = 1 << 30, any_steps = 0, any_lines = 0;
  static char plot[32768];
  snprintf(plot, sizeof plot, "plot ");
  rc = WL_OK;
  for (int i = 0; i < ns && rc == WL_OK; i++) {
    curve *c = calloc((size_t)s[i].n_runs, sizeof *c);
    int steps = 0;
    if (!c) {
      rc = WL_ENOMEM;
      break;
    }
    rc = load_curves(p, &s[i], c, &steps);
    char name[32], path[160], title[900], st[64];
    snprintf(name, sizeof name, "loss%d.dat", i);
    FILE *f = rc == WL_OK ? data_file(p, name, path, sizeof path) : NULL;
    int rows = f ? write_curve(f, c, s[i].n_runs, steps, &tmin, &tmax, y) : -1;
    if (f)
      fclose(f);
    for (int j = 0; j < s[i].n_runs; j++) {
      free(c[j].t);
      free(c[j].v);
    }
    free(c);
    if (rc == WL_OK && rows < 0)
      rc = WL_EIO;
    if (rc != WL_OK || rows == 0)
      continue;
    max_runs = s[i].n_runs > max_runs ? s[i].n_runs : max_runs;
    min_runs = s[i].n_runs < min_runs ? s[i].n_runs : min_runs;
    any_steps |= steps;
    any_lines |= !steps;
    style(p->db, s[i].label, 0, st, sizeof st);
    if (s[i].n_runs > 1)
      add_term(plot, sizeof plot, "'%s' using 1:3:4 with filledcurves fs transparent solid "
               "0.15 noborder %s notitle", path, st);
    int marker = scenario_marker(p, s[i].scenario);
    if (*s[i].point || marker) { /* one label's curves at several sweep points or in several
                                    scenarios: told apart by markers */
      int same = 0;
      for (int k = 0; k < i; k++)
        same += strcmp(s[k].label, s[i].label) == 0 && strcmp(s[k].scenario, s[i].scenario) == 0;
      add_term(plot, sizeof plot, "'%s' using 1:2 with linespoints pt %d ps 1.1 pi -%d lw 2 %s "
               "title '%s'", path, 1 + (same + marker) % 14, rows > 16 ? rows / 8 : 1, st,
               gp_str(s[i].name, title, sizeof title));
    } else {
      add_term(plot, sizeof plot, "'%s' using 1:2 with lines lw 2 %s title '%s'", path, st,
               gp_str(s[i].name, title, sizeof title));
    }
  }
  if (rc == WL_OK && max_runs == 0) {
    snprintf(p->err, p->err_size, "no evaluated losses to plot (timing-only runs have none)");
    rc = WL_ECONFIG;
  }
  if (rc != WL_OK) {
    if (rc == WL_ENOMEM && !p->err[0])
      snprintf(p->err, p->err_size, "out of memory");
    free_series(s, ns);
    return rc;
  }
  reference_lines(p, s, ns, plot, sizeof plot);
  free_series(s, ns);
  const char *band = max_runs < 2 ? ""
                     : min_runs >= 2 ? " (mean over seeds, 95% band)"
                                     : " (mean over seeds where there are several, 95% band)";
  const char *set = an_loss_set(p->db, p->o->scenario);
  fprintf(gp, "set xlabel 'simulated time (s)'\nset ylabel '%s loss (nats)'\n"
              "set title '%c%s loss against simulated time%s'\n"
              "set key %s\nset grid\n", set, toupper((unsigned char)set[0]), set + 1, band,
          ns > 8 ? "outside right top font ',9'" : "top right");
  if (any_steps)
    fprintf(gp, "set label 1 '%s' at graph 0.01, graph 0.02 font ',9' tc rgb '#555555'\n",
            any_lines ? "steps: evaluated at every change of the global model; lines: between "
                        "evaluations"
                      : "steps: the global model evaluated at each of its changes");
  /* the y range: the curves' (a band reaching beyond it, where the seeds disagree most, is
     cut at the frame), with the reference lines */
  if (!isnan(p->o->target_loss))
    y[0] = fmin(y[0], p->o->target_loss), y[1] = fmax(y[1], p->o->target_loss);
  if (p->o->logy && y[0] > 0)
    fprintf(gp, "set logscale y\nset yrange [%.9g:%.9g]\n", y[0] / 1.25, y[1] * 1.25);
  else if (p->o->logy)
    fprintf(gp, "set logscale y\n");
  else
    fprintf(gp, "set yrange [%.9g:%.9g]\n", fmax(0.0, y[0] - 0.06 * (y[1] - y[0])),
            y[1] + 0.06 * (y[1] - y[0]) + 1e-12);
  if (tmin < INFINITY && tmax / tmin > 200) /* a wide range of times: log scale */
    fprintf(gp, "set logscale x\nset xrange [%.9g:%.9g]\n", tmin, tmax);
  else
    fprintf(gp, "set xrange [0:%.9g]\n", tmax > 0 ? tmax : 1);
  fprintf(gp, "%s\n", plot);
  return WL_OK;
}

/* ---- sweep ---------------------------------------------------------------------------- */

/* The value of the axis whose last name is x in a sweep point, or NaN. */
static double axis_value(sqlite3_stmt *each, const char *point, const char *x)
{
  double v = NAN;
  sqlite3_bind_text(each, 1, point, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(each) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(each, 0);
    if (strcmp(an_axis_name(key), x) == 0 && sqlite3_column_type(each, 1) != SQLITE_NULL)
      v = sqlite3_column_double(each, 1);
  }
  sqlite3_reset(each);
  return v;
}

typedef struct xy {
  double x, y; /* y NaN: the run never reached the target */
} xy;

static int cmp_xy(const void *a, const void *b)
{
  const xy *p = a, *q = b;
  return (p->x > q->x) - (p->x < q->x);
}

typedef struct sweep_group { /* one series' runs at one value of x */
  double x, mean, ci;
  int n, reached;
} sweep_group;

/* The runs of a series as (x, y): y the time to the target (NaN: never reached) or, without
 * a target, the final loss. *target gets the target. */
static int sweep_points(plot_ctx *p, sqlite3_stmt *st, sqlite3_stmt *each, const series *s,
                        xy *pts, int cap, double *target)
{
  int n = 0;
  for (int i = 0; i < s->n_runs && n < cap; i++) {
    sqlite3_bind_int64(st, 1, s->runs[i]);
    if (sqlite3_step(st) == SQLITE_ROW) {
      double x = axis_value(each, (const char *)sqlite3_column_text(st, 0), p->o->x);
      *target = an_db_real(st, 3);
      double y = isnan(*target) ? an_db_real(st, 2) : an_db_real(st, 1);
      if (!isnan(*target) || !isnan(y))
        pts[n++] = (xy){x, y};
    }
    sqlite3_reset(st);
  }
  qsort(pts, (size_t)n, sizeof *pts, cmp_xy);
  return n;
}

/* Groups sorted points by x (all of them in one group when none has an x). */
static int group_points(const xy *pts, int n, sweep_group *g)
{
  int ng = 0;
  double *y = malloc((size_t)(n + 1) * sizeof *y);
  if (!y)
    return -1;
  int flat = n > 0 && isnan(pts[0].x);
  for (int i = 0; i < n;) {
    int j = i, m = 0;
    while (j < n && (flat || pts[j].x == pts[i].x)) {
      if (!isnan(pts[j].y))
        y[m++] = pts[j].y;
      j++;
    }
    g[ng] = (sweep_group){.x = pts[i].x, .n = j - i, .reached = m, .mean = NAN, .ci = 0};
    if (m > 0)
      mean_ci(y, m, &g[ng].mean, &g[ng].ci);
    ng++;
    i = j;
  }
  free(y);
  return ng;
}

/* sweep: time to target (or final loss) against one swept parameter, per series; a series
 * the axis does not touch (DDP, say) as a flat reference with its own 95% band. Bars at the
 * same x are spread apart; the runs per point are in the key; a point whose runs never
 * reached the target is a triangle at the top; the ticks are the swept values. */
static wl_status write_sweep(plot_ctx *p, FILE *gp)
{
  const an_plot_opts *o = p->o;
  if (strcmp(o->x, "seed") == 0) {
    snprintf(p->err, p->err_size, "--x seed: the seed is what each point averages over, not "
             "a parameter; give a swept parameter's name (runs.sweep_point)");
    return WL_ECONFIG;
  }
  static series s[MAX_SERIES];
  wl_status rc;
  int ns = collect_series(p, 0, s, &rc);
  if (ns == 0)
    return rc;
  sqlite3_stmt *st, *each;
  if (sqlite3_prepare_v2(p->db,
        "SELECT coalesce(r.sweep_point, '{}'),"
        " (SELECT min(m.sim_time_s) FROM metrics m WHERE m.run_id = r.id AND m.kind = 'eval'"
        "   AND m.loss <= coalesce(?2, json_extract(r.config_json, '$.eval.target_loss'))),"
        " r.final_loss, coalesce(?2, json_extract(r.config_json, '$.eval.target_loss'))"
        " FROM runs r WHERE r.id = ?1", -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(p->db, "SELECT key, value FROM json_each(?1)", -1, &each, NULL) !=
        SQLITE_OK) {
    free_series(s, ns);
    return db_fail(p);
  }
  if (!isnan(o->target_loss))
    sqlite3_bind_double(st, 2, o->target_loss);
  enum { CAP = 1 << 16 };
  static xy pts[CAP];
  static sweep_group groups[MAX_SERIES][256];
  int n_groups[MAX_SERIES], swept[MAX_SERIES], n_swept = 0;
  double target = NAN, xmin = INFINITY, xmax = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  double xs[256];
  int n_xs = 0;
  rc = WL_OK;
  for (int i = 0; i < ns && rc == WL_OK; i++) {
    int n = sweep_points(p, st, each, &s[i], pts, CAP, &target);
    int ng = group_points(pts, n < 256 * 64 ? n : 256 * 64, groups[i]);
    if (ng < 0 || ng > 256) {
      snprintf(p->err, p->err_size, ng < 0 ? "out of memory" : "more than 256 values of %s",
               o->x);
      rc = ng < 0 ? WL_ENOMEM : WL_ECONFIG;
      break;
    }
    n_groups[i] = ng;
    swept[i] = ng > 0 && !isnan(groups[i][0].x);
    n_swept += swept[i];
    for (int g = 0; g < ng; g++) {
      const sweep_group *q = &groups[i][g];
      if (!isnan(q->mean)) {
        ylo = fmin(ylo, q->mean - q->ci);
        yhi = fmax(yhi, q->mean + q->ci);
      }
      if (!swept[i])
        continue;
      xmin = fmin(xmin, q->x);
      xmax = fmax(xmax, q->x);
      int known = 0;
      for (int k = 0; k < n_xs && !known; k++)
        known = xs[k] == q->x;
      if (!known && n_xs < 256)
        xs[n_xs++] = q->x;
    }
  }
  sqlite3_finalize(st);
  sqlite3_finalize(each);
  if (rc == WL_OK && n_swept == 0) {
    snprintf(p->err, p->err_size, "no finished run has a swept parameter named '%s' (see "
             "runs.sweep_point)", o->x);
    rc = WL_ECONFIG;
  }
  if (rc != WL_OK) {
    free_series(s, ns);
    return rc;
  }
  int logx = xmin > 0 && xmax / xmin >= 8;
  if (!(yhi > -INFINITY)) /* nothing reached the target */
    ylo = 0, yhi = 1;
  double top = yhi + 0.08 * (yhi - fmin(ylo, 0.0) + 1e-300);
  static char plot[32768];
  snprintf(plot, sizeof plot, "plot ");
  int never_any = 0, partial_any = 0, j = 0;
  char path[160], name[40], title[900], stl[64];
  for (int i = 0; i < ns; i++) {
    style(p->db, s[i].label, 0, stl, sizeof stl);
    char tc[48];
    style(p->db, s[i].label, 1, tc, sizeof tc);
    int nmin = 1 << 30, nmax = 0;
    for (int g = 0; g < n_groups[i]; g++) {
      nmin = groups[i][g].n < nmin ? groups[i][g].n : nmin;
      nmax = groups[i][g].n > nmax ? groups[i][g].n : nmax;
    }
    char runs[48];
    if (nmax == nmin)
      snprintf(runs, sizeof runs, "n = %d%s", nmax, swept[i] ? " per point" : "");
    else
      snprintf(runs, sizeof runs, "n = %d to %d per point", nmin, nmax);
    char key[600];
    snprintf(key, sizeof key, "%s%s (%s)", s[i].name, swept[i] ? "" : ", not swept", runs);
    gp_str(key, title, sizeof title);
    snprintf(name, sizeof name, "sweep%d.dat", i);
    FILE *f = data_file(p, name, path, sizeof path);
    if (!f) {
      free_series(s, ns);
      return WL_EIO;
    }
    if (!swept[i]) { /* a reference: its mean and band across the swept range */
      const sweep_group *q = &groups[i][0];
      if (n_groups[i] == 0) {
        fclose(f);
        continue;
      }
      if (isnan(q->mean)) { /* none of its runs reached the target: a line at the top */
        fprintf(f, "%.9g %.9g\n%.9g %.9g\n", xmin, top, xmax, top);
        fclose(f);
        char nk[700];
        snprintf(nk, sizeof nk, "%s, not swept: never reached the target (n = %d)", s[i].name,
                 q->n);
        add_term(plot, sizeof plot, "'%s' using 1:2 with lines lw 2 %s title '%s'", path, stl,
                 gp_str(nk, title, sizeof title));
        never_any = 1;
        continue;
      }
      fprintf(f, "%.9g %.9g %.9g %.9g\n%.9g %.9g %.9g %.9g\n", xmin, q->mean, q->mean - q->ci,
              q->mean + q->ci, xmax, q->mean, q->mean - q->ci, q->mean + q->ci);
      fclose(f);
      if (q->n > 1)
        add_term(plot, sizeof plot, "'%s' using 1:3:4 with filledcurves fs transparent solid "
                 "0.12 noborder %s notitle", path, stl);
      add_term(plot, sizeof plot, "'%s' using 1:2 with lines lw 2 %s title '%s'", path, stl,
               title);
      continue;
    }
    /* spread the series apart at each x: a fraction of the axis per series */
    double off = n_swept > 1 ? (j - (n_swept - 1) / 2.0) * 0.018 : 0;
    j++;
    char nname[40], npath[160], lname[40], lpath[160];
    snprintf(nname, sizeof nname, "never%d.dat", i);
    snprintf(lname, sizeof lname, "part%d.dat", i);
    FILE *nf = data_file(p, nname, npath, sizeof npath);
    FILE *lf = data_file(p, lname, lpath, sizeof lpath);
    int never = 0, partial = 0;
    for (int g = 0; g < n_groups[i]; g++) {
      const sweep_group *q = &groups[i][g];
      double span = xmax > xmin ? xmax - xmin : fabs(xmin) > 0 ? fabs(xmin) : 1.0;
      double x = logx ? q->x * exp2(off * log2(xmax / xmin)) : q->x + off * span;
      if (isnan(q->mean)) {
        if (nf)
          fprintf(nf, "%.9g %.9g\n", x, top);
        never++;
        continue;
      }
      fprintf(f, "%.9g %.9g %.9g\n", x, q->mean, q->ci);
      if (q->reached < q->n && lf) {
        fprintf(lf, "%.9g %.9g \"%d of %d\"\n", x, q->mean + q->ci, q->reached, q->n);
        partial++;
      }
    }
    fclose(f);
    if (nf)
      fclose(nf);
    if (lf)
      fclose(lf);
    add_term(plot, sizeof plot, "'%s' using 1:2:3 with yerrorlines lw 2 pt 7 %s title '%s'",
             path, stl, title);
    if (never)
      add_term(plot, sizeof plot, "'%s' using 1:2 with points pt 9 ps 1.6 %s notitle", npath,
               stl);
    if (partial)
      add_term(plot, sizeof plot, "'%s' using 1:2:3 with labels offset 0,0.8 font ',8' %s "
               "notitle", lpath, tc);
    never_any |= never > 0;
    partial_any |= partial > 0;
  }
  free_series(s, ns);
  if (never_any)
    add_term(plot, sizeof plot, "NaN with points pt 9 ps 1.6 lc rgb '#444444' title "
             "'never reached the target (drawn at the top)'");
  char x[200];
  gp_str(o->x, x, sizeof x);
  qsort(xs, (size_t)n_xs, sizeof *xs, cmp_double);
  fprintf(gp, "set xlabel '%s'\nset grid\nset key below\n", x);
  if (logx)
    fprintf(gp, "set logscale x\nset xrange [%.9g:%.9g]\n", xmin / 1.25, xmax * 1.25);
  else {
    double pad = xmax > xmin ? 0.06 * (xmax - xmin) : 1;
    fprintf(gp, "set xrange [%.9g:%.9g]\n", xmin - pad, xmax + pad);
  }
  if (n_xs <= 24) { /* the ticks: the swept values */
    fprintf(gp, "set xtics (");
    for (int k = 0; k < n_xs; k++)
      fprintf(gp, "%s'%g' %.17g", k ? ", " : "", xs[k], xs[k]);
    fprintf(gp, ")\n");
  }
  /* 0 at the bottom unless an interval reaches below it: nothing is cut off */
  fprintf(gp, "set yrange [%.9g:%.9g]\n", ylo >= 0 ? 0.0 : ylo - 0.05 * (yhi - ylo),
          never_any ? top + 0.05 * (top - fmin(ylo, 0.0)) : yhi + 0.05 * (yhi - fmin(ylo, 0.0)));
  if (isnan(target))
    fprintf(gp, "set ylabel 'final %s loss (nats)'\n"
                "set title 'Final %s loss against %s (mean over seeds, 95%% interval)'\n",
            an_loss_set(p->db, p->o->scenario), an_loss_set(p->db, p->o->scenario), x);
  else
    fprintf(gp, "set ylabel 'simulated time to loss ≤ %g (s)'\n"
                "set title 'Time to target loss against %s (mean over seeds that reached it, "
                "95%% interval%s)'\n",
            target, x, partial_any ? "; k of n: runs that reached it" : "");
  fprintf(gp, "%s\n", plot);
  return WL_OK;
}

/* ---- timeline ------------------------------------------------------------------------- */

/* timeline: a Gantt chart of one run's logged intervals, one colour per kind of activity. */
static wl_status write_timeline(plot_ctx *p, FILE *gp)
{
  static const struct {
    const char *kind, *title, *colour;
  } kinds[] = {
    {"compute", "compute", "#0072B2"},      {"allreduce", "all-reduce", "#D55E00"},
    {"allgather", "all-gather", "#CC79A7"}, {"push", "push to a server", "#E69F00"},
    {"pull", "pull from a server", "#56B4E9"}, {"send", "send to a worker", "#009E73"},
    {"receive", "receive from a worker", "#88CCEE"},
    {"transfer", "several transfers", "#999933"},
    {"comm", "communication", "#D55E00"}, /* databases before the kinds above */
    {"blocked", "waiting on a down peer", "#BBBBBB"}, {"down", "down", "#000000"}};
  sqlite3_stmt *st, *info;
  if (sqlite3_prepare_v2(p->db, "SELECT worker, start_s, end_s FROM timeline WHERE run_id = ?1 "
                         "AND kind = ?2", -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(p->db, "SELECT label, policy, scenario FROM runs WHERE id = ?1", -1,
                         &info, NULL) != SQLITE_OK)
    return db_fail(p);
  static char plot[8192];
  snprintf(plot, sizeof plot, "plot ");
  char path[160];
  int rows = 0, max_worker = 0;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    char name[32];
    snprintf(name, sizeof name, "%s.dat", kinds[k].kind);
    FILE *f = data_file(p, name, path, sizeof path);
    if (!f) {
      sqlite3_finalize(st);
      sqlite3_finalize(info);
      return WL_EIO;
    }
    sqlite3_bind_int64(st, 1, p->o->run);
    sqlite3_bind_text(st, 2, kinds[k].kind, -1, SQLITE_STATIC);
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
    if (n > 0)
      add_term(plot, sizeof plot, "'%s' using (($2+$3)/2):1:(($3-$2)/2):(0.38) with boxxyerror "
               "fs solid 0.85 noborder lc rgb '%s' title '%s'", path, kinds[k].colour,
               kinds[k].title);
  }
  sqlite3_finalize(st);
  char label[200] = "", policy[100] = "", scenario[200] = "";
  sqlite3_bind_int64(info, 1, p->o->run);
  if (sqlite3_step(info) == SQLITE_ROW) {
    gp_str((const char *)sqlite3_column_text(info, 0), label, sizeof label);
    gp_str((const char *)sqlite3_column_text(info, 1), policy, sizeof policy);
    gp_str((const char *)sqlite3_column_text(info, 2), scenario, sizeof scenario);
  }
  sqlite3_finalize(info);
  if (rows == 0) {
    snprintf(p->err, p->err_size, "run %lld has no timeline: run it with --set record.timeline=N "
             "(intervals to log)", p->o->run);
    return WL_ECONFIG;
  }
  char who[400]; /* the label, and its policy when it differs */
  snprintf(who, sizeof who, strcmp(label, policy) ? "%s (%s)" : "%s", label, policy);
  fprintf(gp, "set xlabel 'simulated time (s)'\nset ylabel 'worker'\nset yrange [-0.7:%g]\n"
              "set ytics 1\nset title 'Run %lld: %s in scenario %s; blank: idle'\n"
              "set key outside top center horizontal\n%s\n", max_worker + 0.7, p->o->run, who,
          scenario, plot);
  return WL_OK;
}

/* ---- workers -------------------------------------------------------------------------- */

/* workers: each series' (label and sweep point) mean shares of the workers' time, as
 * stacked bars; a share that is zero everywhere (down, blocked) is left out of the key and the
 * title. */
static wl_status write_workers(plot_ctx *p, FILE *gp)
{
  static series s[MAX_SERIES];
  wl_status rc;
  int ns = collect_series(p, 1, s, &rc);
  if (ns == 0)
    return rc;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(p->db,
        "SELECT sum(w.compute_s) / sum(r.sim_time_s), sum(w.comm_s) / sum(r.sim_time_s),"
        " sum(w.idle_s) / sum(r.sim_time_s), sum(w.down_s) / sum(r.sim_time_s),"
        " sum(w.blocked_s) / sum(r.sim_time_s)"
        " FROM workers w JOIN runs r ON r.id = w.run_id WHERE r.id = ?1", -1, &st, NULL) !=
      SQLITE_OK) {
    free_series(s, ns);
    return db_fail(p);
  }
  char path[160];
  FILE *f = data_file(p, "shares.dat", path, sizeof path);
  if (!f) {
    sqlite3_finalize(st);
    free_series(s, ns);
    return WL_EIO;
  }
  double any[5] = {0};
  size_t longest = 0;
  for (int i = 0; i < ns; i++) {
    double share[5] = {0};
    int m = 0;
    for (int k = 0; k < s[i].n_runs; k++) { /* the mean over the series' runs */
      sqlite3_bind_int64(st, 1, s[i].runs[k]);
      if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        for (int c = 0; c < 5; c++)
          share[c] += sqlite3_column_double(st, c);
        m++;
      }
      sqlite3_reset(st);
    }
    char label[400]; /* a data file's string is double-quoted: no double quote inside */
    snprintf(label, sizeof label, "%s", s[i].name);
    for (char *c = label; *c; c++) /* and no line break */
      *c = *c == '"' ? '\'' : (unsigned char)*c < 0x20 ? ' ' : *c;
    longest = strlen(label) > longest ? strlen(label) : longest;
    fprintf(f, "\"%s\"", label);
    for (int c = 0; c < 5; c++) {
      double v = m ? share[c] / m : 0;
      any[c] = fmax(any[c], v);
      fprintf(f, " %.6g", v);
    }
    fprintf(f, "\n");
  }
  sqlite3_finalize(st);
  fclose(f);
  free_series(s, ns);
  static const char *const names[] = {"compute", "communication", "idle", "down", "blocked"};
  static const char *const colours[] = {"#0072B2", "#D55E00", "#CCCCCC", "#000000", "#E69F00"};
  char plot[4096] = "plot ", title[200] = "";
  for (int c = 0; c < 5; c++) {
    if (c >= 3 && any[c] <= 0)
      continue;
    add_term(plot, sizeof plot, "'%s' using %d%s lc rgb '%s' title '%s'", path, c + 2,
             strlen(plot) == 5 ? ":xtic(1)" : "", colours[c], names[c]);
    size_t len = strlen(title);
    snprintf(title + len, sizeof title - len, "%s%s", len ? ", " : "", names[c]);
  }
  /* many or long labels: turned, in a smaller font, with room below */
  int turn = ns > 6 || longest * (size_t)ns > 90;
  fprintf(gp, "set style data histograms\nset style histogram rowstacked\nset boxwidth 0.6\n"
              "set style fill solid 0.85 noborder\nset yrange [0:1]\nset grid y\n"
              "set ylabel 'share of the workers'' time'\nset key outside right\n"
              "set title 'Where the time goes: %s'\n", title);
  if (turn)
    fprintf(gp, "set xtics rotate by -40 left font ',%d'\nset bmargin %d\n", ns > 16 ? 8 : 9,
            2 + (int)(longest > 40 ? 40 : longest) / 3);
  fprintf(gp, "%s\n", plot);
  return WL_OK;
}

/* ---- gnuplot -------------------------------------------------------------------------- */

static wl_status run_gnuplot(const char *program, const char *script, const char *out,
                             char *err, size_t err_size)
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
    snprintf(err, err_size, "%s failed drawing %s (its messages above)", program, out);
    return WL_EIO;
  }
  return WL_OK;
}

/* gnuplot's svg terminal writes '<' and '&' of a text as references, but not '>', so a
 * label holding "]]>" makes the file ill-formed XML; and it copies a label's bytes as they
 * are, invalid UTF-8 included. This rewrites the SVG at path: outside tags (and comments and
 * CDATA sections, which it copies), '>' as &gt;; anywhere, a byte that does not start valid
 * UTF-8 as U+FFFD. The PNG and PDF terminals draw the text as written: they are not touched. */
static wl_status svg_fix_text(const char *path, char *err, size_t err_size)
{
  FILE *f = fopen(path, "rb");
  char *in = NULL;
  size_t n = 0, cap = 0;
  int ok = f != NULL;
  for (size_t got = 1; ok && got > 0; n += got) {
    if (n + 4096 + 4 > cap) { /* (4 NULs past the end: a UTF-8 check reads up to 3 ahead) */
      char *grown = realloc(in, cap = 2 * cap + 8192);
      if (!(ok = grown != NULL)) {
        errno = ENOMEM;
        break;
      }
      in = grown;
    }
    got = fread(in + n, 1, 4096, f);
  }
  ok = ok && !ferror(f);
  if (f)
    fclose(f);
  FILE *out = ok ? fopen(path, "wb") : NULL;
  if (!out) {
    free(in);
    snprintf(err, err_size, "rewriting %s: %s", path, strerror(errno));
    return WL_EIO;
  }
  memset(in + n, 0, 4);
  int tag = 0;
  char quote = 0;
  for (size_t i = 0; i < n;) {
    const char *end = NULL; /* a comment or CDATA section: copied to its end */
    if (!tag && strncmp(in + i, "<!--", 4) == 0)
      end = strstr(in + i + 4, "-->");
    else if (!tag && strncmp(in + i, "<![CDATA[", 9) == 0)
      end = strstr(in + i + 9, "]]>");
    if (end) {
      fwrite(in + i, 1, (size_t)(end + 3 - (in + i)), out);
      i = (size_t)(end + 3 - in);
      continue;
    }
    char c = in[i];
    int len = an_utf8_len((const unsigned char *)in + i);
    if (!len) {
      fputs("\xef\xbf\xbd", out);
      i++;
      continue;
    }
    if (!tag && c == '>') {
      fputs("&gt;", out);
      i++;
      continue;
    }
    if (!tag && c == '<')
      tag = 1;
    else if (tag && quote && c == quote)
      quote = 0;
    else if (tag && !quote && (c == '"' || c == '\''))
      quote = c;
    else if (tag && !quote && c == '>')
      tag = 0;
    fwrite(in + i, 1, (size_t)len, out);
    i += (size_t)len;
  }
  free(in);
  if (fclose(out) != 0) {
    snprintf(err, err_size, "rewriting %s: %s", path, strerror(errno));
    return WL_EIO;
  }
  return WL_OK;
}

static int several_scenarios(sqlite3 *db)
{
  sqlite3_stmt *st;
  int n = 0;
  if (sqlite3_prepare_v2(db, "SELECT count(DISTINCT scenario) FROM runs WHERE status = 'done'",
                         -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return n > 1;
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
  for (int i = 0; i < o->n_points; i++) {
    const char *eq = strchr(o->points[i], '=');
    if (!eq || eq == o->points[i] || !eq[1]) {
      snprintf(err, err_size, "--point %s: expected KEY=VALUE, e.g. --point H=32", o->points[i]);
      return WL_ECONFIG;
    }
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
  err[0] = '\0';
  plot_ctx p = {.err = err, .err_size = err_size, .db = db, .o = o,
                .several_scenarios = several_scenarios(db)};
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
  /* gnuplot draws into a new file beside the output, renamed to it once complete: a plot
     that fails leaves no half-drawn file, and an existing one as it was */
  const char *ext = strrchr(o->out, '.');
  char beside[OUT_MAX + 32], drawn[OUT_MAX + 48]; /* a new directory beside it, and in it */
  snprintf(beside, sizeof beside, "%s.syncsim-XXXXXX", o->out);
  if (!mkdtemp(beside)) {
    snprintf(err, err_size, "--out %s: cannot write there: %s", o->out, strerror(errno));
    fclose(gp);
    cleanup(&p);
    sqlite3_close(db);
    return WL_ECONFIG;
  }
  snprintf(drawn, sizeof drawn, "%s/plot%s", beside, ext);
  char out[2 * sizeof drawn]; /* (every quote doubled) */
  fprintf(gp, "set terminal %s\nset output '%s'\nset encoding utf8\n", term,
          gp_str(drawn, out, sizeof out));
  switch (o->kind) {
  case AN_PLOT_SWEEP: rc = write_sweep(&p, gp); break;
  case AN_PLOT_TIMELINE: rc = write_timeline(&p, gp); break;
  case AN_PLOT_WORKERS: rc = write_workers(&p, gp); break;
  default: rc = write_loss(&p, gp); break;
  }
  fclose(gp);
  sqlite3_close(db);
  if (rc == WL_OK)
    rc = run_gnuplot(o->gnuplot ? o->gnuplot : "gnuplot", script, o->out, err, err_size);
  struct stat sb;
  if (rc == WL_OK && (stat(drawn, &sb) != 0 || sb.st_size == 0)) {
    snprintf(err, err_size, "gnuplot wrote no %s", o->out);
    rc = WL_EIO;
  }
  if (rc == WL_OK && strcmp(ext, ".svg") == 0)
    rc = svg_fix_text(drawn, err, err_size);
  if (rc == WL_OK && rename(drawn, o->out) != 0) {
    snprintf(err, err_size, "--out %s: %s", o->out, strerror(errno));
    rc = WL_EIO;
  }
  if (rc != WL_OK)
    unlink(drawn);
  rmdir(beside);
  cleanup(&p);
  return rc;
}
