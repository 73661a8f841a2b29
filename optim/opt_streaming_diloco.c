/* streaming_diloco — Streaming DiLoCo (Douillard et al. 2025, arXiv 2501.18512);
 * docs/algorithms.md §13.
 *
 * DiLoCo whose model is synchronized a fragment at a time. The parameters are cut into
 * `fragments` equal contiguous slices; fragment p is synchronized every H steps at the steps
 * p H/P past a multiple of H, so one fragment every R = H/P steps (the last round of each H
 * synchronizes fragment 0). At the end of such a round every worker's pseudo-gradient for
 * that fragment, Delta_p = mean_k (z_p - x_k,p), is taken (at that moment) and all-reduced
 * (the fragment's share of the model's bytes) while the workers go on with `overlap` (tau)
 * inner steps; when both are done, z_p takes one outer step on Delta_p (its own step count)
 * and each worker merges x_k,p <- alpha x_k,p + (1 - alpha) z_p, then finishes the round.
 *
 * The overlap is priced as DDP's is: the all-reduce runs first, and up to the tau steps'
 * compute time (of the slowest worker, from its last job) hides behind them; the merge
 * still comes after the tau steps, as in the paper. (A worker that fails during the
 * all-reduce leaves it, and its contribution with it; the runner re-runs the all-reduce among
 * the others at its full price. When the last one fails, that fragment's synchronization is
 * lost.) One fragment, no overlap and alpha 0 is
 * DiLoCo, bit for bit. Defaults: DiLoCo's inner and outer optimizers, H 100, the paper's
 * alpha 0.5 and tau 1 step, and 4 fragments. The paper's low-precision outer gradients are
 * `compress` (docs/algorithms.md §14; e.g. int4): each worker sends its fragment's change
 * x_k,p - z_p compressed, Delta_p = mean_k (0 - d_k,p), and the all-reduce is an all-gather
 * of the compressed changes, overlapped the same way. Without it, the all-reduce carries the
 * fragment at the wire's bytes per parameter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt_optim_isa.h"
#include "opt_policy.h"

/* streaming_diloco's own keys */
typedef struct streaming_config {
  int H;
  int fragments;
  int overlap;
  double alpha;
} streaming_config;
OPT_POLICY_OWN_FITS(streaming_config);
#define PC(f) OPT_OWN(streaming_config, f)

/* DiLoCo's inner optimizer: AdamW, lr 4e-4, weight decay 0.1, gradients clipped to 1. */
static void streaming_inner(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_ADAMW);
  c->lr = 4e-4;
  c->weight_decay = 0.1;
  c->clip = 1.0;
}

/* DiLoCo's outer optimizer: Nesterov, lr 0.7, momentum 0.9. */
static void streaming_outer(void *p)
{
  opt_optim_config *c = p;
  opt_optim_choose(c, OPT_NESTEROV);
  c->lr = 0.7;
  c->momentum = 0.9;
}

static const wl_param streaming_params[] = {
  OPT_POLICY_INNER_PARAM(streaming_inner),
  OPT_POLICY_OUTER_PARAM(streaming_outer),
  {.key = "H", .kind = WL_P_INT, .offset = PC(H), .def = 100, .min = 1, .max = 1 << 30,
   .unit = "steps", .doc = "inner steps between two synchronizations of a fragment"},
  {.key = "fragments", .kind = WL_P_INT, .offset = PC(fragments), .def = 4, .min = 1,
   .max = 1024, .unit = "", .doc = "slices of the model synchronized in turn (H a multiple)"},
  {.key = "overlap", .kind = WL_P_INT, .offset = PC(overlap), .def = 1, .min = 0,
   .max = 1 << 30, .unit = "steps",
   .doc = "inner steps that run while a fragment's all-reduce is under way (below H/fragments)"},
  {.key = "alpha", .kind = WL_P_DOUBLE, .offset = PC(alpha), .def = 0.5, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL | WL_PF_TRAINED, .unit = "",
   .doc = "merge: x <- alpha x + (1 - alpha) z for the synchronized fragment"},
  OPT_POLICY_COMPRESS_PARAM,
  {0}};

