/* sim_cluster — how long compute takes on each worker.
 *
 * Each worker has a speed factor: listed in the scenario, or drawn once per run from a
 * distribution with the stream (SIM_RNG_SPEED, 0), in worker order. A gradient step on
 * worker w takes step_time_s / speed_w, times a per-step jitter factor drawn from the
 * stream (SIM_RNG_JITTER, w); each step's duration is rounded to nanoseconds once, and a
 * job's duration is the sum of its steps'. The base step time is given, or derived from
 * FLOPs per step and a device's FLOP/s times utilization.
 *
 * A worker's speed may also change over time: replayed from a trace (CSV rows
 * time_s,worker,factor; the factor multiplies its speed from that time on) and divided by
 * `slowdown` during straggler episodes (a Poisson process per worker, drawn from
 * (SIM_RNG_STRAGGLER, w)). A job then takes the time its work (the steps at speed 1) needs
 * under the piecewise-constant speed, rounded once. */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include <gsl/gsl_rng.h>

#include "sim_config.h"
#include "sim_time.h"

/* One worker's speed changes: times (ascending) and factors. */
typedef struct sim_trace {
  int n, cap;
  double *t, *f;
  int pos; /* the last change at or before the time last asked about, or -1 */
} sim_trace;

typedef struct sim_cluster {
  int K;
  int varies;           /* traces or stragglers: speeds change over time */
  sim_trace *trace;     /* (K), when a trace is given */
  sim_straggler_config straggle;
  gsl_rng **straggle_rng; /* (K), when stragglers are on */
  double *ep_start, *ep_end; /* (K) each worker's current or next episode */
  /* the same trace and episodes, followed separately for sim_cluster_speed_now (jobs read
   * ahead into the future; questions about now come in their own order) */
  int *q_pos;              /* (K) trace position */
  gsl_rng **q_straggle_rng;/* (K) clones of straggle_rng at the start */
  double *q_ep_start, *q_ep_end;
  /* the fastest worker now, for sim_cluster_speed_max: constant speeds give speed_max; else
   * a max-tree over the workers' speeds (leaves from tree_size) and a heap of each worker's
   * next change */
  double speed_max;
  int tree_size, n_changes, started;
  double *tree;            /* (2 tree_size) */
  double *change_t;        /* (K) heap of next changes: times, workers */
  int *change_w;
  double step_time_s;   /* resolved base step time at speed 1 */
  double *speed;        /* (K) speed factors */
  sim_time *step_ns;    /* (K) a step without jitter */
  sim_jitter_config jitter;
  gsl_rng **jitter_rng; /* (K), when jitter is on */
  double *jit_factor;   /* empirical jitter: every measured time over its worker's mean (or
                           over the mean of all, for the pool) */
  long *jit_first, *jit_n; /* (K) worker w's factors: jit_first[w], jit_n[w] of them (its own
                           rows, or the pool's) */
} sim_cluster;

/* flops_per_step: the workload's own (used when the config derives the step time and
 * gives no flops_per_step). */
wl_status sim_cluster_init(sim_cluster *c, const sim_compute_config *cfg, int K, uint64_t seed,
                           double flops_per_step, char *err, size_t err_size);
void sim_cluster_free(sim_cluster *c);

/* When `steps` gradient steps on worker w that start at `start` end (draws jitter, in
 * order). Calls for one worker must come in nondecreasing start order. */
sim_time sim_cluster_job_end(sim_cluster *c, int w, sim_time start, long steps);

/* Worker w's speed at time t without per-step jitter (which has mean 1 and lies in the
 * future): its base speed times the trace's factor, divided by the straggler slowdown when
 * an episode is in effect. Calls for one worker must come in nondecreasing t. */
double sim_cluster_speed_now(sim_cluster *c, int w, double t);

/* The largest sim_cluster_speed_now over the workers at time t (nondecreasing over calls),
 * in O(log K) per speed change since the last call. */
double sim_cluster_speed_max(sim_cluster *c, double t);

/* Read a speed trace for K workers into trace (K), or only check it when trace is NULL. On
 * error, err says file:line: what. */
wl_status sim_trace_load(const char *path, int K, sim_trace *trace, char *err,
                         size_t err_size);
void sim_trace_free(sim_trace *trace, int K);

/* The bytes the speed trace at path takes loaded for K workers (a `*` row counts K times);
 * 0 when it cannot be read (sim_trace_load then says why). */
double sim_trace_memory(const char *path, int K);

/* Draw K speeds from a distribution into speed (K) with r (exposed for tests). */
void sim_cluster_draw_speeds(const sim_speed_config *s, int K, gsl_rng *r, double *speed);

#endif
