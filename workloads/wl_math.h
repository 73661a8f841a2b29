/* wl_math — elementary functions with the same bits on every machine.
 *
 * glibc's libm picks an implementation of exp, log, pow, sin, cos, expf, logf, ... by CPU at
 * load time (with or without FMA), and the variants may differ in the last bit. Everything
 * that shapes a result in syncsim therefore uses these functions instead: each is a fixed
 * sequence of IEEE-754 additions, subtractions, multiplications, divisions and square roots
 * (each correctly rounded by the standard, and never fused: the build sets
 * -ffp-contract=off), plus exact bit manipulations. The same inputs give the same outputs on
 * any machine with IEEE-754 binary32/binary64 arithmetic evaluated at its own precision
 * (FLT_EVAL_METHOD 0, as on x86-64 and AArch64), whatever the compiler vectorizes.
 *
 * Accuracy (measured against glibc in tests/test_workloads.c): the double functions are
 * within a few units in the last place (ulp); the float ones (computed in double and rounded
 * once) are within one float ulp and almost always correctly rounded. They are not meant to
 * be faster than libm, only reproducible; the loops that call them in kernels are written so
 * that the compiler can vectorize them (no branches on the value, NaN propagated by the
 * arithmetic).
 *
 * Domains: wl_exp, wl_expm1 saturate to +inf above ~709.78 and to 0 (-1) below -745;
 * wl_log is -inf at 0 and NaN below; NaN in gives NaN out everywhere. */
#ifndef WL_MATH_H
#define WL_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define WL_LN2_HI 6.93147180369123816490e-01 /* ln 2, upper 32 bits (n * HI exact) */
#define WL_LN2_LO 1.90821492927058770002e-10 /* ln 2 - HI */
#define WL_INV_LN2 1.44269504088896338700e+00
#define WL_PI 3.14159265358979323846
#define WL_ROUND_MAGIC 0x1.8p52 /* x + M - M rounds x (|x| < 2^51) to an integer, ties even */

