#include "sim_config.h"

#include "sim_time.h"

#include "sim_cluster.h"
#include "sim_flows.h"
#include "sim_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define SP(f) offsetof(sim_speed_config, f)
static const wl_param lognormal_params[] = {
  {.key = "sigma", .kind = WL_P_DOUBLE, .offset = SP(sigma), .def = 0.4, .min = 0, .max = 10,
   .unit = "", .doc = "std. dev. of log speed"},
  {0}};
static const wl_param uniform_params[] = {
  {.key = "min", .kind = WL_P_DOUBLE, .offset = SP(min), .def = 0.5, .min = 0, .max = 1e6,
   .flags = WL_PF_MIN_EXCL, .unit = "x", .doc = "slowest speed"},
  {.key = "max", .kind = WL_P_DOUBLE, .offset = SP(max), .def = 1.5, .min = 0, .max = 1e6,
   .flags = WL_PF_MIN_EXCL, .unit = "x", .doc = "fastest speed"},
  {0}};
static const wl_param gamma_params[] = {
  {.key = "shape", .kind = WL_P_DOUBLE, .offset = SP(shape), .def = 4, .min = 0, .max = 1e6,
   .flags = WL_PF_MIN_EXCL, .unit = "", .doc = "shape k (variance 1/k around mean 1)"},
  {0}};
static const wl_param two_class_params[] = {
  {.key = "slow_fraction", .kind = WL_P_DOUBLE, .offset = SP(slow_fraction), .def = 0.25,
   .min = 0, .max = 1, .unit = "fraction", .doc = "fraction of workers that are slow"},
  {.key = "slow_speed", .kind = WL_P_DOUBLE, .offset = SP(slow_speed), .def = 0.25, .min = 0,
   .max = 1e6, .flags = WL_PF_MIN_EXCL, .unit = "x", .doc = "their speed (the others: 1)"},
  {0}};
static const wl_variant sp_none = {"none", "every worker at speed 1", NULL};
static const wl_variant sp_slight = {"slight", "preset: lognormal, sigma 0.15", NULL};
static const wl_variant sp_moderate = {"moderate", "preset: lognormal, sigma 0.4", NULL};
static const wl_variant sp_very = {"very", "preset: lognormal, sigma 0.8", NULL};
static const wl_variant sp_lognormal = {"lognormal", "exp(N(0, sigma^2)), median 1",
                                        lognormal_params};
static const wl_variant sp_uniform = {"uniform", "U[min, max]", uniform_params};
static const wl_variant sp_gamma = {"gamma", "Gamma(shape, 1/shape), mean 1", gamma_params};
static const wl_variant sp_two_class = {
  "two_class", "round(slow_fraction K) workers, chosen at random, at slow_speed; the rest at 1",
  two_class_params};
/* Same order as SIM_SPEED_* */
static const wl_variant *const speed_variants[] = {
  &sp_none, &sp_slight, &sp_moderate, &sp_very, &sp_lognormal, &sp_uniform, &sp_gamma,
  &sp_two_class, NULL};
static const wl_param speed_params[] = {
  {.key = "dist", .kind = WL_P_VARIANT, .offset = SP(dist), .def = SIM_SPEED_NONE,
   .variants = speed_variants, .unit = "",
   .doc = "how worker speeds are drawn, once per run (presets: none, slight, moderate, very)"},
  {0}};

#define JO(f) offsetof(sim_jitter_config, f)
static const wl_param jitter_lognormal_params[] = {
  {.key = "sigma", .kind = WL_P_DOUBLE, .offset = JO(sigma), .def = 0.05, .min = 0, .max = 5,
   .unit = "", .doc = "std. dev. of the log of each step's time factor (mean 1)"},
  {0}};
static const wl_param jitter_uniform_params[] = {
  {.key = "width", .kind = WL_P_DOUBLE, .offset = JO(width), .def = 0.1, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL, .unit = "", .doc = "each step's time factor is U[1 - width, 1 + width]"},
  {0}};
static const wl_param jitter_empirical_params[] = {
  {.key = "file", .kind = WL_P_STRING, .offset = JO(file), .choices = "",
   .size = sizeof(((sim_jitter_config *)0)->file), .unit = "",
   .doc = "CSV of measured step times, 'worker,seconds' or 'seconds' lines (syncsim calibrate "
          "compute --times-out writes one): each step's time factor is a measured time drawn "
          "at random over its mean, the worker's own when the file has rows for it, else over "
          "all rows"},
  {0}};
