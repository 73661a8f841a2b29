#include "sim_cluster.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "wl_math.h"
#include "wl_rand.h"

#include "sim_csv.h"
#include "sim_rng.h"

void sim_cluster_draw_speeds(const sim_speed_config *s, int K, gsl_rng *r, double *speed)
{
  static const double preset_sigma[] = {0.0, 0.15, 0.4, 0.8}; /* none, slight, moderate, very */
  switch (s->dist) {
  case SIM_SPEED_NONE:
  case SIM_SPEED_SLIGHT:
  case SIM_SPEED_MODERATE:
  case SIM_SPEED_VERY:
  case SIM_SPEED_LOGNORMAL: {
    double sigma = s->dist == SIM_SPEED_LOGNORMAL ? s->sigma : preset_sigma[s->dist];
    for (int w = 0; w < K; w++)
      speed[w] = sigma > 0 ? wl_exp(wl_ran_gaussian(r, sigma)) : 1.0;
    return;
  }
  case SIM_SPEED_UNIFORM:
    for (int w = 0; w < K; w++)
      speed[w] = s->min + (s->max - s->min) * gsl_rng_uniform(r);
    return;
  case SIM_SPEED_GAMMA:
    for (int w = 0; w < K; w++)
      speed[w] = wl_ran_gamma(r, s->shape, 1.0 / s->shape);
    return;
  case SIM_SPEED_TWO_CLASS: {
    int slow = (int)floor(s->slow_fraction * K + 0.5);
    int *order = malloc((size_t)K * sizeof *order);
    WL_ASSERT(order != NULL);
    for (int w = 0; w < K; w++)
      order[w] = w;
    gsl_ran_shuffle(r, order, (size_t)K, sizeof *order);
    for (int w = 0; w < K; w++)
      speed[w] = 1.0;
    for (int i = 0; i < slow; i++)
      speed[order[i]] = s->slow_speed;
    free(order);
    return;
  }
  }
  WL_ASSERT(!"unknown speed distribution");
}

static wl_status load_empirical(sim_cluster *c, const char *path, char *err, size_t err_size);

