/* sim_time — simulated time as integer nanoseconds.
 *
 * Every duration the simulator computes in double seconds is rounded to nanoseconds once,
 * by sim_time_from_s, and from then on time only adds, so event order never depends on
 * floating-point accumulation. int64 nanoseconds cover about 292 years. */
#ifndef SIM_TIME_H
#define SIM_TIME_H

#include <math.h>
#include <stdint.h>

typedef int64_t sim_time; /* nanoseconds since the run started */

#define SIM_NS_PER_S 1000000000LL
#define SIM_TIME_MAX INT64_MAX

/* Round s seconds to the nearest nanosecond (halves away from zero). s must be finite,
 * >= 0 and below SIM_TIME_MAX ns; larger values saturate at SIM_TIME_MAX. */
static inline sim_time sim_time_from_s(double s)
{
  double ns = s * 1e9;
  if (!(ns < 9.2e18))
    return SIM_TIME_MAX;
  return (sim_time)llround(ns);
}

static inline double sim_time_to_s(sim_time t) { return (double)t / 1e9; }

#endif
