#include "sim_flows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef sim_i128 i128;

#define TICKS_PER_NS ((int64_t)1 << SIM_FLOW_TICK_BITS)
#define NEVER ((i128)1 << 126)
enum { CAP_BITS = 62, MIN_EXP = -10, MAX_MESSAGE_BITS = SIM_FLOW_MAX_MESSAGE_BITS };

/* A class: the flows through one hub whose worker links have one capacity. They all move at
 * one rate, so one clock W measures them: a flow finishes when W reaches its amount. */
struct sim_flow_class {
  i128 w0, t0;  /* limited by its own capacity c: W(t) = w0 + c (t - t0) */
  i128 off;     /* limited by the hub: W(t) = V(t) - off */
  i128 key;     /* finish tick (own capacity) or finish reading of V (hub) of its first flow */
  int n;        /* flows, pending ones included */
  int root;     /* pairing heap of its started flows by amount */
  int bound;    /* limited by the hub */
  int pos;      /* in its heap, -1 */
  int where;    /* 0 no heap, 1 the own-capacity heap, 2 its hub's heap */
};

/* A hub: its flows' classes, ascending by capacity; classes below b are limited by their
 * own capacity, those from b on share N units per tick among M flows. */
struct sim_flow_hub {
  int link, m, b, M;
  i128 N;
  i128 V, tV;   /* the hub-limited flows' clock: reading V at tick tV */
  int *fcnt;    /* Fenwick trees over the classes (1-based): flows, and flows x capacity */
  i128 *fsum;
  int *heap, n_heap;
};

/* ---- arithmetic ------------------------------------------------------------------------ */

static i128 ceil_div(i128 a, i128 b) { return a <= 0 ? a / b : (a - 1) / b + 1; } /* b > 0 */

static i128 sat_mul(i128 a, i128 b) /* a, b >= 0; saturates at NEVER */
{
  if ((a >> 62) == 0 && (b >> 62) == 0)
    return a * b;
  return a != 0 && b > NEVER / a ? NEVER : a * b;
}

/* Units moved in dt ticks at num/den units per tick. */
static i128 moved(i128 num, i128 den, i128 dt)
{
  if (dt <= 0 || num <= 0)
    return 0;
  i128 p = sat_mul(num, dt);
  return den == 1 ? p : p / den;
}

/* Ticks to move r units at num/den: the least dt with floor(num dt / den) >= r. */
static i128 ticks_to_move(i128 r, i128 num, i128 den)
{
  if (r <= 0)
    return 0;
  return num <= 0 ? NEVER : ceil_div(sat_mul(r, den), num);
}

static i128 tick_of(sim_time ns) { return (i128)ns << SIM_FLOW_TICK_BITS; }

static sim_time ns_of(i128 tick)
{
  if (tick >= tick_of(SIM_TIME_MAX))
    return SIM_TIME_MAX;
  i128 ns = (tick + TICKS_PER_NS / 2) >> SIM_FLOW_TICK_BITS;
  return ns < 0 ? 0 : (sim_time)ns;
}

static int64_t cap_units(const sim_flows *fl, double bytes_per_s)
{
  double u = ldexp(bytes_per_s, -fl->exp);
  if (!(u >= 0.5))
    return 0;
  if (u >= 0x1p62)
    return ((int64_t)1 << CAP_BITS) - 1;
  return llround(u);
}

static i128 message_units(const sim_flows *fl, int64_t bytes)
{
  WL_ASSERT(bytes >= 0 && bytes <= (int64_t)1 << MAX_MESSAGE_BITS);
  i128 b = (i128)bytes * 1000000000;
  int sh = SIM_FLOW_TICK_BITS - fl->exp;
  b = sh >= 0 ? b << sh : (b + (((i128)1 << -sh) - 1)) >> -sh;
  return b < 1 ? 1 : b;
}

/* ---- the live list ----------------------------------------------------------------------- */

static int hub_link(const sim_flows *fl, const sim_flow *f, int *worker_link)
{
  int h = -1;
  *worker_link = -1;
  for (int k = 0; k < f->n_links; k++) {
    if (fl->hub_of[f->links[k]] >= 0)
      h = fl->hub_of[f->links[k]];
    else
      *worker_link = f->links[k];
  }
  return h;
}

/* A flow of the star: one hub link and one worker link. */
static int plain(const sim_flows *fl, const sim_flow *f)
{
  int l;
  return f->n_links == 2 && hub_link(fl, f, &l) >= 0 && l >= 0;
}

static void count_links(sim_flows *fl, const sim_flow *f, int d)
{
  if (!plain(fl, f))
    fl->n_odd += d;
  for (int k = 0; k < f->n_links; k++) {
    int l = f->links[k];
    if (fl->hub_of[l] < 0 && (d > 0 ? ++fl->count[l] == 2 : fl->count[l]-- == 2))
      fl->n_odd += d;
    else if (fl->hub_of[l] >= 0)
      fl->count[l] += d;
  }
}

