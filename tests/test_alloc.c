/* No allocation per training step. The test binary is linked with --wrap=malloc (and calloc,
 * realloc), so every allocation that syncsim's own code makes goes through a counter here;
 * (allocations inside shared libraries such as OpenBLAS are their own business and are not
 * seen). The counter runs only inside the measured windows. */
#include <gsl/gsl_rng.h>

#include "opt_optim.h"
#include "opt_replica.h"
#include "sim_rng.h"
#include "test_util.h"
#include "wl_model.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

static int counting;
static long allocations;

void *__wrap_malloc(size_t n)
{
  allocations += counting;
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
  allocations += counting;
  return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
  allocations += counting;
  return __real_realloc(p, n);
}

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
    wl_model_evaluate(m, p, d, s.base.eval.examples ? s.base.eval.examples : d->n_test, &b,
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
