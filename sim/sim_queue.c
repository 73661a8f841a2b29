#include "sim_queue.h"

#include <stdlib.h>

static bool before(const sim_event *a, const sim_event *b)
{
  return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

wl_status sim_queue_init(sim_queue *q, size_t capacity)
{
  q->len = 0;
  q->next_seq = 0;
  q->cap = capacity ? capacity : 16;
  q->heap = malloc(q->cap * sizeof *q->heap);
  return q->heap ? WL_OK : WL_ENOMEM;
}

void sim_queue_free(sim_queue *q)
{
  free(q->heap);
  q->heap = NULL;
  q->len = q->cap = 0;
}

wl_status sim_queue_push(sim_queue *q, sim_event ev)
{
  if (q->len == q->cap) {
    sim_event *grown = realloc(q->heap, 2 * q->cap * sizeof *grown);
    if (!grown)
      return WL_ENOMEM;
    q->heap = grown;
    q->cap *= 2;
  }
  ev.seq = q->next_seq++;
  size_t i = q->len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&ev, &q->heap[parent]))
      break;
    q->heap[i] = q->heap[parent];
    i = parent;
  }
  q->heap[i] = ev;
  return WL_OK;
}

bool sim_queue_pop(sim_queue *q, sim_event *ev)
{
  if (q->len == 0)
    return false;
  *ev = q->heap[0];
  sim_event last = q->heap[--q->len];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= q->len)
      break;
    if (child + 1 < q->len && before(&q->heap[child + 1], &q->heap[child]))
      child++;
    if (!before(&q->heap[child], &last))
      break;
    q->heap[i] = q->heap[child];
    i = child;
  }
  if (q->len > 0)
    q->heap[i] = last;
  return true;
}

const sim_event *sim_queue_peek(const sim_queue *q)
{
  return q->len ? &q->heap[0] : NULL;
}