static void free_slot(sim_flows *fl, int slot)
{
  int j = fl->live_at[slot], last = fl->live[--fl->n_live];
  fl->live[j] = last;
  fl->live_at[last] = j;
  fl->free_slots[fl->n_free++] = slot;
  count_links(fl, &fl->f[slot], -1);
  for (int k = 0; k < fl->f[slot].n_links; k++)
    if (fl->link_flow[fl->f[slot].links[k]] == slot)
      fl->link_flow[fl->f[slot].links[k]] = -1;
}

/* ---- the reference: progressive filling over every flow -------------------------------- */

static i128 ref_from(const sim_flows *fl, const sim_flow *f)
{
  return f->start > fl->now ? f->start : fl->now;
}

static void ref_advance(sim_flows *fl, i128 t)
{
  for (int j = 0; j < fl->n_live; j++) {
    sim_flow *f = &fl->f[fl->live[j]];
    i128 from = ref_from(fl, f);
    if (t > from)
      f->amount -= moved(f->num, f->den, t - from);
  }
}

/* Share of link a below (-1), equal to (0) or above (1) share b (exact fractions). */
static int share_cmp(const sim_flows *fl, int a, int b)
{
  i128 x = (i128)fl->left[a] * fl->unfrozen[b], y = (i128)fl->left[b] * fl->unfrozen[a];
  return x < y ? -1 : x > y;
}

static void ref_allocate(sim_flows *fl)
{
  int n_touched = 0, unfrozen = fl->n_live;
  for (int j = 0; j < fl->n_live; j++) {
    sim_flow *f = &fl->f[fl->live[j]];
    fl->frozen[fl->live[j]] = 0;
    for (int k = 0; k < f->n_links; k++) {
      int l = f->links[k];
      if (fl->unfrozen[l]++ == 0) {
        fl->touched[n_touched++] = l;
        fl->left[l] = fl->cap[l];
      }
    }
  }
  while (unfrozen > 0) {
    int best = -1;
    for (int j = 0; j < n_touched; j++) {
      int l = fl->touched[j];
      if (fl->unfrozen[l] > 0 && (best < 0 || share_cmp(fl, l, best) < 0))
        best = l;
    }
    int64_t bn = fl->left[best];
    int bd = fl->unfrozen[best];
    /* the links at the best share, as the round starts (marked by a negative count) */
    for (int j = 0; j < n_touched; j++) {
      int l = fl->touched[j];
      if (fl->unfrozen[l] > 0 && (i128)fl->left[l] * bd == (i128)bn * fl->unfrozen[l])
        fl->unfrozen[l] = -fl->unfrozen[l];
    }
    int64_t given = (int64_t)ceil_div(bn, bd);
    for (int j = 0; j < fl->n_live; j++) {
      int i = fl->live[j];
      sim_flow *f = &fl->f[i];
      int at_best = 0;
      for (int k = 0; k < f->n_links; k++)
        at_best |= fl->unfrozen[f->links[k]] < 0;
      if (fl->frozen[i] || !at_best)
        continue;
      f->num = bn;
      f->den = bd;
      fl->frozen[i] = 1;
      unfrozen--;
      for (int k = 0; k < f->n_links; k++) {
        int l = f->links[k];
        fl->left[l] = fl->left[l] > given ? fl->left[l] - given : 0;
        fl->unfrozen[l] += fl->unfrozen[l] < 0 ? 1 : -1;
      }
    }
    for (int j = 0; j < n_touched; j++) {
      int l = fl->touched[j];
      if (fl->unfrozen[l] < 0)
        fl->unfrozen[l] = -fl->unfrozen[l];
    }
  }
  for (int j = 0; j < n_touched; j++)
    fl->unfrozen[fl->touched[j]] = 0;
}

static i128 ref_next(const sim_flows *fl)
{
  i128 best = NEVER;
  for (int j = 0; j < fl->n_live; j++) {
    const sim_flow *f = &fl->f[fl->live[j]];
    i128 t = ref_from(fl, f) + ticks_to_move(f->amount, f->num, f->den);
    best = t < best ? t : best;
  }
  return best;
}

/* ---- the incremental solver ------------------------------------------------------------ */

static sim_flow_class *class_of(const sim_flows *fl, int h, int k) { return &fl->cls[h * fl->G + k]; }

static i128 hub_read(const sim_flow_hub *hub, i128 t)
{
  return hub->M > 0 ? hub->V + moved(hub->N, hub->M, t - hub->tV) : hub->V;
}

