/* sim_runner — a run: its set-up (dataset, replicas, workers, network, policy), the event loop
 * that dispatches simulated events in time order, and its end (the workers' accounting, the
 * final evaluation). What the events do lives in sim_host.c (the policy's commands, jobs,
 * collectives, flows), sim_failures.c, sim_eval.c and sim_memory.c. */
#include "sim_runner.h"

#include <math.h>
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
    int on_train = cfg->eval.on == SIM_EVAL_TRAIN;
    int set_n = on_train ? r->data->n_train : r->data->n_test;
    r->eval_n = cfg->eval.examples ? cfg->eval.examples : set_n;
    if (r->eval_n > set_n) {
      snprintf(err, err_size, "eval.examples: expected at most the %s set's %d examples, got %d",
               on_train ? "training" : "held-out", set_n, r->eval_n);
      return WL_ECONFIG;
    }
  }

  r->shards = calloc((size_t)r->K, sizeof *r->shards);
  r->w = calloc((size_t)r->K, sizeof *r->w);
  r->reps = calloc((size_t)r->K, sizeof *r->reps);
  r->speeds = calloc((size_t)r->K, sizeof *r->speeds);
  r->shard_sizes = calloc((size_t)r->K, sizeof *r->shard_sizes);
  r->policy_rng = calloc((size_t)OPT_STREAM_ROUNDS(r->K) + 1, sizeof *r->policy_rng);
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
    if (cfg->policy.shards == OPT_SHARDS_LEAST_VISITED) { /* a task's batches: H at most */
      tr->task_cap = sim_task_examples(cfg);
      tr->task_pick = malloc((size_t)tr->task_cap * sizeof(int32_t));
      tr->task_offset = malloc((size_t)tr->task_cap * sizeof(int32_t));
      if (!tr->task_pick || !tr->task_offset)
        return WL_ENOMEM;
    }
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
  sim_runner_host_init(r, (int64_t)llround(wire_params * cfg->cluster.comm.bytes_per_param /
                       cfg->cluster.comm.compression), wire_params);

  if ((st = sim_queue_init(&r->q, (size_t)r->K * 2 + 16)))
    return st;
  if (r->n_threads > 1 && (st = sim_pool_create(r->n_threads - 1, r->K, sim_runner_pool_job, r, &r->pool)))
    return st;
  if ((st = sim_net_init(&r->net, &cfg->cluster.network, r->K, err, err_size)))
    return st;
  r->net.R = r->host.regions;
  if ((st = sim_runner_flows_init(r, err, err_size)))
    return st;
  if (isfinite(sim_net_next_change(&r->net)))
    sim_runner_schedule(r, sim_time_from_s(sim_net_next_change(&r->net)), SIM_EV_NET_CHANGE, -1, 0, 0, 0);
  if ((st = sim_runner_failures_init(r)))
    return st;
  const sim_failure_config *fc = &cfg->cluster.failures;
  if (r->hears_failures && !opt_policy_type_of(&cfg->policy)->worker_down) {
    snprintf(err, err_size, "cluster.failures.sync: drop is not supported by policy %s (it "
             "waits for a down worker: use wait)", opt_policy_label(&cfg->policy));
    return WL_ECONFIG;
  }
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
    free(tr->task_pick);
    free(tr->task_offset);
    gsl_rng_free(tr->snap_rng);
  }
  free(r->tr);
  for (int w = 0; r->reps && w < r->K; w++)
    opt_replica_free(&r->reps[w]);
  for (int w = 0; r->shards && w < r->K; w++)
    wl_shard_free(&r->shards[w]);
  for (int i = 0; r->policy_rng && i <= OPT_STREAM_ROUNDS(r->K); i++)
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
    sim_runner_finish_job(r, ev->worker);
    sim_runner_busy_end_at(r, ev->worker, r->now);
    pt->work_done(r->policy.state, ev->worker);
    break;
  case SIM_EV_COLLECTIVE_DONE:
    if (ev->gen != r->coll_gen)
      break; /* paused by a failure */
    sim_runner_collective_finished(r);
    pt->collective_done(r->policy.state, r->coll_tag);
    break;
  case SIM_EV_DOWN:
    sim_runner_worker_down(r, ev->worker);
    break;
  case SIM_EV_UP:
    sim_runner_worker_up(r, ev->worker);
    break;
  case SIM_EV_FLOW_START:
    sim_runner_flow_start(r, ev);
    break;
  case SIM_EV_FLOW_DONE:
    sim_runner_flow_done(r, ev);
    break;
  case SIM_EV_TIMER:
    pt->timer(r->policy.state, ev->tag);
    break;
  case SIM_EV_NET_CHANGE:
    sim_runner_net_change(r);
    break;
  case SIM_EV_EVAL: {
    r->global_changed = 0;
    wl_status st = sim_runner_evaluate(r);
    if (st != WL_OK && r->fail == WL_OK)
      r->fail = st;
    sim_time next = sim_time_add(ev->time, sim_time_period_from_s(r->cfg->eval.every_s));
    if (next <= r->t_stop)
      sim_runner_schedule(r, next, SIM_EV_EVAL, -1, 0, 0, 0);
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
    sim_runner_flows_drop(r, w); /* transfers cut by the end of the run */
    sim_time compute = wk->compute_ns, comm = wk->comm_ns, down = wk->down_ns,
             blocked = wk->blocked_ns;
    sim_worker_stats s;
    memset(&s, 0, sizeof s); /* (its padding too: a record is the same bytes run to run) */
    s.worker = w;
    s.speed = r->cluster.speed[w];
    s.grad_steps = wk->grad_steps;
    s.compute_s = sim_time_to_s(compute);
    s.comm_s = sim_time_to_s(comm);
    s.idle_s = sim_time_to_s(r->now - compute - comm - down - blocked);
    s.blocked_s = sim_time_to_s(blocked);
    s.bytes_sent = wk->bytes_sent;
    s.bytes_recv = wk->bytes_recv;
    s.mean_staleness = wk->stale_n ? wk->stale_sum / (double)wk->stale_n : NAN;
    s.down_s = sim_time_to_s(down);
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
      sim_runner_schedule(&r, sim_time_period_from_s(cfg->eval.every_s), SIM_EV_EVAL, -1, 0, 0, 0);
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
    out->baseline_loss = cfg->eval.on == SIM_EVAL_TRAIN ? r.data->baseline_loss_train
                                                         : r.data->baseline_loss;
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
