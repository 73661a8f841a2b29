/* No allocation per training step, and none that fails crashes. The test binary is linked with --wrap=malloc (and calloc,
 * realloc), so every allocation that syncsim's own code makes goes through a counter here;
 * (allocations inside shared libraries such as OpenBLAS are their own business and are not
 * seen). The counter runs only inside the measured windows. */
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "opt_optim.h"
#include "opt_replica.h"
#include "sim_rng.h"
#include "test_util.h"
#include "wl_model.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

gsl_rng *__real_gsl_rng_alloc(const gsl_rng_type *t);
gsl_rng *__real_gsl_rng_clone(const gsl_rng *r);

static int counting;
static long allocations;
static long fail_at; /* > 0: the allocation counted as this one fails */

/* Count one allocation; whether it is to fail. */
static int injected(void)
{
  allocations += counting;
  return counting && allocations == fail_at;
}

void *__wrap_malloc(size_t n) { return injected() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t size) { return injected() ? NULL : __real_calloc(n, size); }

void *__wrap_realloc(void *p, size_t n) { return injected() ? NULL : __real_realloc(p, n); }

/* GSL allocates inside its library, where the wraps above do not reach: its allocators are
 * wrapped too. */
gsl_rng *__wrap_gsl_rng_alloc(const gsl_rng_type *t)
{
  return injected() ? NULL : __real_gsl_rng_alloc(t);
}

gsl_rng *__wrap_gsl_rng_clone(const gsl_rng *r) { return injected() ? NULL : __real_gsl_rng_clone(r); }

static long count_begin(void)
{
  allocations = 0;
  counting = 1;
  return 0;
}

static long count_end(void)
{
  counting = 0;
  return allocations;
}

Test(alloc, the_counter_sees_this_programs_allocations)
{
  opt_replica r;
  count_begin();
  wl_status st = opt_replica_init(&r, 100, 2); /* one calloc inside libsim's dependencies */
  long n = count_end();
  cr_assert_eq(st, WL_OK);
  opt_replica_free(&r);
  cr_assert_eq(n, 1);
}

Test(alloc, training_steps_of_every_model_allocate_nothing)
{
  const char *json[] = {
    "{\"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [32, 16]}},"
    " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"steps\": 1}}",
    "{\"workload\": {\"model\": {\"type\": \"softmax\"}},"
    " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"steps\": 1}}",
    /* the default corpus (Debian's fortunes, installed by setup.sh) */
    "{\"workload\": {\"model\": {\"type\": \"transformer\", \"width\": 16, \"heads\": 2,"
    " \"layers\": 1, \"context\": 8}, \"dataset\": {\"type\": \"text\"}, \"batch_size\": 4},"
    " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"steps\": 1}, \"eval\": {\"examples\": 64}}",
  };
  for (int k = 0; k < 3; k++) {
    scn_scenario s;
    load_json(json[k], &s);
    const wl_workload_config *wc = &s.base.workload;
    gsl_rng *r = sim_rng_create(1, SIM_RNG_DATASET, 0);
    wl_dataset *d;
    wl_model *m;
    wl_batch b;
    wl_sampler sp;
    char err[256];
    cr_assert_eq(wl_dataset_create(&wc->dataset, wl_model_seq_len(&wc->model), r, &d, err,
                                   sizeof err), WL_OK, "%s", err);
    cr_assert_eq(wl_model_create(&wc->model, d, wc->batch_size, &m), WL_OK);
    cr_assert_eq(wl_batch_init(&b, d, wc->batch_size), WL_OK);
    wl_shard shard = {d->n_train, malloc((size_t)d->n_train * sizeof(int32_t))};
    for (int i = 0; i < d->n_train; i++)
      shard.idx[i] = i;
    cr_assert_eq(wl_sampler_init(&sp, &shard, wc->batch_size, r), WL_OK);
    size_t n = wl_model_nparams(m);
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g), *st = calloc(2 * n, 4);
    opt_optim_config opt = {.opt = OPT_ADAMW, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999,
                            .eps = 1e-8};
    wl_model_init(m, p, r);
    double loss_sum = 0, acc;
    count_begin();
    for (long t = 1; t <= 300; t++) { /* several epochs of the sampler */
      wl_sampler_next(&sp, d, wc->batch_size, r, &b);
      loss_sum += wl_model_step(m, p, g, &b);
      opt_optim_step(&opt, p, g, st, t, opt.lr, n);
    }
    wl_model_evaluate(m, p, d, 1, s.base.eval.examples ? s.base.eval.examples : d->n_test, &b,
                      &loss_sum, &acc);
    long seen = count_end();
    cr_assert_eq(seen, 0, "model %d: %ld allocations in 300 steps", k, seen);
    free(p), free(g), free(st), free(shard.idx);
    wl_sampler_free(&sp);
    wl_batch_free(&b);
    wl_model_destroy(m);
    wl_dataset_destroy(d);
    gsl_rng_free(r);
  }
}

