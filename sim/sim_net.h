/* sim_net — the network: links, collective cost formulas, and their changes over time.
 *
 * Every worker has a link with a latency alpha and upload/download bandwidths; the
 * parameter server has its own link; optionally workers form nodes of g, joined by slower
 * inter-node links. Collectives are priced by their alpha-beta formulas (M bytes, n
 * participants, B bytes/s):
 *   ring              2(n-1) alpha + 2(n-1)/n M/B
 *   tree              2 ceil(log2 n) (alpha + M/B)            (binomial reduce + broadcast)
 *   halving_doubling  2 ceil(log2 n) alpha + 2(n-1)/n M/B      (Rabenseifner)
 *   hierarchical      2(g-1) alpha_in + 2(g-1)/g M/B_in  +  2(N-1) alpha_out + 2(N-1)/N (M/g)/B_out
 * A flat algorithm runs at the pace of its slowest link and largest latency (the inter-node
 * link's, when it spans nodes). A trace (CSV rows time_s,link,bandwidth_gbps,latency_s; link
 * a worker index, * for every worker, server or inter; - keeps a value) changes links at
 * given times; the state below is the network as it is now.
 *
 * Regions (for a policy with regions): the workers form R regions of K/R; each region has
 * a local parameter server whose link runs at the server's bandwidth (and changes with it),
 * and one link (region latency, region bandwidth, each direction) to the global server. */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdint.h>

#include "sim_config.h"

enum { SIM_LINK_ALL = -1, SIM_LINK_SERVER = -2, SIM_LINK_INTER = -3 };

typedef struct sim_net_change {
  double t;     /* when, seconds */
  int link;     /* a worker index or SIM_LINK_* */
  double bps;   /* new bandwidth, bytes/s, each direction; NaN = unchanged */
  double lat;   /* new latency, seconds; NaN = unchanged */
} sim_net_change;

typedef struct sim_net_state {
  int K, collective, g;
  double *up, *down, *lat; /* (K) bytes/s, bytes/s, seconds */
  double server;           /* bytes/s, each direction */
  double inter, inter_lat; /* bytes/s, seconds */
  int R;                   /* regions a policy with regions sees (>= 1), else 0 */
  double region, region_lat; /* a region's link to the global server: bytes/s, seconds */
  sim_net_change *changes; /* the trace, by time */
  int n_changes, next;     /* next change to apply */
} sim_net_state;

wl_status sim_net_init(sim_net_state *s, const sim_network_config *cfg, int K, char *err,
                       size_t err_size);
void sim_net_free(sim_net_state *s);

/* The time of the next change (seconds), or INFINITY. */
double sim_net_next_change(const sim_net_state *s);

/* Apply every change due at or before t (seconds). */
void sim_net_apply(sim_net_state *s, double t);

/* The time of an all-reduce of M bytes over the workers in mask (all when NULL), with the
 * links as they are. */
double sim_net_allreduce_time(const sim_net_state *s, const uint8_t *mask, double bytes);

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

/* Read a link trace for K workers; on error err says file:line: what. */
wl_status sim_net_trace_load(const char *path, int K, sim_net_change **out, int *n, char *err,
                             size_t err_size);

#endif
