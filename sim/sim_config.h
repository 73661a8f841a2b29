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
#define SIM_MAX_REGIONS 4096

enum { SIM_COLL_RING = 0, SIM_COLL_TREE, SIM_COLL_HALVING_DOUBLING, SIM_COLL_HIERARCHICAL };

/* Speed distributions; the first four are the named heterogeneity presets. */
enum {
  SIM_SPEED_NONE = 0,  /* every worker at speed 1 */
  SIM_SPEED_SLIGHT,    /* lognormal, sigma 0.15 */
  SIM_SPEED_MODERATE,  /* lognormal, sigma 0.4 */
  SIM_SPEED_VERY,      /* lognormal, sigma 0.8 */
  SIM_SPEED_LOGNORMAL, /* exp(N(0, sigma^2)): median 1 */
  SIM_SPEED_UNIFORM,   /* U[min, max] */
  SIM_SPEED_GAMMA,     /* Gamma(shape, 1/shape): mean 1 */
  SIM_SPEED_TWO_CLASS  /* round(slow_fraction * K) workers, chosen at random, at slow_speed */
};
enum { SIM_JITTER_NONE = 0, SIM_JITTER_LOGNORMAL, SIM_JITTER_UNIFORM, SIM_JITTER_EMPIRICAL };

typedef struct sim_speed_config {
  int dist;             /* SIM_SPEED_* (variant index) */
  double sigma;         /* lognormal */
  double min, max;      /* uniform */
  double shape;         /* gamma */
  double slow_fraction; /* two_class */
  double slow_speed;    /* two_class */
} sim_speed_config;

typedef struct sim_jitter_config {
  int dist;     /* SIM_JITTER_* (variant index) */
  double sigma; /* lognormal: each step's time times exp(N(-sigma^2/2, sigma^2)), mean 1 */
  double width; /* uniform: each step's time times U[1 - width, 1 + width] */
  char file[512]; /* empirical: CSV of measured step times ([worker,]seconds) */
} sim_jitter_config;

enum { SIM_DURATION_FIXED = 0, SIM_DURATION_EXPONENTIAL };

typedef struct sim_straggler_config {
  double rate_per_s;   /* episodes start on each worker as a Poisson process; 0 = none */
  double slowdown;     /* a straggling worker's speed is divided by this */
  double duration_s;   /* an episode's length (the mean, when exponential) */
  int duration_dist;   /* SIM_DURATION_* */
} sim_straggler_config;

typedef struct sim_compute_config {
  double step_time_s;                   /* one gradient step at speed 1, seconds */
  double device_tflops;                 /* when set (not NaN): the step time is derived */
  double utilization;                   /* fraction of device_tflops achieved */
  double flops_per_step;                /* NaN: the real model's FLOPs x batch size */
  double speeds[SIM_MAX_LISTED_SPEEDS]; /* per-worker speed factors (> 0); none listed = all 1 */
  int n_speeds;                         /* entries in speeds: 0 or the worker count */
  sim_speed_config speed;               /* speeds drawn once per run, when none are listed */
  sim_jitter_config jitter;             /* per-step noise */
  sim_straggler_config stragglers;      /* random slow episodes */
  char trace[512];                      /* CSV time_s,worker,speed factor; "" = none */
} sim_compute_config;

typedef struct sim_network_config {
  double latency_s;      /* one-way latency per message on a worker's link (alpha), seconds */
  double bandwidth_gbps; /* a worker link's bandwidth, each direction, Gbit/s */
  double up_gbps;        /* a worker's upload bandwidth; NaN = bandwidth_gbps */
  double down_gbps;      /* a worker's download bandwidth; NaN = bandwidth_gbps */
  double link_scales[SIM_MAX_LISTED_SPEEDS]; /* per-worker bandwidth multipliers */
  int n_link_scales;     /* 0 or the worker count */
  double server_gbps;    /* the parameter server's link, each direction; NaN = bandwidth_gbps */
  int collective;        /* SIM_COLL_* algorithm for all-reduce */
  int workers_per_node;  /* 0: a flat network; g: nodes of g workers, fast links inside */
  double inter_latency_s;      /* between nodes */
  double inter_bandwidth_gbps; /* between nodes, per node */
  double link_latencies_s[SIM_MAX_LISTED_SPEEDS]; /* per-worker latencies (override) */
  int n_link_latencies;        /* 0 or the worker count */
  char trace[512];             /* CSV time_s,link,bandwidth_gbps,latency_s; "" = none */
  int regions;                 /* R: 0 a flat network; else R regions of K/R workers
                                  (contiguous), for a policy with regions (OPT_TRAIT_REGIONS) */
  double region_latency_s;      /* one-way latency between a region and the global server */
  double region_bandwidth_gbps; /* a region's link to the global server, each direction */
} sim_network_config;

