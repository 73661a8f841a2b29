/* halos — Hierarchical Asynchronous Local SGD (HALoS: Kim, Li, Gandham, Baldonado, Gangidi,
 * Balaji, Wang, Akella, ICML 2025, arXiv 2506.04531, Algorithm 1; the authors' simulator,
 * github.com/utnslab/halos, for the details the paper leaves open); docs/algorithms.md.
 *
 * The workers form R regions (cluster.network.regions; worker w in region w / (K/R)). Each
 * region has a local parameter server (LPS, endpoint OPT_LPS(r)) on its fast links; one
 * global parameter server (GPS, OPT_SERVER) is reached by each LPS over its region's slow
 * link. Per worker w, repeatedly: it receives its LPS's model theta0 (a transfer from the
 * LPS), takes H_w inner steps (its inner optimizer state persists) to x_w, and pushes
 * delta = theta0 - x_w to its LPS (a transfer).
 *
 * LPS r, on each worker's delta (in simulated arrival order):
 *   theta_l <- LocalOpt(theta_l, delta)        one step of `lps` per arrival
 *   u <- u + 1                                  updates since the last merge
 *   if u == updates and no push is in flight:   push  Delta = theta_m - theta_l  to the GPS
 *   the worker receives theta_l and starts its next round at once
 * on the GPS's model theta_g (the reply to its push):
 *   theta_l <- (1 - alpha) theta_l + alpha theta_g;  theta_m <- theta_l;  u <- 0
 * theta_m is the LPS's model after its last merge (its initial model before the first), so
 * a push carries the change of the `updates` arrivals since then; arrivals while a push is
 * in flight change theta_l, and reach the GPS only through what the merge keeps of them
 * (1 - alpha), as in the authors' simulator.
 *
 * GPS, on each LPS push (in arrival order): theta_g <- GlobalOpt(theta_g, Delta) (`outer`,
 * one step per push), version += 1, and it replies theta_g to that LPS.
 *
 * The optimizers are those of opt_optim; the paper's are delayed Nesterov (Liu et al.'s,
 * lr lambda N, momentum beta, momentum updated once per N arrivals: per arrival an
 * lr-lambda step): LPS lambda_l 0.2, beta_l 0.9, N 16; GPS lambda_g 0.15, beta_g 0.5, N 2;
 * alpha 0.25, updates (the paper's K) 32, H 8, DyLU on; workers AdamW lr 1e-3, betas
 * (0.9, 0.95), weight decay 0.1, clip 1. An optimizer's N = 0 means the arrivals of one
 * window: the region's workers (LPS), the regions (GPS).
 *
 * DyLU: H_w = max(1, floor(v_w / max_j v_j * H)) at each round's start, as async_local_sgd.
 *
 * relay (for the identity with async_local_sgd, docs/algorithms.md): the LPS only relays —
 * each worker's delta goes on to the GPS as is (its own transfer over the region's link), the
 * GPS applies it with `outer`, and the worker waits for the GPS model (GPS -> LPS -> worker).
 * With one region, a free worker-LPS hop and the region's link as async's server link, this
 * is async_local_sgd with the same outer optimizer, bit for bit.
 *
 * Staleness (record_update, at each arrival at the GPS): GPS updates since the model the
 * update started from reached its LPS (relay: its worker). The update is the worker's whose
 * arrival made the LPS push (relay: its own).
 *
 * A worker that goes down loses its round in flight (its work, or its transfer to or from
 * its LPS); when it comes back it gets its LPS's model (relay: the GPS's) and starts over.
 * What has reached an LPS stays with the servers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"

/* Transfers: worker <-> LPS (PULL, PUSH), LPS <-> GPS (UP, DOWN); relayed ones carry their
 * worker and its failure epoch: kind + 8 (w + K epoch). */
enum { TAG_PULL = 1, TAG_PUSH, TAG_UP, TAG_DOWN, TAG_RELAY_UP, TAG_RELAY_DOWN };
enum { EPOCHS = 128 }; /* failure epochs told apart in a relayed transfer's tag */

/* Where each worker is in its round. */
enum { PH_PULLING = 0, PH_COMPUTING, PH_PUSHING, PH_RELAYING, PH_DOWN };

