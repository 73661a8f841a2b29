#include "wl_rand.h"

#include <math.h>

#include "wl_math.h"

/* The polar method's accepted pair: x, and s = x^2 + y^2 in (0, 1). */
static inline double polar_pair(gsl_rng *r, double *s)
{
  double x, y;
  do {
    x = 2.0 * gsl_rng_uniform(r) - 1.0;
    y = 2.0 * gsl_rng_uniform(r) - 1.0;
    *s = x * x + y * y;
  } while (*s >= 1.0 || *s == 0.0);
  return x;
}

/* s is in (0, 1), a sum of squares of 2u - 1 with u a double in [0, 1), each 0 or at least
 * 2^-52 in magnitude: a normal number. */
static inline double polar_value(double sd, double x, double s)
{
  return sd * x * sqrt(-2.0 * wl_log_reduced(s, 0) / s);
}

double wl_ran_gaussian(gsl_rng *r, double sd)
{
  double s, x = polar_pair(r, &s);
  return polar_value(sd, x, s);
}

void wl_ran_gaussians(gsl_rng *r, double sd, double *out, size_t n)
{
  enum { BLOCK = 256 };
  double s[BLOCK];
  for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
    size_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    for (size_t i = 0; i < m; i++)
      out[i0 + i] = polar_pair(r, &s[i]);
    for (size_t i = 0; i < m; i++)
      out[i0 + i] = polar_value(sd, out[i0 + i], s[i]);
  }
}

double wl_ran_exponential(gsl_rng *r, double mean)
{
  return -mean * wl_log(1.0 - gsl_rng_uniform(r)); /* 1 - U is exact and > 0 */
}

/* A Gamma(a, 1) variate for a >= 1 (Marsaglia and Tsang). */
static double gamma_ge1(gsl_rng *r, double a)
{
  double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x = wl_ran_gaussian(r, 1.0), v = 1.0 + c * x;
    if (v <= 0)
      continue;
    v = v * v * v;
    double u = gsl_rng_uniform_pos(r);
    if (u < 1.0 - 0.0331 * (x * x) * (x * x) ||
        wl_log(u) < 0.5 * x * x + d * (1.0 - v + wl_log(v)))
      return d * v;
  }
}

/* log of a Gamma(a, 1) variate, which for small a may itself underflow. */
static double log_gamma_variate(gsl_rng *r, double a)
{
  if (a >= 1.0)
    return wl_log(gamma_ge1(r, a));
  double g = gamma_ge1(r, a + 1.0);
  return wl_log(g) + wl_log(gsl_rng_uniform_pos(r)) / a;
}

double wl_ran_gamma(gsl_rng *r, double a, double theta)
{
  if (a >= 1.0)
    return theta * gamma_ge1(r, a);
  double g = gamma_ge1(r, a + 1.0);
  return theta * g * wl_exp(wl_log(gsl_rng_uniform_pos(r)) / a);
}

void wl_ran_dirichlet(gsl_rng *r, size_t K, const double *alpha, double *p)
{
  double mx = -INFINITY;
  for (size_t k = 0; k < K; k++) {
    p[k] = log_gamma_variate(r, alpha[k]);
    mx = p[k] > mx ? p[k] : mx;
  }
  double sum = 0;
  for (size_t k = 0; k < K; k++) {
    p[k] = wl_exp(p[k] - mx);
    sum += p[k];
  }
  for (size_t k = 0; k < K; k++)
    p[k] /= sum;
}
