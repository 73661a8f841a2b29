#include "wl_kernels.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wl_math.h"

/* ---- code paths ------------------------------------------------------------------------ */

typedef void gemm_fn(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc, float *scratch);

/* wl_gemm_isa.c, one build per path */
gemm_fn wl_gemm_portable;
#ifdef WL_HAVE_X86_PATHS
gemm_fn wl_gemm_avx2, wl_gemm_avx512;
static gemm_fn *const gemm_paths[WL_ISA_COUNT] = {wl_gemm_portable, wl_gemm_avx2,
                                                   wl_gemm_avx512};
#else
static gemm_fn *const gemm_paths[WL_ISA_COUNT] = {wl_gemm_portable, NULL, NULL};
#endif

static const char *const isa_names[WL_ISA_COUNT] = {"portable", "avx2", "avx512"};

static atomic_int isa_in_use = -1; /* -1: not chosen yet */

const char *wl_isa_name(wl_isa isa)
{
  return isa >= 0 && isa < WL_ISA_COUNT ? isa_names[isa] : "?";
}

int wl_isa_supported(wl_isa isa)
{
  if (isa < 0 || isa >= WL_ISA_COUNT || !gemm_paths[isa])
    return 0;
#ifdef WL_HAVE_X86_PATHS
  __builtin_cpu_init();
  if (isa == WL_ISA_AVX2)
    return __builtin_cpu_supports("avx2");
  if (isa == WL_ISA_AVX512)
    return __builtin_cpu_supports("avx512f");
#endif
  return 1;
}

static wl_isa isa_best(void)
{
  for (int i = WL_ISA_COUNT - 1; i > 0; i--)
    if (wl_isa_supported((wl_isa)i))
      return (wl_isa)i;
  return WL_ISA_PORTABLE;
}

wl_status wl_isa_set(wl_isa isa)
{
  if (!wl_isa_supported(isa))
    return WL_ECONFIG;
  atomic_store(&isa_in_use, (int)isa);
  return WL_OK;
}

wl_status wl_isa_from_env(char *err, size_t err_size)
{
  const char *v = getenv("SYNCSIM_KERNELS");
  if (!v || !*v || strcmp(v, "auto") == 0)
    return wl_isa_set(isa_best());
  for (int i = 0; i < WL_ISA_COUNT; i++)
    if (strcmp(v, isa_names[i]) == 0) {
      if (wl_isa_set((wl_isa)i) == WL_OK)
        return WL_OK;
      snprintf(err, err_size, "SYNCSIM_KERNELS: this machine cannot run the %s path; "
               "expected auto or one of:%s%s%s", v, " portable",
               wl_isa_supported(WL_ISA_AVX2) ? " avx2" : "",
               wl_isa_supported(WL_ISA_AVX512) ? " avx512" : "");
      return WL_ECONFIG;
    }
  snprintf(err, err_size, "SYNCSIM_KERNELS: expected auto, portable, avx2 or avx512, got '%s'",
           v);
  return WL_ECONFIG;
}

wl_isa wl_isa_current(void)
{
  int isa = atomic_load(&isa_in_use);
  if (isa < 0) {
    char err[160];
    if (wl_isa_from_env(err, sizeof err) != WL_OK) /* the CLI has reported it already */
      wl_isa_set(isa_best());
    isa = atomic_load(&isa_in_use);
  }
  return (wl_isa)isa;
}

/* ---- matrix product --------------------------------------------------------------------- */

static _Thread_local wl_gemm_call *trace_calls;
static _Thread_local int trace_cap;
static _Thread_local int *trace_n;

void wl_gemm_trace_begin(wl_gemm_call *calls, int cap, int *n)
{
  trace_calls = calls;
  trace_cap = cap;
  trace_n = n;
  *n = 0;
}

void wl_gemm_trace_end(void)
{
  trace_calls = NULL;
  trace_n = NULL;
}

