#include "opt_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "opt_optim_isa.h"

#include "opt_registry.h"

#define PO(f) offsetof(opt_policy_config, f)

const wl_param opt_policy_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = PO(type), .def = OPT_REGISTRY_DEFAULT,
   .variants = opt_policy_registry, .own_offset = PO(own),
   .own_size = sizeof(((opt_policy_config *)0)->own), .unit = "", .doc = "sync policy"},
  {.key = "label", .kind = WL_P_STRING, .offset = PO(label), .choices = "",
   .size = sizeof(((opt_policy_config *)0)->label), .unit = "",
   .doc = "name in results and --set paths (default: the type); unique, none of . , =, not a number"},
  {0}};

int opt_policy_find(const char *name)
{
  for (int i = 0; opt_policy_types[i]; i++)
    if (strcmp(opt_policy_types[i]->variant.name, name) == 0)
      return i;
  return -1;
}

const opt_policy_type *opt_policy_type_of(const opt_policy_config *cfg)
{
  WL_ASSERT(cfg->type >= 0 && cfg->type < OPT_REGISTRY_COUNT);
  return opt_policy_types[cfg->type];
}

int opt_policy_has(const opt_policy_config *cfg, unsigned traits)
{
  return (opt_policy_type_of(cfg)->traits & traits) == traits;
}

wl_status opt_policy_defaults(const char *name, opt_policy_config *cfg)
{
  int type = opt_policy_find(name);
  if (type < 0)
    return WL_ECONFIG;
  memset(cfg, 0, sizeof *cfg);
  wl_param_defaults(opt_policy_params, cfg);
  wl_param_choose(&opt_policy_params[0], type, cfg);
  return WL_OK;
}

/* The type's own key `key` of a numeric kind, or NULL. */
static const wl_param *own_number(const opt_policy_config *cfg, const char *key)
{
  const wl_param *p = wl_param_find(opt_policy_type_of(cfg)->variant.params, key);
  return p && (p->kind == WL_P_INT || p->kind == WL_P_DOUBLE || p->kind == WL_P_BOOL ||
               p->kind == WL_P_ENUM) ? p : NULL;
}

wl_status opt_policy_set(opt_policy_config *cfg, const char *key, double value)
{
  const wl_param *p = own_number(cfg, key);
  if (!p)
    return WL_ECONFIG;
  char *at = (char *)cfg + p->offset;
  if (p->kind == WL_P_DOUBLE)
    *(double *)at = value;
  else
    *(int *)at = (int)value;
  return WL_OK;
}

double opt_policy_get(const opt_policy_config *cfg, const char *key)
{
  const wl_param *p = own_number(cfg, key);
  if (!p)
    return NAN;
  const char *at = (const char *)cfg + p->offset;
  return p->kind == WL_P_DOUBLE ? *(const double *)at : *(const int *)at;
}

wl_status opt_policy_create(const opt_policy_config *cfg, const opt_host *host, opt_policy *p,
                            char *err, size_t err_size)
{
  p->type = opt_policy_type_of(cfg);
  p->state = NULL;
  err[0] = '\0';
  return p->type->create(cfg, host, &p->state, err, err_size);
}

long opt_policy_max_transfers(const opt_policy_config *cfg, int K)
{
  const opt_policy_type *t = opt_policy_type_of(cfg);
  long most = 2L * K + 2, own = t->max_transfers ? t->max_transfers(cfg, K) : 0;
  return own > most ? own : most;
}

double opt_policy_memory(const opt_policy_config *cfg, int K, double n, int R)
{
  const opt_policy_type *t = opt_policy_type_of(cfg);
  return t->memory(cfg, K, n) + (R > 1 && t->region_memory ? (R - 1) * t->region_memory(cfg, n)
                                                            : 0.0);
}

void opt_policy_destroy(opt_policy *p)
{
  if (p->type && p->state)
    p->type->destroy(p->state);
  p->state = NULL;
}

const char *opt_policy_label(const opt_policy_config *cfg)
{
  return cfg->label[0] ? cfg->label : opt_policy_type_of(cfg)->variant.name;
}

/* An optimizer step's start on replica r: the gradient clipped, the counters moved on;
 * returns the step's learning rate. */
