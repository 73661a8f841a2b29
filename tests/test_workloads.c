/* workloads/: synthetic data, partitions, batch sampling, the softmax model's gradient. */
#include <gsl/gsl_rng.h>

#include "sim_rng.h"
#include "test_util.h"
#include "wl_data.h"
#include "wl_model.h"

static wl_dataset_config small_data(void)
{
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.train_examples = 1000;
  c.test_examples = 200;
  c.dim = 6;
  c.classes = 4;
  return c;
}

Test(synthetic, the_same_seed_gives_the_same_data_and_another_seed_other_data)
{
  wl_dataset_config c = small_data();
  wl_dataset *a, *b, *d;
  gsl_rng *ra = sim_rng_create(5, SIM_RNG_DATASET, 0), *rb = sim_rng_create(5, SIM_RNG_DATASET, 0),
          *rd = sim_rng_create(6, SIM_RNG_DATASET, 0);
  cr_assert_eq(wl_dataset_create(&c, ra, &a), WL_OK);
  cr_assert_eq(wl_dataset_create(&c, rb, &b), WL_OK);
  cr_assert_eq(wl_dataset_create(&c, rd, &d), WL_OK);
  cr_assert_eq(memcmp(a->x_train, b->x_train, 1000 * 6 * sizeof(float)), 0);
  cr_assert_eq(memcmp(a->y_test, b->y_test, 200 * sizeof(int32_t)), 0);
  cr_assert_neq(memcmp(a->x_train, d->x_train, 1000 * 6 * sizeof(float)), 0);
  /* labels in range, every class present */
  int seen[4] = {0};
  for (int i = 0; i < 1000; i++) {
    cr_assert(a->y_train[i] >= 0 && a->y_train[i] < 4);
    seen[a->y_train[i]]++;
  }
  for (int k = 0; k < 4; k++)
    cr_assert_gt(seen[k], 150);
  wl_dataset_destroy(a);
  wl_dataset_destroy(b);
  wl_dataset_destroy(d);
  gsl_rng_free(ra);
  gsl_rng_free(rb);
  gsl_rng_free(rd);
}

Test(partition, every_example_lands_in_exactly_one_shard)
{
  wl_dataset_config c = small_data();
  wl_dataset *d;
  gsl_rng *r = sim_rng_create(1, SIM_RNG_DATASET, 0);
  cr_assert_eq(wl_dataset_create(&c, r, &d), WL_OK);
  wl_partition_config pc = {WL_PART_IID};
  wl_shard shards[7];
  char err[128];
  cr_assert_eq(wl_partition(&pc, d, 7, r, shards, err, sizeof err), WL_OK);
  int count[1000] = {0}, total = 0;
  for (int k = 0; k < 7; k++) {
    cr_assert(shards[k].n == 142 || shards[k].n == 143, "shard %d has %d", k, shards[k].n);
    for (int i = 0; i < shards[k].n; i++)
      count[shards[k].idx[i]]++;
    total += shards[k].n;
    wl_shard_free(&shards[k]);
  }
  cr_assert_eq(total, 1000);
  for (int i = 0; i < 1000; i++)
    cr_assert_eq(count[i], 1, "example %d is in %d shards", i, count[i]);
  /* more workers than examples is a clear error */
  d->n_train = 3;
  cr_assert_eq(wl_partition(&pc, d, 4, r, shards, err, sizeof err), WL_ECONFIG);
  cr_assert(strstr(err, "fewer than the 4 workers"), "%s", err);
  wl_dataset_destroy(d);
  gsl_rng_free(r);
}