static const wl_variant ji_none = {"none", "no per-step noise", NULL};
static const wl_variant ji_empirical = {"empirical", "measured step times, resampled",
                                        jitter_empirical_params};
static const wl_variant ji_lognormal = {"lognormal", "lognormal factor with mean 1",
                                        jitter_lognormal_params};
static const wl_variant ji_uniform = {"uniform", "uniform factor around 1",
                                      jitter_uniform_params};
static const wl_variant *const jitter_variants[] = {&ji_none, &ji_lognormal, &ji_uniform,
                                                    &ji_empirical, NULL};
static const wl_param jitter_params[] = {
  {.key = "dist", .kind = WL_P_VARIANT, .offset = JO(dist), .def = SIM_JITTER_NONE,
   .variants = jitter_variants, .unit = "", .doc = "per-step multiplicative noise"},
  {0}};

#define ST(f) offsetof(sim_straggler_config, f)
static int straggles(const void *b) { return ((const sim_straggler_config *)b)->rate_per_s > 0; }
static const wl_param straggler_params[] = {
  {.key = "rate_per_s", .kind = WL_P_DOUBLE, .offset = ST(rate_per_s), .def = 0, .min = 0,
   .max = 1e6, .unit = "1/s", .doc = "episodes per simulated second per worker (0: none)"},
  {.key = "slowdown", .kind = WL_P_DOUBLE, .offset = ST(slowdown), .def = 3, .min = 1,
   .max = 1e6, .unit = "x", .doc = "a straggling worker's speed is divided by this",
   .applies = straggles, .applies_doc = "rate_per_s > 0"},
  {.key = "duration_s", .kind = WL_P_DOUBLE, .offset = ST(duration_s), .def = 10, .min = 0,
   .max = 1e9, .flags = WL_PF_MIN_EXCL, .unit = "s",
   .doc = "an episode's length (its mean, when exponential)", .applies = straggles,
   .applies_doc = "rate_per_s > 0"},
  {.key = "duration_dist", .kind = WL_P_ENUM, .offset = ST(duration_dist),
   .def = SIM_DURATION_FIXED, .choices = "fixed|exponential", .unit = "",
   .doc = "how episode lengths are drawn", .applies = straggles,
   .applies_doc = "rate_per_s > 0"},
  {0}};

#define CO(f) offsetof(sim_compute_config, f)
static int no_device(const void *b)
{
  return isnan(((const sim_compute_config *)b)->device_tflops);
}
static int device(const void *b) { return !no_device(b); }
static int unlisted(const void *b) { return ((const sim_compute_config *)b)->n_speeds == 0; }
static const wl_param compute_params[] = {
  {.key = "step_time_s", .kind = WL_P_DOUBLE, .offset = CO(step_time_s), .def = 0.1, .min = 0,
   .max = 1e6, .flags = WL_PF_MIN_EXCL, .unit = "s",
   .doc = "simulated time of one gradient step at speed 1", .applies = no_device,
   .applies_doc = "no device_tflops"},
  {.key = "device_tflops", .kind = WL_P_DOUBLE, .offset = CO(device_tflops), .min = 0,
   .max = 1e9, .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "TFLOP/s",
   .doc = "when set, step time = flops_per_step / (device_tflops 1e12 utilization)"},
  {.key = "utilization", .kind = WL_P_DOUBLE, .offset = CO(utilization), .def = 0.4, .min = 0,
   .max = 1, .flags = WL_PF_MIN_EXCL, .unit = "fraction",
   .doc = "fraction of device_tflops a step achieves", .applies = device,
   .applies_doc = "device_tflops"},
  {.key = "flops_per_step", .kind = WL_P_DOUBLE, .offset = CO(flops_per_step), .min = 0,
   .max = 1e30, .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "FLOP",
   .doc = "FLOPs of one gradient step (default: the real model's per example x batch size)",
   .applies = device, .applies_doc = "device_tflops"},
  {.key = "speeds", .kind = WL_P_DOUBLES, .offset = CO(speeds), .min = 0, .max = 1e6,
   .flags = WL_PF_MIN_EXCL, .size = SIM_MAX_LISTED_SPEEDS, .count_offset = CO(n_speeds),
   .unit = "x", .doc = "per-worker speed factors, one per worker; a step takes step_time_s / speed"},
  {.key = "speed", .kind = WL_P_OBJECT, .offset = CO(speed), .sub = speed_params, .unit = "",
   .doc = "a distribution speeds are drawn from, when none are listed", .applies = unlisted,
   .applies_doc = "no speeds listed"},
  {.key = "jitter", .kind = WL_P_OBJECT, .offset = CO(jitter), .sub = jitter_params,
   .unit = "", .doc = "per-step noise on compute time"},
  {.key = "stragglers", .kind = WL_P_OBJECT, .offset = CO(stragglers), .sub = straggler_params,
   .unit = "", .doc = "random episodes during which a worker runs slower"},
  {.key = "trace", .kind = WL_P_STRING, .offset = CO(trace), .choices = "",
   .size = sizeof(((sim_compute_config *)0)->trace), .unit = "",
   .doc = "CSV of speed changes: time_s,worker,speed (worker * = all); the factor multiplies "
          "the worker's speed from that time on"},
  {0}};

