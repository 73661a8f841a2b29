#include "wl_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wl_model_impl.h"

/* ---- configuration tables --------------------------------------------------------------- */

#define MC(f) offsetof(wl_model_config, f)

static const double default_hidden[] = {256};

static const wl_param mlp_params[] = {
  {.key = "hidden", .kind = WL_P_INTS, .offset = MC(hidden), .min = 1, .max = 65536,
   .size = WL_MAX_HIDDEN, .count_offset = MC(n_hidden), .def_list = default_hidden,
   .def_count = 1, .min_count = 1, .unit = "units", .doc = "hidden layer widths, input side first"},
  {.key = "activation", .kind = WL_P_ENUM, .offset = MC(activation), .def = WL_ACT_RELU,
   .choices = "relu|gelu|gelu_tanh", .unit = "",
   .doc = "activation after each hidden layer; gelu is x Phi(x) (PyTorch's nn.GELU()), "
          "gelu_tanh its tanh approximation (nn.GELU(approximate='tanh'))"},
  {0}};

static const wl_param transformer_params[] = {
  {.key = "width", .kind = WL_P_INT, .offset = MC(width), .def = 64, .min = 1, .max = 8192,
   .unit = "channels", .doc = "embedding width C"},
  {.key = "heads", .kind = WL_P_INT, .offset = MC(heads), .def = 4, .min = 1, .max = 256,
   .unit = "", .doc = "attention heads; must divide width"},
  {.key = "layers", .kind = WL_P_INT, .offset = MC(layers), .def = 2, .min = 1, .max = 128,
   .unit = "blocks", .doc = "transformer blocks L"},
  {.key = "context", .kind = WL_P_INT, .offset = MC(context), .def = 64, .min = 1,
   .max = 4096, .unit = "tokens", .doc = "sequence length T of each training window"},
  {.key = "tie_embeddings", .kind = WL_P_BOOL, .offset = MC(tie_embeddings), .def = 0,
   .unit = "", .doc = "the output head is the token embedding matrix (GPT-2 ties them; "
                     "default: an untied head)"},
  {0}};

static const wl_variant softmax_variant = {"softmax",
                                           "softmax (multinomial logistic) regression", NULL};
static const wl_variant mlp_variant = {"mlp", "multilayer perceptron", mlp_params};
static const wl_variant transformer_variant = {
  "transformer", "character-level decoder-only transformer (needs a text dataset)",
  transformer_params};
static const wl_param none_params[] = {
  {.key = "params", .kind = WL_P_DOUBLE, .offset = MC(params), .def = 1e6, .min = 1,
   .max = 1e15, .unit = "parameters", .doc = "the parameter count whose traffic is simulated"},
  {0}};
static const wl_variant none_variant = {
  "none", "timing only: no real model or data; gradient steps only take simulated time",
  none_params};
/* Same order as WL_MODEL_* */
static const wl_variant *const model_variants[] = {&softmax_variant, &mlp_variant,
                                                   &transformer_variant, &none_variant, NULL};

const wl_param wl_model_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = MC(type), .def = WL_MODEL_SOFTMAX,
   .variants = model_variants, .unit = "", .doc = "model kind"},
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

wl_status wl_workload_check(const wl_workload_config *w, char *path, size_t path_size,
                            char *msg, size_t msg_size)
{
  int text = w->dataset.type == WL_DATA_TEXT, seq = w->model.type == WL_MODEL_TRANSFORMER;
  if (w->model.type == WL_MODEL_NONE)
    return WL_OK; /* timing only: the dataset is not used */
  if (text != seq) {
    snprintf(path, path_size, "model.type");
    snprintf(msg, msg_size, "expected %s for a %s dataset, got %s",
             text ? "transformer" : "softmax or mlp", text ? "text" : "classification",
             model_variants[w->model.type]->name);
    return WL_ECONFIG;
  }
  if (seq && w->model.width % w->model.heads != 0) {
    snprintf(path, path_size, "model.heads");
    snprintf(msg, msg_size, "expected a divisor of width %d, got %d", w->model.width,
             w->model.heads);
    return WL_ECONFIG;
  }
  if (text && w->partition.type == WL_PART_DIRICHLET) {
    snprintf(path, path_size, "partition.type");
    snprintf(msg, msg_size, "expected iid or contiguous for a text dataset, got dirichlet");
    return WL_ECONFIG;
  }
  return WL_OK;
}

int wl_model_seq_len(const wl_model_config *cfg)
{
  return cfg->type == WL_MODEL_TRANSFORMER ? cfg->context : 0;
}

/* ---- the model object ------------------------------------------------------------------ */

size_t wl_model_add_tensor(wl_model *m, size_t count, int kind, const char *fmt, int index)
{
  if (m->n_tensors == m->cap_tensors) {
    int cap = m->cap_tensors ? 2 * m->cap_tensors : 32;
    wl_tensor *t = realloc(m->tensors, (size_t)cap * sizeof *t);
    if (t)
      m->tensors = t;
    char(*names)[24] = t ? realloc(m->names, (size_t)cap * sizeof *names) : NULL;
    if (!names) {
      m->failed = 1;
      return (size_t)-1;
    }
    m->names = names;
    m->cap_tensors = cap;
    for (int i = 0; i < m->n_tensors; i++) /* the names moved */
      m->tensors[i].name = m->names[i];
  }
  int i = m->n_tensors++;
  snprintf(m->names[i], sizeof m->names[i], fmt, index);
  m->tensors[i] = (wl_tensor){m->names[i], m->nparams, count, kind};
  m->nparams += count;
  return m->tensors[i].offset;
}

void wl_fill_uniform(float *x, size_t n, double lo, double hi, gsl_rng *r)
{
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(lo + (hi - lo) * gsl_rng_uniform(r));
}

