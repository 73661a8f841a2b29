/* palsgd — Pseudo-Asynchronous Local SGD (Naganuma et al., TMLR 2025, arXiv 2504.18454);
 * docs/algorithms.md §5, after the paper's Algorithm 1 and its official code.
 *
 * Phase 0, the first warmup_steps steps: DDP (gradients all-reduced every step; replicas and
 * their optimizer state kept identical). At the switch, z <- x.
 * Phase 1, per worker, step t: a mix step x <- x - (a_t * eta / p) * (x - z) (no batch, no
 * gradient, no compute time) or a gradient step of the inner optimizer at lr a_t / (1 - p);
 * which one is decided by a coin drawn after the previous step (U < p), the first step after
 * the switch being a gradient step. When (t + 1) mod H == 0, DiLoCo's synchronization:
 * delta = mean_k (z - x_k), z <- OuterOpt(z, delta), x_k <- z. One coin stream shared by
 * all workers (coin "shared", as the reference code) or one per worker ("per_worker").
 * With `compress`, the synchronization's changes x_k - z are sent compressed, as DiLoCo's
 * (docs/algorithms.md §14); the warm-up's gradients are not. */
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"

enum { TAG_GRAD = 1, TAG_SYNC = 2 };
enum { COIN_SHARED = 0, COIN_PER_WORKER };

typedef struct palsgd {
  opt_round round;      /* first: the workers of the step or round in progress */
  const opt_host *host;
  opt_optim_config inner;
  opt_outer outer;
  opt_codec codec;      /* what each worker sends at a synchronization */
  const int *weights;   /* shard sizes, or NULL */
  int H, warmup;
  double p, eta;
  int per_worker;       /* coins: one stream per worker */
  int phase;            /* 0: DDP warm-up; 1: local steps */
  long t;               /* the step position of the next step (same on every worker) */
  long step;            /* steps reflected in the global model */
  uint8_t *mix;         /* (K, H) the round's plans */
  uint8_t *next_mix;    /* (K) the coin carried into the next step */
  opt_train *jobs;      /* (K) */
} palsgd;

/* palsgd's own keys */
typedef struct palsgd_config {
  int H;
  double p;
  double eta;
  int warmup_steps;
  int coin /* COIN_* */;
  int weight_by_shard;
} palsgd_config;
OPT_POLICY_OWN_FITS(palsgd_config);
#define PC(f) OPT_OWN(palsgd_config, f)

/* The reference code's inner optimizer: AdamW with gradients clipped to 1. */
static void palsgd_inner(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_ADAMW);
  c->clip = 1.0;
}

/* The reference code's outer optimizer: Nesterov, lr 0.1, momentum 0.9. */
static void palsgd_outer(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_NESTEROV);
  c->lr = 0.1;
  c->momentum = 0.9;
}

static int mixes(const void *b) { return OPT_POLICY_OWN(palsgd_config, b)->p > 0; }

static const wl_param palsgd_params[] = {
  OPT_POLICY_INNER_PARAM(palsgd_inner),
  OPT_POLICY_OUTER_PARAM(palsgd_outer),
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 100, .min = 1, .max = 1 << 20,
   .unit = "steps", .doc = "steps (of both kinds) between synchronizations"},
  {.key = "p", .kind = WL_P_DOUBLE, .offset = PC(p), .def = 0.1, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL, .unit = "", .doc = "probability of a mix step"},
  {.key = "eta", .kind = WL_P_DOUBLE, .offset = PC(eta), .def = 0.5, .min = 0, .max = 1e6,
   .flags = WL_PF_TRAINED, .unit = "",
   .doc = "mixing rate of the pull toward the global model", .applies = mixes,
   .applies_doc = "p > 0"},
  {.key = "warmup_steps", .kind = WL_P_INT, .offset = PC(warmup_steps), .def = 100, .min = 0,
   .max = 1 << 30, .unit = "steps", .doc = "initial DDP steps"},
  {.key = "coin", .kind = WL_P_ENUM, .offset = PC(coin), .def = COIN_SHARED,
   .choices = "shared|per_worker", .unit = "",
   .doc = "one coin sequence for all workers (as the reference code), or one per worker",
   .applies = mixes, .applies_doc = "p > 0"},
  {.key = "weight_by_shard", .kind = WL_P_BOOL, .offset = PC(weight_by_shard), .def = 0,
   .flags = WL_PF_TRAINED, .unit = "", .doc = "weight each worker's pseudo-gradient by its shard's size"},
  OPT_POLICY_COMPRESS_PARAM,
  {0}};

static void palsgd_restart(void *state);
static void palsgd_reduce(void *state);

static void palsgd_destroy(void *state)
{
  palsgd *s = state;
  if (!s)
    return;
  opt_outer_free(&s->outer);
  opt_round_free(&s->round);
  opt_codec_free(&s->codec);
  free(s->mix);
  free(s->next_mix);
  free(s->jobs);
  free(s);
}

static wl_status palsgd_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                               char *err, size_t err_size)
{
  palsgd *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  s->host = host;
  const palsgd_config *c = OPT_POLICY_OWN(palsgd_config, cfg);
  s->inner = cfg->inner;
  s->weights = c->weight_by_shard ? host->shard_sizes : NULL;
  s->H = c->H;
  s->warmup = c->warmup_steps;
  s->p = c->p;
  s->eta = c->eta;
  s->per_worker = c->coin == COIN_PER_WORKER;
  s->mix = calloc((size_t)host->K * (size_t)c->H, 1);
  s->next_mix = calloc((size_t)host->K, 1);
  s->jobs = calloc((size_t)host->K, sizeof *s->jobs);
  if (!s->mix || !s->next_mix || !s->jobs ||
      opt_round_init(&s->round, host->K, s, palsgd_restart, palsgd_reduce) != WL_OK ||
      opt_codec_init(&s->codec, &cfg->compress, host->K, host->replicas[0].n, 0) != WL_OK)
    return WL_ENOMEM;
  return opt_outer_init(&s->outer, &cfg->outer, host, err, err_size);
}

