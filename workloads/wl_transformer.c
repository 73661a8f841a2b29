/* The character-level decoder-only transformer (GPT-2's architecture, as in llm.c: pre-LN
 * blocks, learned positions, GELU's tanh approximation).
 *
 * Tensors: wte (V,C), wpe (T,C), then per block l: ln1.w ln1.b (C), qkv.w (3C,C), qkv.b (3C),
 * proj.w (C,C), proj.b (C), ln2.w ln2.b (C), fc.w (4C,C), fc.b (4C), fcproj.w (C,4C),
 * fcproj.b (C); then lnf.w lnf.b (C) and the output head head.w (V,C) — untied by default;
 * with tie_embeddings (as GPT-2) the head is wte itself, which then gets the gradients of
 * both its uses.
 * Block: x2 = x + proj(attention(qkv(ln1(x)))); x3 = x2 + fcproj(gelu(fc(ln2(x2)))), with
 * GELU's tanh approximation.
 * Initialization: matrices and embeddings N(0, 0.02^2), the two residual projections
 * N(0, (0.02/sqrt(2L))^2), biases 0, layernorm weights 1.
 *
 * The workspace keeps every layer's activations for the backward pass, and one layer's worth
 * of activation gradients, reused from the top block down. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wl_kernels.h"
#include "wl_model_impl.h"

typedef struct layer_off { /* parameter offsets of one block */
  size_t ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
} layer_off;

typedef struct layer_act { /* activations of one block, for B*T rows */
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *res2, *ln2, *ln2_mean, *ln2_rstd,
    *fch, *fch_gelu, *fch_tanh, *res3;
} layer_act;

typedef struct transformer {
  int V, T, C, NH, L;
  size_t wte, wpe, lnfw, lnfb, headw; /* parameter offsets */
  layer_off *lo;                      /* (L) */
  layer_act *la;                      /* (L) */
  float *encoded, *lnf, *lnf_mean, *lnf_rstd, *logits, *probs;
  /* gradient scratch */
  float *dres, *dln, *datty, *dqkv, *dfch, *dfch_gelu, *dlogits, *datt_scratch, *tmp;
  float *gemm_scratch; /* for products of inner dimension up to max(4C, V, B*T) */
} transformer;

/* Forward through every block for the batch's B sequences; returns the summed loss over all
 * B*T positions. */
static double tf_forward_pass(wl_model *m, const float *p, const wl_batch *b, long *correct)
{
  transformer *s = m->impl;
  int B = b->B, T = s->T, C = s->C, N = B * T;
  wl_embedding_forward(s->encoded, b->tok, p + s->wte, p + s->wpe, B, T, C);
  const float *x = s->encoded;
  for (int l = 0; l < s->L; l++) {
    const layer_off *o = &s->lo[l];
    layer_act *a = &s->la[l];
    wl_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, p + o->ln1w, p + o->ln1b, N, C);
    float *ws = s->gemm_scratch;
    wl_matmul_forward(a->qkv, a->ln1, p + o->qkvw, p + o->qkvb, N, C, 3 * C, ws);
    wl_attention_forward(a->atty, a->att, a->qkv, B, T, C, s->NH, ws);
    wl_matmul_forward(s->tmp, a->atty, p + o->projw, p + o->projb, N, C, C, ws);
    for (size_t i = 0; i < (size_t)N * C; i++)
      a->res2[i] = x[i] + s->tmp[i];
    wl_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, p + o->ln2w, p + o->ln2b,
                         N, C);
    wl_matmul_forward(a->fch, a->ln2, p + o->fcw, p + o->fcb, N, C, 4 * C, ws);
    wl_gelu_tanh_forward_keep(a->fch_gelu, a->fch_tanh, a->fch, (size_t)N * 4 * C);
    wl_matmul_forward(s->tmp, a->fch_gelu, p + o->fcprojw, p + o->fcprojb, N, 4 * C, C, ws);
    for (size_t i = 0; i < (size_t)N * C; i++)
      a->res3[i] = a->res2[i] + s->tmp[i];
    x = a->res3;
  }
  wl_layernorm_forward(s->lnf, s->lnf_mean, s->lnf_rstd, x, p + s->lnfw, p + s->lnfb, N, C);
  wl_matmul_forward(s->logits, s->lnf, p + s->headw, NULL, N, C, s->V, s->gemm_scratch);
  return wl_xent_forward(s->probs, s->logits, b->y, N, s->V, correct);
}

