/* gossip — decentralized SGD: every worker mixes its model with its neighbours' on a graph
 * (Lian et al., NeurIPS 2017, arXiv 1705.09056: D-PSGD; the adapt-then-combine order is the
 * diffusion form); docs/algorithms.md §15.
 *
 * The graph (`topology`): a ring (each worker and its two neighbours; for K = 2 the single
 * edge between the two workers, for K = 1 no edge), a random d-regular graph (`degree` d,
 * drawn once from the run's seed), or the complete graph. The mixing matrix W has Metropolis–
 * Hastings weights, W_kj = 1 / (1 + max(deg_k, deg_j)) for an edge and W_kk = 1 - sum_j W_kj:
 * every topology here is regular, so W_kj = 1 / (d + 1) for k and each of its d neighbours
 * (1/3 on the ring, 1/K on the complete graph), W is symmetric and doubly stochastic, and a
 * worker's mix is the plain mean of its closed neighbourhood's models, summed in double in
 * worker order and rounded to float once (opt_host_average's arithmetic).
 *
 * Step t of worker k, adapt-then-combine (`mode` atc, the default):
 *   y_k = InnerStep(x_k, g_k(x_k)),   x_k <- sum_j W_kj y_j;
 * k computes a gradient and takes its inner step (train, one step); when that is done it
 * sends y_k (payload_bytes) to each neighbour, one flow each; it mixes as soon as its own
 * step is done and its d neighbours' step-t models y_j have arrived, then starts step t + 1.
 * Combine-then-adapt (`mode` cta, Lian et al.'s D-PSGD):
 *   x_k <- sum_j W_kj x_j + InnerStep's update from g_k(x_k)   (for SGD: - lr g_k);
 * at the step's start k sends x_k to each neighbour and computes its gradient at x_k (grad),
 * the two overlapping; when the gradient is done and its neighbours' step-t models x_j have
 * arrived, k mixes and applies its inner optimizer to the mix with that gradient.
 * What waits for what: a worker's step-t mix waits for its own step-t work and its
 * neighbours' step-t models, nothing else; its own outgoing transfers do not hold it (they
 * may still be flowing during its next compute). So neighbours are at most one step apart,
 * and workers further apart drift by at most their distance in the graph. The models sent
 * are kept in two slots per worker (steps of either parity): a slot is rewritten two steps
 * later, when every neighbour has mixed with it.
 *
 * Global model: the mean (worker order, in double) of the workers' current models (each
 * one's last mix; its initial model before any), computed when it is asked for (at eval
 * ticks). Global step: the steps every worker has mixed (the smallest count); the global
 * model is said to change (eval.at_sync) when it advances.
 *
 * Failures: the runner hides them (failures.sync wait; drop is refused): a down worker's
 * compute pauses until it is back, so its neighbours wait for its model, and their
 * neighbours for theirs. Its transfers are not paused (a simplification): those under way go
 * on, models still reach it, and a mix whose own work was done before it failed is taken
 * when the last model arrives (with cta, the next step's models then go out at once).
 *
 * The complete graph in adapt-then-combine is Local SGD with H = 1, bit for bit: every
 * worker's mix is the workers' mean in worker order, which is what local_sgd's average
 * computes. Cost of a step on homogeneous links (bandwidth B, latency a, model M bytes): each
 * worker's d flows share its upload and its download, so a step's exchange takes
 * a + d M / B; adapt-then-combine adds it to the compute time c, combine-then-adapt overlaps
 * the two: max(c, a + d M / B). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "opt_policy.h"

enum { TOPO_RING = 0, TOPO_RANDOM, TOPO_COMPLETE };
enum { MODE_ATC = 0, MODE_CTA };

/* gossip's own keys */
typedef struct gossip_config {
  int topology; /* TOPO_* */
  int degree;   /* the random graph's */
  int mode;     /* MODE_* */
} gossip_config;
OPT_POLICY_OWN_FITS(gossip_config);
#define PC(f) OPT_OWN(gossip_config, f)

static int is_random(const void *b)
{
  return OPT_POLICY_OWN(gossip_config, b)->topology == TOPO_RANDOM;
}

