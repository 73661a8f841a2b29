#include "sim_cluster.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "sim_rng.h"

void sim_cluster_draw_speeds(const sim_speed_config *s, int K, gsl_rng *r, double *speed)
{
  static const double preset_sigma[] = {0.0, 0.15, 0.4, 0.8}; /* none, slight, moderate, very */
  switch (s->dist) {
  case SIM_SPEED_NONE:
  case SIM_SPEED_SLIGHT:
  case SIM_SPEED_MODERATE:
  case SIM_SPEED_VERY:
  case SIM_SPEED_LOGNORMAL: {
    double sigma = s->dist == SIM_SPEED_LOGNORMAL ? s->sigma : preset_sigma[s->dist];
    for (int w = 0; w < K; w++)
      speed[w] = sigma > 0 ? exp(gsl_ran_gaussian(r, sigma)) : 1.0;
    return;
  }
  case SIM_SPEED_UNIFORM:
    for (int w = 0; w < K; w++)
      speed[w] = s->min + (s->max - s->min) * gsl_rng_uniform(r);
    return;
  case SIM_SPEED_GAMMA:
    for (int w = 0; w < K; w++)
      speed[w] = gsl_ran_gamma(r, s->shape, 1.0 / s->shape);
    return;
  case SIM_SPEED_TWO_CLASS: {
    int slow = (int)floor(s->slow_fraction * K + 0.5);
    int *order = malloc((size_t)K * sizeof *order);
    WL_ASSERT(order != NULL);
    for (int w = 0; w < K; w++)
      order[w] = w;
    gsl_ran_shuffle(r, order, (size_t)K, sizeof *order);
    for (int w = 0; w < K; w++)
      speed[w] = 1.0;
    for (int i = 0; i < slow; i++)
      speed[order[i]] = s->slow_speed;
    free(order);
    return;
  }
  }
  WL_ASSERT(!"unknown speed distribution");
}

wl_status sim_cluster_init(sim_cluster *c, const sim_compute_config *cfg, int K, uint64_t seed,
                           double flops_per_step, char *err, size_t err_size)
{
  memset(c, 0, sizeof *c);
  c->K = K;
  c->jitter = cfg->jitter;
  c->step_time_s = cfg->step_time_s;
  if (!isnan(cfg->device_tflops)) {
    double flops = isnan(cfg->flops_per_step) ? flops_per_step : cfg->flops_per_step;
    if (!(flops > 0)) {
      snprintf(err, err_size, "cluster.compute.flops_per_step: expected a FLOP count to derive "
                              "the step time from (the workload declares none), got null");
      return WL_ECONFIG;
    }
    c->step_time_s = flops / (cfg->device_tflops * 1e12 * cfg->utilization);
  }
  c->speed = malloc((size_t)K * sizeof *c->speed);
  c->step_ns = malloc((size_t)K * sizeof *c->step_ns);
  if (!c->speed || !c->step_ns)
    return WL_ENOMEM;
  if (cfg->n_speeds) {
    memcpy(c->speed, cfg->speeds, (size_t)K * sizeof *c->speed);
  } else {
    gsl_rng *r = sim_rng_create(seed, SIM_RNG_SPEED, 0);
    if (!r)
      return WL_ENOMEM;
    sim_cluster_draw_speeds(&cfg->speed, K, r, c->speed);
    gsl_rng_free(r);
  }
  for (int w = 0; w < K; w++)
    c->step_ns[w] = sim_time_from_s(c->step_time_s / c->speed[w]);
  if (c->jitter.dist != SIM_JITTER_NONE) {
    if (!(c->jitter_rng = calloc((size_t)K, sizeof *c->jitter_rng)))
      return WL_ENOMEM;
    for (int w = 0; w < K; w++)
      if (!(c->jitter_rng[w] = sim_rng_create(seed, SIM_RNG_JITTER, (uint32_t)w)))
        return WL_ENOMEM;
  }
  return WL_OK;
}

void sim_cluster_free(sim_cluster *c)
{
  for (int w = 0; c->jitter_rng && w < c->K; w++)
    gsl_rng_free(c->jitter_rng[w]);
  free(c->jitter_rng);
  free(c->speed);
  free(c->step_ns);
  memset(c, 0, sizeof *c);
}

static double jitter_factor(const sim_jitter_config *j, gsl_rng *r)
{
  if (j->dist == SIM_JITTER_LOGNORMAL)
    return exp(gsl_ran_gaussian(r, j->sigma) - 0.5 * j->sigma * j->sigma);
  return 1.0 + j->width * (2.0 * gsl_rng_uniform(r) - 1.0);
}

sim_time sim_cluster_steps_ns(sim_cluster *c, int w, long steps)
{
  if (c->jitter.dist == SIM_JITTER_NONE)
    return c->step_ns[w] * steps;
  sim_time total = 0;
  double base = c->step_time_s / c->speed[w];
  for (long i = 0; i < steps; i++)
    total += sim_time_from_s(base * jitter_factor(&c->jitter, c->jitter_rng[w]));
  return total;
}