static void zero(float *x, size_t n) { memset(x, 0, n * sizeof(float)); }

static double tf_step(wl_model *m, const float *p, float *g, const wl_batch *b)
{
  transformer *s = m->impl;
  int B = b->B, T = s->T, C = s->C, N = B * T;
  size_t NC = (size_t)N * C;
  float *ws = s->gemm_scratch;
  long correct = 0;
  double loss = tf_forward_pass(m, p, b, &correct);
  zero(g, m->nparams);
  zero(s->dlogits, (size_t)N * s->V);
  wl_xent_backward(s->dlogits, s->probs, b->y, N, s->V, 1.0f / (float)N);
  /* each matrix product's backward sets its input gradient, and its weight and bias
   * gradients (each written by that product first: a tied head before the embedding adds
   * to it), rather than adding to zeros: the same bits */
  wl_matmul_backward(s->dln, g + s->headw, NULL, s->dlogits, s->lnf, p + s->headw, N, C, s->V,
                     0, ws);
  zero(s->dres, NC);
  const float *top = s->la[s->L - 1].res3;
  wl_layernorm_backward(s->dres, g + s->lnfw, g + s->lnfb, s->dln, top, p + s->lnfw,
                        s->lnf_mean, s->lnf_rstd, N, C);
  for (int l = s->L - 1; l >= 0; l--) {
    const layer_off *o = &s->lo[l];
    const layer_act *a = &s->la[l];
    const float *x = l > 0 ? s->la[l - 1].res3 : s->encoded;
    /* dres = d res3; the MLP branch */
    wl_matmul_backward(s->dfch_gelu, g + o->fcprojw, g + o->fcprojb, s->dres, a->fch_gelu,
                       p + o->fcprojw, N, 4 * C, C, 0, ws);
    zero(s->dfch, 4 * NC);
    wl_gelu_tanh_backward_kept(s->dfch, a->fch, a->fch_tanh, s->dfch_gelu, 4 * NC);
    wl_matmul_backward(s->dln, g + o->fcw, g + o->fcb, s->dfch, a->ln2, p + o->fcw, N, C,
                       4 * C, 0, ws);
    wl_layernorm_backward(s->dres, g + o->ln2w, g + o->ln2b, s->dln, a->res2, p + o->ln2w,
                          a->ln2_mean, a->ln2_rstd, N, C);
    /* dres = d res2; the attention branch */
    wl_matmul_backward(s->datty, g + o->projw, g + o->projb, s->dres, a->atty, p + o->projw, N,
                       C, C, 0, ws);
    zero(s->dqkv, 3 * NC);
    wl_attention_backward(s->dqkv, s->datt_scratch, s->datty, a->qkv, a->att, B, T, C, s->NH,
                          ws);
    wl_matmul_backward(s->dln, g + o->qkvw, g + o->qkvb, s->dqkv, a->ln1, p + o->qkvw, N, C,
                       3 * C, 0, ws);
    wl_layernorm_backward(s->dres, g + o->ln1w, g + o->ln1b, s->dln, x, p + o->ln1w,
                          a->ln1_mean, a->ln1_rstd, N, C);
    /* dres = d x */
  }
  wl_embedding_backward(g + s->wte, g + s->wpe, s->dres, b->tok, B, T, C);
  return loss / N;
}

static void tf_forward(wl_model *m, const float *p, const wl_batch *b, double *loss_sum,
                       long *correct, long *count)
{
  const transformer *s = m->impl;
  *loss_sum += tf_forward_pass(m, p, b, correct);
  *count += (long)b->B * s->T;
}

