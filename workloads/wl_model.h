/* wl_model — models with forward/backward on flat float buffers, and the workload config.
 *
 * A model's parameters are one contiguous float block of wl_model_nparams() floats; so are
 * its gradients. The model object holds only shapes and a workspace sized for max_batch
 * examples, so one model object serves one thread: the runner makes one per worker.
 * No call allocates after wl_model_create.
 *
 * Shape letters: B batch, D input features, C classes.
 *
 * Softmax regression: params = W (C, D) then b (C); logits = x W^T + b; mean cross-entropy. */
#ifndef WL_MODEL_H
#define WL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "wl_data.h"
#include "wl_param.h"
#include "wl_status.h"

enum { WL_MODEL_SOFTMAX = 0 };

typedef struct wl_model_config {
  int type; /* WL_MODEL_* (variant index) */
} wl_model_config;

typedef struct wl_workload_config {
  wl_model_config model;         /* what is trained */
  wl_dataset_config dataset;     /* what it is trained on */
  int batch_size;                /* examples per worker per gradient step */
  wl_partition_config partition; /* how the training set is split across workers */
} wl_workload_config;

extern const wl_param wl_model_params[];
extern const wl_param wl_workload_params[];

typedef struct wl_model wl_model;

/* A model for inputs of `dim` features and `classes` classes, with a workspace for batches
 * of up to max_batch examples. */
wl_status wl_model_create(const wl_model_config *cfg, int dim, int classes, int max_batch,
                          wl_model **out);
void wl_model_destroy(wl_model *m);

size_t wl_model_nparams(const wl_model *m);

/* Floating-point operations of one training step (forward + backward) per example. */
double wl_model_flops_per_example(const wl_model *m);

/* Deterministic initialization of params (nparams) from r. */
void wl_model_init(const wl_model *m, float *params, gsl_rng *r);

/* Forward and backward on one batch: x (B, D), y (B); overwrites grads (nparams) with the
 * gradient of the mean loss and returns the mean loss. B <= max_batch. */
double wl_model_step(wl_model *m, const float *params, float *grads, const float *x,
                     const int32_t *y, int B);

/* Mean loss and accuracy of params over n examples x (n, D), y (n), in chunks of max_batch. */
void wl_model_eval(wl_model *m, const float *params, const float *x, const int32_t *y, int n,
                   double *loss, double *accuracy);

#endif