/* halos' own keys */
typedef struct halos_config {
  opt_optim_config lps; /* each LPS's optimizer on its workers' pseudo-gradients */
  int H;
  int dylu;
  int updates;          /* LPS updates per push to the GPS (the paper's K) */
  double alpha;         /* weight of the GPS model in an LPS's merge */
  int relay;            /* the LPS relays each update to the GPS (identity with async) */
} halos_config;
OPT_POLICY_OWN_FITS(halos_config);
#define PC(f) OPT_OWN(halos_config, f)

/* One region's local parameter server. */
typedef struct halos_lps {
  float *theta;    /* (n) its model theta_l */
  float *merged;   /* (n) theta_m: its model after its last merge */
  float *up;       /* (n) the change in flight to the GPS */
  float *down;     /* (n) the GPS model in flight to it */
  float *state;    /* its optimizer's state */
  long t;          /* its optimizer's steps */
  int count;       /* updates since its last merge */
  int pushing;     /* a push (and its reply) is in flight */
  int pusher;      /* the worker whose arrival made the push */
  long steps;      /* local steps of the updates since its last push */
  long push_steps; /* ... of the push in flight */
  long v0;         /* the GPS version of its last merge */
  long v_down;     /* the GPS version of the model in flight to it */
} halos_lps;

typedef struct halos {
  const opt_host *host;
  halos_config c;
  opt_optim_config outer, lps_opt; /* resolved */
  size_t n;
  int R, per;        /* regions, workers per region */
  float *theta;      /* (n) the GPS model */
  float *ostate;     /* GPS optimizer state */
  float *delta;      /* (n) scratch: an arriving pseudo-gradient */
  float *snap;       /* (K, n) the model each worker started its round from */
  float *relayed;    /* (K, n) relay: each worker's delta on its way to the GPS */
  long *v0;          /* (K) relay: the GPS version each worker started from */
  int *Hw;           /* (K) local steps per round */
  int *epoch;        /* (K) failures so far */
  opt_train *jobs;   /* (K) */
  uint8_t *phase;    /* (K) PH_* */
  uint8_t *inflight; /* (K) relay: its delta is on its way to the GPS */
  halos_lps *lps;    /* (R) */
  float *block;      /* every float buffer above */
  long version;      /* GPS updates */
  long outer_t;      /* GPS optimizer steps */
  long applied_steps;/* local steps of the updates the GPS applied, summed over workers */
} halos;

/* The paper's worker optimizer: AdamW lr 1e-3, betas (0.9, 0.95), wd 0.1, clip 1. */
static void halos_inner(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_ADAMW);
  c->beta2 = 0.95;
  c->weight_decay = 0.1;
  c->clip = 1.0;
}

/* The paper's GPS: delayed Nesterov, lambda_g 0.15 with N 2 (lr 0.3), beta_g 0.5. */
static void halos_outer(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_DELAYED_NESTEROV);
  c->lr = 0.3;
  c->momentum = 0.5;
  c->dn_n = 2;
}

/* The paper's LPS: delayed Nesterov, lambda_l 0.2 with N 16 (lr 3.2), beta_l 0.9. */
static void halos_lps_opt(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_DELAYED_NESTEROV);
  c->lr = 3.2;
  c->momentum = 0.9;
  c->dn_n = 16;
}

static int hierarchical(const void *b) { return !OPT_POLICY_OWN(halos_config, b)->relay; }

