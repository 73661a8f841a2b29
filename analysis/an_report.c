#include "an_report.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>
#include <sqlite3.h>

#include "an_db.h"
#include "an_html.h"
#include "an_store.h"
#include "opt_policy.h"

enum { N_SHARES = 5, BOOTSTRAP = 2000 };

/* One run, as the report sees it. */
typedef struct rrun {
  long long id;
  char scenario[128], label[64], policy[32], status[16];
  char identity[96]; /* config hash, numerics version and inputs: equal means the same run */
  int seed;
  int by_seed;       /* the report groups by seed: the baseline is matched on it too */
  char *point;       /* its grouped swept values, "H=8, bandwidth_gbps=1" (owned); the
                      * seed last when the report groups by it */
  char *order;       /* the same without the seed: the rows' order (owned) */
  char **axis, **value; /* (n_axes) its swept values but the seed, by full axis name, values
                         * as text (owned) */
  uint8_t *keyed;    /* (n_axes) the axis is a grouping key (else the rows pool it) */
  int n_axes;
  char *key;         /* its group (owned) */
  double loss, bytes, ttt, end, target, share[N_SHARES];
  int dup;           /* repeats an earlier run of its group (identity): not an observation */
} rrun;

typedef struct rgroup {
  const rrun *first; /* (the group's runs are contiguous from here) */
  int n_runs;        /* all its runs */
  int obs, diverged, failed; /* distinct done runs; diverged and failed runs */
  int never;         /* done runs that did not reach the target */
  int has_target;
  double *loss, *time; /* (obs) final losses; times to target, the stop time when never */
  double bytes, share[N_SHARES];
  int n_share;
} rgroup;

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

/* A growable string. */
typedef struct sbuf {
  char *s;
  size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *text, size_t len)
{
  if (b->n + len + 1 > b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    while (cap < b->n + len + 1)
      cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s)
      return 0;
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->n, text, len);
  b->n += len;
  b->s[b->n] = '\0';
  return 1;
}

static int sb_str(sbuf *b, const char *text) { return sb_add(b, text, strlen(text)); }

static char *sb_done(sbuf *b) { return b->s ? b->s : calloc(1, 1); }