#define NO(f) offsetof(sim_network_config, f)
static int nodes(const void *b) { return ((const sim_network_config *)b)->workers_per_node > 0; }
static int regional(const void *b) { return ((const sim_network_config *)b)->regions > 0; }
static const wl_param network_params[] = {
  {.key = "latency_s", .kind = WL_P_DOUBLE, .offset = NO(latency_s), .def = 1e-3, .min = 0,
   .max = 1e3, .unit = "s", .doc = "one-way latency per message (alpha)"},
  {.key = "bandwidth_gbps", .kind = WL_P_DOUBLE, .offset = NO(bandwidth_gbps), .def = 10,
   .min = 0, .max = 1e12, .flags = WL_PF_MIN_EXCL, .unit = "Gbit/s",
   .doc = "a worker link's bandwidth, each direction (a huge value with latency 0 makes "
          "communication free)"},
  {.key = "up_gbps", .kind = WL_P_DOUBLE, .offset = NO(up_gbps), .min = 0, .max = 1e12,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "Gbit/s",
   .doc = "a worker's upload bandwidth (default: bandwidth_gbps)"},
  {.key = "down_gbps", .kind = WL_P_DOUBLE, .offset = NO(down_gbps), .min = 0, .max = 1e12,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "Gbit/s",
   .doc = "a worker's download bandwidth (default: bandwidth_gbps)"},
  {.key = "link_scales", .kind = WL_P_DOUBLES, .offset = NO(link_scales), .min = 0, .max = 1e6,
   .flags = WL_PF_MIN_EXCL, .size = SIM_MAX_LISTED_SPEEDS, .count_offset = NO(n_link_scales),
   .unit = "x", .doc = "per-worker multipliers of its link's bandwidth, one per worker"},
  {.key = "server_gbps", .kind = WL_P_DOUBLE, .offset = NO(server_gbps), .min = 0, .max = 1e12,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "Gbit/s",
   .doc = "the parameter server's link, each direction (default: bandwidth_gbps)"},
  {.key = "collective", .kind = WL_P_ENUM, .offset = NO(collective), .def = SIM_COLL_RING,
   .choices = "ring|tree|halving_doubling|hierarchical", .unit = "",
   .doc = "all-reduce algorithm, priced by its alpha-beta formula"},
  {.key = "workers_per_node", .kind = WL_P_INT, .offset = NO(workers_per_node), .def = 0,
   .min = 0, .max = 1 << 20, .unit = "workers",
   .doc = "0: a flat network; g: nodes of g workers joined by slower inter-node links"},
  {.key = "inter_latency_s", .kind = WL_P_DOUBLE, .offset = NO(inter_latency_s), .def = 0.01,
   .min = 0, .max = 1e3, .unit = "s", .doc = "latency between nodes", .applies = nodes,
   .applies_doc = "workers_per_node > 0"},
  {.key = "inter_bandwidth_gbps", .kind = WL_P_DOUBLE, .offset = NO(inter_bandwidth_gbps),
   .def = 1, .min = 0, .max = 1e12, .flags = WL_PF_MIN_EXCL, .unit = "Gbit/s",
   .doc = "each worker's bandwidth to other nodes (a NIC per GPU: one NIC's rate); the "
          "hierarchical all-reduce sends M/g bytes per worker across nodes at this rate",
   .applies = nodes,
   .applies_doc = "workers_per_node > 0"},
  {.key = "link_latencies_s", .kind = WL_P_DOUBLES, .offset = NO(link_latencies_s), .min = 0,
   .max = 1e3, .size = SIM_MAX_LISTED_SPEEDS, .count_offset = NO(n_link_latencies), .unit = "s",
   .doc = "per-worker link latencies, one per worker (default: latency_s for all)"},
  {.key = "trace", .kind = WL_P_STRING, .offset = NO(trace), .choices = "",
   .size = sizeof(((sim_network_config *)0)->trace), .unit = "",
   .doc = "CSV of link changes: time_s,link,bandwidth_gbps,latency_s (link: a worker, *, "
          "server or inter; - leaves a value unchanged)"},
  {.key = "regions", .kind = WL_P_INT, .offset = NO(regions), .def = 0, .min = 0,
   .max = SIM_MAX_REGIONS, .flags = WL_PF_OMIT_DEFAULT, .unit = "regions",
   .doc = "0: a flat network; R: the workers form R regions of K/R (worker w in region "
          "floor(w R / K)), each with a local parameter server on its fast links (the "
          "workers' and server_gbps), joined to the global parameter server by one slower "
          "link per region; for a policy with regions (halos), which needs at least 1"},
  {.key = "region_latency_s", .kind = WL_P_DOUBLE, .offset = NO(region_latency_s), .def = 0.05,
   .min = 0, .max = 1e3, .unit = "s",
   .doc = "one-way latency of a message between a region's server and the global one",
   .applies = regional, .applies_doc = "regions > 0"},
  {.key = "region_bandwidth_gbps", .kind = WL_P_DOUBLE, .offset = NO(region_bandwidth_gbps),
   .def = 0.5, .min = 0, .max = 1e12, .flags = WL_PF_MIN_EXCL,
   .unit = "Gbit/s",
   .doc = "a region's link to the global parameter server, each direction (HALoS's "
          "inter-region links: 0.1 to 0.9 Gbit/s)",
   .applies = regional, .applies_doc = "regions > 0"},
  {0}};