static const wl_param halos_params[] = {
  OPT_POLICY_INNER_PARAM(halos_inner),
  OPT_POLICY_OPTIM_PARAM("outer", outer, halos_outer,
                         "the global parameter server's optimizer on each push it receives"),
  {.key = "lps", .kind = WL_P_OBJECT, .offset = PC(lps), .sub = opt_optim_params,
   .flags = WL_PF_DOC_APART | WL_PF_TRAINED, .adjust = halos_lps_opt, .unit = "",
   .doc = "each local parameter server's optimizer on its workers' pseudo-gradients, one "
          "step per arrival",
   .applies = hierarchical, .applies_doc = "relay false"},
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 8, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "inner steps per round (the fastest worker's, with DyLU)"},
  {.key = "dylu", .kind = WL_P_BOOL, .offset = PC(dylu), .def = 1, .unit = "",
   .doc = "Dynamic Local Updates: H_w = max(1, floor(speed_w / max speed * H))"},
  {.key = "updates", .kind = WL_P_INT, .offset = PC(updates), .def = 32, .min = 1,
   .max = 1 << 20, .unit = "arrivals",
   .doc = "updates a local server applies (since its last merge) before it pushes their "
          "change to the global server (the paper's K)",
   .applies = hierarchical, .applies_doc = "relay false"},
  {.key = "alpha", .kind = WL_P_DOUBLE, .offset = PC(alpha), .def = 0.25, .min = 0, .max = 1,
   .flags = WL_PF_TRAINED, .unit = "",
   .doc = "merge weight: a local server's model becomes (1 - alpha) its own + alpha the "
          "global one it receives",
   .applies = hierarchical, .applies_doc = "relay false"},
  {.key = "relay", .kind = WL_P_BOOL, .offset = PC(relay), .def = 0, .unit = "",
   .doc = "the local servers only relay: each update goes on to the global server, and its "
          "worker waits for the global model (async_local_sgd across the regions)"},
  {0}};

static void halos_destroy(void *state)
{
  halos *s = state;
  if (!s)
    return;
  free(s->block);
  free(s->v0);
  free(s->Hw);
  free(s->epoch);
  free(s->jobs);
  free(s->phase);
  free(s->inflight);
  free(s->lps);
  free(s);
}

/* The float buffers: GPS model, delta, GPS state, snapshots, relayed deltas; per region
 * theta, merged, up, down and the LPS state. */
static double halos_floats(const halos_config *c, const opt_optim_config *outer, int K, int R,
                           double n)
{
  double per_region = c->relay ? 0 : (4.0 + opt_optim_state_floats(&c->lps)) * n;
  return (2.0 + opt_optim_state_floats(outer)) * n + (c->relay ? 2.0 : 1.0) * K * n +
         R * per_region + 1; /* +1: n is 0 when timing only */
}

static wl_status halos_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                              char *err, size_t err_size)
{
  halos *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  int K = host->K;
  char path[64], msg[200];
  if (opt_policy_check(cfg, K, path, sizeof path, msg, sizeof msg) != WL_OK) {
    snprintf(err, err_size, "%s: %s", path, msg);
    return WL_ECONFIG;
  }
  s->c = *OPT_POLICY_OWN(halos_config, cfg);
  s->host = host;
  s->R = host->regions > 1 ? host->regions : 1;
  WL_ASSERT(K % s->R == 0);
  s->per = K / s->R;
  /* N = 0: one window is the arrivals of a round, the regions' (relay: the workers') */
  wl_status st = opt_outer_resolve(&cfg->outer, s->c.relay ? K : s->R, &s->outer, err,
                                   err_size, "outer");
  if (st == WL_OK && !s->c.relay)
    st = opt_outer_resolve(&s->c.lps, s->per, &s->lps_opt, err, err_size, "lps");
  if (st != WL_OK)
    return st;
  s->n = host->replicas[0].n;
  size_t n = s->n;
  s->block = calloc((size_t)halos_floats(&s->c, &s->outer, K, s->R, (double)n), sizeof(float));
  s->v0 = calloc((size_t)K, sizeof *s->v0);
  s->Hw = malloc((size_t)K * sizeof *s->Hw);
  s->epoch = calloc((size_t)K, sizeof *s->epoch);
  s->jobs = calloc((size_t)K, sizeof *s->jobs);
  s->phase = calloc((size_t)K, 1);
  s->inflight = calloc((size_t)K, 1);
  s->lps = calloc((size_t)s->R, sizeof *s->lps);
  if (!s->block || !s->v0 || !s->Hw || !s->epoch || !s->jobs || !s->phase || !s->inflight || !s->lps)
    return WL_ENOMEM;
  float *at = s->block;
  s->theta = at, at += n;
  s->delta = at, at += n;
  s->ostate = at, at += (size_t)opt_optim_state_floats(&s->outer) * n;
  s->snap = at, at += (size_t)K * n;
  if (s->c.relay)
    s->relayed = at, at += (size_t)K * n;
  memcpy(s->theta, host->replicas[0].params, n * sizeof(float));
  for (int r = 0; r < s->R && !s->c.relay; r++) {
    halos_lps *l = &s->lps[r];
    l->theta = at, at += n;
    l->merged = at, at += n;
    l->up = at, at += n;
    l->down = at, at += n;
    l->state = at, at += (size_t)opt_optim_state_floats(&s->lps_opt) * n;
    memcpy(l->theta, s->theta, n * sizeof(float));
    memcpy(l->merged, s->theta, n * sizeof(float));
  }
  for (int w = 0; w < K; w++)
    s->Hw[w] = s->c.H;
  return WL_OK;
}

