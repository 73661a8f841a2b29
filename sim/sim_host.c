/* sim_host — the runner's side of the policy interface: the opt_host a policy is given
 * (its commands: train, grad, allreduce, send, timer, ...), the workers' jobs on the host's
 * threads, the workers' busy accounting, collectives, point-to-point flows and network
 * changes. sim_runner.c sets up a run and drives its event loop; the events it dispatches
 * land here. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cluster.h"
#include "sim_flows.h"
#include "sim_net.h"
#include "sim_pool.h"
#include "sim_queue.h"
#include "sim_rng.h"
#include "sim_runner_impl.h"

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

void sim_runner_schedule(sim_runner *r, sim_time at, int kind, int worker, int tag, int src,
                     int64_t arg)
{
  enqueue(r, (sim_event){.time = at, .kind = kind, .worker = worker, .tag = tag, .src = src,
                         .arg = arg});
}

void sim_runner_schedule_gen(sim_runner *r, sim_time at, int kind, int worker, int64_t gen)
{
  enqueue(r, (sim_event){.time = at, .kind = kind, .worker = worker, .gen = gen});
}

/* A worker's time splits into disjoint shares: its activity (compute, a collective, time down
 * or blocked) while it has one; else communication while any of its point-to-point transfers
 * is in flight; else idle. Transfers that overlap each other or an activity are so counted
 * once: a worker's communication is the union of its transfers' intervals and its
 * collectives', less what overlaps its compute (or its time down or blocked), which takes
 * precedence. Each share is accounted when it ends (or when the run ends during it), and
 * logged as an interval while record.timeline allows. (A worker that never overlaps two of
 * them, as under every policy that sends to or from the server alone, gets each activity and
 * each transfer accounted whole, as it happened.) An interval's kind in the timeline says what
 * the communication was: `allreduce` or `allgather` (a collective), `push` or `pull` (to or
 * from a server), `send` or `receive` (to or from another worker), or `transfer` (several of
 * those at once). */
const char *const sim_interval_kinds[] = {"compute", "allreduce", "allgather", "push", "pull",
                                          "send", "receive", "transfer", "down", "blocked",
                                          NULL};
enum { IV_COMPUTE = 0, IV_ALLREDUCE, IV_ALLGATHER, IV_PUSH, IV_PULL, IV_SEND, IV_RECEIVE,
       IV_TRANSFER, IV_DOWN, IV_BLOCKED };

static void account(sim_runner *r, int w, int kind, const char *comm_name, sim_time start,
                    sim_time now)
{
  sim_worker *wk = &r->w[w];
  sim_time d = now - start;
  if (kind == BUSY_COMPUTE)
    wk->compute_ns += d;
  else if (kind == BUSY_COMM)
    wk->comm_ns += d;
  else if (kind == BUSY_BLOCKED)
    wk->blocked_ns += d;
  else
    wk->down_ns += d;
  const char *const *names = sim_interval_kinds;
  const char *name = kind == BUSY_COMPUTE ? names[IV_COMPUTE]
                     : kind == BUSY_COMM  ? comm_name
                     : kind == BUSY_DOWN  ? names[IV_DOWN]
                                          : names[IV_BLOCKED];
  if (r->intervals_left > 0 && r->rec->interval && d > 0) {
    r->intervals_left--;
    sim_interval iv = {w, name, sim_time_to_s(start), sim_time_to_s(now)};
    wl_status st = r->rec->interval(r->rec->ctx, &iv);
    if (st != WL_OK && r->fail == WL_OK)
      r->fail = st;
  }
}

void sim_runner_busy_begin(sim_runner *r, int w, int kind, sim_time now)
{
  sim_worker *wk = &r->w[w];
  WL_ASSERT(wk->busy_kind == BUSY_NONE && kind != BUSY_NONE);
  if (wk->flows_open > 0) /* it was only transferring until now */
    account(r, w, BUSY_COMM, wk->flow_name, wk->flows_since, now);
  wk->busy_kind = kind;
  wk->busy_start = now;
}

