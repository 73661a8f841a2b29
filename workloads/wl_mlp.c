/* The multilayer perceptron (softmax regression is the one with no hidden layer).
 *
 * Layer i maps width[i] to width[i+1]: z_i = a_{i-1} W_i^T + b_i, a_i = act(z_i) for hidden
 * layers, a_{-1} = x, and the last z is the logits. Tensors fc{i}.w (width[i+1], width[i])
 * and fc{i}.b (width[i+1]). PyTorch's default initialization: weights and biases uniform
 * in +-1/sqrt(fan_in). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wl_kernels.h"
#include "wl_model_impl.h"

typedef struct mlp {
  int nl;                         /* linear layers */
  int width[WL_MAX_HIDDEN + 2];   /* width[0] = D, ..., width[nl] = classes */
  size_t w_off[WL_MAX_HIDDEN + 1], b_off[WL_MAX_HIDDEN + 1]; /* tensor offsets */
  float *z[WL_MAX_HIDDEN + 1];    /* (B, width[i+1]) pre-activations; z[nl-1] = logits */
  float *a[WL_MAX_HIDDEN + 1];    /* (B, width[i+1]) activations of hidden layers */
  float *probs;                   /* (B, classes) */
  float *dz, *da;                 /* (B, max width) gradient scratch */
  float *gemm_scratch;            /* for products of inner dimension up to max(width, B) */
} mlp;

static void activate(const wl_model *m, float *out, const float *in, size_t n)
{
  if (m->cfg.activation == WL_ACT_GELU)
    wl_gelu_erf_forward(out, in, n);
  else if (m->cfg.activation == WL_ACT_GELU_TANH)
    wl_gelu_tanh_forward(out, in, n);
  else
    wl_relu_forward(out, in, n);
}

static void activate_backward(const wl_model *m, float *din, const float *in, const float *dout,
                              size_t n)
{
  if (m->cfg.activation == WL_ACT_GELU)
    wl_gelu_erf_backward(din, in, dout, n);
  else if (m->cfg.activation == WL_ACT_GELU_TANH)
    wl_gelu_tanh_backward(din, in, dout, n);
  else
    wl_relu_backward(din, in, dout, n);
}

/* Forward through every layer; returns the summed loss, counting into *correct. */
static double mlp_forward_pass(wl_model *m, const float *params, const wl_batch *b,
                               long *correct)
{
  mlp *s = m->impl;
  const float *in = b->x;
  for (int i = 0; i < s->nl; i++) {
    wl_matmul_forward(s->z[i], in, params + s->w_off[i], params + s->b_off[i], b->B,
                      s->width[i], s->width[i + 1], s->gemm_scratch);
    if (i < s->nl - 1) {
      activate(m, s->a[i], s->z[i], (size_t)b->B * s->width[i + 1]);
      in = s->a[i];
    }
  }
  return wl_xent_forward(s->probs, s->z[s->nl - 1], b->y, b->B, m->C, correct);
}

static double mlp_step(wl_model *m, const float *params, float *grads, const wl_batch *b)
{
  mlp *s = m->impl;
  long correct = 0;
  int B = b->B;
  double loss = mlp_forward_pass(m, params, b, &correct);
  float *dz = s->dz, *da = s->da;
  memset(dz, 0, (size_t)B * m->C * sizeof(float));
  wl_xent_backward(dz, s->probs, b->y, B, m->C, 1.0f / (float)B);
  /* every layer's weights, biases and input gradient are set (not added to zeros): every
   * element of grads is written */
  for (int i = s->nl - 1; i >= 0; i--) {
    const float *in = i > 0 ? s->a[i - 1] : b->x;
    size_t n_in = (size_t)B * s->width[i];
    wl_matmul_backward(i > 0 ? da : NULL, grads + s->w_off[i], grads + s->b_off[i], dz, in,
                       params + s->w_off[i], B, s->width[i], s->width[i + 1], 0,
                       s->gemm_scratch);
    if (i > 0) {
      memset(dz, 0, n_in * sizeof(float));
      activate_backward(m, dz, s->z[i - 1], da, n_in);
    }
  }
  return loss / B;
}

static void mlp_forward(wl_model *m, const float *params, const wl_batch *b, double *loss_sum,
                        long *correct, long *count)
{
  *loss_sum += mlp_forward_pass(m, params, b, correct);
  *count += b->B;
}

static void mlp_init(const wl_model *m, float *params, gsl_rng *r)
{
  const mlp *s = m->impl;
  for (int i = 0; i < s->nl; i++) {
    double bound = 1.0 / sqrt((double)s->width[i]);
    wl_fill_uniform(params + s->w_off[i], (size_t)s->width[i + 1] * s->width[i], -bound, bound,
                    r);
    wl_fill_uniform(params + s->b_off[i], (size_t)s->width[i + 1], -bound, bound, r);
  }
}

/* forward 2*in*out, backward dW 2*in*out and (past the first layer) dX 2*in*out */
static double mlp_flops(const wl_model *m)
{
  const mlp *s = m->impl;
  double f = 0;
  for (int i = 0; i < s->nl; i++)
    f += 2.0 * s->width[i] * s->width[i + 1] * (i > 0 ? 3 : 2);
  return f;
}

static void mlp_destroy(wl_model *m) { free(m->impl); }

static const wl_model_ops mlp_ops = {mlp_flops, mlp_init, mlp_step, mlp_forward, mlp_destroy};

wl_status wl_mlp_create(wl_model *m)
{
  mlp *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  m->impl = s;
  m->ops = &mlp_ops;
  int hidden = m->cfg.type == WL_MODEL_MLP ? m->cfg.n_hidden : 0;
  s->nl = hidden + 1;
  s->width[0] = m->D;
  for (int i = 0; i < hidden; i++)
    s->width[i + 1] = m->cfg.hidden[i];
  s->width[s->nl] = m->C;
  int maxw = 0;
  for (int i = 0; i <= s->nl; i++)
    maxw = s->width[i] > maxw ? s->width[i] : maxw;
  for (int i = 0; i < s->nl; i++) {
    s->w_off[i] = wl_model_add_tensor(m, (size_t)s->width[i + 1] * s->width[i],
                                    WL_TENSOR_WEIGHT, "fc%d.w", i);
    s->b_off[i] = wl_model_add_tensor(m, (size_t)s->width[i + 1], WL_TENSOR_BIAS, "fc%d.b", i);
  }
  /* workspace: z and a per layer, probs, dz, da, the products' scratch */
  size_t B = (size_t)m->max_batch;
  size_t scratch = wl_gemm_scratch_floats((size_t)maxw > B ? (size_t)maxw : B);
  double total = (double)B * m->C + 2.0 * (double)B * maxw + (double)scratch;
  for (int i = 0; i < s->nl; i++)
    total += 2.0 * (double)B * s->width[i + 1];
  wl_status st = wl_model_alloc_work(m, total);
  if (st != WL_OK || m->measure)
    return st;
  float *p = m->work;
  for (int i = 0; i < s->nl; i++) {
    s->z[i] = p;
    p += B * s->width[i + 1];
    s->a[i] = p;
    p += B * s->width[i + 1];
  }
  s->probs = p;
  p += B * m->C;
  s->dz = p;
  p += B * maxw;
  s->da = p;
  p += B * maxw;
  s->gemm_scratch = p;
  return WL_OK;
}
