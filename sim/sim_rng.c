#include "sim_rng.h"

uint64_t sim_rng_splitmix64(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

unsigned long sim_rng_stream_seed(uint64_t seed, sim_rng_purpose purpose, uint32_t worker)
{
  uint64_t id = (uint64_t)purpose << 32 | worker;
  uint64_t s = sim_rng_splitmix64(sim_rng_splitmix64(seed) ^ id);
  unsigned long s32 = (unsigned long)((s >> 32) ^ (s & 0xffffffffULL));
  return s32 ? s32 : 1;
}

const gsl_rng_type *sim_rng_type(sim_rng_purpose purpose)
{
  return purpose == SIM_RNG_JITTER || purpose == SIM_RNG_STRAGGLER || purpose == SIM_RNG_FAILURE
           ? gsl_rng_cmrg : gsl_rng_mt19937;
}

double sim_rng_memory(sim_rng_purpose purpose)
{
  return sizeof(gsl_rng) + sim_rng_type(purpose)->size + 32.0;
}

gsl_rng *sim_rng_create(uint64_t seed, sim_rng_purpose purpose, uint32_t worker)
{
  gsl_rng *r = gsl_rng_alloc(sim_rng_type(purpose));
  if (r)
    gsl_rng_set(r, sim_rng_stream_seed(seed, purpose, worker));
  return r;
}
