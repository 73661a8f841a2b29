/* wl_kernels — forward/backward kernels on raw float buffers, with the same bits on every
 * machine.
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
 * Determinism: every kernel is a fixed order of IEEE-754 operations, never fused (the build
 * sets -ffp-contract=off), and its elementary functions come from wl_math.h, not libm. The
 * matrix product has one code path per instruction set (portable, AVX2, AVX-512), chosen at
 * run time for speed; all compute every element by the same sequence of operations, so the
 * results do not depend on the path, the CPU, or a BLAS library's choice of kernel.
 *
 * Every matrix product goes through wl_gemm, which can record the calls it makes
 * (wl_gemm_trace_begin) so that a benchmark can replay exactly the products of one step. */
#ifndef WL_KERNELS_H
#define WL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "wl_status.h"

/* ---- code paths ------------------------------------------------------------------------ */

/* The matrix product's code paths. All give identical results; the best one the CPU runs is
 * used unless the environment variable SYNCSIM_KERNELS names another (portable, avx2,
 * avx512), which the tests use to run every path. */
typedef enum wl_isa { WL_ISA_PORTABLE = 0, WL_ISA_AVX2, WL_ISA_AVX512, WL_ISA_COUNT } wl_isa;

const char *wl_isa_name(wl_isa isa);
/* 1 when this build has the path and this CPU (and OS) can run it. */
int wl_isa_supported(wl_isa isa);
/* The path in use (chosen on first use: SYNCSIM_KERNELS when valid, else the best). */
wl_isa wl_isa_current(void);
/* Use isa from now on; WL_ECONFIG when this machine cannot run it. */
wl_status wl_isa_set(wl_isa isa);
/* Apply SYNCSIM_KERNELS (unset or "auto": the best path). WL_ECONFIG with a message naming
 * the valid and the supported paths when it names none this machine runs. */
wl_status wl_isa_from_env(char *err, size_t err_size);

/* ---- matrix product --------------------------------------------------------------------- */

/* The widest panel any path packs: scratch for a product of inner dimension K holds
 * WL_GEMM_NR_MAX * K floats. */
#define WL_GEMM_NR_MAX 96
static inline size_t wl_gemm_scratch_floats(size_t K) { return (size_t)WL_GEMM_NR_MAX * K; }

/* C (M,N) = alpha * op(A) op(B) + beta * C, row-major; op(X) = X or X^T. op(A) is (M,K),
 * op(B) is (K,N); lda, ldb, ldc are row strides; scratch holds wl_gemm_scratch_floats(K).
 * C and scratch overlap neither A nor B (A and B are only read).
 * Exactly, in float arithmetic with every operation rounded: for each element,
 *   s = 0;  s = s + op(A)[i,p] * op(B)[p,j]  for p = 0, 1, ..., K-1;
 *   C[i,j] = beta == 0 ? alpha * s : alpha * s + beta * C[i,j]   (C not read if beta == 0). */
void wl_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc, float *scratch);

/* One recorded wl_gemm call (pointers included, so it can be replayed). */
typedef struct wl_gemm_call {
  int trans_a, trans_b, M, N, K, lda, ldb, ldc;
  float alpha, beta;
  const float *A, *B;
  float *C, *scratch;
} wl_gemm_call;

/* Record the next wl_gemm calls of this thread into calls (capacity cap); the count goes to
 * *n (calls beyond cap are counted, not stored). wl_gemm_trace_end stops recording. */
void wl_gemm_trace_begin(wl_gemm_call *calls, int cap, int *n);
void wl_gemm_trace_end(void);
void wl_gemm_replay(const wl_gemm_call *calls, int n);
double wl_gemm_flops(const wl_gemm_call *calls, int n); /* sum of 2*M*N*K */

/* ---- layers ----------------------------------------------------------------------------- */

/* out (N,OC) = in (N,C) w^T + bias;  w (OC,C), bias (OC) or NULL; scratch for K = C */
void wl_matmul_forward(float *out, const float *in, const float *w, const float *bias, int N,
                       int C, int OC, float *scratch);
/* din (N,C) += dout (N,OC) w (OC,C), skipped when din is NULL;
 * dw (OC,C) += dout^T in (N,C);  dbias (OC) += column sums of dout (each summed in double,
 * rows in order, then rounded once), skipped when NULL; scratch for K = max(OC, N).
 * With accumulate 0, the three are set instead: the same bits as adding to zeros (a sum
 * that starts at +0 is never -0), without the zeroing. */
void wl_matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, int N, int C, int OC, int accumulate, float *scratch);

/* out (n) = max(in, 0) */
/* The activations' kinds, for their per-path builds (wl_act_isa.c). */
enum { WL_ACT_KIND_RELU, WL_ACT_KIND_GELU_TANH, WL_ACT_KIND_GELU_ERF };

void wl_relu_forward(float *out, const float *in, size_t n);
/* din (n) += dout * [in > 0] */
void wl_relu_backward(float *din, const float *in, const float *dout, size_t n);

/* out (n) = GELU(in) with the tanh approximation (GPT-2; PyTorch's approximate="tanh"):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void wl_gelu_tanh_forward(float *out, const float *in, size_t n);
/* din (n) += dout * GELU_tanh'(in) */
void wl_gelu_tanh_backward(float *din, const float *in, const float *dout, size_t n);
/* The same pair, the forward pass keeping th (n) = the tanh of each element for the
 * backward pass, which then computes none: the same bits as recomputing it. */
void wl_gelu_tanh_forward_keep(float *out, float *th, const float *in, size_t n);
void wl_gelu_tanh_backward_kept(float *din, const float *in, const float *th,
                                const float *dout, size_t n);

/* out (n) = GELU(in) = x Phi(x) = 0.5 x erfc(-x / sqrt 2) (PyTorch's default nn.GELU) */
void wl_gelu_erf_forward(float *out, const float *in, size_t n);
/* din (n) += dout * (Phi(x) + x phi(x)) */
void wl_gelu_erf_backward(float *din, const float *in, const float *dout, size_t n);

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
 * out (B,T,C): per head, att . v, heads side by side; scratch for K = max(T, hs). */
void wl_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                          float *scratch);
/* dqkv (B,T,3C) += the gradient given dout (B,T,C); datt (T,T) scratch; scratch for
 * K = max(T, hs). */
void wl_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                           const float *att, int B, int T, int C, int NH, float *scratch);

#endif