wl_status sim_cluster_init(sim_cluster *c, const sim_compute_config *cfg, int K, uint64_t seed,
                           double flops_per_step, char *err, size_t err_size)
{
  memset(c, 0, sizeof *c);
  c->K = K;
  c->jitter = cfg->jitter;
  c->step_time_s = cfg->step_time_s;
  if (!isnan(cfg->device_tflops)) {
    double flops = isnan(cfg->flops_per_step) ? flops_per_step : cfg->flops_per_step;
    if (!(flops > 0)) {
      snprintf(err, err_size, "cluster.compute.flops_per_step: expected a FLOP count to derive "
                              "the step time from (the workload declares none), got null");
      return WL_ECONFIG;
    }
    c->step_time_s = flops / (cfg->device_tflops * 1e12 * cfg->utilization);
  }
  c->speed = malloc((size_t)K * sizeof *c->speed);
  c->step_ns = malloc((size_t)K * sizeof *c->step_ns);
  if (!c->speed || !c->step_ns)
    return WL_ENOMEM;
  if (cfg->n_speeds) {
    memcpy(c->speed, cfg->speeds, (size_t)K * sizeof *c->speed);
  } else {
    gsl_rng *r = sim_rng_create(seed, SIM_RNG_SPEED, 0);
    if (!r)
      return WL_ENOMEM;
    sim_cluster_draw_speeds(&cfg->speed, K, r, c->speed);
    gsl_rng_free(r);
  }
  for (int w = 0; w < K; w++)
    c->step_ns[w] = sim_time_period_from_s(c->step_time_s / c->speed[w]);
  if (c->jitter.dist != SIM_JITTER_NONE) {
    if (!(c->jitter_rng = calloc((size_t)K, sizeof *c->jitter_rng)))
      return WL_ENOMEM;
    for (int w = 0; w < K; w++)
      if (!(c->jitter_rng[w] = sim_rng_create(seed, SIM_RNG_JITTER, (uint32_t)w)))
        return WL_ENOMEM;
    if (c->jitter.dist == SIM_JITTER_EMPIRICAL) {
      char why[768] = "";
      wl_status st = load_empirical(c, cfg->jitter.file, why, sizeof why);
      if (st != WL_OK) {
        snprintf(err, err_size, "cluster.compute.jitter.file: %s", why[0] ? why : wl_strerror(st));
        return st;
      }
    }
  }
  c->straggle = cfg->stragglers;
  c->varies = cfg->trace[0] != '\0' || cfg->stragglers.rate_per_s > 0;
  if (cfg->trace[0]) {
    if (!(c->trace = calloc((size_t)K, sizeof *c->trace)))
      return WL_ENOMEM;
    wl_status st = sim_trace_load(cfg->trace, K, c->trace, err, err_size);
    if (st != WL_OK)
      return st;
  }
  if (cfg->stragglers.rate_per_s > 0) {
    c->straggle_rng = calloc((size_t)K, sizeof *c->straggle_rng);
    c->ep_start = malloc((size_t)K * sizeof *c->ep_start);
    c->ep_end = malloc((size_t)K * sizeof *c->ep_end);
    if (!c->straggle_rng || !c->ep_start || !c->ep_end)
      return WL_ENOMEM;
    c->q_straggle_rng = calloc((size_t)K, sizeof *c->q_straggle_rng);
    c->q_ep_start = malloc((size_t)K * sizeof *c->q_ep_start);
    c->q_ep_end = malloc((size_t)K * sizeof *c->q_ep_end);
    if (!c->q_straggle_rng || !c->q_ep_start || !c->q_ep_end)
      return WL_ENOMEM;
    for (int w = 0; w < K; w++) {
      if (!(c->straggle_rng[w] = sim_rng_create(seed, SIM_RNG_STRAGGLER, (uint32_t)w)) ||
          !(c->q_straggle_rng[w] = gsl_rng_clone(c->straggle_rng[w])))
        return WL_ENOMEM;
      c->ep_end[w] = c->q_ep_end[w] = 0.0; /* the first episode is drawn on first use */
      c->ep_start[w] = c->q_ep_start[w] = -1.0;
    }
  }
  if (!(c->q_pos = malloc((size_t)K * sizeof *c->q_pos)))
    return WL_ENOMEM;
  for (int w = 0; w < K; w++)
    c->q_pos[w] = -1;
  for (int w = 0; w < K; w++)
    c->speed_max = fmax(c->speed_max, c->speed[w]);
  if (c->varies) {
    for (c->tree_size = 1; c->tree_size < K; c->tree_size *= 2)
      ;
    c->tree = calloc(2 * (size_t)c->tree_size, sizeof *c->tree);
    c->change_t = malloc((size_t)K * sizeof *c->change_t);
    c->change_w = malloc((size_t)K * sizeof *c->change_w);
    if (!c->tree || !c->change_t || !c->change_w)
      return WL_ENOMEM;
  }
  return WL_OK;
}

void sim_cluster_free(sim_cluster *c)
{
  if (c->trace)
    sim_trace_free(c->trace, c->K);
  free(c->trace);
  for (int w = 0; c->straggle_rng && w < c->K; w++)
    gsl_rng_free(c->straggle_rng[w]);
  free(c->straggle_rng);
  for (int w = 0; c->q_straggle_rng && w < c->K; w++)
    gsl_rng_free(c->q_straggle_rng[w]);
  free(c->q_straggle_rng);
  free(c->q_ep_start);
  free(c->q_ep_end);
  free(c->q_pos);
  free(c->tree);
  free(c->change_t);
  free(c->change_w);
  free(c->ep_start);
  free(c->ep_end);
  for (int w = 0; c->jitter_rng && w < c->K; w++)
    gsl_rng_free(c->jitter_rng[w]);
  free(c->jitter_rng);
  free(c->jit_factor);
  free(c->jit_first);
  free(c->speed);
  free(c->step_ns);
  memset(c, 0, sizeof *c);
}

/* Empirical jitter: the file's times as factors of mean 1, worker by worker (rows with a
 * worker column) and pooled; a worker without rows of its own draws from the pool. */