static i128 class_read(const sim_flows *fl, int h, int k, i128 t)
{
  const sim_flow_class *c = class_of(fl, h, k);
  return c->bound ? hub_read(&fl->hub[h], t) - c->off : c->w0 + sat_mul(fl->gcap[k], t - c->t0);
}

static void class_rate(const sim_flows *fl, int h, int k, i128 *num, i128 *den)
{
  const sim_flow_hub *hub = &fl->hub[h];
  if (class_of(fl, h, k)->bound)
    *num = hub->N, *den = hub->M;
  else
    *num = fl->gcap[k], *den = 1;
}

/* Fenwick trees */
static int high_bit(int n)
{
  int b = 1;
  while (b * 2 <= n)
    b *= 2;
  return b;
}

static void fen_add(sim_flow_hub *hub, int G, int k, int dn, i128 ds)
{
  for (int i = k + 1; i <= G; i += i & -i)
    hub->fcnt[i] += dn, hub->fsum[i] += ds;
}

/* The first class at or after k with flows (G if none). */
static int next_nonempty(const sim_flows *fl, const sim_flow_hub *hub, int k)
{
  int before = 0;
  for (int i = k; i > 0; i -= i & -i)
    before += hub->fcnt[i];
  if (k >= fl->G || before >= hub->m)
    return fl->G;
  int pos = 0, acc = 0;
  for (int step = high_bit(fl->G); step > 0; step >>= 1)
    if (pos + step <= fl->G && acc + hub->fcnt[pos + step] <= before) {
      pos += step;
      acc += hub->fcnt[pos];
    }
  return pos;
}

/* The hub's level: class k is limited by its own capacity c_k while
 * C - sum_{j<=k} n_j c_j - c_k (m - sum_{j<=k} n_j) >= 0, a prefix of the classes. */
static void hub_level(const sim_flows *fl, sim_flow_hub *hub)
{
  int pos = 0, cnt = 0;
  i128 sum = 0, C = fl->cap[hub->link];
  for (int step = high_bit(fl->G); step > 0; step >>= 1) {
    int nx = pos + step;
    if (nx > fl->G)
      continue;
    int c2 = cnt + hub->fcnt[nx];
    i128 s2 = sum + hub->fsum[nx];
    if (C - s2 - (i128)fl->gcap[nx - 1] * (hub->m - c2) >= 0)
      pos = nx, cnt = c2, sum = s2;
  }
  hub->b = pos;
  hub->M = hub->m - cnt;
  hub->N = hub->M > 0 ? C - sum : 0;
}

/* Indexed binary heaps of classes by key (ties: class index). */
static int class_less(const sim_flows *fl, int a, int b)
{
  i128 x = fl->cls[a].key, y = fl->cls[b].key;
  return x < y || (x == y && a < b);
}

static void heap_put(sim_flows *fl, int *heap, int i, int id)
{
  heap[i] = id;
  fl->cls[id].pos = i;
}

static void heap_up(sim_flows *fl, int *heap, int i)
{
  int id = heap[i];
  for (; i > 0 && class_less(fl, id, heap[(i - 1) / 2]); i = (i - 1) / 2)
    heap_put(fl, heap, i, heap[(i - 1) / 2]);
  heap_put(fl, heap, i, id);
}

static void heap_down(sim_flows *fl, int *heap, int n, int i)
{
  int id = heap[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && class_less(fl, heap[c + 1], heap[c]))
      c++;
    if (!class_less(fl, heap[c], id))
      break;
    heap_put(fl, heap, i, heap[c]);
    i = c;
  }
  heap_put(fl, heap, i, id);
}

static void heap_remove(sim_flows *fl, int *heap, int *n, int id)
{
  int i = fl->cls[id].pos, last = heap[--*n];
  fl->cls[id].pos = -1;
  if (last == id)
    return;
  heap_put(fl, heap, i, last);
  heap_up(fl, heap, i);
  heap_down(fl, heap, *n, fl->cls[last].pos);
}

/* Pairing heaps of flows by amount (ties: addition order). */
static int flow_less(const sim_flow *f, int a, int b)
{
  return f[a].amount < f[b].amount || (f[a].amount == f[b].amount && f[a].order < f[b].order);
}

static int pair_meld(sim_flow *f, int a, int b)
{
  if (a < 0)
    return b;
  if (b < 0)
    return a;
  if (flow_less(f, b, a)) {
    int t = a;
    a = b, b = t;
  }
  f[b].prev = a;
  f[b].sib = f[a].child;
  if (f[a].child >= 0)
    f[f[a].child].prev = b;
  f[a].child = b;
  return a;
}

