#include "an_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_double.h>
#include <sqlite3.h>

#include "an_db.h"

/* One finished run, as the report sees it. */
typedef struct rrun {
  long long id;
  char scenario[128], label[64], policy[32];
  int seed;
  char point[512];  /* its swept values but the seed, "H=8, bandwidth_gbps=1" */
  char key[768];    /* its group */
  double loss, bytes, ttt, share[3];
} rrun;

typedef struct rgroup {
  char key[768];
  const rrun *first;
  int n, never;
  double *loss, *ttt; /* (n) */
  int n_ttt;
  int n_share;      /* runs with workers rows */
  double bytes, share[3];
} rgroup;

/* The last name of an axis: "policies.diloco.H,policies.palsgd.H" -> "H". */
static const char *short_name(const char *axis)
{
  const char *comma = strrchr(axis, ',');
  const char *path = comma ? comma + 1 : axis;
  const char *dot = strrchr(path, '.');
  return dot ? dot + 1 : path;
}

static int has_key(const char *keys, const char *name)
{
  size_t n = strlen(name);
  for (const char *k = keys; k && *k;) {
    const char *end = strchr(k, ',');
    size_t len = end ? (size_t)(end - k) : strlen(k);
    if (len == n && strncmp(k, name, n) == 0)
      return 1;
    k = end ? end + 1 : NULL;
  }
  return 0;
}

/* The run's point text and group key from its sweep point JSON; adds the names of its axes
 * to the comma-separated list seen. */
static void run_key(sqlite3_stmt *each, rrun *r, const char *point_json, const char *group_by,
                    char *seen, size_t seen_size)
{
  r->point[0] = '\0';
  sqlite3_bind_text(each, 1, point_json, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(each) == SQLITE_ROW) {
    const char *axis = (const char *)sqlite3_column_text(each, 0);
    const char *value = (const char *)sqlite3_column_text(each, 1);
    const char *name = short_name(axis);
    size_t len = strlen(seen);
    if (strcmp(name, "seed") != 0 && !has_key(seen, name) && len + strlen(name) + 2 < seen_size)
      snprintf(seen + len, seen_size - len, "%s%s", len ? "," : "", name);
    int in = group_by ? has_key(group_by, name) : strcmp(name, "seed") != 0;
    if (!in)
      continue;
    size_t n = strlen(r->point);
    snprintf(r->point + n, sizeof r->point - n, "%s%s=%s", n ? ", " : "", name,
             value ? value : "null");
  }
  sqlite3_reset(each);
  if (!group_by) {
    snprintf(r->key, sizeof r->key, "%s|%s|%s", r->scenario, r->label, r->point);
    return;
  }
  char seed[24] = "";
  if (has_key(group_by, "seed"))
    snprintf(seed, sizeof seed, "%d", r->seed);
  snprintf(r->key, sizeof r->key, "%s|%s|%s|%s|%s",
           has_key(group_by, "scenario") ? r->scenario : "",
           has_key(group_by, "label") ? r->label : "", has_key(group_by, "policy") ? r->policy : "",
           r->point, seed);
}