typedef struct sim_comm_config {
  double params;          /* parameters on the wire; NaN = the real model's count */
  double bytes_per_param; /* 4 fp32, 2 bf16, 1 int8 */
  double compression;     /* payloads are divided by this ratio (>= 1) */
  double overhead_s;      /* host work per collective: fixed seconds */
  double overhead_s_per_mb; /* ... and seconds per MB (10^6 bytes) of its payload */
} sim_comm_config;

#define SIM_MAX_FAILURES 256
enum { SIM_FAIL_WAIT = 0, SIM_FAIL_DROP };

typedef struct sim_failure_config {
  double at_s[SIM_MAX_FAILURES]; /* scheduled failures: when */
  int n_at;
  int workers[SIM_MAX_FAILURES]; /* scheduled failures: which worker (same length as at_s) */
  int n_workers;
  double mttf_s;      /* each worker fails after an exponential time of this mean; NaN = never */
  double repair_s;    /* time until a failed worker is back (the mean, when exponential) */
  int repair_dist;    /* SIM_DURATION_* */
  int sync;           /* SIM_FAIL_*: synchronous policies wait for a down worker or drop it */
} sim_failure_config;

/* The regions a run's policy sees: 0 for a policy without regions, else cluster.network.
 * regions (at least 1 for such a policy: sim_config_check). */
int sim_network_regions(const sim_network_config *n, const opt_policy_config *policy);

/* Whether workers fail at all (scheduled failures, or a mean time to failure). */
int sim_failures_on(const sim_failure_config *f);

typedef struct sim_cluster_config {
  int workers;                /* K */
  sim_compute_config compute;
  sim_network_config network;
  sim_comm_config comm;
  sim_failure_config failures;
} sim_cluster_config;

typedef struct sim_stop_config {
  double sim_time_s;  /* stop at this simulated time; NaN = no limit */
  int steps;          /* stop once the global model reflects this many steps; 0 = no limit */
  double target_loss; /* stop once held-out loss <= this; NaN = off */
  double host_time_s; /* stop after this much real time; NaN = no limit */
} sim_stop_config;

enum { SIM_EVAL_TEST = 0, SIM_EVAL_TRAIN };

typedef struct sim_eval_config {
  double every_s; /* simulated seconds between evaluations of the global model */
  int on;         /* SIM_EVAL_*: the examples evaluated, held-out or training */
  int examples;   /* examples per evaluation (the first ones of that set); 0 = all */
  double target_loss; /* the held-out loss whose first crossing results report; NaN = none */
  int at_sync;    /* also evaluate whenever the global model changes */
} sim_eval_config;

typedef struct sim_record_config {
  int timeline; /* intervals (worker, kind, start, end) to log for Gantt charts; 0 = none */
} sim_record_config;

typedef struct sim_config {
  int seed;                    /* run seed; every random stream derives from it */
  wl_workload_config workload;
  sim_cluster_config cluster;
  opt_policy_config policy;    /* the one policy this run executes */
  sim_stop_config stop;
  sim_eval_config eval;
  sim_record_config record;
} sim_config;

extern const wl_param sim_cluster_params[];
extern const wl_param sim_stop_params[];
extern const wl_param sim_eval_params[];
extern const wl_param sim_record_params[];

/* Relations between fields. On error, writes the JSON path of the offending key to `path`
 * and what was expected and found to `msg`, and returns WL_ECONFIG. */
wl_status sim_config_check(const sim_config *cfg, char *path, size_t path_size, char *msg,
                           size_t msg_size);

#endif