static inline double wl_bits_to_double(uint64_t b)
{
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

static inline uint64_t wl_double_to_bits(double d)
{
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

/* The integer nearest y (ties to even), for |y| < 2^51; NaN stays NaN. */
static inline double wl_round_int(double y) { return (y + WL_ROUND_MAGIC) - WL_ROUND_MAGIC; }

/* 2^n for an integral n in [-1022, 1023] (any other value gives some finite double; no
 * undefined behaviour, also for NaN). */
static inline double wl_pow2i(double n)
{
  uint64_t b = wl_double_to_bits(n + WL_ROUND_MAGIC); /* low bits: 2^51 + n */
  return wl_bits_to_double((b + 1023) << 52);
}

/* e^r - 1 for |r| <= ln2/2 + a little: Taylor series to degree 13 (truncation < 2e-17
 * relative), Horner form. */
static inline double wl_expm1_reduced(double r)
{
  double p = 1.0 / 6227020800.0;     /* 1/13! */
  p = p * r + 1.0 / 479001600.0;     /* 1/12! */
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  return (p * r) * r + r;
}

/* e^x - 1 and its scale: x = n ln2 + r, returns e^r - 1 and sets *scale = 2^n. x must lie in
 * [-1022 ln2, 1023 ln2]. */
static inline double wl_exp_split(double x, double *scale)
{
  double n = wl_round_int(x * WL_INV_LN2);
  double r = (x - n * WL_LN2_HI) - n * WL_LN2_LO;
  *scale = wl_pow2i(n);
  return wl_expm1_reduced(r);
}

/* e^x. */
static inline double wl_exp(double x)
{
  if (x > 709.782712893384)
    return INFINITY;
  if (x < -745.2)
    return 0.0;
  double n = wl_round_int(x * WL_INV_LN2); /* NaN propagates through r */
  double r = (x - n * WL_LN2_HI) - n * WL_LN2_LO, p = wl_expm1_reduced(r);
  if (n < -1000) { /* the result is (nearly) subnormal: scale in two steps */
    double s = wl_pow2i(n + 64);
    return (s + s * p) * 0x1p-64;
  }
  double s = wl_pow2i(n);
  return s + s * p;
}

/* e^x - 1, accurate for small |x| too. */
static inline double wl_expm1(double x)
{
  if (x > 709.782712893384)
    return INFINITY;
  if (x < -40.0)
    return -1.0;
  double s, p = wl_exp_split(x, &s);
  return s * p + (s - 1.0);
}

/* log(x) + e_adj log 2 for a positive normal finite x, without branches (a loop of it can
 * be vectorized). */
static inline double wl_log_reduced(double x, double e_adj)
{
  uint64_t b = wl_double_to_bits(x);
  double e = (double)(int)((b >> 52) & 0x7ff) - 1023 + e_adj;
  uint64_t mb = (b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m = wl_bits_to_double(mb); /* [1,2) */
  /* m > sqrt 2 (0x3ff6a09e667f3bcd), compared as bits; then m/2 and e + 1, as arithmetic
     (a floating-point comparison or a branch here keeps GCC from vectorizing the loops) */
  double big = (double)(int)((0x3ff6a09e667f3bcdULL - mb) >> 63);
  m *= 1.0 - 0.5 * big;
  e += big;
  /* log m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: odd series to s^23 */
  double f = m - 1.0; /* exact */
  double s = f / (2.0 + f), z = s * s;
  double q = 1.0 / 23;
  q = q * z + 1.0 / 21;
  q = q * z + 1.0 / 19;
  q = q * z + 1.0 / 17;
  q = q * z + 1.0 / 15;
  q = q * z + 1.0 / 13;
  q = q * z + 1.0 / 11;
  q = q * z + 1.0 / 9;
  q = q * z + 1.0 / 7;
  q = q * z + 1.0 / 5;
  q = q * z + 1.0 / 3;
  double logm = 2.0 * s + 2.0 * s * (q * z);
  return e * WL_LN2_HI + (logm + e * WL_LN2_LO);
}

/* The natural logarithm; for a positive normal finite x the same as wl_log_reduced(x, 0). */
static inline double wl_log(double x)
{
  if (!(x > 0)) /* 0, negative, NaN */
    return x == 0 ? -INFINITY : NAN;
  if (x == INFINITY)
    return x;
  if (x < 0x1p-1022) /* subnormal: make it normal */
    return wl_log_reduced(x * 0x1p54, -54);
  return wl_log_reduced(x, 0);
}

/* x^y for x > 0 (as e^(y log x); relative error grows with |y log x|, about 1e-16 times
 * it); x == 0 gives 0 for y > 0, 1 for y == 0 and +inf for y < 0; x < 0 gives NaN. */
static inline double wl_pow(double x, double y)
{
  if (y == 0)
    return 1.0;
  if (x == 0)
    return y > 0 ? 0.0 : INFINITY;
  if (x == 1)
    return 1.0;
  return wl_exp(y * wl_log(x));
}

/* tanh x = (e^2x - 1) / (e^2x + 1), through expm1 so that small |x| keeps its precision. */
static inline double wl_tanh(double x)
{
  double a = fabs(x);
  a = a > 20.0 ? 20.0 : a; /* tanh(20) rounds to 1; NaN passes */
  double s, p = wl_exp_split(2.0 * a, &s);
  double em1 = s * p + (s - 1.0);
  return copysign(em1 / (em1 + 2.0), x);
}

/* cos(pi x), exact argument reduction (no rounding of pi x before the reduction). */
static inline double wl_cospi(double x)
{
  double a = fabs(x);
  if (!(a < 0x1p52))
    return a == INFINITY || a != a ? NAN : 1.0; /* huge values are even integers */
  a -= 2.0 * floor(a * 0.5);                     /* [0, 2), exact */
  if (a > 1.0)
    a = 2.0 - a; /* cos(pi(2 - a)) = cos(pi a) */
  double sign = 1.0;
  if (a > 0.5) {
    a = 1.0 - a; /* cos(pi(1 - a)) = -cos(pi a) */
    sign = -1.0;
  }
  if (a <= 0.25) { /* cos t, t = pi a <= pi/4: even series to t^18 */
    double t = WL_PI * a, z = t * t;
    double c = 1.0 / 6402373705728000.0; /* 1/18! */
    c = c * z - 1.0 / 20922789888000.0;
    c = c * z + 1.0 / 87178291200.0;
    c = c * z - 1.0 / 479001600.0;
    c = c * z + 1.0 / 3628800.0;
    c = c * z - 1.0 / 40320.0;
    c = c * z + 1.0 / 720.0;
    c = c * z - 1.0 / 24.0;
    c = c * z + 0.5;
    return sign * (1.0 - c * z);
  }
  /* sin t, t = pi (1/2 - a) <= pi/4: odd series to t^19 */
  double t = WL_PI * (0.5 - a), z = t * t; /* 0.5 - a is exact */
  double c = -1.0 / 121645100408832000.0;  /* -1/19! */
  c = c * z + 1.0 / 355687428096000.0;
  c = c * z - 1.0 / 1307674368000.0;
  c = c * z + 1.0 / 6227020800.0;
  c = c * z - 1.0 / 39916800.0;
  c = c * z + 1.0 / 362880.0;
  c = c * z - 1.0 / 5040.0;
  c = c * z + 1.0 / 120.0;
  c = c * z - 1.0 / 6.0;
  return sign * (t + t * (c * z));
}

/* erf a for 0 <= a < 1.5: the Maclaurin series 2/sqrt(pi) sum_n (-1)^n a^(2n+1)/(n! (2n+1)),
 * 32 terms (truncation < 1e-18; the terms stay below 1, so nothing cancels badly). */
static inline double wl_erf_series(double a)
{
  double z = a * a, term = a, sum = a;
  for (int n = 1; n < 32; n++) {
    term *= -z / n;
    sum += term / (2 * n + 1);
  }
  return 1.1283791670955126 * sum;
}

/* erfc a for a >= 1.5: e^(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))),
 * Laplace's continued fraction, 120 levels evaluated from the bottom (converged to double
 * precision from a = 1.25 on). */
static inline double wl_erfc_tail(double a)
{
  double f = a;
  for (int k = 120; k >= 1; k--)
    f = a + (0.5 * k) / f;
  return wl_exp(-a * a) * 0.5641895835477563 / f;
}

/* erfc x, accurate relative to its value for every x (also far in the tail, where 1 - erf x
 * would cancel); worst near x = 1.5, where 1 - erf x loses about 5 bits. */
static inline double wl_erfc(double x)
{
  double a = fabs(x);
  if (a != a)
    return a;
  if (a < 1.5)
    return x >= 0 ? 1.0 - wl_erf_series(a) : 1.0 + wl_erf_series(a);
  return x >= 0 ? wl_erfc_tail(a) : 2.0 - wl_erfc_tail(a);
}

static inline double wl_erf(double x)
{
  double a = fabs(x);
  if (a != a)
    return a;
  return copysign(a < 1.5 ? wl_erf_series(a) : 1.0 - wl_erfc_tail(a), x);
}

/* ---- float versions: computed in double, rounded once ---------------------------------- */

/* e^x in float. Branch-free (the clamps pass NaN), so loops of it vectorize. */
static inline float wl_expf(float x)
{
  /* d clamped to [-104, 89] (e^89 overflows float, e^-104 underflows to 0), NaN kept: as
   * integer minima on the bits of |d|, which compilers vectorize where they would not a
   * compare of doubles */
  const uint64_t sign = 0x8000000000000000ULL, inf = 0x7ff0000000000000ULL;
  uint64_t b = wl_double_to_bits((double)x), ab = b & ~sign;
  uint64_t lim = (b & sign) ? 0x405a000000000000ULL /* 104 */ : 0x4056400000000000ULL /* 89 */;
  lim = ab > inf ? ab : lim;
  double d = wl_bits_to_double((ab < lim ? ab : lim) | (b & sign));
  double s, p = wl_exp_split(d, &s);
  return (float)(s + s * p);
}

/* tanh x in float. Branch-free. */
static inline float wl_tanhf(float x) { return (float)wl_tanh(x); }

#endif
