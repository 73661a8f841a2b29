/* demo — DeMo, decoupled momentum optimization (Peng, Quesnelle, Kingma 2024, arXiv
 * 2411.19870, Algorithm 1; the reference code is github.com/bloc97/DeMo);
 * docs/algorithms.md §12.
 *
 * Every step each worker computes a gradient g on its batch and keeps its own momentum m
 * (never all-reduced): m <- beta m + g. The momentum is split into chunks of `chunk`
 * coordinates; each chunk's orthonormal DCT-II is taken, and its `topk` coefficients of
 * largest magnitude (ties: the lower index) are the worker's fast components q; they are
 * removed from the momentum (m <- m - IDCT(q)) and all-gathered (values at the wire's bytes
 * per parameter and a 16-bit index each). Q = IDCT of each coefficient's mean over the
 * workers that selected it (the reference code's scatter mean); then, with lr and weight
 * decay wd, x <- x (1 - lr wd) - lr sign(Q) (the paper's signum), or - lr Q with sign
 * false. The replicas stay equal, as in DDP.
 *
 * The reference code scales g by the learning rate in the momentum (m <- beta m + lr g); with
 * the sign the two agree while the rate is constant. The DCT and its inverse run as matrix
 * products (wl_gemm: the same bits on every machine); the mean over the workers is summed in
 * worker order, in double. With topk = chunk, sign false and wd 0 every component is sent
 * and DeMo is DDP with plain SGD, up to the DCT round trip's rounding.
 *
 * The reference code cuts a 2-D weight into blocks of up to 64 x 64 with a 2-D DCT and keeps
 * the top 32 of each block's 4,096 coefficients, and sends 64-bit indices; syncsim's chunks
 * are 1-D slices of the flat parameters, and its defaults keep the same share of the
 * coefficients: chunk 128, topk 1 (1/128), with beta 0.999 and the sign as the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt_policy.h"
#include "wl_kernels.h"
#include "wl_math.h"

/* demo's own keys */
typedef struct demo_config {
  double lr;
  double weight_decay;
  double beta;
  int chunk;
  int topk;
  int sign;
} demo_config;
OPT_POLICY_OWN_FITS(demo_config);
#define PC(f) OPT_OWN(demo_config, f)

static const wl_param demo_params[] = {
  {.key = "lr", .kind = WL_P_DOUBLE, .offset = PC(lr), .def = 1e-3, .min = 0, .max = 1e3,
   .flags = WL_PF_MIN_EXCL | WL_PF_TRAINED, .unit = "",
   .doc = "learning rate of the signed (or plain) step"},
  {.key = "weight_decay", .kind = WL_P_DOUBLE, .offset = PC(weight_decay), .def = 0, .min = 0,
   .max = 1e3, .flags = WL_PF_TRAINED, .unit = "",
   .doc = "decoupled weight decay: x <- x (1 - lr weight_decay) each step"},
  {.key = "beta", .kind = WL_P_DOUBLE, .offset = PC(beta), .def = 0.999, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL | WL_PF_TRAINED, .unit = "",
   .doc = "momentum decay (the reference code's compression_decay)"},
  {.key = "chunk", .kind = WL_P_INT, .offset = PC(chunk), .def = 128, .min = 1, .max = 4096,
   .unit = "coordinates", .doc = "coordinates per DCT chunk"},
  {.key = "topk", .kind = WL_P_INT, .offset = PC(topk), .def = 1, .min = 1, .max = 4096,
   .unit = "coordinates", .doc = "DCT coefficients sent per chunk (at most chunk)"},
  {.key = "sign", .kind = WL_P_BOOL, .offset = PC(sign), .def = 1, .flags = WL_PF_TRAINED,
   .unit = "", .doc = "step on the sign of the synchronized update (signum), else on it"},
  {0}};

