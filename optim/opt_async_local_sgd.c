/* async_local_sgd — asynchronous Local-SGD with a parameter server (Liu et al. 2024,
 * arXiv 2401.09135); docs/algorithms.md §6.
 *
 * The server holds the global model theta, its version and the outer optimizer state. Each
 * worker, repeatedly: pulls theta (a transfer from the server; it remembers the version v0
 * and the model theta0 it got), takes H_w inner steps (its AdamW state persists across
 * rounds), and pushes delta = theta0 - x_w (a transfer to the server). On each arrival, in
 * simulated arrival order, the server computes the staleness s = version - v0 and applies
 * the outer rule:
 *   - outer "nesterov" (or any optimizer): one outer step per arrival (vanilla);
 *   - outer "delayed_nesterov": Liu et al.'s delayed Nesterov (N, c);
 *   - staleness "poly": delta <- (1 + s)^-a delta, dropped when s > max_staleness (if > 0);
 *   - buffer N > 1: N arrivals are averaged, then one outer step (FedBuff-style);
 * and the worker pulls again. The version counts the server's model updates: it grows by one
 * whenever theta changes (an arrival that a buffer only stores, or that is dropped, does not
 * age anyone).
 *
 * DyLU: at the start of each round (when its pull arrives), worker w's local steps are
 * H_w = max(1, floor(v_w / max_j v_j * H)), v the workers' speeds at that moment (speed
 * factor x trace factor / straggler slowdown in effect; per-step jitter, of mean 1, left
 * out).
 *
 * Grace period g: the first arrival at tau opens a window; its workers wait, and restart
 * together from the same model when it closes. grace_restart says when:
 *   - window_end (g > 0): workers that arrive while it is open join it; it closes at tau + g,
 *     or as soon as no worker is still working on a round (computing, or pushing its
 *     update), so a window never delays a round in which everyone has arrived;
 *   - last_arrival (Liu et al.'s notebook): the workers whose compute ends within g of the
 *     first one's (the notebook's finish times; the host's clock says when a job in flight
 *     ends) join it; it closes at the arrival of the last of them, at once for a lone
 *     arrival. With g = 0, the workers whose compute ends at the same instant.
 *
 * Staleness counts the server's model updates, or (staleness_counts arrivals, the
 * notebook's) the arrivals since the worker's pull, applied, buffered or dropped.
 *
 * Tasks (shards, schedule_by, inner_state): each round's job is an opt_tasks task, given
 * when the worker's pull arrives.
 *
 * A worker that goes down loses its round in flight (its work, or its pull or push); when it
 * comes back it pulls and starts over.
 *
 * With `compress` (docs/algorithms.md §14), each push carries Q(delta + e_w) (e_w the worker's
 * residual, with error feedback), weighing the scheme's bytes; pulls carry the model in
 * fp32. The server applies the staleness weight to the decoded push. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"
#include "wl_math.h"

enum { TAG_PULL = 1, TAG_PUSH = 2, TAG_GRACE = 3 }; /* grace timers: TAG_GRACE + 4 * window */

/* Where each worker is in its round. */
enum { PH_PULLING = 0, PH_COMPUTING, PH_PUSHING, PH_WAITING, PH_DOWN };

enum { STALENESS_NONE = 0, STALENESS_POLY };
enum { RESTART_WINDOW_END = 0, RESTART_LAST_ARRIVAL };
enum { COUNT_UPDATES = 0, COUNT_ARRIVALS };

typedef struct async_sgd {
  const opt_host *host;
  opt_optim_config outer;
  size_t n;
  float *theta;       /* (n) the server's model */
  float *ostate;      /* outer optimizer state */
  float *delta;       /* (n) the arriving pseudo-gradient */
  float *bufsum;      /* (n) the FedBuff accumulator */
  float *snap;        /* (K, n) the model each worker pulled */
  opt_codec codec;    /* what each worker pushes */
  opt_tasks tasks;    /* each round's shard, schedule position and inner state */
  long *v0;           /* (K) the version (or arrivals) each worker pulled at */
  int64_t *done_at;   /* (K) when its last round's compute ended (the host's clock) */
  int *Hw;            /* (K) local steps per round */
  opt_train *jobs;    /* (K) */
  uint8_t *phase;     /* (K) PH_* */
  int H, dylu;        /* local steps per round (the fastest worker's, with DyLU) */
  long version;
  long arrivals;      /* arrivals so far, applied or not */
  int count_arrivals; /* staleness in arrivals, not versions */
  long outer_t;       /* outer optimizer steps */
  int n_buffered;
  int buffer;
  int poly;
  double a;
  int max_staleness;
  double grace_s;
  int last_arrival;   /* grace_restart last_arrival */
  int window_open;
  int window;         /* windows opened so far: a timer of an earlier one is void */
  int64_t window_close; /* last_arrival: its opener's compute end + g (the host's clock) */
  long applied_steps; /* local steps of the applied updates, summed over workers */
} async_sgd;

