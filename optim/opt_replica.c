#include "opt_replica.h"

#include <stdlib.h>
#include <string.h>

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
  int count = 0;
  for (int k = 0; k < K; k++)
    count += !mask || mask[k];
  enum { CHUNK = 512 };
  double acc[CHUNK];
  for (; lo < hi; lo += CHUNK) {
    size_t len = hi - lo < CHUNK ? hi - lo : CHUNK;
    memset(acc, 0, len * sizeof *acc);
    for (int k = 0; k < K; k++) {
      if (mask && !mask[k])
        continue;
      const float *src = (which == OPT_BUF_PARAMS ? reps[k].params : reps[k].grads) + lo;
      for (size_t i = 0; i < len; i++)
        acc[i] += src[i];
    }
    for (size_t i = 0; i < len; i++)
      out[lo + i] = (float)(acc[i] / count);
  }
}

void opt_replicas_mean(const opt_replica *reps, int K, const uint8_t *mask, int which,
                       float *out)
{
  opt_replicas_mean_range(reps, K, mask, which, out, 0, reps[0].n);
}