void sim_runner_busy_end_at(sim_runner *r, int w, sim_time now)
{
  sim_worker *wk = &r->w[w];
  WL_ASSERT(wk->busy_kind != BUSY_NONE);
  account(r, w, wk->busy_kind, sim_interval_kinds[r->coll_gather ? IV_ALLGATHER : IV_ALLREDUCE],
          wk->busy_start, now); /* (BUSY_COMM: a collective) */
  wk->busy_kind = BUSY_NONE;
  wk->flows_since = now; /* (counts only while flows_open > 0) */
}

void sim_runner_flow_begin(sim_runner *r, int w, const char *name)
{
  sim_worker *wk = &r->w[w];
  if (wk->flows_open == 0 || !wk->flow_name)
    wk->flow_name = name;
  else if (wk->flow_name != name)
    wk->flow_name = sim_interval_kinds[IV_TRANSFER];
  if (wk->flows_open++ == 0 && wk->busy_kind == BUSY_NONE)
    wk->flows_since = r->now;
}

void sim_runner_flow_end(sim_runner *r, int w)
{
  sim_worker *wk = &r->w[w];
  WL_ASSERT(wk->flows_open > 0);
  if (--wk->flows_open == 0 && wk->busy_kind == BUSY_NONE)
    account(r, w, BUSY_COMM, wk->flow_name, wk->flows_since, r->now);
}

void sim_runner_flows_drop(sim_runner *r, int w)
{
  sim_worker *wk = &r->w[w];
  if (wk->flows_open > 0 && wk->busy_kind == BUSY_NONE)
    account(r, w, BUSY_COMM, wk->flow_name, wk->flows_since, r->now);
  wk->flows_open = 0;
}

/* One gradient on worker w's next batch into its replica's grads, on thread t's workspace:
 * its g-th gradient step's batch. */
static void worker_gradient(sim_runner *r, int w, int t, long g)
{
  sim_worker *wk = &r->w[w];
  sim_trainer *tr = &r->tr[w];
  opt_replica *rep = &r->reps[w];
  if (wk->job.shard) /* drawn at the task's start */
    wl_dataset_gather(r->data, 0, tr->task_pick + g * r->B, tr->task_offset + g * r->B, r->B,
                      &r->batches[t]);
  else
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
  for (int s = 0, g = 0; s < job->steps; s++) {
    if (job->mix && job->mix[s]) {
      r->policy.type->mix_step(r->policy.state, w, opt_optim_lr(inner, rep->local_steps));
      rep->local_steps++;
      continue;
    }
    if (r->timing_only) {
      wk->job_grads++;
      continue;
    }
    worker_gradient(r, w, t, g);
    if (wk->job_apply && job->lr_shard) /* the task's first step at the base rate */
      opt_replica_apply_lr(rep, inner,
                           (g == 0 ? inner->lr : opt_optim_lr(inner, job->lr_from + g)) *
                             job->lr_scale);
    else if (wk->job_apply)
      opt_replica_apply(rep, inner, job->lr_scale);
    g++;
  }
}

/* Pool job w: worker w's job, or during a host parallel call tasks claimed one by one. */
void sim_runner_pool_job(void *ctx, int thread, int w)
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
  sim_runner_pool_job(r, r->n_threads - 1, -1);
  for (int j = 0; j < r->par_jobs; j++)
    sim_pool_wait(r->pool, j, r->n_threads - 1);
  r->par_fn = NULL;
}

/* The job's completion: make sure it has run, then merge its results in event order. */
void sim_runner_finish_job(sim_runner *r, int w)
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
 * replica, batch order and batch stream; a task on a shard drew its batches already, and
 * the lost ones stay drawn). */