typedef struct demo {
  opt_round round; /* first: the workers of the step in progress */
  const opt_host *host;
  demo_config c;
  long step;
  size_t n;        /* parameters */
  size_t n_chunks; /* ceil(n / chunk) */
  float *dct;      /* (chunk, chunk) the orthonormal DCT-II: row k, column i */
  float *m;        /* (K, n) each worker's momentum */
  float *q;        /* (K, n_chunks chunk) each worker's fast components (zero elsewhere) */
  uint8_t *sel;    /* (K, n_chunks chunk) which coefficients each worker selected */
  float *mean_q;   /* (n_chunks chunk) their mean over the step's workers */
  float *update;   /* (n_chunks chunk) its inverse transform */
  float *scratch;  /* (K + 1, gemm scratch) */
  size_t scratch_floats;
} demo;

static wl_status demo_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                            char *msg, size_t msg_size)
{
  (void)K;
  const demo_config *c = OPT_POLICY_OWN(demo_config, cfg);
  if (c->topk > c->chunk) {
    snprintf(path, path_size, "topk");
    snprintf(msg, msg_size, "expected at most chunk (%d), got %d", c->chunk, c->topk);
    return WL_ECONFIG;
  }
  return WL_OK;
}

static void demo_begin_step(void *state);
static void demo_reduce(void *state);

static void demo_destroy(void *state)
{
  demo *s = state;
  if (!s)
    return;
  opt_round_free(&s->round);
  free(s->dct);
  free(s->m);
  free(s->q);
  free(s->sel);
  free(s->mean_q);
  free(s->update);
  free(s->scratch);
  free(s);
}

static wl_status demo_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                             char *err, size_t err_size)
{
  (void)err, (void)err_size;
  demo *s = calloc(1, sizeof *s);
  if (!s)
    return WL_ENOMEM;
  *state = s;
  s->host = host;
  s->c = *OPT_POLICY_OWN(demo_config, cfg);
  size_t S = (size_t)s->c.chunk, K = (size_t)host->K;
  s->n = host->replicas[0].n;
  s->n_chunks = (s->n + S - 1) / S;
  size_t padded = s->n_chunks * S;
  s->scratch_floats = wl_gemm_scratch_floats(S);
  s->dct = malloc(S * S * sizeof(float));
  s->m = calloc(K * s->n + 1, sizeof(float)); /* +1: n is 0 when timing only */
  s->q = calloc(K * padded + 1, sizeof(float));
  s->sel = calloc(K * padded + 1, 1);
  s->mean_q = calloc(padded + 1, sizeof(float));
  s->update = calloc(padded + 1, sizeof(float));
  s->scratch = malloc((K + 1) * s->scratch_floats * sizeof(float));
  if (!s->dct || !s->m || !s->q || !s->sel || !s->mean_q || !s->update || !s->scratch ||
      opt_round_init(&s->round, host->K, s, demo_begin_step, demo_reduce))
    return WL_ENOMEM;
  for (size_t k = 0; k < S; k++) /* C[k][i] = sqrt(2/S) c_k cos(pi (2i + 1) k / (2S)) */
    for (size_t i = 0; i < S; i++) {
      double ck = k == 0 ? sqrt(1.0 / (double)S) : sqrt(2.0 / (double)S);
      s->dct[k * S + i] = (float)(ck * wl_cospi((double)((2 * i + 1) * k) / (double)(2 * S)));
    }
  return WL_OK;
}

static void demo_begin_step(void *state)
{
  demo *s = state;
  opt_round_start(&s->round, s->host, NULL);
}

static void demo_start(void *state) { demo_begin_step(state); }

/* A coefficient's rank key: its magnitude, NaN above everything (kept, so that it shows). */
static float magnitude(float c) { return c != c ? INFINITY : fabsf(c); }

/* The k-th largest of a[0..n) (1 <= k <= n; a is reordered): a selection by partitions around
 * the middle element, in expected linear time. */
