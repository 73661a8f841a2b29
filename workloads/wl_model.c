#include "wl_model.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS's cblas.h; GSL's gsl_randist.h would bring a conflicting gsl_cblas.h. */
#include <cblas.h>

static const wl_variant softmax_variant = {"softmax", "softmax (multinomial logistic) regression",
                                           NULL};
static const wl_variant *const model_variants[] = {&softmax_variant, NULL};

const wl_param wl_model_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = offsetof(wl_model_config, type),
   .def = WL_MODEL_SOFTMAX, .variants = model_variants, .unit = "", .doc = "model kind"},
  {0}};

#define WK_OFF(f) offsetof(wl_workload_config, f)

const wl_param wl_workload_params[] = {
  {.key = "model", .kind = WL_P_OBJECT, .offset = WK_OFF(model), .sub = wl_model_params,
   .unit = "", .doc = "the model every worker trains"},
  {.key = "dataset", .kind = WL_P_OBJECT, .offset = WK_OFF(dataset), .sub = wl_dataset_params,
   .unit = "", .doc = "training and held-out data"},
  {.key = "batch_size", .kind = WL_P_INT, .offset = WK_OFF(batch_size), .def = 32, .min = 1,
   .max = 1 << 16, .unit = "examples", .doc = "examples per worker per gradient step"},
  {.key = "partition", .kind = WL_P_OBJECT, .offset = WK_OFF(partition),
   .sub = wl_partition_params, .unit = "", .doc = "how training data is split across workers"},
  {0}};

struct wl_model {
  int type;      /* WL_MODEL_* */
  int D, C;      /* input features, classes */
  int max_batch; /* workspace capacity in examples */
  float *logits; /* (max_batch, C) logits, then probabilities, then dlogits */
};

wl_status wl_model_create(const wl_model_config *cfg, int dim, int classes, int max_batch,
                          wl_model **out)
{
  *out = NULL;
  WL_ASSERT(cfg->type == WL_MODEL_SOFTMAX && dim > 0 && classes > 1 && max_batch > 0);
  wl_model *m = calloc(1, sizeof *m);
  if (!m)
    return WL_ENOMEM;
  m->type = cfg->type;
  m->D = dim;
  m->C = classes;
  m->max_batch = max_batch;
  m->logits = malloc((size_t)max_batch * (size_t)classes * sizeof(float));
  if (!m->logits) {
    free(m);
    return WL_ENOMEM;
  }
  *out = m;
  return WL_OK;
}

void wl_model_destroy(wl_model *m)
{
  if (!m)
    return;
  free(m->logits);
  free(m);
}

size_t wl_model_nparams(const wl_model *m)
{
  return (size_t)m->C * (size_t)m->D + (size_t)m->C;
}

double wl_model_flops_per_example(const wl_model *m)
{
  /* forward matmul 2CD, backward dW 2CD (no dx needed) */
  return 4.0 * m->C * m->D;
}

void wl_model_init(const wl_model *m, float *params, gsl_rng *r)
{
  size_t nw = (size_t)m->C * (size_t)m->D;
  wl_fill_gaussian(params, nw, 1.0 / sqrt((double)m->D), r);
  memset(params + nw, 0, (size_t)m->C * sizeof(float));
}

/* logits (B, C) = x (B, D) W^T (D, C) + b (C) */
static void linear_forward(const wl_model *m, const float *params, const float *x, int B)
{
  const float *W = params, *b = params + (size_t)m->C * (size_t)m->D;
  for (int i = 0; i < B; i++)
    memcpy(m->logits + (size_t)i * (size_t)m->C, b, (size_t)m->C * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, m->C, m->D, 1.0f, x, m->D, W, m->D,
              1.0f, m->logits, m->C);
}

/* Turns row i of logits (C) into probabilities in place; returns that row's cross-entropy
 * against label y. */
static double softmax_xent_row(float *row, int C, int32_t y)
{
  float mx = -FLT_MAX;
  for (int c = 0; c < C; c++)
    mx = row[c] > mx ? row[c] : mx;
  double zy = (double)row[y] - (double)mx, sum = 0;
  for (int c = 0; c < C; c++) {
    row[c] = expf(row[c] - mx);
    sum += row[c];
  }
  double loss = log(sum) - zy;
  float inv = (float)(1.0 / sum);
  for (int c = 0; c < C; c++)
    row[c] *= inv;
  return loss;
}

double wl_model_step(wl_model *m, const float *params, float *grads, const float *x,
                     const int32_t *y, int B)
{
  WL_ASSERT(B > 0 && B <= m->max_batch);
  int C = m->C;
  linear_forward(m, params, x, B);
  double loss = 0;
  float invB = 1.0f / (float)B;
  float *gb = grads + (size_t)C * (size_t)m->D;
  memset(gb, 0, (size_t)C * sizeof(float));
  for (int i = 0; i < B; i++) {
    float *row = m->logits + (size_t)i * (size_t)C;
    loss += softmax_xent_row(row, C, y[i]);
    row[y[i]] -= 1.0f;
    for (int c = 0; c < C; c++) {
      row[c] *= invB; /* dlogits (B, C) */
      gb[c] += row[c];
    }
  }
  /* dW (C, D) = dlogits^T (C, B) x (B, D) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, m->D, B, 1.0f, m->logits, C, x, m->D,
              0.0f, grads, m->D);
  return loss / B;
}

void wl_model_eval(wl_model *m, const float *params, const float *x, const int32_t *y, int n,
                   double *loss, double *accuracy)
{
  double total = 0;
  long correct = 0;
  for (int lo = 0; lo < n; lo += m->max_batch) {
    int B = n - lo < m->max_batch ? n - lo : m->max_batch;
    linear_forward(m, params, x + (size_t)lo * (size_t)m->D, B);
    for (int i = 0; i < B; i++) {
      float *row = m->logits + (size_t)i * (size_t)m->C;
      int best = 0;
      for (int c = 1; c < m->C; c++)
        best = row[c] > row[best] ? c : best;
      correct += best == y[lo + i];
      total += softmax_xent_row(row, m->C, y[lo + i]);
    }
  }
  *loss = n > 0 ? total / n : NAN;
  *accuracy = n > 0 ? (double)correct / n : NAN;
}
