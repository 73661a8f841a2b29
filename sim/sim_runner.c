#include "sim_runner.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "sim_cluster.h"
#include "sim_flows.h"
#include "sim_net.h"
#include "sim_pool.h"
#include "sim_queue.h"
#include "sim_rng.h"
#include "sim_runner_impl.h"

static _Thread_local const sim_time *assert_now;

static void describe_now(char *buf, unsigned long size)
{
  if (assert_now)
    snprintf(buf, size, "sim time %.9f s", sim_time_to_s(*assert_now));
}

static wl_status keep_no_begin(void *ctx) { (void)ctx; return WL_OK; }
static wl_status keep_no_metric(void *ctx, const sim_metric *m) { (void)ctx, (void)m; return WL_OK; }
static wl_status keep_no_worker(void *ctx, const sim_worker_stats *w)
{
  (void)ctx, (void)w;
  return WL_OK;
}
static wl_status keep_no_update(void *ctx, const sim_update *u) { (void)ctx, (void)u; return WL_OK; }
static wl_status keep_no_end(void *ctx, const sim_result *r) { (void)ctx, (void)r; return WL_OK; }

sim_recorder sim_recorder_discarding(void)
{
  return (sim_recorder){.begin = keep_no_begin, .metric = keep_no_metric,
                        .worker = keep_no_worker, .update = keep_no_update, .end = keep_no_end};
}

const char *sim_result_status_name(wl_status st)
{
  switch (st) {
  case WL_OK: return "done";
  case WL_EINTR: return "interrupted";
  case WL_EDIVERGED: return "diverged";
  default: return "failed";
  }
}

/* Queue ev, unless it is never; counts the queued work. */
static void enqueue(sim_runner *r, sim_event ev)
{
  if (ev.time >= SIM_TIME_MAX) /* never */
    return;
  wl_status st = sim_queue_push(&r->q, ev);
  if (st != WL_OK && r->fail == WL_OK)
    r->fail = st;
  r->work_queued += st == WL_OK && ev.kind != SIM_EV_EVAL;
}

static void schedule(sim_runner *r, sim_time at, int kind, int worker, int tag, int src,
                     int64_t arg)
{
  enqueue(r, (sim_event){.time = at, .kind = kind, .worker = worker, .tag = tag, .src = src,
                         .arg = arg});
}

void sim_runner_schedule_gen(sim_runner *r, sim_time at, int kind, int worker, int64_t gen)
{
  enqueue(r, (sim_event){.time = at, .kind = kind, .worker = worker, .gen = gen});
}

/* A worker's activities are accounted when they end (or when the run ends during one), and
 * logged as intervals while record.timeline allows. */
void sim_runner_busy_begin(sim_worker *wk, int kind, sim_time now)
{
  WL_ASSERT(wk->busy_kind == BUSY_NONE);
  wk->busy_kind = kind;
  wk->busy_start = now;
}

void sim_runner_busy_end_at(sim_runner *r, int w, sim_time now)
{
  sim_worker *wk = &r->w[w];
  WL_ASSERT(wk->busy_kind != BUSY_NONE);
  sim_time d = now - wk->busy_start;
  if (wk->busy_kind == BUSY_COMPUTE)
    wk->compute_ns += d;
  else if (wk->busy_kind == BUSY_COMM)
    wk->comm_ns += d;
  else if (wk->busy_kind == BUSY_BLOCKED)
    wk->blocked_ns += d;
  else
    wk->down_ns += d;
  static const char *const names[] = {"", "compute", "comm", "down", "blocked"};
  if (r->intervals_left > 0 && r->rec->interval && d > 0) {
    r->intervals_left--;
    sim_interval iv = {w, names[wk->busy_kind], sim_time_to_s(wk->busy_start),
                       sim_time_to_s(now)};
    wl_status st = r->rec->interval(r->rec->ctx, &iv);
    if (st != WL_OK && r->fail == WL_OK)
      r->fail = st;
  }
  wk->busy_kind = BUSY_NONE;
}

/* One gradient on worker w's next batch into its replica's grads, on thread t's workspace. */
static void worker_gradient(sim_runner *r, int w, int t)
{
  sim_worker *wk = &r->w[w];
  sim_trainer *tr = &r->tr[w];
  opt_replica *rep = &r->reps[w];
  wl_sampler_next(&tr->sampler, r->data, r->B, tr->batch_rng, &r->batches[t]);
  double loss = wl_model_step(r->models[t], rep->params, rep->grads, &r->batches[t]);
  wk->job_diverged |= !isfinite(loss);
  wk->job_loss_sum += loss;
  wk->job_grads++;
}

/* Worker w's job, on thread t. It touches only w's replica, sampler and stream and t's
 * workspace (mix steps read the policy's global model, which no one changes while jobs
 * are in flight), so it may run on any thread at any time before its completion. */
static void run_job(sim_runner *r, int w, int t)
{
  sim_worker *wk = &r->w[w];
  const opt_optim_config *inner = &r->cfg->policy.inner;
  opt_replica *rep = &r->reps[w];
  const opt_train *job = &wk->job;
  WL_ASSERT(job->steps > 0);
  wk->job_loss_sum = 0;
  wk->job_grads = 0;
  wk->job_diverged = 0;
  for (int s = 0; s < job->steps; s++) {
    if (job->mix && job->mix[s]) {
      r->policy.type->mix_step(r->policy.state, w, opt_optim_lr(inner, rep->local_steps));
      rep->local_steps++;
      continue;
    }
    if (r->timing_only) {
      wk->job_grads++;
      continue;
    }
    worker_gradient(r, w, t);
    if (wk->job_apply)
      opt_replica_apply(rep, inner, job->lr_scale);
  }
}