static wl_status load_empirical(sim_cluster *c, const char *path, char *err, size_t err_size)
{
  sim_csv csv;
  wl_status st = sim_csv_open(&csv, path, err, err_size);
  if (st != WL_OK)
    return st;
  long n = 0, cap = 0;
  double *t = NULL;
  int *who = NULL, rc, columns = 0;
  st = WL_OK;
  while ((rc = sim_csv_next(&csv, "worker", err, err_size)) == 1) {
    double w = -1, s;
    if (csv.n_fields == 1 && strcmp(csv.field[0], "seconds") == 0 && n == 0 && !columns)
      continue; /* a 'seconds' header */
    if (columns && csv.n_fields != columns) {
      snprintf(err, err_size, "%s:%d: expected %d field%s like the rows before, got %d",
               path, csv.lineno, columns, columns == 1 ? "" : "s", csv.n_fields);
      st = WL_ECONFIG;
      break;
    }
    columns = csv.n_fields;
    int ok = (columns == 1 && sim_csv_number(csv.field[0], &s)) ||
             (columns == 2 && sim_csv_number(csv.field[0], &w) && sim_csv_number(csv.field[1], &s) &&
              w >= 0 && w == floor(w) && w < 1e9);
    if (!ok || !(s > 0)) {
      snprintf(err, err_size, "%s:%d: expected 'worker,seconds' or 'seconds': a worker from 0 "
               "and a step time above 0, got \"%.60s\"", path, csv.lineno, csv.raw);
      st = WL_ECONFIG;
      break;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 1024;
      double *nt = realloc(t, (size_t)cap * sizeof *t);
      int *nw = nt ? realloc(who, (size_t)cap * sizeof *who) : NULL;
      if (nt)
        t = nt;
      if (nw)
        who = nw;
      if (!nt || !nw) {
        st = WL_ENOMEM;
        break;
      }
    }
    t[n] = s;
    who[n++] = (int)w;
  }
  if (rc < 0)
    st = WL_ECONFIG;
  sim_csv_close(&csv);
  if (st == WL_OK && n == 0) {
    snprintf(err, err_size, "%s: no step times in it", path);
    st = WL_ECONFIG;
  }
  /* factors: each worker's rows in file order, then the pool (all rows) */
  int K = c->K;
  long own = 0;
  for (long i = 0; st == WL_OK && i < n; i++)
    own += who[i] >= 0 && who[i] < K;
  if (st == WL_OK &&
      (!(c->jit_factor = malloc((size_t)(own + n) * sizeof *c->jit_factor)) ||
       !(c->jit_first = calloc(2 * (size_t)K, sizeof *c->jit_first))))
    st = WL_ENOMEM;
  double *sum = st == WL_OK ? calloc((size_t)K, sizeof *sum) : NULL;
  if (st == WL_OK && !sum)
    st = WL_ENOMEM;
  if (st == WL_OK) { /* each worker's rows (in file order) from jit_first[w], then the pool */
    c->jit_n = c->jit_first + K;
    double all = 0;
    for (long i = 0; i < n; i++) {
      all += t[i];
      if (who[i] >= 0 && who[i] < K)
        sum[who[i]] += t[i], c->jit_n[who[i]]++;
    }
    for (int w = 1; w < K; w++)
      c->jit_first[w] = c->jit_first[w - 1] + c->jit_n[w - 1];
    for (int w = 0; w < K; w++) /* sum[w] becomes worker w's mean */
      sum[w] = c->jit_n[w] ? sum[w] / (double)c->jit_n[w] : 1.0;
    for (long i = 0; i < n; i++)
      if (who[i] >= 0 && who[i] < K)
        c->jit_factor[c->jit_first[who[i]]++] = t[i] / sum[who[i]];
    for (int w = 0; w < K; w++) /* (jit_first moved past each worker's rows: back) */
      c->jit_first[w] -= c->jit_n[w];
    for (long i = 0; i < n; i++)
      c->jit_factor[own + i] = t[i] / (all / (double)n);
    for (int w = 0; w < K; w++)
      if (c->jit_n[w] == 0)
        c->jit_first[w] = own, c->jit_n[w] = n;
  }
  free(sum);
  free(t);
  free(who);
  return st;
}

static double jitter_factor(const sim_cluster *c, int w)
{
  const sim_jitter_config *j = &c->jitter;
  gsl_rng *r = c->jitter_rng[w];
  if (j->dist == SIM_JITTER_EMPIRICAL)
    return c->jit_factor[c->jit_first[w] +
                         (long)gsl_rng_uniform_int(r, (unsigned long)c->jit_n[w])];
  if (j->dist == SIM_JITTER_LOGNORMAL)
    return wl_exp(wl_ran_gaussian(r, j->sigma) - 0.5 * j->sigma * j->sigma);
  return 1.0 + j->width * (2.0 * gsl_rng_uniform(r) - 1.0);
}

/* One worker's episode state (the current or next episode) moved forward so that it ends
 * after t, drawing from r. */
static void straggle_advance(const sim_straggler_config *s, gsl_rng *r, double *start,
                             double *end, double t)
{
  while (*end <= t) {
    double gap = wl_ran_exponential(r, 1.0 / s->rate_per_s);
    double len = s->duration_dist == SIM_DURATION_EXPONENTIAL
                   ? wl_ran_exponential(r, s->duration_s)
                   : s->duration_s;
    *start = *end + gap;
    *end = *start + len;
  }
}