/* Whether the spans of a (rows of cols at stride ld) and b overlap. */
static int spans_overlap(const float *a, int rows, int cols, int lda, const float *b, int brows,
                         int bcols, int ldb)
{
  if (rows <= 0 || cols <= 0 || brows <= 0 || bcols <= 0)
    return 0;
  uintptr_t a0 = (uintptr_t)a, a1 = (uintptr_t)(a + (size_t)(rows - 1) * lda + cols);
  uintptr_t b0 = (uintptr_t)b, b1 = (uintptr_t)(b + (size_t)(brows - 1) * ldb + bcols);
  return a0 < b1 && b0 < a1;
}

void wl_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc, float *scratch)
{
  /* the paths read A and B while writing C (the AVX-512 path's reads of A are invisible to
     the compiler): C must overlap neither */
  WL_ASSERT(!spans_overlap(C, M, N, ldc, A, trans_a ? K : M, trans_a ? M : K, lda) &&
            !spans_overlap(C, M, N, ldc, B, trans_b ? N : K, trans_b ? K : N, ldb));
  if (trace_n) {
    if (*trace_n < trace_cap)
      trace_calls[*trace_n] = (wl_gemm_call){trans_a, trans_b, M, N, K, lda, ldb, ldc,
                                             alpha, beta, A, B, C, scratch};
    (*trace_n)++;
  }
  gemm_paths[wl_isa_current()](trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                               scratch);
}

void wl_gemm_replay(const wl_gemm_call *calls, int n)
{
  for (int i = 0; i < n; i++) {
    const wl_gemm_call *c = &calls[i];
    wl_gemm(c->trans_a, c->trans_b, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb,
            c->beta, c->C, c->ldc, c->scratch);
  }
}

double wl_gemm_flops(const wl_gemm_call *calls, int n)
{
  double f = 0;
  for (int i = 0; i < n; i++)
    f += 2.0 * calls[i].M * calls[i].N * calls[i].K;
  return f;
}

/* ---- matmul ----------------------------------------------------------------------------- */

void wl_matmul_forward(float *out, const float *in, const float *w, const float *bias, int N,
                       int C, int OC, float *scratch)
{
  if (bias) {
    for (int i = 0; i < N; i++)
      memcpy(out + (size_t)i * OC, bias, (size_t)OC * sizeof(float));
  }
  wl_gemm(0, 1, N, OC, C, 1.0f, in, C, w, C, bias ? 1.0f : 0.0f, out, OC, scratch);
}

void wl_matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, int N, int C, int OC, int accumulate, float *scratch)
{
  enum { CHUNK = 64 };
  const float beta = accumulate ? 1.0f : 0.0f;
  if (din)
    wl_gemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, din, C, scratch);
  wl_gemm(1, 0, OC, C, N, 1.0f, dout, OC, in, C, beta, dw, C, scratch);
  if (!dbias)
    return;
  for (int o0 = 0; o0 < OC; o0 += CHUNK) {
    int n = OC - o0 < CHUNK ? OC - o0 : CHUNK;
    double sum[CHUNK] = {0};
    for (int i = 0; i < N; i++) {
      const float *row = dout + (size_t)i * OC + o0;
      for (int o = 0; o < n; o++)
        sum[o] += row[o];
    }
    for (int o = 0; o < n; o++)
      dbias[o0 + o] = accumulate ? dbias[o0 + o] + (float)sum[o] : (float)sum[o];
  }
}

/* ---- activations ------------------------------------------------------------------------ */

/* wl_act_isa.c, one build per path: the activations, element by element (the same bits on
 * every path). */
typedef struct act_fns {
  void (*unary)(int kind, float *out, const float *in, size_t n);
  void (*backward)(int kind, float *din, const float *in, const float *dout, size_t n);
  void (*exp_shifted)(float *x, float shift, size_t n);
  void (*gelu_keep)(float *out, float *th, const float *in, size_t n);
  void (*gelu_kept)(float *din, const float *in, const float *th, const float *dout, size_t n);
} act_fns;
#define ACT_PATH(p)                                                                      \
  void wl_act_forward_##p(int kind, float *out, const float *in, size_t n);             \
  void wl_act_backward_##p(int kind, float *din, const float *in, const float *dout,    \
                           size_t n);                                                   \
  void wl_exp_shifted_##p(float *x, float shift, size_t n);                             \
  void wl_gelu_tanh_forward_keep_##p(float *out, float *th, const float *in, size_t n); \
  void wl_gelu_tanh_backward_kept_##p(float *din, const float *in, const float *th,     \
                                      const float *dout, size_t n);
