/* ddp — synchronous data parallel (docs/algorithms.md §2).
 *
 * Every step: each worker computes a gradient on its own batch; the gradients are
 * all-reduced (mean, in worker order) and one optimizer step is applied; all replicas stay
 * equal. Part of the all-reduce may hide behind the backward pass (bucketing): only the
 * backward pass can hide communication, so a step takes
 *   max_w c_w + AR - min(overlap AR, b),   b = backward_share * max_w c_w,
 * the slowest worker's backward time. With `buckets` (or `bucket_mb`), one all-reduce per
 * bucket, each paying its latency, started as the backward pass produces it (opt_overlap).
 * With `compress`, each worker sends its gradient
 * compressed (docs/algorithms.md §14): the mean is over the decoded gradients, and the
 * all-reduce is an all-gather of the compressed ones (the same overlap rule). */
#include <math.h>
#include <stdlib.h>

#include "opt_policy.h"

typedef struct ddp {
  opt_round round;        /* first: the workers of the step in progress */
  const opt_host *host;
  opt_optim_config inner; /* applied to the averaged gradient */
  opt_codec codec;        /* what each worker sends */
  opt_overlap ov;         /* how each all-reduce meets the backward pass */
  long step;              /* optimizer steps applied */
} ddp;

/* ddp's own keys */
typedef struct ddp_config {
  double overlap;
  double backward_share;
  int buckets;
  double bucket_mb;
} ddp_config;
OPT_POLICY_OWN_FITS(ddp_config);
#define DC(f) OPT_OWN(ddp_config, f)

static int overlaps(const void *b) { return OPT_POLICY_OWN(ddp_config, b)->overlap > 0; }

/* bucket_mb when no bucket count is given */
static int no_count(const void *b) { return OPT_POLICY_OWN(ddp_config, b)->buckets == 0; }

static const wl_param ddp_params[] = {
  OPT_POLICY_INNER_PARAM(NULL),
  {.key = "overlap", .kind = WL_P_DOUBLE, .offset = DC(overlap), .def = 0, .min = 0, .max = 1,
   .unit = "fraction",
   .doc = "fraction of each all-reduce that may hide behind the backward pass (bucketing); "
          "what hides is at most the slowest worker's backward time"},
  {.key = "backward_share", .kind = WL_P_DOUBLE, .offset = DC(backward_share), .def = 2.0 / 3,
   .min = 0, .max = 1, .unit = "fraction",
   .doc = "share of a step's compute that is the backward pass (about 2/3: backward costs "
          "twice the forward); bounds what overlap can hide",
   .applies = overlaps, .applies_doc = "overlap > 0"},
  {.key = "buckets", .kind = WL_P_INT, .offset = DC(buckets), .def = 0, .min = 0,
   .max = 1 << 20, .flags = WL_PF_OMIT_DEFAULT, .unit = "buckets",
   .doc = "split each step's all-reduce into this many equal buckets, one collective each, "
          "each paying its latency and started when the backward pass has produced its "
          "gradients (overlap: the share of the backward pass they spread over; 0: all after "
          "it); 0: one all-reduce"},
  {.key = "bucket_mb", .kind = WL_P_DOUBLE, .offset = DC(bucket_mb), .min = 0, .max = 1e9,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL | WL_PF_OMIT_DEFAULT, .unit = "MiB",
   .doc = "buckets of this many MiB of the bytes on the wire instead (as PyTorch DDP's "
          "bucket_cap_mb, though PyTorch never splits a tensor; the last bucket smaller; at "
          "most 2^20 buckets, the last one taking the rest)",
   .applies = no_count, .applies_doc = "buckets 0"},
  OPT_POLICY_COMPRESS_PARAM,
  {0}};

static void ddp_begin_step(void *state);
static void ddp_reduce(void *state);

static wl_status ddp_create(const opt_policy_config *cfg, const opt_host *host, void **state,
                            char *err, size_t err_size)
{
  (void)err, (void)err_size;
  ddp *d = calloc(1, sizeof *d);
  if (!d)
    return WL_ENOMEM;
  if (opt_round_init(&d->round, host->K, d, ddp_begin_step, ddp_reduce) != WL_OK ||
      opt_codec_init(&d->codec, &cfg->compress, host->K, host->replicas[0].n, 0) != WL_OK) {
    opt_round_free(&d->round);
    free(d);
    return WL_ENOMEM;
  }
  d->host = host;
  d->inner = cfg->inner;
  const ddp_config *c = OPT_POLICY_OWN(ddp_config, cfg);
  d->ov = (opt_overlap){.overlap = c->overlap, .backward_share = c->backward_share,
                        .buckets = c->buckets,
                        .bucket_bytes = isnan(c->bucket_mb) ? 0 : c->bucket_mb * 1048576.0};
  *state = d;
  return WL_OK;
}

static void ddp_destroy(void *state)
{
  ddp *d = state;
  opt_round_free(&d->round);
  opt_codec_free(&d->codec);
  free(d);
}

/* A step with the workers that are up (all of them, unless failures drop workers). */
static void ddp_begin_step(void *state)
{
  ddp *d = state;
  opt_round_start(&d->round, d->host, NULL);
}

static void ddp_start(void *state) { ddp_begin_step(state); }

static void ddp_reduce(void *state)
{
  ddp *d = state;
  opt_host_reduce(d->host, &d->codec.cfg, d->host->payload_bytes, &d->ov, d->round.in, 0);
}

static void ddp_collective_done(void *state, int tag)
{
  ddp *d = state;
  (void)tag;
  opt_codec_encode_grads(d->host, &d->codec, d->round.in);
  opt_sync_gradient_step(d->host, &d->inner, d->round.in, 0);
  d->step++;
  d->host->global_changed(d->host->ctx);
  ddp_begin_step(d);
}

static const float *ddp_global(const void *state)
{
  return ((const ddp *)state)->host->replicas[0].params;
}

static long ddp_step(const void *state) { return ((const ddp *)state)->step; }

static double ddp_memory(const opt_policy_config *cfg, int K, double n)
{
  return sizeof(ddp) + opt_round_memory(K) + opt_codec_memory(&cfg->compress, K, n, 0);
}

const opt_policy_type opt_ddp_type = {
  .variant = {"ddp", "synchronous data parallel: all-reduce of gradients every step",
              ddp_params},
  .traits = 0,
  .create = ddp_create,
  .destroy = ddp_destroy,
  .start = ddp_start,
  .work_done = opt_round_work_done,
  .collective_done = ddp_collective_done,
  .worker_down = opt_round_worker_down,
  .worker_up = opt_round_worker_up,
  .global = ddp_global,
  .step = ddp_step,
  .memory = ddp_memory,
};