/* Meld a list of siblings in two passes. */
static int pair_combine(sim_flow *f, int first)
{
  int stack = -1;
  while (first >= 0) {
    int a = first, b = f[a].sib;
    first = b >= 0 ? f[b].sib : -1;
    f[a].sib = f[a].prev = -1;
    if (b >= 0)
      f[b].sib = f[b].prev = -1;
    int m = pair_meld(f, a, b);
    f[m].sib = stack;
    stack = m;
  }
  if (stack < 0)
    return -1;
  int root = stack;
  stack = f[root].sib;
  f[root].sib = -1;
  while (stack >= 0) {
    int next = f[stack].sib;
    f[stack].sib = -1;
    root = pair_meld(f, root, stack);
    stack = next;
  }
  f[root].prev = f[root].sib = -1;
  return root;
}

static int pair_insert(sim_flow *f, int root, int x)
{
  f[x].child = f[x].sib = f[x].prev = -1;
  return pair_meld(f, root, x);
}

static int pair_delete(sim_flow *f, int root, int x)
{
  if (x != root) {
    int p = f[x].prev;
    if (f[p].child == x)
      f[p].child = f[x].sib;
    else
      f[p].sib = f[x].sib;
    if (f[x].sib >= 0)
      f[f[x].sib].prev = p;
  }
  int sub = pair_combine(f, f[x].child);
  f[x].child = f[x].sib = f[x].prev = -1;
  return x == root ? sub : pair_meld(f, root, sub);
}

/* Put class (h, k) in the heap its state says, keyed by its first flow's finish. */
static void class_place(sim_flows *fl, int h, int k)
{
  int id = h * fl->G + k;
  sim_flow_class *c = &fl->cls[id];
  sim_flow_hub *hub = &fl->hub[h];
  if (c->where == 1)
    heap_remove(fl, fl->theap, &fl->n_theap, id);
  else if (c->where == 2)
    heap_remove(fl, hub->heap, &hub->n_heap, id);
  c->where = 0;
  if (c->root < 0)
    return;
  i128 amount = fl->f[c->root].amount;
  if (c->bound) {
    c->key = amount + c->off;
    heap_put(fl, hub->heap, hub->n_heap, id);
    heap_up(fl, hub->heap, hub->n_heap++);
    c->where = 2;
  } else {
    i128 cap = fl->gcap[k];
    c->key = cap > 0 ? c->t0 + ceil_div(amount - c->w0, cap) : NEVER;
    heap_put(fl, fl->theap, fl->n_theap, id);
    heap_up(fl, fl->theap, fl->n_theap++);
    c->where = 1;
  }
}

/* Class (h, k) becomes limited by the hub (or by its own capacity) now: its clock keeps its
 * reading. */
static void class_flip(sim_flows *fl, int h, int k, int bound)
{
  sim_flow_class *c = class_of(fl, h, k);
  i128 w = class_read(fl, h, k, fl->now);
  if (bound)
    c->off = fl->hub[h].V - w;
  else
    c->w0 = w, c->t0 = fl->now;
  c->bound = bound;
  class_place(fl, h, k);
}

/* After hub h's flows changed: its new level, and the classes that cross it. */
static void hub_relevel(sim_flows *fl, int h)
{
  sim_flow_hub *hub = &fl->hub[h];
  int b0 = hub->b;
  hub_level(fl, hub);
  int lo = b0 < hub->b ? b0 : hub->b, hi = b0 < hub->b ? hub->b : b0;
  for (int k = next_nonempty(fl, hub, lo); k < hi; k = next_nonempty(fl, hub, k + 1))
    if (class_of(fl, h, k)->bound != (k >= hub->b))
      class_flip(fl, h, k, k >= hub->b);
  if (hub->M == 0) /* no flow reads the hub's clock */
    hub->V = 0, hub->tV = fl->now;
}

static void pending_remove(sim_flows *fl, int slot)
{
  int i = fl->f[slot].pend, last = fl->pending[--fl->n_pending];
  fl->pending[i] = last;
  fl->f[last].pend = i;
  fl->f[slot].pend = -1;
}

/* A started flow joins its class's heap with the units it has left. */
static void class_join(sim_flows *fl, int slot, i128 left)
{
  sim_flow *f = &fl->f[slot];
  int h = f->cls / fl->G, k = f->cls % fl->G;
  sim_flow_class *c = class_of(fl, h, k);
  f->amount = class_read(fl, h, k, fl->now) + left;
  c->root = pair_insert(fl->f, c->root, slot);
}

