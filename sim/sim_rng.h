/* sim_rng — independent random streams, one per purpose and worker.
 *
 * Every random draw in a run comes from a GSL generator made here. A stream is named by
 * (purpose, worker); its generator is seeded from the run seed and the stream id by one mix,
 * so streams never share state and adding a stream never shifts another:
 *
 *   id   = purpose << 32 | worker
 *   s    = splitmix64(splitmix64(seed) ^ id)
 *   seed = (s >> 32) ^ (s & 0xffffffff), or 1 if that is 0
 *
 * (splitmix64 is Steele, Lea and Flood's 64-bit finalizer with the golden-ratio increment;
 * the generators take 32-bit seeds, and GSL maps seed 0 to its default, which we avoid.)
 *
 * The generator is mt19937, except for the time model's per-worker streams (jitter,
 * stragglers, failures), which every worker of a timing-only run holds: L'Ecuyer's combined
 * multiple recursive generator (GSL's cmrg, period about 2^185), one of the generators GSL
 * recommends for simulation, with 48 bytes of state against mt19937's 5 KB (a million
 * workers fit) and a draw as fast (RANLUX, with 120 bytes, was 18 times slower to draw). */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

#include <gsl/gsl_rng.h>

typedef enum sim_rng_purpose {
  SIM_RNG_DATASET = 1,   /* generating a synthetic dataset (worker 0) */
  SIM_RNG_PARTITION = 2, /* splitting data across workers (worker 0) */
  SIM_RNG_INIT = 3,      /* model initialization (worker 0) */
  SIM_RNG_BATCHES = 4,   /* a worker's batch order */
  SIM_RNG_SPEED = 5,     /* drawing worker speeds (worker 0) */
  SIM_RNG_JITTER = 6,    /* a worker's per-step time noise */
  SIM_RNG_POLICY = 7,    /* a policy's own coins (worker index as the policy uses it) */
  SIM_RNG_STRAGGLER = 8, /* a worker's straggler episodes */
  SIM_RNG_FAILURE = 9    /* a worker's failures and repairs */
} sim_rng_purpose;

uint64_t sim_rng_splitmix64(uint64_t x);

/* The 32-bit mt19937 seed of stream (purpose, worker) under run seed `seed`. */
unsigned long sim_rng_stream_seed(uint64_t seed, sim_rng_purpose purpose, uint32_t worker);

/* The generator a purpose's streams use. */
const gsl_rng_type *sim_rng_type(sim_rng_purpose purpose);

/* The bytes one generator of the purpose takes (its state, GSL's handle, malloc's headers). */
double sim_rng_memory(sim_rng_purpose purpose);

/* A new generator for the stream, or NULL when out of memory. Free with gsl_rng_free. */
gsl_rng *sim_rng_create(uint64_t seed, sim_rng_purpose purpose, uint32_t worker);

#endif