/* Pool job w: worker w's job, or during a host parallel call tasks claimed one by one. */
static void pool_job(void *ctx, int thread, int w)
{
  sim_runner *r = ctx;
  if (r->par_fn) { /* claim tasks until none is left: a thread that starts late does less */
    for (int i; (i = atomic_fetch_add_explicit(&r->par_next, 1, memory_order_relaxed)) <
                r->par_n;)
      r->par_fn(r->par_arg, i);
    return;
  }
  run_job(r, w, thread);
}

/* The policy's parallel work (means and copies of replicas at a synchronization) runs on
 * the pool while no worker's job is in flight: the tasks touch disjoint data, so which
 * thread runs which does not matter. */
void sim_runner_host_parallel(void *ctx, int n, void (*fn)(void *arg, int i), void *arg)
{
  sim_runner *r = ctx;
  if (!r->pool || r->jobs_in_flight > 0 || n < 2) {
    for (int i = 0; i < n; i++)
      fn(arg, i);
    return;
  }
  r->par_fn = fn, r->par_arg = arg, r->par_n = n;
  atomic_store_explicit(&r->par_next, 0, memory_order_relaxed);
  r->par_jobs = (n < r->n_threads ? n : r->n_threads) - 1; /* the event loop is one more */
  for (int j = 0; j < r->par_jobs; j++)
    sim_pool_submit(r->pool, j);
  pool_job(r, r->n_threads - 1, -1);
  for (int j = 0; j < r->par_jobs; j++)
    sim_pool_wait(r->pool, j, r->n_threads - 1);
  r->par_fn = NULL;
}

/* The job's completion: make sure it has run, then merge its results in event order. */
static void finish_job(sim_runner *r, int w)
{
  sim_worker *wk = &r->w[w];
  if (r->pool) {
    sim_pool_wait(r->pool, w, r->n_threads - 1);
    r->jobs_in_flight--;
  } else {
    run_job(r, w, 0);
  }
  r->train_loss_sum += wk->job_loss_sum;
  r->train_loss_n += wk->job_grads;
  r->grad_steps += wk->job_grads;
  wk->grad_steps += wk->job_grads;
  r->diverged |= wk->job_diverged;
  wk->job.steps = 0;
}

/* Worker w's job will be undone if a failure loses it: remember what it starts from (its
 * replica, batch order and batch stream). */
static void snapshot_worker(sim_runner *r, int w)
{
  sim_trainer *tr = &r->tr[w];
  opt_replica_copy(&tr->snap, &r->reps[w]);
  memcpy(tr->snap_order, tr->sampler.order, (size_t)tr->sampler.shard->n * sizeof(int32_t));
  tr->snap_pos = tr->sampler.pos;
  tr->snap_epoch = tr->sampler.epoch;
  gsl_rng_memcpy(tr->snap_rng, tr->batch_rng);
}

/* Undo worker w's lost job: its optimizer state, step counts, schedule position and batch
 * stream are as they were when the job started. */
void sim_runner_restore_worker(sim_runner *r, int w)
{
  sim_trainer *tr = &r->tr[w];
  opt_replica_copy(&r->reps[w], &tr->snap);
  memcpy(tr->sampler.order, tr->snap_order, (size_t)tr->sampler.shard->n * sizeof(int32_t));
  tr->sampler.pos = tr->snap_pos;
  tr->sampler.epoch = tr->snap_epoch;
  gsl_rng_memcpy(tr->batch_rng, tr->snap_rng);
}

/* Schedule worker w's job; its math runs on a pool thread (or on the event loop's, which
 * runs queued jobs while it waits for one), or (one thread) when its completion is
 * processed: either way it depends only on w's replica, batch stream and
 * config, which nothing else touches meanwhile, and work cut off by the end of the run is
 * never counted. Compute time is charged for gradient steps only (a policy's mix steps use
 * no batch and no gradient). */
static void start_compute(sim_runner *r, int w, const opt_train *job, int apply)
{
  sim_worker *wk = &r->w[w];
  WL_ASSERT(wk->job.steps == 0 && job->steps > 0);
  wk->job = *job;
  wk->job_apply = apply;
  if (r->snapshots)
    snapshot_worker(r, w);
  long grad_steps = job->steps;
  for (int s = 0; job->mix && s < job->steps; s++)
    grad_steps -= job->mix[s] != 0;
  sim_time end = sim_cluster_job_end(&r->cluster, w, r->now, grad_steps);
  wk->job_ns = end - r->now;
  wk->job_gen++;
  if (r->up[w]) {
    wk->job_end = end;
    sim_runner_busy_begin(wk, BUSY_COMPUTE, r->now);
    sim_runner_schedule_gen(r, end, SIM_EV_WORK_DONE, w, wk->job_gen);
  } else { /* down, and the policy waits for it: the job starts when it is back */
    wk->job_left = end - r->now;
    wk->job_paused = 1;
    wk->resume_kind = BUSY_COMPUTE;
  }
  if (r->pool) {
    sim_pool_submit(r->pool, w);
    r->jobs_in_flight++;
  }
}

static void host_train(void *ctx, int w, const opt_train *job)
{
  sim_runner *r = ctx;
  WL_ASSERT(w >= 0 && w < r->K);
  start_compute(r, w, job, 1);
}

static void host_grad(void *ctx, int w)
{
  sim_runner *r = ctx;
  WL_ASSERT(w >= 0 && w < r->K);
  const opt_train one = {1, NULL, 1.0};
  start_compute(r, w, &one, 0);
}

/* A collective over the workers in mask. With overlap > 0 (DDP's bucketing), part of it
 * hides behind the backward pass of the step that precedes it: the slowest participant's
 * backward pass, backward_share of its last job's compute, bounds what can hide, so the
 * collective costs AR - min(overlap AR, b) after the last participant's compute ends. A
 * participant that is down (the policy waiting for it) pauses the collective until every
 * participant is up; the others are blocked meanwhile. */
