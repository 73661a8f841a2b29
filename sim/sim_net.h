/* sim_net — the network: links, collective cost formulas, point-to-point transfer times.
 *
 * Every worker has a link with latency alpha and upload/download bandwidth; the parameter
 * server has its own link; optionally workers form nodes of g, joined by slower inter-node
 * links. Collectives are priced by their alpha-beta formulas (M bytes, n participants,
 * B bytes/s):
 *   ring              2(n-1) alpha + 2(n-1)/n M/B
 *   tree              2 ceil(log2 n) (alpha + M/B)            (binomial reduce + broadcast)
 *   halving_doubling  2 ceil(log2 n) alpha + 2(n-1)/n M/B      (Rabenseifner)
 *   hierarchical      2(g-1) alpha_in + 2(g-1)/g M/B_in  +  2(N-1) alpha_out + 2(N-1)/N (M/g)/B_out
 * A flat algorithm runs at the pace of its slowest link and largest latency (the inter-node
 * link's, when it spans nodes). */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdint.h>

#include "sim_config.h"

/* Bytes each participant sends (and receives) in an all-reduce of M bytes over n. */
double sim_net_allreduce_bytes(int algorithm, int n, double bytes);

/* The alpha-beta formulas, in seconds. */
double sim_net_ring_s(int n, double alpha_s, double bytes_per_s, double bytes);
double sim_net_tree_s(int n, double alpha_s, double bytes_per_s, double bytes);
double sim_net_halving_doubling_s(int n, double alpha_s, double bytes_per_s, double bytes);
double sim_net_hierarchical_s(int g, int nodes, double alpha_in, double bytes_per_s_in,
                              double alpha_out, double bytes_per_s_out, double bytes);

/* Gbit/s to bytes per second. */
static inline double sim_net_gbps_to_bytes_per_s(double gbps) { return gbps * 1e9 / 8.0; }

/* A worker's upload and download bandwidth, bytes/s. */
double sim_net_up_bytes_per_s(const sim_network_config *n, int w);
double sim_net_down_bytes_per_s(const sim_network_config *n, int w);
double sim_net_server_bytes_per_s(const sim_network_config *n);

/* The time of an all-reduce of M bytes over all K workers, as configured. */
double sim_net_allreduce_s(const sim_network_config *n, int K, double bytes);

#endif
