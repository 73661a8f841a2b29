/* cli_calibrate_compute — `syncsim calibrate compute`: the step time, its spread and the
 * workers' speeds, measured.
 *
 * Either syncsim times its own training step of the scenario's model (batch gather, forward,
 * backward, the first policy's inner optimizer update) with K workers stepping at once, each
 * on its own thread and model workspace, as K training processes share a host; or it reads
 * step times measured elsewhere (--times: 'worker,seconds' lines, from a training loop of
 * the user's own framework). From either:
 *   step_time_s = the mean step time (the fastest worker's, when the workers differ): the
 *                 simulated jitter has mean 1, so the mean, not the median, keeps the total;
 *   speeds      = fastest mean / each worker's mean, when the slowest and the fastest differ
 *                 by more than 2% and by more than 3 standard errors of their difference;
 *   jitter      = lognormal, sigma the standard deviation of log(t / the worker's geometric
 *                 mean), pooled over workers. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gsl/gsl_sort.h>

#include "cli.h"
#include "opt_optim.h"
#include "scn_load.h"
#include "sim_runner.h"
#include "sim_rng.h"
#include "wl_model.h"

enum { MAX_WORKERS = 256, MAX_TIMED_WORKERS = 4096 }; /* measured here; read from a file */

typedef struct worker {
  const sim_config *cfg;
  const wl_dataset *d;
  pthread_barrier_t *start;
  int index, warmup, steps;
  double *times; /* (steps) seconds */
  int failed;
} worker;

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One worker: its model, parameters, gradients, optimizer state and batches; warmup + steps
 * training steps, each timed. */
static void *work(void *arg)
{
  worker *w = arg;
  const wl_workload_config *wc = &w->cfg->workload;
  const opt_optim_config *opt = &w->cfg->policy.inner;
  wl_model *m = NULL;
  wl_batch b = {0};
  int B = wc->batch_size;
  gsl_rng *r = sim_rng_create((uint64_t)w->cfg->seed, SIM_RNG_BATCHES, (uint32_t)w->index);
  int ok = r && wl_model_create(&wc->model, w->d, B, &m) == WL_OK &&
           wl_batch_init(&b, w->d, B) == WL_OK;
  size_t n = ok ? wl_model_nparams(m) : 0, sf = (size_t)opt_optim_state_floats(opt);
  float *p = ok ? malloc((2 + sf) * n * sizeof(float) + 1) : NULL;
  int32_t *idx = malloc((size_t)B * sizeof *idx);
  ok = ok && p && idx;
  if (ok) {
    memset(p, 0, (2 + sf) * n * sizeof(float));
    wl_model_init(m, p, r);
  }
  pthread_barrier_wait(w->start); /* every worker steps at once */
  for (int s = 0; ok && s < w->warmup + w->steps; s++) {
    double t0 = now_s();
    for (int j = 0; j < B; j++)
      idx[j] = (int32_t)gsl_rng_uniform_int(r, (unsigned long)w->d->n_train);
    wl_dataset_gather(w->d, 0, idx, NULL, B, &b);
    wl_model_step(m, p, p + n, &b);
    opt_optim_step(opt, p, p + n, p + 2 * n, s + 1, opt->lr, n);
    double t1 = now_s();
    if (s >= w->warmup)
      w->times[s - w->warmup] = t1 - t0;
  }
  w->failed = !ok;
  free(p);
  free(idx);
  wl_batch_free(&b);
  wl_model_destroy(m);
  gsl_rng_free(r);
  return NULL;
}

/* Measured step times: per worker, a list. */
typedef struct times {
  double *t[MAX_TIMED_WORKERS];
  int n[MAX_TIMED_WORKERS];
  int K;
} times;

static void times_free(times *T)
{
  for (int k = 0; k < T->K; k++)
    free(T->t[k]);
}