/* async_local_sgd's own keys */
typedef struct async_config {
  int H;
  int dylu;
  int staleness; /* STALENESS_* */
  double staleness_a;
  int max_staleness;
  int buffer;
  double grace_s;
  int grace_restart;  /* RESTART_* */
  int staleness_counts; /* COUNT_* */
} async_config;
OPT_POLICY_OWN_FITS(async_config);
#define PC(f) OPT_OWN(async_config, f)

static void async_inner(void *p) { opt_optim_choose(p, OPT_ADAMW); }

/* Arrivals and versions differ when some arrivals leave the model unchanged. */
static int buffers_or_drops(const void *b)
{
  const async_config *c = OPT_POLICY_OWN(async_config, b);
  return c->buffer > 1 || (c->staleness == STALENESS_POLY && c->max_staleness > 0);
}

static int poly(const void *b)
{
  return OPT_POLICY_OWN(async_config, b)->staleness == STALENESS_POLY;
}

/* Liu et al.'s method: delayed Nesterov with N = K, c = 0, lr 0.7, momentum 0.9. */
static void async_outer(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_DELAYED_NESTEROV);
}

static const wl_param async_params[] = {
  OPT_POLICY_INNER_PARAM(async_inner),
  OPT_POLICY_OUTER_PARAM(async_outer),
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 50, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "inner steps per round (the fastest worker's, with DyLU)"},
  {.key = "dylu", .kind = WL_P_BOOL, .offset = PC(dylu), .def = 0, .unit = "",
   .doc = "Dynamic Local Updates: H_w = max(1, floor(speed_w / max speed * H))"},
  {.key = "staleness", .kind = WL_P_ENUM, .offset = PC(staleness), .def = STALENESS_NONE,
   .choices = "none|poly", .unit = "", .doc = "staleness weighting of each arrival"},
  {.key = "staleness_a", .kind = WL_P_DOUBLE, .offset = PC(staleness_a), .def = 0.5, .min = 0,
   .max = 100, .unit = "", .doc = "exponent a of (1 + s)^-a", .applies = poly,
   .applies_doc = "staleness poly"},
  {.key = "max_staleness", .kind = WL_P_INT, .offset = PC(max_staleness), .def = 0, .min = 0,
   .max = 1 << 30, .unit = "updates", .doc = "drop arrivals staler than this (0: never)",
   .applies = poly, .applies_doc = "staleness poly"},
  {.key = "buffer", .kind = WL_P_INT, .offset = PC(buffer), .def = 1, .min = 1,
   .max = 1 << 20, .unit = "arrivals",
   .doc = "arrivals averaged per outer step (FedBuff-style); 1: every arrival"},
  {.key = "grace_s", .kind = WL_P_DOUBLE, .offset = PC(grace_s), .def = 0, .min = 0,
   .max = 1e9, .unit = "s",
   .doc = "grace period: arrivals within it of a first one restart together (0: off, or "
          "with grace_restart last_arrival: those at the same instant)"},
  {.key = "grace_restart", .kind = WL_P_ENUM, .offset = PC(grace_restart),
   .def = RESTART_WINDOW_END, .choices = "window_end|last_arrival",
   .flags = WL_PF_OMIT_DEFAULT, .unit = "",
   .doc = "when a grace window's workers restart: window_end: when it closes, grace_s after its "
          "first arrival (or once every worker has arrived); last_arrival: at the arrival of the "
          "last worker whose compute ends within it, known ahead from the clock (Liu et al.'s "
          "notebook)"},
  {.key = "staleness_counts", .kind = WL_P_ENUM, .offset = PC(staleness_counts),
   .def = COUNT_UPDATES, .choices = "updates|arrivals", .flags = WL_PF_OMIT_DEFAULT,
   .unit = "",
   .doc = "what staleness counts since a worker's pull: updates: changes of the server's "
          "model; arrivals: arrivals, applied, buffered or dropped (Liu et al.'s notebook)",
   .applies = buffers_or_drops, .applies_doc = "buffer > 1, or staleness poly with max_staleness"},
  OPT_POLICY_COMPRESS_PARAM,
  OPT_POLICY_TASK_PARAMS,
  {0}};