static void snapshot_worker(sim_runner *r, int w)
{
  sim_trainer *tr = &r->tr[w];
  opt_replica_copy(&tr->snap, &r->reps[w]);
  if (r->w[w].job.shard)
    return;
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
  if (r->w[w].job.shard)
    return;
  memcpy(tr->sampler.order, tr->snap_order, (size_t)tr->sampler.shard->n * sizeof(int32_t));
  tr->sampler.pos = tr->snap_pos;
  tr->sampler.epoch = tr->snap_epoch;
  gsl_rng_memcpy(tr->batch_rng, tr->snap_rng);
}

/* A task's start (opt_train): a fresh inner state; its batches drawn from its shard's
 * stream, in event order, so that tasks sharing a shard take consecutive batches. (Shard
 * s's stream is worker s's sampler, which a job of worker s reads only outside tasks: a
 * policy with tasks trains only in tasks, but for DiLoCo's warm-up steps, which all end
 * before its first task starts.) */
static void start_task(sim_runner *r, int w, const opt_train *job, long grad_steps)
{
  opt_replica *rep = &r->reps[w];
  if (job->fresh) {
    memset(rep->state, 0, (size_t)rep->state_floats * rep->n * sizeof(float));
    rep->step = 0;
  }
  if (!job->shard)
    return;
  WL_ASSERT(job->shard >= 1 && job->shard <= r->K);
  sim_trainer *tr = &r->tr[w], *src = &r->tr[job->shard - 1];
  WL_ASSERT(grad_steps * r->B <= tr->task_cap);
  for (long g = 0; g < grad_steps; g++) {
    wl_sampler_advance(&src->sampler, r->data, r->B, src->batch_rng);
    memcpy(tr->task_pick + g * r->B, src->sampler.pick, (size_t)r->B * sizeof(int32_t));
    memcpy(tr->task_offset + g * r->B, src->sampler.pick_offset, (size_t)r->B * sizeof(int32_t));
  }
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
  long grad_steps = job->steps;
  for (int s = 0; job->mix && s < job->steps; s++)
    grad_steps -= job->mix[s] != 0;
  if (!r->timing_only)
    start_task(r, w, job, grad_steps);
  if (r->snapshots)
    snapshot_worker(r, w);
  sim_time end = sim_cluster_job_end(&r->cluster, w, r->now, grad_steps);
  wk->job_ns = end - r->now;
  wk->job_gen++;
  if (r->up[w]) {
    wk->job_end = end;
    sim_runner_busy_begin(r, w, BUSY_COMPUTE, r->now);
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
  const opt_train one = {.steps = 1, .lr_scale = 1.0};
  start_compute(r, w, &one, 0);
}

/* A collective over the workers in mask, one span from the last participant's compute end:
 * its time after it (opt_overlap: part of it may hide behind the backward pass of the step
 * before it, the slowest participant's, backward_share of its last job's compute; or it
 * runs as buckets). Every collective (each bucket) pays the host work of
 * cluster.comm.overhead_*. A participant that is down (the policy waiting for it) pauses the
 * collective until every participant is up; the others are blocked meanwhile; one that
 * leaves makes the others run it again, all of it, from then. */
/* An all-gather of b bytes from each of n workers costs the all-gather half of an all-reduce
 * of the n b bytes gathered: exactly so for the ring and halving-doubling (Rabenseifner's
 * reduce-scatter then all-gather); an approximation for the hierarchical collective (whose
 * all-gather pays one intra-node phase more) and the binomial tree (the broadcast of the
 * gathered bytes, its gather phase left out). */
/* One collective of `bytes` (each participant's, for an all-gather) over mask, with the host
 * work it pays (cluster.comm.overhead_*). */
static double one_collective_s(const sim_runner *r, const uint8_t *mask, double bytes)
{
  const sim_comm_config *c = &r->cfg->cluster.comm;
  double s;
  if (!r->coll_gather) {
    s = sim_net_allreduce_time(&r->net, mask, bytes);
  } else {
    int n = 0;
    for (int w = 0; w < r->K; w++)
      n += !mask || mask[w];
    s = 0.5 * sim_net_allreduce_time(&r->net, mask, (double)n * bytes);
  }
  return s + c->overhead_s + c->overhead_s_per_mb * bytes / 1e6;
}

/* The buckets of the collective in progress: how many, and bucket k's bytes. */
static int n_buckets(const sim_runner *r)
{
  const opt_overlap *ov = &r->coll_ov;
  if (ov->buckets > 0)
    return ov->buckets;
  if (ov->bucket_bytes > 0) {
    double n = ceil((double)r->coll_bytes / ov->bucket_bytes);
    return n < 1 ? 1 : n > 1 << 20 ? 1 << 20 : (int)n;
  }
  return 0;
}

static double bucket_bytes(const sim_runner *r, int n, int k)
{
  double M = (double)r->coll_bytes;
  if (r->coll_ov.buckets > 0)
    return M * (k + 1) / n - M * k / n;
  return k + 1 < n ? r->coll_ov.bucket_bytes : M - (double)(n - 1) * r->coll_ov.bucket_bytes;
}

/* A collective's time is affine in its bytes (every formula, the all-gather's and the host
 * overhead): t0 + slope bytes, found once per collective so that buckets cost O(1) each. */
static void affine(const sim_runner *r, const uint8_t *mask, double *t0, double *slope)
{
  double M = (double)r->coll_bytes;
  *t0 = one_collective_s(r, mask, 0.0);
  *slope = M > 0 ? (one_collective_s(r, mask, M) - *t0) / M : 0.0;
}

double sim_runner_collective_s(const sim_runner *r, const uint8_t *mask)
{
  int n = n_buckets(r);
  if (n == 0)
    return one_collective_s(r, mask, (double)r->coll_bytes);
  double t0, slope, s = 0;
  affine(r, mask, &t0, &slope);
  for (int k = 0; k < n; k++)
    s += t0 + slope * bucket_bytes(r, n, k);
  return s;
}

/* Its time after the participants' compute ends (opt_overlap): b is the slowest
 * participant's backward pass. */
static double collective_tail_s(const sim_runner *r, const uint8_t *mask, double b)
{
  const opt_overlap *ov = &r->coll_ov;
  int n = n_buckets(r);
  if (n == 0) {
    double s = one_collective_s(r, mask, (double)r->coll_bytes);
    return ov->overlap > 0 ? s - fmin(ov->overlap * s, b) : s;
  }
  double end = -INFINITY, done = 0, M = (double)r->coll_bytes; /* times from the compute's end */
  double t0, slope;
  affine(r, mask, &t0, &slope);
  for (int k = 0; k < n; k++) {
    double bytes = bucket_bytes(r, n, k);
    done += bytes;
    double ready = M > 0 ? -ov->overlap * b * (1.0 - done / M) : 0.0;
    end = fmax(end, ready) + t0 + slope * bytes;
  }
  return end;
}

double sim_runner_collective_bytes(const sim_runner *r, int n)
{
  int alg = r->cfg->cluster.network.collective;
  if (!r->coll_gather)
    return sim_net_allreduce_bytes(alg, n, (double)r->coll_bytes);
  return 0.5 * sim_net_allreduce_bytes(alg, n, (double)n * (double)r->coll_bytes);
}

static void start_collective(sim_runner *r, int gather, int64_t bytes, const opt_overlap *ov,
                             const uint8_t *mask, int tag)
{
  WL_ASSERT(!r->coll_active);
  r->coll_gather = gather;
  r->coll_bytes = bytes;
  r->coll_ov = ov ? *ov : (opt_overlap){0};
  double b = 0;
  if (r->coll_ov.overlap > 0) {
    sim_time slowest = 0;
    for (int w = 0; w < r->K; w++)
      if ((!mask || mask[w]) && r->w[w].job_ns > slowest)
        slowest = r->w[w].job_ns;
    b = r->coll_ov.backward_share * sim_time_to_s(slowest);
  }
  sim_time dur = sim_time_from_s(collective_tail_s(r, mask, b));
  int any_down = 0;
  for (int w = 0; w < r->K; w++)
    any_down |= (!mask || mask[w]) && !r->up[w];
  WL_ASSERT(!any_down || !r->hears_failures); /* (then the policy leaves down workers out) */
  for (int w = 0; w < r->K; w++) {
    r->coll_mask[w] = !mask || mask[w];
    if (!r->coll_mask[w])
      continue;
    if (r->up[w]) {
      sim_runner_busy_begin(r, w, any_down ? BUSY_BLOCKED : BUSY_COMM, r->now);
    } else {
      r->w[w].resume_kind = BUSY_COMM;
    }
  }
  r->coll_active = 1;
  r->coll_tag = tag;
  r->coll_gen++;
  r->coll_paused = any_down;
  if (any_down)
    r->coll_left = dur;
  else {
    r->coll_end = sim_time_add(r->now, dur);
    sim_runner_schedule_gen(r, r->coll_end, SIM_EV_COLLECTIVE_DONE, -1, r->coll_gen);
  }
}

static void host_allreduce(void *ctx, int64_t bytes, const opt_overlap *ov, const uint8_t *mask,
                           int tag)
{
  start_collective(ctx, 0, bytes, ov, mask, tag);
}

static void host_allgather(void *ctx, int64_t bytes_each, const opt_overlap *ov,
                           const uint8_t *mask, int tag)
{
  start_collective(ctx, 1, bytes_each, ov, mask, tag);
}

/* Link indices in the flow model: worker w's upload 2w, download 2w + 1; the server's
 * upload 2K, download 2K + 1; with R regions, region r's local server's upload 2K + 2 + 2r,
 * download 2K + 3 + 2r, and its region's link to the global server: toward it
 * 2K + 2 + 2R + 2r, back 2K + 3 + 2R + 2r. */
int sim_runner_up_link(const sim_runner *r, int e)
{
  if (e >= 0)
    return 2 * e;
  return e == OPT_SERVER ? 2 * r->K : 2 * r->K + 2 + 2 * OPT_LPS_REGION(e);
}
int sim_runner_down_link(const sim_runner *r, int e) { return sim_runner_up_link(r, e) + 1; }

/* The links a transfer from `from` to `to` crosses: the sender's upload and the receiver's
 * download, except between a region's server and the global one, where it crosses the
 * region's link and the global server's. */
static void transfer_links(const sim_runner *r, int from, int to, int links[2])
{
  int K = r->K, R = r->net.R;
  if (from < OPT_SERVER && to == OPT_SERVER) {
    links[0] = 2 * K + 2 + 2 * R + 2 * OPT_LPS_REGION(from);
    links[1] = sim_runner_down_link(r, OPT_SERVER);
  } else if (from == OPT_SERVER && to < OPT_SERVER) {
    links[0] = sim_runner_up_link(r, OPT_SERVER);
    links[1] = 2 * K + 3 + 2 * R + 2 * OPT_LPS_REGION(to);
  } else {
    links[0] = sim_runner_up_link(r, from);
    links[1] = sim_runner_down_link(r, to);
  }
}

/* Whether endpoint e exists: a worker, the server, or (with regions) a region's server. */
static int endpoint_ok(const sim_runner *r, int e)
{
  return e < r->K && e >= OPT_SERVER - r->net.R;
}

/* A point-to-point transfer: after the latency its bytes flow over the sender's upload and
 * the receiver's download, sharing them max-min fairly with the other transfers. The worker
 * ends are transferring from now until it is delivered (their accounting above: any number of
 * transfers may overlap each other and the ends' compute). A policy that hears of failures
 * sends only to or from the server: a failure voids the transfers of the worker that fails
 * (sim_failures.c), which would leave a worker at the other end waiting for them.
 * Its first byte leaves at now + latency to
 * 1/1024 ns (the event that starts it is at the nanosecond before), so that its duration,
 * latency plus flow time, is rounded to the nanosecond once, when it completes. The latency
 * is the worker end's (a server's link adds none), or between two servers the region
 * link's. A worker's server is its region's (with regions) or the one server. */
static void host_send(void *ctx, int from, int to, int64_t bytes, int tag)
{
  sim_runner *r = ctx;
  WL_ASSERT(from != to && endpoint_ok(r, from) && endpoint_ok(r, to));
  WL_ASSERT(!r->hears_failures || from < 0 || to < 0);
  if (from >= 0)
    sim_runner_flow_begin(r, from, sim_interval_kinds[to < 0 ? IV_PUSH : IV_SEND]);
  if (to >= 0)
    sim_runner_flow_begin(r, to, sim_interval_kinds[from < 0 ? IV_PULL : IV_RECEIVE]);
  int worker_end = from >= 0 ? from : to; /* -1 or less: between two servers */
  double lat = from >= 0 && to >= 0 ? fmax(r->net.lat[from], r->net.lat[to])
               : worker_end >= 0    ? r->net.lat[worker_end]
                                    : r->net.region_lat;
  int64_t lat_ticks = llround(ldexp(lat * 1e9, SIM_FLOW_TICK_BITS)); /* lat <= 1000 s */
  sim_event ev = {.time = sim_time_add(r->now, lat_ticks >> SIM_FLOW_TICK_BITS),
                  .kind = SIM_EV_FLOW_START, .worker = to, .tag = tag, .src = from, .arg = bytes,
                  .gen = worker_end >= 0 ? r->w[worker_end].flow_gen : 0,
                  .x = (double)(lat_ticks & ((1 << SIM_FLOW_TICK_BITS) - 1))};
  enqueue(r, ev);
}

/* Schedule the earliest flow's completion; earlier schedules become stale. */
void sim_runner_schedule_flow_done(sim_runner *r)
{
  sim_time t = sim_flows_next(&r->flows);
  r->flow_generation++;
  if (t != SIM_TIME_MAX)
    sim_runner_schedule(r, t, SIM_EV_FLOW_DONE, -1, 0, 0, r->flow_generation);
}

void sim_runner_flow_start(sim_runner *r, const sim_event *ev)
{
  int worker_end = ev->src >= 0 ? ev->src : ev->worker;
  if (worker_end >= 0 && ev->gen != r->w[worker_end].flow_gen)
    return; /* its worker failed before the first byte left */
  int links[2];
  transfer_links(r, ev->src, ev->worker, links);
  sim_flows_add(&r->flows, r->now, links, 2, ev->arg, (int64_t)ev->x, ev->src, ev->worker,
                ev->tag);
  sim_runner_schedule_flow_done(r);
}

static void message_delivered(sim_runner *r, int from, int to, int64_t bytes)
{
  if (from >= 0) {
    r->w[from].bytes_sent += (double)bytes;
    sim_runner_flow_end(r, from);
  }
  if (to >= 0) {
    r->w[to].bytes_recv += (double)bytes;
    sim_runner_flow_end(r, to);
  }
  r->bytes_total += (double)bytes;
}

/* Every flow that completes now is removed, then delivered in the order the flows were
 * added. */
void sim_runner_flow_done(sim_runner *r, const sim_event *ev)
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
  sim_runner_schedule(r, sim_time_add(r->now, sim_time_from_s(delay_s)), SIM_EV_TIMER, -1, tag, 0, 0);
}