static double replica_step_begin(opt_replica *r, const opt_optim_config *c, double lr_scale)
{
  if (!isnan(c->clip))
    opt_clip_grad_norm(r->grads, r->n, c->clip);
  double lr = opt_optim_lr(c, r->local_steps) * lr_scale;
  r->step++;
  r->local_steps++;
  return lr;
}

void opt_replica_apply(opt_replica *r, const opt_optim_config *c, double lr_scale)
{
  opt_replica_apply_lr(r, c, opt_optim_lr(c, r->local_steps) * lr_scale);
}

void opt_replica_apply_lr(opt_replica *r, const opt_optim_config *c, double lr)
{
  replica_step_begin(r, c, 1.0);
  opt_optim_step_tensors(c, r->params, r->grads, r->state, r->step, lr, r->n, r->tensors,
                         r->n_tensors);
}

enum { RANGE = 1 << 12 }; /* elements per task of a parallel mean, optimizer step or copy */

static int n_ranges(size_t n) { return (int)((n + RANGE - 1) / RANGE); }

static size_t range_end(int i, size_t n)
{
  size_t lo = (size_t)i * RANGE;
  return n - lo < RANGE ? n : lo + RANGE;
}

typedef struct mean_task {
  const opt_host *h;
  const uint8_t *mask;
  int which;
  float *out;
} mean_task;

static void mean_part(void *arg, int i)
{
  const mean_task *m = arg;
  opt_replicas_mean_range(m->h->replicas, m->h->K, m->mask, m->which, m->out,
                          (size_t)i * RANGE, range_end(i, m->h->replicas[0].n));
}

/* out = the mean of the replicas' buffer `which` over mask, over ranges on the host's
 * threads */
static void host_mean(const opt_host *h, const uint8_t *mask, int which, float *out)
{
  mean_task m = {h, mask, which, out};
  h->parallel(h->ctx, n_ranges(h->replicas[0].n), mean_part, &m);
}

/* Elements [lo, hi) of every replica's parameters become src's (a replica whose own buffer
 * src is, is skipped), and of their optimizer state replica 0's when with_state. */
static void copy_range(const opt_host *h, const float *src, int with_state, size_t lo,
                       size_t hi)
{
  const opt_replica *r0 = &h->replicas[0];
  for (int k = 0; k < h->K; k++) {
    opt_replica *dst = &h->replicas[k];
    if (dst->params != src)
      memcpy(dst->params + lo, src + lo, (hi - lo) * sizeof(float));
    for (int j = 0; with_state && k > 0 && j < r0->state_floats; j++)
      memcpy(dst->state + j * r0->n + lo, r0->state + j * r0->n + lo,
             (hi - lo) * sizeof(float));
  }
}

static void average_part(void *arg, int i)
{
  const mean_task *m = arg;
  size_t lo = (size_t)i * RANGE, hi = range_end(i, m->h->replicas[0].n);
  opt_replicas_mean_range(m->h->replicas, m->h->K, m->mask, OPT_BUF_PARAMS, m->out, lo, hi);
  copy_range(m->h, m->out, 0, lo, hi);
}

void opt_host_average(const opt_host *h, const uint8_t *mask, float *out)
{
  mean_task m = {h, mask, OPT_BUF_PARAMS, out};
  h->parallel(h->ctx, n_ranges(h->replicas[0].n), average_part, &m);
}

/* One range of elements of a synchronous gradient step: the mean of the gradients (unless
 * it already ran, before a clip), the optimizer step on replica 0, and the copies to the
 * other replicas. Every element gets the arithmetic of the unfused passes; the range stays
 * in cache from the mean to the copies. */
typedef struct sync_task {
  const opt_host *h;
  const opt_optim_config *c;
  const uint8_t *mask;
  double lr;
  int mean;       /* the mean runs here */
  int with_state; /* the optimizer state is copied too */
} sync_task;

