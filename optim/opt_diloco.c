/* diloco — DiLoCo (Douillard et al. 2023, arXiv 2311.08105); docs/algorithms.md §4.
 *
 * Each round every worker starts from the global model z and takes H inner steps (AdamW by
 * default, its state persistent and never averaged); then the pseudo-gradient
 * delta = (1/K) sum_k (z - x_k) is all-reduced and z <- OuterOpt(z, delta) (Nesterov, lr 0.7,
 * momentum 0.9 by default). With weight_by_shard, worker k's term is weighted by its shard's
 * share of the training set instead of 1/K. With `compress`, each worker sends its change
 * x_k - z compressed (docs/algorithms.md §14), and the all-reduce is an all-gather of the
 * compressed changes.
 *
 * Optional warm-up, as in the PALSGD reference code's DiLoCo baseline: the first warmup_steps
 * steps are DDP steps (gradients all-reduced, one inner-optimizer step on their mean, replicas
 * and their optimizer states kept equal); then z <- x, and rounds end at the multiples of H
 * counted from step 0 (the first round is shorter when warmup_steps is not a multiple of H).
 * So diloco with warm-up W is palsgd with p = 0 and warm-up W, bit for bit. */
#include <stdio.h>
#include <stdlib.h>

#include "opt_policy.h"

typedef struct diloco {
  opt_round round;      /* first: the workers of the round in progress */
  const opt_host *host;
  opt_outer outer;
  opt_codec codec;      /* what each worker sends at a synchronization */
  opt_tasks tasks;      /* each round's shard, schedule position and inner state */
  opt_train job;        /* the round in progress: 1 (warm-up) or up to H gradient steps */
  const int *weights;   /* shard sizes, or NULL */
  opt_optim_config inner; /* applied to the mean gradient in the warm-up */
  int H, warmup;
  int warm;             /* the round in progress is a warm-up (DDP) step */
  long step;            /* steps reflected in the global model */
} diloco;

/* diloco's own keys */
typedef struct diloco_config {
  int H;
  int warmup_steps;
  int weight_by_shard;
} diloco_config;
OPT_POLICY_OWN_FITS(diloco_config);
#define PC(f) OPT_OWN(diloco_config, f)

/* The paper's inner optimizer: AdamW, lr 4e-4, weight decay 0.1, gradients clipped to 1. */
static void diloco_inner(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_ADAMW);
  c->lr = 4e-4;
  c->weight_decay = 0.1;
  c->clip = 1.0;
}

/* The paper's outer optimizer: Nesterov, lr 0.7, momentum 0.9. */
static void diloco_outer(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_NESTEROV);
  c->lr = 0.7;
  c->momentum = 0.9;
}

static const wl_param diloco_params[] = {
  OPT_POLICY_INNER_PARAM(diloco_inner),
  OPT_POLICY_OUTER_PARAM(diloco_outer),
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 500, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "inner steps per round"},
  {.key = "warmup_steps", .kind = WL_P_INT, .offset = PC(warmup_steps), .def = 0, .min = 0,
   .max = 1 << 30, .unit = "steps",
   .doc = "initial DDP steps; then rounds end at multiples of H counted from step 0"},
  {.key = "weight_by_shard", .kind = WL_P_BOOL, .offset = PC(weight_by_shard), .def = 0,
   .flags = WL_PF_TRAINED, .unit = "", .doc = "weight each worker's pseudo-gradient by its shard's size"},
  OPT_POLICY_PARTICIPATION_PARAM,
  OPT_POLICY_COMPRESS_PARAM,
  OPT_POLICY_TASK_PARAMS,
  {0}};

/* A round on the least-visited shard is not on its worker's shard, whose size
 * weight_by_shard would weigh it by. */
static wl_status diloco_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                              char *msg, size_t msg_size)
{
  (void)K;
  if (OPT_POLICY_OWN(diloco_config, cfg)->weight_by_shard &&
      cfg->shards == OPT_SHARDS_LEAST_VISITED) {
    snprintf(path, path_size, "weight_by_shard");
    snprintf(msg, msg_size, "expected false with shards least_visited (a round's shard is not "
                            "its worker's, whose size it would weigh by), got true");
    return WL_ECONFIG;
  }
  return WL_OK;
}