static const wl_param gossip_params[] = {
  OPT_POLICY_INNER_PARAM(NULL),
  {.key = "topology", .kind = WL_P_ENUM, .offset = PC(topology), .def = TOPO_RING,
   .choices = "ring|random|complete", .unit = "",
   .doc = "the graph the workers mix on: a ring (two neighbours; one for K = 2), a random "
          "regular graph, or the complete graph"},
  {.key = "degree", .kind = WL_P_INT, .offset = PC(degree), .def = 4, .min = 1,
   .max = 1 << 20, .unit = "neighbours",
   .doc = "each worker's neighbours in the random graph (below K, K times it even); drawn "
          "once from the run's seed",
   .applies = is_random, .applies_doc = "topology random"},
  {.key = "mode", .kind = WL_P_ENUM, .offset = PC(mode), .def = MODE_ATC, .choices = "atc|cta",
   .unit = "",
   .doc = "atc: step, then send and mix the stepped models (diffusion); cta: send the model "
          "and compute its gradient at once, then mix and step (D-PSGD)"},
  {0}};

typedef struct gossip {
  const opt_host *host;
  gossip_config c;
  opt_optim_config inner;
  int K;
  size_t n;          /* parameters */
  int *nbr_at;       /* (K + 1) worker k's closed neighbourhood (its neighbours and itself) is
                        nbr[nbr_at[k] .. nbr_at[k + 1]) */
  int *nbr;          /* (K (d + 1)) each neighbourhood in ascending order */
  float *sent;       /* (2 K n) slot (t & 1) of worker k at (2 k + (t & 1)) n: the model it
                        sent for its step t (atc: y_k; cta: x_k) */
  float *cur;        /* (K n) atc: each worker's last mix (cta: its slot of the step it is at) */
  float *global;     /* (n) the mean of the current models, when last asked for */
  long *steps;       /* (K) steps each worker has mixed */
  uint8_t *own_done; /* (K) its own work for the step it is at is done */
  int *arrived;      /* (2 K) neighbours' models arrived at k for steps of parity p: [2 k + p] */
  long global_step;  /* the smallest of steps */
  int behind;        /* workers whose steps equal global_step */
  opt_train job;     /* atc: one inner step */
} gossip;

/* The number of neighbours of each worker. */
static int graph_degree(const gossip_config *c, int K)
{
  switch (c->topology) {
  case TOPO_RING:
    return K >= 3 ? 2 : K - 1;
  case TOPO_COMPLETE:
    return K - 1;
  default:
    return c->degree;
  }
}

static wl_status gossip_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                              char *msg, size_t msg_size)
{
  const gossip_config *c = OPT_POLICY_OWN(gossip_config, cfg);
  if (c->topology != TOPO_RANDOM)
    return WL_OK;
  if (K < 3) {
    snprintf(path, path_size, "topology");
    snprintf(msg, msg_size, "expected ring or complete with %d worker%s (a random graph needs "
             "3 workers or more), got random", K, K == 1 ? "" : "s");
    return WL_ECONFIG;
  }
  if (c->degree >= K || ((long)K * c->degree) % 2 != 0 || c->degree < 2) {
    snprintf(path, path_size, "degree");
    snprintf(msg, msg_size, "expected 2 to %d neighbours, with %d times it even (a connected "
             "regular graph: degree 1 splits the workers into pairs), got %d", K - 1, K,
             c->degree);
    return WL_ECONFIG;
  }
  return WL_OK;
}

static int has_edge(const int *adj, const int *deg, int d, int u, int v)
{
  for (int i = 0; i < deg[u]; i++)
    if (adj[u * d + i] == v)
      return 1;
  return 0;
}

/* A d-regular graph on K vertices (d < K, K d even), 2 d <= K - 1, drawn by pairing points
 * (d per vertex) at random and keeping a pair only when it makes no loop and no second edge
 * (Steger and Wormald's algorithm); when no such pair is left, it starts over. adj (K d): row
 * u lists u's neighbours. Returns 0 when `tries` attempts failed. */
