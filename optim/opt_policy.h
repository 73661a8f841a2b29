/* opt_policy — sync policies as event-driven state machines: events in, commands out.
 *
 * A policy never advances time and never computes a duration. The runner gives it an
 * opt_host: the K replicas, facts about the cluster, and the commands it may issue. The
 * runner does the work those commands ask for, prices it in simulated time, and later
 * delivers a completion event. The parameter math between steps (averaging, outer steps,
 * pulls toward an anchor, staleness weights) is the policy's own.
 *
 * Events:   start; work_done(w) after train/grad for worker w; collective_done(tag);
 *           message(from, to, tag) when a send arrives; timer(tag).
 * Commands: train(w, job)  worker w takes job->steps local steps on its replica: gradient
 *                          steps of its inner optimizer (lr scaled by job->lr_scale), or, where
 *                          job->mix[i] is set, the policy's own mix_step (no batch, no
 *                          gradient, no compute time);
 *           grad(w)        worker w computes one gradient into its replica's grads only;
 *           allreduce(bytes, ov, mask, tag)  a collective over the workers in mask (all
 *                          when NULL); with ov (opt_overlap, NULL: none), part of it hides
 *                          behind the backward pass of the step before it, or it runs as
 *                          buckets, each started when the backward pass has produced it;
 *           allgather(bytes_each, ov, mask, tag)  every worker in
 *                          mask (all when NULL) gets the bytes_each bytes of every other one
 *                          (priced as the all-gather half of an all-reduce of everything
 *                          gathered; overlap as allreduce's);
 *           send(from, to, bytes, tag)      a point-to-point transfer; OPT_SERVER is the
 *                          parameter server's endpoint (the global one, with regions), and
 *                          OPT_LPS(r) region r's local parameter server's;
 *           timer(delay_s, tag)             a timer event after delay_s simulated seconds;
 *           record_update(w, staleness, weight, dropped)  an async update, for the results.
 * A worker's replica must not be touched between a command for it and its work_done.
 *
 * Failures: a worker can go down and come back (worker_down, worker_up). Asynchronous
 * policies always hear of it (the round in flight is lost). Synchronous ones hear of it only
 * when the scenario drops down workers; otherwise the runner hides failures from them by
 * pausing the work and collectives the worker takes part in. A synchronous policy that hears
 * of failures runs each round with the workers that are up (opt_round below): a worker that
 * goes down leaves the round, and one that comes back joins the next.
 *
 * Every policy exposes its global model (what a user would deploy; evaluated at eval ticks)
 * and its global step (optimizer steps that model reflects: for local methods, local steps
 * per worker).
 *
 * Adding a policy is adding one file, optim/opt_NAME.c, that defines
 * `const opt_policy_type opt_NAME_type` (its parameter table, its own config struct, its
 * traits): the build finds it and lists it in the registry (docs/adding-a-policy.md). */
#ifndef OPT_POLICY_H
#define OPT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "opt_codec.h"
#include "opt_optim.h"
#include "opt_replica.h"
#include "wl_param.h"
#include "wl_status.h"

#define OPT_SERVER (-1) /* the parameter server's endpoint in send(): the global one */
/* Region r's local parameter server's endpoint in send() (a policy with regions): a worker
 * reaches its region's over the region's fast links, and that server reaches OPT_SERVER
 * over the region's slow link. */
#define OPT_LPS(r) (-2 - (r))
#define OPT_LPS_REGION(e) (-2 - (e)) /* the region of endpoint OPT_LPS(r) */
#define OPT_STREAM_ROUNDS(K) ((K) + 1) /* opt_host.rng's stream for opt_round */

/* The room for a policy's own config struct in opt_policy_config. */
#define OPT_POLICY_OWN_BYTES 256

/* A policy's settings: the keys every policy has, then its own. The scenario loader fills
 * it from the policy's table; the policy reads its own keys as its own struct, laid out in
 * `own` (OPT_POLICY_OWN below). */
