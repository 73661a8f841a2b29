/* Double-precision reference forward passes, written independently of workloads/ (naive
 * loops, no BLAS), for finite-difference gradient checks: the float kernels' analytic
 * gradients are compared with central differences of these. Shapes as in wl_kernels.h. */
#ifndef REF_DOUBLE_H
#define REF_DOUBLE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* out (N,OC) = in (N,C) w^T (OC,C) + bias (OC, may be NULL) */
static inline void ref_matmul(double *out, const double *in, const double *w, const double *bias,
                              int N, int C, int OC)
{
  for (int i = 0; i < N; i++)
    for (int o = 0; o < OC; o++) {
      double s = bias ? bias[o] : 0.0;
      for (int c = 0; c < C; c++)
        s += in[(size_t)i * C + c] * w[(size_t)o * C + c];
      out[(size_t)i * OC + o] = s;
    }
}

static inline void ref_relu(double *out, const double *in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = in[i] > 0 ? in[i] : 0;
}

static inline void ref_gelu(double *out, const double *in, size_t n)
{
  const double k = sqrt(2.0 / 3.14159265358979323846);
  for (size_t i = 0; i < n; i++) {
    double x = in[i];
    out[i] = 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
  }
}

/* x Phi(x), the exact GELU */
static inline void ref_gelu_erf(double *out, const double *in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = 0.5 * in[i] * (1.0 + erf(in[i] / sqrt(2.0)));
}

/* mean over N rows of -log softmax(logits)[target] */
static inline double ref_xent_mean(const double *logits, const int32_t *t, int N, int V)
{
  double total = 0;
  for (int i = 0; i < N; i++) {
    const double *z = logits + (size_t)i * V;
    double mx = z[0];
    for (int v = 1; v < V; v++)
      mx = z[v] > mx ? z[v] : mx;
    double s = 0;
    for (int v = 0; v < V; v++)
      s += exp(z[v] - mx);
    total += log(s) + mx - z[t[i]];
  }
  return total / N;
}

static inline void ref_layernorm(double *out, const double *in, const double *w, const double *b,
                                 int N, int C)
{
  for (int i = 0; i < N; i++) {
    const double *x = in + (size_t)i * C;
    double m = 0, v = 0;
    for (int c = 0; c < C; c++)
      m += x[c];
    m /= C;
    for (int c = 0; c < C; c++)
      v += (x[c] - m) * (x[c] - m);
    v /= C;
    double s = 1.0 / sqrt(v + 1e-5);
    for (int c = 0; c < C; c++)
      out[(size_t)i * C + c] = (x[c] - m) * s * w[c] + b[c];
  }
}

static inline void ref_embedding(double *out, const int32_t *tok, const double *wte,
                                 const double *wpe, int B, int T, int C)
{
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int c = 0; c < C; c++)
        out[((size_t)b * T + t) * C + c] =
          wte[(size_t)tok[b * T + t] * C + c] + wpe[(size_t)t * C + c];
}

/* causal attention: qkv (B,T,3C) -> out (B,T,C); scratch (T) */
static inline void ref_attention(double *out, const double *qkv, int B, int T, int C, int NH,
                                 double *scratch)
{
  int hs = C / NH;
  double scale = 1.0 / sqrt((double)hs);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int t = 0; t < T; t++) {
        const double *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
        double mx = -INFINITY;
        for (int j = 0; j <= t; j++) {
          const double *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hs;
          double s = 0;
          for (int i = 0; i < hs; i++)
            s += q[i] * k[i];
          scratch[j] = s * scale;
          mx = scratch[j] > mx ? scratch[j] : mx;
        }
        double sum = 0;
        for (int j = 0; j <= t; j++) {
          scratch[j] = exp(scratch[j] - mx);
          sum += scratch[j];
        }
        double *o = out + ((size_t)b * T + t) * C + h * hs;
        for (int i = 0; i < hs; i++)
          o[i] = 0;
        for (int j = 0; j <= t; j++) {
          const double *v = qkv + ((size_t)b * T + j) * 3 * C + 2 * C + h * hs;
          for (int i = 0; i < hs; i++)
            o[i] += scratch[j] / sum * v[i];
        }
      }
}

#endif