#define MO(f) offsetof(sim_comm_config, f)
static const wl_param comm_params[] = {
  {.key = "params", .kind = WL_P_DOUBLE, .offset = MO(params), .min = 0, .max = 1e15,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "parameters",
   .doc = "parameter count whose traffic is simulated (default: the real model's)"},
  {.key = "bytes_per_param", .kind = WL_P_DOUBLE, .offset = MO(bytes_per_param), .def = 4,
   .min = 0, .max = 64, .flags = WL_PF_MIN_EXCL, .unit = "bytes",
   .doc = "bytes per parameter on the wire: 4 fp32, 2 bf16, 1 int8"},
  {.key = "compression", .kind = WL_P_DOUBLE, .offset = MO(compression), .def = 1, .min = 1,
   .max = 1e6, .unit = "x",
   .doc = "pricing only: payloads on the wire are divided by this ratio, the values sent are "
          "not changed (a policy's compress key compresses them for real)"},
  {.key = "overhead_s", .kind = WL_P_DOUBLE, .offset = MO(overhead_s), .def = 0, .min = 0,
   .max = 1e6, .flags = WL_PF_OMIT_DEFAULT, .unit = "s",
   .doc = "host work every collective pays besides the network (copying into a flat buffer, "
          "launching, dividing): fixed seconds per collective (each DDP bucket pays it)"},
  {.key = "overhead_s_per_mb", .kind = WL_P_DOUBLE, .offset = MO(overhead_s_per_mb), .def = 0,
   .min = 0, .max = 1e6, .flags = WL_PF_OMIT_DEFAULT, .unit = "s/MB",
   .doc = "... and seconds per MB (10^6 bytes) of the collective's payload (a participant's "
          "bytes)"},
  {0}};

#define FO(f) offsetof(sim_failure_config, f)
int sim_failures_on(const sim_failure_config *f) { return f->n_at > 0 || !isnan(f->mttf_s); }