typedef struct opt_policy_config {
  int type;               /* index in opt_policy_types */
  char label[64];         /* name in results and --set paths; "" means the type's name */
  opt_optim_config inner; /* each worker's optimizer */
  opt_optim_config outer; /* a policy with OPT_TRAIT_OUTER: its optimizer on pseudo-gradients */
  double participation;   /* a policy with the key: the fraction of workers in each round */
  int shards;             /* a policy with the tasks' keys: OPT_SHARDS_* */
  int schedule_by;        /* ... OPT_SCHEDULE_BY_* */
  int inner_state;        /* ... OPT_INNER_STATE_* */
  opt_codec_config compress; /* a policy with the key: how what it sends is compressed */
  union {
    long double align;
    unsigned char bytes[OPT_POLICY_OWN_BYTES];
  } own; /* the policy's own config struct; zero beyond its fields */
} opt_policy_config;

/* In a policy's file, for its own config struct T: the offset of T's field f for its table
 * (OPT_OWN), and T inside a config (OPT_POLICY_OWN; base is an opt_policy_config). */
#define OPT_OWN(T, f) (offsetof(opt_policy_config, own) + offsetof(T, f))
#define OPT_POLICY_OWN(T, base)                                                        \
  ((const T *)(const void *)((const char *)(base) + offsetof(opt_policy_config, own)))
