#include "opt_replica.h"

#include <stdlib.h>
#include <string.h>

#include "opt_optim_isa.h"

/* What the views of a replica without parameters (timing only) point to: no allocation. */
static float no_parameters[1];

wl_status opt_replica_init(opt_replica *r, size_t n, int state_floats)
{
  memset(r, 0, sizeof *r);
  r->block = n ? calloc((size_t)(2 + state_floats) * n, sizeof(float)) : NULL;
  if (n && !r->block)
    return WL_ENOMEM;
  float *base = n ? r->block : no_parameters;
  r->n = n;
  r->state_floats = state_floats;
  r->params = base;
  r->grads = base + n;
  r->state = base + 2 * n;
  return WL_OK;
}

void opt_replica_free(opt_replica *r)
{
  free(r->block);
  memset(r, 0, sizeof *r);
}

void opt_replica_copy(opt_replica *dst, const opt_replica *src)
{
  memcpy(dst->params, src->params, src->n * sizeof(float));
  memcpy(dst->state, src->state, (size_t)src->state_floats * src->n * sizeof(float));
  dst->step = src->step;
  dst->local_steps = src->local_steps;
}

void opt_replicas_mean_range(const opt_replica *reps, int K, const uint8_t *mask, int which,
                             float *out, size_t lo, size_t hi)
{
  opt_sum sum = {reps, K, mask, which, NULL, NULL};
  opt_elem_sum(&sum, out, lo, hi);
}

void opt_replicas_mean(const opt_replica *reps, int K, const uint8_t *mask, int which,
                       float *out)
{
  opt_replicas_mean_range(reps, K, mask, which, out, 0, reps[0].n);
}