static int draw_sparse_regular(gsl_rng *r, int K, int d, int *adj, int *deg, int *pts, int tries)
{
  for (int attempt = 0; attempt < tries; attempt++) {
    int m = 0;
    for (int u = 0; u < K; u++) {
      deg[u] = 0;
      for (int i = 0; i < d; i++)
        pts[m++] = u;
    }
    int stuck = 0;
    while (m > 0 && !stuck) {
      int paired = 0;
      for (int t = 0; t < 64 && !paired; t++) {
        int i = (int)gsl_rng_uniform_int(r, (unsigned long)m);
        int j = (int)gsl_rng_uniform_int(r, (unsigned long)m);
        int u = pts[i], v = pts[j];
        if (i == j || u == v || has_edge(adj, deg, d, u, v))
          continue;
        adj[u * d + deg[u]++] = v;
        adj[v * d + deg[v]++] = u;
        /* remove points i and j: the larger first, so that the other stays in place */
        int hi = i > j ? i : j, lo = i > j ? j : i;
        pts[hi] = pts[--m];
        pts[lo] = pts[--m];
        paired = 1;
      }
      if (paired)
        continue;
      stuck = 1; /* unless some suitable pair is left */
      for (int i = 0; i < m && stuck; i++)
        for (int j = i + 1; j < m && stuck; j++)
          stuck = pts[i] == pts[j] || has_edge(adj, deg, d, pts[i], pts[j]);
    }
    if (!stuck)
      return 1;
  }
  return 0;
}

