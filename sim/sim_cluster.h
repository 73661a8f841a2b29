/* sim_cluster — how long compute takes on each worker.
 *
 * Each worker has a speed factor: listed in the scenario, or drawn once per run from a
 * distribution with the stream (SIM_RNG_SPEED, 0), in worker order. A gradient step on
 * worker w takes step_time_s / speed_w, times a per-step jitter factor drawn from the
 * stream (SIM_RNG_JITTER, w); each step's duration is rounded to nanoseconds once, and a
 * job's duration is the sum of its steps'. The base step time is given, or derived from
 * FLOPs per step and a device's FLOP/s times utilization. */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include <gsl/gsl_rng.h>

#include "sim_config.h"
#include "sim_time.h"

typedef struct sim_cluster {
  int K;
  double step_time_s;   /* resolved base step time at speed 1 */
  double *speed;        /* (K) speed factors */
  sim_time *step_ns;    /* (K) a step without jitter */
  sim_jitter_config jitter;
  gsl_rng **jitter_rng; /* (K), when jitter is on */
} sim_cluster;

/* flops_per_step: the workload's own (used when the config derives the step time and
 * gives no flops_per_step). */
wl_status sim_cluster_init(sim_cluster *c, const sim_compute_config *cfg, int K, uint64_t seed,
                           double flops_per_step, char *err, size_t err_size);
void sim_cluster_free(sim_cluster *c);

/* The duration of `steps` gradient steps on worker w (draws jitter, in order). */
sim_time sim_cluster_steps_ns(sim_cluster *c, int w, long steps);

/* Draw K speeds from a distribution into speed (K) with r (exposed for tests). */
void sim_cluster_draw_speeds(const sim_speed_config *s, int K, gsl_rng *r, double *speed);

#endif