static void tf_init(const wl_model *m, float *p, gsl_rng *r)
{
  const transformer *s = m->impl;
  size_t C = (size_t)s->C;
  double resid_sd = 0.02 / sqrt(2.0 * s->L);
  wl_fill_gaussian(p + s->wte, (size_t)s->V * C, 0.02, r);
  wl_fill_gaussian(p + s->wpe, (size_t)s->T * C, 0.02, r);
  for (int l = 0; l < s->L; l++) {
    const layer_off *o = &s->lo[l];
    for (size_t c = 0; c < C; c++) {
      p[o->ln1w + c] = p[o->ln2w + c] = 1.0f;
      p[o->ln1b + c] = p[o->ln2b + c] = p[o->projb + c] = p[o->fcprojb + c] = 0.0f;
    }
    zero(p + o->qkvb, 3 * C);
    zero(p + o->fcb, 4 * C);
    wl_fill_gaussian(p + o->qkvw, 3 * C * C, 0.02, r);
    wl_fill_gaussian(p + o->projw, C * C, resid_sd, r);
    wl_fill_gaussian(p + o->fcw, 4 * C * C, 0.02, r);
    wl_fill_gaussian(p + o->fcprojw, 4 * C * C, resid_sd, r);
  }
  for (size_t c = 0; c < C; c++) {
    p[s->lnfw + c] = 1.0f;
    p[s->lnfb + c] = 0.0f;
  }
  if (s->headw != s->wte)
    wl_fill_gaussian(p + s->headw, (size_t)s->V * C, 0.02, r);
}

/* Per example (T positions): each block's four linear maps, 12C^2 weights, cost 2 flops per
 * weight and position forward and 4 backward; attention's two T x T products per head cost
 * 4T^2C forward and 8T^2C backward (the masked half is computed too); the head 2VC forward
 * and 4VC backward per position. */
static double tf_flops(const wl_model *m)
{
  const transformer *s = m->impl;
  double T = s->T, C = s->C, V = s->V;
  return s->L * (72.0 * T * C * C + 12.0 * T * T * C) + 6.0 * T * V * C;
}

static void tf_destroy(wl_model *m)
{
  transformer *s = m->impl;
  if (!s)
    return;
  free(s->lo);
  free(s->la);
  free(s);
}

static const wl_model_ops tf_ops = {tf_flops, tf_init, tf_step, tf_forward, tf_destroy};

static float *take(float **p, size_t n)
{
  float *x = *p;
  *p += n;
  return x;
}

