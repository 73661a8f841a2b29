/* sim_net — communication cost formulas (ALGORITHMS.md §8), in double seconds.
 *
 * alpha_s: latency per message; bytes_per_s: link bandwidth; bytes: the payload M;
 * n: participants. The runner rounds the result once with sim_time_from_s. */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdint.h>

/* Ring all-reduce: 2(n-1)*alpha + 2(n-1)/n * M/B; 0 when n == 1. */
double sim_net_ring_allreduce_s(int n, double alpha_s, double bytes_per_s, double bytes);

/* Bytes each participant sends (and receives) in a ring all-reduce: 2(n-1)/n * M. */
double sim_net_ring_allreduce_bytes(int n, double bytes);

/* Gbit/s to bytes per second. */
static inline double sim_net_gbps_to_bytes_per_s(double gbps) { return gbps * 1e9 / 8.0; }

#endif