static void host_allreduce(void *ctx, int64_t bytes, double overlap, double backward_share,
                           const uint8_t *mask, int tag)
{
  sim_runner *r = ctx;
  WL_ASSERT(!r->coll_active);
  double s = sim_net_allreduce_time(&r->net, mask, (double)bytes);
  if (overlap > 0) {
    sim_time slowest = 0;
    for (int w = 0; w < r->K; w++)
      if ((!mask || mask[w]) && r->w[w].job_ns > slowest)
        slowest = r->w[w].job_ns;
    s -= fmin(overlap * s, backward_share * sim_time_to_s(slowest));
  }
  sim_time dur = sim_time_from_s(s);
  int any_down = 0;
  for (int w = 0; w < r->K; w++)
    any_down |= (!mask || mask[w]) && !r->up[w];
  WL_ASSERT(!any_down || !r->hears_failures); /* (then the policy leaves down workers out) */
  for (int w = 0; w < r->K; w++) {
    r->coll_mask[w] = !mask || mask[w];
    if (!r->coll_mask[w])
      continue;
    if (r->up[w]) {
      sim_runner_busy_begin(&r->w[w], any_down ? BUSY_BLOCKED : BUSY_COMM, r->now);
    } else {
      r->w[w].resume_kind = BUSY_COMM;
    }
  }
  r->coll_active = 1;
  r->coll_tag = tag;
  r->coll_bytes = bytes;
  r->coll_gen++;
  r->coll_paused = any_down;
  if (any_down)
    r->coll_left = dur;
  else {
    r->coll_end = sim_time_add(r->now, dur);
    sim_runner_schedule_gen(r, r->coll_end, SIM_EV_COLLECTIVE_DONE, -1, r->coll_gen);
  }
}

/* Link indices in the flow model: worker w's upload 2w, download 2w + 1; the server's
 * upload 2K, download 2K + 1. */
int sim_runner_up_link(const sim_runner *r, int e) { return e == OPT_SERVER ? 2 * r->K : 2 * e; }
int sim_runner_down_link(const sim_runner *r, int e)
{
  return e == OPT_SERVER ? 2 * r->K + 1 : 2 * e + 1;
}

/* A point-to-point transfer: after the latency its bytes flow over the sender's upload and
 * the receiver's download, sharing them max-min fairly with the other transfers. The worker
 * ends spend the whole transfer communicating. Its first byte leaves at now + latency to
 * 1/1024 ns (the event that starts it is at the nanosecond before), so that its duration,
 * latency plus flow time, is rounded to the nanosecond once, when it completes. */
static void host_send(void *ctx, int from, int to, int64_t bytes, int tag)
{
  sim_runner *r = ctx;
  WL_ASSERT(from != to && from >= OPT_SERVER && from < r->K && to >= OPT_SERVER && to < r->K);
  if (from != OPT_SERVER)
    sim_runner_busy_begin(&r->w[from], BUSY_COMM, r->now);
  if (to != OPT_SERVER)
    sim_runner_busy_begin(&r->w[to], BUSY_COMM, r->now);
  double lat = fmax(from == OPT_SERVER ? 0.0 : r->net.lat[from],
                    to == OPT_SERVER ? 0.0 : r->net.lat[to]);
  int64_t lat_ticks = llround(ldexp(lat * 1e9, SIM_FLOW_TICK_BITS)); /* lat <= 1000 s */
  int worker_end = from == OPT_SERVER ? to : from;
  sim_event ev = {.time = sim_time_add(r->now, lat_ticks >> SIM_FLOW_TICK_BITS),
                  .kind = SIM_EV_FLOW_START, .worker = to, .tag = tag, .src = from, .arg = bytes,
                  .gen = r->w[worker_end].flow_gen,
                  .x = (double)(lat_ticks & ((1 << SIM_FLOW_TICK_BITS) - 1))};
  enqueue(r, ev);
}

/* Schedule the earliest flow's completion; earlier schedules become stale. */
void sim_runner_schedule_flow_done(sim_runner *r)
{
  sim_time t = sim_flows_next(&r->flows);
  r->flow_generation++;
  if (t != SIM_TIME_MAX)
    schedule(r, t, SIM_EV_FLOW_DONE, -1, 0, 0, r->flow_generation);
}

static void flow_start(sim_runner *r, const sim_event *ev)
{
  int worker_end = ev->src == OPT_SERVER ? ev->worker : ev->src;
  if (ev->gen != r->w[worker_end].flow_gen)
    return; /* its worker failed before the first byte left */
  int links[2] = {sim_runner_up_link(r, ev->src), sim_runner_down_link(r, ev->worker)};
  sim_flows_add(&r->flows, r->now, links, 2, ev->arg, (int64_t)ev->x, ev->src, ev->worker,
                ev->tag);
  sim_runner_schedule_flow_done(r);
}

static void message_delivered(sim_runner *r, int from, int to, int64_t bytes)
{
  if (from != OPT_SERVER) {
    r->w[from].bytes_sent += (double)bytes;
    sim_runner_busy_end_at(r, from, r->now);
  }
  if (to != OPT_SERVER) {
    r->w[to].bytes_recv += (double)bytes;
    sim_runner_busy_end_at(r, to, r->now);
  }
  r->bytes_total += (double)bytes;
}

/* Every flow that completes now is removed, then delivered in the order the flows were
 * added. */
static void flow_done(sim_runner *r, const sim_event *ev)
{
  if (ev->arg != r->flow_generation)
    return;
  const sim_flow_done *done;
  int n = sim_flows_pop_done(&r->flows, r->now, &done);
  sim_runner_schedule_flow_done(r);
  for (int i = 0; i < n; i++) {
    message_delivered(r, done[i].from, done[i].to, done[i].bytes);
    r->policy.type->message(r->policy.state, done[i].from, done[i].to, done[i].tag);
  }
}