static void async_destroy(void *state)
{
  async_sgd *s = state;
  if (!s)
    return;
  free(s->theta);
  free(s->snap);
  free(s->v0);
  free(s->done_at);
  free(s->Hw);
  opt_tasks_free(&s->tasks);
  free(s->jobs);
  free(s->phase);
  opt_codec_free(&s->codec);
  free(s);
}

static wl_status async_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                              char *err, size_t err_size)
{
  async_sgd *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  int K = host->K;
  char path[64], msg[200];
  if (opt_policy_check(cfg, K, path, sizeof path, msg, sizeof msg) != WL_OK) {
    snprintf(err, err_size, "%s: %s", path, msg);
    return WL_ECONFIG;
  }
  wl_status st = opt_outer_resolve(&cfg->outer, K, &s->outer, err, err_size, "outer");
  if (st != WL_OK)
    return st;
  s->host = host;
  s->n = host->replicas[0].n;
  size_t n = s->n, sf = (size_t)opt_optim_state_floats(&s->outer);
  s->theta = calloc((3 + sf) * n + 1, sizeof(float)); /* +1: n is 0 when timing only */
  s->snap = malloc(((size_t)K * n + 1) * sizeof(float));
  s->v0 = calloc((size_t)K, sizeof *s->v0);
  s->done_at = calloc((size_t)K, sizeof *s->done_at);
  s->Hw = malloc((size_t)K * sizeof *s->Hw);
  s->jobs = calloc((size_t)K, sizeof *s->jobs);
  s->phase = calloc((size_t)K, 1);
  if (!s->theta || !s->snap || !s->v0 || !s->done_at || !s->Hw || !s->jobs || !s->phase ||
      opt_codec_init(&s->codec, &cfg->compress, K, n, 0) != WL_OK ||
      opt_tasks_init(&s->tasks, cfg, K) != WL_OK)
    return WL_ENOMEM;
  s->delta = s->theta + n;
  s->bufsum = s->delta + n;
  s->ostate = s->bufsum + n;
  memcpy(s->theta, host->replicas[0].params, n * sizeof(float));
  const async_config *c = OPT_POLICY_OWN(async_config, cfg);
  for (int w = 0; w < K; w++)
    s->Hw[w] = c->H;
  s->H = c->H;
  s->dylu = c->dylu;
  s->buffer = c->buffer;
  s->poly = c->staleness == STALENESS_POLY;
  s->a = c->staleness_a;
  s->max_staleness = c->max_staleness;
  s->grace_s = c->grace_s;
  s->last_arrival = c->grace_restart == RESTART_LAST_ARRIVAL;
  s->count_arrivals = c->staleness_counts == COUNT_ARRIVALS;
  return WL_OK;
}

/* The server sends theta to worker w; w gets this version. */
static void pull(async_sgd *s, int w)
{
  memcpy(s->snap + (size_t)w * s->n, s->theta, s->n * sizeof(float));
  s->v0[w] = s->count_arrivals ? s->arrivals : s->version;
  s->phase[w] = PH_PULLING;
  s->host->send(s->host->ctx, OPT_SERVER, w, s->host->payload_bytes, TAG_PULL);
}

/* Worker w's local steps for the round it starts now (DyLU: by its speed relative to the
 * fastest worker's, now). */
static int local_steps(const async_sgd *s, int w)
{
  if (!s->dylu)
    return s->H;
  const opt_host *h = s->host;
  double v = h->speed_now(h->ctx, w), vmax = h->speed_max_now(h->ctx);
  int steps = (int)floor(v / vmax * s->H);
  return steps < 1 ? 1 : steps;
}