static int fails(const void *b) { return sim_failures_on(b); }
static const wl_param failure_params[] = {
  {.key = "at_s", .kind = WL_P_DOUBLES, .offset = FO(at_s), .min = 0, .max = SIM_HORIZON_S,
   .size = SIM_MAX_FAILURES, .count_offset = FO(n_at), .unit = "s",
   .doc = "scheduled failures: the times (with workers, the same length)"},
  {.key = "workers", .kind = WL_P_INTS, .offset = FO(workers), .min = 0, .max = 1 << 20,
   .size = SIM_MAX_FAILURES, .count_offset = FO(n_workers), .unit = "",
   .doc = "scheduled failures: the worker that fails at each time"},
  {.key = "mttf_s", .kind = WL_P_DOUBLE, .offset = FO(mttf_s), .min = 0, .max = 1e12,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "s",
   .doc = "mean time to failure of each worker, exponential (null: no random failures)"},
  {.key = "repair_s", .kind = WL_P_DOUBLE, .offset = FO(repair_s), .def = 60, .min = 0,
   .max = 1e12, .flags = WL_PF_MIN_EXCL, .unit = "s",
   .doc = "time until a failed worker is back (its mean, when exponential)", .applies = fails,
   .applies_doc = "failures (at_s or mttf_s)"},
  {.key = "repair_dist", .kind = WL_P_ENUM, .offset = FO(repair_dist), .def = SIM_DURATION_FIXED,
   .choices = "fixed|exponential", .unit = "", .doc = "how repair times are drawn",
   .applies = fails, .applies_doc = "failures (at_s or mttf_s)"},
  {.key = "sync", .kind = WL_P_ENUM, .offset = FO(sync), .def = SIM_FAIL_WAIT,
   .choices = "wait|drop", .unit = "",
   .doc = "synchronous policies wait for a down worker, or continue without it",
   .applies = fails, .applies_doc = "failures (at_s or mttf_s)"},
  {0}};

int sim_network_regions(const sim_network_config *n, const opt_policy_config *policy)
{
  return opt_policy_has(policy, OPT_TRAIT_REGIONS) ? n->regions : 0;
}

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
  {.key = "failures", .kind = WL_P_OBJECT, .offset = KO(failures), .sub = failure_params,
   .unit = "", .doc = "workers going down and coming back"},
  {0}};

#define SO(f) offsetof(sim_stop_config, f)
const wl_param sim_stop_params[] = {
  {.key = "sim_time_s", .kind = WL_P_DOUBLE, .offset = SO(sim_time_s), .min = 0,
   .max = SIM_HORIZON_S,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "s",
   .doc = "stop at this simulated time"},
  {.key = "steps", .kind = WL_P_INT, .offset = SO(steps), .def = 0, .min = 0, .max = 2147483647,
   .unit = "steps", .doc = "stop once the global model reflects this many steps (0: no limit)"},
  {.key = "target_loss", .kind = WL_P_DOUBLE, .offset = SO(target_loss), .min = -1e300,
   .max = 1e300, .flags = WL_PF_OPTIONAL, .unit = "nats",
   .doc = "stop once the evaluated loss (held-out, or training with eval.on train) is at or below "
          "this"},
  {.key = "host_time_s", .kind = WL_P_DOUBLE, .offset = SO(host_time_s), .min = 0, .max = 1e9,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "s",
   .doc = "stop after this much real (host) time"},
  {0}};

#define EO(f) offsetof(sim_eval_config, f)
const wl_param sim_eval_params[] = {
  {.key = "every_s", .kind = WL_P_DOUBLE, .offset = EO(every_s), .def = 10, .min = 0,
   .max = SIM_HORIZON_S, .flags = WL_PF_MIN_EXCL, .unit = "s",
   .doc = "simulated time between evaluations of the global model"},
  {.key = "on", .kind = WL_P_ENUM, .offset = EO(on), .def = SIM_EVAL_TEST, .choices = "test|train",
   .flags = WL_PF_OMIT_DEFAULT | WL_PF_TRAINED, .unit = "",
   .doc = "the examples an evaluation uses: test: the held-out set; train: the training set "
          "(a fixed subset: its first `examples`), when what counts is fitting the training data"},
  {.key = "examples", .kind = WL_P_INT, .offset = EO(examples), .def = 0, .min = 0,
   .max = 2147483647, .unit = "examples",
   .doc = "examples per evaluation, the first ones of the set `on` names (0: all)"},
  {.key = "target_loss", .kind = WL_P_DOUBLE, .offset = EO(target_loss), .min = -1e300,
   .max = 1e300, .flags = WL_PF_OPTIONAL, .unit = "nats",
   .doc = "the evaluated loss whose first crossing the time_to_target view reports (does not stop "
          "the run; see stop.target_loss)"},
  {.key = "at_sync", .kind = WL_P_BOOL, .offset = EO(at_sync), .def = 0, .unit = "",
   .doc = "also evaluate the global model whenever it changes (each synchronization, each "
          "applied asynchronous update), so that the time to a target is exact, not a "
          "multiple of every_s"},
  {0}};

