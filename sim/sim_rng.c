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

gsl_rng *sim_rng_create(uint64_t seed, sim_rng_purpose purpose, uint32_t worker)
{
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (r)
    gsl_rng_set(r, sim_rng_stream_seed(seed, purpose, worker));
  return r;
}