#define ACT_FNS(p)                                                                       \
  {wl_act_forward_##p, wl_act_backward_##p, wl_exp_shifted_##p,                          \
   wl_gelu_tanh_forward_keep_##p, wl_gelu_tanh_backward_kept_##p}
ACT_PATH(portable)
#ifdef WL_HAVE_X86_PATHS
ACT_PATH(avx2)
ACT_PATH(avx512)
static const act_fns act_paths[WL_ISA_COUNT] = {ACT_FNS(portable), ACT_FNS(avx2),
                                                ACT_FNS(avx512)};
#else
static const act_fns act_paths[WL_ISA_COUNT] = {ACT_FNS(portable), {NULL}, {NULL}};
#endif

/* x = e^(x - shift) with wl_expf, element by element, in place */
static void exp_shifted(float *x, float shift, size_t n)
{
  act_paths[wl_isa_current()].exp_shifted(x, shift, n);
}

void wl_relu_forward(float *out, const float *in, size_t n)
{
  act_paths[wl_isa_current()].unary(WL_ACT_KIND_RELU, out, in, n);
}

void wl_relu_backward(float *din, const float *in, const float *dout, size_t n)
{
  act_paths[wl_isa_current()].backward(WL_ACT_KIND_RELU, din, in, dout, n);
}

void wl_gelu_tanh_forward(float *out, const float *in, size_t n)
{
  act_paths[wl_isa_current()].unary(WL_ACT_KIND_GELU_TANH, out, in, n);
}

void wl_gelu_tanh_backward(float *din, const float *in, const float *dout, size_t n)
{
  act_paths[wl_isa_current()].backward(WL_ACT_KIND_GELU_TANH, din, in, dout, n);
}

void wl_gelu_tanh_forward_keep(float *out, float *th, const float *in, size_t n)
{
  act_paths[wl_isa_current()].gelu_keep(out, th, in, n);
}

void wl_gelu_tanh_backward_kept(float *din, const float *in, const float *th,
                                const float *dout, size_t n)
{
  act_paths[wl_isa_current()].gelu_kept(din, in, th, dout, n);
}

void wl_gelu_erf_forward(float *out, const float *in, size_t n)
{
  act_paths[wl_isa_current()].unary(WL_ACT_KIND_GELU_ERF, out, in, n);
}

void wl_gelu_erf_backward(float *din, const float *in, const float *dout, size_t n)
{
  act_paths[wl_isa_current()].backward(WL_ACT_KIND_GELU_ERF, din, in, dout, n);
}

/* ---- softmax cross-entropy -------------------------------------------------------------- */

double wl_xent_forward(float *probs, const float *logits, const int32_t *targets, int N, int V,
                       long *correct)
{
  double total = 0;
  for (int i = 0; i < N; i++) {
    const float *z = logits + (size_t)i * V;
    float *p = probs + (size_t)i * V;
    int best = 0;
    for (int v = 1; v < V; v++)
      best = z[v] > z[best] ? v : best;
    float mx = z[best];
    memcpy(p, z, (size_t)V * sizeof *p);
    exp_shifted(p, mx, (size_t)V);
    double sum = 0;
    for (int v = 0; v < V; v++)
      sum += p[v];
    int32_t y = targets[i];
    WL_ASSERT(y >= 0 && y < V);
    total += wl_log(sum) - ((double)z[y] - (double)mx);
    *correct += best == y;
    float inv = (float)(1.0 / sum);
    for (int v = 0; v < V; v++)
      p[v] *= inv;
  }
  return total;
}

void wl_xent_backward(float *dlogits, const float *probs, const int32_t *targets, int N, int V,
                      float scale)
{
  for (int i = 0; i < N; i++) {
    float *d = dlogits + (size_t)i * V;
    const float *p = probs + (size_t)i * V;
    for (int v = 0; v < V; v++)
      d[v] += scale * p[v];
    d[targets[i]] -= scale;
  }
}

/* ---- layernorm ---------------------------------------------------------------------------- */

#define LN_EPS 1e-5f

/* Rows are normalized LN_ROWS at a time, their sums interleaved: each row's sums still run
 * over its columns in order (the same bits as one row at a time), but the rows' dependency
 * chains overlap. A last group short of LN_ROWS repeats its last row, discarded. */
#define LN_ROWS 8

void wl_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *w, const float *b, int N, int C)
{
  for (int i0 = 0; i0 < N; i0 += LN_ROWS) {
    const int g = N - i0 < LN_ROWS ? N - i0 : LN_ROWS;
    const float *x[LN_ROWS];
    float m[LN_ROWS], v[LN_ROWS], s[LN_ROWS];
    for (int k = 0; k < LN_ROWS; k++) {
      x[k] = in + (size_t)(i0 + (k < g ? k : g - 1)) * C;
      m[k] = v[k] = 0;
    }
    for (int c = 0; c < C; c++)
      for (int k = 0; k < LN_ROWS; k++)
        m[k] += x[k][c];
    for (int k = 0; k < LN_ROWS; k++)
      m[k] /= (float)C;
    for (int c = 0; c < C; c++)
      for (int k = 0; k < LN_ROWS; k++)
        v[k] += (x[k][c] - m[k]) * (x[k][c] - m[k]);
    for (int k = 0; k < g; k++) {
      v[k] /= (float)C;
      s[k] = 1.0f / sqrtf(v[k] + LN_EPS);
      float *o = out + (size_t)(i0 + k) * C;
      for (int c = 0; c < C; c++)
        o[c] = (x[k][c] - m[k]) * s[k] * w[c] + b[c];
      mean[i0 + k] = m[k];
      rstd[i0 + k] = s[k];
    }
  }
}

