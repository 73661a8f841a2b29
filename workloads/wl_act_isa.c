/* The activations, element by element, for one instruction set. This file is compiled once
 * per code path with the matrix product (wl_gemm_isa.c, CMakeLists.txt), WL_GEMM_SUFFIX the
 * functions' suffix. Each element is the same fixed sequence of IEEE operations
 * (wl_math.h, never fused) on every path; the compiler only runs the loops over several
 * elements at once, so the paths give identical results. */
#include "wl_kernels.h"
#include "wl_math.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, WL_GEMM_SUFFIX)

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

/* tanh as wl_tanhf, bit for bit for every input but NaN (which gives +-1 here: the GELUs
 * below multiply it by x, so NaN still comes out). Its clamp at 20 is an integer minimum on
 * the bits of |x| instead of a comparison of doubles, which AVX2 cannot vectorize here. */
static inline float tanh_clamped(float xf)
{
  double x = xf;
  uint64_t ab = wl_double_to_bits(x) & 0x7fffffffffffffffULL, twenty = 0x4034000000000000ULL;
  double a = wl_bits_to_double(ab < twenty ? ab : twenty);
  double s, p = wl_exp_split(2.0 * a, &s);
  double em1 = s * p + (s - 1.0);
  return (float)copysign(em1 / (em1 + 2.0), x);
}

static void relu_forward(float *restrict out, const float *restrict in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

static void relu_backward(float *restrict din, const float *restrict in,
                          const float *restrict dout, size_t n)
{
  for (size_t i = 0; i < n; i++)
    din[i] += in[i] > 0.0f ? dout[i] : 0.0f;
}

/* GELU with tanh: u(x), and the value and the derivative from x and th = tanh(u(x)). */
static inline float gelu_tanh_arg(float x) { return GELU_SCALE * (x + 0.044715f * x * x * x); }

static inline float gelu_tanh_value(float x, float th) { return 0.5f * x * (1.0f + th); }

static inline float gelu_tanh_slope(float x, float th)
{
  float sech2 = 1.0f - th * th;
  float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
  return 0.5f * (1.0f + th) + 0.5f * x * sech2 * du;
}

static void gelu_tanh_forward(float *restrict out, const float *restrict in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = gelu_tanh_value(in[i], tanh_clamped(gelu_tanh_arg(in[i])));
}

static void gelu_tanh_backward(float *restrict din, const float *restrict in,
                               const float *restrict dout, size_t n)
{
  for (size_t i = 0; i < n; i++)
    din[i] += dout[i] * gelu_tanh_slope(in[i], tanh_clamped(gelu_tanh_arg(in[i])));
}

/* The same, keeping th for the backward pass (which then computes no tanh). */
void FN(wl_gelu_tanh_forward_keep_)(float *restrict out, float *restrict th,
                                    const float *restrict in, size_t n);
void FN(wl_gelu_tanh_forward_keep_)(float *restrict out, float *restrict th,
                                    const float *restrict in, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    th[i] = tanh_clamped(gelu_tanh_arg(in[i]));
    out[i] = gelu_tanh_value(in[i], th[i]);
  }
}

void FN(wl_gelu_tanh_backward_kept_)(float *restrict din, const float *restrict in,
                                     const float *restrict th, const float *restrict dout,
                                     size_t n);
void FN(wl_gelu_tanh_backward_kept_)(float *restrict din, const float *restrict in,
                                     const float *restrict th, const float *restrict dout,
                                     size_t n)
{
  for (size_t i = 0; i < n; i++)
    din[i] += dout[i] * gelu_tanh_slope(in[i], th[i]);
}

/* In double, rounded once: Phi(x) = 0.5 erfc(-x/sqrt 2) keeps its relative precision in the
 * far negative tail. */
static void gelu_erf_forward(float *restrict out, const float *restrict in, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    double x = in[i];
    out[i] = (float)(0.5 * x * wl_erfc(-x * INV_SQRT2));
  }
}

static void gelu_erf_backward(float *restrict din, const float *restrict in,
                              const float *restrict dout, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    double x = in[i];
    double d = 0.5 * wl_erfc(-x * INV_SQRT2) + x * INV_SQRT_2PI * wl_exp(-0.5 * x * x);
    din[i] += dout[i] * (float)d;
  }
}

/* x = e^(x - shift), element by element (the softmaxes' exponentials). */
void FN(wl_exp_shifted_)(float *x, float shift, size_t n);
void FN(wl_exp_shifted_)(float *x, float shift, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = wl_expf(x[i] - shift);
}

void FN(wl_act_forward_)(int kind, float *out, const float *in, size_t n);
void FN(wl_act_backward_)(int kind, float *din, const float *in, const float *dout, size_t n);

void FN(wl_act_forward_)(int kind, float *out, const float *in, size_t n)
{
  if (kind == WL_ACT_KIND_RELU)
    relu_forward(out, in, n);
  else if (kind == WL_ACT_KIND_GELU_TANH)
    gelu_tanh_forward(out, in, n);
  else
    gelu_erf_forward(out, in, n);
}

void FN(wl_act_backward_)(int kind, float *din, const float *in, const float *dout, size_t n)
{
  if (kind == WL_ACT_KIND_RELU)
    relu_backward(din, in, dout, n);
  else if (kind == WL_ACT_KIND_GELU_TANH)
    gelu_tanh_backward(din, in, dout, n);
  else
    gelu_erf_backward(din, in, dout, n);
}