static void inc_add(sim_flows *fl, int slot)
{
  sim_flow *f = &fl->f[slot];
  int l, h = hub_link(fl, f, &l), k = fl->link_class[l];
  sim_flow_hub *hub = &fl->hub[h];
  sim_flow_class *c = class_of(fl, h, k);
  if (c->n++ == 0) {
    c->bound = k >= hub->b;
    c->off = hub->V, c->w0 = 0, c->t0 = fl->now;
    c->root = -1;
  }
  hub->m++;
  fen_add(hub, fl->G, k, 1, fl->gcap[k]);
  fl->link_flow[l] = slot;
  f->cls = h * fl->G + k;
  i128 units = f->amount;
  if (f->start > fl->now) {
    f->pend = fl->n_pending;
    fl->pending[fl->n_pending++] = slot;
  } else {
    class_join(fl, slot, units);
  }
  hub_relevel(fl, h);
  class_place(fl, h, k);
}

/* Take a flow out of its class (the level is not recomputed). */
static void inc_detach(sim_flows *fl, int slot)
{
  sim_flow *f = &fl->f[slot];
  int h = f->cls / fl->G, k = f->cls % fl->G, l;
  sim_flow_class *c = class_of(fl, h, k);
  if (f->pend >= 0)
    pending_remove(fl, slot);
  else
    c->root = pair_delete(fl->f, c->root, slot);
  c->n--;
  fl->hub[h].m--;
  fen_add(&fl->hub[h], fl->G, k, -1, -(i128)fl->gcap[k]);
  hub_link(fl, f, &l);
  fl->link_flow[l] = -1;
  f->cls = -1;
}

static void inc_advance(sim_flows *fl, i128 t)
{
  for (int h = 0; h < fl->n_hubs; h++) {
    sim_flow_hub *hub = &fl->hub[h];
    hub->V = hub_read(hub, t);
    hub->tV = t;
  }
  /* flows whose first byte moved by t: the units they moved since, at their class's rate */
  i128 before = fl->now;
  fl->now = t;
  for (int i = fl->n_pending - 1; i >= 0; i--) {
    int slot = fl->pending[i];
    sim_flow *f = &fl->f[slot];
    if (f->start > t)
      continue;
    i128 num, den;
    class_rate(fl, f->cls / fl->G, f->cls % fl->G, &num, &den);
    i128 left = f->amount - moved(num, den, t - (f->start > before ? f->start : before));
    pending_remove(fl, slot);
    class_join(fl, slot, left);
    class_place(fl, f->cls / fl->G, f->cls % fl->G);
  }
}

static i128 inc_next(const sim_flows *fl)
{
  i128 best = fl->n_theap > 0 ? fl->cls[fl->theap[0]].key : NEVER;
  for (int h = 0; h < fl->n_hubs; h++) {
    const sim_flow_hub *hub = &fl->hub[h];
    if (hub->n_heap == 0)
      continue;
    i128 t = hub->tV + ticks_to_move(fl->cls[hub->heap[0]].key - hub->V, hub->N, hub->M);
    best = t < best ? t : best;
  }
  for (int i = 0; i < fl->n_pending; i++) {
    const sim_flow *f = &fl->f[fl->pending[i]];
    i128 num, den;
    class_rate(fl, f->cls / fl->G, f->cls % fl->G, &num, &den);
    i128 t = f->start + ticks_to_move(f->amount, num, den);
    best = t < best ? t : best;
  }
  return best;
}

/* ---- switching between the solvers ------------------------------------------------------ */

static void reset_classes(sim_flows *fl)
{
  for (int i = 0; i < fl->n_hubs * fl->G; i++)
    fl->cls[i] = (sim_flow_class){.root = -1, .pos = -1};
  for (int h = 0; h < fl->n_hubs; h++) {
    sim_flow_hub *hub = &fl->hub[h];
    memset(hub->fcnt, 0, (size_t)(fl->G + 1) * sizeof *hub->fcnt);
    memset(hub->fsum, 0, (size_t)(fl->G + 1) * sizeof *hub->fsum);
    hub->m = hub->n_heap = hub->M = 0;
    hub->N = hub->V = 0;
    hub->tV = fl->now;
    hub->b = fl->G;
  }
  fl->n_theap = fl->n_pending = 0;
}

/* Incremental -> reference: each flow's units left (a flow being added has no class yet). */
static void to_reference(sim_flows *fl)
{
  for (int j = 0; j < fl->n_live; j++) {
    int slot = fl->live[j];
    sim_flow *f = &fl->f[slot];
    int h = f->cls / fl->G, k = f->cls % fl->G;
    if (f->cls >= 0 && f->pend < 0)
      f->amount -= class_read(fl, h, k, fl->now);
    f->cls = f->pend = -1;
  }
  reset_classes(fl);
  fl->reference = 1;
}

/* Reference -> incremental (every flow plain). */
static void to_incremental(sim_flows *fl)
{
  reset_classes(fl);
  fl->reference = 0;
  for (int j = 0; j < fl->n_live; j++) {
    int slot = fl->live[j];
    fl->f[slot].pend = -1;
    inc_add(fl, slot);
  }
}

