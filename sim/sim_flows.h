/* sim_flows — point-to-point transfers as flows that share links max-min fairly.
 *
 * Each link has a capacity. A flow crosses one or two links (a worker's upload and the
 * server's download, say) and moves its bytes at its max-min fair rate: the allocation that
 * progressive filling finds (raise every flow's rate together; a flow stops rising when one
 * of its links is full), recomputed whenever a flow starts or ends or a capacity changes.
 *
 * Arithmetic is exact, so that any algorithm computing the allocation gives the same
 * results bit for bit:
 * - time is counted in ticks of 1/1024 ns; a flow's first byte moves at its exact start
 *   tick, and its completion is the first tick by which it has moved all its bytes, rounded
 *   to the nearest nanosecond once (halves up);
 * - capacities are integers in a unit q = 2^e bytes/s, q = max(2^-10, largest capacity of
 *   the run / 2^62): a capacity is rounded to the nearest unit (a link slower than q/2 moves
 *   nothing);
 * - a rate is a fraction num/den of units per tick (a link's capacity left over, shared by
 *   the flows it limits), and between two calls that move time (add, drop, pop, capacity
 *   change) a flow moves floor(num x ticks / den) units; a message of b bytes is
 *   ceil(b x 10^9 x 1024 / q) units, at least 1.
 *
 * Two solvers give these results. The reference is progressive filling over every live
 * flow, O(flows) per event. The incremental one handles the star every shipped policy makes
 * (each flow crosses one hub link, the server's, and one worker link no other flow uses):
 * flows through a hub form classes by their worker link's capacity; a class is limited
 * either by its own capacity or by the hub, whose flows all move at the hub's level; the
 * level is found by a search over the classes (a Fenwick tree), a class's flows sit in a
 * heap by the clock reading at which each finishes, and the hub-limited classes read one
 * virtual clock per hub. An event costs O(log flows + log classes), plus O(log classes)
 * per class that crosses the level. Any other pattern (two flows on one worker link, a
 * flow between two workers) falls back to the reference until it is gone; the switch is
 * exact both ways. */
#ifndef SIM_FLOWS_H
#define SIM_FLOWS_H

#include <stdint.h>

#include "sim_time.h"
#include "wl_status.h"

enum { SIM_FLOW_MAX_LINKS = 2, SIM_FLOW_TICK_BITS = 10 };
/* The largest message a flow carries: 2^50 bytes (about 1.1 PB; sim_config_check refuses a
 * scenario whose payloads are larger). */
enum { SIM_FLOW_MAX_MESSAGE_BITS = 50 };

__extension__ typedef __int128 sim_i128;

typedef struct sim_flow {
  sim_i128 start;       /* tick its first byte moves */
  sim_i128 amount;      /* units left (reference, pending); else its finish reading on its
                           class's clock */
  int64_t bytes;        /* the message it carries */
  uint64_t order;       /* addition order */
  int64_t num;          /* reference: rate num/den units per tick */
  int den;
  int links[SIM_FLOW_MAX_LINKS];
  int from, to, tag;
  int cls;              /* incremental: its class, -1 */
  int child, sib, prev; /* incremental: its place in its class's pairing heap */
  int pend;             /* incremental: index in the pending list (start still ahead), -1 */
  signed char n_links;
} sim_flow;

/* A completed flow: the message it carried. */
typedef struct sim_flow_done {
  int64_t bytes;
  uint64_t order;
  int from, to, tag;
  int links[SIM_FLOW_MAX_LINKS]; /* -1 past n_links */
} sim_flow_done;

typedef struct sim_flow_class sim_flow_class;
typedef struct sim_flow_hub sim_flow_hub;

typedef struct sim_flows {
  int n_links, max_flows, n_hubs;
  int exp;              /* capacity unit q = 2^exp bytes/s */
  int64_t *cap;         /* (n_links) units */
  int *count;           /* (n_links) live flows on each link */
  int *hub_of;          /* (n_links) hub index, -1 */
  int *link_class;      /* (n_links) capacity class of a worker link */
  int *link_flow;       /* (n_links) incremental: the flow on a worker link, -1 */
  sim_flow *f;          /* (max_flows) */
  int n_live;
  int *live;            /* (max_flows) live slots, densely; live_at[slot] indexes it */
  int *live_at;
  int *free_slots, n_free;
  uint64_t next_order;
  sim_i128 now;         /* tick the state refers to */
  int reference;        /* 1: the reference solver is in use */
  int forced;           /* the reference always */
  int n_odd;            /* worker links with two flows or more + flows not hub-and-worker */
  /* incremental */
  int G;                /* capacity classes (distinct worker-link capacities), ascending */
  int64_t *gcap;        /* (G) */
  sim_flow_hub *hub;    /* (n_hubs) */
  sim_flow_class *cls;  /* (n_hubs * G) */
  int *theap, n_theap;  /* classes limited by their own capacity, by finish tick */
  int *pending, n_pending;
  /* reference scratch */
  int64_t *left;        /* (n_links) capacity not yet given */
  int *unfrozen;        /* (n_links) */
  int *touched;         /* (n_links) */
  signed char *frozen;  /* (max_flows) */
  /* completions */
  sim_flow_done *done;  /* (max_flows) */
} sim_flows;

/* Links 0..n_links-1 with capacities in bytes/s; max_capacity bounds every capacity the
 * run will set (it fixes the unit); hubs lists the hub links (the server's). */
wl_status sim_flows_init(sim_flows *fl, int n_links, const double *capacity, double max_capacity,
                         const int *hubs, int n_hubs, int max_flows);
void sim_flows_free(sim_flows *fl);

/* Use the reference solver for the whole run (tests, and SYNCSIM_FLOWS=reference). */
void sim_flows_force_reference(sim_flows *fl);

/* Add a flow at time now (ns) whose first byte moves at now + start_frac/1024 ns
 * (0 <= start_frac < 1024) and that carries bytes (at most 2^50); returns its slot. */
int sim_flows_add(sim_flows *fl, sim_time now, const int *links, int n_links, int64_t bytes,
                  int64_t start_frac, int from, int to, int tag);

/* Remove every flow that crosses link at time now; returns how many. */
int sim_flows_drop_link(sim_flows *fl, sim_time now, int link);

/* New capacities (bytes/s) for every link from time now. */
wl_status sim_flows_set_capacity(sim_flows *fl, sim_time now, const double *capacity);

/* The nanosecond the next flow completes (>= the state's time), SIM_TIME_MAX if none. */
sim_time sim_flows_next(const sim_flows *fl);

/* Remove every flow that completes at time now (its completion rounds to now or earlier);
 * *done points to copies of them in the order they were added, valid until the next call. */
int sim_flows_pop_done(sim_flows *fl, sim_time now, const sim_flow_done **done);

/* The bytes the model holds per n_links links and max_flows flows (for memory estimates;
 * without the capacity classes, one per distinct worker-link capacity). */
double sim_flows_memory(int n_links, int max_flows);

/* A flow's rate now, bytes/s (tests). */
double sim_flows_rate(const sim_flows *fl, int slot);

#endif
