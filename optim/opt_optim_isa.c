/* The optimizers' element loops and the sums across replicas, for one instruction set
 * (opt_optim_isa.h). This file is compiled once per code path, with the matrix product
 * (CMakeLists.txt); WL_GEMM_SUFFIX is the function's suffix. The loops run across elements
 * only: no sum crosses elements (a sum across replicas is one element's, in replica order). */
#include "opt_optim.h"
#include "opt_optim_isa.h"
#include "opt_replica.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, WL_GEMM_SUFFIX)

static void sgd_family(const opt_elem *e, float *restrict x, const float *restrict g,
                       float *restrict b, size_t n)
{
  const float lr = e->lr, wd = e->wd, mu = e->mu;
  if (e->opt == OPT_SGD) {
    for (size_t i = 0; i < n; i++)
      x[i] -= lr * (g[i] + wd * x[i]);
  } else if (e->opt == OPT_NESTEROV) {
    for (size_t i = 0; i < n; i++) {
      float gi = g[i] + wd * x[i];
      b[i] = mu * b[i] + gi;
      x[i] -= lr * (gi + mu * b[i]);
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      float gi = g[i] + wd * x[i];
      b[i] = mu * b[i] + gi;
      x[i] -= lr * b[i];
    }
  }
}

static void adamw(const opt_elem *e, float *restrict x, const float *restrict g,
                  float *restrict m, float *restrict v, size_t n)
{
  const float b1 = e->b1, b2 = e->b2, one_b1 = e->one_b1, one_b2 = e->one_b2;
  const float decay = e->decay, step_size = e->step_size, bc2_sqrt = e->bc2_sqrt, eps = e->eps;
  for (size_t i = 0; i < n; i++) {
    x[i] *= decay;
    m[i] = b1 * m[i] + one_b1 * g[i];
    v[i] = b2 * v[i] + one_b2 * g[i] * g[i];
    x[i] -= step_size * m[i] / (__builtin_sqrtf(v[i]) / bc2_sqrt + eps);
  }
}

static void delayed_nesterov(const opt_elem *e, float *restrict x, const float *restrict g,
                             float *restrict m, float *restrict acc, size_t n)
{
  const float mu = e->mu, inv_n = e->inv_n, eps = e->lr;
  if (e->flush) {
    const float mix = e->mix;
    for (size_t i = 0; i < n; i++) {
      m[i] = mu * m[i] + (acc[i] + g[i]) * inv_n;
      x[i] -= eps * (mix * mu * m[i] + g[i] * inv_n);
      acc[i] = 0.0f;
    }
  } else {
    const float cmu = e->cmu;
    for (size_t i = 0; i < n; i++) {
      acc[i] += g[i];
      x[i] -= eps * (cmu * m[i] + g[i] * inv_n);
    }
  }
}

void FN(opt_elem_step_)(const opt_elem *e, float *x, const float *g, float *s0, float *s1,
                        size_t n)
{
  if (e->opt == OPT_ADAMW)
    adamw(e, x, g, s0, s1, n);
  else if (e->opt == OPT_DELAYED_NESTEROV)
    delayed_nesterov(e, x, g, s0, s1, n);
  else
    sgd_family(e, x, g, s0, n);
}

void FN(opt_elem_sum_)(const opt_sum *s, float *out, size_t lo, size_t hi)
{
  enum { CHUNK = 512 };
  double acc[CHUNK], total = 0;
  int count = 0;
  for (int k = 0; k < s->K; k++)
    if (!s->mask || s->mask[k]) {
      count++;
      total += s->weights ? s->weights[k] : 0;
    }
  for (size_t c0 = lo; c0 < hi; c0 += CHUNK) {
    const size_t len = hi - c0 < CHUNK ? hi - c0 : CHUNK;
    for (size_t i = 0; i < len; i++)
      acc[i] = 0.0;
    for (int k = 0; k < s->K; k++) {
      if (s->mask && !s->mask[k])
        continue;
      const opt_replica *r = &s->reps[k];
      const float *restrict x = (s->which == OPT_BUF_PARAMS ? r->params : r->grads) + c0;
      if (!s->z) {
        for (size_t i = 0; i < len; i++)
          acc[i] += x[i];
        continue;
      }
      const float *restrict z = s->z + c0;
      const double wk = s->weights ? s->weights[k] / total : 1.0 / count;
      for (size_t i = 0; i < len; i++)
        acc[i] += wk * ((double)z[i] - (double)x[i]);
    }
    if (s->z)
      for (size_t i = 0; i < len; i++)
        out[c0 + i] = (float)acc[i];
    else
      for (size_t i = 0; i < len; i++)
        out[c0 + i] = (float)(acc[i] / count);
  }
}