static void host_timer(void *ctx, double delay_s, int tag)
{
  sim_runner *r = ctx;
  schedule(r, sim_time_add(r->now, sim_time_from_s(delay_s)), SIM_EV_TIMER, -1, tag, 0, 0);
}

static void host_record_update(void *ctx, int w, long staleness, double weight, int dropped)
{
  sim_runner *r = ctx;
  sim_update u = {sim_time_to_s(r->now), w, staleness, weight, dropped};
  if (!dropped) {
    r->w[w].stale_sum += (double)staleness;
    r->w[w].stale_n++;
  }
  wl_status st = r->rec->update ? r->rec->update(r->rec->ctx, &u) : WL_OK;
  if (st != WL_OK && r->fail == WL_OK)
    r->fail = st;
}

static gsl_rng *host_rng(void *ctx, int stream)
{
  sim_runner *r = ctx;
  WL_ASSERT(stream >= 0 && stream <= r->K);
  if (!r->policy_rng[stream])
    r->policy_rng[stream] = sim_rng_create((uint64_t)r->cfg->seed, SIM_RNG_POLICY,
                                           (uint32_t)stream);
  if (!r->policy_rng[stream]) { /* out of memory: the run fails at its next event; until then
                                   the policy draws from a spare made at set-up */
    if (r->fail == WL_OK)
      r->fail = WL_ENOMEM;
    return r->spare_rng;
  }
  return r->policy_rng[stream];
}

static void host_global_changed(void *ctx) { ((sim_runner *)ctx)->global_changed = 1; }

static double host_speed_now(void *ctx, int w)
{
  sim_runner *r = ctx;
  WL_ASSERT(w >= 0 && w < r->K);
  return sim_cluster_speed_now(&r->cluster, w, sim_time_to_s(r->now));
}

static double host_speed_max_now(void *ctx)
{
  sim_runner *r = ctx;
  return sim_cluster_speed_max(&r->cluster, sim_time_to_s(r->now));
}

static void collective_finished(sim_runner *r)
{
  int n = 0;
  for (int w = 0; w < r->K; w++)
    n += r->coll_mask[w];
  double per_worker =
    sim_net_allreduce_bytes(r->cfg->cluster.network.collective, n, (double)r->coll_bytes);
  for (int w = 0; w < r->K; w++) {
    if (!r->coll_mask[w])
      continue;
    if (r->w[w].busy_kind == BUSY_COMM) /* (a participant that failed during it is down) */
      sim_runner_busy_end_at(r, w, r->now);
    r->w[w].bytes_sent += per_worker;
    r->w[w].bytes_recv += per_worker;
  }
  r->bytes_total += per_worker * n;
  r->coll_active = 0;
}

/* The flow model's link capacities from the network as it is now. */
static void flow_capacities(const sim_runner *r, double *cap)
{
  for (int w = 0; w < r->K; w++) {
    cap[sim_runner_up_link(r, w)] = r->net.up[w];
    cap[sim_runner_down_link(r, w)] = r->net.down[w];
  }
  cap[sim_runner_up_link(r, OPT_SERVER)] = cap[sim_runner_down_link(r, OPT_SERVER)] = r->net.server;
}

/* The flow model: worker links and the server's two hub links; its capacity unit fits the
 * largest capacity the run will see (now or from the trace). SYNCSIM_FLOWS=reference runs
 * the reference solver (the same results, slower). */
static wl_status flows_init(sim_runner *r, char *err, size_t err_size)
{
  const char *solver = getenv("SYNCSIM_FLOWS");
  int reference = solver && strcmp(solver, "reference") == 0;
  if (solver && *solver && !reference && strcmp(solver, "incremental") != 0) {
    snprintf(err, err_size, "SYNCSIM_FLOWS: expected incremental or reference, got '%s'",
             solver);
    return WL_ECONFIG;
  }
  int n_links = 2 * r->K + 2;
  double *cap = malloc((size_t)n_links * sizeof *cap);
  if (!cap)
    return WL_ENOMEM;
  flow_capacities(r, cap);
  double most = 0;
  for (int l = 0; l < n_links; l++)
    most = fmax(most, cap[l]);
  for (int i = 0; i < r->net.n_changes; i++)
    if (!isnan(r->net.changes[i].bps))
      most = fmax(most, r->net.changes[i].bps);
  int hubs[2] = {sim_runner_up_link(r, OPT_SERVER), sim_runner_down_link(r, OPT_SERVER)};
  wl_status st = sim_flows_init(&r->flows, n_links, cap, most, hubs, 2, 2 * r->K + 2);
  free(cap);
  if (st == WL_OK && reference)
    sim_flows_force_reference(&r->flows);
  return st;
}

/* The network trace changes links: flows move to the new capacities from now on. */
static void net_change(sim_runner *r)
{
  double now = sim_time_to_s(r->now);
  sim_net_apply(&r->net, now);
  double *cap = malloc((size_t)r->flows.n_links * sizeof *cap);
  wl_status st = cap ? WL_OK : WL_ENOMEM;
  if (cap) {
    flow_capacities(r, cap);
    st = sim_flows_set_capacity(&r->flows, r->now, cap);
    free(cap);
  }
  if (st != WL_OK && r->fail == WL_OK)
    r->fail = st;
  sim_runner_schedule_flow_done(r);
  double next = sim_net_next_change(&r->net);
  if (isfinite(next))
    schedule(r, sim_time_from_s(next), SIM_EV_NET_CHANGE, -1, 0, 0, 0);
}

