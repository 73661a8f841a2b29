/* sparta — SPARTA, sparse parameter averaging (EXO Gym's SPARTAStrategy, 2025);
 * docs/algorithms.md §10.
 *
 * After every inner step, the workers average a random subset of the coordinates: each
 * coordinate is in it with probability p, independently, the same subset on every worker
 * (drawn from the run's seed, as EXO Gym broadcasts one mask), and each selected coordinate
 * of every replica becomes the workers' mean (summed in worker order, in double). The other
 * coordinates stay local. The subset is drawn by geometric skips (the gap to the next
 * selected coordinate is floor(log U / log(1 - p))), which is the same distribution as a
 * Bernoulli draw per coordinate at a cost proportional to the coordinates selected. Traffic:
 * an all-reduce of the selected coordinates' share of the model. The global model is the
 * mean of the replicas after each step. p = 1 averages everything after every step: Local SGD with H = 1,
 * bit for bit. Default p = 0.005, EXO Gym's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"
#include "wl_math.h"

/* sparta's own keys */
typedef struct sparta_config {
  double p;
} sparta_config;
OPT_POLICY_OWN_FITS(sparta_config);
#define PC(f) OPT_OWN(sparta_config, f)

static const wl_param sparta_params[] = {
  OPT_POLICY_INNER_PARAM(NULL),
  {.key = "p", .kind = WL_P_DOUBLE, .offset = PC(p), .def = 0.005, .min = 0, .max = 1,
   .flags = WL_PF_MIN_EXCL, .unit = "fraction",
   .doc = "each coordinate's probability of being averaged after a step (the traffic)"},
  {0}};

typedef struct sparta {
  opt_round round; /* first: the workers of the step in progress */
  const opt_host *host;
  double p;
  opt_train job;   /* one step */
  long step;       /* steps each worker has taken */
  size_t n;
  int32_t *idx;    /* (n) the coordinates selected this step, ascending */
  size_t n_idx;
  float *avg;      /* (n) their means */
  float *global;   /* (n) the replicas' mean after the last step */
} sparta;

static void sparta_begin_step(void *state);
static void sparta_reduce(void *state);

static void sparta_destroy(void *state)
{
  sparta *s = state;
  if (!s)
    return;
  opt_round_free(&s->round);
  free(s->idx);
  free(s->avg);
  free(s->global);
  free(s);
}

static wl_status sparta_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                               char *err, size_t err_size)
{
  sparta *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  s->host = host;
  s->p = OPT_POLICY_OWN(sparta_config, cfg)->p;
  s->n = host->replicas[0].n;
  if (s->n > INT32_MAX) {
    snprintf(err, err_size, "sparta indexes at most 2^31 - 1 parameters, the model has %zu",
             s->n);
    return WL_ECONFIG;
  }
  s->idx = malloc((s->n + 1) * sizeof *s->idx); /* +1: n is 0 when timing only */
  s->avg = malloc((s->n + 1) * sizeof *s->avg);
  s->global = malloc((s->n + 1) * sizeof *s->global);
  if (!s->idx || !s->avg || !s->global ||
      opt_round_init(&s->round, host->K, s, sparta_begin_step, sparta_reduce))
    return WL_ENOMEM;
  memcpy(s->global, host->replicas[0].params, s->n * sizeof(float));
  return WL_OK;
}

static void sparta_begin_step(void *state)
{
  sparta *s = state;
  s->job = (opt_train){.steps = 1, .lr_scale = 1.0};
  opt_round_start(&s->round, s->host, &s->job);
}

static void sparta_start(void *state) { sparta_begin_step(state); }

/* This step's subset: every coordinate with probability p, by geometric skips. */
static void select_coordinates(sparta *s)
{
  s->n_idx = 0;
  if (s->p >= 1.0) {
    for (size_t i = 0; i < s->n; i++)
      s->idx[s->n_idx++] = (int32_t)i;
    return;
  }
  gsl_rng *r = s->host->rng(s->host->ctx, 0);
  /* log(1 - p) < 0; for a small p as its series (1 - p would round away the digits of p) */
  const double p = s->p, log_q = p < 1e-4 ? -(p + p * p / 2 + p * p * p / 3) : wl_log(1.0 - p);
  for (double at = -1;;) {
    double u = gsl_rng_uniform_pos(r);        /* in (0, 1) */
    at += 1.0 + floor(wl_log(u) / log_q);     /* the next selected coordinate (+inf: none) */
    if (!(at < (double)s->n))
      break;
    s->idx[s->n_idx++] = (int32_t)at;
  }
}

