#include "sim_net.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_csv.h"

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

wl_status sim_net_init(sim_net_state *s, const sim_network_config *cfg, int K, char *err,
                       size_t err_size)
{
  memset(s, 0, sizeof *s);
  s->K = K;
  s->collective = cfg->collective;
  s->g = cfg->workers_per_node;
  s->up = malloc((size_t)K * sizeof *s->up);
  s->down = malloc((size_t)K * sizeof *s->down);
  s->lat = malloc((size_t)K * sizeof *s->lat);
  if (!s->up || !s->down || !s->lat)
    return WL_ENOMEM;
  double up = isnan(cfg->up_gbps) ? cfg->bandwidth_gbps : cfg->up_gbps;
  double down = isnan(cfg->down_gbps) ? cfg->bandwidth_gbps : cfg->down_gbps;
  for (int w = 0; w < K; w++) {
    double scale = cfg->n_link_scales ? cfg->link_scales[w] : 1.0;
    s->up[w] = sim_net_gbps_to_bytes_per_s(up * scale);
    s->down[w] = sim_net_gbps_to_bytes_per_s(down * scale);
    s->lat[w] = cfg->n_link_latencies ? cfg->link_latencies_s[w] : cfg->latency_s;
  }
  s->server =
    sim_net_gbps_to_bytes_per_s(isnan(cfg->server_gbps) ? cfg->bandwidth_gbps : cfg->server_gbps);
  s->inter = sim_net_gbps_to_bytes_per_s(cfg->inter_bandwidth_gbps);
  s->inter_lat = cfg->inter_latency_s;
  s->region = sim_net_gbps_to_bytes_per_s(cfg->region_bandwidth_gbps);
  s->region_lat = cfg->region_latency_s;
  if (cfg->trace[0])
    return sim_net_trace_load(cfg->trace, K, &s->changes, &s->n_changes, err, err_size);
  return WL_OK;
}

void sim_net_free(sim_net_state *s)
{
  free(s->up), free(s->down), free(s->lat), free(s->changes);
  memset(s, 0, sizeof *s);
}

double sim_net_next_change(const sim_net_state *s)
{
  return s->next < s->n_changes ? s->changes[s->next].t : INFINITY;
}

static void set_worker(sim_net_state *s, int w, double bps, double lat)
{
  if (!isnan(bps))
    s->up[w] = s->down[w] = bps;
  if (!isnan(lat))
    s->lat[w] = lat;
}

void sim_net_apply(sim_net_state *s, double t)
{
  for (; s->next < s->n_changes && s->changes[s->next].t <= t; s->next++) {
    const sim_net_change *c = &s->changes[s->next];
    if (c->link == SIM_LINK_SERVER) {
      if (!isnan(c->bps))
        s->server = c->bps;
    } else if (c->link == SIM_LINK_INTER) {
      if (!isnan(c->bps))
        s->inter = c->bps;
      if (!isnan(c->lat))
        s->inter_lat = c->lat;
    } else if (c->link == SIM_LINK_ALL) {
      for (int w = 0; w < s->K; w++)
        set_worker(s, w, c->bps, c->lat);
    } else {
      set_worker(s, c->link, c->bps, c->lat);
    }
  }
}

double sim_net_allreduce_time(const sim_net_state *s, const uint8_t *mask, double bytes)
{
  double B = INFINITY, alpha = 0;
  int K = 0, g = s->g;
  for (int w = 0; w < s->K; w++) {
    if (mask && !mask[w])
      continue;
    B = fmin(B, fmin(s->up[w], s->down[w]));
    alpha = fmax(alpha, s->lat[w]);
    K++;
  }
  if (K <= 1)
    return 0.0;
  if (s->collective == SIM_COLL_HIERARCHICAL) /* (with workers missing: nodes rounded up) */
    return sim_net_hierarchical_s(g < K ? g : K, (K + g - 1) / g, alpha, B, s->inter_lat,
                                  s->inter, bytes);
  if (g > 0 && K > g) { /* a flat algorithm across nodes: the slowest link sets the pace */
    alpha = fmax(alpha, s->inter_lat);
    B = fmin(B, s->inter);
  }
  switch (s->collective) {
  case SIM_COLL_TREE: return sim_net_tree_s(K, alpha, B, bytes);
  case SIM_COLL_HALVING_DOUBLING: return sim_net_halving_doubling_s(K, alpha, B, bytes);
  default: return sim_net_ring_s(K, alpha, B, bytes);
  }
}

/* A value of the trace: a finite number >= 0, or "-" (NaN: unchanged). */
static int parse_value(const char *text, double *out)
{
  if (strcmp(text, "-") == 0) {
    *out = NAN;
    return 1;
  }
  return sim_csv_number(text, out) && *out >= 0;
}

wl_status sim_net_trace_load(const char *path, int K, sim_net_change **out, int *n, char *err,
                             size_t err_size)
{
  *out = NULL;
  *n = 0;
  sim_csv c;
  wl_status st = sim_csv_open(&c, path, err, err_size);
  int cap = 0, got;
  while (st == WL_OK && (got = sim_csv_next(&c, "time_s", err, err_size)) != 0) {
    if (got < 0) {
      st = WL_ECONFIG;
      break;
    }
    double t, bps, lat;
    char *end;
    int ok = c.n_fields == 4 && parse_value(c.field[0], &t) && !isnan(t) &&
             parse_value(c.field[2], &bps) && parse_value(c.field[3], &lat);
    const char *who = ok ? c.field[1] : "";
    int link = 0;
    if (ok && strcmp(who, "*") == 0)
      link = SIM_LINK_ALL;
    else if (ok && strcmp(who, "server") == 0)
      link = SIM_LINK_SERVER;
    else if (ok && strcmp(who, "inter") == 0)
      link = SIM_LINK_INTER;
    else if (ok) {
      long w = strtol(who, &end, 10);
      ok = *who && *end == '\0' && w >= 0 && w < K;
      link = (int)w;
    }
    if (ok && bps == 0)
      ok = 0;
    if (!ok) {
      snprintf(err, err_size, "%s:%d: expected time_s,link,bandwidth_gbps,latency_s with link a "
               "worker in [0, %d), *, server or inter, and finite values >= 0 (bandwidth > 0) "
               "or -, got \"%.60s\"", path, c.lineno, K, c.raw);
      st = WL_ECONFIG;
      break;
    }
    if (*n > 0 && t < (*out)[*n - 1].t) {
      snprintf(err, err_size, "%s:%d: expected times in nondecreasing order, got %g after %g",
               path, c.lineno, t, (*out)[*n - 1].t);
      st = WL_ECONFIG;
      break;
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      sim_net_change *grown = realloc(*out, (size_t)cap * sizeof *grown);
      if (!grown) {
        st = WL_ENOMEM;
        break;
      }
      *out = grown;
    }
    (*out)[(*n)++] = (sim_net_change){t, link, isnan(bps) ? NAN : sim_net_gbps_to_bytes_per_s(bps),
                                      lat};
  }
  sim_csv_close(&c);
  if (st != WL_OK) {
    free(*out);
    *out = NULL;
    *n = 0;
  }
  return st;
}