enum { PHASE_OVERLAP = 0, PHASE_REST };

typedef struct streaming {
  opt_round round; /* first: the workers of the job in progress */
  const opt_host *host;
  streaming_config c;
  int R;           /* steps per round: H / fragments */
  opt_outer outer; /* z, the pseudo-gradients, the outer optimizer's state */
  opt_codec codec; /* what each worker sends: its fragment's change, in the codec's buffers */
  long *t_frag;    /* (fragments) outer steps each fragment has taken */
  opt_train job;
  int phase;       /* PHASE_*: the round's first `overlap` steps, or the rest */
  int pending;     /* the fragment whose all-reduce is under way or just done, or -1 */
  int landed;      /* its all-reduce is done (its outer step taken) */
  int overlap_done;/* the round's first `overlap` steps are done */
  long step;       /* local steps each worker has taken */
  long pending_step;/* the steps at the end of the round whose fragment is pending */
  long synced_step; /* the steps the global model reflects: those at the end of the round
                       whose fragment's outer step came last */
} streaming;

static wl_status streaming_check(const opt_policy_config *cfg, int K, char *path,
                                 size_t path_size, char *msg, size_t msg_size)
{
  (void)K;
  const streaming_config *c = OPT_POLICY_OWN(streaming_config, cfg);
  if (c->H % c->fragments != 0) {
    snprintf(path, path_size, "fragments");
    snprintf(msg, msg_size, "expected a divisor of H (%d), got %d", c->H, c->fragments);
    return WL_ECONFIG;
  }
  if (c->overlap >= c->H / c->fragments) {
    snprintf(path, path_size, "overlap");
    snprintf(msg, msg_size, "expected fewer than H / fragments = %d steps (a fragment's "
             "all-reduce lands within the round it starts), got %d", c->H / c->fragments,
             c->overlap);
    return WL_ECONFIG;
  }
  return WL_OK;
}

/* Fragment p's slice [lo, hi) of n parameters. */
static void fragment_range(const streaming *s, int p, size_t *lo, size_t *hi)
{
  size_t n = s->outer.n, P = (size_t)s->c.fragments;
  *lo = n * (size_t)p / P;
  *hi = n * (size_t)(p + 1) / P;
}

static void streaming_run_job(void *state);
static void streaming_job_done(void *state);

static void streaming_destroy(void *state)
{
  streaming *s = state;
  if (!s)
    return;
  opt_outer_free(&s->outer);
  opt_round_free(&s->round);
  opt_codec_free(&s->codec);
  free(s->t_frag);
  free(s);
}

static wl_status streaming_create(const opt_policy_config *cfg, const opt_host *host,
                                  void **state, char *err, size_t err_size)
{
  streaming *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  s->host = host;
  s->c = *OPT_POLICY_OWN(streaming_config, cfg);
  char path[64], msg[200];
  if (streaming_check(cfg, host->K, path, sizeof path, msg, sizeof msg) != WL_OK) {
    snprintf(err, err_size, "%s: %s", path, msg);
    return WL_ECONFIG;
  }
  s->R = s->c.H / s->c.fragments;
  s->pending = -1;
  s->t_frag = calloc((size_t)s->c.fragments, sizeof *s->t_frag);
  if (!s->t_frag ||
      opt_round_init(&s->round, host->K, s, streaming_run_job, streaming_job_done) != WL_OK ||
      opt_codec_init(&s->codec, &cfg->compress, host->K, host->replicas[0].n, 1) != WL_OK)
    return WL_ENOMEM;
  return opt_outer_init(&s->outer, &cfg->outer, host, err, err_size);
}

