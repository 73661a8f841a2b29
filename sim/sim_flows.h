/* sim_flows — point-to-point transfers as flows that share links max-min fairly.
 *
 * Each link has a capacity in bytes/s. A flow crosses a set of links (a worker's upload and
 * the server's download, say) and moves its bytes at a rate; the rates are the max-min fair
 * allocation (progressive filling: every flow's rate is the smallest fair share among the
 * links it crosses, and no link is over capacity), recomputed whenever a flow starts or
 * ends. The caller advances time, adds and removes flows, and asks when the next flow will
 * finish; rates and remaining bytes are doubles. Flows are identified by a slot index;
 * among flows finishing together, the one added first comes first. No allocation after
 * creation. */
#ifndef SIM_FLOWS_H
#define SIM_FLOWS_H

#include <stdint.h>

#include "wl_status.h"

enum { SIM_FLOW_MAX_LINKS = 2 };

typedef struct sim_flow {
  int live;                          /* in use */
  int n_links;
  int links[SIM_FLOW_MAX_LINKS];     /* link indices it crosses */
  double remaining;                  /* bytes left */
  double start_s;                    /* when its first byte moves (may be a little after the
                                        time it was added: nothing moves before) */
  double rate;                       /* bytes/s now */
  uint64_t order;                    /* addition order, for deterministic completion order */
  int from, to, tag;                 /* the message it carries */
  int64_t bytes;
} sim_flow;

typedef struct sim_flows {
  int n_links;
  double *cap;        /* (n_links) bytes/s */
  sim_flow *f;        /* (max_flows) */
  int max_flows;
  int n_live;
  int *live;          /* (max_flows) the live slots, densely */
  int *free_slots;    /* (max_flows) a stack of free slots */
  int n_free;
  uint64_t next_order;
  double now_s;       /* time the remaining bytes refer to */
  /* scratch for the allocation */
  double *cap_left;   /* (n_links) */
  int *count;         /* (n_links) unfrozen flows on each link */
  double *share;      /* (n_links) */
  int *frozen;        /* (max_flows) */
  int *touched;       /* (2 max_flows) links crossed by live flows */
} sim_flows;

wl_status sim_flows_init(sim_flows *fl, int n_links, const double *capacity, int max_flows);
void sim_flows_free(sim_flows *fl);

/* Move every live flow's remaining bytes forward to time t (seconds, >= now_s). */
void sim_flows_advance(sim_flows *fl, double t);

/* Add a flow (after sim_flows_advance to the current time) whose bytes start moving at
 * start_s (>= now_s - 1e-9; a start in the past counts from now_s); returns its slot. Rates
 * are recomputed. */
int sim_flows_add(sim_flows *fl, const int *links, int n_links, double bytes, double start_s,
                  int from, int to, int tag);

/* Remove a finished flow; rates are recomputed. */
void sim_flows_remove(sim_flows *fl, int slot);

/* Remove a flow without recomputing the rates (call sim_flows_allocate after a batch). */
void sim_flows_drop(sim_flows *fl, int slot);

/* Seconds from now_s until the first live flow finishes (INFINITY when none), and that
 * flow's slot (ties: the earliest added). */
double sim_flows_next(const sim_flows *fl, int *slot);

/* Recompute the max-min fair rates of the live flows. */
void sim_flows_allocate(sim_flows *fl);

#endif