static void diloco_begin_round(void *state);
static void diloco_reduce(void *state);

static void diloco_destroy(void *state)
{
  diloco *d = state;
  opt_outer_free(&d->outer);
  opt_round_free(&d->round);
  opt_codec_free(&d->codec);
  opt_tasks_free(&d->tasks);
  free(d);
}

static wl_status diloco_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                               char *err, size_t err_size)
{
  diloco *d = calloc(1, sizeof *d);
  if (!d)
    return WL_ENOMEM;
  wl_status st = opt_outer_init(&d->outer, &cfg->outer, host, err, err_size);
  if (st == WL_OK)
    st = opt_round_init(&d->round, host->K, d, diloco_begin_round, diloco_reduce);
  if (st == WL_OK)
    st = opt_codec_init(&d->codec, &cfg->compress, host->K, host->replicas[0].n, 0);
  if (st == WL_OK)
    st = opt_tasks_init(&d->tasks, cfg, host->K);
  if (st != WL_OK) {
    diloco_destroy(d);
    return st;
  }
  d->host = host;
  d->inner = cfg->inner;
  const diloco_config *c = OPT_POLICY_OWN(diloco_config, cfg);
  d->H = c->H;
  d->warmup = c->warmup_steps;
  d->weights = c->weight_by_shard ? host->shard_sizes : NULL;
  opt_round_participation(&d->round, cfg->participation);
  d->round.tasks = &d->tasks;
  *state = d;
  return WL_OK;
}

static void diloco_begin_round(void *state)
{
  diloco *d = state;
  d->warm = d->step < d->warmup;
  d->job = (opt_train){.steps = d->warm ? 1 : d->H - (int)(d->step % d->H),
                       .lr_scale = 1.0};
  opt_round_start(&d->round, d->host, d->warm ? NULL : &d->job);
}

static void diloco_start(void *state) { diloco_begin_round(state); }

static void diloco_reduce(void *state)
{
  diloco *d = state;
  if (d->warm) /* gradients, uncompressed */
    d->host->allreduce(d->host->ctx, d->host->payload_bytes, NULL, d->round.in, 0);
  else
    opt_host_reduce(d->host, &d->codec.cfg, d->host->payload_bytes, NULL, d->round.in, 0);
}

static void diloco_collective_done(void *state, int tag)
{
  diloco *d = state;
  (void)tag;
  if (d->warm) {
    opt_sync_gradient_step(d->host, &d->inner, d->round.in, 1);
    if (d->step + 1 == d->warmup)
      opt_outer_adopt(d->host, &d->outer);
  } else {
    opt_outer_sync(d->host, &d->outer, d->weights, d->round.in, &d->codec);
  }
  d->step += d->job.steps;
  d->host->global_changed(d->host->ctx);
  diloco_begin_round(d);
}

static const float *diloco_global(const void *state)
{
  const diloco *d = state;
  return d->step < d->warmup ? d->host->replicas[0].params : d->outer.z;
}

static long diloco_step(const void *state) { return ((const diloco *)state)->step; }

static double diloco_memory(const opt_policy_config *cfg, int K, double n)
{
  return sizeof(diloco) + opt_round_memory(K) + opt_outer_memory(&cfg->outer, n) +
         (cfg->participation < 1 ? opt_rng_memory() : 0) +
         opt_codec_memory(&cfg->compress, K, n, 0) + opt_tasks_memory(K);
}

const opt_policy_type opt_diloco_type = {
  .variant = {"diloco",
              "H inner steps, then an outer Nesterov step on the mean pseudo-gradient "
              "(Douillard et al. 2023)",
              diloco_params},
  .traits = OPT_TRAIT_OUTER,
  .check = diloco_check,
  .create = diloco_create,
  .destroy = diloco_destroy,
  .start = diloco_start,
  .work_done = opt_round_work_done,
  .collective_done = diloco_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = diloco_global,
  .step = diloco_step,
  .memory = diloco_memory,
};