static float kth_largest(float *a, int n, int k)
{
  int lo = 0, hi = n - 1, target = k - 1;
  while (lo < hi) {
    float pivot = a[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) { /* [lo, i) >= pivot, (j, hi] <= pivot */
      while (a[i] > pivot)
        i++;
      while (a[j] < pivot)
        j--;
      if (i <= j) {
        float t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (target <= j)
      hi = j;
    else if (target >= i)
      lo = i;
    else
      return pivot; /* between the two parts: equal to the pivot */
  }
  return a[target];
}

/* The `topk` largest magnitudes of a chunk's coefficients kept in place and marked in sel,
 * the others zeroed (among equal magnitudes at the threshold, the lower indices kept). */
static void keep_topk(float *coef, uint8_t *sel, int S, int topk, float *work)
{
  if (topk >= S) {
    memset(sel, 1, (size_t)S);
    return;
  }
  for (int i = 0; i < S; i++)
    work[i] = magnitude(coef[i]);
  float t = kth_largest(work, S, topk);
  int above = 0;
  for (int i = 0; i < S; i++)
    above += magnitude(coef[i]) > t;
  int ties = topk - above; /* at the threshold, kept from the lowest index */
  for (int i = 0; i < S; i++) {
    float m = magnitude(coef[i]);
    sel[i] = 1;
    if (m > t)
      continue;
    if (m == t && ties > 0) {
      ties--;
    } else {
      coef[i] = 0.0f;
      sel[i] = 0;
    }
  }
}

/* Worker w: m <- beta m + g; q = topk(DCT(m)) per chunk; m <- m - IDCT(q). */
static void worker_part(void *arg, int w)
{
  demo *s = arg;
  const opt_host *h = s->host;
  if (!s->round.in[w])
    return;
  const int S = s->c.chunk;
  const size_t n = s->n, full = n / (size_t)S, padded = s->n_chunks * (size_t)S;
  float *m = s->m + (size_t)w * n, *q = s->q + (size_t)w * padded;
  uint8_t *sel = s->sel + (size_t)w * padded;
  float *scratch = s->scratch + (size_t)w * s->scratch_floats;
  const float *g = h->replicas[w].grads;
  const float beta = (float)s->c.beta;
  for (size_t i = 0; i < n; i++)
    m[i] = beta * m[i] + g[i];
  /* coefficients (chunks, S) = m (chunks, S) DCT^T; a last short chunk is padded with 0 */
  if (full)
    wl_gemm(0, 1, (int)full, S, S, 1.0f, m, S, s->dct, S, 0.0f, q, S, scratch);
  if (full < s->n_chunks) {
    float tail[4096] = {0};
    memcpy(tail, m + full * (size_t)S, (n - full * (size_t)S) * sizeof(float));
    wl_gemm(0, 1, 1, S, S, 1.0f, tail, S, s->dct, S, 0.0f, q + full * (size_t)S, S, scratch);
  }
  float work[4096];
  for (size_t c = 0; c < s->n_chunks; c++)
    keep_topk(q + c * (size_t)S, sel + c * (size_t)S, S, s->c.topk, work);
  /* m <- m - q DCT (the inverse transform: DCT is orthonormal) */
  if (full)
    wl_gemm(0, 0, (int)full, S, S, -1.0f, q, S, s->dct, S, 1.0f, m, S, scratch);
  if (full < s->n_chunks) {
    float back[4096];
    wl_gemm(0, 0, 1, S, S, 1.0f, q + full * (size_t)S, S, s->dct, S, 0.0f, back, S, scratch);
    for (size_t i = full * (size_t)S; i < n; i++)
      m[i] -= back[i - full * (size_t)S];
  }
}

static void demo_reduce(void *state)
{
  demo *s = state;
  const opt_host *h = s->host;
  h->parallel(h->ctx, h->K, worker_part, s);
  /* each worker sends topk values (at the wire's bytes per parameter) and 16-bit indices per
     chunk of the model on the wire */
  double wire = h->wire_params, per_value = wire > 0 ? (double)h->payload_bytes / wire : 0;
  double chunks = ceil(wire / s->c.chunk);
  int64_t bytes = (int64_t)llround(chunks * s->c.topk * (per_value + 2.0));
  h->allgather(h->ctx, bytes, NULL, s->round.in, 0);
}

enum { RANGE = 1 << 12 }; /* elements per task */

/* Elements [RANGE i, RANGE (i + 1)) of mean_q: each coefficient's mean over the step's workers
 * that selected it (0 when none did; the reference code's scatter mean), in worker order, in
 * double. */
static void mean_part(void *arg, int i)
{
  demo *s = arg;
  const opt_host *h = s->host;
  size_t padded = s->n_chunks * (size_t)s->c.chunk;
  size_t lo = (size_t)i * RANGE, hi = padded - lo < RANGE ? padded : lo + RANGE;
  for (size_t j = lo; j < hi; j++) {
    double sum = 0;
    int m = 0;
    for (int w = 0; w < h->K; w++)
      if (s->round.in[w] && s->sel[(size_t)w * padded + j]) {
        sum += s->q[(size_t)w * padded + j];
        m++;
      }
    s->mean_q[j] = m ? (float)(sum / m) : 0.0f;
  }
}

/* Elements [RANGE i, RANGE (i + 1)) of the parameters: the step on replica 0, copied to
 * every replica. */
static void step_part(void *arg, int i)
{
  demo *s = arg;
  const opt_host *h = s->host;
  size_t lo = (size_t)i * RANGE, hi = s->n - lo < RANGE ? s->n : lo + RANGE;
  const double lr = s->c.lr;
  const float decay = (float)(1.0 - lr * s->c.weight_decay), flr = (float)lr;
  float *x = h->replicas[0].params;
  for (size_t j = lo; j < hi; j++) {
    float u = s->update[j];
    float d = !s->c.sign || u != u ? u : (float)((u > 0) - (u < 0)); /* sign(0) = 0 */
    x[j] = x[j] * decay - flr * d;
  }
  for (int k = 1; k < h->K; k++)
    memcpy(h->replicas[k].params + lo, x + lo, (hi - lo) * sizeof(float));
}

static void demo_collective_done(void *state, int tag)
{
  demo *s = state;
  const opt_host *h = s->host;
  (void)tag;
  const int S = s->c.chunk;
  size_t padded = s->n_chunks * (size_t)S;
  h->parallel(h->ctx, (int)((padded + RANGE - 1) / RANGE), mean_part, s);
  if (s->n_chunks) /* update = mean_q DCT, chunk by chunk */
    wl_gemm(0, 0, (int)s->n_chunks, S, S, 1.0f, s->mean_q, S, s->dct, S, 0.0f, s->update, S,
            s->scratch + (size_t)h->K * s->scratch_floats);
  h->parallel(h->ctx, (int)((s->n + RANGE - 1) / RANGE), step_part, s);
  s->step++;
  h->global_changed(h->ctx);
  demo_begin_step(s);
}

static const float *demo_global(const void *state)
{
  return ((const demo *)state)->host->replicas[0].params;
}

static long demo_step(const void *state) { return ((const demo *)state)->step; }

static double demo_memory(const opt_policy_config *cfg, int K, double n)
{
  const demo_config *c = OPT_POLICY_OWN(demo_config, cfg);
  double S = c->chunk, padded = ceil(n / S) * S;
  return sizeof(demo) + opt_round_memory(K) + (K * padded + 1) /* sel */ +
         (S * S + K * n + K * padded + 2 * padded + 4 +
          (K + 1.0) * (double)wl_gemm_scratch_floats((size_t)c->chunk)) * sizeof(float);
}

const opt_policy_type opt_demo_type = {
  .variant = {"demo",
              "every step, each worker's momentum's top-k DCT components all-gathered and "
              "removed from it; a signed step on their mean (DeMo, Peng et al. 2024)",
              demo_params},
  .traits = 0,
  .check = demo_check,
  .create = demo_create,
  .destroy = demo_destroy,
  .start = demo_start,
  .work_done = opt_round_work_done,
  .collective_done = demo_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = demo_global,
  .step = demo_step,
  .memory = demo_memory,
};