/* Read 'worker,seconds' (or 'seconds': one worker) lines; 0 with a message on error. */
static int read_times(const char *path, times *T)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "syncsim: calibrate compute: %s: %s\n", path, strerror(errno));
    return 0;
  }
  char line[512];
  int lineno = 0, ok = 1, rows = 0;
  static int cap[MAX_TIMED_WORKERS];
  memset(cap, 0, sizeof cap);
  memset(T, 0, sizeof *T);
  while (ok && fgets(line, sizeof line, f)) {
    lineno++;
    char *p = line + strspn(line, " \t");
    if (*p == '#' || *p == '\n' || *p == '\r' || !*p)
      continue;
    char *end, *comma = strchr(p, ',');
    long w = 0;
    double s;
    errno = 0;
    if (comma) {
      w = strtol(p, &end, 10);
      if (end != comma || w < 0 || w >= MAX_TIMED_WORKERS) {
        if (rows == 0 && (end == p || !strchr("0123456789+-.", *p)))
          continue; /* a header (not a number), before any data */
        fprintf(stderr, "syncsim: calibrate compute: %s:%d: expected 'worker,seconds' with a "
                "worker in 0..%d\n", path, lineno, MAX_TIMED_WORKERS - 1);
        ok = 0;
        break;
      }
      p = comma + 1;
    }
    s = strtod(p, &end);
    end += strspn(end, " \t\r\n");
    if (end == p || *end || errno || !(s > 0) || !isfinite(s)) {
      if (rows == 0 && !comma && !strchr("0123456789+-.", *p))
        continue; /* a 'seconds' header */
      fprintf(stderr, "syncsim: calibrate compute: %s:%d: expected a step time in seconds "
              "above 0\n", path, lineno);
      ok = 0;
      break;
    }
    if (T->n[w] == cap[w]) {
      cap[w] = cap[w] ? 2 * cap[w] : 256;
      double *t = realloc(T->t[w], (size_t)cap[w] * sizeof *t);
      if (!t) {
        fprintf(stderr, "syncsim: calibrate compute: out of memory\n");
        ok = 0;
        break;
      }
      T->t[w] = t;
    }
    T->t[w][T->n[w]++] = s;
    if (w + 1 > T->K)
      T->K = (int)w + 1;
    rows++;
  }
  fclose(f);
  for (int k = 0; ok && k < T->K; k++)
    if (T->n[k] < 2) {
      fprintf(stderr, "syncsim: calibrate compute: %s: worker %d has %d step time%s; at least "
              "2 each (workers are numbered from 0)\n", path, k, T->n[k], T->n[k] == 1 ? "" : "s");
      ok = 0;
    }
  if (ok && T->K == 0) {
    fprintf(stderr, "syncsim: calibrate compute: %s: no step times in it\n", path);
    ok = 0;
  }
  if (!ok)
    times_free(T);
  return ok;
}

/* Time the scenario's step with K workers at once; 0 with a message on error. */
static int measure(const char *file, const scn_scenario *s, int K, int warmup, int steps,
                   times *T)
{
  sim_config cfg;
  scn_run_config(s, 0, &cfg);
  if (cfg.workload.model.type == WL_MODEL_NONE) {
    fprintf(stderr, "syncsim: calibrate compute: %s: a timing-only model (workload.model.type "
            "none) has no step to time; measure your own and give it with --times\n", file);
    return 0;
  }
  /* the memory of the dataset and K model workspaces, parameters, gradients and states:
     what a run with K job threads and K workers takes, at most */
  sim_memory mem;
  cfg.cluster.workers = K;
  char why[256] = "";
  double limit = sim_memory_limit(why, sizeof why);
  if (sim_memory_estimate(&cfg, K, &mem) != WL_OK || mem.dataset + mem.models + mem.replicas > limit) {
    char need[32], have[32];
    sim_format_bytes(mem.dataset + mem.models + mem.replicas, need, sizeof need);
    sim_format_bytes(limit, have, sizeof have);
    fprintf(stderr, "syncsim: calibrate compute: %s: timing %d workers at once needs about %s; "
            "this process may use %s (%s): fewer --workers, or a smaller model\n", file, K,
            need, have, why);
    return 0;
  }
  char err[1024] = "";
  gsl_rng *g = sim_rng_create((uint64_t)cfg.seed, SIM_RNG_DATASET, 0);
  wl_dataset *d = NULL;
  wl_status st = g ? wl_dataset_create(&cfg.workload.dataset,
                                       wl_model_seq_len(&cfg.workload.model), g, &d, err,
                                       sizeof err)
                   : WL_ENOMEM;
  gsl_rng_free(g);
  if (st != WL_OK) {
    fprintf(stderr, "syncsim: calibrate compute: %s: workload.dataset: %s\n", file,
            err[0] ? err : wl_strerror(st));
    return 0;
  }
  memset(T, 0, sizeof *T);
  T->K = K;
  worker w[MAX_WORKERS];
  pthread_t th[MAX_WORKERS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)K);
  int ok = 1, started = 0;
  for (int k = 0; k < K; k++) {
    T->n[k] = steps;
    T->t[k] = calloc((size_t)steps, sizeof(double));
    w[k] = (worker){&cfg, d, &start, k, warmup, steps, T->t[k], 0};
    ok &= T->t[k] != NULL;
  }
  fprintf(stderr, "timing %d + %d steps on each of %d workers at once...\n", warmup, steps, K);
  for (int k = 0; ok && k < K; k++)
    if (pthread_create(&th[k], NULL, work, &w[k]) == 0)
      started++;
    else
      ok = 0;
  if (!ok) { /* the barrier would wait forever for the missing ones: not started at all */
    fprintf(stderr, "syncsim: calibrate compute: cannot start %d threads\n", K);
    if (started) /* (their barrier cannot complete; the process ends with the error) */
      exit(CLI_USAGE);
  }
  for (int k = 0; k < started; k++) {
    pthread_join(th[k], NULL);
    if (w[k].failed) {
      fprintf(stderr, "syncsim: calibrate compute: out of memory for worker %d\n", k);
      ok = 0;
    }
  }
  pthread_barrier_destroy(&start);
  wl_dataset_destroy(d);
  if (!ok)
    times_free(T);
  return ok;
}