static char *dup_text(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* The run's point text, axes and group key from its sweep point JSON; adds the names of its
 * axes to the comma-separated list seen. */
static int run_key(sqlite3_stmt *each, rrun *r, const char *point_json, const char *group_by,
                   char *seen, size_t seen_size)
{
  sbuf point = {0}, key = {0};
  int ok = 1, cap = 0;
  sqlite3_bind_text(each, 1, point_json, -1, SQLITE_TRANSIENT);
  while (ok && sqlite3_step(each) == SQLITE_ROW) {
    const char *axis = (const char *)sqlite3_column_text(each, 0);
    const char *value = (const char *)sqlite3_column_text(each, 1);
    value = value ? value : "null";
    const char *name = an_axis_name(axis);
    size_t len = strlen(seen);
    if (strcmp(name, "seed") != 0 && !has_key(seen, name) && len + strlen(name) + 2 < seen_size)
      snprintf(seen + len, seen_size - len, "%s%s", len ? "," : "", name);
    if (strcmp(name, "seed") == 0)
      continue;
    if (r->n_axes == cap) {
      cap = cap ? 2 * cap : 4;
      char **a = realloc(r->axis, (size_t)cap * sizeof *a);
      if (a)
        r->axis = a;
      char **v = a ? realloc(r->value, (size_t)cap * sizeof *v) : NULL;
      if (v)
        r->value = v;
      uint8_t *kd = v ? realloc(r->keyed, (size_t)cap) : NULL;
      if (!kd) {
        ok = 0;
        break;
      }
      r->keyed = kd;
    }
    r->axis[r->n_axes] = dup_text(axis);
    r->value[r->n_axes] = dup_text(value);
    ok &= r->axis[r->n_axes] && r->value[r->n_axes];
    r->keyed[r->n_axes] = !group_by || has_key(group_by, name);
    if (!r->keyed[r->n_axes++])
      continue;
    ok &= (point.n ? sb_str(&point, ", ") : 1) && sb_str(&point, name) && sb_str(&point, "=") &&
          sb_str(&point, value);
  }
  sqlite3_reset(each);
  r->order = dup_text(point.n ? point.s : "");
  ok &= r->order != NULL;
  char seed[24] = "";
  r->by_seed = group_by && has_key(group_by, "seed");
  if (r->by_seed) {
    snprintf(seed, sizeof seed, "%d", r->seed);
    ok &= (point.n ? sb_str(&point, ", ") : 1) && sb_str(&point, "seed=") && sb_str(&point, seed);
  }
  r->point = sb_done(&point);
  int all = !group_by;
  ok &= sb_str(&key, all || has_key(group_by, "scenario") ? r->scenario : "") &&
        sb_str(&key, "\x1f") && sb_str(&key, all || has_key(group_by, "label") ? r->label : "") &&
        sb_str(&key, "\x1f") && sb_str(&key, !all && has_key(group_by, "policy") ? r->policy : "") &&
        sb_str(&key, "\x1f") && sb_str(&key, r->point) && sb_str(&key, "\x1f") && sb_str(&key, seed);
  r->key = sb_done(&key);
  return ok && r->point && r->key;
}

static void free_runs(rrun *runs, int n)
{
  for (int i = 0; runs && i < n; i++) {
    for (int k = 0; k < runs[i].n_axes; k++) {
      free(runs[i].axis[k]);
      free(runs[i].value[k]);
    }
    free(runs[i].axis);
    free(runs[i].value);
    free(runs[i].keyed);
    free(runs[i].order);
    free(runs[i].point);
    free(runs[i].key);
  }
  free(runs);
}

static wl_status load_runs(sqlite3 *db, const an_report_opts *o, rrun **out, int *n, char *err,
                           size_t err_size)
{
  static const char sql[] =
    "SELECT r.id, r.scenario, r.policy, r.label, r.seed, coalesce(r.sweep_point, '{}'),"
    "  r.final_loss, f.bytes, coalesce(?1, json_extract(r.config_json, '$.eval.target_loss')),"
    "  r.sim_time_s, r.status,"
    "  r.config_hash || ':' || r.numerics_version || ':' || coalesce(r.inputs_json, ''),"
    "  (SELECT sum(compute_s + comm_s + idle_s + down_s + blocked_s) FROM workers w"
    "     WHERE w.run_id = r.id),"
    "  (SELECT sum(compute_s) FROM workers w WHERE w.run_id = r.id),"
    "  (SELECT sum(comm_s) FROM workers w WHERE w.run_id = r.id),"
    "  (SELECT sum(idle_s) FROM workers w WHERE w.run_id = r.id),"
    "  (SELECT sum(down_s) FROM workers w WHERE w.run_id = r.id),"
    "  (SELECT sum(blocked_s) FROM workers w WHERE w.run_id = r.id)"
    " FROM runs r LEFT JOIN final_eval f ON f.run_id = r.id"
    " WHERE r.status IN ('done', 'diverged', 'failed') ORDER BY r.id";
  static const char ttt_sql[] =
    "SELECT min(sim_time_s) FROM metrics WHERE run_id = ?1 AND kind = 'eval' AND loss <= ?2";
  sqlite3_stmt *st, *each, *ttt;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT key, value FROM json_each(?1)", -1, &each, NULL) !=
        SQLITE_OK ||
      sqlite3_prepare_v2(db, ttt_sql, -1, &ttt, NULL) != SQLITE_OK) {
    snprintf(err, err_size, "reading runs: %s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  if (!isnan(o->target_loss))
    sqlite3_bind_double(st, 1, o->target_loss);
  int cap = 64;
  rrun *runs = calloc((size_t)cap, sizeof *runs);
  char axes[512] = ""; /* the swept parameters' names */
  *n = 0;
  wl_status rc = runs ? WL_OK : WL_ENOMEM;
  int step = SQLITE_DONE;
  while (rc == WL_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      rrun *grown = realloc(runs, (size_t)(cap *= 2) * sizeof *runs);
      if (!grown) {
        rc = WL_ENOMEM;
        break;
      }
      runs = grown;
    }
    rrun *r = &runs[*n];
    memset(r, 0, sizeof *r);
    (*n)++;
    r->id = sqlite3_column_int64(st, 0);
    snprintf(r->scenario, sizeof r->scenario, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(r->policy, sizeof r->policy, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(r->label, sizeof r->label, "%s", (const char *)sqlite3_column_text(st, 3));
    r->seed = sqlite3_column_int(st, 4);
    if (!run_key(each, r, (const char *)sqlite3_column_text(st, 5), o->group_by, axes,
                 sizeof axes)) {
      rc = WL_ENOMEM;
      break;
    }
    r->loss = an_db_real(st, 6);
    r->bytes = an_db_real(st, 7);
    r->target = an_db_real(st, 8);
    r->end = an_db_real(st, 9);
    snprintf(r->status, sizeof r->status, "%s", (const char *)sqlite3_column_text(st, 10));
    const char *id = (const char *)sqlite3_column_text(st, 11);
    snprintf(r->identity, sizeof r->identity, "%s", id ? id : "");
    double total = an_db_real(st, 12);
    for (int k = 0; k < N_SHARES; k++)
      r->share[k] = total > 0 ? an_db_real(st, 13 + k) / total : NAN;
    r->ttt = NAN;
    if (!isnan(r->target)) {
      sqlite3_bind_int64(ttt, 1, r->id);
      sqlite3_bind_double(ttt, 2, r->target);
      if (sqlite3_step(ttt) == SQLITE_ROW)
        r->ttt = an_db_real(ttt, 0);
      sqlite3_reset(ttt);
    }
  }
  if (rc == WL_OK && step != SQLITE_DONE) { /* an error, not the end: never a shorter table */
    snprintf(err, err_size, "reading runs (the one after run %lld): %s", *n > 0 ? runs[*n - 1].id
             : 0LL, sqlite3_errmsg(db));
    rc = WL_EDB;
  }
  sqlite3_finalize(st);
  sqlite3_finalize(each);
  sqlite3_finalize(ttt);
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

/* Runs by group, and in a group by seed, then identity: an order that does not depend on
 * the order in which the runs were stored (--jobs, --shard, merge), so that neither do the
 * means, sums and bootstrap draws. The id breaks ties between repeats of one run only. */
static int cmp_key_then_seed(const void *a, const void *b)
{
  const rrun *p = a, *q = b;
  int c = strcmp(p->key, q->key);
  if (!c)
    c = (p->seed > q->seed) - (p->seed < q->seed);
  if (!c)
    c = strcmp(p->identity, q->identity);
  return c ? c : (p->id > q->id) - (p->id < q->id);
}

/* Point texts in natural order: where both have a number, by its value ("H=8" < "H=16"). */
static int cmp_natural(const char *a, const char *b)
{
  while (*a && *b) {
    if ((*a >= '0' && *a <= '9') && (*b >= '0' && *b <= '9')) {
      char *ea, *eb;
      double x = strtod(a, &ea), y = strtod(b, &eb);
      if (x != y)
        return x < y ? -1 : 1;
      a = ea;
      b = eb;
      continue;
    }
    if (*a != *b)
      return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    a++;
    b++;
  }
  return (*a != 0) - (*b != 0);
}

/* A policy type's position in the registry (ddp first); unknown types after. */
static int type_rank(const char *policy)
{
  int k = 0;
  for (; opt_policy_registry[k]; k++)
    if (strcmp(opt_policy_registry[k]->name, policy) == 0)
      return k;
  return k;
}

/* Rows by scenario, swept values (natural order; a policy without the axes first), policy type
 * in the registry's order, label, seed: fixed by the data, not by the order runs were stored. */
static int cmp_groups(const void *a, const void *b)
{
  const rrun *p = ((const rgroup *)a)->first, *q = ((const rgroup *)b)->first;
  int c = strcmp(p->scenario, q->scenario);
  if (!c)
    c = cmp_natural(p->order, q->order);
  if (!c)
    c = type_rank(p->policy) - type_rank(q->policy);
  if (!c)
    c = strcmp(p->policy, q->policy);
  if (!c)
    c = strcmp(p->label, q->label);
  if (!c && p->by_seed)
    c = (p->seed > q->seed) - (p->seed < q->seed);
  return c ? c : strcmp(p->key, q->key);
}

/* Sort the runs by group and cut them into groups, ordered by cmp_groups; the groups'
 * values live in vals (2n, caller frees). A run repeating an earlier done run of its group
 * (same config, numerics and inputs: the same numbers) is not another observation. Returns
 * the number of groups, -1 out of memory. */
static int group_runs(rrun *runs, int n, rgroup **out, double **vals)
{
  qsort(runs, (size_t)n, sizeof *runs, cmp_key_then_seed);
  rgroup *g = calloc((size_t)n + 1, sizeof *g);
  double *v = malloc(2 * ((size_t)n + 1) * sizeof *v);
  *out = g;
  *vals = v;
  if (!g || !v)
    return -1;
  int ng = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 || strcmp(runs[i].key, runs[i - 1].key) != 0) {
      g[ng].first = &runs[i];
      g[ng].loss = v + i; /* the group's runs are contiguous from i */
      g[ng].time = v + n + 1 + i;
      ng++;
    }
    rgroup *gr = &g[ng - 1];
    rrun *r = &runs[i];
    gr->n_runs++;
    if (strcmp(r->status, "diverged") == 0) {
      gr->diverged++;
      continue;
    }
    if (strcmp(r->status, "failed") == 0) {
      gr->failed++;
      continue;
    }
    for (const rrun *q = gr->first; q < r; q++)
      r->dup |= strcmp(q->status, "done") == 0 && strcmp(q->identity, r->identity) == 0;
    if (r->dup)
      continue;
    gr->loss[gr->obs] = r->loss;
    gr->has_target |= !isnan(r->target);
    gr->time[gr->obs] = isnan(r->ttt) ? r->end : r->ttt; /* censored at the stop time */
    gr->never += !isnan(r->target) && isnan(r->ttt);
    gr->obs++;
    gr->bytes += isnan(r->bytes) ? 0 : r->bytes;
    if (!isnan(r->share[0])) {
      for (int s = 0; s < N_SHARES; s++)
        gr->share[s] += r->share[s];
      gr->n_share++;
    }
  }
  qsort(g, (size_t)ng, sizeof *g, cmp_groups);
  return ng;
}

/* Whether two runs' points agree on every grouping axis they share (and on the seed, when the
 * report groups by it: seed s is compared with the baseline's seed s). */
static int same_shared_axes(const rrun *a, const rrun *b)
{
  if (a->by_seed && a->seed != b->seed)
    return 0;
  for (int i = 0; i < a->n_axes; i++) /* an axis the rows pool is pooled on both sides */
    for (int j = 0; j < b->n_axes; j++)
      if (a->keyed[i] && b->keyed[j] && strcmp(a->axis[i], b->axis[j]) == 0 &&
          strcmp(a->value[i], b->value[j]) != 0)
        return 0;
  return 1;
}

/* The baseline's label in a scenario: --baseline, or the DDP policy's (the label "ddp" when
 * several DDP runs have labels of their own). NULL when there is none. */
static const char *baseline_label(const rgroup *g, int ng, const char *scenario,
                                  const char *wanted)
{
  const char *ddp = NULL;
  for (int k = 0; k < ng; k++) {
    const rrun *f = g[k].first;
    if (strcmp(f->scenario, scenario) != 0)
      continue;
    if (wanted && strcmp(f->label, wanted) == 0)
      return f->label;
    if (!wanted && strcmp(f->policy, "ddp") == 0 && (!ddp || strcmp(f->label, "ddp") == 0))
      ddp = f->label;
  }
  return wanted ? NULL : ddp;
}

/* The baseline's observations for group g: its runs at the same values of every axis both
 * have (pooled over the baseline's own axes, when it has some g lacks). Returns how many,
 * into times (the caller's buffer) and *censored (how many of them never reached). */
static int baseline_times(const rgroup *all, int ng, const rgroup *g, const char *label,
                          double *times, int *censored, const rgroup **matched)
{
  int m = 0, groups = 0;
  *censored = 0;
  for (int k = 0; k < ng; k++) {
    const rgroup *b = &all[k];
    if (strcmp(b->first->scenario, g->first->scenario) != 0 ||
        strcmp(b->first->label, label) != 0 ||
        !same_shared_axes(g->first, b->first))
      continue;
    if (groups++ == 0)
      *matched = b;
    for (int i = 0; i < b->obs; i++)
      times[m++] = b->time[i];
    *censored += b->never;
  }
  return groups > 1 ? -1 : m;
}

/* An axis of run b that run a lacks, or NULL. */
static const char *axis_lacking(const rrun *a, const rrun *b)
{
  for (int j = 0; j < b->n_axes; j++) {
    int has = !b->keyed[j];
    for (int i = 0; i < a->n_axes && !has; i++)
      has = strcmp(a->axis[i], b->axis[j]) == 0;
    if (!has)
      return b->axis[j];
  }
  return NULL;
}

/* The speedup's 95% interval: a percentile bootstrap over seeds (each side resampled with
 * replacement, 2000 times, ratio of means), from an mt19937 seeded by the group's and the
 * baseline's sizes and values, so the report is deterministic. */
static void bootstrap(const double *base, int nb, const double *grp, int ng, double *lo,
                      double *hi)
{
  *lo = *hi = NAN;
  if (nb < 2 || ng < 2)
    return;
  double *ratio = malloc(BOOTSTRAP * sizeof *ratio);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (!ratio || !r) {
    free(ratio);
    gsl_rng_free(r);
    return;
  }
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a of the data: the same data, the same draws */
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < (s ? ng : nb); i++) {
      uint64_t bits;
      memcpy(&bits, s ? &grp[i] : &base[i], sizeof bits);
      for (int k = 0; k < 8; k++) {
        h ^= (bits >> (8 * k)) & 0xff;
        h *= 0x100000001b3ULL;
      }
    }
  gsl_rng_set(r, (unsigned long)(((h >> 32) ^ h) & 0xffffffffUL) | 1);
  for (int k = 0; k < BOOTSTRAP; k++) {
    double sb = 0, sg = 0;
    for (int i = 0; i < nb; i++)
      sb += base[gsl_rng_uniform_int(r, (unsigned long)nb)];
    for (int i = 0; i < ng; i++)
      sg += grp[gsl_rng_uniform_int(r, (unsigned long)ng)];
    ratio[k] = (sb / nb) / (sg / ng);
  }
  for (int i = 1; i < BOOTSTRAP; i++) { /* insertion sort: deterministic, small */
    double x = ratio[i];
    int j = i - 1;
    for (; j >= 0 && ratio[j] > x; j--)
      ratio[j + 1] = ratio[j];
    ratio[j + 1] = x;
  }
  *lo = ratio[BOOTSTRAP / 40];                 /* the 2.5th percentile: index 50 */
  *hi = ratio[BOOTSTRAP - BOOTSTRAP / 40 - 1]; /* the 97.5th: index 1949 */
  free(ratio);
  gsl_rng_free(r);
}

/* One output row's values. */
typedef struct row {
  const rgroup *g;
  double loss, loss_ci, ttt, ttt_ci, speedup, sp_lo, sp_hi, bytes, share[N_SHARES];
  char ttt_bound;      /* '>' when some run never reached the target (a lower bound) */
  char sp_bound;       /* '>', '<', '?' (both sides censored), or 0 */
  const char *baseline;
  const char *ambiguous; /* no speedup: the baseline's runs differ in this axis, the row's lack it */
} row;

static void compute_row(const rgroup *all, int ng, const rgroup *g, const char *wanted,
                        double *scratch, row *out)
{
  memset(out, 0, sizeof *out);
  out->g = g;
  out->loss = an_mean(g->loss, g->obs);
  out->loss_ci = an_ci95(g->loss, g->obs);
  out->ttt = out->ttt_ci = out->speedup = out->sp_lo = out->sp_hi = NAN;
  if (g->has_target && g->obs > 0) {
    out->ttt = an_mean(g->time, g->obs);
    if (g->never > 0)
      out->ttt_bound = '>';
    else
      out->ttt_ci = an_ci95(g->time, g->obs);
  }
  out->bytes = g->obs ? g->bytes / g->obs : NAN;
  for (int s = 0; s < N_SHARES; s++)
    out->share[s] = g->n_share ? g->share[s] / g->n_share : NAN;
  const char *label = baseline_label(all, ng, g->first->scenario, wanted);
  out->baseline = label;
  if (!label || isnan(out->ttt))
    return;
  if (strcmp(g->first->label, label) == 0) {
    out->speedup = 1.0; /* the baseline itself */
    return;
  }
  const rgroup *b = NULL;
  int censored, nb = baseline_times(all, ng, g, label, scratch, &censored, &b);
  if (nb < 0) { /* the baseline varies along an axis this row lacks: no one reference */
    out->ambiguous = axis_lacking(g->first, b->first);
    return;
  }
  if (nb == 0)
    return;
  out->speedup = an_mean(scratch, nb) / out->ttt;
  if (censored && g->never)
    out->sp_bound = '?';
  else if (censored)
    out->sp_bound = '>'; /* the baseline's mean is a lower bound */
  else if (g->never)
    out->sp_bound = '<'; /* the group's mean is a lower bound */
  else
    bootstrap(scratch, nb, g->time, g->obs, &out->sp_lo, &out->sp_hi);
}

/* ---- output --------------------------------------------------------------------------- */

int an_utf8_len(const unsigned char *c)
{
  if (c[0] < 0x80)
    return 1;
  int len = c[0] >= 0xc2 && c[0] <= 0xdf ? 2 : c[0] >= 0xe0 && c[0] <= 0xef ? 3
            : c[0] >= 0xf0 && c[0] <= 0xf4 ? 4 : 0;
  /* the second byte's range: narrower after E0 (overlong), ED (surrogates), F0, F4 */
  unsigned char lo = c[0] == 0xe0 ? 0xa0 : c[0] == 0xf0 ? 0x90 : 0x80;
  unsigned char hi = c[0] == 0xed ? 0x9f : c[0] == 0xf4 ? 0x8f : 0xbf;
  if (len && (c[1] < lo || c[1] > hi))
    return 0;
  for (int k = 2; k < len; k++)
    if ((c[k] & 0xc0) != 0x80)
      return 0;
  return len;
}

void an_printable(const char *in, char *out, size_t size)
{
  size_t n = 0;
  for (const unsigned char *c = (const unsigned char *)in; *c && n + 9 < size; c++) {
    if (*c < 0x20 || *c == 0x7f) {
      n += (size_t)snprintf(out + n, size - n, "\\x%02x", *c);
    } else if (*c == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f) { /* a C1 control, U+0080..9F */
      n += (size_t)snprintf(out + n, size - n, "\\u%04x", c[1]);
      c++;
    } else {
      out[n++] = (char)*c;
    }
  }
  out[n] = '\0';
}

static void csv_field(FILE *out, const char *text, int first)
{
  if (!first)
    fputc(',', out);
  if (!strpbrk(text, ",\"\r\n")) {
    fputs(text, out);
    return;
  }
  fputc('"', out);
  for (const char *c = text; *c; c++) {
    if (*c == '"')
      fputc('"', out);
    fputc(*c, out);
  }
  fputc('"', out);
}

/* A JSON string: escapes, and valid UTF-8 only (an invalid byte becomes U+FFFD). */
static void json_string(FILE *out, const char *text)
{
  fputc('"', out);
  const unsigned char *c = (const unsigned char *)text;
  while (*c) {
    if (*c == '"' || *c == '\\') {
      fprintf(out, "\\%c", *c++);
    } else if (*c < 0x20 || *c == 0x7f) {
      fprintf(out, "\\u%04x", *c++);
    } else if (*c < 0x80) {
      fputc(*c++, out);
    } else {
      int len = *c >= 0xf0 && *c < 0xf5 ? 4 : *c >= 0xe0 ? 3 : *c >= 0xc2 && *c < 0xe0 ? 2 : 0;
      int ok = len > 0;
      for (int k = 1; ok && k < len; k++)
        ok = (c[k] & 0xc0) == 0x80;
      if (ok) {
        fwrite(c, 1, (size_t)len, out);
        c += len;
      } else {
        fputs("\\ufffd", out);
        c++;
      }
    }
  }
  fputc('"', out);
}

static void json_num(FILE *out, const char *name, double v)
{
  if (!isfinite(v)) /* (JSON has no inf) */
    fprintf(out, ", \"%s\": null", name);
  else
    fprintf(out, ", \"%s\": %.10g", name, v);
}

static void fmt_bytes(char *buf, size_t size, double b)
{
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  if (isnan(b)) {
    snprintf(buf, size, "-");
    return;
  }
  while (b >= 1000 && u < 6) {
    b /= 1000;
    u++;
  }
  snprintf(buf, size, "%.3g %s", b, units[u]);
}

static const char *const headers[] = {
  "scenario", "label", "point", "runs", "diverged", "failed", "final_loss",
  "time_to_target_s", "never", "speedup", "speedup_ci95", "bytes", "compute", "comm", "idle",
  "down", "blocked"};
enum { N_COLS = sizeof headers / sizeof headers[0] };

static void table_cells(const row *r, char cells[N_COLS][160])
{
  const rgroup *g = r->g;
  const rrun *f = g->first;
  an_printable(f->scenario, cells[0], 160);
  an_printable(f->label, cells[1], 160);
  an_printable(f->point[0] ? f->point : "-", cells[2], 160);
  snprintf(cells[3], 160, "%d", g->obs);
  snprintf(cells[4], 160, "%d", g->diverged);
  snprintf(cells[5], 160, "%d", g->failed);
  if (isnan(r->loss))
    snprintf(cells[6], 160, "-");
  else if (isnan(r->loss_ci))
    snprintf(cells[6], 160, "%.4f", r->loss);
  else
    snprintf(cells[6], 160, "%.4f ± %.4f", r->loss, r->loss_ci);
  if (isnan(r->ttt))
    snprintf(cells[7], 160, g->has_target ? "-" : "");
  else if (r->ttt_bound)
    snprintf(cells[7], 160, "> %.1f", r->ttt);
  else if (isnan(r->ttt_ci))
    snprintf(cells[7], 160, "%.1f", r->ttt);
  else
    snprintf(cells[7], 160, "%.1f ± %.1f", r->ttt, r->ttt_ci);
  if (g->has_target)
    snprintf(cells[8], 160, "%d", g->never);
  else
    cells[8][0] = '\0';
  if (isnan(r->speedup))
    snprintf(cells[9], 160, "-");
  else if (r->sp_bound == '?')
    snprintf(cells[9], 160, "?");
  else
    snprintf(cells[9], 160, "%s%.2fx", r->sp_bound == '>' ? "> " : r->sp_bound == '<' ? "< " : "",
             r->speedup);
  if (isnan(r->sp_lo))
    cells[10][0] = '\0';
  else
    snprintf(cells[10], 160, "[%.2f, %.2f]", r->sp_lo, r->sp_hi);
  fmt_bytes(cells[11], 160, r->bytes);
  for (int s = 0; s < N_SHARES; s++)
    snprintf(cells[12 + s], 160, isnan(r->share[s]) ? "-" : "%.3f", r->share[s]);
}

/* Numbers right, text left. */
static int right_aligned(int col) { return col >= 3 && col != 6 && col != 7 && col != 10; }

static size_t display_width(const char *s)
{
  size_t w = 0;
  for (const unsigned char *c = (const unsigned char *)s; *c; c++)
    w += (*c & 0xc0) != 0x80; /* count UTF-8 characters, not bytes */
  return w;
}

static void print_table(FILE *out, const row *rows, int n)
{
  size_t width[N_COLS];
  char(*cells)[N_COLS][160] = malloc((size_t)(n > 0 ? n : 1) * sizeof *cells);
  if (!cells)
    return;
  for (int c = 0; c < N_COLS; c++)
    width[c] = strlen(headers[c]);
  for (int i = 0; i < n; i++) {
    table_cells(&rows[i], cells[i]);
    for (int c = 0; c < N_COLS; c++)
      width[c] = display_width(cells[i][c]) > width[c] ? display_width(cells[i][c]) : width[c];
  }
  for (int i = -1; i < n; i++) {
    for (int c = 0; c < N_COLS; c++) {
      const char *text = i < 0 ? headers[c] : cells[i][c];
      int right = right_aligned(c);
      size_t pad = width[c] - display_width(text);
      if (right)
        fprintf(out, "%*s%s", (int)pad, "", text);
      else
        fprintf(out, "%s%*s", text, c == N_COLS - 1 ? 0 : (int)pad, "");
      fputs(c == N_COLS - 1 ? "\n" : "  ", out);
    }
  }
  free(cells);
}

static void print_html_table(FILE *out, const row *rows, int n)
{
  char cells[N_COLS][160];
  fputs("<table class=\"report\">\n<thead><tr>", out);
  for (int c = 0; c < N_COLS; c++)
    fprintf(out, "<th>%s</th>", headers[c]);
  fputs("</tr></thead>\n<tbody>\n", out);
  for (int i = 0; i < n; i++) {
    table_cells(&rows[i], cells);
    fputs("<tr>", out);
    for (int c = 0; c < N_COLS; c++) {
      fputs(right_aligned(c) ? "<td class=\"num\">" : "<td>", out);
      an_html_text(out, cells[c]);
      fputs("</td>", out);
    }
    fputs("</tr>\n", out);
  }
  fputs("</tbody>\n</table>\n", out);
}

static void print_csv_row(FILE *out, const row *r)
{
  const rgroup *g = r->g;
  const rrun *f = g->first;
  char num[64], bound[4];
  csv_field(out, f->scenario, 1);
  csv_field(out, f->label, 0);
  csv_field(out, f->policy, 0);
  csv_field(out, f->point, 0);
  const double v1[] = {g->obs, g->diverged, g->failed, r->loss, r->loss_ci, r->ttt, r->ttt_ci};
  for (size_t c = 0; c < sizeof v1 / sizeof v1[0]; c++) {
    snprintf(num, sizeof num, isnan(v1[c]) ? "" : "%.10g", v1[c]);
    csv_field(out, num, 0);
  }
  snprintf(bound, sizeof bound, "%s", r->ttt_bound ? ">" : "");
  csv_field(out, bound, 0);
  snprintf(num, sizeof num, g->has_target ? "%d" : "", g->never);
  csv_field(out, num, 0);
  const double v2[] = {r->speedup, r->sp_lo, r->sp_hi};
  for (size_t c = 0; c < 3; c++) {
    snprintf(num, sizeof num, isnan(v2[c]) || (c == 0 && r->sp_bound == '?') ? "" : "%.10g",
             v2[c]);
    csv_field(out, num, 0);
  }
  snprintf(bound, sizeof bound, "%s", r->sp_bound ? (char[]){r->sp_bound, 0} : "");
  csv_field(out, bound, 0);
  csv_field(out, r->baseline ? r->baseline : "", 0);
  const double v3[] = {r->bytes, r->share[0], r->share[1], r->share[2], r->share[3],
                       r->share[4]};
  for (size_t c = 0; c < sizeof v3 / sizeof v3[0]; c++) {
    snprintf(num, sizeof num, isnan(v3[c]) ? "" : "%.10g", v3[c]);
    csv_field(out, num, 0);
  }
  fputs("\r\n", out);
}

static void print_json_row(FILE *out, const row *r, int first)
{
  const rgroup *g = r->g;
  const rrun *f = g->first;
  fputs(first ? "\n  {\"scenario\": " : ",\n  {\"scenario\": ", out);
  json_string(out, f->scenario);
  fputs(", \"label\": ", out);
  json_string(out, f->label);
  fputs(", \"policy\": ", out);
  json_string(out, f->policy);
  fputs(", \"point\": ", out);
  json_string(out, f->point);
  fprintf(out, ", \"runs\": %d, \"diverged\": %d, \"failed\": %d", g->obs, g->diverged,
          g->failed);
  json_num(out, "final_loss", r->loss);
  json_num(out, "final_loss_ci95", r->loss_ci);
  json_num(out, "time_to_target_s", r->ttt);
  json_num(out, "time_to_target_ci95", r->ttt_ci);
  fprintf(out, ", \"time_to_target_bound\": %s", r->ttt_bound ? "\">\"" : "null");
  if (g->has_target)
    fprintf(out, ", \"never_reached\": %d", g->never);
  else
    fputs(", \"never_reached\": null", out);
  json_num(out, "speedup", r->sp_bound == '?' ? NAN : r->speedup);
  json_num(out, "speedup_ci_low", r->sp_lo);
  json_num(out, "speedup_ci_high", r->sp_hi);
  if (r->sp_bound)
    fprintf(out, ", \"speedup_bound\": \"%c\"", r->sp_bound);
  else
    fputs(", \"speedup_bound\": null", out);
  fputs(", \"baseline\": ", out);
  if (r->baseline)
    json_string(out, r->baseline);
  else
    fputs("null", out);
  json_num(out, "bytes", r->bytes);
  static const char *const names[N_SHARES] = {"compute_share", "comm_share", "idle_share",
                                              "down_share", "blocked_share"};
  for (int s = 0; s < N_SHARES; s++)
    json_num(out, names[s], r->share[s]);
  fputs("}", out);
}

/* The notes a reader needs to trust the rows: groups that pool runs of different swept
 * values, a baseline chosen among several DDP policies, rows left without a speedup. */
static void print_notes(FILE *notes, const rgroup *g, int ng, const row *rows,
                        const char *wanted)
{
  char said[1024] = "\x1f"; /* the axes noted so far, each between two \x1f */
  int labels = 0;
  for (int k = 0; k < ng; k++) { /* pooled axes, each named once */
    const rrun *f = g[k].first;
    for (const rrun *r = f + 1; r < f + g[k].n_runs; r++) {
      if (strcmp(r->label, f->label) != 0 && !labels++)
        fprintf(notes, "note: rows pool the runs of several labels of one policy type (%s, %s, "
                "...), as --group-by policy asks\n", f->label, r->label);
      for (int i = 0; i < r->n_axes; i++) {
        int same = 0;
        for (int j = 0; j < f->n_axes && !same; j++)
          same = strcmp(f->axis[j], r->axis[i]) == 0 && strcmp(f->value[j], r->value[i]) == 0;
        char mark[160];
        snprintf(mark, sizeof mark, "\x1f%s\x1f", r->axis[i]);
        size_t len = strlen(said);
        if (same || strstr(said, mark) || len + strlen(mark) >= sizeof said)
          continue;
        snprintf(said + len, sizeof said - len, "%s", mark + 1);
        fprintf(notes, "note: rows pool runs with different values of %s, which --group-by "
                "leaves out\n", r->axis[i]);
      }
    }
  }
  for (int k = 0; !wanted && k < ng; k++) { /* several DDP policies, none labelled ddp */
    const char *chosen = rows[k].baseline;
    if (!chosen || (k > 0 && strcmp(g[k - 1].first->scenario, g[k].first->scenario) == 0))
      continue;
    for (int j = 0; j < ng; j++)
      if (strcmp(g[j].first->scenario, g[k].first->scenario) == 0 &&
          strcmp(g[j].first->policy, "ddp") == 0 && strcmp(g[j].first->label, chosen) != 0) {
        fprintf(notes, "note: scenario '%s' has several DDP policies; speedups are against "
                "'%s' (choose with --baseline)\n", g[k].first->scenario, chosen);
        break;
      }
  }
  for (int k = 0; k < ng; k++)
    if (rows[k].ambiguous) {
      fprintf(notes, "note: no speedup for rows without the axis %s, along which the baseline "
              "'%s' has several runs: sweep both on one axis (\"a.H,b.H\") or add it to "
              "--group-by\n", rows[k].ambiguous, rows[k].baseline);
      break;
    }
}

wl_status an_report(const char *db_path, const an_report_opts *opts, FILE *out, char *err,
                    size_t err_size)
{
  /* every row is one scenario's and one policy's: scenario always, label unless policy */
  an_report_opts o_ = *opts, *o = &o_;
  char group_by[512];
  if (opts->group_by) {
    size_t n = strlen(opts->group_by);
    if (!n || opts->group_by[0] == ',' || opts->group_by[n - 1] == ',' ||
        strstr(opts->group_by, ",,")) {
      snprintf(err, err_size, "--group-by: expected a comma-separated list of keys, got '%s'",
               opts->group_by);
      return WL_ECONFIG;
    }
    snprintf(group_by, sizeof group_by, "%s%s%s",
             has_key(opts->group_by, "scenario") ? "" : "scenario,",
             has_key(opts->group_by, "label") || has_key(opts->group_by, "policy") ? ""
                                                                                : "label,",
             opts->group_by);
    o->group_by = group_by;
  }
  sqlite3 *db;
  wl_status rc = an_db_open_runs(db_path, o->scenario, &db, err, err_size);
  if (rc != WL_OK)
    return rc;
  rrun *runs = NULL;
  int n = 0;
  rc = load_runs(db, o, &runs, &n, err, err_size);
  rgroup *g = NULL;
  double *vals = NULL, *scratch = malloc(((size_t)n + 1) * sizeof *scratch);
  row *rows = NULL;
  int ng = rc == WL_OK ? group_runs(runs, n, &g, &vals) : 0;
  if (rc == WL_OK && (ng < 0 || !scratch || !(rows = calloc((size_t)ng + 1, sizeof *rows))))
    rc = WL_ENOMEM;
  if (rc == WL_OK && o->baseline) {
    int found = 0;
    for (int k = 0; k < ng; k++)
      found |= strcmp(g[k].first->label, o->baseline) == 0;
    if (!found) {
      snprintf(err, err_size, "--baseline: no runs labelled '%s'", o->baseline);
      rc = WL_ECONFIG;
    }
  }
  if (rc == WL_OK && o->notes) { /* runs that will never end: their process is gone */
    sqlite3_stmt *st;
    long lost = 0;
    if (sqlite3_prepare_v2(db, "SELECT host, pid, started_at FROM runs WHERE status = 'running'",
                           -1, &st, NULL) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW)
        lost += an_run_is_lost((const char *)sqlite3_column_text(st, 0),
                               sqlite3_column_type(st, 1) == SQLITE_NULL
                                 ? 0 : sqlite3_column_int64(st, 1),
                               (const char *)sqlite3_column_text(st, 2));
      sqlite3_finalize(st);
    }
    if (lost)
      fprintf(o->notes, "note: %ld run%s lost: still `running`, but the process that wrote %s "
              "is gone (killed, or its disk filled); the table leaves %s out, and a sweep runs "
              "%s config%s again\n", lost, lost == 1 ? " is" : "s are", lost == 1 ? "it" : "them",
              lost == 1 ? "it" : "them", lost == 1 ? "its" : "their", lost == 1 ? "" : "s");
  }
  sqlite3_close(db);
  for (int k = 0; rc == WL_OK && k < ng; k++)
    compute_row(g, ng, &g[k], o->baseline, scratch, &rows[k]);
  if (rc == WL_OK && o->notes)
    print_notes(o->notes, g, ng, rows, o->baseline);
  if (rc == WL_OK && o->format == AN_FORMAT_TABLE) {
    print_table(out, rows, ng);
  } else if (rc == WL_OK && o->format == AN_FORMAT_HTML) {
    print_html_table(out, rows, ng);
  } else if (rc == WL_OK && o->format == AN_FORMAT_CSV) {
    fputs("scenario,label,policy,point,runs,diverged,failed,final_loss,final_loss_ci95,"
          "time_to_target_s,time_to_target_ci95,time_to_target_bound,never_reached,speedup,"
          "speedup_ci_low,speedup_ci_high,speedup_bound,baseline,bytes,compute_share,"
          "comm_share,idle_share,down_share,blocked_share\r\n", out);
    for (int k = 0; k < ng; k++)
      print_csv_row(out, &rows[k]);
  } else if (rc == WL_OK) {
    fputs("[", out);
    for (int k = 0; k < ng; k++)
      print_json_row(out, &rows[k], k == 0);
    fputs(ng ? "\n]\n" : "]\n", out);
  }
  free(rows);
  free(scratch);
  free(vals);
  free(g);
  free_runs(runs, n);
  return rc;
}
