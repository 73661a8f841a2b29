/* Private to workloads/: what every model implements, and the shared model header. */
#ifndef WL_MODEL_IMPL_H
#define WL_MODEL_IMPL_H

#include "wl_model.h"

typedef struct wl_model_ops {
  double (*flops_per_example)(const wl_model *m);
  void (*init)(const wl_model *m, float *params, gsl_rng *r);
  double (*step)(wl_model *m, const float *params, float *grads, const wl_batch *b);
  void (*forward)(wl_model *m, const float *params, const wl_batch *b, double *loss_sum,
                  long *correct, long *count);
  void (*destroy)(wl_model *m);
} wl_model_ops;

struct wl_model {
  const wl_model_ops *ops;
  wl_model_config cfg;
  int D;          /* classify: features; text: sequence length */
  int C;          /* classes or vocabulary */
  int max_batch;  /* workspace capacity in examples */
  size_t nparams;
  wl_tensor *tensors;  /* (cap_tensors) */
  char (*names)[24];   /* (cap_tensors) storage for tensor names */
  int n_tensors, cap_tensors;
  int failed;          /* a tensor could not be added (out of memory) */
  int measure;    /* only count: creation sets work_floats and allocates no workspace */
  double work_floats; /* the workspace's size */
  float *work;    /* the workspace, one allocation */
  void *impl;     /* the model's own state */
};

/* Append a tensor of count floats and kind WL_TENSOR_*, named printf-style; returns its
 * offset, or (size_t)-1 when out of memory (creation then fails). */
size_t wl_model_add_tensor(wl_model *m, size_t count, int kind, const char *fmt, int index);

/* The largest workspace a model may allocate, in floats (far beyond any machine's memory,
 * and far below where size arithmetic could wrap). */
#define WL_MODEL_MAX_WORK_FLOATS 0x1p50

/* Record a workspace of `total` floats (computed in double, so that it cannot wrap) and,
 * unless m only measures, allocate it into m->work. */
wl_status wl_model_alloc_work(wl_model *m, double total);

wl_status wl_mlp_create(wl_model *m);
wl_status wl_transformer_create(wl_model *m);

/* x[i] = U(lo, hi) draws from r, in order. */
void wl_fill_uniform(float *x, size_t n, double lo, double hi, gsl_rng *r);

#endif