/* ---- checks without a run --------------------------------------------------------------- */

enum { CHECK_CACHE_SIZE = 4 };

struct sim_check_cache {
  char key[CHECK_CACHE_SIZE][1400]; /* what built each dataset */
  wl_dataset *data[CHECK_CACHE_SIZE];
  int next;                         /* the slot to replace next */
};

sim_check_cache *sim_check_cache_create(void) { return calloc(1, sizeof(sim_check_cache)); }

void sim_check_cache_free(sim_check_cache *c)
{
  for (int i = 0; c && i < CHECK_CACHE_SIZE; i++)
    wl_dataset_destroy(c->data[i]);
  free(c);
}

/* Everything a dataset is built from. */
static void dataset_key(const sim_config *cfg, char *key, size_t size)
{
  const wl_dataset_config *d = &cfg->workload.dataset;
  snprintf(key, size, "%d|%d|%d|%d|%d|%d|%.17g|%d|%.17g|%s|%s|%.17g|%d|%d|%lld", d->type,
           d->generator, d->train_examples, d->test_examples, d->dim, d->classes, d->separation,
           d->teacher_hidden, d->label_noise, d->dir, d->path, d->test_fraction, d->random_offset,
           wl_model_seq_len(&cfg->workload.model), (long long)cfg->seed);
}

/* The run's dataset: built from its seed, or (a check) taken from the cache. */
static wl_status make_dataset(sim_runner *r, sim_check_cache *cache, char *err, size_t err_size)
{
  const sim_config *cfg = r->cfg;
  char key[sizeof cache->key[0]] = "";
  if (cache) {
    dataset_key(cfg, key, sizeof key);
    for (int i = 0; i < CHECK_CACHE_SIZE; i++)
      if (cache->data[i] && strcmp(cache->key[i], key) == 0) {
        r->data = cache->data[i];
        r->data_borrowed = 1;
        return WL_OK;
      }
  }
  gsl_rng *g = sim_rng_create((uint64_t)cfg->seed, SIM_RNG_DATASET, 0);
  if (!g)
    return WL_ENOMEM;
  err[0] = '\0';
  wl_status st = wl_dataset_create(&cfg->workload.dataset, wl_model_seq_len(&cfg->workload.model),
                                   g, &r->data, err, err_size);
  gsl_rng_free(g);
  if (st != WL_OK && strncmp(err, "workload.", 9) != 0) { /* name the key that led there */
    int type = cfg->workload.dataset.type;
    char why[1024];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, err_size, "workload.dataset%s: %s",
             type == WL_DATA_FASHION_MNIST ? ".dir" : type == WL_DATA_TEXT ? ".path" : "", why);
  }
  if (st != WL_OK || !cache)
    return st;
  int slot = cache->next;
  cache->next = (slot + 1) % CHECK_CACHE_SIZE;
  wl_dataset_destroy(cache->data[slot]);
  cache->data[slot] = r->data;
  snprintf(cache->key[slot], sizeof cache->key[slot], "%s", key);
  r->data_borrowed = 1;
  return WL_OK;
}