/* The job the round is at: its first `overlap` steps while a fragment's all-reduce is under
 * way (or just done), else the rest of the round (all of it when nothing is pending). */
static void streaming_run_job(void *state)
{
  streaming *s = state;
  int overlapping = s->pending >= 0 && s->c.overlap > 0 && !s->overlap_done;
  s->phase = overlapping ? PHASE_OVERLAP : PHASE_REST;
  int steps = overlapping ? s->c.overlap : s->R - (s->overlap_done ? s->c.overlap : 0);
  s->job = (opt_train){.steps = steps, .lr_scale = 1.0};
  opt_round_start(&s->round, s->host, &s->job);
}

static void streaming_start(void *state) { streaming_run_job(state); }

typedef struct frag_task {
  streaming *s;
  int p;
  int part; /* 0: the pseudo-gradient; 1: the outer step; 2: the merge */
} frag_task;

enum { RANGE = 1 << 12 }; /* elements per task */

static void frag_part(void *arg, int i)
{
  const frag_task *t = arg;
  streaming *s = t->s;
  const opt_host *h = s->host;
  opt_outer *o = &s->outer;
  size_t flo, fhi;
  fragment_range(s, t->p, &flo, &fhi);
  size_t lo = flo + (size_t)i * RANGE, hi = fhi - lo < RANGE ? fhi : lo + RANGE;
  if (t->part == 0) { /* Delta_p = mean_k (z - x_k), as opt_sum says (or of 0 - d_k) */
    int coded = opt_codec_lossy(&s->codec.cfg);
    opt_sum sum = {coded ? s->codec.views : h->replicas, h->K, s->round.in, OPT_BUF_PARAMS,
                   coded ? s->codec.zeros : o->z, NULL};
    opt_elem_sum(&sum, o->delta, lo, hi);
  } else if (t->part == 1) {
    long tp = s->t_frag[t->p];
    opt_optim_step_tensors_range(&o->cfg, o->z, o->delta, o->state, tp,
                                 opt_optim_lr(&o->cfg, tp - 1), o->n, h->replicas[0].tensors,
                                 h->replicas[0].n_tensors, lo, hi);
  } else { /* x_k <- alpha x_k + (1 - alpha) z, for every replica */
    const double a = s->c.alpha, b = 1.0 - s->c.alpha;
    for (int k = 0; k < h->K; k++) {
      float *x = h->replicas[k].params;
      if (a == 0.0) {
        memcpy(x + lo, o->z + lo, (hi - lo) * sizeof(float));
        continue;
      }
      for (size_t j = lo; j < hi; j++)
        x[j] = (float)(a * x[j] + b * o->z[j]);
    }
  }
}

static void fragment_pass(streaming *s, int p, int part)
{
  size_t lo, hi;
  fragment_range(s, p, &lo, &hi);
  frag_task t = {s, p, part};
  s->host->parallel(s->host->ctx, (int)((hi - lo + RANGE - 1) / RANGE), frag_part, &t);
}

/* Fragment `pending`'s all-reduce has landed and the overlapping steps are done: merge. */
static void merge_pending(streaming *s)
{
  fragment_pass(s, s->pending, 2);
  s->pending = -1;
  s->landed = 0;
}

/* The job in progress is done by every worker in it. */
static void streaming_job_done(void *state)
{
  streaming *s = state;
  const opt_host *h = s->host;
  s->step += s->job.steps;
  if (s->phase == PHASE_OVERLAP) {
    s->overlap_done = 1;
    if (s->landed)
      merge_pending(s);
    if (s->pending < 0) /* else the merge waits for the all-reduce */
      streaming_run_job(s);
    return;
  }
  /* the round's end: fragment p's pseudo-gradient now, then its all-reduce, behind which the
     next round's first steps may hide */
  s->overlap_done = 0;
  int p = (int)((s->step / s->R) % s->c.fragments);
  s->pending = p;
  s->pending_step = s->step;
  s->landed = 0;
  size_t lo, hi;
  fragment_range(s, p, &lo, &hi);
  double share = s->outer.n ? (double)(hi - lo) / (double)s->outer.n : 1.0 / s->c.fragments;
  double hide = (double)s->c.overlap / s->job.steps; /* the overlap's share of the last job */
  const opt_overlap ov = {.overlap = s->c.overlap > 0 ? 1.0 : 0.0,
                          .backward_share = s->c.overlap > 0 ? hide : 0.0};
  opt_host_reduce(h, &s->codec.cfg, (int64_t)llround((double)h->payload_bytes * share), &ov,
                  s->round.in, 0);
}

