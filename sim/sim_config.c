#include "sim_config.h"

#include <math.h>
#include <stdio.h>

#define CO(f) offsetof(sim_compute_config, f)
static const wl_param compute_params[] = {
  {.key = "step_time_s", .kind = WL_P_DOUBLE, .offset = CO(step_time_s), .def = 0.1, .min = 0,
   .max = 1e6, .flags = WL_PF_MIN_EXCL, .unit = "s",
   .doc = "simulated time of one gradient step at speed 1"},
  {.key = "speeds", .kind = WL_P_DOUBLES, .offset = CO(speeds), .min = 0, .max = 1e6,
   .flags = WL_PF_MIN_EXCL, .size = SIM_MAX_LISTED_SPEEDS, .count_offset = CO(n_speeds),
   .unit = "x", .doc = "per-worker speed factors, one per worker; a step takes step_time_s / speed"},
  {0}};

#define NO(f) offsetof(sim_network_config, f)
static const wl_param network_params[] = {
  {.key = "latency_s", .kind = WL_P_DOUBLE, .offset = NO(latency_s), .def = 1e-3, .min = 0,
   .max = 1e3, .unit = "s", .doc = "one-way latency per message (alpha)"},
  {.key = "bandwidth_gbps", .kind = WL_P_DOUBLE, .offset = NO(bandwidth_gbps), .def = 10,
   .min = 0, .max = 1e12, .flags = WL_PF_MIN_EXCL, .unit = "Gbit/s",
   .doc = "per-worker link bandwidth (a huge value with latency 0 makes communication free)"},
  {.key = "collective", .kind = WL_P_ENUM, .offset = NO(collective), .def = SIM_COLL_RING,
   .choices = "ring", .unit = "", .doc = "all-reduce algorithm"},
  {0}};

#define MO(f) offsetof(sim_comm_config, f)
static const wl_param comm_params[] = {
  {.key = "params", .kind = WL_P_DOUBLE, .offset = MO(params), .min = 0, .max = 1e15,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "parameters",
   .doc = "parameter count whose traffic is simulated (default: the real model's)"},
  {.key = "bytes_per_param", .kind = WL_P_DOUBLE, .offset = MO(bytes_per_param), .def = 4,
   .min = 0, .max = 64, .flags = WL_PF_MIN_EXCL, .unit = "bytes",
   .doc = "bytes per parameter on the wire: 4 fp32, 2 bf16, 1 int8"},
  {0}};

#define KO(f) offsetof(sim_cluster_config, f)
const wl_param sim_cluster_params[] = {
  {.key = "workers", .kind = WL_P_INT, .offset = KO(workers), .def = 4, .min = 1,
   .max = 1 << 20, .unit = "workers", .doc = "number of workers K"},
  {.key = "compute", .kind = WL_P_OBJECT, .offset = KO(compute), .sub = compute_params,
   .unit = "", .doc = "how long a gradient step takes on each worker"},
  {.key = "network", .kind = WL_P_OBJECT, .offset = KO(network), .sub = network_params,
   .unit = "", .doc = "links and collectives"},
  {.key = "comm", .kind = WL_P_OBJECT, .offset = KO(comm), .sub = comm_params, .unit = "",
   .doc = "what a model or gradient weighs on the wire"},
  {0}};

#define SO(f) offsetof(sim_stop_config, f)
const wl_param sim_stop_params[] = {
  {.key = "sim_time_s", .kind = WL_P_DOUBLE, .offset = SO(sim_time_s), .min = 0, .max = 1e12,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "s",
   .doc = "stop at this simulated time"},
  {.key = "steps", .kind = WL_P_INT, .offset = SO(steps), .def = 0, .min = 0, .max = 2147483647,
   .unit = "steps", .doc = "stop once the global model reflects this many steps (0: no limit)"},
  {.key = "target_loss", .kind = WL_P_DOUBLE, .offset = SO(target_loss), .min = -1e300,
   .max = 1e300, .flags = WL_PF_OPTIONAL, .unit = "nats",
   .doc = "stop once the held-out loss is at or below this"},
  {.key = "host_time_s", .kind = WL_P_DOUBLE, .offset = SO(host_time_s), .min = 0, .max = 1e9,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "s",
   .doc = "stop after this much real (host) time"},
  {0}};

#define EO(f) offsetof(sim_eval_config, f)
const wl_param sim_eval_params[] = {
  {.key = "every_s", .kind = WL_P_DOUBLE, .offset = EO(every_s), .def = 10, .min = 0,
   .max = 1e12, .flags = WL_PF_MIN_EXCL, .unit = "s",
   .doc = "simulated time between evaluations of the global model"},
  {.key = "examples", .kind = WL_P_INT, .offset = EO(examples), .def = 0, .min = 0,
   .max = 2147483647, .unit = "examples",
   .doc = "held-out examples per evaluation, the first ones (0: all)"},
  {.key = "target_loss", .kind = WL_P_DOUBLE, .offset = EO(target_loss), .min = -1e300,
   .max = 1e300, .flags = WL_PF_OPTIONAL, .unit = "nats",
   .doc = "the held-out loss whose first crossing the time_to_target view reports (does not stop "
          "the run; see stop.target_loss)"},
  {0}};

wl_status sim_config_check(const sim_config *cfg, char *path, size_t path_size, char *msg,
                           size_t msg_size)
{
  const sim_cluster_config *c = &cfg->cluster;
  if (c->compute.n_speeds != 0 && c->compute.n_speeds != c->workers) {
    snprintf(path, path_size, "cluster.compute.speeds");
    snprintf(msg, msg_size, "expected one speed per worker (%d), got %d", c->workers,
             c->compute.n_speeds);
    return WL_ECONFIG;
  }
  const sim_stop_config *s = &cfg->stop;
  if (isnan(s->sim_time_s) && s->steps == 0 && isnan(s->target_loss) && isnan(s->host_time_s)) {
    snprintf(path, path_size, "stop");
    snprintf(msg, msg_size, "expected at least one of sim_time_s, steps, target_loss or "
                            "host_time_s, got none");
    return WL_ECONFIG;
  }
  const wl_dataset_config *ds = &cfg->workload.dataset;
  if (ds->type == WL_DATA_SYNTHETIC && cfg->eval.examples > ds->test_examples) {
    snprintf(path, path_size, "eval.examples");
    snprintf(msg, msg_size, "expected at most the held-out set's %d examples, got %d",
             ds->test_examples, cfg->eval.examples);
    return WL_ECONFIG;
  }
  char sub[200];
  if (wl_workload_check(&cfg->workload, sub, sizeof sub, msg, msg_size) != WL_OK) {
    snprintf(path, path_size, "workload.%s", sub);
    return WL_ECONFIG;
  }
  if (ds->type == WL_DATA_SYNTHETIC && ds->train_examples < c->workers) {
    snprintf(path, path_size, "workload.dataset.train_examples");
    snprintf(msg, msg_size, "expected at least one training example per worker (%d), got %d",
             c->workers, cfg->workload.dataset.train_examples);
    return WL_ECONFIG;
  }
  char pol[64];
  if (opt_policy_check(&cfg->policy, c->workers, pol, sizeof pol, msg, msg_size) != WL_OK) {
    snprintf(path, path_size, "policies.%s.%s", opt_policy_label(&cfg->policy), pol);
    return WL_ECONFIG;
  }
  return WL_OK;
}