static wl_status setup(sim_runner *r, int threads, sim_check_cache *cache, char *err,
                       size_t err_size)
{
  const sim_config *cfg = r->cfg;
  const wl_workload_config *wc = &cfg->workload;
  wl_status st;
  gsl_rng *g = NULL;
  r->K = cfg->cluster.workers;
  r->B = wc->batch_size;
  r->t_stop = isnan(cfg->stop.sim_time_s) ? SIM_TIME_MAX : sim_time_from_s(cfg->stop.sim_time_s);
  r->last_eval = -1;
  r->last_loss = r->last_acc = NAN;
  r->timing_only = wc->model.type == WL_MODEL_NONE;
  r->intervals_left = cfg->record.timeline;

  if (!r->timing_only) {
    if ((st = make_dataset(r, cache, err, err_size)) != WL_OK)
      return st;
    r->eval_n = cfg->eval.examples ? cfg->eval.examples : r->data->n_test;
    if (r->eval_n > r->data->n_test) {
      snprintf(err, err_size, "eval.examples: expected at most the held-out set's %d examples, "
               "got %d", r->data->n_test, r->eval_n);
      return WL_ECONFIG;
    }
  }

  r->shards = calloc((size_t)r->K, sizeof *r->shards);
  r->w = calloc((size_t)r->K, sizeof *r->w);
  r->reps = calloc((size_t)r->K, sizeof *r->reps);
  r->speeds = calloc((size_t)r->K, sizeof *r->speeds);
  r->shard_sizes = calloc((size_t)r->K, sizeof *r->shard_sizes);
  r->policy_rng = calloc((size_t)r->K + 1, sizeof *r->policy_rng);
  r->up = calloc((size_t)r->K, 1);
  r->coll_mask = calloc((size_t)r->K, 1);
  r->spare_rng = sim_rng_create((uint64_t)cfg->seed, SIM_RNG_POLICY, (uint32_t)r->K + 1);
  if (!r->shards || !r->w || !r->reps || !r->speeds || !r->shard_sizes || !r->policy_rng ||
      !r->up || !r->coll_mask || !r->spare_rng)
    return WL_ENOMEM;
  if (!r->timing_only) {
    if (!(g = sim_rng_create((uint64_t)cfg->seed, SIM_RNG_PARTITION, 0)))
      return WL_ENOMEM;
    st = wl_partition(&wc->partition, r->data, r->K, g, r->shards, err, err_size);
    gsl_rng_free(g);
    if (st != WL_OK)
      return st;
  }

  /* timing only: no gradient work to spread over threads */
  r->n_threads = r->timing_only || threads < 1 ? 1 : (threads > r->K ? r->K : threads);
  r->models = calloc((size_t)r->n_threads, sizeof *r->models);
  r->batches = calloc((size_t)r->n_threads, sizeof *r->batches);
  if (!r->models || !r->batches)
    return WL_ENOMEM;
  for (int t = 0; !r->timing_only && t < r->n_threads; t++)
    if ((st = wl_model_create(&wc->model, r->data, r->B, &r->models[t])) ||
        (st = wl_batch_init(&r->batches[t], r->data, r->B)))
      return st;
  if (!r->timing_only && ((st = wl_model_create(&wc->model, r->data, r->B, &r->eval_model)) ||
                          (st = wl_batch_init(&r->eval_batch, r->data, r->B))))
    return st;
  if (!r->timing_only) { /* every workspace splits an evaluation into the same parts */
    r->eval_n_parts = wl_model_eval_parts(r->eval_model, &r->eval_batch, r->eval_n);
    for (int t = 0; t < r->n_threads; t++)
      WL_ASSERT(wl_model_eval_part_size(r->models[t], &r->batches[t]) ==
                wl_model_eval_part_size(r->eval_model, &r->eval_batch));
    if (r->eval_n_parts > 0 &&
        !(r->eval_parts = calloc((size_t)r->eval_n_parts, sizeof *r->eval_parts)))
      return WL_ENOMEM;
  }
  size_t n = r->timing_only ? 0 : wl_model_nparams(r->eval_model);
  if (!r->timing_only && !(r->eval_memo = malloc((n ? n : 1) * sizeof(float))))
    return WL_ENOMEM;
  int state_floats = opt_optim_state_floats(&cfg->policy.inner);
  const wl_tensor *tensors = NULL;
  int n_tensors = r->timing_only ? 0 : wl_model_tensors(r->eval_model, &tensors);
  if (!r->timing_only && !(r->tr = calloc((size_t)r->K, sizeof *r->tr)))
    return WL_ENOMEM;
  for (int w = 0; w < r->K; w++) {
    if ((st = opt_replica_init(&r->reps[w], n, state_floats)))
      return st;
    r->reps[w].tensors = tensors;
    r->reps[w].n_tensors = n_tensors;
    r->shard_sizes[w] = 1;
    if (r->timing_only)
      continue;
    sim_trainer *tr = &r->tr[w];
    if (!(tr->batch_rng = sim_rng_create((uint64_t)cfg->seed, SIM_RNG_BATCHES, (uint32_t)w)))
      return WL_ENOMEM;
    if ((st = wl_sampler_init(&tr->sampler, &r->shards[w], r->B, tr->batch_rng)))
      return st;
    r->shard_sizes[w] = r->shards[w].n;
  }
  double flops = r->timing_only ? NAN : wl_model_flops_per_example(r->eval_model) * r->B;
  if ((st = sim_cluster_init(&r->cluster, &cfg->cluster.compute, r->K, (uint64_t)cfg->seed,
                             flops, err, err_size)))
    return st;
  memcpy(r->speeds, r->cluster.speed, (size_t)r->K * sizeof *r->speeds);
  if (!r->timing_only) {
    if (!(g = sim_rng_create((uint64_t)cfg->seed, SIM_RNG_INIT, 0)))
      return WL_ENOMEM;
    wl_model_init(r->eval_model, r->reps[0].params, g);
    gsl_rng_free(g);
    for (int w = 1; w < r->K; w++)
      memcpy(r->reps[w].params, r->reps[0].params, n * sizeof(float));
  }

  double model_params = r->timing_only ? wc->model.params : (double)n;
  double wire_params = isnan(cfg->cluster.comm.params) ? model_params : cfg->cluster.comm.params;
  r->host = (opt_host){
    .ctx = r,
    .K = r->K,
    .replicas = r->reps,
    .payload_bytes = (int64_t)llround(wire_params * cfg->cluster.comm.bytes_per_param /
                                      cfg->cluster.comm.compression),
    .speeds = r->speeds,
    .shard_sizes = r->shard_sizes,
    .up = r->up,
    .train = host_train,
    .grad = host_grad,
    .allreduce = host_allreduce,
    .send = host_send,
    .timer = host_timer,
    .record_update = host_record_update,
    .rng = host_rng,
    .speed_now = host_speed_now,
    .speed_max_now = host_speed_max_now,
    .parallel = sim_runner_host_parallel,
    .global_changed = host_global_changed,
  };
  if ((st = sim_queue_init(&r->q, (size_t)r->K * 2 + 16)))
    return st;
  if (r->n_threads > 1 && (st = sim_pool_create(r->n_threads - 1, r->K, pool_job, r, &r->pool)))
    return st;
  if ((st = sim_net_init(&r->net, &cfg->cluster.network, r->K, err, err_size)) ||
      (st = flows_init(r, err, err_size)))
    return st;
  if (isfinite(sim_net_next_change(&r->net)))
    schedule(r, sim_time_from_s(sim_net_next_change(&r->net)), SIM_EV_NET_CHANGE, -1, 0, 0, 0);
  if ((st = sim_runner_failures_init(r)))
    return st;
  const sim_failure_config *fc = &cfg->cluster.failures;
  r->snapshots = r->hears_failures && !r->timing_only && sim_failures_on(fc);
  for (int w = 0; r->snapshots && w < r->K; w++) {
    sim_trainer *tr = &r->tr[w];
    if ((st = opt_replica_init(&tr->snap, n, state_floats)))
      return st;
    tr->snap_order = malloc((size_t)r->shards[w].n * sizeof(int32_t));
    tr->snap_rng = gsl_rng_clone(tr->batch_rng);
    if (!tr->snap_order || !tr->snap_rng)
      return WL_ENOMEM;
  }
  char perr[256];
  st = opt_policy_create(&cfg->policy, &r->host, &r->policy, perr, sizeof perr);
  if (st != WL_OK && perr[0])
    snprintf(err, err_size, "policies.%s.%s", cfg->policy.label, perr);
  return st;
}

