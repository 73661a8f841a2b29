/* diloco — DiLoCo (Douillard et al. 2023, arXiv 2311.08105); ALGORITHMS.md §4.
 *
 * Each round every worker starts from the global model z and takes H inner steps (AdamW by
 * default, its state persistent and never averaged); then the pseudo-gradient
 * delta = (1/K) sum_k (z - x_k) is all-reduced and z <- OuterOpt(z, delta) (Nesterov, lr 0.7,
 * momentum 0.9 by default). With weight_by_shard, worker k's term is weighted by its shard's
 * share of the training set instead of 1/K. */
#include <stdlib.h>

#include "opt_policy.h"

typedef struct diloco {
  opt_round round;      /* first: the workers of the round in progress */
  const opt_host *host;
  opt_outer outer;
  opt_train job;        /* H gradient steps */
  const int *weights;   /* shard sizes, or NULL */
  long step;            /* local steps reflected in z */
} diloco;

#define PO(f) offsetof(opt_policy_config, f)

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
  {.key = "H", .kind = WL_P_INT, .offset = PO(H), .def = 500, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "inner steps per round"},
  {.key = "weight_by_shard", .kind = WL_P_BOOL, .offset = PO(weight_by_shard), .def = 0,
   .unit = "", .doc = "weight each worker's pseudo-gradient by its shard's size"},
  {0}};

static void diloco_begin_round(void *state);
static void diloco_reduce(void *state);

static wl_status diloco_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                               char *err, size_t err_size)
{
  diloco *d = calloc(1, sizeof *d);
  if (!d)
    return WL_ENOMEM;
  wl_status st = opt_outer_init(&d->outer, &cfg->outer, host, err, err_size);
  if (st == WL_OK &&
      (st = opt_round_init(&d->round, host->K, d, diloco_begin_round, diloco_reduce)) != WL_OK)
    opt_outer_free(&d->outer);
  if (st != WL_OK) {
    free(d);
    return st;
  }
  d->host = host;
  d->job = (opt_train){cfg->H, NULL, 1.0};
  d->weights = cfg->weight_by_shard ? host->shard_sizes : NULL;
  *state = d;
  return WL_OK;
}

static void diloco_destroy(void *state)
{
  diloco *d = state;
  opt_outer_free(&d->outer);
  opt_round_free(&d->round);
  free(d);
}

static void diloco_begin_round(void *state)
{
  diloco *d = state;
  opt_round_start(&d->round, d->host, &d->job);
}

static void diloco_start(void *state) { diloco_begin_round(state); }

static void diloco_reduce(void *state)
{
  diloco *d = state;
  d->host->allreduce(d->host->ctx, d->host->payload_bytes, 0.0, 0.0, d->round.in, 0);
}

static void diloco_work_done(void *state, int w)
{
  diloco *d = state;
  if (opt_round_arrive(&d->round, w))
    diloco_reduce(d);
}

static void diloco_collective_done(void *state, int tag)
{
  diloco *d = state;
  (void)tag;
  opt_outer_sync(d->host, &d->outer, d->weights, d->round.in);
  d->step += d->job.steps;
  d->host->global_changed(d->host->ctx);
  diloco_begin_round(d);
}

static const float *diloco_global(const void *state) { return ((const diloco *)state)->outer.z; }

static long diloco_step(const void *state) { return ((const diloco *)state)->step; }

const opt_policy_type opt_diloco_type = {
  .variant = {"diloco",
              "H inner steps, then an outer Nesterov step on the mean pseudo-gradient "
              "(Douillard et al. 2023)",
              diloco_params},
  .create = diloco_create,
  .destroy = diloco_destroy,
  .start = diloco_start,
  .work_done = diloco_work_done,
  .collective_done = diloco_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = diloco_global,
  .step = diloco_step,
};
