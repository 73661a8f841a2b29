#include "sim_net.h"

#include <math.h>

static int ceil_log2(int n)
{
  int k = 0;
  while ((1 << k) < n)
    k++;
  return k;
}

double sim_net_ring_s(int n, double alpha_s, double bytes_per_s, double bytes)
{
  if (n <= 1)
    return 0.0;
  return 2.0 * (n - 1) * alpha_s + 2.0 * (n - 1) / n * bytes / bytes_per_s;
}

double sim_net_tree_s(int n, double alpha_s, double bytes_per_s, double bytes)
{
  if (n <= 1)
    return 0.0;
  return 2.0 * ceil_log2(n) * (alpha_s + bytes / bytes_per_s);
}

double sim_net_halving_doubling_s(int n, double alpha_s, double bytes_per_s, double bytes)
{
  if (n <= 1)
    return 0.0;
  return 2.0 * ceil_log2(n) * alpha_s + 2.0 * (n - 1) / n * bytes / bytes_per_s;
}

double sim_net_hierarchical_s(int g, int nodes, double alpha_in, double bytes_per_s_in,
                              double alpha_out, double bytes_per_s_out, double bytes)
{
  return sim_net_ring_s(g, alpha_in, bytes_per_s_in, bytes) +
         sim_net_ring_s(nodes, alpha_out, bytes_per_s_out, bytes / g);
}

double sim_net_allreduce_bytes(int algorithm, int n, double bytes)
{
  if (n <= 1)
    return 0.0;
  if (algorithm == SIM_COLL_TREE)
    return ceil_log2(n) * bytes; /* up and down the tree, per level */
  return 2.0 * (n - 1) / n * bytes;
}

static double scale(const sim_network_config *n, int w)
{
  return n->n_link_scales ? n->link_scales[w] : 1.0;
}

double sim_net_up_bytes_per_s(const sim_network_config *n, int w)
{
  double g = isnan(n->up_gbps) ? n->bandwidth_gbps : n->up_gbps;
  return sim_net_gbps_to_bytes_per_s(g * scale(n, w));
}

double sim_net_down_bytes_per_s(const sim_network_config *n, int w)
{
  double g = isnan(n->down_gbps) ? n->bandwidth_gbps : n->down_gbps;
  return sim_net_gbps_to_bytes_per_s(g * scale(n, w));
}

double sim_net_server_bytes_per_s(const sim_network_config *n)
{
  return sim_net_gbps_to_bytes_per_s(isnan(n->server_gbps) ? n->bandwidth_gbps : n->server_gbps);
}

double sim_net_allreduce_s(const sim_network_config *n, int K, double bytes)
{
  double B = INFINITY;
  for (int w = 0; w < K; w++)
    B = fmin(B, fmin(sim_net_up_bytes_per_s(n, w), sim_net_down_bytes_per_s(n, w)));
  double alpha = n->latency_s;
  int g = n->workers_per_node;
  double B_out = sim_net_gbps_to_bytes_per_s(n->inter_bandwidth_gbps);
  if (n->collective == SIM_COLL_HIERARCHICAL)
    return sim_net_hierarchical_s(g, K / g, alpha, B, n->inter_latency_s, B_out, bytes);
  if (g > 0 && K > g) { /* a flat algorithm across nodes: the slowest link sets the pace */
    alpha = fmax(alpha, n->inter_latency_s);
    B = fmin(B, B_out);
  }
  switch (n->collective) {
  case SIM_COLL_TREE: return sim_net_tree_s(K, alpha, B, bytes);
  case SIM_COLL_HALVING_DOUBLING: return sim_net_halving_doubling_s(K, alpha, B, bytes);
  default: return sim_net_ring_s(K, alpha, B, bytes);
  }
}