static int region_of(const halos *s, int w) { return w / s->per; }

static int relay_tag(const halos *s, int kind, int w)
{
  return kind + 8 * (w + s->host->K * (s->epoch[w] % EPOCHS));
}

/* Worker w gets its LPS's model (a transfer from the LPS). */
static void lps_pull(halos *s, int w)
{
  const halos_lps *l = &s->lps[region_of(s, w)];
  memcpy(s->snap + (size_t)w * s->n, l->theta, s->n * sizeof(float));
  s->phase[w] = PH_PULLING;
  s->host->send(s->host->ctx, OPT_LPS(region_of(s, w)), w, s->host->payload_bytes, TAG_PULL);
}

/* relay: worker w gets the GPS model through its LPS; it starts from this version. */
static void relay_pull(halos *s, int w)
{
  memcpy(s->snap + (size_t)w * s->n, s->theta, s->n * sizeof(float));
  s->v0[w] = s->version;
  s->phase[w] = PH_PULLING;
  s->host->send(s->host->ctx, OPT_SERVER, OPT_LPS(region_of(s, w)), s->host->payload_bytes,
                relay_tag(s, TAG_RELAY_DOWN, w));
}

static void pull(halos *s, int w)
{
  if (s->c.relay)
    relay_pull(s, w);
  else
    lps_pull(s, w);
}

static void halos_start(void *state)
{
  halos *s = state;
  for (int w = 0; w < s->host->K; w++)
    pull(s, w);
}

/* Worker w's local steps for the round it starts now (DyLU: by its speed relative to the
 * fastest worker's, now). */
static int local_steps(const halos *s, int w)
{
  if (!s->c.dylu)
    return s->c.H;
  const opt_host *h = s->host;
  double v = h->speed_now(h->ctx, w), vmax = h->speed_max_now(h->ctx);
  int steps = (int)floor(v / vmax * s->c.H);
  return steps < 1 ? 1 : steps;
}

/* One step of optimizer c (its state, its step count t) on model x with the
 * pseudo-gradient g (clipped to c's clip first). */
static void server_step(const halos *s, const opt_optim_config *c, float *x, float *g,
                        float *st, long *t)
{
  if (!isnan(c->clip))
    opt_clip_grad_norm(g, s->n, c->clip);
  ++*t;
  const opt_replica *r0 = &s->host->replicas[0];
  opt_optim_step_tensors(c, x, g, st, *t, opt_optim_lr(c, *t - 1), s->n, r0->tensors,
                         r0->n_tensors);
}

/* The GPS applies g, which carries `steps` local steps; staleness s0, for worker w. */
static void gps_apply(halos *s, float *g, long steps, int w, long staleness)
{
  const opt_host *h = s->host;
  server_step(s, &s->outer, s->theta, g, s->ostate, &s->outer_t);
  s->version++;
  h->global_changed(h->ctx);
  s->applied_steps += steps;
  h->record_update(h->ctx, w, staleness, 1.0, 0);
}

/* Worker w's delta = theta0 - x_w into out. */
static void worker_delta(const halos *s, int w, float *out)
{
  const float *x = s->host->replicas[w].params, *theta0 = s->snap + (size_t)w * s->n;
  for (size_t i = 0; i < s->n; i++)
    out[i] = theta0[i] - x[i];
}

