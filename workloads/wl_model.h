/* wl_model — models with forward/backward on flat float buffers, and the workload config.
 *
 * A model's parameters are one contiguous block of wl_model_nparams() floats, carved into
 * named tensors (wl_model_tensors); its gradients are a block of the same layout, and the
 * optimizer state lives with the replica (optim/). The model object holds shapes and a
 * workspace for batches of up to max_batch examples: activations, their gradients, and
 * scratch. No call allocates after wl_model_create; one model object serves one thread.
 *
 * Models:
 *   softmax      logits = x W^T + b; mean cross-entropy (an mlp with no hidden layer)
 *   mlp          Linear -> act -> ... -> Linear, act ReLU, GELU or GELU's tanh approximation
 *   transformer  a character-level decoder: token + position embedding, L blocks of
 *                pre-layernorm causal self-attention and GELU MLP (4x width) with
 *                residuals (GELU's tanh approximation, as GPT-2), a final layernorm and a
 *                linear output head (untied, or tied to the token embedding as in GPT-2);
 *                the loss is the mean
 *                next-token cross-entropy over every position. */
#ifndef WL_MODEL_H
#define WL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "wl_data.h"
#include "wl_param.h"
#include "wl_status.h"

enum { WL_MODEL_SOFTMAX = 0, WL_MODEL_MLP, WL_MODEL_TRANSFORMER, WL_MODEL_NONE };
enum { WL_ACT_RELU = 0, WL_ACT_GELU, WL_ACT_GELU_TANH };

#define WL_MAX_HIDDEN 16

typedef struct wl_model_config {
  int type;                   /* WL_MODEL_* (variant index) */
  int hidden[WL_MAX_HIDDEN];  /* mlp: hidden layer widths */
  int n_hidden;               /* mlp: how many */
  int activation;             /* mlp: WL_ACT_* */
  int width;                  /* transformer: channels C */
  int heads;                  /* transformer: attention heads (divides width) */
  int layers;                 /* transformer: blocks L */
  int context;                /* transformer: sequence length T */
  int tie_embeddings;         /* transformer: the output head is the token embedding */
  double params;              /* none: the parameter count whose traffic is simulated */
} wl_model_config;

typedef struct wl_workload_config {
  wl_model_config model;         /* what is trained */
  wl_dataset_config dataset;     /* what it is trained on */
  int batch_size;                /* examples per worker per gradient step */
  wl_partition_config partition; /* how the training set is split across workers */
} wl_workload_config;

extern const wl_param wl_model_params[];
extern const wl_param wl_workload_params[];

/* Relations the tables cannot express (a text dataset needs the transformer, heads divide
 * width, ...). On error writes the JSON path below "workload" to path, and msg. */
wl_status wl_workload_check(const wl_workload_config *w, char *path, size_t path_size,
                            char *msg, size_t msg_size);

/* The sequence length the model reads (its context), or 0 for classification models. */
int wl_model_seq_len(const wl_model_config *cfg);

/* What a tensor is, for optimizers that treat kinds apart (weight decay's usual groups). */
enum { WL_TENSOR_WEIGHT = 0, WL_TENSOR_BIAS, WL_TENSOR_NORM, WL_TENSOR_EMBED };

/* One named tensor of the parameter block. */
typedef struct wl_tensor {
  const char *name;
  size_t offset; /* first float */
  size_t count;  /* floats */
  int kind;      /* WL_TENSOR_*: a weight matrix, a bias, a normalization's gain or bias, an
                    embedding (token or position) */
} wl_tensor;

typedef struct wl_model wl_model;

/* A model of cfg for the data d (shapes, kind), with a workspace for max_batch examples. */
wl_status wl_model_create(const wl_model_config *cfg, const wl_dataset *d, int max_batch,
                          wl_model **out);
void wl_model_destroy(wl_model *m);

/* The parameter count and the bytes a model of cfg takes (its workspace for max_batch
 * examples, and its own structures) for inputs of D features (or windows of D tokens) and
 * C classes (or a vocabulary of C), without building it. WL_ELIMIT when the workspace is
 * beyond any machine (wl_model_create too). A model of type none takes nothing. */
wl_status wl_model_size(const wl_model_config *cfg, int D, int C, int max_batch, double *nparams,
                        double *work_bytes);

size_t wl_model_nparams(const wl_model *m);

/* The named tensors, in block order; returns how many. */
int wl_model_tensors(const wl_model *m, const wl_tensor **tensors);

/* Floating-point operations of the matrix products of one training step (forward and
 * backward), per example. */
double wl_model_flops_per_example(const wl_model *m);

/* Deterministic initialization of params (nparams) from r. */
void wl_model_init(const wl_model *m, float *params, gsl_rng *r);

/* Forward and backward on batch b (b->B <= max_batch): overwrites grads (nparams) with the
 * gradient of the mean loss and returns the mean loss. */
double wl_model_step(wl_model *m, const float *params, float *grads, const wl_batch *b);

/* Forward only: adds the batch's summed loss to *loss_sum, its correct predictions to
 * *correct and its number of predictions to *count. */
void wl_model_forward(wl_model *m, const float *params, const wl_batch *b, double *loss_sum,
                      long *correct, long *count);

/* Mean loss and accuracy of params on the first n held-out (test = 1) or training (test = 0)
 * examples of d, in parts of wl_model_eval_part_size examples gathered into b. */
void wl_model_evaluate(wl_model *m, const float *params, const wl_dataset *d, int test, int n,
                       wl_batch *b, double *loss, double *accuracy);

/* The same evaluation in parts, so that several workspaces can share it: part i covers
 * examples [i size, i size + size) of the set (the last part fewer), size =
 * wl_model_eval_part_size. Parts may be computed in any order, on any workspaces of the same
 * model and batch size; wl_model_eval_total adds them in part order, which gives the bits
 * of wl_model_evaluate. */
typedef struct wl_eval_part {
  double loss_sum;
  long correct, count;
} wl_eval_part;
int wl_model_eval_part_size(const wl_model *m, const wl_batch *b);
int wl_model_eval_parts(const wl_model *m, const wl_batch *b, int n); /* parts of n examples */
void wl_model_eval_part(wl_model *m, const float *params, const wl_dataset *d, int test, int n,
                        int i, wl_batch *b, wl_eval_part *part);
void wl_model_eval_total(const wl_eval_part *parts, int n_parts, double *loss,
                         double *accuracy);

#endif