wl_status wl_transformer_create(wl_model *m)
{
  transformer *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  m->impl = s;
  m->ops = &tf_ops;
  s->V = m->C;
  s->T = m->cfg.context;
  s->C = m->cfg.width;
  s->NH = m->cfg.heads;
  s->L = m->cfg.layers;
  WL_ASSERT(m->D == s->T && s->C % s->NH == 0);
  s->lo = calloc((size_t)s->L, sizeof *s->lo);
  s->la = calloc((size_t)s->L, sizeof *s->la);
  if (!s->lo || !s->la)
    return WL_ENOMEM;
  size_t V = (size_t)s->V, T = (size_t)s->T, C = (size_t)s->C;
  s->wte = wl_model_add_tensor(m, V * C, WL_TENSOR_EMBED, "wte", 0);
  s->wpe = wl_model_add_tensor(m, T * C, WL_TENSOR_EMBED, "wpe", 0);
  for (int l = 0; l < s->L; l++) {
    layer_off *o = &s->lo[l];
    o->ln1w = wl_model_add_tensor(m, C, WL_TENSOR_NORM, "h%d.ln1.w", l);
    o->ln1b = wl_model_add_tensor(m, C, WL_TENSOR_NORM, "h%d.ln1.b", l);
    o->qkvw = wl_model_add_tensor(m, 3 * C * C, WL_TENSOR_WEIGHT, "h%d.qkv.w", l);
    o->qkvb = wl_model_add_tensor(m, 3 * C, WL_TENSOR_BIAS, "h%d.qkv.b", l);
    o->projw = wl_model_add_tensor(m, C * C, WL_TENSOR_WEIGHT, "h%d.proj.w", l);
    o->projb = wl_model_add_tensor(m, C, WL_TENSOR_BIAS, "h%d.proj.b", l);
    o->ln2w = wl_model_add_tensor(m, C, WL_TENSOR_NORM, "h%d.ln2.w", l);
    o->ln2b = wl_model_add_tensor(m, C, WL_TENSOR_NORM, "h%d.ln2.b", l);
    o->fcw = wl_model_add_tensor(m, 4 * C * C, WL_TENSOR_WEIGHT, "h%d.fc.w", l);
    o->fcb = wl_model_add_tensor(m, 4 * C, WL_TENSOR_BIAS, "h%d.fc.b", l);
    o->fcprojw = wl_model_add_tensor(m, 4 * C * C, WL_TENSOR_WEIGHT, "h%d.fcproj.w", l);
    o->fcprojb = wl_model_add_tensor(m, C, WL_TENSOR_BIAS, "h%d.fcproj.b", l);
  }
  s->lnfw = wl_model_add_tensor(m, C, WL_TENSOR_NORM, "lnf.w", 0);
  s->lnfb = wl_model_add_tensor(m, C, WL_TENSOR_NORM, "lnf.b", 0);
  s->headw = m->cfg.tie_embeddings
               ? s->wte
               : wl_model_add_tensor(m, V * C, WL_TENSOR_WEIGHT, "head.w", 0);

  size_t N = (size_t)m->max_batch * T, NH = (size_t)s->NH, B = (size_t)m->max_batch;
  size_t kmax = 4 * C > V ? 4 * C : V;
  kmax = N > kmax ? N : kmax; /* also covers T and the head size */
  /* in double: L times a layer's activations can exceed size_t at the keys' extremes */
  double n = (double)N, c = (double)C, v = (double)V;
  double per_layer = n * c * 20 + n * 4 + (double)B * (double)NH * (double)T * (double)T;
  double total = s->L * per_layer + n * c * 2 + n * 2 + n * v * 2     /* forward */
                 + n * c * 4 + n * 3 * c + n * 8 * c + n * v + (double)T * (double)T /* grads */
                 + (double)wl_gemm_scratch_floats(kmax);
  wl_status st = wl_model_alloc_work(m, total);
  if (st != WL_OK || m->measure)
    return st;
  float *w = m->work;
  for (int l = 0; l < s->L; l++) {
    layer_act *a = &s->la[l];
    a->ln1 = take(&w, N * C);
    a->ln1_mean = take(&w, N);
    a->ln1_rstd = take(&w, N);
    a->qkv = take(&w, N * 3 * C);
    a->atty = take(&w, N * C);
    a->att = take(&w, B * NH * T * T);
    a->res2 = take(&w, N * C);
    a->ln2 = take(&w, N * C);
    a->ln2_mean = take(&w, N);
    a->ln2_rstd = take(&w, N);
    a->fch = take(&w, N * 4 * C);
    a->fch_gelu = take(&w, N * 4 * C);
    a->fch_tanh = take(&w, N * 4 * C);
    a->res3 = take(&w, N * C);
  }
  s->encoded = take(&w, N * C);
  s->lnf = take(&w, N * C);
  s->lnf_mean = take(&w, N);
  s->lnf_rstd = take(&w, N);
  s->logits = take(&w, N * V);
  s->probs = take(&w, N * V);
  s->dres = take(&w, N * C);
  s->dln = take(&w, N * C);
  s->datty = take(&w, N * C);
  s->tmp = take(&w, N * C);
  s->dqkv = take(&w, N * 3 * C);
  s->dfch = take(&w, N * 4 * C);
  s->dfch_gelu = take(&w, N * 4 * C);
  s->dlogits = take(&w, N * V);
  s->datt_scratch = take(&w, T * T);
  s->gemm_scratch = take(&w, wl_gemm_scratch_floats(kmax));
  WL_ASSERT((double)(w - m->work) == total);
  return WL_OK;
}