/* LPS r pushes the change since its last merge to the GPS. */
static void lps_push(halos *s, int r, int w)
{
  halos_lps *l = &s->lps[r];
  for (size_t i = 0; i < s->n; i++)
    l->up[i] = l->merged[i] - l->theta[i];
  l->pushing = 1;
  l->pusher = w;
  l->push_steps = l->steps;
  l->steps = 0;
  s->host->send(s->host->ctx, OPT_LPS(r), OPT_SERVER, s->host->payload_bytes, TAG_UP);
}

/* Worker w's delta reaches its LPS: one LPS step; a push when `updates` have come since the
 * last merge; the worker goes on from the LPS model. */
static void lps_arrive(halos *s, int w)
{
  int r = region_of(s, w);
  halos_lps *l = &s->lps[r];
  worker_delta(s, w, s->delta);
  server_step(s, &s->lps_opt, l->theta, s->delta, l->state, &l->t);
  l->count++;
  l->steps += s->Hw[w];
  if (l->count == s->c.updates && !l->pushing)
    lps_push(s, r, w);
  lps_pull(s, w);
}

/* The GPS model reaches LPS r: theta_l <- (1 - alpha) theta_l + alpha theta_g. */
static void lps_merge(halos *s, int r)
{
  halos_lps *l = &s->lps[r];
  const double a = s->c.alpha, b = 1.0 - a;
  for (size_t i = 0; i < s->n; i++)
    l->theta[i] = (float)(b * l->theta[i] + a * l->down[i]);
  memcpy(l->merged, l->theta, s->n * sizeof(float));
  l->count = 0;
  l->pushing = 0;
  l->v0 = l->v_down;
}

/* A relayed transfer's worker, if it is still the one waiting for it (else -1). */
static int relay_worker(const halos *s, int tag, int phase)
{
  int rest = tag / 8, K = s->host->K, w = rest % K;
  if (rest / K != s->epoch[w] % EPOCHS || s->phase[w] != phase)
    return -1;
  return w;
}

static void halos_message(void *state, int from, int to, int tag)
{
  halos *s = state;
  const opt_host *h = s->host;
  switch (tag % 8) {
  case TAG_PULL: /* a model reached worker `to`: its round starts */
    memcpy(h->replicas[to].params, s->snap + (size_t)to * s->n, s->n * sizeof(float));
    s->Hw[to] = local_steps(s, to);
    s->jobs[to] = (opt_train){.steps = s->Hw[to], .lr_scale = 1.0};
    s->phase[to] = PH_COMPUTING;
    h->train(h->ctx, to, &s->jobs[to]);
    return;
  case TAG_PUSH: /* worker `from`'s delta reached its LPS */
    if (!s->c.relay) {
      lps_arrive(s, from);
      return;
    }
    worker_delta(s, from, s->relayed + (size_t)from * s->n);
    s->phase[from] = PH_RELAYING;
    s->inflight[from] = 1;
    h->send(h->ctx, to, OPT_SERVER, h->payload_bytes, relay_tag(s, TAG_RELAY_UP, from));
    return;
  case TAG_UP: { /* an LPS's change reached the GPS: apply it, reply the model */
    int r = OPT_LPS_REGION(from);
    halos_lps *l = &s->lps[r];
    gps_apply(s, l->up, l->push_steps, l->pusher, s->version - l->v0);
    memcpy(l->down, s->theta, s->n * sizeof(float));
    l->v_down = s->version;
    h->send(h->ctx, OPT_SERVER, from, h->payload_bytes, TAG_DOWN);
    return;
  }
  case TAG_DOWN:
    lps_merge(s, OPT_LPS_REGION(to));
    return;
  case TAG_RELAY_UP: { /* a worker's delta reached the GPS: applied even if its worker
                          went down meanwhile; the worker, if it waits for it, pulls */
    int w = (tag / 8) % h->K;
    gps_apply(s, s->relayed + (size_t)w * s->n, s->Hw[w], w, s->version - s->v0[w]);
    s->inflight[w] = 0;
    if (s->phase[w] == PH_RELAYING)
      relay_pull(s, w);
    return;
  }
  case TAG_RELAY_DOWN: { /* the GPS model for a worker reached its LPS: on to the worker */
    int w = relay_worker(s, tag, PH_PULLING);
    if (w >= 0)
      h->send(h->ctx, to, w, h->payload_bytes, TAG_PULL);
    return;
  }
  }
  WL_ASSERT(!"unknown transfer");
}