static void sync_part(void *arg, int i)
{
  const sync_task *t = arg;
  const opt_host *h = t->h;
  opt_replica *r0 = &h->replicas[0];
  size_t lo = (size_t)i * RANGE, hi = range_end(i, r0->n);
  if (t->mean)
    opt_replicas_mean_range(h->replicas, h->K, t->mask, OPT_BUF_GRADS, r0->grads, lo, hi);
  opt_optim_step_tensors_range(t->c, r0->params, r0->grads, r0->state, r0->step, t->lr, r0->n,
                               r0->tensors, r0->n_tensors, lo, hi);
  copy_range(h, r0->params, t->with_state, lo, hi);
}

void opt_sync_gradient_step(const opt_host *h, const opt_optim_config *inner,
                            const uint8_t *mask, int with_state)
{
  opt_replica *r0 = &h->replicas[0];
  sync_task t = {h, inner, mask, 0, isnan(inner->clip), with_state};
  if (!t.mean) /* the clip needs the whole mean's norm first */
    host_mean(h, mask, OPT_BUF_GRADS, r0->grads);
  t.lr = replica_step_begin(r0, inner, 1.0);
  h->parallel(h->ctx, n_ranges(r0->n), sync_part, &t);
  for (int k = 1; k < h->K; k++) {
    h->replicas[k].step = r0->step;
    h->replicas[k].local_steps = r0->local_steps;
  }
}

/* One range of elements of an outer synchronization: the pseudo-gradient (unless it
 * already ran, before a clip), the outer step on z, and the copies of z to the replicas. */
typedef struct outer_task {
  const opt_host *h;
  opt_outer *o;
  const int *weights;
  const uint8_t *mask;
  const float *zref; /* the pseudo-gradient's reference: z, or zeros (compressed changes) */
  double lr;
  int pseudo; /* the pseudo-gradient runs here */
  int step;   /* the outer step and the copies run here */
} outer_task;

static void outer_part(void *arg, int i)
{
  const outer_task *t = arg;
  const opt_replica *r0 = &t->h->replicas[0];
  opt_outer *o = t->o;
  size_t lo = (size_t)i * RANGE, hi = range_end(i, o->n);
  if (t->pseudo) { /* delta = sum_k w_k (z - x_k), as opt_sum says (or of 0 - d_k) */
    opt_sum sum = {t->h->replicas, t->h->K, t->mask, OPT_BUF_PARAMS, t->zref, t->weights};
    opt_elem_sum(&sum, o->delta, lo, hi);
  }
  if (t->step) {
    opt_optim_step_tensors_range(&o->cfg, o->z, o->delta, o->state, o->t, t->lr, r0->n,
                                 r0->tensors, r0->n_tensors, lo, hi);
    copy_range(t->h, o->z, 0, lo, hi);
  }
}

void opt_outer_sync(const opt_host *h, opt_outer *o, const int *weights, const uint8_t *mask,
                    opt_codec *codec)
{
  /* over ranges of elements on the host's threads, in one pass unless the outer optimizer
     clips: its global norm (one sum in order) needs the whole pseudo-gradient first */
  const float *zref = o->z;
  if (codec && opt_codec_lossy(&codec->cfg)) { /* x_k <- d_k, replaced by z below */
    WL_ASSERT(!codec->buffers);
    opt_codec_encode_changes(h, codec, mask, o->z, 0, o->n);
    zref = codec->zeros;
  }
  o->t++;
  outer_task t = {h, o, weights, mask, zref, opt_optim_lr(&o->cfg, o->t - 1), 1, 1};
  if (!isnan(o->cfg.clip)) {
    t.step = 0;
    h->parallel(h->ctx, n_ranges(o->n), outer_part, &t);
    opt_clip_grad_norm(o->delta, o->n, o->cfg.clip);
    t.pseudo = 0, t.step = 1;
  }
  h->parallel(h->ctx, n_ranges(o->n), outer_part, &t);
}

void opt_outer_adopt(const opt_host *h, opt_outer *o) { opt_host_average(h, NULL, o->z); }

void opt_host_reduce(const opt_host *h, const opt_codec_config *codec, int64_t bytes,
                     const opt_overlap *ov, const uint8_t *mask, int tag)
{
  if (opt_codec_lossy(codec))
    h->allgather(h->ctx, opt_codec_wire_bytes(codec, bytes), ov, mask, tag);
  else
    h->allreduce(h->ctx, bytes, ov, mask, tag);
}