/* The speed of worker w at time t, and the next time it may change (> t), following the
 * trace position *pos and the episode state (r, start, end). */
static double speed_with(sim_cluster *c, int w, double t, double *next, int *pos, gsl_rng *r,
                         double *start, double *end)
{
  double v = c->speed[w];
  *next = INFINITY;
  if (c->trace) {
    const sim_trace *tr = &c->trace[w];
    while (*pos + 1 < tr->n && tr->t[*pos + 1] <= t)
      (*pos)++;
    if (*pos >= 0)
      v *= tr->f[*pos];
    if (*pos + 1 < tr->n)
      *next = tr->t[*pos + 1];
  }
  if (r) {
    straggle_advance(&c->straggle, r, start, end, t);
    if (t >= *start) {
      v /= c->straggle.slowdown;
      *next = fmin(*next, *end);
    } else {
      *next = fmin(*next, *start);
    }
  }
  return v;
}

/* The speed of worker w at time t for its jobs, and the next time it may change. */
static double speed_at(sim_cluster *c, int w, double t, double *next)
{
  int dummy = -1;
  return speed_with(c, w, t, next, c->trace ? &c->trace[w].pos : &dummy,
                    c->straggle_rng ? c->straggle_rng[w] : NULL,
                    c->ep_start ? &c->ep_start[w] : NULL, c->ep_end ? &c->ep_end[w] : NULL);
}

/* Worker w's speed at t as questions about now follow it, and when it next changes. */
static double speed_query(sim_cluster *c, int w, double t, double *next)
{
  return speed_with(c, w, t, next, &c->q_pos[w],
                    c->q_straggle_rng ? c->q_straggle_rng[w] : NULL,
                    c->q_ep_start ? &c->q_ep_start[w] : NULL,
                    c->q_ep_end ? &c->q_ep_end[w] : NULL);
}

double sim_cluster_speed_now(sim_cluster *c, int w, double t)
{
  double next;
  return speed_query(c, w, t, &next);
}

static void tree_set(sim_cluster *c, int w, double v)
{
  int i = c->tree_size + w;
  c->tree[i] = v;
  for (i /= 2; i >= 1; i /= 2)
    c->tree[i] = fmax(c->tree[2 * i], c->tree[2 * i + 1]);
}

/* The heap of next changes, earliest first (ties: the lower worker). */
static int change_less(const sim_cluster *c, int a, int b)
{
  return c->change_t[a] < c->change_t[b] ||
         (c->change_t[a] == c->change_t[b] && c->change_w[a] < c->change_w[b]);
}

static void change_swap(sim_cluster *c, int a, int b)
{
  double t = c->change_t[a];
  int w = c->change_w[a];
  c->change_t[a] = c->change_t[b], c->change_w[a] = c->change_w[b];
  c->change_t[b] = t, c->change_w[b] = w;
}

static void change_push(sim_cluster *c, double t, int w)
{
  int i = c->n_changes++;
  c->change_t[i] = t, c->change_w[i] = w;
  for (; i > 0 && change_less(c, i, (i - 1) / 2); i = (i - 1) / 2)
    change_swap(c, i, (i - 1) / 2);
}

static void change_pop(sim_cluster *c)
{
  change_swap(c, 0, --c->n_changes);
  for (int i = 0;;) {
    int m = i, l = 2 * i + 1;
    if (l < c->n_changes && change_less(c, l, m))
      m = l;
    if (l + 1 < c->n_changes && change_less(c, l + 1, m))
      m = l + 1;
    if (m == i)
      break;
    change_swap(c, i, m);
    i = m;
  }
}

/* Each worker's speed in the tree is refreshed when it changes (the heap says when). */
double sim_cluster_speed_max(sim_cluster *c, double t)
{
  if (!c->varies)
    return c->speed_max;
  double next;
  if (!c->started) {
    c->started = 1;
    for (int w = 0; w < c->K; w++) {
      tree_set(c, w, speed_query(c, w, t, &next));
      if (isfinite(next))
        change_push(c, next, w);
    }
  }
  while (c->n_changes > 0 && c->change_t[0] <= t) {
    int w = c->change_w[0];
    change_pop(c);
    tree_set(c, w, speed_query(c, w, t, &next));
    if (isfinite(next))
      change_push(c, next, w);
  }
  return c->tree[1];
}