/* After flows left or a capacity changed: the solver the flows now allow, and its rates. */
static void settle(sim_flows *fl)
{
  if (fl->reference && !fl->forced && fl->n_odd == 0)
    to_incremental(fl);
  else if (fl->reference)
    ref_allocate(fl);
}

static void advance(sim_flows *fl, sim_time now)
{
  i128 t = tick_of(now);
  WL_ASSERT(t >= fl->now);
  if (t == fl->now)
    return;
  if (fl->reference) {
    ref_advance(fl, t);
    fl->now = t;
  } else {
    inc_advance(fl, t);
  }
}

/* ---- classes of capacity ----------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The distinct worker-link capacities, ascending, and each worker link's class. */
static wl_status build_classes(sim_flows *fl)
{
  int n = 0;
  int64_t *v = malloc((size_t)fl->n_links * sizeof *v);
  if (!v)
    return WL_ENOMEM;
  for (int l = 0; l < fl->n_links; l++)
    if (fl->hub_of[l] < 0)
      v[n++] = fl->cap[l];
  qsort(v, (size_t)n, sizeof *v, cmp_i64);
  int G = 0;
  for (int i = 0; i < n; i++)
    if (G == 0 || v[i] != v[G - 1])
      v[G++] = v[i];
  if (G == 0)
    v[G++] = 0;
  for (int l = 0; l < fl->n_links; l++) {
    fl->link_class[l] = -1;
    if (fl->hub_of[l] >= 0)
      continue;
    int lo = 0, hi = G - 1;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (v[mid] < fl->cap[l])
        lo = mid + 1;
      else
        hi = mid;
    }
    fl->link_class[l] = lo;
  }
  free(fl->gcap);
  fl->gcap = v;
  if (G != fl->G) {
    fl->G = G;
    sim_flow_class *c = realloc(fl->cls, (size_t)(fl->n_hubs * G) * sizeof *c);
    int *th = c ? realloc(fl->theap, (size_t)(fl->n_hubs * G) * sizeof *th) : NULL;
    if (c)
      fl->cls = c;
    if (th)
      fl->theap = th;
    if (!c || !th)
      return WL_ENOMEM;
    for (int h = 0; h < fl->n_hubs; h++) {
      sim_flow_hub *hub = &fl->hub[h];
      int *a = realloc(hub->fcnt, (size_t)(G + 1) * sizeof *a);
      if (a)
        hub->fcnt = a;
      i128 *s = a ? realloc(hub->fsum, (size_t)(G + 1) * sizeof *s) : NULL;
      if (s)
        hub->fsum = s;
      int *hp = s ? realloc(hub->heap, (size_t)G * sizeof *hp) : NULL;
      if (hp)
        hub->heap = hp;
      if (!a || !s || !hp)
        return WL_ENOMEM;
    }
  }
  reset_classes(fl);
  return WL_OK;
}

/* ---- the interface ------------------------------------------------------------------------ */

wl_status sim_flows_init(sim_flows *fl, int n_links, const double *capacity, double max_capacity,
                         const int *hubs, int n_hubs, int max_flows)
{
  memset(fl, 0, sizeof *fl);
  fl->n_links = n_links;
  fl->max_flows = max_flows;
  fl->n_hubs = n_hubs;
  WL_ASSERT(n_hubs >= 0 && n_hubs < 32); /* (a completion batch marks its hubs in a bitmask) */
  int e = max_capacity > 0 && isfinite(max_capacity) ? ilogb(max_capacity) + 1 - CAP_BITS : MIN_EXP;
  fl->exp = e > MIN_EXP ? e : MIN_EXP;
  fl->cap = malloc((size_t)n_links * sizeof *fl->cap);
  fl->count = calloc((size_t)n_links, sizeof *fl->count);
  fl->hub_of = malloc((size_t)n_links * sizeof *fl->hub_of);
  fl->link_class = malloc((size_t)n_links * sizeof *fl->link_class);
  fl->link_flow = malloc((size_t)n_links * sizeof *fl->link_flow);
  fl->left = malloc((size_t)n_links * sizeof *fl->left);
  fl->unfrozen = calloc((size_t)n_links, sizeof *fl->unfrozen);
  fl->touched = malloc((size_t)n_links * sizeof *fl->touched);
  fl->f = calloc((size_t)max_flows, sizeof *fl->f);
  fl->done = malloc((size_t)max_flows * sizeof *fl->done);
  fl->frozen = malloc((size_t)max_flows * sizeof *fl->frozen);
  fl->live = malloc((size_t)max_flows * sizeof *fl->live);
  fl->live_at = malloc((size_t)max_flows * sizeof *fl->live_at);
  fl->free_slots = malloc((size_t)max_flows * sizeof *fl->free_slots);
  fl->pending = malloc((size_t)max_flows * sizeof *fl->pending);
  fl->hub = calloc((size_t)(n_hubs > 0 ? n_hubs : 1), sizeof *fl->hub);
  if (!fl->cap || !fl->count || !fl->hub_of || !fl->link_class || !fl->link_flow || !fl->left ||
      !fl->unfrozen || !fl->touched || !fl->f || !fl->done || !fl->frozen || !fl->live ||
      !fl->live_at || !fl->free_slots || !fl->pending || !fl->hub)
    return WL_ENOMEM;
  for (int i = 0; i < max_flows; i++) /* slot 0 on top */
    fl->free_slots[i] = max_flows - 1 - i;
  fl->n_free = max_flows;
  for (int l = 0; l < n_links; l++) {
    fl->cap[l] = cap_units(fl, capacity[l]);
    fl->hub_of[l] = -1;
    fl->link_flow[l] = -1;
  }
  for (int h = 0; h < n_hubs; h++) {
    WL_ASSERT(hubs[h] >= 0 && hubs[h] < n_links && fl->hub_of[hubs[h]] < 0);
    fl->hub_of[hubs[h]] = h;
    fl->hub[h].link = hubs[h];
  }
  return build_classes(fl);
}

