/* local_sgd — Local SGD (Stich 2019) with optional post-local warm-up (Lin et al. 2020).
 *
 * Warm-up (post-local SGD): the first warmup_steps steps are DDP steps, as in Lin et al.:
 * every worker computes a gradient, the gradients are all-reduced (mean, in worker order)
 * and one optimizer step is applied, so the replicas (and their optimizer states) stay
 * equal. Then, each round, every worker takes H inner steps on its own data and all
 * replicas' parameters are replaced by their average (an all-reduce of the parameters);
 * inner optimizer state stays local. The global model is the last average. */
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"

typedef struct local_sgd {
  opt_round round;  /* first: the workers of the round in progress */
  const opt_host *host;
  int H;            /* local steps per round after warm-up */
  int warmup_steps; /* DDP steps first */
  opt_optim_config inner; /* the workers' optimizer (applied to the mean gradient in warm-up) */
  int warm;         /* the round in progress is a warm-up (DDP) step */
  opt_train job;    /* the round in progress */
  long step;        /* local steps reflected in the global model */
  float *global;    /* (n) the last average */
} local_sgd;

/* local_sgd's own keys */
typedef struct local_sgd_config {
  int H;
  int warmup_steps;
} local_sgd_config;
OPT_POLICY_OWN_FITS(local_sgd_config);
#define PC(f) OPT_OWN(local_sgd_config, f)

static const wl_param local_sgd_params[] = {
  OPT_POLICY_INNER_PARAM(NULL),
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 32, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "local steps between parameter averagings"},
  {.key = "warmup_steps", .kind = WL_P_INT, .offset = PC(warmup_steps), .def = 0, .min = 0,
   .max = 1 << 30, .unit = "steps",
   .doc = "initial DDP steps (gradient all-reduce, one optimizer step): post-local SGD"},
  OPT_POLICY_PARTICIPATION_PARAM,
  {0}};

static void local_sgd_begin_round(void *state);
static void local_sgd_reduce(void *state);

static wl_status local_sgd_create(const opt_policy_config *cfg, const opt_host *host,
                                  void **state, char *err, size_t err_size)
{
  (void)err, (void)err_size;
  local_sgd *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  if (opt_round_init(&s->round, host->K, s, local_sgd_begin_round, local_sgd_reduce) != WL_OK) {
    free(s);
    return WL_ENOMEM;
  }
  size_t n = host->replicas[0].n;
  s->global = malloc((n + 1) * sizeof(float)); /* +1: n is 0 when timing only */
  if (!s->global) {
    opt_round_free(&s->round);
    free(s);
    return WL_ENOMEM;
  }
  memcpy(s->global, host->replicas[0].params, n * sizeof(float));
  s->host = host;
  const local_sgd_config *c = OPT_POLICY_OWN(local_sgd_config, cfg);
  s->H = c->H;
  s->warmup_steps = c->warmup_steps;
  s->inner = cfg->inner;
  opt_round_participation(&s->round, cfg->participation);
  *state = s;
  return WL_OK;
}

static void local_sgd_destroy(void *state)
{
  local_sgd *s = state;
  if (!s)
    return;
  free(s->global);
  opt_round_free(&s->round);
  free(s);
}

static void local_sgd_begin_round(void *state)
{
  local_sgd *s = state;
  s->warm = s->step < s->warmup_steps;
  s->job = (opt_train){.steps = s->warm ? 1 : s->H, .lr_scale = 1.0};
  opt_round_start(&s->round, s->host, s->warm ? NULL : &s->job);
}

static void local_sgd_start(void *state) { local_sgd_begin_round(state); }

static void local_sgd_reduce(void *state)
{
  local_sgd *s = state;
  s->host->allreduce(s->host->ctx, s->host->payload_bytes, NULL, s->round.in, 0);
}

static void local_sgd_collective_done(void *state, int tag)
{
  local_sgd *s = state;
  const opt_host *h = s->host;
  (void)tag;
  if (s->warm) {
    opt_sync_gradient_step(h, &s->inner, s->round.in, 1);
    memcpy(s->global, h->replicas[0].params, h->replicas[0].n * sizeof(float));
  } else {
    opt_host_average(h, s->round.in, s->global);
  }
  s->step += s->job.steps;
  h->global_changed(h->ctx);
  local_sgd_begin_round(s);
}

static const float *local_sgd_global(const void *state)
{
  return ((const local_sgd *)state)->global;
}

static long local_sgd_step(const void *state) { return ((const local_sgd *)state)->step; }

static double local_sgd_memory(const opt_policy_config *cfg, int K, double n)
{
  return sizeof(local_sgd) + opt_round_memory(K) + (n + 1) * sizeof(float) +
         (cfg->participation < 1 ? opt_rng_memory() : 0);
}

const opt_policy_type opt_local_sgd_type = {
  .variant = {"local_sgd",
              "H local steps, then parameter averaging (Stich 2019; post-local: Lin et al. 2020)",
              local_sgd_params},
  .traits = 0,
  .create = local_sgd_create,
  .destroy = local_sgd_destroy,
  .start = local_sgd_start,
  .work_done = opt_round_work_done,
  .collective_done = local_sgd_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = local_sgd_global,
  .step = local_sgd_step,
  .memory = local_sgd_memory,
};