sim_time sim_cluster_job_end(sim_cluster *c, int w, sim_time start, long steps)
{
  if (!c->varies) {
    if (c->jitter.dist == SIM_JITTER_NONE)
      return sim_time_add(start, sim_time_mul(c->step_ns[w], steps));
    sim_time total = 0;
    double base = c->step_time_s / c->speed[w];
    for (long i = 0; i < steps; i++)
      total = sim_time_add(total, sim_time_period_from_s(base * jitter_factor(c, w)));
    return sim_time_add(start, total);
  }
  double work = 0; /* seconds at speed 1 */
  for (long i = 0; i < steps; i++)
    work += c->step_time_s *
            (c->jitter.dist == SIM_JITTER_NONE ? 1.0 : jitter_factor(c, w));
  double t0 = sim_time_to_s(start), t = t0;
  while (work > 0) {
    double next, v = speed_at(c, w, t, &next);
    if (v * (next - t) >= work) {
      t += work / v;
      break;
    }
    work -= v * (next - t);
    t = next;
  }
  return sim_time_add(start, steps > 0 ? sim_time_period_from_s(t - t0) : 0);
}

void sim_trace_free(sim_trace *trace, int K)
{
  for (int w = 0; w < K; w++) {
    free(trace[w].t);
    free(trace[w].f);
    trace[w] = (sim_trace){0, 0, NULL, NULL, -1};
  }
}

/* Append (t, f) to one worker's trace (capacity doubling: linear in the trace's length). */
static wl_status trace_push(sim_trace *tr, double t, double f)
{
  if (tr->n == tr->cap) {
    int cap = tr->cap ? 2 * tr->cap : 4;
    double *nt = realloc(tr->t, (size_t)cap * sizeof *nt);
    if (!nt)
      return WL_ENOMEM;
    tr->t = nt;
    double *nf = realloc(tr->f, (size_t)cap * sizeof *nf);
    if (!nf)
      return WL_ENOMEM;
    tr->f = nf;
    tr->cap = cap;
  }
  tr->t[tr->n] = t;
  tr->f[tr->n] = f;
  tr->n++;
  return WL_OK;
}

double sim_trace_memory(const char *path, int K)
{
  sim_csv c;
  char err[256];
  double entries = 0;
  if (sim_csv_open(&c, path, err, sizeof err) != WL_OK)
    return 0;
  while (sim_csv_next(&c, "time_s", err, sizeof err) > 0)
    entries += c.n_fields == 3 && strcmp(c.field[1], "*") == 0 ? K : 1;
  sim_csv_close(&c);
  return entries * 2 * 2 * sizeof(double); /* t and f, capacity up to twice the count */
}

wl_status sim_trace_load(const char *path, int K, sim_trace *trace, char *err,
                         size_t err_size)
{
  for (int w = 0; trace && w < K; w++)
    trace[w] = (sim_trace){0, 0, NULL, NULL, -1};
  double *last = malloc((size_t)K * sizeof *last); /* each worker's last change time */
  if (!last)
    return WL_ENOMEM;
  for (int w = 0; w < K; w++)
    last[w] = -1;
  sim_csv c;
  wl_status st = sim_csv_open(&c, path, err, err_size);
  int got;
  while (st == WL_OK && (got = sim_csv_next(&c, "time_s", err, err_size)) != 0) {
    if (got < 0) {
      st = WL_ECONFIG;
      break;
    }
    double t, factor;
    char *end;
    const char *who = c.n_fields == 3 ? c.field[1] : "";
    long w = strtol(who, &end, 10);
    int all = strcmp(who, "*") == 0;
    if (c.n_fields != 3 || !sim_csv_number(c.field[0], &t) || !(t >= 0) ||
        !sim_csv_number(c.field[2], &factor) || !(factor > 0) ||
        (!all && (!*who || *end != '\0' || w < 0 || w >= K))) {
      snprintf(err, err_size, "%s:%d: expected time_s,worker,speed with a time >= 0, a worker "
               "in [0, %d) or *, and a speed > 0 (finite numbers), got \"%.60s\"", path,
               c.lineno, K, c.raw);
      st = WL_ECONFIG;
      break;
    }
    for (int k = all ? 0 : (int)w; st == WL_OK && k <= (all ? K - 1 : (int)w); k++) {
      if (t < last[k]) {
        snprintf(err, err_size, "%s:%d: expected times in nondecreasing order per worker, "
                 "got %g after %g", path, c.lineno, t, last[k]);
        st = WL_ECONFIG;
      } else {
        last[k] = t;
        if (trace)
          st = trace_push(&trace[k], t, factor);
      }
    }
  }
  sim_csv_close(&c);
  free(last);
  if (st != WL_OK && trace)
    sim_trace_free(trace, K);
  return st;
}
