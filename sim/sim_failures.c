/* sim_failures — workers that go down and come back: outages, lost work undone, collectives
 * that wait for or drop a failed worker, and the failure schedule. Part of the runner
 * (sim_runner_impl.h). */
#include "sim_runner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wl_rand.h"

#include "sim_rng.h"
#include "sim_runner_impl.h"

static double repair_time(const sim_runner *r, gsl_rng *g)
{
  const sim_failure_config *f = &r->cfg->cluster.failures;
  return f->repair_dist == SIM_DURATION_EXPONENTIAL ? wl_ran_exponential(g, f->repair_s)
                                                    : f->repair_s;
}

void sim_runner_record_outage(sim_runner *r, int w, sim_time end)
{
  sim_outage o = {w, sim_time_to_s(r->w[w].down_since), sim_time_to_s(end)};
  wl_status st = r->rec->outage ? r->rec->outage(r->rec->ctx, &o) : WL_OK;
  if (st != WL_OK && r->fail == WL_OK)
    r->fail = st;
}

/* Worker w's transfers in flight are lost: those still in their latency are voided by the
 * generation, those flowing are dropped. */
static void abort_transfers(sim_runner *r, int w)
{
  r->w[w].flow_gen++;
  sim_runner_flows_drop(r, w);
  if (sim_flows_drop_link(&r->flows, r->now, sim_runner_up_link(r, w)) +
          sim_flows_drop_link(&r->flows, r->now, sim_runner_down_link(r, w)) > 0)
    sim_runner_schedule_flow_done(r);
}

static int in_collective(const sim_runner *r, int w) { return r->coll_active && r->coll_mask[w]; }

/* The participants of the collective that are up and doing `from` switch to `to` (blocked
 * while it is paused, communicating when it resumes). */
static void switch_participants(sim_runner *r, int from, int to)
{
  for (int k = 0; k < r->K; k++)
    if (r->coll_mask[k] && r->up[k] && r->w[k].busy_kind == from) {
      sim_runner_busy_end_at(r, k, r->now);
      sim_runner_busy_begin(r, k, to, r->now);
    }
}

/* Worker w's job is lost to a failure: drop it if no thread has started it, else wait for
 * its math; then undo it (its completion is void, and it counts no step). */
static void lose_job(sim_runner *r, int w)
{
  sim_worker *wk = &r->w[w];
  wk->job_gen++;
  if (r->pool && wk->job.steps > 0) {
    if (!sim_pool_cancel(r->pool, w))
      sim_pool_wait(r->pool, w, r->n_threads - 1);
    r->jobs_in_flight--;
  }
  if (r->snapshots)
    sim_runner_restore_worker(r, w);
  wk->job.steps = 0;
}

/* Worker w fails during the collective, and the policy goes on without it (failures.sync
 * drop): it leaves, its contribution is excluded (the policy drops it from its round), and
 * the survivors run the collective again among themselves from now. */
static void leave_collective(sim_runner *r, int w)
{
  r->coll_mask[w] = 0;
  r->coll_gen++; /* the scheduled completion is void */
  int n = 0;
  for (int k = 0; k < r->K; k++)
    n += r->coll_mask[k];
  if (n == 0) {
    r->coll_active = 0;
    return;
  }
  r->coll_end = sim_time_add(r->now, sim_time_from_s(sim_runner_collective_s(r, r->coll_mask)));
  sim_runner_schedule_gen(r, r->coll_end, SIM_EV_COLLECTIVE_DONE, -1, r->coll_gen);
}

/* A worker fails. A policy that hears of failures loses what w had in flight (its job, its
 * transfers, its place in a collective); otherwise w's job or collective pauses until it is
 * back, and the collective's other participants are blocked meanwhile, while its
 * point-to-point transfers go on (a simplification: they are neither paused nor lost; the
 * worker's time down takes precedence over them in its accounting). */
