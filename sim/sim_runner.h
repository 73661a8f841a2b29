/* sim_runner — executes one run: builds the workload, cluster and policy from a sim_config,
 * runs the event loop, and reports through a sim_recorder.
 *
 * The loop pops events in (time, seq) order. A policy's train/grad command schedules its
 * completion at now + its simulated duration; the real work (batches, forward, backward,
 * inner optimizer) is done when that completion is processed, which is equivalent because
 * it depends only on that worker's replica, batch stream and config. Collectives are priced
 * by the network formulas. The global model is evaluated at t = 0, every eval.every_s, and at the
 * end. The run stops at the first stop condition met, on a non-finite loss (diverged), on
 * *interrupt becoming non-zero (interrupted), or on an error.
 *
 * Simulated durations: a gradient step on worker w takes step_time_s / speed_w, rounded to
 * nanoseconds; an all-reduce takes the ring formula, rounded once. */
#ifndef SIM_RUNNER_H
#define SIM_RUNNER_H

#include <signal.h>

#include "sim_config.h"
#include "sim_recorder.h"

/* The numerics version: which arithmetic produced a run's numbers. Results are a function of
 * (resolved config, input files, numerics version) alone, bit for bit, on any machine. Bump
 * it in any change that moves a result on purpose (a kernel's order of operations, a
 * sampler, a time-model rule, a default that the canonical config does not spell out), and
 * regenerate tests/golden/expected.txt, whose test fails loudly otherwise. A sweep re-runs
 * a point whose stored runs have another version. History: 1 = OpenBLAS and glibc's libm
 * (machine-dependent); 2 = syncsim's own kernels and elementary functions; 3 = the time
 * model's fixes (DDP overlap bounded by the backward pass, blocked time, dropping a worker
 * from a collective, lost work undone, transfers rounded once, async grace and staleness,
 * DyLU by current speed, post-local warm-up as DDP, a final evaluation after a last sync);
 * 4 = optimizers and models against PyTorch (AdamW's 1 - beta in double, the step schedule
 * after the warm-up, gelu is the erf GELU, outer clip, text vocabulary from the training part)
 * and canonical configs without the keys that do nothing in them; 5 = eval.at_sync (a new
 * key of every canonical config); 6 = DiLoCo's warmup_steps (a new key of its canonical
 * config); 7 = the time model's per-worker streams (jitter, stragglers, failures) drawn from
 * ranlxd2 instead of mt19937 (120 bytes of state, not 5 KB: a million workers fit), and
 * every forward-moving duration at least 1 ns; 8 = those streams from cmrg (48 bytes of
 * state, and a draw 18 times faster than ranlxd2's); 9 = the flow model in exact integer
 * arithmetic (ticks of 1/1024 ns, capacities in integer units, rates as fractions), so that
 * the incremental solver and progressive filling give the same results bit for bit. */
#define SIM_NUMERICS_VERSION 9

typedef struct sim_progress {
  double sim_time_s; /* now */
  double stop_s;     /* the simulated-time limit, NaN if none */
  long step;         /* global step */
  long stop_steps;   /* the step limit, 0 if none */
  long events;       /* processed so far */
  double loss;       /* latest held-out loss, NaN before the first */
  double host_s;     /* real time so far */
} sim_progress;

typedef struct sim_run_opts {
  int threads; /* threads computing workers' gradients ahead of simulated time (at most K);
                  results are the same for any value; 0 or 1: none, jobs run in the loop */
  const volatile sig_atomic_t *interrupt; /* stop at the next event when non-zero; may be NULL */
  void (*progress)(void *ctx, const sim_progress *p); /* called about every 0.5 s; may be NULL */
  void *progress_ctx;
  /* datasets to share with the checks and runs before and after this one (a dataset is a
     function of its config, its seed and its input files, and runs only read it; the caller
     keeps the files as the cache saw them, see cli_run); may be NULL. Not for runs that run
     at the same time. */
  struct sim_check_cache *data_cache;
} sim_run_opts;

/* What a run takes in memory, in bytes, estimated from its config alone: at its peak, up to
 * small structures (tests/test_memory.c holds the estimate to measured runs). */
typedef struct sim_memory {
  double dataset;  /* the dataset (at its peak while built), the shards' indices */
  double models;   /* the model workspaces and batches: one per thread, one to evaluate */
  double replicas; /* every worker's parameters, gradients and optimizer state (and
                      snapshots when failures can undo work) */
  double workers;  /* every worker's other state: samplers, random streams, records */
  double policy;   /* the policy's own: global model, outer optimizer, buffers */
  double total;
} sim_memory;

/* cfg's memory with `threads` job threads; WL_ELIMIT when its model is beyond any machine. */
wl_status sim_memory_estimate(const sim_config *cfg, int threads, sim_memory *m);

/* The memory this process may use, in bytes: the least of the machine's physical memory,
 * the address-space and data limits, a control group's memory.max and the environment
 * variable SYNCSIM_MEMORY_LIMIT (bytes, or with a K, M, G or T suffix, powers of 1024). why
 * (may be NULL) gets which one it is. NaN, with why saying so, when SYNCSIM_MEMORY_LIMIT is
 * set to something that is not a size. */
double sim_memory_limit(char *why, size_t why_size);

/* From now on, sim_memory_limit (and so sim_check) gives each run a 1/runs_at_once share of
 * the memory: for runs that will run side by side (a sweep's --jobs). */
void sim_memory_set_share(int runs_at_once);

/* v bytes as "12.3 GiB" (or B, KiB, MiB, ... in powers of 1024). */
void sim_format_bytes(double v, char *buf, size_t size);

/* Datasets built by sim_check, kept for the next checks (validating many runs of one
 * dataset builds it once). */
typedef struct sim_check_cache sim_check_cache;
sim_check_cache *sim_check_cache_create(void);
void sim_check_cache_free(sim_check_cache *c);

/* Everything sim_run checks before its first event, without running: builds cfg's dataset,
 * partition, models, workers, cluster, network, failures and policy, then frees them. So a
 * config that passes runs (up to the resources it needs while running), and refuses one that
 * needs more memory than this process may use with `threads` job threads (see
 * sim_memory_estimate). cache may be NULL. */
wl_status sim_check(const sim_config *cfg, int threads, sim_check_cache *cache, char *err,
                    size_t err_size);

/* Run cfg (which must have passed sim_config_check). Returns the run's status, also in
 * out->status. rec->begin is called first and rec->end last; opts may be NULL. */
wl_status sim_run(const sim_config *cfg, const sim_recorder *rec, const sim_run_opts *opts,
                  sim_result *out);

#endif