typedef struct encode_task {
  const opt_host *h;
  opt_codec *codec;
  const uint8_t *mask;
  const float *z; /* NULL: the gradients */
  size_t lo, hi;
} encode_task;

static void encode_part(void *arg, int k)
{
  const encode_task *t = arg;
  if (t->mask && !t->mask[k])
    return;
  opt_replica *r = &t->h->replicas[k];
  if (!t->z) {
    opt_codec_encode(t->codec, k, r->grads, t->lo, t->hi);
    return;
  }
  float *d = t->codec->buffers ? t->codec->buffers + (size_t)k * t->codec->n : r->params;
  for (size_t i = t->lo; i < t->hi; i++)
    d[i] = r->params[i] - t->z[i];
  opt_codec_encode(t->codec, k, d, t->lo, t->hi);
}

void opt_codec_encode_grads(const opt_host *h, opt_codec *codec, const uint8_t *mask)
{
  if (!opt_codec_lossy(&codec->cfg))
    return;
  encode_task t = {h, codec, mask, NULL, 0, codec->n};
  h->parallel(h->ctx, h->K, encode_part, &t);
}

void opt_codec_encode_changes(const opt_host *h, opt_codec *codec, const uint8_t *mask,
                              const float *z, size_t lo, size_t hi)
{
  if (!opt_codec_lossy(&codec->cfg))
    return;
  encode_task t = {h, codec, mask, z, lo, hi};
  h->parallel(h->ctx, h->K, encode_part, &t);
}

wl_status opt_outer_init(opt_outer *o, const opt_optim_config *cfg, const opt_host *h,
                         char *err, size_t err_size)
{
  memset(o, 0, sizeof *o);
  wl_status st = opt_outer_resolve(cfg, h->K, &o->cfg, err, err_size, "outer");
  if (st != WL_OK)
    return st;
  o->n = h->replicas[0].n;
  size_t floats = (size_t)(2 + opt_optim_state_floats(&o->cfg)) * o->n;
  if (!(o->block = calloc(floats + 1, sizeof(float)))) /* +1: n is 0 when timing only */
    return WL_ENOMEM;
  o->z = o->block;
  o->delta = o->z + o->n;
  o->state = o->delta + o->n;
  memcpy(o->z, h->replicas[0].params, o->n * sizeof(float));
  return WL_OK;
}

void opt_outer_free(opt_outer *o)
{
  free(o->block);
  memset(o, 0, sizeof *o);
}

wl_status opt_policy_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                           char *msg, size_t msg_size)
{
  const opt_policy_type *type = opt_policy_type_of(cfg);
  int has_outer = (type->traits & OPT_TRAIT_OUTER) != 0;
  for (int which = 0; which < 1 + has_outer; which++) {
    const opt_optim_config *c = which ? &cfg->outer : &cfg->inner;
    if (c->schedule == OPT_SCHED_COSINE && c->decay_steps < 1) {
      snprintf(path, path_size, "%s.decay_steps", which ? "outer" : "inner");
      snprintf(msg, msg_size, "required with schedule cosine: the step at which the learning "
               "rate reaches min_lr (and stays; with min_lr 0 training stops there), e.g. the "
               "run's length in steps");
      return WL_ECONFIG;
    }
  }
  if (cfg->inner.opt == OPT_DELAYED_NESTEROV) {
    snprintf(path, path_size, "inner.opt");
    snprintf(msg, msg_size, "expected an optimizer other than delayed_nesterov for the inner "
                            "one (it is built for asynchronous arrivals at a server: outer only)");
    return WL_ECONFIG;
  }
  const opt_optim_config *o = &cfg->outer;
  if (has_outer && o->opt == OPT_DELAYED_NESTEROV) {
    int N = o->dn_n ? o->dn_n : K;
    if (o->dn_c > 1.0 / N) {
      snprintf(path, path_size, "outer.c");
      snprintf(msg, msg_size, "expected at most 1/N = %g (N = %d), got %g", 1.0 / N, N,
               o->dn_c);
      return WL_ECONFIG;
    }
    if (!(type->traits & OPT_TRAIT_ASYNC)) {
      snprintf(path, path_size, "outer.opt");
      snprintf(msg, msg_size, "expected an optimizer other than delayed_nesterov for a "
                              "synchronous policy (it is built for asynchronous arrivals)");
      return WL_ECONFIG;
    }
  }
  if (wl_param_find(type->variant.params, "participation") && cfg->participation < 1 &&
      opt_round_participants(cfg->participation, K) >= K) {
    snprintf(path, path_size, "participation");
    snprintf(msg, msg_size, "has no effect with %d worker%s (ceil(%g x %d) takes them all); "
             "remove it", K, K == 1 ? "" : "s", cfg->participation, K);
    return WL_ECONFIG;
  }
  return type->check ? type->check(cfg, K, path, path_size, msg, msg_size) : WL_OK;
}

