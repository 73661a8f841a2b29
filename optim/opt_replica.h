/* opt_replica — one worker's copy of the model: parameters, gradients and inner optimizer
 * state, carved from one contiguous allocation (so averaging and copying are flat loops).
 *
 * Also the flat-buffer helpers that policies share: copying and averaging replicas in
 * worker order (0..K-1) with double accumulators, so results are bit-identical run to run. */
#ifndef OPT_REPLICA_H
#define OPT_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "wl_model.h"
#include "wl_status.h"

typedef struct opt_replica {
  size_t n;        /* parameters */
  int state_floats;/* optimizer state floats per parameter */
  float *params;   /* (n) */
  float *grads;    /* (n) */
  float *state;    /* (state_floats * n), zero at creation */
  long step;       /* optimizer updates applied (AdamW's t) */
  long local_steps;/* local steps taken, of any kind: the learning-rate schedule's position */
  const wl_tensor *tensors; /* (n_tensors) what each range of the parameters is (for weight
                               decay's groups); NULL: unknown. Not owned. */
  int n_tensors;
  float *block;    /* the one allocation the views point into (NULL without parameters) */
} opt_replica;

wl_status opt_replica_init(opt_replica *r, size_t n, int state_floats);
void opt_replica_free(opt_replica *r);

/* dst becomes a copy of src: parameters, optimizer state and step counters (not grads). */
void opt_replica_copy(opt_replica *dst, const opt_replica *src);

/* out (n) = mean over the replicas k in mask (all when mask is NULL) of their buffer `which`
 * (OPT_BUF_*), accumulated in double in order k = 0..K-1. out may alias one of the inputs:
 * element i is read from every replica before it is written. */
enum { OPT_BUF_PARAMS = 0, OPT_BUF_GRADS = 1 };
void opt_replicas_mean(const opt_replica *reps, int K, const uint8_t *mask, int which,
                       float *out);

/* The same for elements [lo, hi) only (each element's result does not depend on the range). */
void opt_replicas_mean_range(const opt_replica *reps, int K, const uint8_t *mask, int which,
                             float *out, size_t lo, size_t hi);

#endif