static wl_status load_runs(sqlite3 *db, const an_report_opts *o, rrun **out, int *n, char *err,
                           size_t err_size)
{
  static const char sql[] =
    "SELECT r.id, r.scenario, r.policy, r.label, r.seed, coalesce(r.sweep_point, '{}'),"
    "  r.final_loss, f.bytes,"
    "  (SELECT min(m.sim_time_s) FROM metrics m WHERE m.run_id = r.id AND m.kind = 'eval'"
    "     AND m.loss <= coalesce(?1, json_extract(r.config_json, '$.eval.target_loss'))),"
    "  (SELECT sum(compute_s) / sum(compute_s + comm_s + idle_s + down_s) FROM workers w"
    "     WHERE w.run_id = r.id),"
    "  (SELECT sum(comm_s) / sum(compute_s + comm_s + idle_s + down_s) FROM workers w"
    "     WHERE w.run_id = r.id),"
    "  (SELECT sum(idle_s) / sum(compute_s + comm_s + idle_s + down_s) FROM workers w"
    "     WHERE w.run_id = r.id)"
    " FROM runs r LEFT JOIN final_eval f ON f.run_id = r.id"
    " WHERE r.status = 'done' ORDER BY r.id";
  sqlite3_stmt *st, *each;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT key, value FROM json_each(?1)", -1, &each, NULL) !=
        SQLITE_OK) {
    snprintf(err, err_size, "reading runs: %s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  if (!isnan(o->target_loss))
    sqlite3_bind_double(st, 1, o->target_loss);
  int cap = 64;
  rrun *runs = malloc((size_t)cap * sizeof *runs);
  char axes[512] = ""; /* the swept parameters' names */
  *n = 0;
  wl_status rc = runs ? WL_OK : WL_ENOMEM;
  while (rc == WL_OK && sqlite3_step(st) == SQLITE_ROW) {
    if (*n == cap) {
      rrun *grown = realloc(runs, (size_t)(cap *= 2) * sizeof *runs);
      if (!grown) {
        rc = WL_ENOMEM;
        break;
      }
      runs = grown;
    }
    rrun *r = &runs[(*n)++];
    r->id = sqlite3_column_int64(st, 0);
    snprintf(r->scenario, sizeof r->scenario, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(r->policy, sizeof r->policy, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(r->label, sizeof r->label, "%s", (const char *)sqlite3_column_text(st, 3));
    r->seed = sqlite3_column_int(st, 4);
    run_key(each, r, (const char *)sqlite3_column_text(st, 5), o->group_by, axes, sizeof axes);
    r->loss = an_db_real(st, 6);
    r->bytes = an_db_real(st, 7);
    r->ttt = an_db_real(st, 8);
    for (int k = 0; k < 3; k++)
      r->share[k] = an_db_real(st, 9 + k);
  }
  sqlite3_finalize(st);
  sqlite3_finalize(each);
  *out = runs;
  for (const char *k = o->group_by; rc == WL_OK && k && *k;) { /* every key must exist */
    const char *end = strchr(k, ',');
    int len = end ? (int)(end - k) : (int)strlen(k);
    char key[64];
    snprintf(key, sizeof key, "%.*s", len, k);
    if (!has_key("scenario,label,policy,seed", key) && !has_key(axes, key)) {
      snprintf(err, err_size, "--group-by: unknown key '%s'; expected scenario, label, policy, "
               "seed%s%s", key, axes[0] ? " or a swept parameter: " : " (no swept parameters)",
               axes);
      rc = WL_ECONFIG;
    }
    k = end ? end + 1 : NULL;
  }
  return rc;
}

static double mean_of(const double *x, int n) { return n ? gsl_stats_mean(x, 1, (size_t)n) : NAN; }

static int cmp_key_then_id(const void *a, const void *b)
{
  const rrun *p = a, *q = b;
  int c = strcmp(p->key, q->key);
  return c ? c : (p->id > q->id) - (p->id < q->id);
}

static int cmp_first_id(const void *a, const void *b)
{
  const rgroup *p = a, *q = b;
  return (p->first->id > q->first->id) - (p->first->id < q->first->id);
}

/* Sort the runs by group and cut them into groups, ordered by their first run; the groups'
 * values live in vals (2n, caller frees). Returns the number of groups, -1 out of memory. */
static int group_runs(rrun *runs, int n, rgroup **out, double **vals)
{
  qsort(runs, (size_t)n, sizeof *runs, cmp_key_then_id);
  rgroup *g = calloc((size_t)n + 1, sizeof *g);
  double *v = malloc(2 * ((size_t)n + 1) * sizeof *v);
  *out = g;
  *vals = v;
  if (!g || !v)
    return -1;
  int ng = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 || strcmp(runs[i].key, runs[i - 1].key) != 0) {
      snprintf(g[ng].key, sizeof g[ng].key, "%s", runs[i].key);
      g[ng].first = &runs[i];
      g[ng].loss = v + i;         /* the group's runs are contiguous from i */
      g[ng].ttt = v + n + 1 + i;
      ng++;
    }
    rgroup *gr = &g[ng - 1];
    gr->loss[gr->n] = runs[i].loss;
    if (isnan(runs[i].ttt))
      gr->never++;
    else
      gr->ttt[gr->n_ttt++] = runs[i].ttt;
    gr->bytes += isnan(runs[i].bytes) ? 0 : runs[i].bytes;
    if (!isnan(runs[i].share[0])) {
      for (int s = 0; s < 3; s++)
        gr->share[s] += runs[i].share[s];
      gr->n_share++;
    }
    gr->n++;
  }
  qsort(g, (size_t)ng, sizeof *g, cmp_first_id);
  return ng;
}

/* DDP's mean time to target for group g: the DDP group of the same scenario and point, or
 * all DDP runs of the scenario. */
static double ddp_time(const rgroup *g, const rgroup *all, int ng, const rrun *runs, int n)
{
  for (int k = 0; k < ng; k++)
    if (strcmp(all[k].first->policy, "ddp") == 0 &&
        strcmp(all[k].first->scenario, g->first->scenario) == 0 &&
        strcmp(all[k].first->point, g->first->point) == 0)
      return mean_of(all[k].ttt, all[k].n_ttt);
  double sum = 0;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (strcmp(runs[i].policy, "ddp") == 0 && strcmp(runs[i].scenario, g->first->scenario) == 0 &&
        !isnan(runs[i].ttt)) {
      sum += runs[i].ttt;
      m++;
    }
  return m ? sum / m : NAN;
}

static void fmt_pm(char *buf, size_t size, double mean, double ci, const char *f)
{
  char a[32] = "-", b[32] = "";
  if (!isnan(mean))
    snprintf(a, sizeof a, f, mean);
  if (!isnan(ci))
    snprintf(b, sizeof b, f, ci);
  snprintf(buf, size, "%s%s%s", a, b[0] ? " ± " : "", b);
}

static void json_num(FILE *out, const char *name, double v, int last)
{
  if (isnan(v))
    fprintf(out, "\"%s\": null%s", name, last ? "" : ", ");
  else
    fprintf(out, "\"%s\": %.10g%s", name, v, last ? "" : ", ");
}

wl_status an_report(const char *db_path, const an_report_opts *o, FILE *out, char *err,
                    size_t err_size)
{
  sqlite3 *db;
  wl_status rc = an_db_open_runs(db_path, o->scenario, &db, err, err_size);
  if (rc != WL_OK)
    return rc;
  rrun *runs = NULL;
  int n = 0;
  rc = load_runs(db, o, &runs, &n, err, err_size);
  sqlite3_close(db);
  rgroup *g = NULL;
  double *vals = NULL;
  int ng = rc == WL_OK ? group_runs(runs, n, &g, &vals) : 0;
  if (ng < 0)
    rc = WL_ENOMEM;
  if (rc == WL_OK && o->format == AN_FORMAT_TABLE)
    fprintf(out, "%-14s %-16s %-18s %4s %-18s %-18s %5s %7s %10s %7s %6s %6s\n", "scenario",
            "label", "point", "runs", "final_loss", "time_to_target_s", "never", "speedup",
            "bytes", "compute", "comm", "idle");
  else if (rc == WL_OK && o->format == AN_FORMAT_CSV)
    fprintf(out, "scenario,label,policy,point,runs,final_loss,final_loss_ci95,"
                 "time_to_target_s,time_to_target_ci95,never_reached,speedup_vs_ddp,bytes,"
                 "compute_share,comm_share,idle_share\n");
  else if (rc == WL_OK)
    fputs("[", out);
  for (int k = 0; rc == WL_OK && k < ng; k++) {
    const rgroup *gr = &g[k];
    const rrun *f = gr->first;
    double loss = mean_of(gr->loss, gr->n), loss_ci = an_ci95(gr->loss, gr->n);
    double ttt = mean_of(gr->ttt, gr->n_ttt), ttt_ci = an_ci95(gr->ttt, gr->n_ttt);
    double speedup = ddp_time(gr, g, ng, runs, n) / ttt;
    double bytes = gr->bytes / gr->n, sh[3];
    for (int s = 0; s < 3; s++)
      sh[s] = gr->n_share ? gr->share[s] / gr->n_share : NAN;
    if (o->format == AN_FORMAT_TABLE) {
      char l[48], t[48], sp[16] = "-";
      fmt_pm(l, sizeof l, loss, loss_ci, "%.4f");
      fmt_pm(t, sizeof t, ttt, ttt_ci, "%.1f");
      if (!isnan(speedup))
        snprintf(sp, sizeof sp, "%.2fx", speedup);
      char shares[3][16];
      for (int s = 0; s < 3; s++)
        snprintf(shares[s], sizeof shares[s], isnan(sh[s]) ? "-" : "%.3f", sh[s]);
      fprintf(out, "%-14.14s %-16.16s %-18.18s %4d %-18s %-18s %5d %7s %10.3g %7s %6s %6s\n",
              f->scenario, f->label, f->point[0] ? f->point : "-", gr->n, l, t, gr->never, sp,
              bytes, shares[0], shares[1], shares[2]);
    } else if (o->format == AN_FORMAT_CSV) {
      fprintf(out, "%s,%s,%s,\"%s\",%d", f->scenario, f->label, f->policy, f->point, gr->n);
      const double v[] = {loss, loss_ci, ttt, ttt_ci, gr->never, speedup, bytes,
                          sh[0], sh[1], sh[2]};
      for (size_t c = 0; c < sizeof v / sizeof v[0]; c++) /* empty: no value */
        fprintf(out, isnan(v[c]) ? "," : ",%.10g", v[c]);
      fputc('\n', out);
    } else {
      fprintf(out, "%s\n  {\"scenario\": \"%s\", \"label\": \"%s\", \"policy\": \"%s\", "
              "\"point\": \"%s\", \"runs\": %d, ", k ? "," : "", f->scenario, f->label, f->policy,
              f->point, gr->n);
      json_num(out, "final_loss", loss, 0);
      json_num(out, "final_loss_ci95", loss_ci, 0);
      json_num(out, "time_to_target_s", ttt, 0);
      json_num(out, "time_to_target_ci95", ttt_ci, 0);
      fprintf(out, "\"never_reached\": %d, ", gr->never);
      json_num(out, "speedup_vs_ddp", speedup, 0);
      json_num(out, "bytes", bytes, 0);
      json_num(out, "compute_share", sh[0], 0);
      json_num(out, "comm_share", sh[1], 0);
      json_num(out, "idle_share", sh[2], 1);
      fputs("}", out);
    }
  }
  if (rc == WL_OK && o->format == AN_FORMAT_JSON)
    fputs("\n]\n", out);
  free(vals);
  free(g);
  free(runs);
  return rc;
}