/* Close the grace window: every waiting worker restarts from the model as it is now. */
static void close_window(async_sgd *s)
{
  s->window_open = 0;
  for (int w = 0; w < s->host->K; w++)
    if (s->phase[w] == PH_WAITING)
      pull(s, w);
}

/* Whether worker w will still join the open window (last_arrival): its round's compute
 * ends by the window's close (its opener's compute end + g; its push may arrive later). */
static int joins_window(const async_sgd *s, int w)
{
  const opt_host *h = s->host;
  if (s->phase[w] == PH_PUSHING)
    return s->done_at[w] <= s->window_close;
  int64_t end = s->phase[w] == PH_COMPUTING ? h->clock_work_end(h->ctx, w) : INT64_MAX;
  return end != INT64_MAX && end <= s->window_close; /* (INT64_MAX: it never ends) */
}

/* The window closes early once no worker is still working on a round (last_arrival: once
 * none of those working will join it). */
static void close_window_if_all_in(async_sgd *s)
{
  if (!s->window_open)
    return;
  for (int w = 0; w < s->host->K; w++)
    if (s->last_arrival ? joins_window(s, w)
                        : s->phase[w] == PH_COMPUTING || s->phase[w] == PH_PUSHING)
      return;
  close_window(s);
}

static void async_start(void *state)
{
  async_sgd *s = state;
  for (int w = 0; w < s->host->K; w++)
    pull(s, w);
}

/* One outer step on the pseudo-gradient g (clipped to the outer clip's global norm first). */
static void outer_step(async_sgd *s, float *g)
{
  if (!isnan(s->outer.clip))
    opt_clip_grad_norm(g, s->n, s->outer.clip);
  s->outer_t++;
  const opt_replica *r0 = &s->host->replicas[0];
  opt_optim_step_tensors(&s->outer, s->theta, g, s->ostate, s->outer_t,
                         opt_optim_lr(&s->outer, s->outer_t - 1), s->n, r0->tensors,
                         r0->n_tensors);
}

/* Worker w's update arrives at the server; the version grows when theta changes. */
static void arrive(async_sgd *s, int w)
{
  const opt_host *h = s->host;
  const float *x = h->replicas[w].params, *theta0 = s->snap + (size_t)w * s->n;
  long staleness = (s->count_arrivals ? s->arrivals : s->version) - s->v0[w];
  s->arrivals++;
  double weight = s->poly ? wl_pow(1.0 + (double)staleness, -s->a) : 1.0;
  int dropped = s->poly && s->max_staleness > 0 && staleness > s->max_staleness;
  const int coded = opt_codec_lossy(&s->codec.cfg);
  if (coded) { /* what w sent (its residual moves even when the server drops it) */
    for (size_t i = 0; i < s->n; i++)
      s->delta[i] = theta0[i] - x[i];
    opt_codec_encode(&s->codec, w, s->delta, 0, s->n);
  }
  if (!dropped) {
    const float f = (float)weight;
    for (size_t i = 0; i < s->n; i++)
      s->delta[i] = (coded ? s->delta[i] : theta0[i] - x[i]) * f;
    if (s->buffer > 1) {
      for (size_t i = 0; i < s->n; i++)
        s->bufsum[i] += s->delta[i];
      if (++s->n_buffered == s->buffer) {
        const float inv = 1.0f / (float)s->buffer;
        for (size_t i = 0; i < s->n; i++) {
          s->delta[i] = s->bufsum[i] * inv;
          s->bufsum[i] = 0.0f;
        }
        s->n_buffered = 0;
        outer_step(s, s->delta);
        s->version++;
        h->global_changed(h->ctx);
      }
    } else {
      outer_step(s, s->delta);
      s->version++;
      h->global_changed(h->ctx);
    }
    s->applied_steps += s->Hw[w];
  }
  h->record_update(h->ctx, w, staleness, weight, dropped);
}

