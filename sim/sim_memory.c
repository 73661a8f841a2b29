/* sim_memory — what a run will need in memory, estimated before anything is built, and the
 * limit it must fit in. */
#include "sim_runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_rng.h"
#include "sim_runner_impl.h"

int sim_hears_failures(const sim_config *cfg)
{
  return opt_policy_has(&cfg->policy, OPT_TRAIT_ASYNC) ||
         cfg->cluster.failures.sync == SIM_FAIL_DROP;
}

long sim_task_examples(const sim_config *cfg)
{
  double H = opt_policy_get(&cfg->policy, "H"); /* (each task policy's rounds: H at most) */
  WL_ASSERT(H >= 1);
  return (long)H * cfg->workload.batch_size;
}

static double file_bytes(const char *path)
{
  struct stat sb;
  return path[0] && stat(path, &sb) == 0 ? (double)sb.st_size : 0;
}

wl_status sim_memory_estimate(const sim_config *cfg, int threads, sim_memory *m)
{
  memset(m, 0, sizeof *m);
  const wl_workload_config *wc = &cfg->workload;
  const sim_compute_config *cc = &cfg->cluster.compute;
  const sim_failure_config *fc = &cfg->cluster.failures;
  double K = cfg->cluster.workers, B = wc->batch_size, n = 0;
  int timing_only = wc->model.type == WL_MODEL_NONE;
  int failures = sim_failures_on(fc), hears = sim_hears_failures(cfg);
  int T = threads < 1 || timing_only ? 1 : (threads > K ? (int)K : threads);
  if (!timing_only) {
    wl_dataset_shape d;
    double work;
    wl_dataset_size(&wc->dataset, wl_model_seq_len(&wc->model), &d);
    wl_status st = wl_model_size(&wc->model, d.dim, d.classes, wc->batch_size, &n, &work);
    if (st != WL_OK)
      return st;
    int text = wc->dataset.type == WL_DATA_TEXT;
    double batch = B * (text ? 8.0 * d.dim : 4.0 * d.dim + 4);
    m->dataset = d.bytes + d.n_train * (4 + 8); /* and the shards' indices, the split's scratch */
    m->models = (T + 1) * (work + batch) + n * sizeof(float); /* + the last evaluated params */
    double sf = opt_optim_state_floats(&cfg->policy.inner);
    m->replicas = K * (2 + sf) * n * sizeof(float);
    /* each worker's trainer: its sampler (its epoch order over its shard, a batch's picks)
     * and batch stream */
    m->workers = d.n_train * 4 + K * (sizeof(sim_trainer) + B * 8 + sim_rng_memory(SIM_RNG_BATCHES));
    if (cfg->policy.shards == OPT_SHARDS_LEAST_VISITED) /* each worker's task batches */
      m->workers += K * 8.0 * (double)sim_task_examples(cfg);
    if (failures && hears) /* snapshots: a replica, an epoch order and a batch stream */
      m->replicas *= 2, m->workers += d.n_train * 4 + K * sim_rng_memory(SIM_RNG_BATCHES);
  }
  /* the runner's, the cluster's, the network's and the flows' per-worker records, the event
   * queue (up to twice its initial size) */
  m->workers += K * (sizeof(sim_worker) + sizeof(opt_replica) + sizeof(wl_shard) + 8 + 4 + 8 + 2 +
                     8 + 8 + 4 + 3 * 8 + 2 * (3 * 8 + 4) +
                     sim_flows_memory(2, 2) +
                     2 * 2 * sizeof(sim_event)) +
                (K + 1) * 8; /* (the policy's streams, its memory counts them) */
  /* transfers beyond two per worker (and two), for a policy that has more in flight */
  m->workers += (double)(opt_policy_max_transfers(&cfg->policy, (int)K) - 2 * (long)K - 2) *
                sim_flows_memory(0, 1);
  int R = sim_network_regions(&cfg->cluster.network, &cfg->policy);
  if (R > 0) /* the regions' links, and the transfers between the servers */
    m->workers += sim_flows_memory(4 * R, (int)(2 * K + 2 * R));
  if (failures)
    m->workers += K * sim_rng_memory(SIM_RNG_FAILURE);
  if (cc->jitter.dist != SIM_JITTER_NONE)
    m->workers += K * (8 + sim_rng_memory(SIM_RNG_JITTER));
  if (cc->stragglers.rate_per_s > 0)
    m->workers += K * (2 * (8 + sim_rng_memory(SIM_RNG_STRAGGLER)) + 4 * 8);
  if (cc->stragglers.rate_per_s > 0 || cc->trace[0]) /* the fastest worker's tree and heap */
    m->workers += K * (4 * 8 + 8 + 4);
  if (cc->trace[0])
    m->workers += K * sizeof(sim_trace) + sim_trace_memory(cc->trace, (int)K);
  m->workers += 4 * file_bytes(cfg->cluster.network.trace); /* changes: ~32 B per >= 8 B row */
  m->policy = opt_policy_memory(&cfg->policy, (int)K, n, R);
  m->total = m->dataset + m->models + m->replicas + m->workers + m->policy + (1 << 20);
  return WL_OK;
}