wl_status wl_model_alloc_work(wl_model *m, double total)
{
  m->work_floats = total;
  if (total > WL_MODEL_MAX_WORK_FLOATS)
    return WL_ELIMIT;
  if (m->measure)
    return WL_OK;
  m->work = malloc((size_t)total * sizeof(float));
  return m->work ? WL_OK : WL_ENOMEM;
}

/* A model of cfg for inputs of D features (or a window of D tokens) and C classes (or a
 * vocabulary of C); only measured when measure is set. */
static wl_status model_new(const wl_model_config *cfg, int D, int C, int max_batch, int measure,
                           wl_model **out)
{
  *out = NULL;
  WL_ASSERT(max_batch > 0);
  wl_model *m = calloc(1, sizeof *m);
  if (!m)
    return WL_ENOMEM;
  m->cfg = *cfg;
  m->D = D;
  m->C = C;
  m->max_batch = max_batch;
  m->measure = measure;
  wl_status st = cfg->type == WL_MODEL_TRANSFORMER ? wl_transformer_create(m) : wl_mlp_create(m);
  if (st == WL_OK && m->failed)
    st = WL_ENOMEM;
  if (st != WL_OK) {
    wl_model_destroy(m);
    return st;
  }
  *out = m;
  return WL_OK;
}

wl_status wl_model_create(const wl_model_config *cfg, const wl_dataset *d, int max_batch,
                          wl_model **out)
{
  WL_ASSERT((cfg->type == WL_MODEL_TRANSFORMER) == (d->kind == WL_KIND_TEXT));
  return model_new(cfg, d->dim, d->classes, max_batch, 0, out);
}

wl_status wl_model_size(const wl_model_config *cfg, int D, int C, int max_batch, double *nparams,
                        double *work_bytes)
{
  wl_model *m;
  *nparams = *work_bytes = 0;
  if (cfg->type == WL_MODEL_NONE)
    return WL_OK;
  wl_status st = model_new(cfg, D, C, max_batch, 1, &m);
  if (st != WL_OK)
    return st;
  *nparams = (double)m->nparams;
  *work_bytes = m->work_floats * sizeof(float) + sizeof *m +
                (double)m->cap_tensors * (sizeof(wl_tensor) + 24) + 4096 /* the model's own */;
  wl_model_destroy(m);
  return WL_OK;
}

void wl_model_destroy(wl_model *m)
{
  if (!m)
    return;
  if (m->ops && m->ops->destroy)
    m->ops->destroy(m);
  free(m->work);
  free(m->tensors);
  free(m->names);
  free(m);
}

size_t wl_model_nparams(const wl_model *m) { return m->nparams; }

int wl_model_tensors(const wl_model *m, const wl_tensor **tensors)
{
  *tensors = m->tensors;
  return m->n_tensors;
}

double wl_model_flops_per_example(const wl_model *m) { return m->ops->flops_per_example(m); }

void wl_model_init(const wl_model *m, float *params, gsl_rng *r) { m->ops->init(m, params, r); }

double wl_model_step(wl_model *m, const float *params, float *grads, const wl_batch *b)
{
  WL_ASSERT(b->B > 0 && b->B <= m->max_batch);
  return m->ops->step(m, params, grads, b);
}

void wl_model_forward(wl_model *m, const float *params, const wl_batch *b, double *loss_sum,
                      long *correct, long *count)
{
  WL_ASSERT(b->B > 0 && b->B <= m->max_batch);
  m->ops->forward(m, params, b, loss_sum, correct, count);
}

int wl_model_eval_part_size(const wl_model *m, const wl_batch *b)
{
  return m->max_batch < b->cap ? m->max_batch : b->cap;
}

int wl_model_eval_parts(const wl_model *m, const wl_batch *b, int n)
{
  int size = wl_model_eval_part_size(m, b);
  return n > 0 ? (n - 1) / size + 1 : 0;
}

void wl_model_eval_part(wl_model *m, const float *params, const wl_dataset *d, int test, int n,
                        int i, wl_batch *b, wl_eval_part *part)
{
  int size = wl_model_eval_part_size(m, b), lo = i * size;
  WL_ASSERT(i >= 0 && lo < n);
  /* -0 + x is x for every x, so the part's sum is exactly the batch's loss */
  *part = (wl_eval_part){.loss_sum = -0.0};
  wl_dataset_gather_range(d, test, lo, n - lo < size ? n - lo : size, b);
  wl_model_forward(m, params, b, &part->loss_sum, &part->correct, &part->count);
}

/* total += part, in the order the parts come */
static void eval_add(wl_eval_part *total, const wl_eval_part *part)
{
  total->loss_sum += part->loss_sum;
  total->correct += part->correct;
  total->count += part->count;
}

static void eval_mean(const wl_eval_part *total, double *loss, double *accuracy)
{
  *loss = total->count > 0 ? total->loss_sum / (double)total->count : NAN;
  *accuracy = total->count > 0 ? (double)total->correct / (double)total->count : NAN;
}

void wl_model_eval_total(const wl_eval_part *parts, int n_parts, double *loss,
                         double *accuracy)
{
  wl_eval_part total = {0};
  for (int i = 0; i < n_parts; i++)
    eval_add(&total, &parts[i]);
  eval_mean(&total, loss, accuracy);
}

void wl_model_evaluate(wl_model *m, const float *params, const wl_dataset *d, int test, int n,
                       wl_batch *b, double *loss, double *accuracy)
{
  wl_eval_part total = {0}, part;
  for (int i = 0, parts = wl_model_eval_parts(m, b, n); i < parts; i++) {
    wl_model_eval_part(m, params, d, test, n, i, b, &part);
    eval_add(&total, &part);
  }
  eval_mean(&total, loss, accuracy);
}
