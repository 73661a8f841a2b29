/* wl_kernels — forward/backward kernels on raw float buffers, matrix products on CBLAS.
 *
 * Shape letters, used in every argument comment:
 *   N rows (B*T, or B), C input channels, OC output channels, B batch, T time (sequence
 *   length), NH heads, hs = C/NH head size, V vocabulary or classes.
 * All buffers are row-major and contiguous unless a row stride is named.
 *
 * Conventions (as in llm.c): forward kernels overwrite their outputs; backward kernels
 * ACCUMULATE (+=) into every gradient they touch, so the caller zeroes gradients first. No
 * kernel allocates; kernels that need scratch take it as an argument.
 *
 * Every matrix product goes through wl_gemm, which can record the calls it makes
 * (wl_gemm_trace_begin) so that a benchmark can replay exactly the products of one step. */
#ifndef WL_KERNELS_H
#define WL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* C (M,N) = alpha * op(A) op(B) + beta * C, row-major; op(X) = X or X^T. op(A) is (M,K),
 * op(B) is (K,N); lda, ldb, ldc are row strides. */
void wl_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* One recorded wl_gemm call (pointers included, so it can be replayed). */
typedef struct wl_gemm_call {
  int trans_a, trans_b, M, N, K, lda, ldb, ldc;
  float alpha, beta;
  const float *A, *B;
  float *C;
} wl_gemm_call;

/* Record the next wl_gemm calls of this thread into calls (capacity cap); the count goes to
 * *n (calls beyond cap are counted, not stored). wl_gemm_trace_end stops recording. */
void wl_gemm_trace_begin(wl_gemm_call *calls, int cap, int *n);
void wl_gemm_trace_end(void);
void wl_gemm_replay(const wl_gemm_call *calls, int n);
double wl_gemm_flops(const wl_gemm_call *calls, int n); /* sum of 2*M*N*K */

/* out (N,OC) = in (N,C) w^T + bias;  w (OC,C), bias (OC) or NULL */
void wl_matmul_forward(float *out, const float *in, const float *w, const float *bias, int N,
                       int C, int OC);
/* din (N,C) += dout (N,OC) w (OC,C), skipped when din is NULL;
 * dw (OC,C) += dout^T in (N,C);  dbias (OC) += column sums of dout, skipped when NULL */
void wl_matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, int N, int C, int OC);

/* out (n) = max(in, 0) */
void wl_relu_forward(float *out, const float *in, size_t n);
/* din (n) += dout * [in > 0] */
void wl_relu_backward(float *din, const float *in, const float *dout, size_t n);

/* out (n) = GELU(in), tanh approximation (GPT-2) */
void wl_gelu_forward(float *out, const float *in, size_t n);
/* din (n) += dout * GELU'(in) */
void wl_gelu_backward(float *din, const float *in, const float *dout, size_t n);

/* Softmax cross-entropy. probs (N,V) = softmax(logits (N,V)) row-wise; returns the SUM over
 * rows of -log probs[target]; *correct += rows whose largest logit is the target (ties go to
 * the lowest index). targets (N) in [0, V). */
double wl_xent_forward(float *probs, const float *logits, const int32_t *targets, int N, int V,
                       long *correct);
/* dlogits (N,V) += scale * (probs - onehot(targets)); scale is d loss / d row loss (1/N for
 * a mean). */
void wl_xent_backward(float *dlogits, const float *probs, const int32_t *targets, int N, int V,
                      float scale);

/* out (N,C) = (in - mean) * rstd * w + b per row; saves mean (N) and rstd (N); eps 1e-5 */
void wl_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *w, const float *b, int N, int C);
/* din (N,C), dw (C), db (C) += the gradients given dout (N,C) */
void wl_layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, const float *mean, const float *rstd, int N, int C);

/* out (B,T,C) = wte[tok[b,t]] (V,C) + wpe[t] (T,C) */
void wl_embedding_forward(float *out, const int32_t *tok, const float *wte, const float *wpe,
                          int B, int T, int C);
/* dwte (V,C), dwpe (T,C) += the gradients given dout (B,T,C) */
void wl_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok,
                           int B, int T, int C);

/* Causal multi-head self-attention.
 * qkv (B,T,3C): per position, q (C) then k (C) then v (C), head h at channels h*hs..;
 * att (B,NH,T,T): saved softmax probabilities (zero above the diagonal);
 * out (B,T,C): per head, att . v, heads side by side. */
void wl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* dqkv (B,T,3C) += the gradient given dout (B,T,C); scratch (T,T). */
void wl_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int C, int NH);

#endif
