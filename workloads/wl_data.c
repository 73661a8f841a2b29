#include "wl_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#define DS_OFF(f) offsetof(wl_dataset_config, f)

static const wl_param synthetic_params[] = {
  {.key = "train_examples", .kind = WL_P_INT, .offset = DS_OFF(train_examples), .def = 8192,
   .min = 1, .max = 1 << 26, .unit = "examples", .doc = "size of the training set"},
  {.key = "test_examples", .kind = WL_P_INT, .offset = DS_OFF(test_examples), .def = 2048,
   .min = 1, .max = 1 << 26, .unit = "examples", .doc = "size of the held-out set"},
  {.key = "dim", .kind = WL_P_INT, .offset = DS_OFF(dim), .def = 32, .min = 1, .max = 65536,
   .unit = "", .doc = "input dimension"},
  {.key = "classes", .kind = WL_P_INT, .offset = DS_OFF(classes), .def = 10, .min = 2,
   .max = 65536, .unit = "", .doc = "number of classes"},
  {.key = "separation", .kind = WL_P_DOUBLE, .offset = DS_OFF(separation), .def = 0.35,
   .min = 0, .max = 100, .unit = "",
   .doc = "std. dev. of each class mean's coordinates; within-class noise has std. dev. 1"},
  {.key = "label_noise", .kind = WL_P_DOUBLE, .offset = DS_OFF(label_noise), .def = 0.0,
   .min = 0, .max = 1, .unit = "fraction",
   .doc = "fraction of labels replaced by a uniformly drawn class"},
  {0}};

static const wl_variant synthetic_variant = {
  "synthetic", "Gaussian-mixture classification generated from the run seed", synthetic_params};
static const wl_variant *const dataset_variants[] = {&synthetic_variant, NULL};

const wl_param wl_dataset_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = DS_OFF(type), .def = WL_DATA_SYNTHETIC,
   .variants = dataset_variants, .unit = "", .doc = "dataset kind"},
  {0}};

static const wl_variant iid_variant = {"iid", "a uniform random split into K equal shards",
                                       NULL};
static const wl_variant *const partition_variants[] = {&iid_variant, NULL};

const wl_param wl_partition_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = offsetof(wl_partition_config, type),
   .def = WL_PART_IID, .variants = partition_variants, .unit = "",
   .doc = "how the training set is split across workers"},
  {0}};

void wl_fill_gaussian(float *x, size_t n, double sd, gsl_rng *r)
{
  for (size_t i = 0; i < n; i++)
    x[i] = (float)gsl_ran_gaussian_ziggurat(r, sd);
}

void wl_dataset_destroy(wl_dataset *d)
{
  if (!d)
    return;
  free(d->x_train);
  free(d->y_train);
  free(d->x_test);
  free(d->y_test);
  free(d);
}

/* x = mean[y] + N(0, 1) per coordinate; with probability label_noise the recorded label is
 * redrawn uniformly (it may coincide with the true one). */
