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
  fl->live = malloc((size_t)max_flows * sizeof *fl->live);
  fl->free_slots = malloc((size_t)max_flows * sizeof *fl->free_slots);
  if (!fl->cap || !fl->cap_left || !fl->share || !fl->count || !fl->f || !fl->frozen ||
      !fl->touched || !fl->live || !fl->free_slots)
    return WL_ENOMEM;
  for (int i = 0; i < max_flows; i++) /* slot 0 on top */
    fl->free_slots[i] = max_flows - 1 - i;
  fl->n_free = max_flows;
  memcpy(fl->cap, capacity, (size_t)n_links * sizeof *fl->cap);
  return WL_OK;
}

void sim_flows_free(sim_flows *fl)
{
  free(fl->cap), free(fl->cap_left), free(fl->share), free(fl->count);
  free(fl->f), free(fl->frozen), free(fl->touched), free(fl->live), free(fl->free_slots);
  memset(fl, 0, sizeof *fl);
}

void sim_flows_advance(sim_flows *fl, double t)
{
  WL_ASSERT(t >= fl->now_s);
  for (int j = 0; t > fl->now_s && j < fl->n_live; j++) {
    sim_flow *f = &fl->f[fl->live[j]];
    double from = f->start_s > fl->now_s ? f->start_s : fl->now_s;
    if (t <= from)
      continue;
    double left = f->remaining - f->rate * (t - from);
    f->remaining = left > 0.0 ? left : 0.0; /* (fmax is a library call in hot loops) */
  }
  fl->now_s = t;
}

/* Progressive filling: repeatedly find the links with the smallest fair share among
 * unfrozen flows, give that share to their unfrozen flows and freeze them. */
void sim_flows_allocate(sim_flows *fl)
{
  int n_touched = 0, unfrozen = 0;
  for (int j = 0; j < fl->n_live; j++) {
    int i = fl->live[j];
    sim_flow *f = &fl->f[i];
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
      double share = fl->count[l] > 0 ? fl->cap_left[l] / fl->count[l] : INFINITY;
      fl->share[l] = share;
      best = share < best ? share : best;
    }
    for (int j = 0; j < fl->n_live; j++) {
      int i = fl->live[j];
      sim_flow *f = &fl->f[i];
      if (fl->frozen[i])
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
        double left = fl->cap_left[l] - best;
        fl->cap_left[l] = left > 0.0 ? left : 0.0;
        fl->count[l]--;
      }
    }
  }
  for (int j = 0; j < n_touched; j++)
    fl->count[fl->touched[j]] = 0;
}

int sim_flows_add(sim_flows *fl, const int *links, int n_links, double bytes, double start_s,
                  int from, int to, int tag)
{
  WL_ASSERT(n_links >= 1 && n_links <= SIM_FLOW_MAX_LINKS);
  WL_ASSERT(fl->n_free > 0);
  int slot = fl->free_slots[--fl->n_free];
  sim_flow *f = &fl->f[slot];
  *f = (sim_flow){.live = 1, .n_links = n_links, .remaining = bytes, .start_s = start_s,
                  .order = fl->next_order++, .from = from, .to = to, .tag = tag,
                  .bytes = (int64_t)bytes};
  memcpy(f->links, links, (size_t)n_links * sizeof *links);
  fl->live[fl->n_live++] = slot;
  sim_flows_allocate(fl);
  return slot;
}

void sim_flows_drop(sim_flows *fl, int slot)
{
  WL_ASSERT(fl->f[slot].live);
  fl->f[slot].live = 0;
  for (int j = 0; j < fl->n_live; j++)
    if (fl->live[j] == slot) {
      fl->live[j] = fl->live[--fl->n_live];
      break;
    }
  fl->free_slots[fl->n_free++] = slot;
}

void sim_flows_remove(sim_flows *fl, int slot)
{
  sim_flows_drop(fl, slot);
  sim_flows_allocate(fl);
}

double sim_flows_next(const sim_flows *fl, int *slot)
{
  double best = INFINITY;
  uint64_t best_order = UINT64_MAX;
  *slot = -1;
  for (int j = 0; j < fl->n_live; j++) {
    int i = fl->live[j];
    const sim_flow *f = &fl->f[i];
    double t = f->rate > 0 ? f->remaining / f->rate : INFINITY;
    if (f->start_s > fl->now_s)
      t += f->start_s - fl->now_s;
    if (t < best || (t == best && f->order < best_order)) {
      best = t;
      best_order = f->order;
      *slot = i;
    }
  }
  return best;
}
