/* sim_eval — evaluating the global model (on every idle workspace at once, in parts added
 * in order) and recording it with the training loss since the last record. Part of the
 * runner (sim_runner_impl.h). */
#include "sim_runner.h"

#include <math.h>
#include <string.h>

#include "sim_runner_impl.h"

static void fill_metric(const sim_runner *r, sim_metric *m, sim_metric_kind kind)
{
  m->kind = kind;
  m->sim_time_s = sim_time_to_s(r->now);
  m->step = r->policy.type->step(r->policy.state);
  m->examples = r->grad_steps * r->B;
  m->bytes = r->bytes_total;
}

/* An evaluation's parts over lanes: lane l computes parts l, l + lanes, ... */
typedef struct eval_task {
  sim_runner *r;
  const float *params;
  int lanes;
} eval_task;

static void eval_lane(void *arg, int lane)
{
  const eval_task *e = arg;
  sim_runner *r = e->r;
  wl_model *m = e->lanes > 1 ? r->models[lane] : r->eval_model;
  wl_batch *b = e->lanes > 1 ? &r->batches[lane] : &r->eval_batch;
  for (int i = lane; i < r->eval_n_parts; i += e->lanes)
    wl_model_eval_part(m, e->params, r->data, r->cfg->eval.on == SIM_EVAL_TRAIN ? 0 : 1,
                       r->eval_n, i, b, &r->eval_parts[i]);
}

/* Loss and accuracy of params. With no job in flight the job threads' workspaces are idle,
 * and the parts run on all of them at once; otherwise in the event loop's own workspace.
 * The parts are added in order either way: the same bits. */
static void eval_params(sim_runner *r, const float *params, double *loss, double *accuracy)
{
  /* Parameters with the same bits as the last evaluated ones have the same loss (a policy's
   * global model changes only at synchronizations, so time-driven evaluations between them
   * often see the model already evaluated): reuse it. */
  size_t bytes = r->reps[0].n * sizeof(float);
  if (r->eval_memo_ok && memcmp(params, r->eval_memo, bytes) == 0) {
    *loss = r->memo_loss;
    *accuracy = r->memo_acc;
    return;
  }
  eval_task e = {r, params, r->pool && r->jobs_in_flight == 0 ? r->n_threads : 1};
  if (e.lanes > r->eval_n_parts)
    e.lanes = r->eval_n_parts;
  sim_runner_host_parallel(r, e.lanes, eval_lane, &e);
  wl_model_eval_total(r->eval_parts, r->eval_n_parts, loss, accuracy);
  memcpy(r->eval_memo, params, bytes);
  r->memo_loss = *loss;
  r->memo_acc = *accuracy;
  r->eval_memo_ok = 1;
}

/* Evaluate the global model now and record it (and the training loss since the last
 * record). Sets reached_target and diverged as the loss says. */
wl_status sim_runner_evaluate(sim_runner *r)
{
  sim_metric m;
  memset(&m, 0, sizeof m); /* (its padding too: a record is the same bytes run to run) */
  m.loss = NAN;
  m.accuracy = NAN;
  const float *global = r->policy.type->global(r->policy.state);
  if (!r->timing_only)
    eval_params(r, global, &m.loss, &m.accuracy);
  fill_metric(r, &m, SIM_METRIC_EVAL);
  r->last_eval = r->now;
  r->changed = 0;
  r->last_loss = m.loss;
  r->last_acc = m.accuracy;
  if (!r->timing_only && !isfinite(m.loss))
    r->diverged = 1;
  if (!isnan(r->cfg->stop.target_loss) && m.loss <= r->cfg->stop.target_loss)
    r->reached_target = 1;
  wl_status st = r->rec->metric(r->rec->ctx, &m);
  if (st != WL_OK || r->train_loss_n == 0)
    return st;
  fill_metric(r, &m, SIM_METRIC_TRAIN);
  m.loss = r->train_loss_sum / (double)r->train_loss_n;
  m.accuracy = NAN;
  r->train_loss_sum = 0;
  r->train_loss_n = 0;
  return r->rec->metric(r->rec->ctx, &m);
}