Test(sampler, each_epoch_visits_every_example_of_the_shard_once)
{
  wl_dataset_config c = small_data();
  wl_dataset *d;
  gsl_rng *r = sim_rng_create(1, SIM_RNG_DATASET, 0);
  cr_assert_eq(wl_dataset_create(&c, r, &d), WL_OK);
  int32_t idx[10] = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38};
  wl_shard shard = {10, idx};
  wl_sampler s;
  cr_assert_eq(wl_sampler_init(&s, &shard, r), WL_OK);
  float x[5 * 6];
  int32_t y[5];
  int32_t first_epoch[10], second_epoch[10];
  for (int b = 0; b < 4; b++) { /* 20 examples = two epochs of 10 */
    wl_sampler_next(&s, d, 5, r, x, y);
    for (int i = 0; i < 5; i++) {
      /* find which example this is by its label and features */
      int found = -1;
      for (int j = 0; j < 10; j++)
        if (memcmp(x + i * 6, d->x_train + idx[j] * 6, 6 * sizeof(float)) == 0)
          found = idx[j];
      cr_assert_geq(found, 0);
      cr_assert_eq(y[i], d->y_train[found]);
      (b < 2 ? first_epoch : second_epoch)[(b % 2) * 5 + i] = found;
    }
  }
  for (int j = 0; j < 10; j++) {
    int in1 = 0, in2 = 0;
    for (int i = 0; i < 10; i++) {
      in1 += first_epoch[i] == idx[j];
      in2 += second_epoch[i] == idx[j];
    }
    cr_assert_eq(in1, 1);
    cr_assert_eq(in2, 1);
  }
  cr_assert_eq(s.epoch, 1);
  wl_sampler_free(&s);
  wl_dataset_destroy(d);
  gsl_rng_free(r);
}

/* Central differences of the float model's mean loss against its analytic gradient. The
 * loss is accumulated in double, so with h = 1e-2 the truncation and rounding errors stay
 * well below the threshold. (Double-precision checks of every kernel come with the kernel
 * library.) */
#define GRAD_CHECK_REL 2e-3

Test(softmax, the_gradient_matches_central_differences)
{
  wl_dataset_config c = small_data();
  wl_dataset *d;
  gsl_rng *r = sim_rng_create(2, SIM_RNG_DATASET, 0);
  cr_assert_eq(wl_dataset_create(&c, r, &d), WL_OK);
  wl_model_config mc = {WL_MODEL_SOFTMAX};
  wl_model *m;
  cr_assert_eq(wl_model_create(&mc, 6, 4, 8, &m), WL_OK);
  size_t n = wl_model_nparams(m);
  cr_assert_eq(n, 6 * 4 + 4);
  float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g), *scratch = malloc(n * sizeof *g);
  wl_model_init(m, p, r);
  for (size_t i = 24; i < n; i++)
    p[i] = 0.1f * (float)i - 2.6f; /* non-zero biases */
  wl_model_step(m, p, g, d->x_train, d->y_train, 8);
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    const float h = 1e-2f;
    float keep = p[i];
    p[i] = keep + h;
    double up = wl_model_step(m, p, scratch, d->x_train, d->y_train, 8);
    p[i] = keep - h;
    double down = wl_model_step(m, p, scratch, d->x_train, d->y_train, 8);
    p[i] = keep;
    double fd = (up - down) / ((double)(keep + h) - (double)(keep - h));
    double rel = fabs(fd - g[i]) / fmax(fabs(fd) + fabs(g[i]), 1e-3);
    worst = fmax(worst, rel);
    cr_expect_lt(rel, GRAD_CHECK_REL, "param %zu: analytic %.7g, numeric %.7g", i, g[i], fd);
  }
  cr_log_info("softmax gradient check: worst relative error %.3g", worst);
  free(p);
  free(g);
  free(scratch);
  wl_model_destroy(m);
  wl_dataset_destroy(d);
  gsl_rng_free(r);
}

Test(softmax, eval_of_uniform_logits_is_log_classes)
{
  wl_model_config mc = {WL_MODEL_SOFTMAX};
  wl_model *m;
  cr_assert_eq(wl_model_create(&mc, 3, 5, 2, &m), WL_OK);
  float p[3 * 5 + 5] = {0};
  float x[7 * 3];
  int32_t y[7];
  for (int i = 0; i < 21; i++)
    x[i] = (float)i * 0.37f - 3.0f;
  for (int i = 0; i < 7; i++)
    y[i] = i % 5;
  double loss, acc;
  wl_model_eval(m, p, x, y, 7, &loss, &acc); /* 7 examples in chunks of 2 */
  cr_assert_float_eq(loss, log(5.0), 1e-6);
  /* ties go to class 0: examples 0 and 5 are right */
  cr_assert_float_eq(acc, 2.0 / 7.0, 1e-12);
  wl_model_destroy(m);
}