static int cmp_int(const void *a, const void *b)
{
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* The random d-regular graph's closed neighbourhoods into s->nbr: a sparse graph drawn
 * directly, a dense one (2 d > K - 1) as the complement of a drawn (K - 1 - d)-regular graph. */
static wl_status draw_random_graph(gossip *s, char *err, size_t err_size)
{
  const int K = s->K, d = s->c.degree;
  const int dense = 2 * d > K - 1, e = dense ? K - 1 - d : d;
  int *adj = malloc(((size_t)K * (size_t)e + 1) * sizeof *adj);
  int *deg = malloc((size_t)K * sizeof *deg);
  int *pts = malloc(((size_t)K * (size_t)e + 1) * sizeof *pts);
  uint8_t *mark = calloc((size_t)K, 1);
  wl_status st = WL_OK;
  if (!adj || !deg || !pts || !mark) {
    st = WL_ENOMEM;
    goto out;
  }
  if (e > 0 && !draw_sparse_regular(s->host->rng(s->host->ctx, 0), K, e, adj, deg, pts, 1000)) {
    snprintf(err, err_size, "degree: no random %d-regular graph on %d workers was found in 1000 "
             "attempts; try another degree or topology complete", d, K);
    st = WL_ECONFIG;
    goto out;
  }
  for (int u = 0; u < K; u++) {
    int *row = s->nbr + (size_t)u * (size_t)(d + 1);
    row[d] = u;
    if (!dense) {
      memcpy(row, adj + (size_t)u * (size_t)e, (size_t)d * sizeof *row);
    } else {
      for (int i = 0; i < e; i++)
        mark[adj[(size_t)u * (size_t)e + i]] = 1;
      int m = 0;
      for (int v = 0; v < K; v++)
        if (v != u && !mark[v])
          row[m++] = v;
      for (int i = 0; i < e; i++)
        mark[adj[(size_t)u * (size_t)e + i]] = 0;
      WL_ASSERT(m == d);
    }
    qsort(row, (size_t)d + 1, sizeof *row, cmp_int);
  }
out:
  free(adj);
  free(deg);
  free(pts);
  free(mark);
  return st;
}

/* Whether the graph in s->nbr (closed neighbourhoods of d + 1) is connected. */
static int connected(const gossip *s, int d)
{
  int K = s->K, *queue = malloc((size_t)K * sizeof *queue);
  uint8_t *seen = calloc((size_t)K, 1);
  int reached = 0;
  if (queue && seen) {
    int head = 0, tail = 0;
    queue[tail++] = 0;
    seen[0] = 1;
    while (head < tail) {
      const int *row = s->nbr + (size_t)queue[head++] * (size_t)(d + 1);
      for (int i = 0; i <= d; i++)
        if (!seen[row[i]]) {
          seen[row[i]] = 1;
          queue[tail++] = row[i];
        }
    }
    reached = tail;
  }
  free(queue);
  free(seen);
  return reached == K;
}

/* The graph: s->nbr_at and s->nbr, each worker's closed neighbourhood in ascending order. A
 * random graph is drawn again until it is connected (from the same stream: deterministic). */
static wl_status build_graph(gossip *s, char *err, size_t err_size)
{
  const int K = s->K, d = graph_degree(&s->c, K);
  for (int k = 0; k <= K; k++)
    s->nbr_at[k] = k * (d + 1);
  if (s->c.topology == TOPO_RANDOM && d == 2) { /* a connected 2-regular graph is one cycle:
                                                    a random order of the workers, closed */
    int *order = malloc((size_t)K * sizeof *order);
    if (!order)
      return WL_ENOMEM;
    for (int k = 0; k < K; k++)
      order[k] = k;
    gsl_ran_shuffle(s->host->rng(s->host->ctx, 0), order, (size_t)K, sizeof *order);
    for (int i = 0; i < K; i++) {
      int *row = s->nbr + (size_t)order[i] * 3;
      row[0] = order[(i + K - 1) % K], row[1] = order[i], row[2] = order[(i + 1) % K];
      qsort(row, 3, sizeof *row, cmp_int);
    }
    free(order);
    return WL_OK;
  }
  if (s->c.topology == TOPO_RANDOM) {
    for (int attempt = 0; attempt < 100; attempt++) {
      wl_status st = draw_random_graph(s, err, err_size);
      if (st != WL_OK || connected(s, d))
        return st;
    }
    snprintf(err, err_size, "degree: no connected random %d-regular graph on %d workers was "
             "found in 100 draws; try a larger degree", d, K);
    return WL_ECONFIG;
  }
  for (int k = 0; k < K; k++) {
    int *row = s->nbr + (size_t)k * (size_t)(d + 1), m = 0;
    if (s->c.topology == TOPO_COMPLETE) {
      for (int j = 0; j < K; j++)
        row[m++] = j;
    } else { /* the ring: k and the workers on either side (one for K = 2) */
      int cand[3] = {(k + K - 1) % K, k, (k + 1) % K};
      qsort(cand, 3, sizeof *cand, cmp_int);
      for (int i = 0; i < 3; i++)
        if (m == 0 || cand[i] != row[m - 1])
          row[m++] = cand[i];
    }
    WL_ASSERT(m == d + 1);
  }
  return WL_OK;
}

static float *slot(const gossip *s, int k, long t)
{
  return s->sent + ((size_t)k * 2 + (size_t)(t & 1)) * s->n;
}

/* Worker k's current model: its last mix (atc), or the model it sent for its step (cta). */
static const float *current(const gossip *s, int k)
{
  return s->c.mode == MODE_ATC ? s->cur + (size_t)k * s->n : slot(s, k, s->steps[k]);
}

static void gossip_destroy(void *state)
{
  gossip *s = state;
  if (!s)
    return;
  free(s->nbr_at);
  free(s->nbr);
  free(s->sent);
  free(s->cur);
  free(s->global);
  free(s->steps);
  free(s->own_done);
  free(s->arrived);
  free(s);
}

static wl_status gossip_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                               char *err, size_t err_size)
{
  gossip *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  s->host = host;
  s->c = *OPT_POLICY_OWN(gossip_config, cfg);
  s->inner = cfg->inner;
  s->K = host->K;
  s->n = host->replicas[0].n;
  char path[32], msg[160];
  if (gossip_check(cfg, s->K, path, sizeof path, msg, sizeof msg) != WL_OK) {
    snprintf(err, err_size, "%s: %s", path, msg);
    return WL_ECONFIG;
  }
  const size_t K = (size_t)s->K, n1 = s->n + 1; /* +1: n is 0 when timing only */
  const int d = graph_degree(&s->c, s->K);
  s->nbr_at = malloc((K + 1) * sizeof *s->nbr_at);
  s->nbr = malloc(K * (size_t)(d + 1) * sizeof *s->nbr);
  s->sent = malloc(2 * K * n1 * sizeof *s->sent);
  s->cur = s->c.mode == MODE_ATC ? malloc(K * n1 * sizeof *s->cur) : NULL;
  s->global = malloc(n1 * sizeof *s->global);
  s->steps = calloc(K, sizeof *s->steps);
  s->own_done = calloc(K, 1);
  s->arrived = calloc(2 * K, sizeof *s->arrived);
  if (!s->nbr_at || !s->nbr || !s->sent || (s->c.mode == MODE_ATC && !s->cur) || !s->global ||
      !s->steps || !s->own_done || !s->arrived)
    return WL_ENOMEM;
  for (int k = 0; k < s->K; k++) { /* the models before any mix */
    memcpy(slot(s, k, 0), host->replicas[k].params, s->n * sizeof(float));
    if (s->cur)
      memcpy(s->cur + (size_t)k * s->n, host->replicas[k].params, s->n * sizeof(float));
  }
  memcpy(s->global, host->replicas[0].params, s->n * sizeof(float));
  s->behind = s->K;
  s->job = (opt_train){.steps = 1, .lr_scale = 1.0};
  return build_graph(s, err, err_size);
}