static void sparta_reduce(void *state)
{
  sparta *s = state;
  select_coordinates(s);
  const opt_host *h = s->host;
  int64_t bytes = s->n ? (int64_t)llround((double)h->payload_bytes * (double)s->n_idx /
                                          (double)s->n)
                       : (int64_t)llround((double)h->payload_bytes * s->p);
  h->allreduce(h->ctx, bytes, NULL, s->round.in, 0);
}

enum { CHUNK = 1 << 12 }; /* selected coordinates per task */

/* Selected coordinates [CHUNK i, CHUNK (i + 1)): their mean over the round's workers, into
 * every replica; consecutive coordinates go as one range. */
static void average_part(void *arg, int i)
{
  sparta *s = arg;
  const opt_host *h = s->host;
  size_t lo = (size_t)i * CHUNK, hi = s->n_idx - lo < CHUNK ? s->n_idx : lo + CHUNK;
  for (size_t j = lo; j < hi;) {
    size_t first = (size_t)s->idx[j], last = first + 1;
    for (j++; j < hi && (size_t)s->idx[j] == last; j++)
      last++;
    opt_replicas_mean_range(h->replicas, h->K, s->round.in, OPT_BUF_PARAMS, s->avg, first,
                            last);
    for (int k = 0; k < h->K; k++)
      memcpy(h->replicas[k].params + first, s->avg + first, (last - first) * sizeof(float));
  }
}

enum { RANGE = 1 << 12 }; /* elements per task of the global model's mean */

/* Elements [RANGE i, RANGE (i + 1)) of the global model: the mean of the round's workers'
 * replicas (at the coordinates just averaged, their common value, exactly). */
static void global_part(void *arg, int i)
{
  sparta *s = arg;
  const opt_host *h = s->host;
  size_t lo = (size_t)i * RANGE, hi = s->n - lo < RANGE ? s->n : lo + RANGE;
  opt_replicas_mean_range(h->replicas, h->K, s->round.in, OPT_BUF_PARAMS, s->global, lo, hi);
}

static void sparta_collective_done(void *state, int tag)
{
  sparta *s = state;
  const opt_host *h = s->host;
  (void)tag;
  h->parallel(h->ctx, (int)((s->n_idx + CHUNK - 1) / CHUNK), average_part, s);
  /* now, while no worker's step is in flight: the replicas are what they are */
  h->parallel(h->ctx, (int)((s->n + RANGE - 1) / RANGE), global_part, s);
  s->step += s->job.steps;
  h->global_changed(h->ctx);
  sparta_begin_step(s);
}

static const float *sparta_global(const void *state) { return ((const sparta *)state)->global; }

/* A worker that comes back (failures.sync drop) restarts from the global model: the
 * coordinates averaged while it was down reached its replica, the others did not. */
static void sparta_worker_up(void *state, int w)
{
  sparta *s = state;
  memcpy(s->host->replicas[w].params, s->global, s->n * sizeof(float));
  opt_round_worker_up(state, w);
}

static long sparta_step(const void *state) { return ((const sparta *)state)->step; }

static double sparta_memory(const opt_policy_config *cfg, int K, double n)
{
  (void)cfg;
  return sizeof(sparta) + opt_round_memory(K) + (n + 1) * (sizeof(int32_t) + 2 * sizeof(float)) +
         opt_rng_memory(); /* its subsets' stream */
}

const opt_policy_type opt_sparta_type = {
  .variant = {"sparta",
              "after every step, a random fraction p of the coordinates averaged over the "
              "workers (SPARTA, EXO Gym 2025)",
              sparta_params},
  .traits = 0,
  .create = sparta_create,
  .destroy = sparta_destroy,
  .start = sparta_start,
  .work_done = opt_round_work_done,
  .collective_done = sparta_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = sparta_worker_up,
  .global = sparta_global,
  .step = sparta_step,
  .memory = sparta_memory,
};
