/* slowmo — SlowMo, slow momentum on top of Local SGD (Wang, Tantia, Ballas, Rabbat, ICLR 2020,
 * arXiv 1910.00643, Algorithm 1); docs/algorithms.md §9.
 *
 * Round t starts from the outer iterate z (every replica's parameters are z). The base
 * optimizer's buffers are first reset (zeroed, its step count too), averaged over the
 * workers, or kept, as `buffers` says (line 2 of Algorithm 1). Each worker takes H steps of
 * its inner (base) optimizer; then the parameters are all-reduced to their exact average
 * xbar (in worker order) and, with gamma the inner learning rate at the round's first step,
 *   u <- beta u + (z - xbar) / gamma,   z <- z - alpha gamma u,
 * u starting at 0; every replica's parameters become z. Each element is computed in double
 * and rounded to float once, u kept in float. alpha = 1 and beta = 0 give Local SGD (z =
 * xbar up to the rounding of u); beta > 0 with alpha = 1 is BMUF (Chen & Huo 2016).
 *
 * Defaults are the paper's: alpha = 1 ("consistently the best"), H = 12 (its Local SGD
 * runs), beta = 0.5 (it tunes beta, "typically 0.4 to 0.8"), inner SGD with Nesterov
 * momentum 0.9 and its buffers reset (it zeroes the buffers of SGD with momentum; with Adam it
 * keeps them: set buffers "keep" for AdamW). When the inner learning rate is 0 (a schedule at
 * its end) the round moved nothing and u only decays. */
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"

enum { BUFFERS_RESET = 0, BUFFERS_AVERAGE, BUFFERS_KEEP };

/* slowmo's own keys */
typedef struct slowmo_config {
  int H;
  double alpha;
  double beta;
  int buffers; /* BUFFERS_* */
} slowmo_config;
OPT_POLICY_OWN_FITS(slowmo_config);
#define PC(f) OPT_OWN(slowmo_config, f)

/* The paper's base optimizer for its Local SGD runs: SGD with Nesterov momentum (0.9). */
static void slowmo_inner(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_NESTEROV);
  c->momentum = 0.9;
}

static int inner_has_state(const void *b)
{
  return opt_optim_state_floats(&((const opt_policy_config *)b)->inner) > 0;
}

static const wl_param slowmo_params[] = {
  OPT_POLICY_INNER_PARAM(slowmo_inner),
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 12, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "base-optimizer steps per round (the paper's tau)"},
  {.key = "alpha", .kind = WL_P_DOUBLE, .offset = PC(alpha), .def = 1.0, .min = 0, .max = 100,
   .flags = WL_PF_MIN_EXCL | WL_PF_TRAINED, .unit = "", .doc = "slow learning rate"},
  {.key = "beta", .kind = WL_P_DOUBLE, .offset = PC(beta), .def = 0.5, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL | WL_PF_TRAINED, .unit = "", .doc = "slow momentum factor"},
  {.key = "buffers", .kind = WL_P_ENUM, .offset = PC(buffers), .def = BUFFERS_RESET,
   .choices = "reset|average|keep", .flags = WL_PF_TRAINED, .unit = "",
   .doc = "the inner optimizer's state at each round's start: zeroed, averaged over the "
          "workers, or kept",
   .applies = inner_has_state, .applies_doc = "an inner optimizer with state (not sgd)"},
  OPT_POLICY_PARTICIPATION_PARAM,
  {0}};

typedef struct slowmo {
  opt_round round; /* first: the workers of the round in progress */
  const opt_host *host;
  slowmo_config c;
  opt_optim_config inner;
  opt_train job;   /* the round in progress: H steps */
  double gamma;    /* the inner learning rate at the round's first step (its first
                      participant's) */
  long step;       /* local steps reflected in z */
  size_t n;
  float *z;        /* (n) the outer iterate: the global model */
  float *u;        /* (n) the slow momentum */
  float *xbar;     /* (n) the round's average */
} slowmo;

static void slowmo_begin_round(void *state);
static void slowmo_reduce(void *state);

static void slowmo_destroy(void *state)
{
  slowmo *s = state;
  if (!s)
    return;
  opt_round_free(&s->round);
  free(s->z);
  free(s);
}

static wl_status slowmo_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                               char *err, size_t err_size)
{
  (void)err, (void)err_size;
  slowmo *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  s->host = host;
  s->c = *OPT_POLICY_OWN(slowmo_config, cfg);
  s->inner = cfg->inner;
  s->n = host->replicas[0].n;
  s->z = calloc(3 * s->n + 1, sizeof(float)); /* +1: n is 0 when timing only */
  if (!s->z || opt_round_init(&s->round, host->K, s, slowmo_begin_round, slowmo_reduce))
    return WL_ENOMEM;
  opt_round_participation(&s->round, cfg->participation);
  s->u = s->z + s->n;
  s->xbar = s->u + s->n;
  memcpy(s->z, host->replicas[0].params, s->n * sizeof(float));
  return WL_OK;
}