/* Worker k's model for its step t to each of its neighbours, in order; the tag is t's parity. */
static void send_model(gossip *s, int k, long t)
{
  const opt_host *h = s->host;
  for (int i = s->nbr_at[k]; i < s->nbr_at[k + 1]; i++)
    if (s->nbr[i] != k)
      h->send(h->ctx, k, s->nbr[i], h->payload_bytes, (int)(t & 1));
}

/* Worker k starts its step: atc, one inner step; cta, its model to its neighbours and its
 * gradient there. */
static void begin_step(gossip *s, int k)
{
  const opt_host *h = s->host;
  s->own_done[k] = 0;
  if (s->c.mode == MODE_ATC) {
    h->train(h->ctx, k, &s->job);
    return;
  }
  const long t = s->steps[k];
  memcpy(slot(s, k, t), h->replicas[k].params, s->n * sizeof(float));
  send_model(s, k, t);
  h->grad(h->ctx, k);
}

static void gossip_start(void *state)
{
  gossip *s = state;
  for (int k = 0; k < s->K; k++)
    begin_step(s, k);
}

enum { RANGE = 1 << 12 }; /* elements per task of a mix or a mean */

typedef struct mix_task {
  const gossip *s;
  int k;      /* mixing worker k's neighbourhood; -1: every worker (the global mean) */
  float *out; /* (n) */
} mix_task;

/* Elements [RANGE i, RANGE (i + 1)) of the task's mean: worker k's neighbourhood's models for
 * k's step (k among them, in worker order), or every worker's current model; summed in double
 * in that order, then divided by their number and rounded once. */
static void mix_part(void *arg, int i)
{
  enum { CHUNK = 512 };
  const mix_task *m = arg;
  const gossip *s = m->s;
  const size_t lo = (size_t)i * RANGE, hi = s->n - lo < RANGE ? s->n : lo + RANGE;
  const int k = m->k, count = k < 0 ? s->K : s->nbr_at[k + 1] - s->nbr_at[k];
  const int *who = k < 0 ? NULL : s->nbr + s->nbr_at[k];
  double acc[CHUNK];
  for (size_t c0 = lo; c0 < hi; c0 += CHUNK) {
    const size_t len = hi - c0 < CHUNK ? hi - c0 : CHUNK;
    for (size_t e = 0; e < len; e++)
      acc[e] = 0.0;
    for (int a = 0; a < count; a++) {
      const float *x = (who ? slot(s, who[a], s->steps[k]) : current(s, a)) + c0;
      for (size_t e = 0; e < len; e++)
        acc[e] += x[e];
    }
    for (size_t e = 0; e < len; e++)
      m->out[c0 + e] = (float)(acc[e] / count);
  }
}

/* Worker k mixes, if its own work and its neighbours' models for its step are all in; then it
 * starts its next step. */