static long run_allocations(const char *json)
{
  scn_scenario s;
  load_json(json, &s);
  count_begin();
  mem_rec *r = run_policy(&s, 0, NULL);
  long n = count_end();
  cr_assert_eq(r->r.status, WL_OK, "%s", r->r.error);
  free(r);
  return n - 1; /* run_policy's own mem_rec */
}

Test(alloc, a_runs_allocations_do_not_depend_on_its_length)
{
#define RUN(steps, policy)                                                                    \
  "{\"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [16]}}, \"cluster\": {\"workers\": 3}," \
  " \"policies\": [" policy "], \"stop\": {\"steps\": " steps "}, \"eval\": {\"every_s\": 0.5}}"
  const char *policies[] = {"{\"type\": \"ddp\"}", "{\"type\": \"local_sgd\", \"H\": 4}"};
  for (int p = 0; p < 2; p++) {
    char a[512], b[512];
    snprintf(a, sizeof a, RUN("40", "%s"), policies[p]);
    snprintf(b, sizeof b, RUN("400", "%s"), policies[p]);
    long short_run = run_allocations(a), long_run = run_allocations(b);
    cr_assert_eq(short_run, long_run, "policy %d: %ld allocations in 40 steps, %ld in 400", p,
                 short_run, long_run);
    cr_assert_gt(short_run, 0, "setup allocates: the counter must see it");
  }
}

/* Every allocation a run makes, made to fail in turn: the run ends with status "out of
 * memory", through its recorder (so the CLI marks it failed and exits 1), never a crash or
 * an assertion; under AddressSanitizer, nothing leaks on any of those paths. */
static void fail_each_allocation(const char *what, const char *json)
{
  scn_scenario s;
  load_json(json, &s);
  sim_config cfg;
  scn_run_config(&s, 0, &cfg);
  mem_rec *r = calloc(1, sizeof *r);
  cr_assert_not_null(r);
  sim_recorder rec = {.ctx = r, .begin = mem_begin, .metric = mem_metric, .worker = mem_worker,
                      .update = mem_update, .interval = mem_interval, .outage = mem_outage,
                      .end = mem_end};
  long k, total = -1;
  for (k = 1;; k++) {
    memset(r, 0, sizeof *r);
    fail_at = k;
    count_begin();
    sim_run(&cfg, &rec, NULL, &r->r);
    long n = count_end();
    fail_at = 0;
    cr_assert_eq(r->began, 1, "%s: allocation %ld failed: the run did not begin", what, k);
    cr_assert_eq(r->ended, 1, "%s: allocation %ld failed: the run was not ended", what, k);
    if (n < k) { /* every allocation succeeded: the run must too */
      cr_assert_eq(r->r.status, WL_OK, "%s: %s", what, r->r.error);
      total = n;
      break;
    }
    cr_assert_eq(r->r.status, WL_ENOMEM, "%s: allocation %ld of the run failed: status %s (%s)",
                 what, k, wl_strerror(r->r.status), r->r.error);
    cr_assert(strstr(r->r.error, "memory"), "%s: allocation %ld: error '%s'", what, k,
              r->r.error);
  }
  cr_log_info("%s: each of %ld allocations failed in turn", what, total);
  cr_assert_gt(total, 10);
  free(r);
}