/* The round is done: push the update to the LPS. */
static void halos_work_done(void *state, int w)
{
  halos *s = state;
  s->phase[w] = PH_PUSHING;
  s->host->send(s->host->ctx, w, OPT_LPS(region_of(s, w)), s->host->payload_bytes, TAG_PUSH);
}

static void halos_worker_down(void *state, int w)
{
  halos *s = state;
  s->phase[w] = PH_DOWN; /* its transfers are dropped; relayed ones are void */
  s->epoch[w]++;
}

/* Back: it starts over from its server's model (relay: once its last delta, still on its way,
 * has reached the GPS, so that its next one never overwrites it). */
static void halos_worker_up(void *state, int w)
{
  halos *s = state;
  if (s->c.relay && s->inflight[w])
    s->phase[w] = PH_RELAYING;
  else
    pull(s, w);
}

static const float *halos_global(const void *state) { return ((const halos *)state)->theta; }

static long halos_step(const void *state)
{
  const halos *s = state;
  return s->applied_steps / s->host->K;
}

/* The number of regions is the cluster's: this counts one (each further region adds its
 * LPS: (4 + its optimizer's state floats) n floats). */
/* Each region beyond the first: its LPS's state and buffers. */
static double halos_region_memory(const opt_policy_config *cfg, double n)
{
  const halos_config *c = OPT_POLICY_OWN(halos_config, cfg);
  return sizeof(halos_lps) + (halos_floats(c, &cfg->outer, 0, 2, n) -
                              halos_floats(c, &cfg->outer, 0, 1, n)) * sizeof(float);
}

static double halos_memory(const opt_policy_config *cfg, int K, double n)
{
  const halos_config *c = OPT_POLICY_OWN(halos_config, cfg);
  return sizeof(halos) + sizeof(halos_lps) + halos_floats(c, &cfg->outer, K, 1, n) * sizeof(float) +
         (double)K * (sizeof(long) + 2 * sizeof(int) + sizeof(opt_train) + 2);
}

/* The LPS optimizer's checks that opt_policy_check makes for inner and outer. */
static wl_status halos_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                             char *msg, size_t msg_size)
{
  (void)K;
  const halos_config *c = OPT_POLICY_OWN(halos_config, cfg);
  if (c->relay)
    return WL_OK;
  if (c->lps.schedule == OPT_SCHED_COSINE && c->lps.decay_steps < 1) {
    snprintf(path, path_size, "lps.decay_steps");
    snprintf(msg, msg_size, "required with schedule cosine: the step at which the learning "
             "rate reaches min_lr, e.g. the run's arrivals at a local server");
    return WL_ECONFIG;
  }
  if (c->lps.opt == OPT_DELAYED_NESTEROV && c->lps.dn_n > 0 && c->lps.dn_c > 1.0 / c->lps.dn_n) {
    snprintf(path, path_size, "lps.c");
    snprintf(msg, msg_size, "expected at most 1/N = %g (N = %d), got %g", 1.0 / c->lps.dn_n,
             c->lps.dn_n, c->lps.dn_c);
    return WL_ECONFIG;
  }
  return WL_OK;
}

const opt_policy_type opt_halos_type = {
  .variant = {"halos",
              "regions of workers push to a local parameter server each; the local servers "
              "push accumulated changes to a global one and merge its model (Kim et al. 2025)",
              halos_params},
  .traits = OPT_TRAIT_ASYNC | OPT_TRAIT_OUTER | OPT_TRAIT_REGIONS | OPT_TRAIT_TRANSFERS,
  .check = halos_check,
  .create = halos_create,
  .destroy = halos_destroy,
  .start = halos_start,
  .work_done = halos_work_done,
  .message = halos_message,
  .worker_down = halos_worker_down,
  .worker_up = halos_worker_up,
  .global = halos_global,
  .step = halos_step,
  .memory = halos_memory,
  .region_memory = halos_region_memory,
};