static void teardown(sim_runner *r)
{
  sim_pool_destroy(r->pool); /* first: jobs in flight still use replicas and workspaces */
  opt_policy_destroy(&r->policy);
  sim_queue_free(&r->q);
  for (int w = 0; r->tr && w < r->K; w++) {
    sim_trainer *tr = &r->tr[w];
    wl_sampler_free(&tr->sampler);
    gsl_rng_free(tr->batch_rng);
    opt_replica_free(&tr->snap);
    free(tr->snap_order);
    gsl_rng_free(tr->snap_rng);
  }
  free(r->tr);
  for (int w = 0; r->reps && w < r->K; w++)
    opt_replica_free(&r->reps[w]);
  for (int w = 0; r->shards && w < r->K; w++)
    wl_shard_free(&r->shards[w]);
  for (int i = 0; r->policy_rng && i <= r->K; i++)
    gsl_rng_free(r->policy_rng[i]);
  free(r->policy_rng);
  gsl_rng_free(r->spare_rng);
  for (int w = 0; r->w && w < r->K; w++)
    gsl_rng_free(r->w[w].fail_rng);
  free(r->up);
  free(r->coll_mask);
  sim_cluster_free(&r->cluster);
  sim_flows_free(&r->flows);
  sim_net_free(&r->net);
  free(r->speeds);
  free(r->shard_sizes);
  free(r->w);
  free(r->reps);
  free(r->shards);
  for (int t = 0; r->models && t < r->n_threads; t++)
    wl_model_destroy(r->models[t]);
  for (int t = 0; r->batches && t < r->n_threads; t++)
    wl_batch_free(&r->batches[t]);
  free(r->models);
  free(r->batches);
  wl_model_destroy(r->eval_model);
  wl_batch_free(&r->eval_batch);
  free(r->eval_parts);
  free(r->eval_memo);
  if (!r->data_borrowed)
    wl_dataset_destroy(r->data);
}

wl_status sim_check(const sim_config *cfg, int threads, sim_check_cache *cache, char *err,
                    size_t err_size)
{
  sim_runner r = {.cfg = cfg};
  err[0] = '\0';
  gsl_set_error_handler_off();
  wl_status st = sim_check_memory(cfg, threads, err, err_size);
  if (st == WL_OK) /* (built with one thread: the others' workspaces are counted above) */
    st = setup(&r, 1, cache, err, err_size);
  teardown(&r);
  if (st != WL_OK && !err[0])
    snprintf(err, err_size, "%s", wl_strerror(st));
  return st;
}

static void dispatch(sim_runner *r, const sim_event *ev)
{
  const opt_policy_type *pt = r->policy.type;
  r->changed |= ev->kind != SIM_EV_EVAL;
  switch (ev->kind) {
  case SIM_EV_WORK_DONE:
    if (ev->gen != r->w[ev->worker].job_gen)
      break; /* paused or lost by a failure */
    finish_job(r, ev->worker);
    sim_runner_busy_end_at(r, ev->worker, r->now);
    pt->work_done(r->policy.state, ev->worker);
    break;
  case SIM_EV_COLLECTIVE_DONE:
    if (ev->gen != r->coll_gen)
      break; /* paused by a failure */
    collective_finished(r);
    pt->collective_done(r->policy.state, r->coll_tag);
    break;
  case SIM_EV_DOWN:
    sim_runner_worker_down(r, ev->worker);
    break;
  case SIM_EV_UP:
    sim_runner_worker_up(r, ev->worker);
    break;
  case SIM_EV_FLOW_START:
    flow_start(r, ev);
    break;
  case SIM_EV_FLOW_DONE:
    flow_done(r, ev);
    break;
  case SIM_EV_TIMER:
    pt->timer(r->policy.state, ev->tag);
    break;
  case SIM_EV_NET_CHANGE:
    net_change(r);
    break;
  case SIM_EV_EVAL: {
    r->global_changed = 0;
    wl_status st = sim_runner_evaluate(r);
    if (st != WL_OK && r->fail == WL_OK)
      r->fail = st;
    sim_time next = sim_time_add(ev->time, sim_time_period_from_s(r->cfg->eval.every_s));
    if (next <= r->t_stop)
      schedule(r, next, SIM_EV_EVAL, -1, 0, 0, 0);
    break;
  }
  default:
    WL_ASSERT(!"unknown event kind");
  }
  if (r->global_changed && r->cfg->eval.at_sync) { /* evaluate the model it just became */
    r->global_changed = 0;
    wl_status st = sim_runner_evaluate(r);
    if (st != WL_OK && r->fail == WL_OK)
      r->fail = st;
  }
}

/* The event loop. Returns WL_OK when a stop condition ends the run. */
static wl_status loop(sim_runner *r, const sim_run_opts *opts, double host_t0, long *events)
{
  const sim_stop_config *stop = &r->cfg->stop;
  double next_progress = host_t0 + 0.5;
  sim_event ev;
  for (;;) {
    if (r->fail != WL_OK)
      return r->fail;
    if (r->diverged)
      return WL_EDIVERGED;
    if (r->reached_target)
      return WL_OK;
    if (stop->steps > 0 && r->policy.type->step(r->policy.state) >= stop->steps)
      return WL_OK;
    if (opts && opts->interrupt && *opts->interrupt)
      return WL_EINTR;
    if ((*events & 63) == 0) {
      double h = wl_monotonic_s();
      if (!isnan(stop->host_time_s) && h - host_t0 >= stop->host_time_s)
        return WL_OK;
      if (opts && opts->progress && h >= next_progress) {
        sim_progress p = {sim_time_to_s(r->now), stop->sim_time_s,
                          r->policy.type->step(r->policy.state), stop->steps, *events,
                          r->last_loss, h - host_t0};
        opts->progress(opts->progress_ctx, &p);
        next_progress = h + 0.5;
      }
    }
    /* nothing but evaluations left, and no simulated-time limit: the stop conditions left
     * (steps, a target loss) can never be met, and the run would evaluate forever */
    if (r->work_queued == 0 && r->t_stop == SIM_TIME_MAX)
      return WL_ESTALLED;
    const sim_event *next = sim_queue_peek(&r->q);
    if (!next || next->time > r->t_stop) {
      if (r->t_stop != SIM_TIME_MAX)
        r->now = r->t_stop;
      return WL_OK;
    }
    sim_queue_pop(&r->q, &ev);
    r->work_queued -= ev.kind != SIM_EV_EVAL;
    r->now = ev.time;
    (*events)++;
    dispatch(r, &ev);
  }
}