wl_status opt_outer_resolve(const opt_optim_config *c, int K, opt_optim_config *out, char *err,
                            size_t err_size, const char *path)
{
  *out = *c;
  if (c->opt != OPT_DELAYED_NESTEROV)
    return WL_OK;
  if (out->dn_n == 0)
    out->dn_n = K;
  if (out->dn_c > 1.0 / out->dn_n) {
    snprintf(err, err_size, "%s.c: expected at most 1/N = %g, got %g", path, 1.0 / out->dn_n,
             c->dn_c);
    return WL_ECONFIG;
  }
  return WL_OK;
}

int opt_tasks_least_visited(const void *cfg)
{
  return ((const opt_policy_config *)cfg)->shards == OPT_SHARDS_LEAST_VISITED;
}

wl_status opt_tasks_init(opt_tasks *t, const opt_policy_config *cfg, int K)
{
  t->least_visited = cfg->shards == OPT_SHARDS_LEAST_VISITED;
  t->by_shard = t->least_visited && cfg->schedule_by == OPT_SCHEDULE_BY_SHARD;
  t->fresh = cfg->inner_state == OPT_INNER_STATE_RESET;
  t->visits = calloc(2 * (size_t)K, sizeof *t->visits);
  t->progress = t->visits ? t->visits + K : NULL;
  t->ties = malloc((size_t)K * sizeof *t->ties);
  return t->visits && t->ties ? WL_OK : WL_ENOMEM;
}

void opt_tasks_free(opt_tasks *t)
{
  free(t->visits);
  free(t->ties);
  t->visits = t->progress = NULL;
  t->ties = NULL;
}

double opt_tasks_memory(int K) { return 2.0 * K * sizeof(long) + K * sizeof(int) + 32; }

void opt_tasks_assign(opt_tasks *t, const opt_host *h, opt_train *job)
{
  WL_ASSERT(!job->mix);
  job->fresh = t->fresh;
  if (!t->least_visited)
    return;
  int n = 0;
  for (int s = 0; s < h->K; s++) {
    if (n > 0 && t->visits[s] < t->visits[t->ties[0]])
      n = 0;
    if (n == 0 || t->visits[s] == t->visits[t->ties[0]])
      t->ties[n++] = s;
  }
  int s = t->ties[n > 1 ? gsl_rng_uniform_int(h->rng(h->ctx, 0), (unsigned long)n) : 0];
  t->visits[s]++;
  job->shard = s + 1;
  job->lr_shard = t->by_shard;
  job->lr_from = t->progress[s];
  t->progress[s] += job->steps;
}

double opt_rng_memory(void) { return sizeof(gsl_rng) + gsl_rng_mt19937->size + 32.0; }

double opt_round_memory(int K) { return 2.0 * K + 2.0 * K * sizeof(int) + 64; }

double opt_outer_memory(const opt_optim_config *cfg, double n)
{
  return (2.0 + opt_optim_state_floats(cfg)) * n * sizeof(float) + 64;
}

wl_status opt_round_init(opt_round *rd, int K, void *owner, void (*begin)(void *),
                         void (*reduce)(void *))
{
  rd->owner = owner;
  rd->begin = begin;
  rd->reduce = reduce;
  rd->K = K;
  rd->pending = rd->active = 0;
  rd->fraction = 1.0;
  rd->in = calloc(2 * (size_t)K, 1);
  rd->done = rd->in ? rd->in + K : NULL;
  rd->pick = malloc(2 * (size_t)K * sizeof *rd->pick);
  return rd->in && rd->pick ? WL_OK : WL_ENOMEM;
}