void sim_runner_worker_down(sim_runner *r, int w)
{
  sim_worker *wk = &r->w[w];
  if (!r->up[w])
    return;
  r->up[w] = 0;
  wk->down_since = r->now;
  int kind = wk->busy_kind;
  if (kind != BUSY_NONE)
    sim_runner_busy_end_at(r, w, r->now);
  if (r->hears_failures) {
    if (kind == BUSY_COMPUTE)
      lose_job(r, w);
    else if (in_collective(r, w))
      leave_collective(r, w);
    if (wk->flows_open > 0)
      abort_transfers(r, w);
  } else if (kind == BUSY_COMPUTE) {
    wk->job_gen++;
    wk->job_left = wk->job_end - r->now;
    wk->job_paused = 1;
    wk->resume_kind = BUSY_COMPUTE;
  } else if (in_collective(r, w)) {
    wk->resume_kind = BUSY_COMM;
    if (!r->coll_paused) {
      r->coll_paused = 1;
      r->coll_left = r->coll_end - r->now;
      r->coll_gen++;
      switch_participants(r, BUSY_COMM, BUSY_BLOCKED);
    }
  }
  sim_runner_busy_begin(r, w, BUSY_DOWN, r->now);
  sim_time repair = sim_time_period_from_s(repair_time(r, wk->fail_rng));
  sim_runner_schedule_gen(r, sim_time_add(r->now, repair), SIM_EV_UP, w, 0);
  if (r->hears_failures)
    r->policy.type->worker_down(r->policy.state, w);
}

void sim_runner_worker_up(sim_runner *r, int w)
{
  sim_worker *wk = &r->w[w];
  sim_runner_busy_end_at(r, w, r->now);
  sim_runner_record_outage(r, w, r->now);
  r->up[w] = 1;
  if (wk->resume_kind == BUSY_COMPUTE) {
    wk->job_paused = 0;
    wk->job_gen++;
    wk->job_end = sim_time_add(r->now, wk->job_left);
    sim_runner_busy_begin(r, w, BUSY_COMPUTE, r->now);
    sim_runner_schedule_gen(r, wk->job_end, SIM_EV_WORK_DONE, w, wk->job_gen);
  } else if (wk->resume_kind == BUSY_COMM) {
    int all_up = 1;
    for (int k = 0; k < r->K; k++)
      all_up &= !r->coll_mask[k] || r->up[k];
    if (r->coll_paused && all_up) {
      r->coll_paused = 0;
      r->coll_gen++;
      r->coll_end = sim_time_add(r->now, r->coll_left);
      sim_runner_schedule_gen(r, r->coll_end, SIM_EV_COLLECTIVE_DONE, -1, r->coll_gen);
      switch_participants(r, BUSY_BLOCKED, BUSY_COMM);
    }
    sim_runner_busy_begin(r, w, r->coll_paused ? BUSY_BLOCKED : BUSY_COMM, r->now);
  }
  wk->resume_kind = BUSY_NONE;
  const sim_failure_config *f = &r->cfg->cluster.failures;
  if (!isnan(f->mttf_s)) {
    sim_time ttf = sim_time_period_from_s(wl_ran_exponential(wk->fail_rng, f->mttf_s));
    sim_runner_schedule_gen(r, sim_time_add(r->now, ttf), SIM_EV_DOWN, w, 0);
  }
  if (r->hears_failures)
    r->policy.type->worker_up(r->policy.state, w);
}

/* The failures a run starts with: the scheduled ones and each worker's first random one. */
wl_status sim_runner_failures_init(sim_runner *r)
{
  const sim_failure_config *f = &r->cfg->cluster.failures;
  r->hears_failures = sim_hears_failures(r->cfg);
  int failures = sim_failures_on(f);
  for (int w = 0; w < r->K; w++) {
    r->up[w] = 1;
    if (failures && !(r->w[w].fail_rng = sim_rng_create((uint64_t)r->cfg->seed, SIM_RNG_FAILURE,
                                                        (uint32_t)w)))
      return WL_ENOMEM;
  }
  for (int i = 0; i < f->n_at; i++)
    sim_runner_schedule_gen(r, sim_time_from_s(f->at_s[i]), SIM_EV_DOWN, f->workers[i], 0);
  for (int w = 0; w < r->K && !isnan(f->mttf_s); w++) {
    sim_time ttf = sim_time_period_from_s(wl_ran_exponential(r->w[w].fail_rng, f->mttf_s));
    sim_runner_schedule_gen(r, ttf, SIM_EV_DOWN, w, 0);
  }
  return WL_OK;
}