#define OPT_POLICY_OWN_FITS(T)                                                         \
  _Static_assert(sizeof(T) <= OPT_POLICY_OWN_BYTES, #T " fits in opt_policy_config.own")

extern const wl_param opt_policy_params[];

/* The inner-optimizer key, shared by every policy's table; `adjust` sets a policy's own
 * defaults (NULL: the optimizer table's). */
#define OPT_POLICY_OPTIM_PARAM(name, field, adjust_fn, text)                             \
  {.key = name, .kind = WL_P_OBJECT, .offset = offsetof(opt_policy_config, field),        \
   .sub = opt_optim_params, .flags = WL_PF_DOC_APART | WL_PF_TRAINED, .adjust = adjust_fn, \
   .unit = "",                                                                            \
   .doc = text}
#define OPT_POLICY_INNER_PARAM(adjust_fn) \
  OPT_POLICY_OPTIM_PARAM("inner", inner, adjust_fn, "each worker's (inner) optimizer")
#define OPT_POLICY_OUTER_PARAM(adjust_fn) \
  OPT_POLICY_OPTIM_PARAM("outer", outer, adjust_fn, "the optimizer on pseudo-gradients (outer)")

/* Partial participation (FedAvg-style), for a policy whose rounds are opt_round's: it adds
 * this key to its table and gives cfg->participation to opt_round_participation. */
#define OPT_POLICY_PARTICIPATION_PARAM                                                     \
  {.key = "participation", .kind = WL_P_DOUBLE,                                           \
   .offset = offsetof(opt_policy_config, participation), .def = 1, .min = 0, .max = 1,    \
   .flags = WL_PF_MIN_EXCL | WL_PF_OMIT_DEFAULT, .unit = "fraction",                      \
   .doc = "the share of the workers in each round (FedAvg-style): ceil(f K) of those up, "  \
          "drawn without replacement from the run's seed; the others idle"}

/* Compression (opt_codec.h), for a policy that compresses what it sends: it adds this key
 * to its table and encodes with an opt_codec of cfg->compress (none: nothing changes). */
#define OPT_POLICY_COMPRESS_PARAM                                                          \
  {.key = "compress", .kind = WL_P_OBJECT, .offset = offsetof(opt_policy_config, compress), \
   .sub = opt_codec_params, .flags = WL_PF_DOC_APART | WL_PF_OMIT_DEFAULT, .unit = "",      \
   .doc = "how each worker compresses what it sends (docs/algorithms.md section 14): the "   \
          "scheme sets the bytes on the wire; a lossy scheme's collective is priced as an "  \
          "all-gather of the compressed payloads (an asynchronous push: a transfer of one)"}

/* Tasks (Liu et al.'s asynchronous setting, docs/algorithms.md section 6): what a policy's
 * rounds of local steps train on, at which learning rates, from which inner state. A policy
 * that adds these keys to its table gives each job to opt_tasks_assign. */
enum { OPT_SHARDS_FIXED = 0, OPT_SHARDS_LEAST_VISITED };
enum { OPT_SCHEDULE_BY_WORKER = 0, OPT_SCHEDULE_BY_SHARD };
enum { OPT_INNER_STATE_KEEP = 0, OPT_INNER_STATE_RESET };
int opt_tasks_least_visited(const void *cfg); /* (an `applies` of the keys' table) */
#define OPT_POLICY_TASK_PARAMS                                                              \
  {.key = "shards", .kind = WL_P_ENUM, .offset = offsetof(opt_policy_config, shards),       \
   .def = OPT_SHARDS_FIXED, .choices = "fixed|least_visited",                              \
   .flags = WL_PF_OMIT_DEFAULT | WL_PF_TRAINED, .unit = "",                                 \
   .doc = "the data of each round: fixed: each worker its own shard; least_visited: the "   \
          "shard given to the fewest rounds so far (ties drawn from the run's seed), its "   \
          "batches continuing where the shard's last round left them"},                     \
  {.key = "schedule_by", .kind = WL_P_ENUM,                                                 \
   .offset = offsetof(opt_policy_config, schedule_by), .def = OPT_SCHEDULE_BY_WORKER,       \
   .choices = "worker|shard", .flags = WL_PF_OMIT_DEFAULT | WL_PF_TRAINED, .unit = "",      \
   .doc = "what places an inner step on the learning-rate schedule: worker: the worker's "  \
          "own local steps; shard: the shard's steps before the round plus the step's "      \
          "place in it, the round's first step at the base rate (Liu et al.'s notebook)",    \
   .applies = opt_tasks_least_visited, .applies_doc = "shards least_visited"},              \
  {.key = "inner_state", .kind = WL_P_ENUM,                                                 \
   .offset = offsetof(opt_policy_config, inner_state), .def = OPT_INNER_STATE_KEEP,         \
   .choices = "keep|reset", .flags = WL_PF_OMIT_DEFAULT | WL_PF_TRAINED, .unit = "",        \
   .doc = "keep: each worker's inner optimizer state carries over from round to round (as " \
          "DiLoCo's workers); reset: every round starts a fresh inner optimizer (state and " \
          "step count zero), as Liu et al.'s notebook does"}

/* How a collective meets the compute before it (allreduce, allgather). Only the backward
 * pass can hide communication: backward_share of the slowest participant's last job, b.
 *   buckets 0 and bucket_bytes 0: one collective; up to a fraction `overlap` of it (AR)
 *     hides, so it costs AR - min(overlap AR, b) after the compute ends;
 *   buckets n > 0, or buckets of bucket_bytes (the last one smaller): one collective per
 *     bucket, one at a time, each paying its latency; bucket k, the first c_k bytes in all,
 *     is ready `overlap` b (1 - c_k / bytes) before the compute ends and starts when it is
 *     ready and the one before it is done (DDP's gradient buckets, the backward pass making
 *     them at an even rate). */
typedef struct opt_overlap {
  double overlap;        /* [0, 1] */
  double backward_share; /* [0, 1] */
  int buckets;
  double bucket_bytes;
} opt_overlap;

/* A local job for train(). */
typedef struct opt_train {
  int steps;            /* local steps */
  const uint8_t *mix;   /* (steps): 1 = the policy's mix_step instead of a gradient step;
                           NULL = all gradient steps. Owned by the policy until work_done. */
  double lr_scale;      /* multiplies the inner learning rate of gradient steps */
  int shard;            /* 0: the worker's own shard; s + 1: the job's gradient steps take the
                           next batches of shard s's stream (which moves on past them) */
  int fresh;            /* the inner optimizer state and step count are zeroed first */
  int lr_shard;         /* gradient step j's learning rate is schedule(lr_from + j), step 0's
                           the base rate; 0: schedule(the replica's local steps) */
  long lr_from;
} opt_train;

typedef struct opt_host {
  void *ctx;                    /* the runner's */
  int K;                        /* workers */
  opt_replica *replicas;        /* (K), equal at start */
  int64_t payload_bytes;        /* bytes of one full model (or gradient) on the wire */
  double wire_params;           /* the parameters those bytes carry (comm.params, or the
                                   model's) */
  const double *speeds;         /* (K) speed factors: gradient steps per unit time */
  const int *shard_sizes;       /* (K) training examples of each worker */
  const uint8_t *up;            /* (K) 1 while the worker is up */
  int regions;                  /* a policy with regions: R >= 1, worker w in region
                                   w / (K / R) (opt_host_region); else 0 */
  void (*train)(void *ctx, int w, const opt_train *job);
  void (*grad)(void *ctx, int w);
  void (*allreduce)(void *ctx, int64_t bytes, const opt_overlap *ov, const uint8_t *mask,
                    int tag);
  void (*allgather)(void *ctx, int64_t bytes_each, const opt_overlap *ov, const uint8_t *mask,
                    int tag);
  void (*send)(void *ctx, int from, int to, int64_t bytes, int tag);
  void (*timer)(void *ctx, double delay_s, int tag);
  void (*record_update)(void *ctx, int w, long staleness, double weight, int dropped);
  /* the policy's random stream `stream`: 0..K for its own use, OPT_STREAM_ROUNDS(K) for
   * opt_round's draws of participants */
  gsl_rng *(*rng)(void *ctx, int stream);
  /* worker w's speed now: its speed factor times the speed trace's factor, divided by a
   * straggler slowdown in effect (per-step jitter, of mean 1, excluded) */
  double (*speed_now)(void *ctx, int w);
  /* the largest speed_now over the workers */
  double (*speed_max_now)(void *ctx);
  /* fn(arg, i) for i = 0..n-1, on the host's threads when it has several and no worker's
   * job is in flight (else in order, here); returns when all are done. The calls must touch
   * disjoint data, so that the result does not depend on the threads. */
  void (*parallel)(void *ctx, int n, void (*fn)(void *arg, int i), void *arg);
  /* the global model has just changed (a synchronization, an applied update) */
  void (*global_changed)(void *ctx);
  /* The host's exact clock, for comparing times (never for pricing work): now; when worker
   * w's job in flight ends (INT64_MAX: it has none, or is down); and delay_s seconds on it,
   * rounded as timer() rounds. */
  int64_t (*clock_now)(void *ctx);
  int64_t (*clock_work_end)(void *ctx, int w);
  int64_t (*clock_span)(void *ctx, double delay_s);
} opt_host;

/* Traits of a policy type (opt_policy_type.traits). */
enum {
  OPT_TRAIT_ASYNC = 1u << 0, /* asynchronous: workers push to a parameter server (the
                                network's server link); it always hears of failures */
  OPT_TRAIT_OUTER = 1u << 1, /* has an outer optimizer (the key "outer") */
  OPT_TRAIT_TRANSFERS = 1u << 3, /* communicates by point-to-point transfers only (send): the
                                    network's collective settings do nothing for it */
  OPT_TRAIT_REGIONS = 1u << 2, /* uses the network's regions (cluster.network.regions): a
                                  local parameter server per region, OPT_LPS(r) */
};

/* Worker w's region on host h (0 without regions). */
static inline int opt_host_region(const opt_host *h, int w)
{
  return h->regions > 1 ? w / (h->K / h->regions) : 0;
}

typedef struct opt_policy_type {
  wl_variant variant; /* first member: name, doc and the keys this policy reads */
  unsigned traits;    /* OPT_TRAIT_* */
  /* checks of its settings beyond their ranges, some depending on the number of workers K
   * (may be NULL): on error, the key's path below the policy (e.g. "buffer") in path, and
   * msg */
  wl_status (*check)(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                     char *msg, size_t msg_size);
  wl_status (*create)(const opt_policy_config *cfg, const opt_host *host, void **state,
                      char *err, size_t err_size);
  void (*destroy)(void *state);
  void (*start)(void *state);
  void (*work_done)(void *state, int w);
  void (*collective_done)(void *state, int tag);                   /* may be NULL */
  void (*message)(void *state, int from, int to, int tag);         /* may be NULL */
  void (*timer)(void *state, int tag);                             /* may be NULL */
  void (*mix_step)(void *state, int w, double lr);                 /* may be NULL */
  void (*worker_down)(void *state, int w);                         /* may be NULL */
  void (*worker_up)(void *state, int w);                           /* may be NULL */
  const float *(*global)(const void *state);
  long (*step)(const void *state);
  /* the bytes its state takes for K workers and n parameters, beyond the workers' replicas
   * (what create allocates) */
  double (*memory)(const opt_policy_config *cfg, int K, double n);
  /* a policy with regions: the bytes each region beyond the first adds to memory's (may be
   * NULL: none) */
  double (*region_memory)(const opt_policy_config *cfg, double n);
  /* the most point-to-point transfers (send) it can have in flight at once with K workers
   * (may be NULL: at most two per worker, and two more) */
  long (*max_transfers)(const opt_policy_config *cfg, int K);
} opt_policy_type;

/* The most transfers cfg's policy can have in flight at once with K workers. */
long opt_policy_max_transfers(const opt_policy_config *cfg, int K);

/* The registry, generated by the build from the policy files (optim/opt_*.c defining an
 * opt_policy_type), in order of name and ended by NULL: the types, and their variants (the
 * first member of each). opt_policy_config.type indexes both. */
extern const opt_policy_type *const opt_policy_types[];
extern const wl_variant *const opt_policy_registry[];

/* The index of the policy type called name, or -1. */
int opt_policy_find(const char *name);

/* The type of a config. */
const opt_policy_type *opt_policy_type_of(const opt_policy_config *cfg);

/* Whether a config's type has every trait in `traits`. */
int opt_policy_has(const opt_policy_config *cfg, unsigned traits);

/* A config of the named type with every default (tests, tools): WL_ECONFIG for an unknown
 * name. */
wl_status opt_policy_defaults(const char *name, opt_policy_config *cfg);

/* Set or get one of the type's own keys by name (a number: INT, DOUBLE, BOOL, or an ENUM's
 * index); WL_ECONFIG when the type has no such key of those kinds. For tests and tools. */
wl_status opt_policy_set(opt_policy_config *cfg, const char *key, double value);
double opt_policy_get(const opt_policy_config *cfg, const char *key);

/* A policy instance: its type and its state. */
typedef struct opt_policy {
  const opt_policy_type *type;
  void *state;
} opt_policy;

/* Checks that depend on the cluster (delayed Nesterov's c <= 1/N with N defaulting to K; no
 * FedBuff buffer on top of delayed Nesterov). On error writes the key's path below the
 * policy (e.g. "outer.c") to path, and msg. */
wl_status opt_policy_check(const opt_policy_config *cfg, int K, char *path, size_t path_size,
                           char *msg, size_t msg_size);

/* The host must outlive the policy. On a configuration error (one that depends on the
 * cluster, such as c > 1/N), returns WL_ECONFIG with a message naming the key in err. */
wl_status opt_policy_create(const opt_policy_config *cfg, const opt_host *host, opt_policy *p,
                            char *err, size_t err_size);
void opt_policy_destroy(opt_policy *p);

/* The bytes policy cfg's state takes for K workers, n parameters and R regions (0 or 1: one),
 * beyond the replicas. */
double opt_policy_memory(const opt_policy_config *cfg, int K, double n, int R);

/* The bytes of one of the host's random streams (a GSL mt19937 generator). */
double opt_rng_memory(void);

/* The bytes of an opt_round and of an opt_outer of cfg (for n parameters). */
double opt_round_memory(int K);
double opt_outer_memory(const opt_optim_config *cfg, double n);

/* The label a policy is known by: cfg->label, or its type's name when the label is empty. */
const char *opt_policy_label(const opt_policy_config *cfg);

/* ---- helpers shared by the policies ------------------------------------------------------ */

/* One inner-optimizer gradient step on a replica whose grads are filled: clip (if the
 * config says), count the step, and update with lr = schedule(t) * lr_scale, t being the
 * replica's local step position. */
void opt_replica_apply(opt_replica *r, const opt_optim_config *c, double lr_scale);

/* The same step at the learning rate lr. */
void opt_replica_apply_lr(opt_replica *r, const opt_optim_config *c, double lr);

/* out = the mean of the replicas' parameters over the workers in mask (all: NULL), as
 * opt_replicas_mean; then every replica's parameters become out. In one pass over ranges of
 * elements on the host's threads. */
void opt_host_average(const opt_host *h, const uint8_t *mask, float *out);

/* A synchronous gradient step (DDP): the mean of the replicas' grads (in worker order) is
 * applied to replica 0 with the inner optimizer, then replica 0's params and counters (and
 * its optimizer state when with_state: a policy whose replicas later step on their own) are
 * copied to the others; in parallel over ranges of elements on the host's threads. */
void opt_sync_gradient_step(const opt_host *h, const opt_optim_config *inner,
                            const uint8_t *mask, int with_state);

/* A global model z with an outer optimizer (DiLoCo, PALSGD): one allocation holding z, the
 * pseudo-gradient and the optimizer state. */
typedef struct opt_outer {
  opt_optim_config cfg; /* resolved */
  size_t n;             /* parameters */
  float *z;             /* (n) the global model */
  float *delta;         /* (n) the last pseudo-gradient */
  float *state;         /* outer optimizer state */
  long t;               /* outer steps taken */
  float *block;
} opt_outer;

/* z starts as replica 0's parameters. */
wl_status opt_outer_init(opt_outer *o, const opt_optim_config *cfg, const opt_host *h,
                         char *err, size_t err_size);
void opt_outer_free(opt_outer *o);

/* The end of a DDP warm-up: z <- mean_k x_k (equal already, as DDP keeps them), x_k <- z. */
void opt_outer_adopt(const opt_host *h, opt_outer *o);

/* DiLoCo's synchronization: delta = sum_k w_k (z - x_k) over the mask, clipped to the outer
 * optimizer's clip (its global L2 norm) when it has one; z <- OuterOpt(z, delta); every
 * replica's parameters <- z (inner state kept). With a lossy codec (else NULL), each worker
 * sends its change compressed, d_k = Q(x_k - z) (opt_codec_encode_changes), and delta =
 * sum_k w_k (0 - d_k). */
void opt_outer_sync(const opt_host *h, opt_outer *o, const int *weights, const uint8_t *mask,
                    opt_codec *codec);

/* The collective of a policy that may compress: an all-reduce of `bytes` (fp32), or, when
 * the codec is lossy, an all-gather of each worker's compressed bytes. */
void opt_host_reduce(const opt_host *h, const opt_codec_config *codec, int64_t bytes,
                     const opt_overlap *ov, const uint8_t *mask, int tag);

/* Every worker in mask (all: NULL) compresses its gradient in place (a lossy codec; else
 * nothing happens), on the host's threads. */
void opt_codec_encode_grads(const opt_host *h, opt_codec *codec, const uint8_t *mask);

/* Every worker k in mask compresses its change over [lo, hi): d_k = Q(x_k - z), into the
 * codec's buffer k when it has buffers (its view k), else into x_k itself; on the host's
 * threads. */
void opt_codec_encode_changes(const opt_host *h, opt_codec *codec, const uint8_t *mask,
                              const float *z, size_t lo, size_t hi);

/* The tasks of a policy with OPT_POLICY_TASK_PARAMS: shards' visits and progress. */
typedef struct opt_tasks {
  int least_visited, by_shard, fresh;
  long *visits;   /* (K) rounds given each shard */
  long *progress; /* (K) gradient steps given each shard */
  int *ties;      /* (K) scratch */
} opt_tasks;

wl_status opt_tasks_init(opt_tasks *t, const opt_policy_config *cfg, int K);
void opt_tasks_free(opt_tasks *t);
double opt_tasks_memory(int K);

/* Make job (its steps set, all gradient steps) a task: its shard (least visited; ties drawn
 * from the policy's stream 0), its schedule position, a fresh inner state. */
void opt_tasks_assign(opt_tasks *t, const opt_host *h, opt_train *job);

/* The workers taking part in a synchronous round. A synchronous policy keeps one as the
 * first member of its state, so that opt_round_worker_down and _up can be its failure
 * handlers: they call the policy's `reduce` when a leaver completes the round (or `begin` a
 * new round when nobody is left), and `begin` when a worker comes back while no round runs.
 * A worker that goes down during the synchronization (the collective) leaves it too: its
 * contribution is excluded, the runner re-runs the collective among the others, and when
 * nobody is left a new round begins with whoever is up. */
typedef struct opt_round {
  void *owner;                  /* the policy's state */
  void (*begin)(void *owner);   /* start a round (or step) with the workers that are up */
  void (*reduce)(void *owner);  /* the round's work is done: synchronize */
  int K;
  uint8_t *in;  /* (K) taking part: up when the round began, and not gone down unfinished */
  uint8_t *done;/* (K) finished its part of the round */
  int pending;  /* taking part and not done */
  int active;   /* a round is in progress */
  int reducing; /* ... and every participant is done: its synchronization is under way */
  double fraction; /* of the workers taking part in a round (1: every one that is up) */
  int *pick;    /* (2K) scratch for drawing participants */
  opt_tasks *tasks; /* the policy's tasks (opt_round_start makes each job one), or NULL */
} opt_round;

wl_status opt_round_init(opt_round *rd, int K, void *owner, void (*begin)(void *),
                         void (*reduce)(void *));
void opt_round_free(opt_round *rd);
/* Each round takes ceil(fraction K) of the workers that are up (all of them when fewer),
 * drawn without replacement from the host's stream OPT_STREAM_ROUNDS(K); 1 (the default):
 * every worker that is up, and nothing is drawn. */
void opt_round_participation(opt_round *rd, double fraction);
/* ceil(fraction K), a product within 1e-12 (relative) of an integer taken as that integer, in
 * [1, K] */
int opt_round_participants(double fraction, int K);
/* Start a round with the workers that are up (see opt_round_participation); returns how
 * many (0: no round starts). */
int opt_round_begin(opt_round *rd, const opt_host *h);
/* opt_round_begin, then give every participant its work: job's local steps (each made a
 * task, in worker order, when the round has tasks), or one gradient (a DDP-style step) when
 * job is NULL. Returns how many take part. */
int opt_round_start(opt_round *rd, const opt_host *h, const opt_train *job);
/* w finished its part; true when it was the last one. */
int opt_round_arrive(opt_round *rd, int w);
/* w went down: it leaves the round (its part is excluded, finished or not); true when that
 * completes the round (every remaining participant is done). (A worker that goes down
 * during the round's synchronization leaves it through opt_round_worker_down.) */
int opt_round_leave(opt_round *rd, int w);
/* How many take part. */
int opt_round_size(const opt_round *rd);
/* Handlers for a policy whose state starts with its opt_round: w's work is done (the round's
 * reduce when it was the last); failures. */
void opt_round_work_done(void *state, int w);
void opt_round_worker_down(void *state, int w);
void opt_round_worker_up(void *state, int w);

/* A copy of c whose delayed-Nesterov N is resolved (0 -> K); WL_ECONFIG when c > 1/N. */
wl_status opt_outer_resolve(const opt_optim_config *c, int K, opt_optim_config *out, char *err,
                            size_t err_size, const char *path);

#endif