/* Line 2 of Algorithm 1, over the workers that are up (those the round takes). */
static void prepare_buffers(slowmo *s)
{
  const opt_host *h = s->host;
  size_t floats = (size_t)h->replicas[0].state_floats * s->n;
  if (s->c.buffers == BUFFERS_KEEP || floats == 0)
    return;
  if (s->c.buffers == BUFFERS_RESET) {
    for (int k = 0; k < h->K; k++)
      if (h->up[k]) {
        memset(h->replicas[k].state, 0, floats * sizeof(float));
        h->replicas[k].step = 0; /* a fresh optimizer: AdamW's bias correction restarts */
      }
    return;
  }
  for (size_t i = 0; i < floats; i++) { /* mean in worker order, in double */
    double sum = 0;
    int m = 0;
    for (int k = 0; k < h->K; k++)
      if (h->up[k]) {
        sum += h->replicas[k].state[i];
        m++;
      }
    for (int k = 0; k < h->K && m; k++)
      if (h->up[k])
        h->replicas[k].state[i] = (float)(sum / m);
  }
}

static void slowmo_begin_round(void *state)
{
  slowmo *s = state;
  prepare_buffers(s);
  s->job = (opt_train){.steps = s->c.H, .lr_scale = 1.0};
  opt_round_start(&s->round, s->host, &s->job);
}

static void slowmo_start(void *state) { slowmo_begin_round(state); }

static void slowmo_reduce(void *state)
{
  slowmo *s = state;
  s->host->allreduce(s->host->ctx, s->host->payload_bytes, NULL, s->round.in, 0);
}

enum { RANGE = 1 << 12 }; /* elements per task of the synchronization */

/* Elements [lo, hi): the average, the slow momentum step, z copied to every replica. */
static void sync_part(void *arg, int i)
{
  slowmo *s = arg;
  const opt_host *h = s->host;
  size_t lo = (size_t)i * RANGE, hi = s->n - lo < RANGE ? s->n : lo + RANGE;
  opt_replicas_mean_range(h->replicas, h->K, s->round.in, OPT_BUF_PARAMS, s->xbar, lo, hi);
  const double beta = s->c.beta, gamma = s->gamma, step = s->c.alpha * s->gamma;
  /* gamma 0 (a schedule at its end): the round moved nothing (xbar = z); u decays alone */
  for (size_t j = lo; j < hi; j++) {
    double drift = gamma > 0 ? ((double)s->z[j] - (double)s->xbar[j]) / gamma : 0.0;
    float u = (float)(beta * s->u[j] + drift);
    s->u[j] = u;
    s->z[j] = (float)((double)s->z[j] - step * u);
  }
  for (int k = 0; k < h->K; k++)
    memcpy(h->replicas[k].params + lo, s->z + lo, (hi - lo) * sizeof(float));
}

static void slowmo_collective_done(void *state, int tag)
{
  slowmo *s = state;
  (void)tag;
  /* gamma: the inner rate at the round's first step, where the round's first participant
     (they all stepped alike, but for one that missed rounds) took it */
  int first = 0;
  while (first < s->host->K - 1 && !s->round.in[first])
    first++;
  long t = s->host->replicas[first].local_steps - s->job.steps; /* (0 when timing only) */
  s->gamma = opt_optim_lr(&s->inner, t > 0 ? t : 0);
  s->host->parallel(s->host->ctx, (int)((s->n + RANGE - 1) / RANGE), sync_part, s);
  s->step += s->job.steps;
  s->host->global_changed(s->host->ctx);
  slowmo_begin_round(s);
}

static const float *slowmo_global(const void *state) { return ((const slowmo *)state)->z; }

static long slowmo_step(const void *state) { return ((const slowmo *)state)->step; }

static double slowmo_memory(const opt_policy_config *cfg, int K, double n)
{
  return sizeof(slowmo) + opt_round_memory(K) + (3 * n + 1) * sizeof(float) +
         (cfg->participation < 1 ? opt_rng_memory() : 0);
}

const opt_policy_type opt_slowmo_type = {
  .variant = {"slowmo",
              "Local SGD rounds of H steps, then a slow momentum step on the average "
              "(Wang et al. 2020)",
              slowmo_params},
  .traits = 0,
  .create = slowmo_create,
  .destroy = slowmo_destroy,
  .start = slowmo_start,
  .work_done = opt_round_work_done,
  .collective_done = slowmo_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = slowmo_global,
  .step = slowmo_step,
  .memory = slowmo_memory,
};
