/* wl_rand — random variates with the same values on every machine.
 *
 * GSL's samplers call libm (log, exp, pow), whose results can differ in the last bit between
 * CPUs, and a sampler that branches on a rounded value (a rejection test) can then diverge
 * completely. These draw from a gsl_rng (whose integer output is portable) and use only
 * wl_math.h, so a stream gives the same variates everywhere.
 *
 * Methods (facts from the literature, restated):
 *   normal       Marsaglia's polar method (one of the pair is returned, the other dropped)
 *   exponential  -mean log(1 - U), U uniform on [0, 1)
 *   gamma        Marsaglia and Tsang (2000) for shape >= 1; shape < 1 through
 *                G(a) = G(a + 1) U^(1/a)
 *   dirichlet    normalized gammas, computed in log space so that small concentrations
 *                (whose gammas underflow) still give a proper probability vector */
#ifndef WL_RAND_H
#define WL_RAND_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

/* N(0, sd^2) */
double wl_ran_gaussian(gsl_rng *r, double sd);

/* out[0..n) = n successive wl_ran_gaussian(r, sd) variates: the same draws, the same bits.
 * The uniforms are drawn first and transformed after, a block at a time, so that the
 * transforms (a log, a square root and a division each) overlap one another. */
void wl_ran_gaussians(gsl_rng *r, double sd, double *out, size_t n);
/* exponential with the given mean */
double wl_ran_exponential(gsl_rng *r, double mean);
/* gamma with shape a > 0 and scale theta (mean a theta) */
double wl_ran_gamma(gsl_rng *r, double a, double theta);
/* p (K) ~ Dirichlet(alpha (K)), all alpha > 0 */
void wl_ran_dirichlet(gsl_rng *r, size_t K, const double *alpha, double *p);

#endif
