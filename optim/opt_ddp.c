/* ddp — synchronous data parallel (ALGORITHMS.md §2).
 *
 * Every step: each worker computes a gradient on its own batch; the gradients are
 * all-reduced (mean, in worker order); one optimizer step is applied. All replicas stay
 * equal: replica 0 holds the optimizer state and the update is copied to the others. */
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"

typedef struct ddp {
  const opt_host *host;
  opt_optim_config opt; /* the optimizer applied to the averaged gradient */
  int pending;          /* gradients not yet computed this step */
  long step;            /* optimizer steps applied */
} ddp;

static wl_status ddp_create(const opt_policy_config *cfg, const opt_host *host, void **state)
{
  ddp *d = calloc(1, sizeof *d);
  if (!d)
    return WL_ENOMEM;
  d->host = host;
  d->opt = cfg->inner;
  *state = d;
  return WL_OK;
}

static const wl_param ddp_params[] = {OPT_POLICY_INNER_PARAM, {0}};

static void ddp_destroy(void *state) { free(state); }

static void ddp_begin_step(ddp *d)
{
  d->pending = d->host->K;
  for (int w = 0; w < d->host->K; w++)
    d->host->grad(d->host->ctx, w);
}

static void ddp_start(void *state) { ddp_begin_step(state); }

static void ddp_work_done(void *state, int w)
{
  ddp *d = state;
  (void)w;
  WL_ASSERT(d->pending > 0);
  if (--d->pending == 0)
    d->host->allreduce(d->host->ctx, d->host->payload_bytes, 0);
}

static void ddp_collective_done(void *state, int tag)
{
  ddp *d = state;
  const opt_host *h = d->host;
  opt_replica *r0 = &h->replicas[0];
  (void)tag;
  opt_replicas_mean(h->replicas, h->K, OPT_BUF_GRADS, r0->grads);
  r0->step++;
  opt_optim_step(&d->opt, r0->params, r0->grads, r0->state, r0->step, d->opt.lr, r0->n);
  for (int w = 1; w < h->K; w++)
    memcpy(h->replicas[w].params, r0->params, r0->n * sizeof(float));
  d->step++;
  ddp_begin_step(d);
}

static const float *ddp_global(const void *state)
{
  const ddp *d = state;
  return d->host->replicas[0].params;
}

static long ddp_step(const void *state) { return ((const ddp *)state)->step; }

const opt_policy_type opt_ddp_type = {
  .variant = {"ddp", "synchronous data parallel: all-reduce of gradients every step",
              ddp_params},
  .create = ddp_create,
  .destroy = ddp_destroy,
  .start = ddp_start,
  .work_done = ddp_work_done,
  .collective_done = ddp_collective_done,
  .global = ddp_global,
  .step = ddp_step,
};
