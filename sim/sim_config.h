/* sim_config — everything one run needs: workload, cluster, one policy, stop and eval.
 *
 * Plain structs, each field with its unit, each described by a wl_param table (so that the
 * scenario loader, the canonical config writer and `syncsim list` all read one source).
 * sim_config_check validates what a table cannot: relations between fields. */
#ifndef SIM_CONFIG_H
#define SIM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "opt_policy.h"
#include "wl_model.h"
#include "wl_param.h"

#define SIM_MAX_LISTED_SPEEDS 4096

enum { SIM_COLL_RING = 0 };

typedef struct sim_compute_config {
  double step_time_s;                   /* one gradient step at speed 1, seconds */
  double speeds[SIM_MAX_LISTED_SPEEDS]; /* per-worker speed factors (> 0); none listed = all 1 */
  int n_speeds;                         /* entries in speeds: 0 or the worker count */
} sim_compute_config;

typedef struct sim_network_config {
  double latency_s;      /* one-way latency per message (alpha), seconds */
  double bandwidth_gbps; /* per-worker link bandwidth, Gbit/s */
  int collective;        /* SIM_COLL_* algorithm for all-reduce */
} sim_network_config;

typedef struct sim_comm_config {
  double params;          /* parameters on the wire; NaN = the real model's count */
  double bytes_per_param; /* 4 fp32, 2 bf16, 1 int8 */
} sim_comm_config;

typedef struct sim_cluster_config {
  int workers;                /* K */
  sim_compute_config compute;
  sim_network_config network;
  sim_comm_config comm;
} sim_cluster_config;

typedef struct sim_stop_config {
  double sim_time_s;  /* stop at this simulated time; NaN = no limit */
  int steps;          /* stop once the global model reflects this many steps; 0 = no limit */
  double target_loss; /* stop once held-out loss <= this; NaN = off */
  double host_time_s; /* stop after this much real time; NaN = no limit */
} sim_stop_config;

typedef struct sim_eval_config {
  double every_s; /* simulated seconds between evaluations of the global model */
  int examples;   /* held-out examples per evaluation (the first ones); 0 = all */
  double target_loss; /* the held-out loss whose first crossing results report; NaN = none */
} sim_eval_config;

typedef struct sim_config {
  int seed;                    /* run seed; every random stream derives from it */
  wl_workload_config workload;
  sim_cluster_config cluster;
  opt_policy_config policy;    /* the one policy this run executes */
  sim_stop_config stop;
  sim_eval_config eval;
} sim_config;

extern const wl_param sim_cluster_params[];
extern const wl_param sim_stop_params[];
extern const wl_param sim_eval_params[];

/* Relations between fields. On error, writes the JSON path of the offending key to `path`
 * and what was expected and found to `msg`, and returns WL_ECONFIG. */
wl_status sim_config_check(const sim_config *cfg, char *path, size_t path_size, char *msg,
                           size_t msg_size);

#endif