const wl_param sim_record_params[] = {
  {.key = "timeline", .kind = WL_P_INT, .offset = offsetof(sim_record_config, timeline),
   .def = 0, .min = 0, .max = 10000000, .unit = "intervals",
   .doc = "log the first N compute and communication intervals per run to the timeline table "
          "(0: none)"},
  {0}};

wl_status sim_config_check(const sim_config *cfg, char *path, size_t path_size, char *msg,
                           size_t msg_size)
{
  const sim_cluster_config *c = &cfg->cluster;
  if (c->compute.speed.dist == SIM_SPEED_UNIFORM && c->compute.speed.min > c->compute.speed.max) {
    snprintf(path, path_size, "cluster.compute.speed.max");
    snprintf(msg, msg_size, "expected at least min (%g), got %g", c->compute.speed.min,
             c->compute.speed.max);
    return WL_ECONFIG;
  }
  if (c->compute.n_speeds != 0 && c->compute.n_speeds != c->workers) {
    snprintf(path, path_size, "cluster.compute.speeds");
    snprintf(msg, msg_size, "expected one speed per worker (%d), got %d", c->workers,
             c->compute.n_speeds);
    return WL_ECONFIG;
  }
  const sim_network_config *n = &c->network;
  if (n->n_link_scales != 0 && n->n_link_scales != c->workers) {
    snprintf(path, path_size, "cluster.network.link_scales");
    snprintf(msg, msg_size, "expected one scale per worker (%d), got %d", c->workers,
             n->n_link_scales);
    return WL_ECONFIG;
  }
  const sim_failure_config *fc = &c->failures;
  if (fc->n_at != fc->n_workers) {
    snprintf(path, path_size, "cluster.failures.workers");
    snprintf(msg, msg_size, "expected one worker per time in at_s (%d), got %d", fc->n_at,
             fc->n_workers);
    return WL_ECONFIG;
  }
  for (int i = 0; i < fc->n_workers; i++)
    if (fc->workers[i] >= c->workers) {
      snprintf(path, path_size, "cluster.failures.workers[%d]", i);
      snprintf(msg, msg_size, "expected a worker index below %d, got %d", c->workers,
               fc->workers[i]);
      return WL_ECONFIG;
    }
  if (n->n_link_latencies != 0 && n->n_link_latencies != c->workers) {
    snprintf(path, path_size, "cluster.network.link_latencies_s");
    snprintf(msg, msg_size, "expected one latency per worker (%d), got %d", c->workers,
             n->n_link_latencies);
    return WL_ECONFIG;
  }
  if (n->collective == SIM_COLL_HIERARCHICAL &&
      (n->workers_per_node < 1 || c->workers % n->workers_per_node != 0)) {
    snprintf(path, path_size, "cluster.network.workers_per_node");
    snprintf(msg, msg_size, "expected a divisor of the %d workers for the hierarchical "
             "collective, got %d", c->workers, n->workers_per_node);
    return WL_ECONFIG;
  }
  int R = sim_network_regions(n, &cfg->policy);
  if (opt_policy_has(&cfg->policy, OPT_TRAIT_REGIONS) && R < 1) {
    snprintf(path, path_size, "cluster.network.regions");
    snprintf(msg, msg_size, "expected at least 1 with policy %s (its workers in regions, each "
             "with a local server: 1 for one region), got 0",
             opt_policy_registry[cfg->policy.type]->name);
    return WL_ECONFIG;
  }
  if (R > 0 && c->workers % R != 0) {
    snprintf(path, path_size, "cluster.network.regions");
    snprintf(msg, msg_size, "expected a divisor of the %d workers (each region holds K/R of "
             "them, contiguously), got %d", c->workers, R);
    return WL_ECONFIG;
  }
  if (c->compute.jitter.dist == SIM_JITTER_EMPIRICAL && !c->compute.jitter.file[0]) {
    snprintf(path, path_size, "cluster.compute.jitter.file");
    snprintf(msg, msg_size, "required with dist empirical: a CSV of measured step times");
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
  const int on_train = cfg->eval.on == SIM_EVAL_TRAIN;
  const int set_n = on_train ? ds->train_examples : ds->test_examples;
  if (ds->type == WL_DATA_SYNTHETIC && cfg->eval.examples > set_n) {
    snprintf(path, path_size, "eval.examples");
    snprintf(msg, msg_size, "expected at most the %s set's %d examples, got %d",
             on_train ? "training" : "held-out", set_n, cfg->eval.examples);
    return WL_ECONFIG;
  }
  char sub[200];
  if (wl_workload_check(&cfg->workload, sub, sizeof sub, msg, msg_size) != WL_OK) {
    snprintf(path, path_size, "workload.%s", sub);
    return WL_ECONFIG;
  }
  if (cfg->workload.model.type != WL_MODEL_NONE && ds->type == WL_DATA_SYNTHETIC &&
      ds->train_examples < c->workers) { /* (a timing-only run has no data) */
    snprintf(path, path_size, "workload.dataset.train_examples");
    snprintf(msg, msg_size, "expected at least one training example per worker (%d), got %d",
             c->workers, cfg->workload.dataset.train_examples);
    return WL_ECONFIG;
  }
  if (c->compute.trace[0]) { /* read it now (without keeping it), so that a bad trace is bad
                               input */
    wl_status st = sim_trace_load(c->compute.trace, c->workers, NULL, msg, msg_size);
    if (st != WL_OK) {
      snprintf(path, path_size, "cluster.compute.trace");
      return WL_ECONFIG;
    }
  }
  if (n->trace[0]) { /* read it now, so that a bad trace is bad input */
    sim_net_change *changes;
    int count;
    if (sim_net_trace_load(n->trace, c->workers, &changes, &count, msg, msg_size) != WL_OK) {
      snprintf(path, path_size, "cluster.network.trace");
      return WL_ECONFIG;
    }
    free(changes);
  }
  if (cfg->policy.compress.type != OPT_CODEC_NONE &&
      (c->comm.bytes_per_param != 4 || c->comm.compression != 1)) {
    snprintf(path, path_size, "policies.%s.compress", opt_policy_label(&cfg->policy));
    snprintf(msg, msg_size, "a compression scheme sets the bytes on the wire itself: expected "
             "cluster.comm.bytes_per_param 4 and compression 1 with it, got %g and %g",
             c->comm.bytes_per_param, c->comm.compression);
    return WL_ECONFIG;
  }
  /* the largest message on the wire: a payload, as the compression scheme encodes it */
  const double wire = !isnan(c->comm.params) ? c->comm.params
                      : cfg->workload.model.type == WL_MODEL_NONE ? cfg->workload.model.params
                                                                 : NAN; /* a real model's:
                                                                           small */
  if (!isnan(wire)) {
    double bytes = wire * c->comm.bytes_per_param / c->comm.compression;
    const opt_codec_config *z = &cfg->policy.compress;
    if (opt_codec_lossy(z) && bytes < 0x1p60)
      bytes = fmax(bytes, (double)opt_codec_wire_bytes(z, (int64_t)llround(bytes)));
    if (bytes > ldexp(1.0, SIM_FLOW_MAX_MESSAGE_BITS)) {
      snprintf(path, path_size, "%s",
               !isnan(c->comm.params) ? "cluster.comm.params" : "workload.model.params");
      snprintf(msg, msg_size, "expected payloads of at most 2^50 bytes (1.1 PB) on the wire, "
               "got %.4g bytes (parameters x bytes_per_param / compression%s)", bytes,
               opt_codec_lossy(z) ? ", as the policy's compress scheme encodes them" : "");
      return WL_ECONFIG;
    }
  }
  char pol[64];
  if (opt_policy_check(&cfg->policy, c->workers, pol, sizeof pol, msg, msg_size) != WL_OK) {
    snprintf(path, path_size, "policies.%s.%s", opt_policy_label(&cfg->policy), pol);
    return WL_ECONFIG;
  }
  return WL_OK;
}
