#include "sim_net.h"

double sim_net_ring_allreduce_s(int n, double alpha_s, double bytes_per_s, double bytes)
{
  if (n <= 1)
    return 0.0;
  return 2.0 * (n - 1) * alpha_s + 2.0 * (n - 1) / n * bytes / bytes_per_s;
}

double sim_net_ring_allreduce_bytes(int n, double bytes)
{
  return n <= 1 ? 0.0 : 2.0 * (n - 1) / n * bytes;
}
