/* wl_data — datasets, partitions across workers, and per-worker batch sampling.
 *
 * A dataset holds a training set and a fixed held-out set as dense float features and
 * int32 labels. A partition assigns every training example to exactly one worker's shard.
 * A sampler draws batches from one shard without replacement, reshuffling at each epoch
 * with the gsl_rng it is given, so a worker's batch sequence depends only on its stream.
 *
 * Memory: the dataset owns its arrays; shards own an index list; a sampler owns its order.
 * Nothing here allocates after creation. */
#ifndef WL_DATA_H
#define WL_DATA_H

#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "wl_param.h"
#include "wl_status.h"

enum { WL_DATA_SYNTHETIC = 0 };
enum { WL_PART_IID = 0 };

typedef struct wl_dataset_config {
  int type;             /* WL_DATA_* (variant index) */
  int train_examples;   /* synthetic: size of the training set */
  int test_examples;    /* synthetic: size of the held-out set */
  int dim;              /* synthetic: input dimension */
  int classes;          /* synthetic: number of classes */
  double separation;    /* synthetic: std. dev. of class-mean coordinates (noise std. dev. is 1) */
  double label_noise;   /* synthetic: fraction of labels replaced by a uniform class, [0,1] */
} wl_dataset_config;

typedef struct wl_partition_config {
  int type; /* WL_PART_* (variant index) */
} wl_partition_config;

extern const wl_param wl_dataset_params[];
extern const wl_param wl_partition_params[];

typedef struct wl_dataset {
  int dim;          /* features per example */
  int classes;      /* labels are in [0, classes) */
  int n_train;      /* training examples */
  int n_test;       /* held-out examples */
  float *x_train;   /* (n_train, dim) */
  int32_t *y_train; /* (n_train) */
  float *x_test;    /* (n_test, dim) */
  int32_t *y_test;  /* (n_test) */
} wl_dataset;

/* Build the dataset `cfg` describes, drawing from r. On error *out is NULL. */
wl_status wl_dataset_create(const wl_dataset_config *cfg, gsl_rng *r, wl_dataset **out);
void wl_dataset_destroy(wl_dataset *d);

/* One worker's share of the training set. */
typedef struct wl_shard {
  int n;        /* examples in the shard, > 0 */
  int32_t *idx; /* (n) indices into the training set */
} wl_shard;

/* Split the n_train examples into K shards as `cfg` says, drawing from r. Fails with
 * WL_ECONFIG (and a message in err) when a shard would be empty. shards is (K). */
wl_status wl_partition(const wl_partition_config *cfg, const wl_dataset *d, int K, gsl_rng *r,
                       wl_shard *shards, char *err, size_t err_size);
void wl_shard_free(wl_shard *s);

/* Draws batches from one shard, epoch by epoch, without replacement within an epoch. */
typedef struct wl_sampler {
  const wl_shard *shard; /* not owned */
  int32_t *order;        /* (shard->n) the current epoch's order */
  int pos;               /* next position in order */
  long epoch;            /* completed epochs */
} wl_sampler;

wl_status wl_sampler_init(wl_sampler *s, const wl_shard *shard, gsl_rng *r);
void wl_sampler_free(wl_sampler *s);

/* Gather the next B examples into x (B, dim) and y (B); reshuffles with r at epoch ends. */
void wl_sampler_next(wl_sampler *s, const wl_dataset *d, int B, gsl_rng *r, float *x,
                     int32_t *y);

/* x[i] = N(0, sd^2) draws from r, i = 0..n-1, in order. */
void wl_fill_gaussian(float *x, size_t n, double sd, gsl_rng *r);

#endif