void sim_format_bytes(double v, char *buf, size_t size)
{
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (v >= 1024 && u < 6 && isfinite(v))
    v /= 1024, u++;
  snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static int memory_share = 1; /* runs sharing the memory at once */

void sim_memory_set_share(int runs_at_once) { memory_share = runs_at_once > 1 ? runs_at_once : 1; }

double sim_memory_limit(char *why, size_t why_size)
{
  double limit = INFINITY;
  const char *what = "no limit found";
#define LOWER(v, text) \
  do {                 \
    double v_ = (v);   \
    if (v_ > 0 && v_ < limit) { \
      limit = v_;      \
      what = (text);   \
    }                  \
  } while (0)
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    LOWER((double)pages * (double)page, "the machine's physical memory");
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    LOWER((double)rl.rlim_cur, "the address-space limit (ulimit -v)");
  if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    LOWER((double)rl.rlim_cur, "the data-size limit (ulimit -d)");
  FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* a container's (cgroup v2) */
  if (f) {
    double v;
    if (fscanf(f, "%lf", &v) == 1)
      LOWER(v, "the control group's memory.max");
    fclose(f);
  }
  const char *env = getenv("SYNCSIM_MEMORY_LIMIT");
  if (env && *env) {
    char *end;
    double v = strtod(env, &end);
    double scale = *end == 'K' ? 0x1p10 : *end == 'M' ? 0x1p20 : *end == 'G' ? 0x1p30
                 : *end == 'T' ? 0x1p40 : 1;
    end += scale > 1;
    if (!(*end == '\0' && v > 0 && isfinite(v) && end > env && (env[0] >= '0' && env[0] <= '9'))) {
      if (why)
        snprintf(why, why_size, "SYNCSIM_MEMORY_LIMIT: expected a size such as 8G, 512M or "
                 "1000000 (bytes), got '%.40s'", env);
      return NAN;
    }
    LOWER(v * scale, "SYNCSIM_MEMORY_LIMIT");
  }
#undef LOWER
  if (why && memory_share > 1)
    snprintf(why, why_size, "a 1/%d share (for %d runs at once) of %s", memory_share,
             memory_share, what);
  else if (why)
    snprintf(why, why_size, "%s", what);
  return limit / memory_share;
}

/* WL_ECONFIG, with a message naming the keys that matter, when cfg needs more memory than
 * this process may use. */
wl_status sim_check_memory(const sim_config *cfg, int threads, char *err, size_t err_size)
{
  sim_memory m;
  char why[160], need[32], have[32], parts[5][32];
  wl_status st = sim_memory_estimate(cfg, threads, &m);
  if (st == WL_ELIMIT) {
    snprintf(err, err_size, "workload.model: a model of this size would need more memory than "
             "any machine has");
    return WL_ECONFIG;
  }
  if (st != WL_OK)
    return st;
  double limit = sim_memory_limit(why, sizeof why);
  if (isnan(limit)) {
    snprintf(err, err_size, "%s", why);
    return WL_ECONFIG;
  }
  if (m.total <= limit)
    return WL_OK;
  sim_format_bytes(m.total, need, sizeof need);
  sim_format_bytes(limit, have, sizeof have);
  double part[5] = {m.dataset, m.models, m.replicas, m.workers, m.policy};
  for (int i = 0; i < 5; i++)
    sim_format_bytes(part[i], parts[i], sizeof parts[i]);
  snprintf(err, err_size, "memory: this run needs about %s (dataset %s; model workspaces %s; "
           "the %d workers' replicas %s and other state %s; policy %s), more than the %s of %s; "
           "reduce cluster.workers, the model, workload.batch_size or the dataset%s",
           need, parts[0], parts[1], cfg->cluster.workers, parts[2], parts[3], parts[4], have,
           why, memory_share > 1 ? ", or run fewer at once (--jobs)" : "");
  return WL_ECONFIG;
}