void opt_round_free(opt_round *rd)
{
  free(rd->in);
  free(rd->pick);
  rd->in = rd->done = NULL;
  rd->pick = NULL;
}

void opt_round_participation(opt_round *rd, double fraction) { rd->fraction = fraction; }

int opt_round_participants(double fraction, int K)
{
  double x = fraction * K, near = floor(x + 0.5);
  /* a product within rounding of an integer is that integer: 0.28 of 25 is 7, not 8 */
  if (fabs(x - near) <= 1e-12 * (x > 1 ? x : 1))
    x = near;
  int m = (int)ceil(x);
  return m < 1 ? 1 : m > K ? K : m;
}

int opt_round_begin(opt_round *rd, const opt_host *h)
{
  rd->pending = 0;
  rd->reducing = 0;
  for (int w = 0; w < rd->K; w++) {
    rd->in[w] = h->up[w];
    rd->done[w] = 0;
    rd->pending += rd->in[w];
  }
  int m = rd->fraction < 1.0 ? opt_round_participants(rd->fraction, rd->K) : rd->K;
  if (m < rd->pending) { /* m of the workers that are up, in worker order */
    int n = 0, *up = rd->pick, *chosen = rd->pick + rd->K;
    for (int w = 0; w < rd->K; w++)
      if (rd->in[w])
        up[n++] = w;
    gsl_ran_choose(h->rng(h->ctx, OPT_STREAM_ROUNDS(rd->K)), chosen, (size_t)m, up, (size_t)n,
                   sizeof *up);
    memset(rd->in, 0, (size_t)rd->K);
    for (int i = 0; i < m; i++)
      rd->in[chosen[i]] = 1;
    rd->pending = m;
  }
  rd->active = rd->pending > 0;
  return rd->pending;
}

int opt_round_start(opt_round *rd, const opt_host *h, const opt_train *job)
{
  int n = opt_round_begin(rd, h);
  for (int w = 0; w < rd->K; w++)
    if (rd->in[w]) {
      if (job && rd->tasks) {
        opt_train task = *job;
        opt_tasks_assign(rd->tasks, h, &task);
        h->train(h->ctx, w, &task);
      } else if (job)
        h->train(h->ctx, w, job);
      else
        h->grad(h->ctx, w);
    }
  return n;
}

int opt_round_arrive(opt_round *rd, int w)
{
  WL_ASSERT(rd->active && rd->in[w] && !rd->done[w] && rd->pending > 0);
  rd->done[w] = 1;
  rd->reducing = --rd->pending == 0;
  return rd->reducing;
}

int opt_round_leave(opt_round *rd, int w)
{
  if (!rd->active || !rd->in[w])
    return 0;
  rd->in[w] = 0; /* its part, finished or not, is not in the synchronization */
  if (rd->done[w])
    return 0;
  rd->reducing = --rd->pending == 0;
  return rd->reducing;
}

int opt_round_size(const opt_round *rd)
{
  int n = 0;
  for (int w = 0; w < rd->K; w++)
    n += rd->in[w];
  return n;
}

void opt_round_work_done(void *state, int w)
{
  opt_round *rd = state;
  if (opt_round_arrive(rd, w))
    rd->reduce(rd->owner);
}

void opt_round_worker_down(void *state, int w)
{
  opt_round *rd = state;
  if (rd->active && rd->reducing) {
    /* it leaves the synchronization in progress (the runner re-runs the collective among
     * the others); when none is left, the round is over */
    if (rd->in[w]) {
      rd->in[w] = 0;
      if (opt_round_size(rd) == 0)
        rd->begin(rd->owner);
    }
    return;
  }
  if (!opt_round_leave(rd, w))
    return;
  if (opt_round_size(rd) > 0)
    rd->reduce(rd->owner);
  else
    rd->begin(rd->owner);
}

void opt_round_worker_up(void *state, int w)
{
  opt_round *rd = state;
  (void)w;
  if (!rd->active)
    rd->begin(rd->owner);
}