void sim_flows_free(sim_flows *fl)
{
  for (int h = 0; fl->hub && h < fl->n_hubs; h++)
    free(fl->hub[h].fcnt), free(fl->hub[h].fsum), free(fl->hub[h].heap);
  free(fl->cap), free(fl->count), free(fl->hub_of), free(fl->link_class), free(fl->link_flow);
  free(fl->left), free(fl->unfrozen), free(fl->touched), free(fl->f), free(fl->done);
  free(fl->frozen), free(fl->live), free(fl->live_at), free(fl->free_slots), free(fl->pending);
  free(fl->hub), free(fl->gcap), free(fl->cls), free(fl->theap);
  memset(fl, 0, sizeof *fl);
}

void sim_flows_force_reference(sim_flows *fl)
{
  if (!fl->reference)
    to_reference(fl);
  fl->forced = 1;
  ref_allocate(fl);
}

int sim_flows_add(sim_flows *fl, sim_time now, const int *links, int n_links, int64_t bytes,
                  int64_t start_frac, int from, int to, int tag)
{
  WL_ASSERT(n_links >= 1 && n_links <= SIM_FLOW_MAX_LINKS);
  WL_ASSERT(fl->n_free > 0 && start_frac >= 0 && start_frac < TICKS_PER_NS);
  advance(fl, now);
  int slot = fl->free_slots[--fl->n_free];
  sim_flow *f = &fl->f[slot];
  *f = (sim_flow){.start = fl->now + start_frac, .amount = message_units(fl, bytes),
                  .bytes = bytes, .order = fl->next_order++, .n_links = (signed char)n_links,
                  .from = from, .to = to, .tag = tag, .cls = -1, .child = -1, .sib = -1,
                  .prev = -1, .pend = -1};
  memcpy(f->links, links, (size_t)n_links * sizeof *links);
  fl->live_at[slot] = fl->n_live;
  fl->live[fl->n_live++] = slot;
  count_links(fl, f, 1);
  if (!fl->reference && fl->n_odd > 0)
    to_reference(fl);
  if (fl->reference)
    ref_allocate(fl);
  else
    inc_add(fl, slot);
  return slot;
}

int sim_flows_drop_link(sim_flows *fl, sim_time now, int link)
{
  advance(fl, now);
  int n = 0;
  if (!fl->reference && fl->hub_of[link] < 0) {
    int slot = fl->link_flow[link];
    if (slot >= 0) {
      int h = fl->f[slot].cls / fl->G, k = fl->f[slot].cls % fl->G;
      inc_detach(fl, slot);
      free_slot(fl, slot);
      hub_relevel(fl, h);
      class_place(fl, h, k);
      n = 1;
    }
    return n;
  }
  if (!fl->reference)
    to_reference(fl);
  for (int j = fl->n_live - 1; j >= 0; j--) {
    int slot = fl->live[j];
    const sim_flow *f = &fl->f[slot];
    if (f->links[0] == link || (f->n_links > 1 && f->links[1] == link)) {
      free_slot(fl, slot);
      n++;
    }
  }
  settle(fl);
  return n;
}

wl_status sim_flows_set_capacity(sim_flows *fl, sim_time now, const double *capacity)
{
  advance(fl, now);
  if (!fl->reference)
    to_reference(fl);
  for (int l = 0; l < fl->n_links; l++)
    fl->cap[l] = cap_units(fl, capacity[l]);
  wl_status st = build_classes(fl);
  if (st != WL_OK)
    return st;
  settle(fl);
  return WL_OK;
}