static int64_t host_clock_now(void *ctx) { return ((sim_runner *)ctx)->now; }

static int64_t host_clock_work_end(void *ctx, int w)
{
  const sim_runner *r = ctx;
  WL_ASSERT(w >= 0 && w < r->K);
  const sim_worker *wk = &r->w[w];
  return wk->job.steps > 0 && r->up[w] && !wk->job_paused ? wk->job_end : INT64_MAX;
}

static int64_t host_clock_span(void *ctx, double delay_s)
{
  (void)ctx;
  return sim_time_from_s(delay_s);
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
  WL_ASSERT(stream >= 0 && stream <= OPT_STREAM_ROUNDS(r->K));
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

void sim_runner_collective_finished(sim_runner *r)
{
  int n = 0;
  for (int w = 0; w < r->K; w++)
    n += r->coll_mask[w];
  double per_worker = sim_runner_collective_bytes(r, n);
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
  for (int g = 0; g < r->net.R; g++) {
    cap[sim_runner_up_link(r, OPT_LPS(g))] = cap[sim_runner_down_link(r, OPT_LPS(g))] =
      r->net.server;
    cap[2 * r->K + 2 + 2 * r->net.R + 2 * g] = cap[2 * r->K + 3 + 2 * r->net.R + 2 * g] =
      r->net.region;
  }
}

/* The flow model: worker links and the server's two hub links; its capacity unit fits the
 * largest capacity the run will see (now or from the trace). SYNCSIM_FLOWS=reference runs
 * the reference solver (the same results, slower). */
wl_status sim_runner_flows_init(sim_runner *r, char *err, size_t err_size)
{
  const char *solver = getenv("SYNCSIM_FLOWS");
  int reference = solver && strcmp(solver, "reference") == 0;
  if (solver && *solver && !reference && strcmp(solver, "incremental") != 0) {
    snprintf(err, err_size, "SYNCSIM_FLOWS: expected incremental or reference, got '%s'",
             solver);
    return WL_ECONFIG;
  }
  int R = r->net.R, n_links = sim_runner_flow_links(r->K, R);
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
  /* the hubs: the servers' links (the regions' as well while they fit the flow model's
   * hubs; flows through a link that is no hub are priced by the reference solver) */
  int hubs[2 * SIM_FLOW_REGION_HUBS + 2], n_hubs = 0;
  for (int e = OPT_SERVER; e >= OPT_SERVER - (R <= SIM_FLOW_REGION_HUBS ? R : 0); e--) {
    hubs[n_hubs++] = sim_runner_up_link(r, e);
    hubs[n_hubs++] = sim_runner_down_link(r, e);
  }
  long max_flows = sim_runner_max_flows(opt_policy_max_transfers(&r->cfg->policy, r->K), r->K, R);
  if (max_flows > INT32_MAX / 4) {
    free(cap);
    snprintf(err, err_size, "the policy may have %ld transfers in flight; at most %d can be "
             "simulated", max_flows, INT32_MAX / 4);
    return WL_ECONFIG;
  }
  wl_status st = sim_flows_init(&r->flows, n_links, cap, most, hubs, n_hubs, (int)max_flows);
  free(cap);
  if (st == WL_OK && reference)
    sim_flows_force_reference(&r->flows);
  return st;
}

/* The network trace changes links: flows move to the new capacities from now on. */
void sim_runner_net_change(sim_runner *r)
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
    sim_runner_schedule(r, sim_time_from_s(next), SIM_EV_NET_CHANGE, -1, 0, 0, 0);
}

void sim_runner_host_init(sim_runner *r, int64_t payload_bytes, double wire_params)
{
  r->host = (opt_host){
    .ctx = r,
    .K = r->K,
    .replicas = r->reps,
    .payload_bytes = payload_bytes,
    .wire_params = wire_params,
    .speeds = r->speeds,
    .shard_sizes = r->shard_sizes,
    .up = r->up,
    .regions = sim_network_regions(&r->cfg->cluster.network, &r->cfg->policy),
    .train = host_train,
    .grad = host_grad,
    .allreduce = host_allreduce,
    .allgather = host_allgather,
    .send = host_send,
    .timer = host_timer,
    .record_update = host_record_update,
    .clock_now = host_clock_now,
    .clock_work_end = host_clock_work_end,
    .clock_span = host_clock_span,
    .rng = host_rng,
    .speed_now = host_speed_now,
    .speed_max_now = host_speed_max_now,
    .parallel = sim_runner_host_parallel,
    .global_changed = host_global_changed,
  };
}