void wl_layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, const float *mean, const float *rstd, int N, int C)
{
  for (int i0 = 0; i0 < N; i0 += LN_ROWS) {
    const int g = N - i0 < LN_ROWS ? N - i0 : LN_ROWS;
    const float *x[LN_ROWS], *dy[LN_ROWS];
    float m[LN_ROWS], s[LN_ROWS], dnorm_mean[LN_ROWS], dnorm_xhat_mean[LN_ROWS];
    for (int k = 0; k < LN_ROWS; k++) {
      int i = i0 + (k < g ? k : g - 1);
      x[k] = in + (size_t)i * C, dy[k] = dout + (size_t)i * C;
      m[k] = mean[i], s[k] = rstd[i];
      dnorm_mean[k] = dnorm_xhat_mean[k] = 0;
    }
    /* dnorm = dy * w; dx = s * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)) */
    for (int c = 0; c < C; c++)
      for (int k = 0; k < LN_ROWS; k++) {
        float xhat = (x[k][c] - m[k]) * s[k];
        float dnorm = dy[k][c] * w[c];
        dnorm_mean[k] += dnorm;
        dnorm_xhat_mean[k] += dnorm * xhat;
      }
    for (int k = 0; k < g; k++) {
      dnorm_mean[k] /= (float)C;
      dnorm_xhat_mean[k] /= (float)C;
    }
    /* dw and db sum over rows in row order, as one row at a time would */
    for (int k = 0; k < g; k++) {
      float *dx = din + (size_t)(i0 + k) * C;
      for (int c = 0; c < C; c++) {
        float xhat = (x[k][c] - m[k]) * s[k];
        float dnorm = dy[k][c] * w[c];
        db[c] += dy[k][c];
        dw[c] += xhat * dy[k][c];
        dx[c] += s[k] * (dnorm - dnorm_mean[k] - xhat * dnorm_xhat_mean[k]);
      }
    }
  }
}

