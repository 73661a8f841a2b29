#include "sim_flows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

wl_status sim_flows_init(sim_flows *fl, int n_links, const double *capacity, int max_flows)
{
  memset(fl, 0, sizeof *fl);
  fl->n_links = n_links;
  fl->max_flows = max_flows;
  fl->cap = malloc((size_t)n_links * sizeof *fl->cap);
  fl->cap_left = malloc((size_t)n_links * sizeof *fl->cap_left);
  fl->share = malloc((size_t)n_links * sizeof *fl->share);
  fl->count = calloc((size_t)n_links, sizeof *fl->count);
  fl->f = calloc((size_t)max_flows, sizeof *fl->f);
  fl->frozen = malloc((size_t)max_flows * sizeof *fl->frozen);
  fl->touched = malloc((size_t)max_flows * SIM_FLOW_MAX_LINKS * sizeof *fl->touched);
  if (!fl->cap || !fl->cap_left || !fl->share || !fl->count || !fl->f || !fl->frozen ||
      !fl->touched)
    return WL_ENOMEM;
  memcpy(fl->cap, capacity, (size_t)n_links * sizeof *fl->cap);
  return WL_OK;
}

void sim_flows_free(sim_flows *fl)
{
  free(fl->cap), free(fl->cap_left), free(fl->share), free(fl->count);
  free(fl->f), free(fl->frozen), free(fl->touched);
  memset(fl, 0, sizeof *fl);
}

void sim_flows_advance(sim_flows *fl, double t)
{
  double dt = t - fl->now_s;
  WL_ASSERT(dt >= 0);
  for (int i = 0; dt > 0 && i < fl->max_flows; i++)
    if (fl->f[i].live)
      fl->f[i].remaining = fmax(0.0, fl->f[i].remaining - fl->f[i].rate * dt);
  fl->now_s = t;
}

/* Progressive filling: repeatedly find the links with the smallest fair share among
 * unfrozen flows, give that share to their unfrozen flows and freeze them. */
void sim_flows_allocate(sim_flows *fl)
{
  int n_touched = 0, unfrozen = 0;
  for (int i = 0; i < fl->max_flows; i++) {
    sim_flow *f = &fl->f[i];
    if (!f->live)
      continue;
    fl->frozen[i] = 0;
    unfrozen++;
    for (int k = 0; k < f->n_links; k++) {
      int l = f->links[k];
      if (fl->count[l]++ == 0) {
        fl->touched[n_touched++] = l;
        fl->cap_left[l] = fl->cap[l];
      }
    }
  }
  while (unfrozen > 0) {
    double best = INFINITY;
    for (int j = 0; j < n_touched; j++) {
      int l = fl->touched[j];
      fl->share[l] = fl->count[l] > 0 ? fl->cap_left[l] / fl->count[l] : INFINITY;
      best = fmin(best, fl->share[l]);
    }
    for (int i = 0; i < fl->max_flows; i++) {
      sim_flow *f = &fl->f[i];
      if (!f->live || fl->frozen[i])
        continue;
      int bottleneck = 0;
      for (int k = 0; k < f->n_links; k++)
        bottleneck |= fl->share[f->links[k]] == best;
      if (!bottleneck)
        continue;
      f->rate = best;
      fl->frozen[i] = 1;
      unfrozen--;
      for (int k = 0; k < f->n_links; k++) {
        int l = f->links[k];
        fl->cap_left[l] = fmax(0.0, fl->cap_left[l] - best);
        fl->count[l]--;
      }
    }
  }
  for (int j = 0; j < n_touched; j++)
    fl->count[fl->touched[j]] = 0;
}

int sim_flows_add(sim_flows *fl, const int *links, int n_links, double bytes, int from, int to,
                  int tag)
{
  WL_ASSERT(n_links >= 1 && n_links <= SIM_FLOW_MAX_LINKS);
  int slot = -1;
  for (int i = 0; i < fl->max_flows && slot < 0; i++)
    if (!fl->f[i].live)
      slot = i;
  WL_ASSERT(slot >= 0);
  sim_flow *f = &fl->f[slot];
  *f = (sim_flow){.live = 1, .n_links = n_links, .remaining = bytes, .order = fl->next_order++,
                  .from = from, .to = to, .tag = tag, .bytes = (int64_t)bytes};
  memcpy(f->links, links, (size_t)n_links * sizeof *links);
  fl->n_live++;
  sim_flows_allocate(fl);
  return slot;
}

void sim_flows_remove(sim_flows *fl, int slot)
{
  WL_ASSERT(fl->f[slot].live);
  fl->f[slot].live = 0;
  fl->n_live--;
  sim_flows_allocate(fl);
}

double sim_flows_next(const sim_flows *fl, int *slot)
{
  double best = INFINITY;
  uint64_t best_order = UINT64_MAX;
  *slot = -1;
  for (int i = 0; i < fl->max_flows; i++) {
    const sim_flow *f = &fl->f[i];
    if (!f->live)
      continue;
    double t = f->rate > 0 ? f->remaining / f->rate : INFINITY;
    if (t < best || (t == best && f->order < best_order)) {
      best = t;
      best_order = f->order;
      *slot = i;
    }
  }
  return best;
}