static double quantile(double *sorted, int n, double q)
{
  double x = q * (n - 1);
  int i = (int)floor(x);
  return i + 1 < n ? sorted[i] + (x - i) * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

int cli_calibrate_compute(int argc, char **argv, const char *usage)
{
  long long workers = 0, steps = -1, warmup = -1;
  const char *file = NULL, *times_in = NULL, *times_out = NULL, *out = NULL;
  const cli_opt opts[] = {
    {"--workers", CLI_OPT_INT, &workers, 1, MAX_WORKERS, NULL, 0, NULL, NULL, NULL},
    {"--steps", CLI_OPT_INT, &steps, 2, 1000000, NULL, 0, NULL, NULL, NULL},
    {"--warmup", CLI_OPT_INT, &warmup, 0, 1000000, NULL, 0, NULL, NULL, NULL},
    {"--times", CLI_OPT_STRING, &times_in, 0, 0, NULL, 0, NULL, NULL, NULL},
    {"--times-out", CLI_OPT_STRING, &times_out, 0, 0, NULL, 0, NULL, NULL, NULL},
    {"--out", CLI_OPT_STRING, &out, 0, 0, NULL, 0, NULL, NULL, NULL},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL, NULL, NULL}};
  int n_pos;
  int rc = cli_parse_args(argc, argv, usage, opts, &file, 1, &n_pos);
  if (rc >= 0)
    return rc;
  if (n_pos != 1) {
    fprintf(stderr, "syncsim: calibrate compute needs a SCENARIO\n\n%s", usage);
    return CLI_USAGE;
  }
  if (times_in && (workers || steps >= 0 || warmup >= 0)) {
    fprintf(stderr, "syncsim: calibrate compute: --workers, --steps and --warmup time syncsim's "
            "own step; with --times the times are yours\n");
    return CLI_USAGE;
  }
  steps = steps < 0 ? 50 : steps;
  warmup = warmup < 0 ? 5 : warmup;
  scn_scenario *s = malloc(sizeof *s);
  scn_error err;
  if (!s)
    return CLI_USAGE;
  if (scn_load_file(file, NULL, 0, s, &err) != WL_OK) {
    free(s);
    return cli_scn_error(&err);
  }
  times T;
  int ok;
  if (times_in) {
    ok = read_times(times_in, &T);
  } else {
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    int K = workers ? (int)workers : s->base.cluster.workers;
    if (!workers && nproc > 0 && K > nproc)
      K = (int)nproc;
    if (nproc > 0 && K > nproc)
      fprintf(stderr, "note: %d workers on %ld processors: each steps a share of the time, as "
              "%d processes on this host would\n", K, nproc, K);
    if (K > MAX_WORKERS)
      K = MAX_WORKERS;
    ok = measure(file, s, K, (int)warmup, (int)steps, &T);
  }
  if (!ok) {
    free(s);
    return CLI_USAGE;
  }
  /* per worker: mean, median, spread; pooled: sigma of log(t / geometric mean) */
  static double mean[MAX_TIMED_WORKERS], se[MAX_TIMED_WORKERS];
  double fastest = INFINITY, slowest = 0, ss = 0, all = 0;
  int f_k = 0, s_k = 0;
  long dof = 0, count = 0;
  printf("%s step times, %d worker%s%s:\n\n", times_in ? "measured" : "syncsim's", T.K,
         T.K == 1 ? "" : "s", times_in ? "" : " stepping at once");
  printf("%7s %6s %11s %11s %11s %11s %11s\n", "worker", "steps", "mean_s", "median_s",
         "p10_s", "p90_s", "sd_log");
  for (int k = 0; k < T.K; k++) {
    double *t = T.t[k], lm = 0, lss = 0, sum = 0, sq = 0;
    int n = T.n[k];
    for (int i = 0; i < n; i++)
      sum += t[i], lm += log(t[i]);
    for (int i = 0; i < n; i++)
      sq += (t[i] - sum / n) * (t[i] - sum / n);
    se[k] = sqrt(sq / (n - 1) / n); /* the standard error of its mean */
    lm /= n;
    for (int i = 0; i < n; i++)
      lss += (log(t[i]) - lm) * (log(t[i]) - lm);
    ss += lss;
    dof += n - 1;
    mean[k] = sum / n;
    all += sum;
    count += n;
    if (mean[k] < fastest)
      fastest = mean[k], f_k = k;
    if (mean[k] > slowest)
      slowest = mean[k], s_k = k;
    gsl_sort(t, 1, (size_t)n);
    printf("%7d %6d %11.6g %11.6g %11.6g %11.6g %11.4f\n", k, n, mean[k], quantile(t, n, 0.5),
           quantile(t, n, 0.1), quantile(t, n, 0.9), sqrt(lss / (n - 1)));
  }
  double sigma = dof > 0 ? sqrt(ss / (double)dof) : 0;
  /* speeds when the means differ by 2% and by 3 standard errors (not by noise), and when the
     scenario can take them (as many workers as measured) */
  int differ = slowest > 1.02 * fastest &&
               slowest - fastest > 3 * sqrt(se[f_k] * se[f_k] + se[s_k] * se[s_k]);
  if (differ && T.K != s->base.cluster.workers) {
    printf("(the workers differ, but %d were measured and the scenario has %d: no speeds, "
           "the mean over all of them)\n", T.K, s->base.cluster.workers);
    differ = 0;
  }
  double step = differ ? fastest : all / (double)count;
  printf("\nkeys (cluster.compute):\n  \"step_time_s\": %.6g, \"jitter\": {\"dist\": "
         "\"lognormal\", \"sigma\": %.4g}", step, sigma);
  if (differ) {
    printf(", \"speeds\": [");
    for (int k = 0; k < T.K; k++)
      printf("%s%.4g", k ? ", " : "", fastest / mean[k]);
    printf("]");
  }
  printf("\n(step_time_s is the %s; the jitter's sigma is the spread of log step time "
         "around each worker's own level%s)\n",
         differ ? "fastest worker's mean step time, the others' speeds relative to it"
                : "mean step time: the simulated jitter has mean 1",
         times_out || times_in ? "; or jitter.dist empirical with these times" : "");
  if (!differ && T.K > 1)
    printf("(the workers' means differ by less than 2%% or than their noise: no speeds)\n");
  int status = CLI_OK;
  if (times_out) {
    char tmp[4200];
    FILE *f = cli_out_open(times_out, tmp, sizeof tmp);
    int wok = f != NULL && fprintf(f, "worker,seconds\n") > 0;
    for (int k = 0; wok && k < T.K; k++)
      for (int i = 0; wok && i < T.n[k]; i++)
        wok = fprintf(f, "%d,%.9g\n", k, T.t[k][i]) > 0;
    if (!f || !cli_out_close(f, tmp, times_out, wok))
      status = CLI_USAGE;
    else
      printf("wrote %s\n", times_out);
  }
  if (out && status == CLI_OK) {
    cJSON *root = cli_read_scenario_for_out(file);
    cJSON *jit = cJSON_CreateObject();
    if (jit) {
      cJSON_AddStringToObject(jit, "dist", "lognormal");
      cJSON_AddNumberToObject(jit, "sigma", sigma);
    }
    cJSON *speeds = NULL;
    cJSON *compute = root ? cJSON_GetObjectItemCaseSensitive(
                              cJSON_GetObjectItemCaseSensitive(root, "cluster"), "compute")
                          : NULL;
    /* what the measured step time replaces: a step derived from FLOPs, and the speeds the
       measurement did not find */
    cJSON_DeleteItemFromObjectCaseSensitive(compute, "device_tflops");
    cJSON_DeleteItemFromObjectCaseSensitive(compute, "utilization");
    cJSON_DeleteItemFromObjectCaseSensitive(compute, "flops_per_step");
    if (!differ) {
      cJSON_DeleteItemFromObjectCaseSensitive(compute, "speeds");
      cJSON_DeleteItemFromObjectCaseSensitive(compute, "speed");
    }
    if (differ && (speeds = cJSON_CreateArray()))
      for (int k = 0; k < T.K; k++)
        cJSON_AddItemToArray(speeds, cJSON_CreateNumber(fastest / mean[k]));
    int wok = root && cli_json_set(root, "cluster", "compute", "step_time_s",
                                   cJSON_CreateNumber(step)) &&
              cli_json_set(root, "cluster", "compute", "jitter", jit) &&
              (!speeds || cli_json_set(root, "cluster", "compute", "speeds", speeds));
    if (!root || !wok) {
      if (!root) {
        cJSON_Delete(jit);
        cJSON_Delete(speeds);
      }
      status = CLI_USAGE;
    } else if (!cli_write_json(root, out)) {
      status = CLI_USAGE;
    } else {
      printf("wrote %s\n", out);
    }
    cJSON_Delete(root);
  }
  times_free(&T);
  free(s);
  return status;
}