sim_time sim_flows_next(const sim_flows *fl)
{
  i128 t = fl->reference ? ref_next(fl) : inc_next(fl);
  if (t >= NEVER)
    return SIM_TIME_MAX;
  return ns_of(t > fl->now ? t : fl->now);
}

static int by_order(const void *a, const void *b)
{
  uint64_t x = ((const sim_flow_done *)a)->order, y = ((const sim_flow_done *)b)->order;
  return x < y ? -1 : x > y;
}

static void record_done(sim_flows *fl, int i, int slot)
{
  const sim_flow *f = &fl->f[slot];
  fl->done[i] = (sim_flow_done){f->bytes, f->order, f->from, f->to, f->tag,
                                {f->links[0], f->n_links > 1 ? f->links[1] : -1}};
}

/* Class (h, k)'s flows done by tick limit, into the done list. */
static int pop_class(sim_flows *fl, int h, int k, i128 limit, int n)
{
  sim_flow_class *c = class_of(fl, h, k);
  i128 w = class_read(fl, h, k, limit);
  while (c->root >= 0 && fl->f[c->root].amount <= w) {
    int slot = c->root;
    record_done(fl, n++, slot);
    inc_detach(fl, slot);
    free_slot(fl, slot);
  }
  class_place(fl, h, k);
  return n;
}

int sim_flows_pop_done(sim_flows *fl, sim_time now, const sim_flow_done **done)
{
  advance(fl, now);
  i128 limit = fl->now + TICKS_PER_NS / 2 - 1; /* what completes by then rounds to now */
  int n = 0;
  if (fl->reference) {
    for (int j = fl->n_live - 1; j >= 0; j--) {
      int slot = fl->live[j];
      sim_flow *f = &fl->f[slot];
      i128 from = ref_from(fl, f);
      if (from <= limit && moved(f->num, f->den, limit - from) >= f->amount) {
        record_done(fl, n++, slot);
        free_slot(fl, slot);
      }
    }
    if (n > 0)
      settle(fl);
  } else {
    int hubs_changed = 0;
    while (fl->n_theap > 0 && fl->cls[fl->theap[0]].key <= limit) {
      int id = fl->theap[0];
      n = pop_class(fl, id / fl->G, id % fl->G, limit, n);
    }
    for (int h = 0; h < fl->n_hubs; h++) {
      sim_flow_hub *hub = &fl->hub[h];
      i128 v = hub_read(hub, limit);
      while (hub->n_heap > 0 && fl->cls[hub->heap[0]].key <= v) {
        int id = hub->heap[0];
        n = pop_class(fl, id / fl->G, id % fl->G, limit, n);
      }
    }
    for (int i = fl->n_pending - 1; i >= 0; i--) {
      int slot = fl->pending[i];
      sim_flow *f = &fl->f[slot];
      i128 num, den;
      class_rate(fl, f->cls / fl->G, f->cls % fl->G, &num, &den);
      if (f->start <= limit && moved(num, den, limit - f->start) >= f->amount) {
        int k = f->cls % fl->G, h = f->cls / fl->G;
        record_done(fl, n++, slot);
        inc_detach(fl, slot);
        free_slot(fl, slot);
        class_place(fl, h, k);
      }
    }
    for (int i = 0; i < n; i++)
      for (int k = 0; k < 2; k++)
        if (fl->done[i].links[k] >= 0 && fl->hub_of[fl->done[i].links[k]] >= 0)
          hubs_changed |= 1 << fl->hub_of[fl->done[i].links[k]];
    for (int h = 0; h < fl->n_hubs; h++)
      if (hubs_changed >> h & 1)
        hub_relevel(fl, h);
  }
  qsort(fl->done, (size_t)n, sizeof *fl->done, by_order);
  *done = fl->done;
  return n;
}

double sim_flows_memory(int n_links, int max_flows)
{
  return n_links * (2.0 * sizeof(int64_t) + 6 * sizeof(int)) +
         max_flows * (sizeof(sim_flow) + sizeof(sim_flow_done) + 5.0 * sizeof(int) + 1);
}

double sim_flows_rate(const sim_flows *fl, int slot)
{
  const sim_flow *f = &fl->f[slot];
  i128 num = f->num, den = f->den;
  if (!fl->reference)
    class_rate(fl, f->cls / fl->G, f->cls % fl->G, &num, &den);
  /* a unit is q / (10^9 x 1024) bytes and a tick 1 / (10^9 x 1024) s: num/den units per
   * tick are num/den x q bytes/s */
  return den > 0 ? ldexp((double)num / (double)den, fl->exp) : 0.0;
}