Test(alloc, any_allocation_that_fails_ends_the_run_failed_and_clean, .timeout = 600)
{
  char speed[64], net[64], json[1400];
  snprintf(speed, sizeof speed, "/tmp/syncsim_alloc_speed_%d.csv", (int)getpid());
  snprintf(net, sizeof net, "/tmp/syncsim_alloc_net_%d.csv", (int)getpid());
  FILE *f = fopen(speed, "w");
  cr_assert_not_null(f);
  fputs("time_s,worker,speed\n0.2,*,0.5\n0.4,1,2\n", f);
  fclose(f);
  cr_assert_not_null(f = fopen(net, "w"));
  fputs("0.3,*,0.5,-\n0.6,server,2,0.002\n", f);
  fclose(f);
  snprintf(json, sizeof json,
    "{\"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [8]}, \"dataset\":"
    " {\"train_examples\": 64, \"test_examples\": 16, \"dim\": 4, \"classes\": 3},"
    " \"batch_size\": 4}, \"cluster\": {\"workers\": 3, \"compute\": {\"step_time_s\": 0.1,"
    " \"jitter\": {\"dist\": \"uniform\"}, \"stragglers\": {\"rate_per_s\": 1},"
    " \"trace\": \"%s\"}, \"network\": {\"trace\": \"%s\"},"
    " \"failures\": {\"at_s\": [0.25], \"workers\": [1], \"repair_s\": 0.2, \"sync\": \"drop\"}},"
    " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"sim_time_s\": 1},"
    " \"eval\": {\"every_s\": 0.5}, \"record\": {\"timeline\": 10}}", speed, net);
  fail_each_allocation("mlp, ddp, stragglers, jitter, speed and network traces, a failure", json);
  unlink(speed);
  unlink(net);
  fail_each_allocation("asynchronous with random failures (snapshots)",
    "{\"workload\": {\"model\": {\"type\": \"softmax\"}, \"dataset\":"
    " {\"train_examples\": 64, \"test_examples\": 16, \"dim\": 4, \"classes\": 3},"
    " \"batch_size\": 4}, \"cluster\": {\"workers\": 3, \"compute\": {\"step_time_s\": 0.1},"
    " \"network\": {\"server_gbps\": 1}, \"failures\": {\"mttf_s\": 0.5, \"repair_s\": 0.2}},"
    " \"policies\": [{\"type\": \"async_local_sgd\", \"H\": 2, \"dylu\": true}],"
    " \"stop\": {\"sim_time_s\": 2}, \"eval\": {\"every_s\": 0.5}}");
  fail_each_allocation("palsgd, coins per worker",
    "{\"workload\": {\"model\": {\"type\": \"softmax\"}, \"dataset\":"
    " {\"train_examples\": 64, \"test_examples\": 16, \"dim\": 4, \"classes\": 3},"
    " \"batch_size\": 4}, \"cluster\": {\"workers\": 3, \"compute\": {\"step_time_s\": 0.1}},"
    " \"policies\": [{\"type\": \"palsgd\", \"H\": 4, \"warmup_steps\": 2, \"p\": 0.5,"
    " \"coin\": \"per_worker\"}], \"stop\": {\"steps\": 12}, \"eval\": {\"every_s\": 0.5}}");
  fail_each_allocation("diloco on text",
    "{\"workload\": {\"model\": {\"type\": \"transformer\", \"width\": 8, \"heads\": 2,"
    " \"layers\": 1, \"context\": 8}, \"dataset\": {\"type\": \"text\"}, \"batch_size\": 2},"
    " \"cluster\": {\"workers\": 2, \"compute\": {\"step_time_s\": 0.1}},"
    " \"policies\": [{\"type\": \"diloco\", \"H\": 2}], \"stop\": {\"steps\": 4},"
    " \"eval\": {\"every_s\": 0.5, \"examples\": 8}}");
  fail_each_allocation("timing only, local sgd, hierarchical network",
    "{\"workload\": {\"model\": {\"type\": \"none\"}}, \"cluster\": {\"workers\": 4,"
    " \"network\": {\"collective\": \"hierarchical\", \"workers_per_node\": 2}},"
    " \"policies\": [{\"type\": \"local_sgd\", \"H\": 2}], \"stop\": {\"steps\": 8}}");
}