static void synthetic_fill(const wl_dataset_config *cfg, const float *means, gsl_rng *r, int n,
                           float *x, int32_t *y)
{
  for (int i = 0; i < n; i++) {
    int c = (int)gsl_rng_uniform_int(r, (unsigned long)cfg->classes);
    const float *mu = means + (size_t)c * (size_t)cfg->dim;
    float *xi = x + (size_t)i * (size_t)cfg->dim;
    for (int j = 0; j < cfg->dim; j++)
      xi[j] = mu[j] + (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    if (cfg->label_noise > 0 && gsl_rng_uniform(r) < cfg->label_noise)
      c = (int)gsl_rng_uniform_int(r, (unsigned long)cfg->classes);
    y[i] = c;
  }
}

wl_status wl_dataset_create(const wl_dataset_config *cfg, gsl_rng *r, wl_dataset **out)
{
  *out = NULL;
  wl_dataset *d = calloc(1, sizeof *d);
  float *means = NULL;
  if (!d)
    return WL_ENOMEM;
  d->dim = cfg->dim;
  d->classes = cfg->classes;
  d->n_train = cfg->train_examples;
  d->n_test = cfg->test_examples;
  size_t D = (size_t)cfg->dim;
  d->x_train = malloc((size_t)d->n_train * D * sizeof(float));
  d->y_train = malloc((size_t)d->n_train * sizeof(int32_t));
  d->x_test = malloc((size_t)d->n_test * D * sizeof(float));
  d->y_test = malloc((size_t)d->n_test * sizeof(int32_t));
  means = malloc((size_t)cfg->classes * D * sizeof(float));
  if (!d->x_train || !d->y_train || !d->x_test || !d->y_test || !means)
    goto fail;
  wl_fill_gaussian(means, (size_t)cfg->classes * D, cfg->separation, r);
  synthetic_fill(cfg, means, r, d->n_train, d->x_train, d->y_train);
  synthetic_fill(cfg, means, r, d->n_test, d->x_test, d->y_test);
  free(means);
  *out = d;
  return WL_OK;
fail:
  free(means);
  wl_dataset_destroy(d);
  return WL_ENOMEM;
}

wl_status wl_partition(const wl_partition_config *cfg, const wl_dataset *d, int K, gsl_rng *r,
                       wl_shard *shards, char *err, size_t err_size)
{
  WL_ASSERT(cfg->type == WL_PART_IID && K > 0);
  memset(shards, 0, (size_t)K * sizeof *shards);
  if (d->n_train < K) {
    snprintf(err, err_size, "the training set has %d examples, fewer than the %d workers",
             d->n_train, K);
    return WL_ECONFIG;
  }
  int32_t *perm = malloc((size_t)d->n_train * sizeof *perm);
  if (!perm)
    return WL_ENOMEM;
  for (int i = 0; i < d->n_train; i++)
    perm[i] = i;
  gsl_ran_shuffle(r, perm, (size_t)d->n_train, sizeof *perm);
  for (int k = 0; k < K; k++) {
    long lo = (long)d->n_train * k / K, hi = (long)d->n_train * (k + 1) / K;
    shards[k].n = (int)(hi - lo);
    shards[k].idx = malloc((size_t)shards[k].n * sizeof(int32_t));
    if (!shards[k].idx) {
      for (int j = 0; j < k; j++)
        wl_shard_free(&shards[j]);
      free(perm);
      return WL_ENOMEM;
    }
    memcpy(shards[k].idx, perm + lo, (size_t)shards[k].n * sizeof(int32_t));
  }
  free(perm);
  return WL_OK;
}

void wl_shard_free(wl_shard *s)
{
  free(s->idx);
  s->idx = NULL;
  s->n = 0;
}

wl_status wl_sampler_init(wl_sampler *s, const wl_shard *shard, gsl_rng *r)
{
  s->shard = shard;
  s->pos = 0;
  s->epoch = 0;
  s->order = malloc((size_t)shard->n * sizeof(int32_t));
  if (!s->order)
    return WL_ENOMEM;
  memcpy(s->order, shard->idx, (size_t)shard->n * sizeof(int32_t));
  gsl_ran_shuffle(r, s->order, (size_t)shard->n, sizeof(int32_t));
  return WL_OK;
}

void wl_sampler_free(wl_sampler *s)
{
  free(s->order);
  s->order = NULL;
}

void wl_sampler_next(wl_sampler *s, const wl_dataset *d, int B, gsl_rng *r, float *x,
                     int32_t *y)
{
  size_t D = (size_t)d->dim;
  for (int b = 0; b < B; b++) {
    if (s->pos == s->shard->n) {
      gsl_ran_shuffle(r, s->order, (size_t)s->shard->n, sizeof(int32_t));
      s->pos = 0;
      s->epoch++;
    }
    int32_t i = s->order[s->pos++];
    memcpy(x + (size_t)b * D, d->x_train + (size_t)i * D, D * sizeof(float));
    y[b] = d->y_train[i];
  }
}