static void streaming_collective_done(void *state, int tag)
{
  streaming *s = state;
  (void)tag;
  int p = s->pending;
  /* Delta_p over the workers still in the all-reduce (one that failed during it left; no job
     has run since the round's end, so the replicas are as they were then) */
  size_t flo, fhi;
  fragment_range(s, p, &flo, &fhi);
  opt_codec_encode_changes(s->host, &s->codec, s->round.in, s->outer.z, flo, fhi);
  fragment_pass(s, p, 0);
  if (!isnan(s->outer.cfg.clip))
    opt_clip_grad_norm(s->outer.delta + flo, fhi - flo, s->outer.cfg.clip);
  s->t_frag[p]++;
  fragment_pass(s, p, 1);
  s->landed = 1;
  s->synced_step = s->pending_step;
  s->host->global_changed(s->host->ctx); /* z_p moved */
  if (s->c.overlap == 0) /* no step to wait for (with overlap, the merge waits for them) */
    merge_pending(s);
  streaming_run_job(s); /* the rest of the round, or the overlapping steps */
}

static const float *streaming_global(const void *state)
{
  return ((const streaming *)state)->outer.z;
}

/* A worker fails (failures.sync drop). The last one of a fragment's all-reduce ends it: that
 * fragment's synchronization is lost, and the next round starts afresh when workers are up. */
static void streaming_worker_down(void *state, int w)
{
  streaming *s = state;
  if (s->round.active && s->round.reducing && s->round.in[w] && opt_round_size(&s->round) == 1 &&
      s->pending >= 0 && !s->landed) {
    s->pending = -1;
    s->overlap_done = 0;
  }
  opt_round_worker_down(state, w);
}

/* A worker that comes back (failures.sync drop) restarts from the global model z: the
 * merges while it was down mixed z into a replica that did not train. */
static void streaming_worker_up(void *state, int w)
{
  streaming *s = state;
  memcpy(s->host->replicas[w].params, s->outer.z, s->outer.n * sizeof(float));
  opt_round_worker_up(state, w);
}

static long streaming_step(const void *state)
{
  return ((const streaming *)state)->synced_step;
}

static double streaming_memory(const opt_policy_config *cfg, int K, double n)
{
  const streaming_config *c = OPT_POLICY_OWN(streaming_config, cfg);
  return sizeof(streaming) + opt_round_memory(K) + opt_outer_memory(&cfg->outer, n) +
         (double)c->fragments * sizeof(long) + opt_codec_memory(&cfg->compress, K, n, 1);
}

const opt_policy_type opt_streaming_diloco_type = {
  .variant = {"streaming_diloco",
              "DiLoCo synchronizing one fragment of the model every H/fragments steps, its "
              "all-reduce overlapping inner steps, merged with a mixing factor (Douillard et "
              "al. 2025)",
              streaming_params},
  .traits = OPT_TRAIT_OUTER,
  .check = streaming_check,
  .create = streaming_create,
  .destroy = streaming_destroy,
  .start = streaming_start,
  .work_done = opt_round_work_done,
  .collective_done = streaming_collective_done,
  .worker_down = streaming_worker_down,
  .worker_up = streaming_worker_up,
  .global = streaming_global,
  .step = streaming_step,
  .memory = streaming_memory,
};