static void try_mix(gossip *s, int k)
{
  const opt_host *h = s->host;
  const long t = s->steps[k];
  const int d = s->nbr_at[k + 1] - s->nbr_at[k] - 1;
  if (!s->own_done[k] || s->arrived[2 * k + (t & 1)] < d)
    return;
  WL_ASSERT(s->arrived[2 * k + (t & 1)] == d);
  s->arrived[2 * k + (t & 1)] = 0;
  opt_replica *rep = &h->replicas[k];
  mix_task m = {s, k, rep->params};
  h->parallel(h->ctx, (int)((s->n + RANGE - 1) / RANGE), mix_part, &m);
  if (s->c.mode == MODE_ATC)
    memcpy(s->cur + (size_t)k * s->n, rep->params, s->n * sizeof(float));
  else
    opt_replica_apply(rep, &s->inner, 1.0); /* its gradient at x_k, on the mix */
  s->steps[k]++;
  if (t == s->global_step && --s->behind == 0) {
    s->global_step++;
    for (int j = 0; j < s->K; j++)
      s->behind += s->steps[j] == s->global_step;
    h->global_changed(h->ctx);
  }
  begin_step(s, k);
}

static void gossip_work_done(void *state, int k)
{
  gossip *s = state;
  const opt_host *h = s->host;
  if (s->c.mode == MODE_ATC) { /* its stepped model to its neighbours */
    const long t = s->steps[k];
    memcpy(slot(s, k, t), h->replicas[k].params, s->n * sizeof(float));
    send_model(s, k, t);
  }
  s->own_done[k] = 1;
  try_mix(s, k);
}

static void gossip_message(void *state, int from, int to, int tag)
{
  gossip *s = state;
  (void)from;
  WL_ASSERT(tag == 0 || tag == 1);
  s->arrived[2 * to + tag]++;
  try_mix(s, to);
}

/* The mean of the workers' current models, computed now: a cache of the state, which the
 * const state can hold (s->global points to memory of its own). */
static const float *gossip_global(const void *state)
{
  const gossip *s = state;
  mix_task m = {s, -1, s->global};
  s->host->parallel(s->host->ctx, (int)((s->n + RANGE - 1) / RANGE), mix_part, &m);
  return s->global;
}

static long gossip_step(const void *state) { return ((const gossip *)state)->global_step; }

static double gossip_memory(const opt_policy_config *cfg, int K, double n)
{
  const gossip_config *c = OPT_POLICY_OWN(gossip_config, cfg);
  const double d = graph_degree(c, K), models = c->mode == MODE_ATC ? 3 * K + 1 : 2 * K + 1;
  double bytes = sizeof(gossip) + models * (n + 1) * sizeof(float) +
                 (K + 1 + K * (d + 1) + 2 * K) * sizeof(int) + K * (sizeof(long) + 1);
  if (c->topology == TOPO_RANDOM) /* its stream, and the drawing's scratch */
    bytes += opt_rng_memory() + 2 * (K * d + 1) * sizeof(int) + K * (sizeof(int) + 1);
  return bytes;
}

/* Each directed edge carries at most two models at once: k's step t + 2 waits for its
 * neighbour j's step t + 1 model, which j sends after k's step t model has reached it. */
static long gossip_max_transfers(const opt_policy_config *cfg, int K)
{
  return 2L * K * graph_degree(OPT_POLICY_OWN(gossip_config, cfg), K);
}

const opt_policy_type opt_gossip_type = {
  .variant = {"gossip",
              "decentralized SGD: each step, every worker mixes its model with its "
              "neighbours' on a graph (ring, random regular, complete) by point-to-point "
              "transfers (Lian et al. 2017)",
              gossip_params},
  .traits = OPT_TRAIT_TRANSFERS,
  .check = gossip_check,
  .create = gossip_create,
  .destroy = gossip_destroy,
  .start = gossip_start,
  .work_done = gossip_work_done,
  .message = gossip_message,
  .global = gossip_global,
  .step = gossip_step,
  .memory = gossip_memory,
  .max_transfers = gossip_max_transfers,
};