/* Work in flight at the end counts only up to now, so that compute + comm + idle equals the
 * run's simulated time for every worker. */
static wl_status report_workers(sim_runner *r)
{
  for (int w = 0; w < r->K; w++) {
    sim_worker *wk = &r->w[w];
    if (wk->busy_kind == BUSY_DOWN)
      sim_runner_record_outage(r, w, r->now);
    if (wk->busy_kind != BUSY_NONE) /* cut by the end of the run */
      sim_runner_busy_end_at(r, w, r->now);
    sim_time compute = wk->compute_ns, comm = wk->comm_ns, down = wk->down_ns,
             blocked = wk->blocked_ns;
    sim_worker_stats s = {
      .worker = w,
      .speed = r->cluster.speed[w],
      .grad_steps = wk->grad_steps,
      .compute_s = sim_time_to_s(compute),
      .comm_s = sim_time_to_s(comm),
      .idle_s = sim_time_to_s(r->now - compute - comm - down - blocked),
      .blocked_s = sim_time_to_s(blocked),
      .bytes_sent = wk->bytes_sent,
      .bytes_recv = wk->bytes_recv,
      .mean_staleness = wk->stale_n ? wk->stale_sum / (double)wk->stale_n : NAN,
      .down_s = sim_time_to_s(down),
    };
    wl_status st = r->rec->worker(r->rec->ctx, &s);
    if (st != WL_OK)
      return st;
  }
  return WL_OK;
}

wl_status sim_run(const sim_config *cfg, const sim_recorder *rec, const sim_run_opts *opts,
                  sim_result *out)
{
  sim_runner r = {.cfg = cfg, .rec = rec};
  double host_t0 = wl_monotonic_s();
  gsl_set_error_handler_off(); /* GSL's failures (out of memory) are statuses, not aborts */
  memset(out, 0, sizeof *out);
  out->final_loss = out->final_accuracy = out->baseline_loss = NAN;
  assert_now = &r.now;
  wl_assert_set_context(describe_now);

  wl_status st = rec->begin(rec->ctx);
  if (st != WL_OK) {
    snprintf(out->error, sizeof out->error, "recording the run's start: %s", wl_strerror(st));
    out->status = st;
    return st;
  }
  wl_set_interrupt(opts ? opts->interrupt : NULL); /* (long set-up work polls it) */
  int threads = opts ? opts->threads : 1;
  st = sim_check_memory(cfg, threads, out->error, sizeof out->error); /* before anything is built */
  if (st == WL_OK)
    st = setup(&r, threads, opts ? opts->data_cache : NULL, out->error, sizeof out->error);
  wl_set_interrupt(NULL);
  int ready = st == WL_OK; /* everything built: the policy and workers can be read */
  if (ready)
    st = sim_runner_evaluate(&r);
  if (st == WL_OK) {
    if (cfg->eval.every_s > 0)
      schedule(&r, sim_time_period_from_s(cfg->eval.every_s), SIM_EV_EVAL, -1, 0, 0, 0);
    r.policy.type->start(r.policy.state);
    st = loop(&r, opts, host_t0, &out->events);
  }
  if (r.pool) { /* jobs still in flight end after the run: what they compute is never used */
    sim_pool_drain(r.pool);
    r.jobs_in_flight = 0;
  }
  /* A final evaluation of the global model as it ends, unless the last event was one (a
   * synchronization at the stop time comes after the evaluation scheduled for that time, and
   * is evaluated again); not after a diverged loss or a failure. */
  if (ready && (st == WL_OK || st == WL_EINTR) && (r.last_eval != r.now || r.changed)) {
    wl_status es = sim_runner_evaluate(&r);
    if (es != WL_OK)
      st = es;
    else if (r.diverged)
      st = WL_EDIVERGED;
  }
  if (ready) {
    wl_status ws = report_workers(&r);
    if (ws != WL_OK && (st == WL_OK || st == WL_EINTR))
      st = ws;
  }
  if (st != WL_OK && out->error[0] == '\0')
    snprintf(out->error, sizeof out->error, "%s", wl_strerror(st));
  out->status = st;
  out->sim_time_s = sim_time_to_s(r.now);
  out->step = ready ? r.policy.type->step(r.policy.state) : 0;
  out->final_loss = r.last_loss;
  out->final_accuracy = r.last_acc;
  if (r.data)
    out->baseline_loss = r.data->baseline_loss;
  teardown(&r);
  out->host_time_s = wl_monotonic_s() - host_t0;
  wl_status es = rec->end(rec->ctx, out);
  assert_now = NULL;
  wl_assert_set_context(NULL);
  if (es != WL_OK && st == WL_OK) {
    snprintf(out->error, sizeof out->error, "recording the run's end: %s", wl_strerror(es));
    out->status = st = es;
  }
  return st;
}
