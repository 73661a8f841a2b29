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
/* The latest time a scenario may name (stop.sim_time_s, eval.every_s, failures.at_s): 9e9 s,
 * about 285 years, below the horizon of int64 nanoseconds (9.2e9 s). */
#define SIM_HORIZON_S 9e9

/* SIM_TIME_MAX is "never": a duration or a time beyond the horizon (about 292 years) saturates
 * to it, an event at it is never scheduled, and time never goes backward. */

/* Round s seconds to the nearest nanosecond (halves away from zero). Beyond the horizon
 * (infinite, NaN, or 9.2e9 s and more) it is never; below 0, 0. */
static inline sim_time sim_time_from_s(double s)
{
  double ns = s * 1e9;
  if (!(ns < 9.2e18))
    return SIM_TIME_MAX;
  return ns <= 0 ? 0 : (sim_time)llround(ns);
}

/* A duration that must move time forward (a gradient step, an evaluation interval, a repair,
 * a time to failure): s rounded as sim_time_from_s, and at least the clock's resolution,
 * 1 ns, so that no cycle of events can repeat at one instant. */
static inline sim_time sim_time_period_from_s(double s)
{
  sim_time t = sim_time_from_s(s);
  return t < 1 ? 1 : t;
}

/* a + b for a time or duration a and a duration b, both >= 0, saturating at never. */
static inline sim_time sim_time_add(sim_time a, sim_time b)
{
  return b >= SIM_TIME_MAX - a ? SIM_TIME_MAX : a + b;
}

/* n times the duration a (n >= 0), saturating at never. */
static inline sim_time sim_time_mul(sim_time a, long n)
{
  return n > 0 && a >= SIM_TIME_MAX / n ? SIM_TIME_MAX : a * n;
}

static inline double sim_time_to_s(sim_time t) { return (double)t / 1e9; }

#endif