static void palsgd_grads(palsgd *s)
{
  opt_round_start(&s->round, s->host, NULL);
}

/* The round from step t to the next multiple of H: each worker's plan of mix and gradient
 * steps, drawn from the coin stream(s) in step order. */
static void palsgd_begin_round(palsgd *s)
{
  const opt_host *h = s->host;
  int len = s->H - (int)(s->t % s->H);
  for (int j = 0; j < len; j++) {
    double shared = s->per_worker ? 0.0 : gsl_rng_uniform(h->rng(h->ctx, 0));
    for (int w = 0; w < h->K; w++) {
      s->mix[(size_t)w * s->H + j] = s->next_mix[w];
      double u = s->per_worker ? gsl_rng_uniform(h->rng(h->ctx, w + 1)) : shared;
      s->next_mix[w] = u < s->p;
    }
  }
  opt_round_begin(&s->round, h);
  for (int w = 0; w < h->K; w++) {
    s->jobs[w] = (opt_train){.steps = len, .mix = s->mix + (size_t)w * s->H,
                             .lr_scale = 1.0 / (1.0 - s->p)};
    if (s->round.in[w])
      h->train(h->ctx, w, &s->jobs[w]);
  }
}

/* Phase 0 ends: x_k <- mean x_k (equal already, as DDP keeps them), z <- x. */
static void palsgd_switch(palsgd *s)
{
  opt_outer_adopt(s->host, &s->outer);
  memset(s->next_mix, 0, (size_t)s->host->K);
  s->phase = 1;
  palsgd_begin_round(s);
}

static void palsgd_start(void *state)
{
  palsgd *s = state;
  if (s->warmup > 0)
    palsgd_grads(s);
  else
    palsgd_switch(s);
}

static void palsgd_reduce(void *state)
{
  palsgd *s = state;
  if (s->phase == 0) /* gradients, uncompressed */
    s->host->allreduce(s->host->ctx, s->host->payload_bytes, NULL, s->round.in, TAG_GRAD);
  else
    opt_host_reduce(s->host, &s->codec.cfg, s->host->payload_bytes, NULL, s->round.in,
                    TAG_SYNC);
}

/* A step or round with the workers that are up: a DDP step in the warm-up, a local round
 * after. */
static void palsgd_restart(void *state)
{
  palsgd *s = state;
  if (s->phase == 0)
    palsgd_grads(s);
  else
    palsgd_begin_round(s);
}

static void palsgd_collective_done(void *state, int tag)
{
  palsgd *s = state;
  if (tag == TAG_GRAD) {
    opt_sync_gradient_step(s->host, &s->inner, s->round.in, 1);
    s->t++;
    s->step = s->t;
    s->host->global_changed(s->host->ctx);
    if (s->t < s->warmup)
      palsgd_grads(s);
    else
      palsgd_switch(s);
    return;
  }
  opt_outer_sync(s->host, &s->outer, s->weights, s->round.in, &s->codec);
  s->t += s->jobs[0].steps;
  s->step = s->t;
  s->host->global_changed(s->host->ctx);
  palsgd_begin_round(s);
}

/* x_w <- x_w - (lr * eta / p) * (x_w - z) */
static void palsgd_mix_step(void *state, int w, double lr)
{
  palsgd *s = state;
  float *x = s->host->replicas[w].params;
  const float *z = s->outer.z;
  const float a = (float)(lr * s->eta / s->p);
  for (size_t i = 0; i < s->outer.n; i++)
    x[i] -= a * (x[i] - z[i]);
}

static const float *palsgd_global(const void *state)
{
  const palsgd *s = state;
  return s->phase == 0 ? s->host->replicas[0].params : s->outer.z;
}

static long palsgd_step(const void *state) { return ((const palsgd *)state)->step; }

static double palsgd_memory(const opt_policy_config *cfg, int K, double n)
{
  const palsgd_config *c = OPT_POLICY_OWN(palsgd_config, cfg);
  double streams = c->coin == COIN_PER_WORKER ? K + 1.0 : 1.0; /* the host's generators */
  return sizeof(palsgd) + opt_round_memory(K) + opt_outer_memory(&cfg->outer, n) +
         (double)K * ((double)c->H + 1 + sizeof(opt_train)) + streams * opt_rng_memory() +
         opt_codec_memory(&cfg->compress, K, n, 0);
}

const opt_policy_type opt_palsgd_type = {
  .variant = {"palsgd",
              "DDP warm-up, then local steps that are pulls toward the global model with "
              "probability p, outer sync every H (Naganuma et al. 2025)",
              palsgd_params},
  .traits = OPT_TRAIT_OUTER,
  .create = palsgd_create,
  .destroy = palsgd_destroy,
  .start = palsgd_start,
  .work_done = opt_round_work_done,
  .collective_done = palsgd_collective_done,
  .mix_step = palsgd_mix_step,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = palsgd_global,
  .step = palsgd_step,
  .memory = palsgd_memory,
};