static void async_message(void *state, int from, int to, int tag)
{
  async_sgd *s = state;
  const opt_host *h = s->host;
  if (tag == TAG_PULL) { /* theta reached worker `to`: start its round */
    memcpy(h->replicas[to].params, s->snap + (size_t)to * s->n, s->n * sizeof(float));
    s->Hw[to] = local_steps(s, to);
    s->jobs[to] = (opt_train){.steps = s->Hw[to], .lr_scale = 1.0};
    opt_tasks_assign(&s->tasks, h, &s->jobs[to]);
    s->phase[to] = PH_COMPUTING;
    h->train(h->ctx, to, &s->jobs[to]);
    return;
  }
  WL_ASSERT(tag == TAG_PUSH && to == OPT_SERVER);
  arrive(s, from);
  if (s->grace_s <= 0 && !s->last_arrival) {
    pull(s, from);
    return;
  }
  s->phase[from] = PH_WAITING;
  if (!s->window_open) {
    s->window_open = 1;
    s->window++;
    if (s->last_arrival) { /* its opener's compute end + g (saturating), as the notebook's
                              finish times; no timer: it closes at an arrival */
      int64_t t = s->done_at[from], span = h->clock_span(h->ctx, s->grace_s);
      s->window_close = span > INT64_MAX - 1 - t ? INT64_MAX - 1 : t + span;
    }
    else
      h->timer(h->ctx, s->grace_s, TAG_GRACE + 4 * s->window);
  }
  close_window_if_all_in(s);
}

static void async_worker_down(void *state, int w)
{
  async_sgd *s = state;
  s->phase[w] = PH_DOWN; /* it restarts when it is back */
  close_window_if_all_in(s);
}

static void async_worker_up(void *state, int w) { pull(state, w); }

static void async_timer(void *state, int tag)
{
  async_sgd *s = state;
  WL_ASSERT(tag % 4 == TAG_GRACE);
  if (s->window_open && tag == TAG_GRACE + 4 * s->window) /* else: closed early already */
    close_window(s);
}

/* The round is done: push the update. */
static void async_work_done(void *state, int w)
{
  async_sgd *s = state;
  s->phase[w] = PH_PUSHING;
  s->done_at[w] = s->host->clock_now(s->host->ctx);
  s->host->send(s->host->ctx, w, OPT_SERVER,
                opt_codec_wire_bytes(&s->codec.cfg, s->host->payload_bytes), TAG_PUSH);
}

static const float *async_global(const void *state) { return ((const async_sgd *)state)->theta; }

static long async_step(const void *state)
{
  const async_sgd *s = state;
  return s->applied_steps / s->host->K;
}

/* FedBuff's buffer on top of delayed Nesterov would buffer twice. */
static wl_status async_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                             char *msg, size_t msg_size)
{
  (void)K;
  const async_config *c = OPT_POLICY_OWN(async_config, cfg);
  if (cfg->outer.opt == OPT_DELAYED_NESTEROV && c->buffer > 1) {
    snprintf(path, path_size, "buffer");
    snprintf(msg, msg_size, "expected 1 with the delayed_nesterov outer optimizer (it "
                            "buffers N arrivals itself), got %d", c->buffer);
    return WL_ECONFIG;
  }
  return WL_OK;
}

static double async_memory(const opt_policy_config *cfg, int K, double n)
{
  double sf = opt_optim_state_floats(&cfg->outer);
  return sizeof(async_sgd) + ((3 + sf) * n + 1) * sizeof(float) +
         ((double)K * n + 1) * sizeof(float) +
         (double)K * (sizeof(long) + sizeof(int64_t) + sizeof(int) + sizeof(opt_train) + 1) +
         opt_codec_memory(&cfg->compress, K, n, 0) + opt_tasks_memory(K);
}

const opt_policy_type opt_async_local_sgd_type = {
  .variant = {"async_local_sgd",
              "workers pull, train H_w steps and push to a parameter server that applies each "
              "arrival (Liu et al. 2024)",
              async_params},
  .traits = OPT_TRAIT_ASYNC | OPT_TRAIT_OUTER | OPT_TRAIT_TRANSFERS,
  .check = async_check,
  .create = async_create,
  .destroy = async_destroy,
  .start = async_start,
  .work_done = async_work_done,
  .message = async_message,
  .timer = async_timer,
  .worker_down = async_worker_down,
  .worker_up = async_worker_up,
  .global = async_global,
  .step = async_step,
  .memory = async_memory,
};
