/* sim_queue — the event queue: a binary min-heap ordered by (time, seq).
 *
 * seq is a counter the queue assigns at push, so events scheduled for the same time pop in
 * the order they were scheduled (as libuv orders its timers). Push and pop are O(log n).
 * The heap grows by doubling when full; size it up front (sim_queue_init's capacity) to
 * keep the event loop free of allocation. */
#ifndef SIM_QUEUE_H
#define SIM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_time.h"
#include "wl_status.h"

typedef struct sim_event {
  sim_time time; /* when it fires */
  uint64_t seq;  /* scheduling order, assigned by the queue */
  int kind;      /* what happens (the runner's SIM_EV_*) */
  int worker;    /* which worker, or -1 */
  int tag;       /* the policy's tag, for collectives, messages and timers */
  int src;       /* a message's sender */
  int64_t gen;   /* a generation: the event is void when its subject has moved on */
  int64_t arg;   /* a payload size in bytes, or 0 */
  double x;      /* a transfer's start after its event, in 1/1024 ns (0..1023) */
} sim_event;

typedef struct sim_queue {
  sim_event *heap; /* (cap) heap[0] is the earliest */
  size_t len;      /* events queued */
  size_t cap;      /* allocated slots */
  uint64_t next_seq;
} sim_queue;

wl_status sim_queue_init(sim_queue *q, size_t capacity);
void sim_queue_free(sim_queue *q);

/* Queue ev (its seq is overwritten). WL_ENOMEM if growing fails; the queue is unchanged. */
wl_status sim_queue_push(sim_queue *q, sim_event ev);

/* Remove the earliest event into *ev; false when the queue is empty. */
bool sim_queue_pop(sim_queue *q, sim_event *ev);

/* The earliest event without removing it, or NULL. */
const sim_event *sim_queue_peek(const sim_queue *q);

#endif