/* ---- embedding ---------------------------------------------------------------------------- */

void wl_embedding_forward(float *out, const int32_t *tok, const float *wte, const float *wpe,
                          int B, int T, int C)
{
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *o = out + ((size_t)b * T + t) * C;
      const float *e = wte + (size_t)tok[b * T + t] * C, *p = wpe + (size_t)t * C;
      for (int c = 0; c < C; c++)
        o[c] = e[c] + p[c];
    }
}

void wl_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok,
                           int B, int T, int C)
{
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *d = dout + ((size_t)b * T + t) * C;
      float *de = dwte + (size_t)tok[b * T + t] * C, *dp = dwpe + (size_t)t * C;
      for (int c = 0; c < C; c++) {
        de[c] += d[c];
        dp[c] += d[c];
      }
    }
}

/* ---- causal self-attention ---------------------------------------------------------------- */

/* Row-wise causal softmax of s (T,T) in place: row t over columns 0..t, zero after. */
static void causal_softmax(float *s, int T)
{
  for (int t = 0; t < T; t++) {
    float *row = s + (size_t)t * T;
    float mx = -FLT_MAX;
    for (int j = 0; j <= t; j++)
      mx = row[j] > mx ? row[j] : mx;
    exp_shifted(row, mx, (size_t)t + 1);
    float sum = 0;
    for (int j = 0; j <= t; j++)
      sum += row[j];
    float inv = 1.0f / sum;
    for (int j = 0; j <= t; j++)
      row[j] *= inv;
    for (int j = t + 1; j < T; j++)
      row[j] = 0.0f;
  }
}

void wl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                          float *scratch)
{
  int hs = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs;
      const float *k = q + C, *v = q + 2 * C;
      float *a = att + ((size_t)b * NH + h) * T * T;
      /* a (T,T) = scale * q (T,hs) k^T (hs,T), then causal softmax */
      wl_gemm(0, 1, T, T, hs, scale, q, C3, k, C3, 0.0f, a, T, scratch);
      causal_softmax(a, T);
      /* out (T,hs), row stride C = a (T,T) v (T,hs) */
      wl_gemm(0, 0, T, hs, T, 1.0f, a, T, v, C3, 0.0f, out + (size_t)b * T * C + (size_t)h * hs,
              C, scratch);
    }
}

void wl_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                           const float *att, int B, int T, int C, int NH, float *scratch)
{
  int hs = C / NH, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      size_t off = (size_t)b * T * C3 + (size_t)h * hs;
      const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
      float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
      const float *a = att + ((size_t)b * NH + h) * T * T;
      const float *dy = dout + (size_t)b * T * C + (size_t)h * hs;
      /* dv (T,hs) += a^T dy;  da (T,T) = dy v^T */
      wl_gemm(1, 0, T, hs, T, 1.0f, a, T, dy, C, 1.0f, dv, C3, scratch);
      wl_gemm(0, 1, T, T, hs, 1.0f, dy, C, v, C3, 0.0f, datt, T, scratch);
      /* softmax backward: ds = a * (da - sum_j a da), in place in datt */
      for (int t = 0; t < T; t++) {
        const float *ar = a + (size_t)t * T;
        float *dr = datt + (size_t)t * T;
        float dot = 0;
        for (int j = 0; j <= t; j++)
          dot += ar[j] * dr[j];
        for (int j = 0; j <= t; j++)
          dr[j] = ar[j] * (dr[j] - dot);
        for (int j = t + 1; j < T; j++)
          dr[j] = 0.0f;
      }
      /* dq (T,hs) += scale ds k;  dk (T,hs) += scale ds^T q */
      wl_gemm(0, 0, T, hs, T, scale, datt, T, k, C3, 1.0f, dq, C3, scratch);
      wl_gemm(1, 0, T, hs, T, scale, datt, T, q, C3, 1.0f, dk, C3, scratch);
    }
}
